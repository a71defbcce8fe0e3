"""`keras.distillation.Distiller`, the distiller a Keras user finds in Keras itself, against this project's `HintonKD`:
the loss and gradients of one step from the same weights, on the shipped ResNet-56 teacher and a ResNet-8 student.

    TFDS_DATA_DIR=../shared/tensorflow_datasets python -m benchmarks.keras_distillation_peer \\
        --output=benchmarks/results/keras_distillation_peer

Hinton KD at temperature T with label weight 1 − α (α = 0.9, T = 4: the paper's baseline):

    L = (1 − α) · CE(y, z_s) + α · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T))

`HintonKD(temperature=4, alpha=0.9)` is that. `Distiller(..., LogitsDistillation(temperature=4),
student_loss_weight=0.1)` weights the same two terms (its ``student_loss_weight`` is our 1 − α), but its default
``loss="kl_divergence"`` is turned into the *function* ``keras.losses.kl_divergence``, so the branch of
`LogitsDistillation.compute_loss` that takes softmaxes and multiplies by T² (taken for a ``KLDivergence`` *instance*)
is not: the soft term is ``kl_divergence(z_t / T, z_s / T)`` on the scaled logits, clipped to [ε, 1]. This script
computes each loss three ways (the distiller's, the closed form, and this project's), and the gradients of the
matched configuration (``loss=keras.losses.KLDivergence()``) against `HintonKD`'s.
"""

from __future__ import annotations

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
TEACHER = "benchmarks/teachers/resnet56_cifar10.keras"


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    flags.DEFINE_string("output", "benchmarks/results/keras_distillation_peer", "Output path without extension.")
    flags.DEFINE_integer("examples", 64, "CIFAR-10 training images in the one batch.")
    flags.DEFINE_float("temperature", 4.0, "T.")
    flags.DEFINE_float("alpha", 0.9, "The soft term's weight (HintonKD's alpha; Keras' student_loss_weight = 1 - alpha).")


def batch(examples, data_dir=None):
    """``examples`` CIFAR-10 training images, normalised as the project's CIFAR pipeline does, and their labels."""
    from akd_tf import data as data_lib

    splits = data_lib.load("cifar10", batch_size=examples, data_dir=data_dir, train_size=examples,
                           validation_size=5000, test_size=1)
    x, y = next(iter(splits.validation))
    return np.asarray(x), np.asarray(y)


def one_step(teacher, student, x, y, temperature, alpha):
    """``{configuration: (loss, gradients)}`` of one step from ``student``'s current weights (its BatchNorms in
    training mode, the teacher in inference mode), and the closed forms of the two soft terms."""
    import keras
    import tensorflow as tf
    from keras import distillation

    from akd_tf import HintonKD
    from export.pipeline import softmax

    label = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    ours = HintonKD(teacher, student, temperature=temperature, alpha=alpha)
    peers = {
        "keras_default_kl": distillation.Distiller(teacher, student, distillation.LogitsDistillation(temperature),
                                                   student_loss_weight=1 - alpha),
        "keras_kl_instance": distillation.Distiller(
            teacher, student, distillation.LogitsDistillation(temperature, loss=keras.losses.KLDivergence()),
            student_loss_weight=1 - alpha),
    }
    for peer in peers.values():
        peer.compile(optimizer="sgd", loss=label)
    weights = student.get_weights()
    teacher_logits = teacher(x, training=False)
    results = {}
    for name in ("akd_tf_hinton_kd", *peers):
        student.set_weights(weights)  # BatchNorm statistics too: every configuration starts from the same state
        with tf.GradientTape() as tape:
            logits = student(x, training=True)
            if name == "akd_tf_hinton_kd":
                loss = tf.reduce_mean(ours.per_example_loss(y, logits, teacher_logits))
            else:
                loss = peers[name].compute_loss(x=x, y=y, y_pred=logits, training=True)
        results[name] = (float(loss), [g.numpy() for g in tape.gradient(loss, student.trainable_variables)])
    student.set_weights(weights)
    z_s, z_t = np.asarray(student(x, training=True), np.float64), np.asarray(teacher_logits, np.float64)
    ce = float(np.mean(label(y, z_s)))

    p_t, p_s = softmax(z_t / temperature), softmax(z_s / temperature)
    kl = float(np.mean(np.sum(p_t * np.log(p_t / p_s), -1)))
    eps = keras.backend.epsilon()
    a, b = np.clip(z_t / temperature, eps, 1), np.clip(z_s / temperature, eps, 1)
    logit_kl = float(np.mean(np.sum(a * np.log(a / b), -1)))
    closed = {"akd_tf_hinton_kd": (1 - alpha) * ce + alpha * temperature**2 * kl,
              "keras_kl_instance": (1 - alpha) * ce + alpha * temperature**2 * kl,
              "keras_default_kl": (1 - alpha) * ce + alpha * logit_kl}
    return results, closed, {"cross_entropy": ce, "kl_softmax": kl, "kl_on_clipped_logits": logit_kl}


CANNOT = [
    ("a temperature or weight that changes during training (AKD's T per epoch, CKD's ψ ramp)",
     "fixed numbers, set in the constructor; no schedule callback"),
    ("a loss on the teacher's logits alone, scaled by Φ(T) (AKD phase 1, MSE)",
     "LogitsDistillation applies T to both logits and a loss between them; no target scaling"),
    ("the teacher's outputs cached once (per augmented view) instead of run every step",
     "the teacher runs inside compute_loss at every step"),
    ("a two-phase run that drops the teacher for its second phase and restarts the learning rate",
     "one loss for the whole fit"),
]


def main(argv):
    del argv
    import keras

    from akd_tf import machine, nets
    from akd_tf.command import command_line
    from benchmarks import speed

    keras.utils.set_random_seed(0)
    teacher = keras.models.load_model(TEACHER)
    teacher.trainable = False
    student = nets.build("resnet8", 10, (32, 32, 3))
    x, y = batch(FLAGS.examples)
    results, closed, parts = one_step(teacher, student, x, y, FLAGS.temperature, FLAGS.alpha)
    ours = results["akd_tf_hinton_kd"][1]
    rows = []
    for name, (loss, gradients) in results.items():
        diff = max(float(np.max(np.abs(g - o))) for g, o in zip(gradients, ours))
        scale = max(float(np.max(np.abs(o))) for o in ours)
        rows.append({"configuration": name, "loss": loss, "closed_form": closed[name],
                     "max_abs_gradient_diff_vs_hinton_kd": diff})
    report_scale = scale
    report = {"command": command_line("benchmarks.keras_distillation_peer"), "machine": machine.machine(),
              "keras": keras.__version__, "teacher": TEACHER, "student": "resnet8 (random weights, seed 0)",
              "examples": FLAGS.examples, "temperature": FLAGS.temperature, "alpha": FLAGS.alpha, "terms": parts,
              "largest_hinton_kd_gradient": report_scale,
              "rows": rows, "keras_distillation_cannot": [{"what": w, "why": why} for w, why in CANNOT]}
    titles = {"akd_tf_hinton_kd": f"`akd_tf.HintonKD(temperature={FLAGS.temperature:g}, alpha={FLAGS.alpha:g})`",
              "keras_default_kl": f"`keras.distillation.Distiller(LogitsDistillation({FLAGS.temperature:g}), "
                                  f"student_loss_weight={1 - FLAGS.alpha:.1f})`",
              "keras_kl_instance": f"the same with `LogitsDistillation({FLAGS.temperature:g}, "
                                   "loss=keras.losses.KLDivergence())`"}
    lines = ["# `keras.distillation` against `HintonKD`: one step from the same weights", "",
             f"ResNet-56 teacher (`{TEACHER}`) → ResNet-8 student, {FLAGS.examples} CIFAR-10 images, T = "
             f"{FLAGS.temperature:g}, α = {FLAGS.alpha:g} (Keras' student_loss_weight = {1 - FLAGS.alpha:.1f}); "
             f"cross-entropy {parts['cross_entropy']:.6f}, KL of the softened softmaxes {parts['kl_softmax']:.6f}.",
             f"Gradients: over the student's {len(ours)} weight tensors; HintonKD's largest entry is {report_scale:.2e}.",
             "", "| configuration | loss | closed form | max abs gradient difference vs HintonKD |", "|---|---|---|---|"]
    lines += [f"| {titles[r['configuration']]} | {r['loss']:.6f} | {r['closed_form']:.6f} | "
              f"{r['max_abs_gradient_diff_vs_hinton_kd']:.2e} |"
              for r in rows]
    lines += ["", "Closed forms: HintonKD and the `KLDivergence()` instance: (1 − α)·CE + α·T²·KL(softmax(z_t/T) ‖ "
              "softmax(z_s/T)); the default `loss=\"kl_divergence\"`: (1 − α)·CE + α·Σ a·log(a/b) with a, b the "
              "logits / T clipped to [1e-7, 1]: no softmax, no T².", "",
              "| what `akd_tf` trains | what `keras.distillation` offers |", "|---|---|"]
    lines += [f"| {w} | {why} |" for w, why in CANNOT]
    speed.write(FLAGS.output, report, lines)  # the .json and .md, with the machine and the command


if __name__ == "__main__":
    define_flags()
    app.run(main)
