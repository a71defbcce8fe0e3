"""akd_tf.checkpoint: TrainingCheckpoint round trips (weights, optimizer, callback state), divergence keeping the
last good checkpoint, and a stage tracing its step once."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from akd_tf import run
from akd_tf.methods import labels
from akd_tf.callbacks import KeepBest, StopOnDivergence, TrainingDiverged
from akd_tf.checkpoint import TrainingCheckpoint
from akd_tf.config import Config
from akd_tf.methods import AnnealingKD, AnnealingSchedule


def _akd(seed):
    keras.utils.set_random_seed(seed)
    net = lambda name: keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name=name)  # noqa: E731
    model = AnnealingKD(teacher=net("teacher"), student=net("student"), max_temperature=2)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return model


def _data():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 3, 32)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def test_checkpoint_round_trip_restores_weights_optimizer_and_callback_state(tmp_path):
    model, schedule = _akd(0), AnnealingSchedule(2, 2, verbose=0)
    checkpoint = TrainingCheckpoint(str(tmp_path), stateful=[schedule])
    model.fit(_data(), validation_data=_data(), epochs=3, verbose=0, callbacks=[schedule, checkpoint])
    assert sorted(os.listdir(tmp_path)) == ["epoch-000003"]  # older checkpoints replaced

    restored, restored_schedule = _akd(1), AnnealingSchedule(2, 2, verbose=0)
    assert TrainingCheckpoint(str(tmp_path), stateful=[restored_schedule]).restore(restored) == 3
    for a, b in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(restored.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(restored.optimizer.iterations.numpy()) == 4  # reset at the phase boundary, then one epoch
    assert (restored.phase, restored.temperature) == (2, 1)
    assert restored_schedule.best == schedule.best and set(schedule.best) == {1, 2}
    for a, b in zip(restored_schedule._best_weights, schedule._best_weights):
        np.testing.assert_array_equal(a, b)


def test_divergence_stops_at_the_first_bad_batch_and_keeps_the_last_good_checkpoint(tmp_path):
    model = _akd(0)
    keep = KeepBest(verbose=0)
    checkpoint = TrainingCheckpoint(str(tmp_path), stateful=[keep])
    blow_up = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.05 if epoch == 0 else 1e38)
    with pytest.raises(TrainingDiverged, match=r"became (nan|inf) at epoch 2, batch \d \(phase 1, T=2\)"):
        model.fit(_data(), validation_data=_data(), epochs=3, verbose=0,
                  callbacks=[blow_up, keep, StopOnDivergence(), checkpoint])
    assert os.listdir(tmp_path) == ["epoch-000001"]
    fresh = _akd(1)
    assert TrainingCheckpoint(str(tmp_path), stateful=[KeepBest()]).restore(fresh) == 1
    assert all(np.isfinite(w).all() for w in fresh.get_weights())


def test_a_stage_traces_its_training_step_once(tmp_path):
    """The optimizer is built before ``fit``: built by the first traced step instead, its variables made
    tf.function trace the whole step a second time (half of a MiniLM's first step here)."""
    from akd_tf import data, nets

    splits = data.load("cifar10", batch_size=16, validation_size=16, train_size=32, test_size=16, shuffle_seed=0)
    model = nets.build("plane2", splits.num_classes, splits.input_shape, 0.0)
    labels.compile_for_labels(model, keras.optimizers.SGD(0.01, momentum=0.9))
    traced, step = [], model.train_step
    model.train_step = lambda batch: traced.append(1) or step(batch)
    stage = run.Run(Config(dataset="cifar10", verbose=0), str(tmp_path), tf.distribute.get_strategy())
    history = stage.fit(model, splits, "student", 2, (2,), 0.01, [])
    assert len(history["loss"]) == 2 and len(traced) == 1
