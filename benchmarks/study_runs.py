"""What the study runners share (`benchmarks.cifar_study`, `benchmarks.glue_study`): one run is one
``python -m akd_tf.main`` command with its own flagfile in its own directory, skipped when it finished before,
so a killed study resumes where it stopped."""

import json
import os
import subprocess
import sys
import time

from akd_tf.run import read_history


def check_arguments(argv, methods, allowed):
    """`app.UsageError` for positional arguments or a method not in ``allowed``."""
    from absl import app

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    unknown = sorted(set(methods) - set(allowed))
    if unknown:
        raise app.UsageError(f"Unknown --methods {unknown}. Allowed: {', '.join(allowed)}")


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_main(workdir, lines, name=None, last=()):
    """Runs ``akd_tf.main`` with the flags ``lines``, then ``--workdir`` (after any flagfile in ``lines`` that sets
    one), then ``last``, in ``workdir`` unless it finished there; returns its metrics with ``study`` (command,
    wall time), ``history`` and ``workdir``."""
    name = name or os.path.basename(workdir)
    metrics_path = os.path.join(workdir, "metrics.json")
    record_path = os.path.join(workdir, "study_run.json")
    if os.path.isfile(metrics_path) and os.path.isfile(record_path):
        log(f"{name}: finished before, reusing {workdir}")
    else:
        os.makedirs(workdir, exist_ok=True)
        earlier = _interrupted_attempts(workdir)  # before this attempt writes anything: its writes are not theirs
        flagfile = os.path.join(workdir, "study.flags")
        with open(flagfile, "w") as f:
            f.write("\n".join([*lines, f"--workdir={workdir}", *last]) + "\n")
        command = [sys.executable, "-m", "akd_tf.main", f"--flagfile={flagfile}"]
        log(f"{name}: {' '.join(command)}")
        start = time.perf_counter()
        with open(os.path.join(workdir, "study.log"), "a") as out:
            status = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT)
        elapsed = time.perf_counter() - start
        if status:
            raise SystemExit(f"{name} failed with exit status {status}; see {os.path.join(workdir, 'study.log')}")
        record = {"command": " ".join(command), "wall_time_s": elapsed + sum(earlier), "cpus": usable_cpus()}
        if earlier:
            record["interrupted_attempts_s"] = earlier
        with open(record_path, "w") as f:
            json.dump(record, f, indent=2)
        os.remove(os.path.join(workdir, _ATTEMPTS))
        log(f"{name}: done in {record['wall_time_s'] / 60:.1f} min"
            + (f" ({len(earlier)} interrupted attempt(s) included)" if earlier else ""))
    with open(metrics_path) as f:
        metrics = json.load(f)
    with open(record_path) as f:
        metrics["study"] = json.load(f)
    metrics["history"] = read_history(os.path.join(workdir, "history_student.csv"))
    metrics["workdir"] = workdir
    return metrics


_ATTEMPTS = "study_attempts.json"


def _interrupted_attempts(workdir):
    """Seconds spent by earlier attempts at this run that were killed (a session ending mid-run), then starts
    a new attempt. A killed attempt cannot write its end, so it is taken as the last time the run wrote to its
    directory (its log, checkpoints, TensorBoard events): the run's wall time counts the work it lost."""
    path = os.path.join(workdir, _ATTEMPTS)
    attempts = []
    if os.path.isfile(path):
        with open(path) as f:
            attempts = json.load(f)
        if attempts and "seconds" not in attempts[-1]:
            last_write = max((os.path.getmtime(os.path.join(root, name))
                              for root, _, names in os.walk(workdir) for name in names if name != _ATTEMPTS),
                             default=attempts[-1]["started"])
            attempts[-1]["seconds"] = max(0.0, last_write - attempts[-1]["started"])
    attempts.append({"started": time.time()})
    with open(path, "w") as f:
        json.dump(attempts, f, indent=2)
    return [a["seconds"] for a in attempts[:-1]]


def usable_cpus():
    """The cores this process and its runs may use: its CPU affinity (e.g. under ``taskset``), which
    ``os.cpu_count()`` ignores."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS, Windows)
        return os.cpu_count()


def cores(counts):
    """How many cores runs had, for a study's table, from their records' ``cpus`` (None for records written
    before cores were recorded, when every run had the whole machine): ``"2 CPU cores"``, or for runs pinned
    to part of the machine ``"1 CPU core per run (pinned; the machine has 2)"``."""
    machine = os.cpu_count()
    used = sorted({machine if count is None else count for count in counts})
    if used == [machine]:
        return f"{machine} CPU cores"
    return f"{' or '.join(map(str, used))} CPU core{'' if used == [1] else 's'} per run (pinned; the machine has {machine})"


def mean_std(values):
    """Mean and sample standard deviation (0 for one value)."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
