"""Vanilla knowledge distillation (Hinton, Vinyals, Dean, 2015): the KD baseline and TAKD's building block."""

from __future__ import annotations

import keras

from akd_tf import losses
from akd_tf.methods import registry
from akd_tf.methods.base import Distiller


def check_arguments(temperature, student_loss_weight, names=("temperature", "student_loss_weight")):
    """Raises `ValueError` for what `HintonKD` cannot take; ``names`` are the two settings' names in the message
    (the run's: ``kd_temperature``, ``kd_student_loss_weight``)."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"`{names[0]}` must be > 0. Received: {names[0]}={temperature!r}")
    if isinstance(student_loss_weight, bool) or not isinstance(student_loss_weight, (int, float)) \
            or not 0.0 <= student_loss_weight <= 1.0:
        raise ValueError(f"`{names[1]}` must lie in [0, 1]. Received: {names[1]}={student_loss_weight!r}")


@keras.saving.register_keras_serializable(package="akd_tf")
class HintonKD(Distiller):
    """Vanilla knowledge distillation (Hinton et al., 2015): `akd_tf.losses.hinton_kd_loss` with the
    teacher run on every step. The baseline the paper compares against, and TAKD's building block.

    ``student_loss_weight`` weights the label term and 1 − it the soft term, as in
    `keras.distillation.Distiller` (the paper's KD: 0.1, i.e. 0.9 on the teacher)."""

    def __init__(self, teacher, student, temperature=4.0, student_loss_weight=0.1, **kwargs):
        if "alpha" in kwargs:  # the name before 0.2; it weighted the soft term, the opposite of Keras' alpha
            alpha = kwargs.pop("alpha")
            raise TypeError(f"HintonKD's `alpha` (the soft term's weight) is now `student_loss_weight`, the label "
                            f"term's weight, as keras.distillation.Distiller has it: student_loss_weight = 1 - alpha. "
                            f"Received: alpha={alpha!r}")
        check_arguments(temperature, student_loss_weight)
        super().__init__(teacher, student, **kwargs)
        self.temperature = float(temperature)
        self.student_loss_weight = float(student_loss_weight)

    def per_example_loss(self, labels, student_logits, teacher_logits):
        return losses.hinton_kd_loss(labels, student_logits, teacher_logits, self.temperature,
                                     self.student_loss_weight, self.labelled_loss)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature,
                "student_loss_weight": self.student_loss_weight}


class HintonMethod(registry.Method):
    """Hinton KD as the run pipeline builds it, from ``kd_temperature`` and ``kd_student_loss_weight``."""

    name, title, short = "kd", "Hinton KD", "KD"
    help = ("Hinton KD: w · cross-entropy + (1 − w) · T² · KL at T = kd_temperature, w = kd_student_loss_weight")
    regression = False  # its soft term compares class probabilities

    def check(self, config):
        check_arguments(config.kd_temperature, config.kd_student_loss_weight,
                        names=("kd_temperature", "kd_student_loss_weight"))

    def build(self, teacher, student, config, *, optimizer, teacher_outputs="logits", regression=False,
              monitor="val_accuracy"):
        model = HintonKD(teacher=teacher, student=student, temperature=config.kd_temperature,
                         student_loss_weight=config.kd_student_loss_weight,
                         teacher_outputs=teacher_outputs)
        model.compile(optimizer=optimizer)
        return registry.Training(model)


registry.register(HintonMethod())
