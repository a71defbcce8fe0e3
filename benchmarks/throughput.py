"""Training throughput on real CIFAR-10, same data, same global batch: (a) the student's plain step as this
project trains it (BatchNorms on the fused kernel, `akd_tf.nets.fused_batchnorm`) and (a') with Keras' own BatchNorm,
(b) the teacher's inference as this project runs it (BatchNorms folded, `akd_tf.nets.fold`) and (b') unfolded,
(c) the AKD phase-1 step with the teacher in the loop, (d) the AKD phase-1 step on cached teacher views
(``--teacher_views``), (e) a Hinton-KD step written the way the keras.io distillation example writes it
(`KerasIoDistiller`).

    python -m benchmarks.throughput --images=2048 --repeats=5

Each round times one epoch of each step back to back (the first round only traces); figures are medians
over ``repeats`` rounds, and ratios are medians of the per-round ratios. ``bound`` = 1 / (1/a + 1/b) is what
a phase-1 step costs if it is exactly a student step plus a teacher forward pass. Computing the cached views
(one teacher pass per view, before phase 1) is not part of (d); the study's logs give its one-off cost.
Weights are random: speed does not depend on them.
"""

from absl import app, flags

from akd_tf.command import command_line
from benchmarks import speed

FLAGS = flags.FLAGS


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    speed.define_flags(images=2048, repeats=5, output="benchmarks/results/throughput")  # .json and .md


STEPS = {
    "student_train": "(a) {student} training, cross-entropy",
    "student_train_keras_batchnorm": "(a') {student} training, Keras BatchNorm (not fused)",
    "teacher_inference": "(b) {teacher} inference",
    "teacher_inference_unfolded": "(b') {teacher} inference, BatchNorm not folded",
    "akd_phase1": "(c) AKD phase 1, teacher in the loop",
    "akd_phase1_views": "(d) AKD phase 1, cached teacher views",
    "keras_io_kd": "(e) Hinton KD, keras.io-example step",
}


def keras_io_distiller():
    """The ``Distiller`` of the keras.io example "Knowledge Distillation" (Keras 3 version), as written
    there: the teacher runs inside ``compute_loss``, i.e. under the gradient tape, and the losses are
    ``keras.losses`` objects. One change: the caller freezes the teacher, which the example does not
    (without it Keras would also back-propagate into the teacher and update it, a slower and wrong step)."""
    import keras
    from keras import ops

    class KerasIoDistiller(keras.Model):
        def __init__(self, student, teacher):
            super().__init__()
            self.teacher = teacher
            self.student = student

        def compile(self, optimizer, metrics, student_loss_fn, distillation_loss_fn, alpha=0.1, temperature=3):
            super().compile(optimizer=optimizer, metrics=metrics)
            self.student_loss_fn = student_loss_fn
            self.distillation_loss_fn = distillation_loss_fn
            self.alpha = alpha
            self.temperature = temperature

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, allow_empty=False):
            teacher_pred = self.teacher(x, training=False)
            student_loss = self.student_loss_fn(y, y_pred)
            distillation_loss = self.distillation_loss_fn(
                ops.softmax(teacher_pred / self.temperature, axis=1),
                ops.softmax(y_pred / self.temperature, axis=1),
            ) * (self.temperature**2)
            return self.alpha * student_loss + (1 - self.alpha) * distillation_loss

        def call(self, x):
            return self.student(x)

    return KerasIoDistiller


def main(argv):
    del argv
    import keras
    import numpy as np

    from akd_tf import nets

    splits = speed.load_images()
    n = splits.num_examples["train"]

    steps, teacher = speed.project_steps(splits, FLAGS.teacher_net, FLAGS.student_net)
    kd = keras_io_distiller()(student=nets.build(FLAGS.student_net, weight_decay=1e-4), teacher=teacher)
    teacher.trainable = False  # AnnealingKD did this already; stated again because the example does not
    kd.compile(optimizer=speed.sgd(),
               metrics=[keras.metrics.SparseCategoricalAccuracy()],
               student_loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
               distillation_loss_fn=keras.losses.KLDivergence(), alpha=0.1, temperature=10)
    steps["keras_io_kd"] = lambda: kd.fit(splits.train, epochs=1, verbose=0)
    # What folding the teacher's BatchNorms (akd_tf.nets.fold, used by (b), (c) and the views of (d)) buys.
    steps["teacher_inference_unfolded"] = lambda: teacher.predict(splits.train, verbose=0)
    # What the fused BatchNorm kernel (akd_tf.nets.fused_batchnorm, used by (a), (c) and (d)) buys.
    plain_student = speed.compiled_student(FLAGS.student_net)
    steps["student_train_keras_batchnorm"] = lambda: plain_student.fit(splits.train, epochs=1, verbose=0)
    steps[speed.REFERENCE] = speed.host_reference()
    seconds = speed.interleaved(steps, FLAGS.repeats, n)
    reference = seconds.pop(speed.REFERENCE)
    rates = {name: n / np.array(times) for name, times in seconds.items()}
    # The fastest epoch of each step is the one least disturbed by the host (timeit's advice: take the min).
    fastest = {name: float(r.max()) for name, r in rates.items()}

    def bound(r):
        return 1.0 / (1.0 / r["student_train"] + 1.0 / r["teacher_inference"])

    # name: (numerator, denominator, goal, label); per-round ratios, then their median.
    ratios = {
        "akd_phase1_over_bound": ("akd_phase1", bound, 0.9, "(c) / bound"),
        "views_over_student": ("akd_phase1_views", "student_train", 0.8, "(d) / (a)"),
        "akd_phase1_over_keras_io_kd": ("akd_phase1", "keras_io_kd", 1.0, "(c) / (e)"),
        "folded_over_unfolded": ("teacher_inference", "teacher_inference_unfolded", None, "(b) / (b')"),
        "fused_over_keras_batchnorm": ("student_train", "student_train_keras_batchnorm", None, "(a) / (a')"),
    }
    report_ratios = {}
    for key, (num, den, target, label) in ratios.items():
        per_round = rates[num] / (den(rates) if callable(den) else rates[den])
        at_fastest = fastest[num] / (den(fastest) if callable(den) else fastest[den])
        median = float(np.median(per_round))
        report_ratios[key] = {"label": label, "median": median, "per_round": [float(v) for v in per_round],
                              "fastest": at_fastest, "target": target,
                              "met": None if target is None else median >= target}
    medians = {name: float(np.median(r)) for name, r in rates.items()}
    report = {
        "command": command_line("benchmarks.throughput", [FLAGS[k].serialize() for k in (
            "images", "batch_size", "repeats", "teacher_net", "student_net")]),
        "machine": speed.machine(),
        "images_per_second": medians,
        "epoch_seconds": {k: [float(t) for t in v] for k, v in seconds.items()},
        # A step whose rounds fall into a fast and a slow cluster ran at two speeds (benchmarks.speed.two_speeds).
        "two_speeds": {k: speed.two_speeds(v) for k, v in seconds.items()},
        "bound_images_per_second": float(np.median(bound(rates))),
        "fastest_images_per_second": fastest,
        "fastest_bound_images_per_second": float(bound(fastest)),
        "ratios": report_ratios,
        "host_reference": {"epoch_seconds": [float(t) for t in reference],
                           "median_over_fastest": speed.steadiness(reference)},
    }
    names = {k: v.format(student=FLAGS.student_net, teacher=FLAGS.teacher_net) for k, v in STEPS.items()}
    lines = [
        f"Throughput, CIFAR-10, batch {FLAGS.batch_size}, {n} images, median of {FLAGS.repeats} interleaved rounds",
        "",
        "| step | images/s, median | images/s, fastest epoch | median / fastest | epoch seconds | two speeds |",
        "|---|---|---|---|---|---|",
        *(f"| {names[k]} | {medians[k]:.0f} | {fastest[k]:.0f} | {medians[k] / fastest[k]:.2f} | "
          f"{', '.join(f'{t:.2f}' for t in seconds[k])} | {'**yes**' if report['two_speeds'][k] else 'no'} |"
          for k in STEPS),
        f"| bound 1/(1/a + 1/b) | {report['bound_images_per_second']:.0f} | "
        f"{report['fastest_bound_images_per_second']:.0f} | | | |",
        "",
        "| ratio | median of rounds | fastest epochs | goal | met |",
        "|---|---|---|---|---|",
        *(f"| {r['label']} | {r['median']:.2f} | {r['fastest']:.2f} | "
          + (f">= {r['target']:.1f} | {'yes' if r['met'] else 'no'} |" if r["target"] is not None else "| |")
          for r in report_ratios.values()),
        "",
        "Medians: of the per-round figures and ratios. two speeds: the step's rounds split into a fast and a slow",
        f"cluster (slowest / fastest > {speed.TWO_SPEEDS_RATIO} with a gap; benchmarks.speed.two_speeds). (e) freezes",
        "the teacher (the keras.io example does not, and would also train it).",
        "",
        speed.reference_line(reference),
    ]
    speed.write(FLAGS.output, report, lines)


if __name__ == "__main__":
    define_flags()
    app.run(main)
