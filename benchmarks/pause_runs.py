"""Stops the running study runs while a command runs (e.g. timing the test suite alone), then lets them go on, and
writes the pause into each stopped run's directory, so that its recorded wall time leaves it out (`study_runs`).

    python -m benchmarks.pause_runs --why="fresh-clone CI timing" -- bash -c "CI=true bash .ci/run"

A study run is an ``akd_tf.main`` process started by `benchmarks.study_runs` with ``--flagfile=<run dir>/study.flags``
under ``--runs``. They are stopped with SIGSTOP and continued with SIGCONT (also when the command fails or is
interrupted); the pause is appended to ``<run dir>/study_pauses.json``. Exits with the command's status."""

import os
import re
import signal
import subprocess
import sys
import time

from absl import app, flags

from akd_tf import files
from benchmarks import study_runs

FLAGS = flags.FLAGS
flags.DEFINE_string("runs", os.path.expanduser("~/akd_runs"), "The directory the study runs live under.")
flags.DEFINE_string("why", None, "What the pause is for; kept with it.", required=True)

_FLAGFILE = re.compile(r"--flagfile=(\S+)/study\.flags$")


def running_study_runs(root):
    """{pid: run directory} of the ``akd_tf.main`` processes running a study run under ``root``."""
    root = os.path.realpath(root)
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:  # ended meanwhile
            continue
        if "akd_tf.main" not in argv:
            continue
        for arg in argv:
            match = _FLAGFILE.match(arg)
            if match and os.path.realpath(match.group(1)).startswith(root + os.sep):
                found[int(pid)] = match.group(1)
    return found


def record_pause(directory, start, end, why):
    pauses = study_runs.read_pauses(directory)
    pauses.append({"start": start, "end": end, "seconds": end - start, "why": why})
    files.write_json(os.path.join(directory, study_runs.PAUSES), pauses)


def paused_while(command, root, why):
    """Runs ``command`` with the study runs under ``root`` stopped; returns its exit status."""
    runs = running_study_runs(root)
    print(f"Stopping {len(runs)} study run(s): {', '.join(sorted(runs.values())) or 'none running'}", flush=True)
    start = time.time()
    stopped = {}
    try:
        for pid, directory in runs.items():
            try:
                os.kill(pid, signal.SIGSTOP)
                stopped[pid] = directory
            except ProcessLookupError:
                pass
        return subprocess.call(command)
    finally:
        end = time.time()
        for pid, directory in stopped.items():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            record_pause(directory, start, end, why)
        print(f"Continued {len(stopped)} study run(s) after {end - start:.0f} s", flush=True)


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("Give the command to run after --, e.g. -- bash -c 'CI=true bash .ci/run'")
    sys.exit(paused_while(argv[1:], FLAGS.runs, FLAGS.why))


if __name__ == "__main__":
    app.run(main)
