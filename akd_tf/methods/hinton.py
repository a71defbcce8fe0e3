"""Vanilla knowledge distillation (Hinton, Vinyals, Dean, 2015): the KD baseline and TAKD's building block."""

from __future__ import annotations

import keras

from akd_tf import losses
from akd_tf.methods import registry
from akd_tf.methods.base import Distiller


@keras.saving.register_keras_serializable(package="akd_tf")
class HintonKD(Distiller):
    """Vanilla knowledge distillation (Hinton et al., 2015): `akd_tf.losses.hinton_kd_loss` with the
    teacher run on every step. The baseline the paper compares against, and TAKD's building block."""

    def __init__(self, teacher, student, temperature=4.0, alpha=0.9, **kwargs):
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0. Received: temperature={temperature!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`alpha` must lie in [0, 1]. Received: alpha={alpha!r}")
        super().__init__(teacher, student, **kwargs)
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def per_example_loss(self, labels, student_logits, teacher_logits):
        return losses.hinton_kd_loss(labels, student_logits, teacher_logits, self.temperature, self.alpha)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "alpha": self.alpha}


class HintonMethod(registry.Method):
    """Hinton KD as the run pipeline builds it, from ``kd_temperature`` and ``kd_alpha``."""

    name, title, short = "kd", "Hinton KD", "KD"
    help = "Hinton KD: (1 − kd_alpha) · cross-entropy + kd_alpha · T² · KL at T = kd_temperature"
    regression = False  # its soft term compares class probabilities

    def build(self, teacher, student, config, *, optimizer, teacher_outputs="logits", regression=False,
              monitor="val_accuracy"):
        model = HintonKD(teacher=teacher, student=student, temperature=config.kd_temperature, alpha=config.kd_alpha,
                         teacher_outputs=teacher_outputs)
        model.compile(optimizer=optimizer)
        return registry.Training(model)


registry.register(HintonMethod())
