"""The training methods, a module each, and their registry (`registry`): the shared base (`base`), Annealing-KD
(`annealing`), Continuation-KD (`continuation`), Hinton KD (`hinton`), TAKD (`takd`) and the labels-only baselines
(`labels`). Each module holds its Keras model, the callback that drives it, and the `registry.Method` that tells the
run pipeline how to build, schedule and summarise it. Every module of this package is imported here, so a method
added as a new file is registered without touching any other."""

import importlib
import pkgutil

from akd_tf.methods import registry
from akd_tf.methods.annealing import AnnealingKD, AnnealingSchedule
from akd_tf.methods.base import AnnealedDistiller, Distiller
from akd_tf.methods.continuation import ContinuationKD, ContinuationSchedule
from akd_tf.methods.hinton import HintonKD

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["AnnealedDistiller", "AnnealingKD", "AnnealingSchedule", "ContinuationKD", "ContinuationSchedule", "Distiller",
           "HintonKD", "registry"]
