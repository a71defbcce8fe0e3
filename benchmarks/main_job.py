"""The main job (``configs/cifar10.flags``) measured, not estimated: each stage run for a few real epochs on the
real 45,000-image split through the command line itself, its seconds per epoch read from the runs' histories (an
epoch with its validation pass), and the whole job's time from them.

    TFDS_DATA_DIR=../shared/tensorflow_datasets python -m benchmarks.main_job --workdir=$HOME/akd_runs/main_job \\
        --output=benchmarks/results/main_job_time

Two runs of ``akd_tf.main --flagfile=configs/cifar10.flags`` with fewer epochs (the cost of an epoch does not depend
on how many there are): (1) the recipe: the ResNet-110 teacher trained here, then the student, phase 1 with the
teacher in the loop, then phase 2; (2) the cheaper path: the teacher of (1) given (``--teacher``) with its logits of
``--views`` augmented views cached (``--teacher_views``), then phase 1 on them. A stage's first epoch carries one-off
costs (tracing its step): a stage's figure is the median of its later epochs, or its only epoch, marked as an upper
bound. Writes ``<output>.json`` and ``.md``: per stage, the epochs timed, seconds per epoch and images/s, and the
recipe's total, with the machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
from absl import app, flags

from akd_tf.command import command_line
from akd_tf.config import Config
from akd_tf.workdir import read_history

FLAGS = flags.FLAGS
FLAGFILE = "configs/cifar10.flags"
TRAIN_IMAGES = 45000
# The recipe's epochs per stage (`Config`'s defaults are the recipe), which the measured epochs are multiplied by.
RECIPE = {"teacher": Config.teacher_epochs, "phase1": Config.phase1_epochs, "phase2": Config.phase2_epochs}
VIEWS_IN_RECIPE = 8  # the cheaper path as docs/reproducing.md gives it (--teacher_views=8)
_VIEWS_LINE = re.compile(r"Teacher views of student: \(\d+, \d+, \d+\) in ([\d.]+) s")


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    flags.DEFINE_string("workdir", None, "Where the two runs write (outside the repository).", required=True)
    flags.DEFINE_string("output", "benchmarks/results/main_job_time", "Output path without extension.")
    flags.DEFINE_integer("teacher_epochs", 1, "Teacher epochs timed.")
    flags.DEFINE_integer("phase1_epochs", 2, "Phase-1 epochs timed in each run.")
    flags.DEFINE_integer("phase2_epochs", 2, "Phase-2 epochs timed.")
    flags.DEFINE_integer("views", 1, "Teacher views cached in the second run (their time is reported per view).")


def _run(workdir, extra):
    """``akd_tf.main`` on the main job's flagfile with ``extra`` flags; its output (log lines included)."""
    command = [sys.executable, "-m", "akd_tf.main", f"--flagfile={FLAGFILE}", f"--workdir={workdir}", "--verbose=2",
               *extra]
    print(" ".join(command), flush=True)
    proc = subprocess.run(command, capture_output=True, text=True)
    with open(os.path.join(workdir, "benchmark.log"), "w") as f:
        f.write(proc.stdout + proc.stderr)
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def stage_figure(seconds):
    """A stage's seconds per epoch: the median of its epochs after the first, or its only epoch (an upper bound:
    the first carries the step's tracing)."""
    seconds = [float(s) for s in seconds]
    if not seconds:
        raise ValueError("a stage with no timed epoch")
    later = seconds[1:]
    return {"epoch_seconds": seconds, "seconds_per_epoch": float(np.median(later)) if later else seconds[0],
            "upper_bound": not later}


def student_phases(history):
    """Epoch seconds of each phase of a student's history (its ``phase`` column: 1, 2)."""
    phases = {}
    for phase, seconds in zip(history["phase"], history["epoch_time_s"]):
        phases.setdefault(f"phase{int(phase)}", []).append(seconds)
    return phases


def total_hours(stages, views_seconds=None):
    """The recipe's hours from per-epoch figures: teacher, phase 1 and phase 2 epochs as `RECIPE` has them."""
    hours = {name: RECIPE[name.split("_")[0]] * stages[name]["seconds_per_epoch"] / 3600 for name in stages}
    if views_seconds is not None:
        hours["views"] = VIEWS_IN_RECIPE * views_seconds / 3600
    return hours


def main(argv):
    del argv
    from akd_tf import machine

    full, cached = os.path.join(FLAGS.workdir, "recipe"), os.path.join(FLAGS.workdir, "cached_views")
    for path in (full, cached):
        os.makedirs(path, exist_ok=True)
    epochs = [f"--phase1_epochs={FLAGS.phase1_epochs}", f"--max_temperature={FLAGS.phase1_epochs}",
              f"--phase2_epochs={FLAGS.phase2_epochs}"]
    _run(full, [f"--teacher_epochs={FLAGS.teacher_epochs}", *epochs])
    output = _run(cached, [f"--teacher={os.path.join(full, 'teacher.keras')}", f"--teacher_views={FLAGS.views}",
                           f"--phase1_epochs={FLAGS.phase1_epochs}", f"--max_temperature={FLAGS.phase1_epochs}",
                           "--phase2_epochs=1"])
    match = _VIEWS_LINE.search(output)
    view_seconds = float(match.group(1)) / FLAGS.views if match else None

    teacher = read_history(os.path.join(full, "history_teacher.csv"))
    phases = student_phases(read_history(os.path.join(full, "history_student.csv")))
    cached_phases = student_phases(read_history(os.path.join(cached, "history_student.csv")))
    stages = {"teacher": stage_figure(teacher["epoch_time_s"]), "phase1": stage_figure(phases["phase1"]),
              "phase2": stage_figure(phases["phase2"]), "phase1_cached": stage_figure(cached_phases["phase1"])}
    for figure in stages.values():
        figure["images_per_second"] = TRAIN_IMAGES / figure["seconds_per_epoch"]
    recipe = total_hours({k: stages[k] for k in ("teacher", "phase1", "phase2")})
    cheaper = total_hours({"phase1_cached": stages["phase1_cached"], "phase2": stages["phase2"]}, view_seconds)
    report = {
        "command": command_line("benchmarks.main_job", [FLAGS[k].serialize() for k in (
            "workdir", "output", "teacher_epochs", "phase1_epochs", "phase2_epochs", "views")]),
        "machine": machine.machine(), "flagfile": FLAGFILE, "train_images": TRAIN_IMAGES, "stages": stages,
        "seconds_per_view": view_seconds, "recipe_hours": recipe, "recipe_total_hours": sum(recipe.values()),
        "given_teacher_cached_views_hours": cheaper, "given_teacher_cached_views_total_hours": sum(cheaper.values()),
    }
    names = {"teacher": "ResNet-110 teacher", "phase1": "AKD phase 1, teacher in the loop",
             "phase2": "AKD phase 2", "phase1_cached": "AKD phase 1, cached teacher views"}
    lines = [f"# The main job measured: `{FLAGFILE}`, the real {TRAIN_IMAGES:,}-image split", "",
             "| stage | epochs timed (s, with validation) | s per epoch | training images / s per epoch | recipe epochs | hours |",
             "|---|---|---|---|---|---|"]
    for key, figure in stages.items():
        hours = {**recipe, **cheaper}[key]
        lines.append(f"| {names[key]} | {', '.join(f'{s:.0f}' for s in figure['epoch_seconds'])} | "
                     f"{'≤ ' if figure['upper_bound'] else ''}{figure['seconds_per_epoch']:.0f} | "
                     f"{'≥ ' if figure['upper_bound'] else ''}{figure['images_per_second']:.0f} | "
                     f"{RECIPE[key.split('_')[0]]} | {hours:.1f} |")
    lines += ["", f"The recipe (teacher trained here, phase 1 with the teacher in the loop): "
              f"**{report['recipe_total_hours']:.0f} h**. A given teacher with {VIEWS_IN_RECIPE} cached views: "
              + (f"{VIEWS_IN_RECIPE} views × {view_seconds:.0f} s, then phases 1 and 2: "
                 if view_seconds else "")
              + f"**{report['given_teacher_cached_views_total_hours']:.1f} h**. A stage's figure is the median of its "
              "epochs after the first (the first traces the step); ≤ marks a stage timed on one epoch only."]
    from benchmarks import speed

    speed.write(FLAGS.output, report, lines)


if __name__ == "__main__":
    define_flags()
    app.run(main)
