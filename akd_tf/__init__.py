"""akd_tf: Annealing Knowledge Distillation (Jafari et al., EACL 2021) for Keras 3 / TensorFlow."""

import os as _os

# Keras 3 on TensorFlow; tfmot (imported only by the QAT export path) would otherwise flip tf.keras.
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ INFO lines (oneDNN, CPU features) drown the tool's own output; warnings stay.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from akd_tf import losses, nets, schedule  # noqa: E402
from akd_tf.callbacks import AnnealingSchedule  # noqa: E402
from akd_tf.distiller import AnnealingKD, Distiller, HintonKD  # noqa: E402

__version__ = "0.1.0"
__all__ = ["AnnealingKD", "AnnealingSchedule", "Distiller", "HintonKD", "losses", "nets", "schedule"]
