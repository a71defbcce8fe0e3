"""akd_tf.checkpoint: TrainingCheckpoint round trips (weights, optimizer, callback state), checkpoints inside an
epoch (a crash mid-epoch resumes to the uninterrupted run's weights and logs; a requested stop saves and stops),
divergence keeping the last good checkpoint, and a stage tracing its step once."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from akd_tf import run
from akd_tf.methods import labels
from akd_tf.callbacks import KeepBest, StopOnDivergence, TrainingDiverged
from akd_tf.checkpoint import TrainingCheckpoint, is_skipped, request_stop
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
    kept, restored_kept = schedule.get_state()[1], restored_schedule.get_state()[1]
    assert len(kept) == len(restored_kept) > 0  # the best phase-2 student's weights
    for a, b in zip(restored_kept, kept):
        np.testing.assert_array_equal(a, b)


def _epochs(start, stop):
    """Epochs as a pure function of their number (4 steps each): what resuming needs."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 3, 32)
    orders = [np.random.default_rng(epoch).permutation(32) for epoch in range(start, stop)]
    order = np.concatenate(orders)
    return tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(8)


class _Crash(keras.callbacks.Callback):
    """Raises after step ``step`` of epoch ``epoch``, as a kill would end the process there."""

    def __init__(self, epoch, step):
        super().__init__()
        self.at, self.steps = (epoch, step), []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append((self.epoch, batch, is_skipped(logs)))
        if (self.epoch, batch + 1) == self.at:
            raise RuntimeError("killed")


def _fit_from_checkpoint(directory, seed, epochs, crash=None):
    model, schedule = _akd(seed), AnnealingSchedule(2, 2, verbose=0)
    history = keras.callbacks.History()
    checkpoint = TrainingCheckpoint(directory, stateful=[schedule], every_minutes=1e-9)  # after every step
    start = checkpoint.restore(model)
    step = checkpoint.initial_step
    callbacks = [schedule, history] + ([crash] if crash else []) + [checkpoint]
    model.fit(_epochs(start, epochs), steps_per_epoch=4, initial_epoch=start, epochs=epochs,
              validation_data=_data(), verbose=0, callbacks=callbacks)
    return model, history, (start, step)


def test_a_crash_inside_an_epoch_resumes_at_its_step_to_the_same_weights_and_logs(tmp_path):
    reference, reference_history, _ = _fit_from_checkpoint(str(tmp_path / "whole"), 0, 4)

    crash = _Crash(epoch=2, step=3)  # after step 3 of epoch 3: phase 2 of AKD, inside an epoch
    with pytest.raises(RuntimeError, match="killed"):
        _fit_from_checkpoint(str(tmp_path / "killed"), 0, 4, crash)
    # The crash came before the checkpoint of step 3: the newest is step 2's, and only it is kept.
    assert os.listdir(tmp_path / "killed") == ["epoch-000002-step-000002"]
    assert TrainingCheckpoint(str(tmp_path / "killed")).latest_position() == (2, 2)

    watch = _Crash(epoch=-1, step=0)
    resumed, history, position = _fit_from_checkpoint(str(tmp_path / "killed"), 1, 4, watch)
    assert position == (2, 2)
    # The steps done before the kill draw their batches but do not train (callbacks see their numbers).
    assert watch.steps[:4] == [(2, 0, True), (2, 1, True), (2, 2, False), (2, 3, False)]
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The resumed epoch's mean loss covers all its steps, those before the kill included.
    assert history.history["loss"] == reference_history.history["loss"][2:]
    assert os.listdir(tmp_path / "killed") == ["epoch-000004"]


def test_a_requested_stop_saves_at_the_end_of_the_step_and_stops(tmp_path):
    model, schedule = _akd(0), AnnealingSchedule(2, 2, verbose=0)
    checkpoint = TrainingCheckpoint(str(tmp_path), stateful=[schedule])
    assert not request_stop()  # no fit is running

    class Signal(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if self.params and batch == 1:
                self.accepted = request_stop()

    signal = Signal()
    with pytest.raises(KeyboardInterrupt, match="after step 2 of epoch 1"):
        model.fit(_epochs(0, 3), steps_per_epoch=4, epochs=3, verbose=0, callbacks=[schedule, signal, checkpoint])
    assert signal.accepted and os.listdir(tmp_path) == ["epoch-000000-step-000002"]
    assert not request_stop()  # the stopped fit no longer counts as running


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
    tf.function trace the whole step a second time."""
    from akd_tf import data, nets

    splits = data.load("cifar10", batch_size=16, validation_size=16, train_size=32, test_size=16, shuffle_seed=0)
    model = nets.build("plane2", splits.num_classes, splits.input_shape, 0.0)
    labels.compile_for_labels(model, keras.optimizers.SGD(0.01, momentum=0.9))
    traced, step = [], model.train_step
    model.train_step = lambda batch: traced.append(1) or step(batch)
    stage = run.Run(Config(dataset="cifar10", verbose=0), str(tmp_path), tf.distribute.get_strategy())
    history = stage.fit(model, splits, "student", 2, (2,), 0.01, [])
    assert len(history["loss"]) == 2 and len(traced) == 1
