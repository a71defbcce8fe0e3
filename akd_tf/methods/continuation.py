"""Continuation-KD (Jafari, Kobyzev, Rezagholizadeh, Poupart, Ghodsi; EMNLP Findings 2022, arXiv 2212.05998): the
Annealing-KD authors' one-phase successor, as a Keras model (`ContinuationKD`) and the callback that drives it
(`ContinuationSchedule`).

Annealing-KD matches the annealed teacher without labels first and trains on labels afterwards. Continuation-KD
runs one loss for the whole run, in which the labels come in gradually while the teacher's annealed logits fade
out (`akd_tf.losses.continuation_loss`)::

    L_i = ψ(i) · CE(y, z_s) + (1 − ψ(i)) · max{0, ‖z_s − Φ(T_i) · z_t‖² − m · Φ(T_i)}

with T annealed as in Annealing-KD's phase 1 (`akd_tf.schedule.temperature_at` over ``anneal_epochs``) and
``ψ(i) = min(i / label_ramp_epochs, 1)`` (`akd_tf.schedule.label_weight_at`). The paper's CIFAR setting is 200
epochs, τ_max 20, ψ(i) = min(i/150, 1); its GLUE setting τ_max 10. It does not give the margin m: the default here
is 0 (a plain squared distance). One learning-rate schedule runs over the whole run: there is no restart.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from akd_tf import keras_internals, losses, schedule
from akd_tf.methods import registry
from akd_tf.methods.base import AnnealedDistiller


def check_margin(margin, name="margin"):
    """Raises `ValueError` for a hinge margin `ContinuationKD` cannot take (``name``: the setting in the message)."""
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
        raise ValueError(f"`{name}` must be a number >= 0. Received: {name}={margin!r}")


@keras.saving.register_keras_serializable(package="akd_tf")
class ContinuationKD(AnnealedDistiller):
    """Continuation Knowledge Distillation: one loss that moves from the annealed teacher to the labels.

    ``temperature`` (T) and ``label_weight`` (ψ) are variables that the traced step reads; the
    `akd_tf.ContinuationSchedule` callback sets both at every epoch::

        ckd = ContinuationKD(teacher=teacher, student=student, max_temperature=10)
        ckd.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        ckd.fit(train, validation_data=val, epochs=n,
                callbacks=[ContinuationSchedule(epochs=n, anneal_epochs=n, label_ramp_epochs=0.75 * n)])

    Once ψ reaches 1 the loss is the labels' alone and the step no longer runs the teacher (a step without it is
    traced when ψ crosses 1, as Annealing-KD's phase 2 is).

    Args:
        teacher: a trained `keras.Model` returning logits. It is frozen in place (``trainable = False``).
        student: a `keras.Model` returning logits of the same shape.
        max_temperature: τ_max, a positive integer (the paper: 20 on CIFAR, 10 on GLUE).
        margin: m >= 0: the teacher's term ignores an example whose logits lie within m · Φ(T) (squared distance)
            of the annealed teacher's. Not given in the paper; 0 by default.
        teacher_outputs: ``"logits"`` (default) or ``"probabilities"`` (converted to logits with a clipped log).
    """

    def __init__(self, teacher, student, max_temperature=10, margin=0.0, **kwargs):
        check_margin(margin)
        super().__init__(teacher, student, max_temperature, **kwargs)
        self.margin = float(margin)
        self._label_weight = self.add_weight(
            name="label_weight", shape=(), dtype="float32", trainable=False,
            initializer=keras.initializers.Constant(0.0),
        )

    @property
    def label_weight(self) -> float:
        """ψ in [0, 1]: the weight of the labels' term; the teacher's term has 1 − ψ."""
        return float(ops.convert_to_numpy(self._label_weight))

    @label_weight.setter
    def label_weight(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"`label_weight` must lie in [0, 1]. Received: label_weight={value!r}")
        was_using_teacher = self.uses_teacher()
        self._label_weight.assign(float(value))
        if self.uses_teacher() != was_using_teacher:  # the steps with and without the teacher are traced apart
            self.retrace_steps()

    def uses_teacher(self):
        # A Python bool read when the step is traced (as AnnealingKD's phase): while ψ < 1 the step runs the teacher
        # unconditionally; at ψ = 1 it has no teacher at all, instead of multiplying its term by zero.
        with tf.init_scope():
            return float(ops.convert_to_numpy(self._label_weight)) < 1.0

    def per_example_loss(self, labels, student_logits, teacher_logits):
        if not self.uses_teacher():
            return self.labelled_loss(labels, student_logits)
        return losses.continuation_loss(
            labels, student_logits, teacher_logits, self.annealed_phi(),
            self._label_weight, self.margin, self.labelled_loss)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


class ContinuationSchedule(keras.callbacks.Callback):
    """Sets an `akd_tf.ContinuationKD` model's temperature T and label weight ψ at the start of every epoch.

    * T starts at τ_max and drops by 1 every ``anneal_epochs // τ_max`` epochs, reaching 1 by ``anneal_epochs``
      (`akd_tf.schedule.temperature_at`, Annealing-KD's phase-1 schedule).
    * ψ(i) = min(i / ``label_ramp_epochs``, 1) for the 0-based epoch i (`akd_tf.schedule.label_weight_at`).
    * Adds ``temperature``, ``phi`` and ``label_weight`` to each epoch's logs (History, CSV, TensorBoard).

    Both are pure functions of the epoch index Keras passes in, so ``fit(..., initial_epoch=k)`` (a resumed run)
    continues T and ψ where they were. The paper's CIFAR setting: ``epochs=200, anneal_epochs=200,
    label_ramp_epochs=150`` with τ_max 20.

    Args:
        epochs: the run's epochs; the ramp must end within them.
        anneal_epochs: epochs over which T goes from τ_max to 1; at least τ_max.
        label_ramp_epochs: epochs over which ψ rises from 0 to 1 (a number > 0, at most ``epochs``).
        max_temperature: optional τ_max, to check the schedule when the callback is built; it must equal the
            model's.
        verbose: 0 silent, 1 a line per epoch.
    """

    def __init__(self, epochs, anneal_epochs, label_ramp_epochs, max_temperature=None, verbose=1):
        super().__init__()
        schedule.check_positive_int("epochs", epochs)
        schedule.check_positive_int("anneal_epochs", anneal_epochs)
        if anneal_epochs > epochs:
            raise ValueError(f"`anneal_epochs` must be <= `epochs`. Received: anneal_epochs={anneal_epochs}, "
                             f"epochs={epochs}")
        schedule.validate_label_ramp(label_ramp_epochs, epochs)
        if max_temperature is not None:
            schedule.validate_schedule(anneal_epochs, max_temperature)
        self.epochs, self.anneal_epochs = epochs, anneal_epochs
        self.label_ramp_epochs, self.max_temperature, self.verbose = label_ramp_epochs, max_temperature, verbose

    def on_train_begin(self, logs=None):
        model = self.model
        if not all(hasattr(model, name) for name in ("temperature", "label_weight", "max_temperature")):
            raise TypeError("ContinuationSchedule drives an akd_tf.ContinuationKD model (with `temperature`, "
                            f"`label_weight` and `max_temperature`). Received a {type(model).__name__}.")
        if self.max_temperature is not None and self.max_temperature != model.max_temperature:
            raise ValueError(f"ContinuationSchedule(max_temperature={self.max_temperature}) does not match the "
                             f"model's max_temperature={model.max_temperature}.")
        schedule.validate_schedule(self.anneal_epochs, model.max_temperature)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.temperature = schedule.temperature_at(epoch, self.anneal_epochs, self.model.max_temperature)
        self.model.label_weight = schedule.label_weight_at(epoch, self.label_ramp_epochs)
        if self.verbose:
            keras_internals.print_msg(f"ContinuationSchedule: epoch {epoch + 1}, T={self.model.temperature}, "
                                      f"Φ(T)={self.model.phi:.3f}, ψ={self.model.label_weight:.3f}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(temperature=float(self.model.temperature), phi=float(self.model.phi),
                        label_weight=float(self.model.label_weight))


def label_ramp_epochs(config):
    """ψ's ramp of a run: ``ckd_label_ramp_epochs``, or three quarters of the student's epochs (the paper: 150 of 200)."""
    if config.ckd_label_ramp_epochs is not None:
        return config.ckd_label_ramp_epochs
    return 0.75 * config.student_epochs


class _Continuation(registry.Method):
    name, title, short = "ckd", "Continuation-KD", "CKD"
    help = ("Continuation-KD: one phase in which T anneals over phase1_epochs while the labels come in (ψ over "
            "ckd_label_ramp_epochs)")
    settings = ("ckd_label_ramp_epochs", "ckd_margin")

    def check(self, config):
        schedule.validate_schedule(config.phase1_epochs, config.max_temperature)
        check_margin(config.ckd_margin, name="ckd_margin")
        try:
            schedule.validate_label_ramp(label_ramp_epochs(config), config.student_epochs)
        except ValueError:
            raise ValueError("`ckd_label_ramp_epochs` must be a number > 0 and at most the student's epochs "
                             f"(phase1_epochs + phase2_epochs = {config.student_epochs}), so that the run ends on "
                             f"labels alone. Received: ckd_label_ramp_epochs={config.ckd_label_ramp_epochs!r}"
                             ) from None

    def build(self, teacher, student, config, *, optimizer, teacher_outputs="logits", regression=False,
              monitor="val_accuracy"):
        model = ContinuationKD(teacher=teacher, student=student, max_temperature=config.max_temperature,
                               margin=config.ckd_margin, teacher_outputs=teacher_outputs)
        model.compile(optimizer=optimizer)
        # Stateless (T and ψ are functions of the epoch): first, so the epoch's logs carry them.
        return registry.Training(model, first=(ContinuationSchedule(
            config.student_epochs, config.phase1_epochs, label_ramp_epochs(config), config.max_temperature,
            verbose=config.verbose),))

    def cached_teacher_epochs(self, config):
        return schedule.teacher_epochs(label_ramp_epochs(config))

    def summary(self, config, history, epochs, phase):
        return {"training": phase(0, epochs),
                "schedule": {"max_temperature": config.max_temperature, "anneal_epochs": config.phase1_epochs,
                             "label_ramp_epochs": label_ramp_epochs(config), "margin": config.ckd_margin,
                             "temperature": history.get("temperature", []),
                             "label_weight": history.get("label_weight", [])}}


registry.register(_Continuation())
