"""How every input pipeline of this tool runs: fixed parallelism, tf.data's autotuner off.

Why not ``tf.data.AUTOTUNE``: with the autotuner on, a pass over a dataset does not end when its last batch is
consumed but at the next wake-up of the autotuner's optimisation thread, which starts with each iterator and
sleeps 10 ms, 20 ms, 40 ms, … (doubling, up to a minute). A pass therefore lasts one of 0.63, 1.27, 2.55, 5.11,
10.23, 20.47, 40.95 s, … whatever its work: measured on 2 cores (TF 2.21), Keras ``predict`` of a ResNet-20 over
1,024 CIFAR-10 images took 0.6-0.7 s or exactly 1.27 s from one pass to the next, and a 4,096-image ResNet-8
epoch 3.5 s or exactly 5.1 s. Every ``fit`` epoch's validation pass, every teacher-view pass and every ``predict``
paid it. A CPU or RAM budget (``options.autotune.cpu_budget``/``ram_budget``), fixed ``num_parallel_calls`` with
the autotuner still on, or no injected prefetch all kept the quantum; only ``autotune.enabled = False`` removed
it (0.66-0.87 s every pass). With the autotuner off, parallelism is what is set here: a map runs on as many
threads as the process has cores (augmentation is cheap next to a training step, so more threads only take
cores from the model), and two batches are prefetched, which kept the step fed in every measurement.

Element order is unchanged: parallel maps are deterministic unless told otherwise, so runs with the same seed
see the same batches as before. ``benchmarks/results/pipeline_steady.md`` holds the measurements.
"""

from __future__ import annotations

import os

import tensorflow as tf


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


PARALLEL_CALLS = _cores()
PREFETCH_BATCHES = 2


def options() -> tf.data.Options:
    """The options of every pipeline: autotuner off (see the module docstring); global batches sharded by DATA
    across the workers of a multi-worker strategy (each worker takes its share of every batch)."""
    opts = tf.data.Options()
    opts.autotune.enabled = False
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return opts


def steady(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` prefetched by `PREFETCH_BATCHES` with `options`: the end of every pipeline here."""
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options())
