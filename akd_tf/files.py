"""Writing results so that a kill at any moment leaves either the old file or the new one, never half of one;
and making a shared file once when several processes want it at the same time."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time


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
def one_maker(path, poll_s=15.0, say=print):
    """Held by one process at a time while it makes ``path`` (a file that other processes may want too, such as
    a cache shared by runs); on entry, check whether ``path`` exists, since a process that waited here finds
    it made. A lock file ``<path>.lock`` holds the maker's process id; a lock whose process has died (killed
    with its session) is taken over. Only for processes of one machine."""
    lock = os.fspath(path) + ".lock"
    told = False
    while (maker := _take(lock)) is not None:
        if not told:
            say(f"Waiting for process {maker} to finish {path} (lock: {lock})", flush=True)
            told = True
        time.sleep(poll_s)
    try:
        yield
    finally:
        remove(lock)


@contextlib.contextmanager
def claim(path):
    """`one_maker` without the wait: yields None while this process holds ``<path>.lock``, or, without taking
    it, the id of the live process that holds it (e.g. another lane already training the run ``path``)."""
    lock = os.fspath(path) + ".lock"
    holder = _take(lock)
    try:
        yield holder
    finally:
        if holder is None:
            remove(lock)


def _take(lock):
    """Creates ``lock`` for this process and returns None, or returns the id of the live process holding it.
    A lock names its holder by process id and start time: a lock left by a process of an ended session is
    taken over even when a new process has been given the same id."""
    os.makedirs(os.path.dirname(lock) or ".", exist_ok=True)
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = _lock_owner(lock)
            if holder is None:  # its holder has not written its id yet: held
                return "unknown"
            if not _alive(*holder):
                remove(lock)  # its holder died without removing it
                continue
            return holder[0]
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()} {_start_time(os.getpid())}")
        return None


def _lock_owner(lock):
    """``(pid, start time or None)`` from a lock file, or None when it is gone or not yet written."""
    try:
        with open(lock) as f:
            fields = f.read().split()
        return int(fields[0]), (int(fields[1]) if len(fields) > 1 else None)
    except (OSError, ValueError, IndexError):
        return None


def _stat(pid):
    """``(state, start time)`` of process ``pid`` from /proc/<pid>/stat (start: clock ticks since boot), or None
    where there is no such file."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _start_time(pid):
    stat = _stat(pid)
    return stat and stat[1]


def _alive(pid, started=None):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    stat = _stat(pid)
    if stat is None:  # no /proc: the signal's answer is all there is
        return True
    # A zombie has ended (its parent has not reaped it yet); the same id started at another time is a new process.
    return stat[0] != "Z" and (started is None or stat[1] == started)


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
