"""akd_tf.files: atomic writes, and the flock that lets one process make a shared file while others wait."""

import json
import os

import pytest

from akd_tf import files


def test_atomic_path_keeps_the_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / "metrics.json"
    files.write_json(path, {"a": 1})
    with pytest.raises(RuntimeError):
        with files.atomic_path(path) as tmp:
            open(tmp, "w").write('{"a": ')  # half written, then the writer dies
            raise RuntimeError("killed")
    assert json.load(open(path)) == {"a": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_atomic_path_replaces_a_directory(tmp_path):
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "old.txt").write_text("old")
    with files.atomic_path(tmp_path / "student") as tmp:
        os.makedirs(tmp)
        open(os.path.join(tmp, "new.txt"), "w").write("new")
    assert os.listdir(tmp_path / "student") == ["new.txt"] and os.listdir(tmp_path) == ["student"]


_MAKER = """
import os, sys, time
from akd_tf import files
path = sys.argv[1]
with files.one_maker(path):
    open(path + ".started", "w").close()
    while not os.path.exists(path + ".waiting"):  # until the other process says it waits for this one
        time.sleep(0.01)
    open(path, "w").write("made by the first")
"""


def test_one_maker_makes_a_shared_file_once_while_another_process_waits(tmp_path):
    import subprocess
    import sys
    import time

    path = str(tmp_path / "views.npz")
    first = subprocess.Popen([sys.executable, "-c", _MAKER, path], cwd=os.path.dirname(os.path.dirname(__file__)))
    deadline = time.time() + 300  # the maker imports TensorFlow (akd_tf), slow on a loaded machine
    while not os.path.exists(path + ".started"):
        assert time.time() < deadline and first.poll() is None, "the first maker did not start"
        time.sleep(0.05)
    said = []

    def say(message, **_):
        said.append(message)
        open(path + ".waiting", "w").close()

    with files.one_maker(path, say=say):
        # It waited for the first maker, so the file is there to read, and it holds the lock now.
        assert open(path).read() == "made by the first"
        assert open(path + ".lock").read() == str(os.getpid())
    assert first.wait(timeout=60) == 0
    assert len(said) == 1 and said[0].startswith(f"Waiting for process {first.pid} to finish {path}")
    assert not os.path.exists(path + ".lock")


_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
open(sys.argv[1] + ".held", "w").close()
time.sleep(float(sys.argv[2]))
"""


def _hold(lock, seconds=60):
    """A process holding ``lock`` with flock, as another maker does; it has taken it when this returns."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock), str(seconds)])
    while not os.path.exists(f"{lock}.held"):
        assert proc.poll() is None
        time.sleep(0.02)
    return proc


def test_a_lock_is_free_again_when_its_holder_is_killed(tmp_path):
    """The kernel releases a flock with its process: a maker killed with its session leaves nothing to take over,
    even though its lock file (with its process id in it) stays behind."""
    lock = tmp_path / "views.npz.lock"
    holder = _hold(lock)
    with files.claim(tmp_path / "views.npz") as seen:
        assert seen == holder.pid
    holder.kill()
    holder.wait()
    assert lock.exists()
    said = []
    with files.one_maker(tmp_path / "views.npz", say=said.append):
        assert lock.read_text() == str(os.getpid())
    assert said == [] and not lock.exists()


def test_claim_does_not_wait_for_a_live_holder_and_leaves_its_lock(tmp_path):
    lock = tmp_path / "kd_seed0.lock"
    holder = _hold(lock)
    try:
        with files.claim(tmp_path / "kd_seed0") as seen:
            assert seen == holder.pid
        assert lock.read_text() == str(holder.pid)
    finally:
        holder.kill()
        holder.wait()
    with files.claim(tmp_path / "kd_seed0") as seen:  # its holder has died: free
        assert seen is None


def test_no_space_finds_a_full_disk_behind_the_errors_raised_from_it(tmp_path):
    import errno

    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError as error:
            raise RuntimeError("Unable to synchronously create dataset") from error
    except RuntimeError as wrapped:
        assert files.no_space(wrapped)
    assert not files.no_space(OSError(errno.EACCES, "Permission denied")) and not files.no_space(ValueError())
    assert files.no_space_message(str(tmp_path)).startswith(f"no space left on the device of {tmp_path} (")
