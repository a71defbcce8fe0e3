"""Writing results so that a kill at any moment leaves either the old file or the new one, never half of one;
and making a shared file once when several processes want it at the same time."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path``; when the block succeeds it is renamed onto ``path``.

    Works for files and directories. The temporary name keeps ``path``'s extension (Keras and matplotlib
    pick formats by it) and starts with a dot. On an exception the temporary is removed and ``path`` is
    left as it was.
    """
    path = os.fspath(path).rstrip(os.sep)
    directory, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    tmp = os.path.join(directory, f".{stem}.tmp-{os.getpid()}{ext}")
    remove(tmp)
    try:
        yield tmp
        _fsync(tmp)
        if os.path.isdir(tmp) and os.path.isdir(path):
            # A directory cannot be renamed onto a non-empty one: move the old aside first.
            old = os.path.join(directory, f".{stem}.old-{os.getpid()}{ext}")
            remove(old)
            os.rename(path, old)
            os.rename(tmp, path)
            remove(old)
        else:
            os.replace(tmp, path)
        _fsync(directory or ".")
    except BaseException:
        remove(tmp)
        raise


@contextlib.contextmanager
def one_maker(path, say=print):
    """Held by one process at a time while it makes ``path`` (a file that other processes may want too, such as
    a cache shared by runs); on entry, check whether ``path`` exists, since a process that waited here finds
    it made. The lock is an ``fcntl.flock`` on ``<path>.lock``: the kernel releases it when its holder exits or
    is killed, so a lock never outlives its process. Only for processes of one machine (and filesystems with
    working flock)."""
    lock = os.fspath(path) + ".lock"
    fd = _lock(lock, wait=False)
    if fd is None:
        say(f"Waiting for process {_holder(lock)} to finish {path} (lock: {lock})", flush=True)
        fd = _lock(lock, wait=True)
    try:
        yield
    finally:
        _unlock(lock, fd)


@contextlib.contextmanager
def claim(path):
    """`one_maker` without the wait: yields None while this process holds ``<path>.lock``, or, without taking
    it, the id of the live process that holds it (e.g. another process of the same study training the run
    ``path``)."""
    lock = os.fspath(path) + ".lock"
    fd = _lock(lock, wait=False)
    try:
        yield _holder(lock) if fd is None else None
    finally:
        if fd is not None:
            _unlock(lock, fd)


def _lock(lock, wait):
    """An open descriptor of ``lock`` holding its exclusive flock, or None when another process holds it and
    ``wait`` is False. The holder removes the file when it is done; a process that was waiting then holds a lock on
    a file no longer there, so it checks that the path still names the file it locked, and starts again if not."""
    os.makedirs(os.path.dirname(lock) or ".", exist_ok=True)
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())  # for the messages of processes that find it held
            return fd
        os.close(fd)


def _unlock(lock, fd):
    remove(lock)  # while still held: a process waiting on this file will see it gone and lock a new one
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _holder(lock):
    """The process id written in a held lock, or "another process" when it cannot be read (yet)."""
    try:
        with open(lock) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return "another process"


def write_json(path, payload):
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")


def write_text(path, text):
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def remove_stale_temporaries(directory):
    """Deletes the ``.*.tmp-<pid>*`` leftovers of writes that were killed."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if name.startswith(".") and (".tmp-" in name or ".old-" in name):
            remove(os.path.join(directory, name))


def remove(path):
    """Removes a file, link or directory tree if it exists."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def _fsync(path):
    # Durable across a machine crash too, not only a killed process.
    if os.path.isdir(path):
        for root, _, names in os.walk(path):
            for name in names:
                _fsync(os.path.join(root, name))
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    elif os.path.isfile(path):
        flags = os.O_RDONLY
    else:
        return
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def no_space(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, is a full disk (ENOSPC)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        error = error.__cause__ or error.__context__
    return False


def no_space_message(directory: str) -> str:
    """What to do when a write into ``directory`` found the disk full: the space left there, and how to go on (a
    run resumes from its last checkpoint; a write is atomic, so no half-written file is taken for one)."""
    try:
        free = f"{shutil.disk_usage(directory).free / 2**20:,.1f} MB free"
    except OSError:
        free = "free space unknown"
    return (f"no space left on the device of {directory} ({free}): free space and run the same command again; "
            "the run resumes from its last checkpoint.")
