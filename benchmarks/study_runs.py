"""What the study runners share (`benchmarks.cifar_study`, `benchmarks.glue_study`): one run is one
``python -m akd_tf.main`` command with its own flagfile in its own directory, skipped when it finished before,
so a killed study resumes where it stopped.

A run's directory lives outside the repository (hours of checkpoints) and may not outlive its machine. A runner
given ``records`` therefore also keeps each finished run's record (`RECORD`: metrics, wall time, the commit and
CPU it ran on, history, flags, the student without optimizer state) in a directory that is committed, and the
same study started on a new machine takes a finished run from there instead of training it again."""

import datetime
import json
import os
import shutil
import subprocess
import sys
import time

from akd_tf import files
from akd_tf.workdir import read_history
from benchmarks import speed


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


# A study's runs unless its flags say otherwise (benchmarks.cifar_study's --seeds and --methods).
STUDY_SEEDS = ("0", "1")
STUDY_METHODS = ("scratch", "kd", "takd", "akd")
# What a finished run leaves that the tables, the progress report and the recheck read: small text files, and the
# student as a .keras file without optimizer state (~0.3 MB for a ResNet-8), so that a clean clone can re-evaluate it.
RECORD = ("metrics.json", "study_run.json", "history_student.csv", "study.flags", "flags.txt", "config.json",
          "student.keras")
# A text run's record: its models are tens of MB, so the files that retrain it stand in for them.
TEXT_RECORD = RECORD[:-1]


def _finished(directory):
    return all(os.path.isfile(os.path.join(directory, name)) for name in RECORD[:2])


def keep_record(source, target, record=RECORD):
    """Copies the files of ``record`` that a finished run in ``source`` wrote to ``target``."""
    os.makedirs(target, exist_ok=True)
    for name in record:
        if os.path.isfile(os.path.join(source, name)):
            shutil.copy2(os.path.join(source, name), os.path.join(target, name))


def run_main(workdir, lines, name=None, last=(), records=None, when_busy="wait", record=RECORD):
    """Runs ``akd_tf.main`` with the flags ``lines``, then ``--workdir`` (after any flagfile in ``lines`` that sets
    one), then ``last``, in ``workdir`` unless it finished there; returns its metrics with ``study`` (command,
    wall time), ``history`` and ``workdir``. With ``records`` (a directory for this run's record), a run
    finished there is taken from it, and a run finished here is recorded there (the files of ``record``). Only for
    runs whose model nothing reads later: ``workdir`` then has the record, not the model.

    A run is trained by one process at a time (``<workdir>.lock``): when another live process is training it,
    ``when_busy="wait"`` waits for it to finish and takes its result, ``"skip"`` returns None at once (several
    processes of one study, e.g. one per GPU, share out its runs so)."""
    if when_busy not in ("wait", "skip"):
        raise ValueError(f"when_busy must be 'wait' or 'skip'. Received: {when_busy!r}")
    name = name or os.path.basename(workdir)
    if _finished(workdir):
        log(f"{name}: finished before, reusing {workdir}")
    elif records and _finished(records):
        keep_record(records, workdir, record)
        log(f"{name}: finished before (its record is in {records}), reusing it")
    else:
        held = (files.one_maker(workdir, say=lambda message, **_: log(f"{name}: {message}"))
                if when_busy == "wait" else files.claim(workdir))
        with held as holder:
            if holder is not None:
                log(f"{name}: process {holder} is training it; left to that process")
                return None
            if _finished(workdir):
                log(f"{name}: finished by another process meanwhile, reusing {workdir}")
            else:
                _train(workdir, lines, name, last)
    if records and not _finished(records):
        keep_record(workdir, records, record)
    with open(os.path.join(workdir, "metrics.json")) as f:
        metrics = json.load(f)
    with open(os.path.join(workdir, "study_run.json")) as f:
        metrics["study"] = json.load(f)
    metrics["history"] = read_history(os.path.join(workdir, "history_student.csv"))
    metrics["workdir"] = workdir
    return metrics


def shared_out(keys, run):
    """``run(key)`` for every key in turn, where ``run`` returns a run's metrics, or None when another process is
    training it (`run_main`'s ``when_busy="skip"``). Those left to others are asked once more at the end, so the
    process that finishes a study's last run finds every run done. Returns ``(metrics of every key in order, [])``
    or ``(None, [keys still being trained elsewhere])``."""
    done = {key: run(key) for key in keys}
    done = {key: metrics if metrics is not None else run(key) for key, metrics in done.items()}
    elsewhere = [key for key in keys if done[key] is None]
    return (None, elsewhere) if elsewhere else ([done[key] for key in keys], [])


def _train(workdir, lines, name, last):
    """Trains the run to its end (resuming its checkpoint if an earlier process was killed in it); writes
    ``study_run.json``: the command, this process's wall time, when it finished, the commit and the CPU."""
    os.makedirs(workdir, exist_ok=True)
    resumed = os.path.isdir(os.path.join(workdir, "checkpoints"))
    flagfile = os.path.join(workdir, "study.flags")
    with open(flagfile, "w") as f:
        f.write("\n".join([*lines, f"--workdir={workdir}", *last]) + "\n")
    command = [sys.executable, "-m", "akd_tf.main", f"--flagfile={flagfile}"]
    log(f"{name}: {' '.join(command)}")
    start = time.perf_counter()
    with open(os.path.join(workdir, "study.log"), "a") as out:
        status = _call(command, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - start
    if status:
        raise SystemExit(f"{name} failed with exit status {status}; see {os.path.join(workdir, 'study.log')}")
    finished = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    record = {"command": " ".join(command), "wall_time_s": elapsed, "cpus": usable_cpus(), "finished_utc": finished,
              "commit": code_commit(), "machine": speed.cpu()}
    if resumed:  # the time of the killed process is not in wall_time_s; the student's epochs all are in metrics
        record["resumed"] = True
    with open(os.path.join(workdir, "study_run.json"), "w") as f:
        json.dump(record, f, indent=2)
    log(f"{name}: done in {elapsed / 60:.1f} min" + (" (resumed)" if resumed else ""))


def _call(command, stdout, stderr):
    """``subprocess.call`` whose command is killed when this process is interrupted (a study stopped with Ctrl-C
    stops its run too; the run resumes from its checkpoint when the study is started again)."""
    with subprocess.Popen(command, stdout=stdout, stderr=stderr) as proc:
        try:
            return proc.wait()
        except BaseException:
            proc.kill()
            raise


def code_commit(root=None):
    """The commit of the checkout this code runs from (a study runs from a checkout pinned at one commit), with
    ``+changes`` when its code differs from it; None outside a git checkout. The study's own tables and plots
    under benchmarks/results are left out: a study rewrites them, which changes none of its runs."""
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)benchmarks/results"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def read_flags(path) -> dict:
    """A flagfile's ``--name=value`` lines as a dict, the last of a repeated flag winning as in absl;
    ``--noname`` as ``name: False`` and ``--name`` as ``name: True``."""
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("--"):
                continue
            name, sep, value = line[2:].partition("=")
            if sep:
                values[name] = value
            elif name.startswith("no"):
                values[name[2:]] = False
            else:
                values[name] = True
    return values


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


def training_time(run):
    """A finished run's training seconds: its student's epochs, each counted once however many processes it took,
    less ``study.paused_s`` where its record has one. Runs recorded while studies still paused their processes to
    time benchmarks alone carry it; their run wall time already leaves it out, and without it their training time
    came out longer than the whole run."""
    return max(0.0, run["student"]["wall_time_s"] - run.get("study", {}).get("paused_s", 0.0))


def mean_std(values):
    """Mean and sample standard deviation (0 for one value)."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
