"""The distillation methods, a module each: the shared base (`base`), Annealing-KD (`annealing`), Hinton KD
(`hinton`) and Continuation-KD (`continuation`). Each module holds the model and the callback that drives it."""

from akd_tf.methods.annealing import AnnealingKD, AnnealingSchedule
from akd_tf.methods.base import AnnealedDistiller, Distiller
from akd_tf.methods.continuation import ContinuationKD, ContinuationSchedule
from akd_tf.methods.hinton import HintonKD

__all__ = ["AnnealedDistiller", "AnnealingKD", "AnnealingSchedule", "ContinuationKD", "ContinuationSchedule", "Distiller",
           "HintonKD"]
