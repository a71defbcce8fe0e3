"""What phase 1 of Annealing-KD costs on text, against plain fine-tuning of the same student.

    python -m benchmarks.glue_phase1_cost --workdir=runs/glue_sst2_offline

Takes the teacher and student of a finished GLUE run (``teacher.keras``, ``student.keras``, each with its own
tokenizer) and times, on the same training examples and batch size, one pass of:

* ``finetune``: the student's plain training step (cross-entropy on the labels);
* ``akd_cached``: the AKD phase-1 step reading the teacher's logits computed once (the default);
* ``akd_teacher_every_step``: the AKD phase-1 step running the teacher on its own tokens at every step;
* ``cache_logits``: computing the teacher's logits once, for the same examples (the one-off cost).

Reports examples/s (median over ``--repeats``) and the ratios epoch time / fine-tuning epoch time, as
markdown and JSON in ``--output`` (default ``benchmarks/results/glue_phase1_cost.{md,json}``).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from absl import app, flags

from akd_tf.command import command_line

FLAGS = flags.FLAGS


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    flags.DEFINE_string("workdir", None,
                        "A finished GLUE run of akd_tf.main (teacher.keras, student.keras, config.json).",
                        required=True)
    flags.DEFINE_integer("examples", 8192, "Training examples per timed pass.")
    flags.DEFINE_integer("repeats", 3, "Timed passes per variant (the first, untimed pass warms up).")
    flags.DEFINE_string("output", "benchmarks/results/glue_phase1_cost", "Output path without extension.")


def _time_round_robin(fits, repeats):
    """Times each ``fits[name]()`` ``repeats`` times, interleaved so that drifts of machine speed hit every
    variant alike; one untimed call each first (tracing)."""
    for fit in fits.values():
        fit()
    times = {name: [] for name in fits}
    for _ in range(repeats):
        for name, fit in fits.items():
            start = time.perf_counter()
            fit()
            times[name].append(time.perf_counter() - start)
    return times


def main(argv):
    del argv
    from akd_tf import run as run_lib
    from akd_tf.tasks import text as text_task
    from akd_tf import config as config_lib
    from akd_tf.config import Config
    from akd_tf.data import glue
    from akd_tf.methods import labels
    from akd_tf.batch_keys import TEACHER_INPUTS, TEACHER_LOGITS
    from akd_tf.methods import AnnealingKD

    with open(os.path.join(FLAGS.workdir, "config.json")) as f:
        config = Config(**config_lib.upgrade(json.load(f)))
    raw = glue.load(config.dataset, batch_size=config.batch_size, validation_size=config.validation_size,
                    train_size=FLAGS.examples, test_size=1, shuffle_seed=config.seed)
    teacher, teacher_pre = text_task.load_classifier(os.path.join(FLAGS.workdir, "teacher.keras"), "teacher")
    student, student_pre = text_task.load_classifier(os.path.join(FLAGS.workdir, "student.keras"), "student")
    teacher_features, features = raw.features(teacher_pre), raw.features(student_pre)
    steps, n = features.steps_per_epoch, features.num_examples["train"]

    start = time.perf_counter()
    logits = text_task.cache_logits(teacher, teacher_features, verbose=0)
    cache_s = time.perf_counter() - start

    teacher_params = int(teacher.count_params())
    students = {}
    labels.compile_for_labels(student, run_lib.make_optimizer(config), raw.regression)
    students["finetune"] = (student, features)
    for name, extra in (("akd_cached", {TEACHER_LOGITS: logits}),
                        ("akd_teacher_every_step", {TEACHER_INPUTS: {s: a[0] for s, a in teacher_features.arrays.items()}})):
        model = AnnealingKD(teacher=teacher, student=student, max_temperature=config.max_temperature)
        model.compile(optimizer=run_lib.make_optimizer(config))
        students[name] = (model, features.with_inputs(**extra))
    # One student's weights serve every variant: the time of a step does not depend on their values.
    fits = {name: (lambda m=model, d=data: m.fit(d.train_epochs(0, 1), steps_per_epoch=steps, epochs=1, verbose=0))
            for name, (model, data) in students.items()}
    variants = _time_round_robin(fits, FLAGS.repeats)

    finetune = float(np.median(variants["finetune"]))
    rows = {name: {"median_s": float(np.median(t)), "examples_per_s": n / float(np.median(t)),
                   "over_finetune": float(np.median(t)) / finetune, "times_s": t} for name, t in variants.items()}
    result = {
        "command": command_line("benchmarks.glue_phase1_cost"),
        "workdir": FLAGS.workdir, "dataset": config.dataset, "examples": n, "batch_size": config.batch_size,
        "teacher": {"name": teacher.name, "params": teacher_params},
        "student": {"name": student.name, "params": run_lib.count_params(student)},
        "repeats": FLAGS.repeats, "variants": rows,
        "cache_logits": {"seconds": cache_s, "examples_per_s": n / cache_s, "over_finetune_epoch": cache_s / finetune},
    }
    lines = [
        f"Phase-1 cost on {config.dataset}, {n:,} training examples, batch {config.batch_size}: teacher "
        f"{teacher.name} ({result['teacher']['params']:,} params), student {student.name} "
        f"({result['student']['params']:,} params). Median of {FLAGS.repeats} passes.",
        "",
        "| step | examples/s | epoch time / fine-tuning epoch |",
        "|---|---|---|",
        *[f"| {name} | {row['examples_per_s']:,.0f} | {row['over_finetune']:.2f} |" for name, row in rows.items()],
        f"| cache_logits (once, before phase 1) | {n / cache_s:,.0f} | {cache_s / finetune:.2f} |",
        "",
        f"Command: `{result['command']}`",
    ]
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output + ".json", "w") as f:
        json.dump(result, f, indent=2)
    with open(FLAGS.output + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    define_flags()
    app.run(main)
