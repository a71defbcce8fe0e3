"""Training throughput on real CIFAR-10: the student's plain step, the teacher's inference, and the AKD
phase-1 step (teacher in the loop), same data, same global batch.

    python -m benchmarks.throughput --images=2048 --repeats=3

Each round times one epoch of each step back to back (the first round only traces); figures are medians
over ``repeats`` rounds, and ratios are medians of the per-round ratios. ``bound`` = 1 / (1/student + 1/teacher) is what a phase-1 step costs if it is exactly a student
step plus a teacher forward pass. Weights are random: speed does not depend on them.
"""

import json
import os
import platform
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("images", 2048, "Training images per timed epoch.")
flags.DEFINE_integer("batch_size", 128, "Global batch size.")
flags.DEFINE_integer("repeats", 3, "Timed epochs per measurement.")
flags.DEFINE_string("teacher_net", "resnet110", "Teacher network.")
flags.DEFINE_string("student_net", "resnet8", "Student network.")
flags.DEFINE_string("data_dir", None, "TFDS data directory (default: $TFDS_DATA_DIR).")
flags.DEFINE_string("output", "benchmarks/results/throughput", "Output path prefix (.json and .md).")


def _timed(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(argv):
    del argv
    import keras
    import numpy as np

    import akd_tf
    from akd_tf import data as data_lib
    from akd_tf import nets

    splits = data_lib.load("cifar10", batch_size=FLAGS.batch_size, data_dir=FLAGS.data_dir, validation_size=0,
                           train_size=FLAGS.images, test_size=FLAGS.batch_size)
    n = splits.num_examples["train"]

    keras.utils.set_random_seed(0)
    student = nets.build(FLAGS.student_net, weight_decay=1e-4)
    student.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                    keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    teacher = nets.build(FLAGS.teacher_net, weight_decay=1e-4)
    akd = akd_tf.AnnealingKD(teacher=teacher, student=nets.build(FLAGS.student_net, weight_decay=1e-4),
                             max_temperature=10)
    akd.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    steps = {
        "student_train": lambda: student.fit(splits.train, epochs=1, verbose=0),
        "teacher_inference": lambda: teacher.predict(splits.train, verbose=0),
        "akd_phase1": lambda: akd.fit(splits.train, epochs=1, verbose=0),
    }
    # Interleaved rounds: this VM's speed drifts (seen: identical epochs 1.8x apart), so (a), (b) and (c)
    # are timed back to back in every round and the ratios are taken within a round.
    seconds = {name: [] for name in steps}
    for round_ in range(FLAGS.repeats + 1):
        for name, run in steps.items():
            elapsed = _timed(run)
            if round_:  # round 0 traces the functions and fills the cache
                seconds[name].append(elapsed)
        print(f"round {round_}/{FLAGS.repeats}: " + ", ".join(
            f"{name} {n / seconds[name][-1]:.0f} img/s" for name in steps if round_) if round_ else "warm-up done",
            flush=True)
    rates = {name: n / np.array(times) for name, times in seconds.items()}
    bounds = 1.0 / (1.0 / rates["student_train"] + 1.0 / rates["teacher_inference"])
    results = {name: (float(np.median(r)), [float(t) for t in seconds[name]]) for name, r in rates.items()}

    a, b, c = (results[k][0] for k in ("student_train", "teacher_inference", "akd_phase1"))
    bound = float(np.median(bounds))
    over_bound = float(np.median(rates["akd_phase1"] / bounds))
    over_student = float(np.median(rates["akd_phase1"] / rates["student_train"]))
    # The fastest epoch of each step is the one least disturbed by the host (timeit's advice: take the min).
    fastest = {name: float(r.max()) for name, r in rates.items()}
    fastest_bound = 1.0 / (1.0 / fastest["student_train"] + 1.0 / fastest["teacher_inference"])
    report = {
        "command": "python -m benchmarks.throughput " + " ".join(
            f"--{k}={FLAGS[k].value}" for k in ("images", "batch_size", "repeats", "teacher_net", "student_net")),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "images_per_second": {k: v[0] for k, v in results.items()},
        "epoch_seconds": {k: v[1] for k, v in results.items()},
        "bound_images_per_second": bound,
        "akd_phase1_over_bound": over_bound,
        "akd_phase1_over_student": over_student,
        "fastest_images_per_second": fastest,
        "fastest_bound_images_per_second": fastest_bound,
        "fastest_akd_phase1_over_bound": fastest["akd_phase1"] / fastest_bound,
        "fastest_akd_phase1_over_student": fastest["akd_phase1"] / fastest["student_train"],
    }
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output + ".json", "w") as f:
        json.dump(report, f, indent=2)
    table = "\n".join([
        f"Throughput, CIFAR-10, batch {FLAGS.batch_size}, {n} images, median of {FLAGS.repeats} interleaved rounds, "
        f"{os.cpu_count()} CPU cores",
        "",
        "| step | images/s, median | images/s, fastest epoch |",
        "|---|---|---|",
        f"| (a) {FLAGS.student_net} training, cross-entropy | {a:.0f} | {fastest['student_train']:.0f} |",
        f"| (b) {FLAGS.teacher_net} inference | {b:.0f} | {fastest['teacher_inference']:.0f} |",
        f"| (c) AKD phase 1, teacher in the loop | {c:.0f} | {fastest['akd_phase1']:.0f} |",
        f"| bound 1/(1/a + 1/b) | {bound:.0f} | {fastest_bound:.0f} |",
        f"| (c) / bound | {over_bound:.2f} | {fastest['akd_phase1'] / fastest_bound:.2f} |",
        f"| (c) / (a) | {over_student:.2f} | {fastest['akd_phase1'] / fastest['student_train']:.2f} |",
        "",
        "Medians: of the per-round figures and ratios. This VM switches between two speeds about 1.8x apart",
        "within seconds; the fastest epoch of each step is the least disturbed estimate.",
        "",
        f"Command: `{report['command']}`",
    ])
    with open(FLAGS.output + ".md", "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    app.run(main)
