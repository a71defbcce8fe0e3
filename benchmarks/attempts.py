"""A study run's attempts (``study_attempts.json`` in its directory): when each started and until when it was
alive, so that a run killed with its session counts the time it had spent (`benchmarks.study_runs`).

Standard library only, so that ``benchmarks/study_carry.sh`` can seal the attempts of the runs it carries without
starting TensorFlow:

    python -m benchmarks.attempts seal ~/akd_runs
"""

import json
import os
import sys
import time

FILE = "study_attempts.json"
PAUSES = "study_pauses.json"  # the times the run was stopped (SIGSTOP) by benchmarks.pause_runs
HEARTBEAT_S = 60  # how often a running attempt writes the time into its record


def _read(path):
    with open(path) as f:
        return json.load(f)


def _write(path, attempts):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(attempts, f, indent=2)
    os.replace(tmp, path)  # a kill mid-write leaves the previous record


def start(workdir):
    """Starts a new attempt at the run in ``workdir``; returns the earlier ones, which were killed (a session
    ending mid-run), each with the ``seconds`` it spent (and a ``note`` if that was set by hand). A killed attempt
    cannot write its end: it counts until the last time it wrote that it was alive (`alive`, every minute), so
    the run's wall time counts the work it lost."""
    path = os.path.join(workdir, FILE)
    attempts = _read(path) if os.path.isfile(path) else []
    if attempts and "seconds" not in attempts[-1]:
        attempts[-1]["seconds"] = _seconds(workdir, attempts[-1])
    attempts.append({"started": time.time()})
    _write(path, attempts)
    return attempts[:-1]


def alive(workdir):
    """Writes the time into the running attempt's record."""
    path = os.path.join(workdir, FILE)
    attempts = _read(path)
    attempts[-1]["alive"] = time.time()
    _write(path, attempts)


def spent(workdir):
    """Seconds an unfinished run has spent so far over its attempts (the one under way until its last heartbeat, or
    its directory's last write), less the times it was stopped (``study_pauses.json``); 0 if it never started."""
    path = os.path.join(workdir, FILE)
    if not os.path.isfile(path):
        return 0.0
    total = sum(a["seconds"] if "seconds" in a else _seconds(workdir, a) for a in _read(path))
    return max(0.0, total - sum(p["seconds"] for p in read_pauses(workdir)))


def last_alive(workdir):
    """The last time the run in ``workdir`` was known to be running (an attempt's start, heartbeat or recorded
    end), or ``None`` if it never started."""
    path = os.path.join(workdir, FILE)
    found = _read(path) if os.path.isfile(path) else []
    return max((a.get("alive", a["started"] + a.get("seconds", 0.0)) for a in found), default=None)


def read_pauses(workdir):
    """The pauses `benchmarks.pause_runs` wrote for the run in ``workdir`` (``[]`` when it was never stopped)."""
    path = os.path.join(workdir, PAUSES)
    return _read(path) if os.path.isfile(path) else []


def _seconds(workdir, attempt):
    """An attempt's time without a recorded end: until its last heartbeat, or (recorded before the heartbeats) its
    directory's last write."""
    end = attempt["alive"] if "alive" in attempt else _last_write(workdir, attempt["started"])
    return max(0.0, end - attempt["started"])


def _last_write(workdir, default):
    """When the run last wrote to its directory (log, checkpoints): the end of an attempt recorded before the
    heartbeats. Right only on the machine that ran it: a copy of the directory (the work tree carried between
    sessions) may give its files the time of the copy, which is why `seal` runs before one is made."""
    return max((os.path.getmtime(os.path.join(root, name)) for root, _, names in os.walk(workdir) for name in names
                if name not in (FILE, PAUSES)), default=default)


def seal(root):
    """For every run under ``root`` whose last attempt has no heartbeat (started by an older runner), writes its
    directory's last write as the attempt's last sign of life, while the files still have their own times;
    returns the runs' directories. Run with the runs stopped, before their directories are copied elsewhere."""
    sealed = []
    for directory, _, names in os.walk(root):
        if FILE not in names:
            continue
        path = os.path.join(directory, FILE)
        attempts = _read(path)
        if attempts and not {"seconds", "alive"} & set(attempts[-1]):
            attempts[-1]["alive"] = _last_write(directory, attempts[-1]["started"])
            _write(path, attempts)
            sealed.append(directory)
    return sealed


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "seal":
        sys.exit("usage: python -m benchmarks.attempts seal <runs directory>")
    for directory in seal(sys.argv[2]):
        print(f"attempts: sealed the last attempt of {directory} at its last write")
