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
        with open(record_path, "w") as f:
            json.dump({"command": " ".join(command), "wall_time_s": elapsed}, f, indent=2)
        log(f"{name}: done in {elapsed / 60:.1f} min")
    with open(metrics_path) as f:
        metrics = json.load(f)
    with open(record_path) as f:
        metrics["study"] = json.load(f)
    metrics["history"] = read_history(os.path.join(workdir, "history_student.csv"))
    metrics["workdir"] = workdir
    return metrics


def mean_std(values):
    """Mean and sample standard deviation (0 for one value)."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
