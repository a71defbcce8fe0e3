"""Where a study that outlives sessions stands: every run found in its directories, finished (test top-1, run
wall time, when it finished) or not (epochs done so far), and the mean over the seeds finished so far per method.
It trains nothing and reads only the run directories, so it can be run (and its output committed) while the
study goes on; the study's own tables (``benchmarks.cifar_study``) come when all its runs have finished.

    python -m benchmarks.study_progress --studies=$HOME/akd_runs/study_long,$HOME/akd_runs/study_mid \\
        --flagfiles=configs/study_long.flags,configs/study_mid.flags --output=benchmarks/results/budget_study_progress

A run is a subdirectory with the ``study.flags`` a study runner wrote (``benchmarks.study_runs``); it has finished
when its ``metrics.json`` and ``study_run.json`` exist. Given each study's flagfile (``--flagfiles``, in the order
of ``--studies``), the runs not started yet are listed too (``--seeds`` x ``--methods`` of the flagfile), a study
not started at all is allowed, and the report says how many student epochs are left and what they take at the
pace of the runs under way. Writes ``<output>.md`` and ``.json``.
"""

from __future__ import annotations

import datetime
import json
import os

from absl import app, flags

from akd_tf.command import command_line
from akd_tf.run import read_history
from benchmarks import attempts, study_runs

FLAGS = flags.FLAGS

METHOD_ORDER = ("scratch", "kd", "takd", "akd")


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define --output."""
    flags.DEFINE_list("studies", None, "Study directories (a study runner's --workdir), in table order.",
                      required=True)
    flags.DEFINE_list("flagfiles", None, "Optional: the flagfile of each study (e.g. configs/study_long.flags), in the "
                      "order of --studies: lists the runs not started yet and the epochs left.")
    flags.DEFINE_string("output", "benchmarks/results/study_progress", "Output path without extension.")


def _when(timestamp):
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _last_epoch_end(directory, history_path):
    """When the run's last epoch ended: its history's last write, unless that came after the run was last alive
    (a heartbeat a minute), which means the file was copied since (the work tree that carries runs between
    sessions gives them the time of the copy); then the last heartbeat, at most an epoch after that end."""
    written, alive = os.path.getmtime(history_path), attempts.last_alive(directory)
    return alive if alive is not None and written > alive + 2 * attempts.HEARTBEAT_S else written


def read_run(directory: str) -> dict:
    """One run's state from its directory."""
    values = study_runs.read_flags(os.path.join(directory, "study.flags"))
    history_path = os.path.join(directory, "history_student.csv")
    history = read_history(history_path)
    run = {"name": os.path.basename(directory), "method": values.get("method", "?"),
           "seed": int(values.get("seed", 0)),
           "epochs": int(values.get("phase1_epochs", 0)) + int(values.get("phase2_epochs", 0)),
           "epochs_done": len(history.get("loss", [])), "finished": False}
    metrics_path, record_path = (os.path.join(directory, name) for name in ("metrics.json", "study_run.json"))
    if os.path.isfile(metrics_path) and os.path.isfile(record_path):
        with open(metrics_path) as f:
            metrics = json.load(f)
        with open(record_path) as f:
            record = json.load(f)
        # Records from before the runner wrote the time down have none: no file's time stands in for it.
        run.update(finished=True, test_top1=100 * metrics["student"]["test_accuracy"],
                   run_wall_time_s=record["wall_time_s"], finished_at=record.get("finished_utc", "—"))
        return run
    run["spent_s"] = attempts.spent(directory)
    if history:
        last_end = _last_epoch_end(directory, history_path)
        run["last_epoch_at"] = _when(last_end)
        recent = _unpaused(history.get("epoch_time_s", []), last_end, study_runs.read_pauses(directory))[-5:]
        if recent:  # the pace of its last epochs (a median: one epoch slowed by a pause does not move it)
            run["epoch_s"] = float(sorted(recent)[len(recent) // 2])
            run["left_h"] = run["epoch_s"] * (run["epochs"] - run["epochs_done"]) / 3600
    return run


def planned_runs(flagfile: str) -> list[dict]:
    """The runs a study's flagfile asks for (its seeds x methods, `benchmarks.cifar_study`'s defaults where it
    sets none), not started."""
    values = study_runs.read_flags(flagfile)
    try:
        epochs = int(values["phase1_epochs"]) + int(values["phase2_epochs"])
    except (KeyError, ValueError):
        raise ValueError(f"{flagfile!r} sets no --phase1_epochs and --phase2_epochs") from None
    seeds = values.get("seeds", ",".join(study_runs.STUDY_SEEDS)).split(",")
    methods = values.get("methods", ",".join(study_runs.STUDY_METHODS)).split(",")
    return [{"name": f"{method}_seed{seed}", "method": method, "seed": int(seed), "epochs": epochs, "epochs_done": 0,
             "finished": False, "started": False} for seed in seeds for method in methods]


def _unpaused(epoch_times, last_end, pauses):
    """The epoch times of those epochs that no pause (`benchmarks.pause_runs`) fell in, or all of them when every
    one was paused. Each epoch's end is counted back from the last one's (`_last_epoch_end`)."""
    if not pauses:
        return list(epoch_times)
    ends, end = [], last_end
    for seconds in reversed(epoch_times):
        ends.append(end)
        end -= seconds
    ends.reverse()
    clean = [seconds for seconds, end in zip(epoch_times, ends)
             if not any(p["start"] < end and p["end"] > end - seconds for p in pauses)]
    return clean or list(epoch_times)


def read_study(directory: str, flagfile: str | None = None) -> dict:
    """A study directory's runs (methods in the study's order, then seeds) and its per-method means so far; with
    the study's flagfile, also the runs it plans that have not started (the directory may not exist yet)."""
    if flagfile is not None and not os.path.isfile(flagfile):
        raise ValueError(f"{flagfile!r} is not a file")
    if not os.path.isdir(directory) and flagfile is None:
        raise ValueError(f"{directory!r} is not a directory")
    names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
    runs = [read_run(os.path.join(directory, name)) for name in names
            if os.path.isfile(os.path.join(directory, name, "study.flags"))]
    if flagfile is not None:
        found = {r["name"] for r in runs}
        runs += [r for r in planned_runs(flagfile) if r["name"] not in found]
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    runs.sort(key=lambda r: (r["seed"], rank.get(r["method"], len(rank)), r["name"]))
    methods = {}
    for run in runs:
        if run["finished"]:
            methods.setdefault(run["method"], []).append(run["test_top1"])
    means = {m: {"seeds": len(v), "test_top1_mean_std": study_runs.mean_std(v)}
             for m, v in sorted(methods.items(), key=lambda item: rank.get(item[0], len(rank)))}
    return {"directory": directory, "label": os.path.basename(os.path.normpath(directory)), "runs": runs,
            "methods": means}


def left(studies: list[dict]) -> dict:
    """The student epochs left and, at the median pace of the runs under way, the hours they take on one lane."""
    runs = [r for s in studies for r in s["runs"] if not r["finished"]]
    epochs = sum(r["epochs"] - r["epochs_done"] for r in runs)
    paces = sorted(r["epoch_s"] for r in runs if "epoch_s" in r)
    pace = paces[len(paces) // 2] if paces else None
    return {"epochs": epochs, "epoch_s": pace, "lane_hours": pace * epochs / 3600 if pace else None}


def table(studies: list[dict], now: str) -> str:
    runs = [r for s in studies for r in s["runs"]]
    done = [r for r in runs if r["finished"]]
    hours = sum(r["run_wall_time_s"] for r in done) / 3600
    spent = sum(r.get("spent_s", 0.0) for r in runs if not r["finished"]) / 3600
    planned = any(not r.get("started", True) for r in runs)
    todo = left(studies)
    if runs and len(done) == len(runs):
        headline = f"Progress at {now} UTC: all {len(runs)} runs have finished ({hours:.1f} h of run wall time)"
    else:
        headline = (f"Progress at {now} UTC: {len(done)} of the {len(runs)} runs "
                    f"{'planned' if planned else 'started'} have finished ({hours:.1f} h of run wall time; the "
                    f"others have spent {spent:.1f} h so far); {todo['epochs']} student epochs left")
    if todo["lane_hours"] is not None and todo["epochs"]:
        headline += (f", ~{todo['lane_hours']:.1f} h of one lane at {todo['epoch_s']:.0f} s per epoch (the median "
                     f"pace of the runs under way; ~{todo['lane_hours'] / 2:.1f} h with two lanes)")
    lines = [headline + ".", "",
             "| study | run | epochs | test top-1 % | run min | finished (UTC) |", "|---|---|---|---|---|---|"]
    for study in studies:
        for r in study["runs"]:
            if r["finished"]:
                lines.append(f"| {study['label']} | {r['name']} | {r['epochs']} | {r['test_top1']:.2f} "
                             f"| {r['run_wall_time_s'] / 60:.1f} | {r['finished_at']} |")
            else:
                pace = f"; {r['epoch_s']:.0f} s per epoch, ~{r['left_h']:.1f} h left" if "epoch_s" in r else ""
                state = (f"{r['epochs_done']} of {r['epochs']} done (last {r['last_epoch_at']}{pace})"
                         if r["epochs_done"] else f"0 of {r['epochs']} done"
                         + ("" if r.get("started", True) else " (not started)"))
                lines.append(f"| {study['label']} | {r['name']} | {state} | — | — | not yet |")
    lines += ["", "Mean over the seeds finished so far (± sample std when there are two or more):", "",
              "| study | method | seeds finished | test top-1 %, mean ± std |", "|---|---|---|---|"]
    for study in studies:
        for method, m in study["methods"].items():
            mean, std = m["test_top1_mean_std"]
            spread = f" ± {std:.2f}" if m["seeds"] > 1 else ""
            lines.append(f"| {study['label']} | {method} | {m['seeds']} | {mean:.2f}{spread} |")
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    flagfiles = FLAGS.flagfiles or [None] * len(FLAGS.studies)
    if len(flagfiles) != len(FLAGS.studies):
        raise app.UsageError(f"--flagfiles needs one flagfile per study: {len(FLAGS.studies)} studies, received "
                             f"{len(flagfiles)} flagfiles")
    try:
        studies = [read_study(directory, flagfile) for directory, flagfile in zip(FLAGS.studies, flagfiles)]
    except ValueError as error:
        raise app.UsageError(f"--studies/--flagfiles: {error}") from None
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    text = table(studies, now) + "\n\nCommand: `" + command_line("benchmarks.study_progress") + "`\n"
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output + ".md", "w") as f:
        f.write(text)
    with open(FLAGS.output + ".json", "w") as f:
        json.dump({"generated_utc": now, "left": left(studies), "studies": studies}, f, indent=2)
    print(text)


if __name__ == "__main__":
    define_flags()
    app.run(main)
