"""Where a study that outlives sessions stands: every run found in its directories, finished (test top-1, run
wall time, when it finished) or not (epochs done so far), and the mean over the seeds finished so far per method.
It trains nothing and reads only the run directories, so it can be run (and its output committed) while the
study goes on; the study's own tables (``benchmarks.cifar_study``) come when all its runs have finished.

    python -m benchmarks.study_progress --studies=$HOME/akd_runs/study_short,$HOME/akd_runs/study_mid,\\
        $HOME/akd_runs/study_long,$HOME/akd_runs/study_short_phase2_lr0.01 \\
        --output=benchmarks/results/budget_study_progress

A run is a subdirectory with the ``study.flags`` a study runner wrote (``benchmarks.study_runs``); it has finished
when its ``metrics.json`` and ``study_run.json`` exist. Writes ``<output>.md`` and ``.json``.
"""

from __future__ import annotations

import datetime
import json
import os
import sys

from absl import app, flags

from akd_tf.run import read_history
from benchmarks import study_runs

FLAGS = flags.FLAGS

METHOD_ORDER = ("scratch", "kd", "takd", "akd")


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define --output."""
    flags.DEFINE_list("studies", None, "Study directories (a study runner's --workdir), in table order.",
                      required=True)
    flags.DEFINE_string("output", "benchmarks/results/study_progress", "Output path without extension.")


def _when(path):
    return datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


def read_run(directory: str) -> dict:
    """One run's state from its directory."""
    values = study_runs.read_flags(os.path.join(directory, "study.flags"))
    history = read_history(os.path.join(directory, "history_student.csv"))
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
        run.update(finished=True, test_top1=100 * metrics["student"]["test_accuracy"],
                   run_wall_time_s=record["wall_time_s"], finished_at=_when(metrics_path))
    elif history:
        run["last_epoch_at"] = _when(os.path.join(directory, "history_student.csv"))
        recent = history.get("epoch_time_s", [])[-5:]
        if recent:  # the pace of its last epochs (a median: one epoch slowed by a pause does not move it)
            run["epoch_s"] = float(sorted(recent)[len(recent) // 2])
            run["left_h"] = run["epoch_s"] * (run["epochs"] - run["epochs_done"]) / 3600
    return run


def read_study(directory: str) -> dict:
    """A study directory's runs (methods in the study's order, then seeds) and its per-method means so far."""
    if not os.path.isdir(directory):
        raise ValueError(f"{directory!r} is not a directory")
    runs = [read_run(os.path.join(directory, name)) for name in sorted(os.listdir(directory))
            if os.path.isfile(os.path.join(directory, name, "study.flags"))]
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


def table(studies: list[dict], now: str) -> str:
    runs = [r for s in studies for r in s["runs"]]
    done = [r for r in runs if r["finished"]]
    hours = sum(r["run_wall_time_s"] for r in done) / 3600
    lines = [f"Progress at {now} UTC: {len(done)} of the {len(runs)} runs started have finished "
             f"({hours:.1f} h of run wall time).", "",
             "| study | run | epochs | test top-1 % | run min | finished (UTC) |", "|---|---|---|---|---|---|"]
    for study in studies:
        for r in study["runs"]:
            if r["finished"]:
                lines.append(f"| {study['label']} | {r['name']} | {r['epochs']} | {r['test_top1']:.2f} "
                             f"| {r['run_wall_time_s'] / 60:.1f} | {r['finished_at']} |")
            else:
                pace = f"; {r['epoch_s']:.0f} s per epoch, ~{r['left_h']:.1f} h left" if "epoch_s" in r else ""
                state = (f"{r['epochs_done']} of {r['epochs']} done (last {r['last_epoch_at']}{pace})"
                         if r["epochs_done"] else f"0 of {r['epochs']} done")
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
    try:
        studies = [read_study(directory) for directory in FLAGS.studies]
    except ValueError as error:
        raise app.UsageError(f"--studies: {error}") from None
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    text = table(studies, now) + "\n\nCommand: `python -m benchmarks.study_progress " + " ".join(sys.argv[1:]) + "`\n"
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output + ".md", "w") as f:
        f.write(text)
    with open(FLAGS.output + ".json", "w") as f:
        json.dump({"generated_utc": now, "studies": studies}, f, indent=2)
    print(text)


if __name__ == "__main__":
    define_flags()
    app.run(main)
