"""akd_tf: Annealing Knowledge Distillation (Jafari et al., EACL 2021) for Keras 3 / TensorFlow."""

import os as _os

# Keras 3 on TensorFlow; tfmot (imported only by the QAT export path) would otherwise flip tf.keras.
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _import_keras_outside_a_notebook():
    """Keras imports IPython, when it is installed, only to tell whether it runs in a notebook (its saving module's
    file editor). Outside one that is 1-1.5 s of every start of the CLI here (IPython, jedi, prompt_toolkit), and
    this tool starts many processes (studies, tests). In a notebook IPython is loaded already and nothing changes;
    the block is lifted once Keras is in, so the program can still import IPython itself."""
    import sys

    if "keras" in sys.modules or "IPython" in sys.modules:
        return
    sys.modules["IPython"] = None  # makes `import IPython` raise ImportError, which Keras expects
    try:
        import keras  # noqa: F401
    finally:
        del sys.modules["IPython"]


_import_keras_outside_a_notebook()

from akd_tf import losses, nets, schedule  # noqa: E402
from akd_tf.callbacks import AnnealingSchedule, KeepBest, StopOnDivergence, TrainingDiverged  # noqa: E402
from akd_tf.checkpoint import TrainingCheckpoint  # noqa: E402
from akd_tf.continuation import ContinuationKD, ContinuationSchedule  # noqa: E402
from akd_tf.distiller import AnnealingKD, Distiller, HintonKD  # noqa: E402

__version__ = "0.1.0"
__all__ = ["AnnealingKD", "AnnealingSchedule", "ContinuationKD", "ContinuationSchedule", "Distiller", "HintonKD", "KeepBest", "StopOnDivergence",
           "TrainingCheckpoint", "TrainingDiverged", "losses", "nets", "schedule"]
