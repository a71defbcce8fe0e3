"""Hinton KD with logit standardisation (Sun, Ren, Li, Wang, Cao; CVPR 2024, "Logit Standardization in Knowledge
Distillation", arXiv 2403.01427): teacher and student logits are z-scored per example before the softened softmax,
so the student matches the teacher's logit *relations*, not their range.

A method of its own rather than an option of `HintonKD`: its settings are not Hinton KD's (base temperature 2
on z-scores of unit variance, where KD's T = 4 is on raw logits; a distillation weight of 9 against a label
weight of 0.1, which KD's convex ``student_loss_weight`` cannot express), and a study compares it with KD as a row
of its own.
"""

from __future__ import annotations

import keras
from keras import ops

from akd_tf import losses
from akd_tf.methods import registry
from akd_tf.methods.base import Distiller

# The authors' CIFAR-100 settings (their README: ``--logit-stand --base-temp 2 --kd-weight 9``, on mdistiller's
# KD whose cross-entropy weight is 0.1).
TEMPERATURE, STUDENT_LOSS_WEIGHT, DISTILLATION_LOSS_WEIGHT = 2.0, 0.1, 9.0


def standardize(logits, epsilon=1e-7):
    """Per-example z-scores of ``logits`` over the classes: ``(z − mean) / (std + ε)``, with the sample standard
    deviation (``C − 1`` in the denominator, as the authors' ``torch.std``)."""
    mean = ops.mean(logits, axis=-1, keepdims=True)
    centred = logits - mean
    classes = ops.cast(ops.shape(logits)[-1], logits.dtype)
    std = ops.sqrt(ops.sum(ops.square(centred), axis=-1, keepdims=True) / (classes - 1.0))
    return centred / (std + epsilon)


@keras.saving.register_keras_serializable(package="akd_tf")
class LogitStandardizedKD(Distiller):
    """Hinton KD on standardised logits::

        L(x) = w_s · CE(y, z_s) + w_d · T² · KL(softmax(ẑ_t / T) ‖ softmax(ẑ_s / T)),   ẑ = (z − mean(z)) / std(z)

    Args:
        teacher, student: `keras.Model`s returning logits (the teacher is frozen in place).
        temperature: the base temperature T, on z-scores (the authors: 2).
        student_loss_weight: w_s, the weight of the labels' cross-entropy (the authors: 0.1).
        distillation_loss_weight: w_d, the weight of the distillation term (the authors: 9).
    """

    def __init__(self, teacher, student, temperature=TEMPERATURE, student_loss_weight=STUDENT_LOSS_WEIGHT,
                 distillation_loss_weight=DISTILLATION_LOSS_WEIGHT, **kwargs):
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0. Received: temperature={temperature!r}")
        for name, value in (("student_loss_weight", student_loss_weight),
                            ("distillation_loss_weight", distillation_loss_weight)):
            if not value >= 0:
                raise ValueError(f"`{name}` must be >= 0. Received: {name}={value!r}")
        super().__init__(teacher, student, **kwargs)
        self.temperature = float(temperature)
        self.student_loss_weight = float(student_loss_weight)
        self.distillation_loss_weight = float(distillation_loss_weight)

    def per_example_loss(self, labels, student_logits, teacher_logits):
        teacher_logits = ops.cast(teacher_logits, student_logits.dtype)
        # hinton_kd_loss with no label term is T² · KL alone, the one place that KL is written.
        soft = losses.hinton_kd_loss(labels, standardize(student_logits), standardize(teacher_logits),
                                     self.temperature, 0.0)
        return (self.student_loss_weight * self.labelled_loss(labels, student_logits)
                + self.distillation_loss_weight * soft)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature,
                "student_loss_weight": self.student_loss_weight,
                "distillation_loss_weight": self.distillation_loss_weight}


class _Standardized(registry.Method):
    name, title, short = "kd_ls", "KD + logit standardisation", "KD+LS"
    help = ("Hinton KD on per-example z-scored logits (Sun et al., CVPR 2024) with the authors' settings: T = 2, "
            "label weight 0.1, distillation weight 9")
    regression = False  # its soft term compares class probabilities

    def build(self, teacher, student, config, *, optimizer, teacher_outputs="logits", regression=False,
              monitor="val_accuracy"):
        model = LogitStandardizedKD(teacher=teacher, student=student, teacher_outputs=teacher_outputs)
        model.compile(optimizer=optimizer)
        return registry.Training(model)


registry.register(_Standardized())
