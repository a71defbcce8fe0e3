"""akd_tf: Annealing Knowledge Distillation (Jafari et al., EACL 2021) for Keras 3 / TensorFlow."""

import os as _os

# Keras 3 on TensorFlow; tfmot (imported only by the QAT export path) would otherwise flip tf.keras.
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from akd_tf import losses, nets, schedule
from akd_tf.callbacks import KeepBest, StopOnDivergence, TrainingDiverged
from akd_tf.checkpoint import TrainingCheckpoint
from akd_tf.methods import AnnealingKD, AnnealingSchedule, ContinuationKD, ContinuationSchedule, Distiller, HintonKD

__version__ = "0.1.0"
__all__ = ["AnnealingKD", "AnnealingSchedule", "ContinuationKD", "ContinuationSchedule", "Distiller", "HintonKD",
           "KeepBest", "StopOnDivergence", "TrainingCheckpoint", "TrainingDiverged", "losses", "nets", "schedule"]
