"""akd_tf.data.pipeline: every pipeline runs with the autotuner off (whether a pass then lasts as long as its work is
timed by benchmarks.pipeline_steady, not here), and the two-speeds check of the speed benchmarks."""

import numpy as np
import pytest

from akd_tf import data
from akd_tf.data import glue, pipeline
from benchmarks import speed


def _autotuned(ds):
    return ds.options().autotune.enabled


def test_every_image_pipeline_runs_without_the_autotuner():
    splits = data.load("cifar10", batch_size=32, validation_size=32, train_size=64, test_size=32, shuffle_seed=1)
    views = splits.with_teacher_logits(np.zeros((2, 64, 10), np.float32), np.zeros((32, 10), np.float32))
    built = {"train": splits.train, "validation": splits.validation, "test": splits.test,
             "train_epochs": splits.train_epochs(0, 2), "teacher_views": splits.teacher_views(2),
             "teacher_view": splits.teacher_view(1), "views train_epochs": views.train_epochs(0, 2),
             "views validation": views.validation}
    assert {name: _autotuned(ds) for name, ds in built.items()} == {name: False for name in built}


def test_every_text_pipeline_runs_without_the_autotuner():
    features = glue.Features(
        arrays={split: ({"token_ids": np.ones((8, 6), np.int32), "padding_mask": np.ones((8, 6), bool)},
                        np.arange(8) % 2) for split in ("train", "validation")},
        batch_size=4, seed=0, eval_splits=("validation",))
    assert not _autotuned(features.dataset("validation"))
    assert not _autotuned(features.train_epochs(0, 2))


def test_options_shard_global_batches_by_data():
    import tensorflow as tf

    options = pipeline.options()
    assert options.autotune.enabled is False
    assert options.experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
    assert pipeline.PARALLEL_CALLS >= 1 and pipeline.PREFETCH_BATCHES >= 1


@pytest.mark.parametrize("seconds, flagged", [
    # ResNet-8 epochs with tf.data's autotuner on (issue 40): two clusters, the slow one exactly 5.1 s.
    ([3.63, 5.12, 3.55, 5.12, 3.57, 3.51], True),
    ([3.39, 3.47, 5.12, 5.12, 3.51, 5.12], True),
    # The same with the autotuner off: steady.
    ([3.49, 3.34, 3.47, 3.42, 3.42, 3.36], False),
    # A slow drift over the rounds spreads 1.4x without two clusters.
    ([1.0, 1.07, 1.14, 1.21, 1.28, 1.4], False),
    ([2.0], False),
])
def test_two_speeds_flags_two_clusters_only(seconds, flagged):
    assert speed.two_speeds(seconds) is flagged
