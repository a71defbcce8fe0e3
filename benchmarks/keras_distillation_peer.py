"""`keras.distillation.Distiller`, the distiller a Keras user finds in Keras itself, against this project's `HintonKD`,
on the shipped ResNet-56 teacher and a ResNet-8 student: (1) the loss and gradients of one step from the same
weights; (2) with ``--images``, training speed in interleaved rounds (Keras' distiller, `HintonKD` with the teacher
in the loop, `HintonKD` on cached teacher views, and a fixed NumPy workload for the host's own steadiness); (3) with
``--replicas``, one training step on 2 logical CPU replicas of ``MirroredStrategy`` against one device, for both
(each in its own process: one strategy per process).

    TFDS_DATA_DIR=../shared/tensorflow_datasets python -m benchmarks.keras_distillation_peer \\
        --output=benchmarks/results/keras_distillation_peer --images=2048 --repeats=5 --replicas

Hinton KD at temperature T with label weight w (w = 0.1, T = 4: the paper's baseline):

    L = w · CE(y, z_s) + (1 − w) · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T))

`HintonKD(temperature=4, student_loss_weight=0.1)` is that. `Distiller(..., LogitsDistillation(temperature=4),
student_loss_weight=0.1)` weights the same two terms, with the same name and meaning, but its default
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
    flags.DEFINE_float("student_loss_weight", 0.1, "The label term's weight w (the soft term's: 1 - w), both distillers.")
    flags.DEFINE_integer("images", 0, "Training images per timed epoch (0: no speed rounds).")
    flags.DEFINE_integer("repeats", 5, "Timed rounds (after one warm-up round).")
    flags.DEFINE_integer("batch_size", 128, "Batch size of the timed steps.")
    flags.DEFINE_bool("replicas", False, "Also one step on 2 logical CPU replicas against 1 device.")
    flags.DEFINE_integer("replica_step", 0, "Internal: run the replica step in this process with 1 or 2 replicas.")
    flags.DEFINE_string("replica_out", None, "Internal: where --replica_step writes its .npz.")


def batch(examples, data_dir=None):
    """``examples`` CIFAR-10 training images, normalised as the project's CIFAR pipeline does, and their labels."""
    from akd_tf import data as data_lib

    splits = data_lib.load("cifar10", batch_size=examples, data_dir=data_dir, train_size=examples,
                           validation_size=5000, test_size=1)
    x, y = next(iter(splits.validation))
    return np.asarray(x), np.asarray(y)


def one_step(teacher, student, x, y, temperature, w):
    """``{configuration: (loss, gradients)}`` of one step from ``student``'s current weights (its BatchNorms in
    training mode, the teacher in inference mode), and the closed forms of the two soft terms."""
    import keras
    import tensorflow as tf
    from keras import distillation

    from akd_tf import HintonKD
    from export.pipeline import softmax

    label = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    ours = HintonKD(teacher, student, temperature=temperature, student_loss_weight=w)
    peers = {
        "keras_default_kl": distillation.Distiller(teacher, student, distillation.LogitsDistillation(temperature),
                                                   student_loss_weight=w),
        "keras_kl_instance": distillation.Distiller(
            teacher, student, distillation.LogitsDistillation(temperature, loss=keras.losses.KLDivergence()),
            student_loss_weight=w),
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
    closed = {"akd_tf_hinton_kd": w * ce + (1 - w) * temperature**2 * kl,
              "keras_kl_instance": w * ce + (1 - w) * temperature**2 * kl,
              "keras_default_kl": w * ce + (1 - w) * logit_kl}
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


def distillers(teacher, student_net, temperature, w, sync_batchnorm=False):
    """The two distillers in the matched configuration (the soft term as a `KLDivergence` instance, so Keras' takes
    softmaxes and T², as `HintonKD` does), each with a fresh student, compiled with the CIFAR recipe's SGD."""
    import keras
    from keras import distillation

    from akd_tf import HintonKD, nets

    def student():
        return nets.build(student_net, 10, (32, 32, 3), weight_decay=1e-4, sync_batchnorm=sync_batchnorm)

    ours = HintonKD(teacher, student(), temperature=temperature, student_loss_weight=w)
    ours.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    peer = distillation.Distiller(teacher, student(), distillation.LogitsDistillation(
        temperature, loss=keras.losses.KLDivergence()), student_loss_weight=w)
    peer.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return ours, peer


def speed_rounds(teacher, images, batch_size, repeats, temperature, w):
    """Seconds per epoch of ``images`` CIFAR-10 images, per round: Keras' distiller and `HintonKD` (teacher in the
    loop), `HintonKD` on one cached teacher view, and `benchmarks.speed.host_reference`."""
    from akd_tf import data as data_lib
    from akd_tf.nets import fold
    from benchmarks import speed

    splits = data_lib.load("cifar10", batch_size=batch_size, validation_size=0, train_size=images,
                           test_size=batch_size)
    ours, peer = distillers(teacher, "resnet8", temperature, w)
    views_model, _ = distillers(teacher, "resnet8", temperature, w)
    inference = fold.inference_copy(teacher)
    views = splits.with_teacher_logits(inference.predict(splits.teacher_views(1), verbose=0)[None])
    views_epoch = views.train_epochs(0, 1)
    steps = {"keras_distillation": lambda: peer.fit(splits.train, epochs=1, verbose=0),
             "hinton_kd": lambda: ours.fit(splits.train, epochs=1, verbose=0),
             "hinton_kd_views": lambda: views_model.fit(views_epoch, epochs=1, verbose=0),
             speed.REFERENCE: speed.host_reference()}
    return speed.interleaved(steps, repeats, images)


def replica_step(replicas, out, temperature, w, examples):
    """One ``fit`` step of each distiller on ``examples`` images from the same weights under ``replicas`` (1 or 2)
    logical CPU devices; writes the students' weights and the losses to ``out`` (.npz). BatchNorm statistics are
    synchronised across replicas (``sync_batchnorm``), so that 2 replicas can equal 1."""
    import keras
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = (tf.distribute.MirroredStrategy(devices[:2]) if replicas == 2
                else tf.distribute.OneDeviceStrategy(devices[0]))
    x, y = batch(examples)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        teacher = keras.models.load_model(TEACHER)
        teacher.trainable = False
        models = dict(zip(("hinton_kd", "keras_distillation"),
                          distillers(teacher, "resnet8", temperature, w, sync_batchnorm=True)))
    first = [weight.copy() for weight in models["hinton_kd"].student.get_weights()]
    # The student's regularisation (its kernels' L2, the weight decay) at the starting weights: HintonKD adds it to
    # the loss, as Keras' Trainer.compute_loss does; keras.distillation's compute_loss replaces that method.
    results = {"student_regularization": np.float64(sum(float(loss) for loss in models["hinton_kd"].student.losses))}
    for name, model in models.items():
        model.student.set_weights(first)
        history = model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(examples), epochs=1, verbose=0)
        results[f"{name}_loss"] = np.float64(history.history["loss"][0])
        for i, weight in enumerate(model.student.get_weights()):
            results[f"{name}_w{i}"] = weight
    np.savez(out, **results)


def compare_replicas(temperature, w, examples):
    """Runs `replica_step` with 1 and 2 replicas, each in its own process. Returns, per distiller, the two losses
    and the largest difference of the students' weights after the step; and the student's regularisation at the
    starting weights."""
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="akd_tf_replicas_") as directory:
        for replicas in (1, 2):
            subprocess.run([sys.executable, "-m", "benchmarks.keras_distillation_peer", f"--replica_step={replicas}",
                            f"--replica_out={os.path.join(directory, f'replicas{replicas}.npz')}",
                            f"--temperature={temperature}", f"--student_loss_weight={w}", f"--examples={examples}"],
                           check=True)
        with np.load(os.path.join(directory, "replicas1.npz")) as one, \
                np.load(os.path.join(directory, "replicas2.npz")) as two:
            out = {}
            for name in ("hinton_kd", "keras_distillation"):
                weights = [k for k in one.files if k.startswith(f"{name}_w")]
                out[name] = {"loss_1_device": float(one[f"{name}_loss"]),
                             "loss_2_replicas": float(two[f"{name}_loss"]),
                             "max_abs_weight_diff": max(float(np.max(np.abs(one[k] - two[k]))) for k in weights)}
            return out, float(one["student_regularization"])


def main(argv):
    del argv
    import keras

    if FLAGS.replica_step:
        replica_step(FLAGS.replica_step, FLAGS.replica_out, FLAGS.temperature, FLAGS.student_loss_weight, FLAGS.examples)
        return

    from akd_tf import machine, nets
    from akd_tf.command import command_line
    from benchmarks import speed

    keras.utils.set_random_seed(0)
    teacher = keras.models.load_model(TEACHER)
    teacher.trainable = False
    student = nets.build("resnet8", 10, (32, 32, 3))
    x, y = batch(FLAGS.examples)
    results, closed, parts = one_step(teacher, student, x, y, FLAGS.temperature, FLAGS.student_loss_weight)
    ours = results["akd_tf_hinton_kd"][1]
    rows = []
    for name, (loss, gradients) in results.items():
        diff = max(float(np.max(np.abs(g - o))) for g, o in zip(gradients, ours))
        scale = max(float(np.max(np.abs(o))) for o in ours)
        rows.append({"configuration": name, "loss": loss, "closed_form": closed[name],
                     "max_abs_gradient_diff_vs_hinton_kd": diff})
    report_scale = scale
    w = FLAGS.student_loss_weight
    report = {"command": command_line("benchmarks.keras_distillation_peer"), "machine": machine.machine(),
              "keras": keras.__version__, "teacher": TEACHER, "student": "resnet8 (random weights, seed 0)",
              "examples": FLAGS.examples, "temperature": FLAGS.temperature, "student_loss_weight": w, "terms": parts,
              "largest_hinton_kd_gradient": report_scale,
              "rows": rows, "keras_distillation_cannot": [{"what": what, "why": why} for what, why in CANNOT]}
    titles = {"akd_tf_hinton_kd": (f"`akd_tf.HintonKD(temperature={FLAGS.temperature:g}, "
                                  f"student_loss_weight={FLAGS.student_loss_weight:g})`"),
              "keras_default_kl": f"`keras.distillation.Distiller(LogitsDistillation({FLAGS.temperature:g}), "
                                  f"student_loss_weight={w:g})`",
              "keras_kl_instance": f"the same with `LogitsDistillation({FLAGS.temperature:g}, "
                                   "loss=keras.losses.KLDivergence())`"}
    lines = ["# `keras.distillation` against `HintonKD`: one step from the same weights", "",
             f"ResNet-56 teacher (`{TEACHER}`) → ResNet-8 student, {FLAGS.examples} CIFAR-10 images, T = "
             f"{FLAGS.temperature:g}, label weight w = {w:g} (`student_loss_weight` in both); "
             f"cross-entropy {parts['cross_entropy']:.6f}, KL of the softened softmaxes {parts['kl_softmax']:.6f}.",
             f"Gradients: over the student's {len(ours)} weight tensors; HintonKD's largest entry is {report_scale:.2e}.",
             "", "| configuration | loss | closed form | max abs gradient difference vs HintonKD |", "|---|---|---|---|"]
    lines += [f"| {titles[r['configuration']]} | {r['loss']:.6f} | {r['closed_form']:.6f} | "
              f"{r['max_abs_gradient_diff_vs_hinton_kd']:.2e} |"
              for r in rows]
    lines += ["", "Closed forms: HintonKD and the `KLDivergence()` instance: w·CE + (1 − w)·T²·KL(softmax(z_t/T) ‖ "
              "softmax(z_s/T)); the default `loss=\"kl_divergence\"`: w·CE + (1 − w)·Σ a·log(a/b) with a, b the "
              "logits / T clipped to [1e-7, 1]: no softmax, no T².", "",
              "| what `akd_tf` trains | what `keras.distillation` offers |", "|---|---|"]
    lines += [f"| {what} | {why} |" for what, why in CANNOT]
    if FLAGS.images:
        seconds = speed_rounds(teacher, FLAGS.images, FLAGS.batch_size, FLAGS.repeats, FLAGS.temperature, w)
        reference = seconds.pop(speed.REFERENCE)
        rates = {k: FLAGS.images / np.asarray(v) for k, v in seconds.items()}
        per_round = {k: rates[k] / rates["keras_distillation"] for k in ("hinton_kd", "hinton_kd_views")}
        report["speed"] = {
            "images": FLAGS.images, "batch_size": FLAGS.batch_size, "repeats": FLAGS.repeats,
            "images_per_second": {k: float(np.median(r)) for k, r in rates.items()},
            "epoch_seconds": {k: [float(t) for t in v] for k, v in seconds.items()},
            "median_over_fastest": {k: speed.steadiness(v) for k, v in seconds.items()},
            "host_reference": {"seconds": [float(t) for t in reference],
                               "median_over_fastest": speed.steadiness(reference)},
            "ratio_to_keras_distillation": {k: {"median": float(np.median(v)), "per_round": [float(r) for r in v]}
                                            for k, v in per_round.items()}}
        names = {"keras_distillation": "`keras.distillation.Distiller` (matched: `KLDivergence()`), teacher every step",
                 "hinton_kd": "`HintonKD`, teacher in the loop", "hinton_kd_views": "`HintonKD`, cached teacher views"}
        lines += ["", f"## Training speed: ResNet-56 → ResNet-8, {FLAGS.images} CIFAR-10 images, batch "
                  f"{FLAGS.batch_size}, median of {FLAGS.repeats} interleaved rounds", "",
                  "| step | images/s, median | epoch seconds | median / fastest | × Keras' distiller, median of rounds |",
                  "|---|---|---|---|---|"]
        lines += [f"| {names[k]} | {np.median(rates[k]):.0f} | {', '.join(f'{t:.2f}' for t in seconds[k])} | "
                  f"{speed.steadiness(seconds[k]):.2f} | "
                  + (f"{np.median(per_round[k]):.2f} ({', '.join(f'{r:.2f}' for r in per_round[k])})"
                     if k in per_round else "1") + " |" for k in names]
        lines += ["", speed.reference_line(reference)]
    if FLAGS.replicas:
        replicas, penalty = compare_replicas(FLAGS.temperature, w, FLAGS.examples)
        report["replicas"] = {**replicas, "student_regularization": penalty}
        lines += ["", f"## One step on 2 logical CPU replicas (`MirroredStrategy`) against 1 device, {FLAGS.examples} "
                  "images, synchronised BatchNorm, the same starting weights", "",
                  "| distiller | loss, 1 device | loss, 2 replicas | max abs weight difference after the step |",
                  "|---|---|---|---|"]
        lines += [f"| {titles['akd_tf_hinton_kd' if k == 'hinton_kd' else 'keras_kl_instance']} | "
                  f"{r['loss_1_device']:.6f} | {r['loss_2_replicas']:.6f} | {r['max_abs_weight_diff']:.2e} |"
                  for k, r in replicas.items()]
        gap = replicas["hinton_kd"]["loss_1_device"] - replicas["keras_distillation"]["loss_1_device"]
        lines += ["", f"Each distiller gives the same step on 2 replicas as on one device, to float rounding. The two "
                  f"losses differ by {gap:.6f}; the student's regularisation at the starting weights (its kernels' "
                  f"L2, weight decay 1e-4) is {penalty:.6f}: `keras.distillation.Distiller.compute_loss` replaces "
                  "Keras' `Trainer.compute_loss` and never adds the model's `losses`, so a student's "
                  "`kernel_regularizer` (the CIFAR recipe's weight decay) is left out of its loss and its gradients."]
    report["command"] = command_line("benchmarks.keras_distillation_peer", [FLAGS[k].serialize() for k in (
        "examples", "temperature", "student_loss_weight", "images", "repeats", "replicas") if FLAGS[k].present])
    speed.write(FLAGS.output, report, lines)  # the .json and .md, with the machine and the command


if __name__ == "__main__":
    define_flags()
    app.run(main)
