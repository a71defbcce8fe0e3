"""Training on several machines: `tf.distribute.MultiWorkerMirroredStrategy` for Keras 3.15 ``fit``.

Keras 3.15's ``fit`` fails under `MultiWorkerMirroredStrategy` (open upstream:
https://github.com/keras-team/keras/issues/20585) in two places of
``keras/src/backend/tensorflow/trainer.py``; `patch_keras` mends both, and only for multi-worker
strategies (every other strategy takes Keras's own code path):

1. ``_maybe_symbolic_build`` pulls a first batch through the cross-worker iterator and reduces it across
   workers eagerly: collectives that the workers do not enter together (seen here: a failure at once, or
   now and then an empty batch in a later ``evaluate``). The batch only provides shapes and dtypes, so
   the dataset's ``element_spec`` serves, with no collective at all.
2. ``reduce_per_replica`` means the logged metrics with ``strategy.reduce("MEAN", v, axis=0)``, which
   fails for the scalar metric results. Scalars are meant across replicas with ``axis=None``.

Remove this module when the pinned Keras contains the fix.
"""

from __future__ import annotations

import tensorflow as tf

_PATCHED = False


def strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    """The strategy over the cluster in ``TF_CONFIG``, with Keras patched for it.

    Create it before any other TensorFlow call of the process, on every worker, with the same program.
    """
    patch_keras()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _is_multi_worker(strategy):
    from keras.src.backend.tensorflow import trainer

    return trainer._collective_all_reduce_multi_worker(strategy)


def patch_keras():
    """Installs the two fixes for keras-team/keras#20585 (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    original_reduce = trainer.reduce_per_replica

    def _local(strategy, value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is None or self._distribute_strategy is None or not _is_multi_worker(self.distribute_strategy):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        return original_build(self, data_batch=iterator.data_adapter.get_tf_dataset().element_spec)

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not _is_multi_worker(strategy):
            return original_reduce(values, strategy, reduction)

        def _reduce(value):
            if _local(strategy, value).shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return original_reduce(value, strategy, reduction)

        return tree.map_structure(_reduce, values)

    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
    _PATCHED = True
