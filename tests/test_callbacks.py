"""AnnealingSchedule: temperatures per epoch, best-student restore, optimizer restart, resumed fits."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import akd_tf


def _setup(tau=2, seed=0):
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(96, 6)).astype("float32"), rng.integers(0, 3, 96)
    teacher = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
    student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    akd = akd_tf.AnnealingKD(teacher=teacher, student=student, max_temperature=tau)
    akd.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    train = tf.data.Dataset.from_tensor_slices((x[:64], y[:64])).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[64:], y[64:])).batch(32)
    return akd, train, val


class Probe(keras.callbacks.Callback):
    """Records, per epoch, what the model looks like at epoch begin and end."""

    def __init__(self):
        super().__init__()
        self.begin, self.end = {}, {}

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        self.begin[epoch] = {
            "temperature": self.model.temperature, "phase": self.model.phase,
            "weights": [w.copy() for w in self.model.student.get_weights()],
            "iterations": int(opt.iterations.numpy()) if opt.built else None,
            "momentum_norm": sum(float(np.abs(v.numpy()).sum()) for v in opt.variables if "momentum" in v.path),
        }

    def on_epoch_end(self, epoch, logs=None):
        self.end[epoch] = {"weights": [w.copy() for w in self.model.student.get_weights()],
                           "val_loss": logs["val_loss"]}


def test_temperature_and_phase_per_epoch():
    akd, train, val = _setup(tau=2)
    probe = Probe()
    history = akd.fit(train, validation_data=val, epochs=6, verbose=0,
                      callbacks=[akd_tf.AnnealingSchedule(4, verbose=0), probe]).history
    assert [probe.begin[e]["temperature"] for e in range(4)] == [2, 2, 1, 1]
    assert [probe.begin[e]["phase"] for e in range(6)] == [1, 1, 1, 1, 2, 2]
    assert history["temperature"] == [2, 2, 1, 1, 1, 1]


def test_best_phase1_student_restored_and_optimizer_restarted():
    akd, train, val = _setup(tau=2)
    probe = Probe()
    # Probe first: its on_epoch_end sees the weights before the schedule restores anything.
    schedule = akd_tf.AnnealingSchedule(4, monitor="val_loss", verbose=0)
    akd.fit(train, validation_data=val, epochs=6, verbose=0, callbacks=[probe, schedule])
    best = int(np.argmin([probe.end[e]["val_loss"] for e in range(4)]))
    assert schedule.best[1]["epoch"] == best
    for restored, recorded in zip(probe.begin[4]["weights"], probe.end[best]["weights"]):
        np.testing.assert_array_equal(restored, recorded)
    assert probe.begin[3]["iterations"] == 12 and probe.begin[3]["momentum_norm"] > 0
    assert probe.begin[4]["iterations"] == 0 and probe.begin[4]["momentum_norm"] == 0.0
    assert float(akd.optimizer.learning_rate.numpy()) == pytest.approx(0.1)
    # And at the end, the best phase-2 student.
    best2 = 4 + int(np.argmin([probe.end[e]["val_loss"] for e in (4, 5)]))
    for final, recorded in zip(akd.student.get_weights(), probe.end[best2]["weights"]):
        np.testing.assert_array_equal(final, recorded)


def test_iteration_based_learning_rate_schedule_restarts_in_phase2():
    akd, train, val = _setup(tau=2)
    lr = keras.optimizers.schedules.PiecewiseConstantDecay([6], [0.1, 0.01])
    akd.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9))
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: seen.append(float(akd.optimizer.learning_rate.numpy())))
    akd.fit(train, validation_data=val, epochs=4, verbose=0,
            callbacks=[akd_tf.AnnealingSchedule(2, verbose=0), record])
    assert seen == pytest.approx([0.1, 0.1, 0.1, 0.1])  # 4 steps/epoch: epoch 2 would be at step 8 > 6


def test_resumed_fit_lands_on_the_right_temperature_and_phase():
    akd, train, val = _setup(tau=2)
    probe = Probe()
    akd.fit(train, validation_data=val, epochs=6, initial_epoch=3, verbose=0,
            callbacks=[akd_tf.AnnealingSchedule(4, verbose=0), probe])
    assert probe.begin[3]["temperature"] == 1 and probe.begin[3]["phase"] == 1
    assert probe.begin[4]["phase"] == 2 and probe.begin[4]["iterations"] == 0

    akd, train, val = _setup(tau=2)
    probe = Probe()
    akd.fit(train, validation_data=val, epochs=6, initial_epoch=5, verbose=0,
            callbacks=[akd_tf.AnnealingSchedule(4, verbose=0), probe])
    assert probe.begin[5]["phase"] == 2 and akd.phase == 2


def test_schedule_errors():
    with pytest.raises(ValueError, match="phase1_epochs=3, max_temperature=4"):
        akd_tf.AnnealingSchedule(3, max_temperature=4)
    with pytest.raises(ValueError, match="phase1_epochs=0"):
        akd_tf.AnnealingSchedule(0)
    akd, train, _ = _setup(tau=3)
    with pytest.raises(ValueError, match="phase1_epochs=2, max_temperature=3"):
        akd.fit(train, epochs=1, verbose=0, callbacks=[akd_tf.AnnealingSchedule(2)])
    plain = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    plain.compile("sgd", "mse")
    with pytest.raises(TypeError, match="Received a Sequential"):
        plain.fit(np.zeros((4, 6)), np.zeros((4, 3)), verbose=0, callbacks=[akd_tf.AnnealingSchedule(2)])


def test_prediction_lines_a_line_per_tenth_and_at_the_end(capsys):
    from akd_tf.callbacks import PredictionLines

    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    x = np.zeros((25 * 4, 6), "float32")
    model.predict(x, batch_size=4, verbose=0, callbacks=[PredictionLines("views", batch_size=4, lines=4)])
    lines = capsys.readouterr().out.splitlines()
    # 25 batches in quarters: after batches 7, 13, 19 (the first to pass 1/4, 2/4, 3/4) and 25.
    assert [line.split(" batches")[0] for line in lines] == ["views: 7/25", "views: 13/25", "views: 19/25",
                                                            "views: 25/25"]
    assert lines[-1].startswith("views: 25/25 batches (100 %), ") and lines[-1].endswith("~0 s left")
    with pytest.raises(ValueError, match="Received: 0"):
        PredictionLines("views", batch_size=4, lines=0)


def test_training_lines_a_line_every_interval_with_the_time_left(monkeypatch):
    from akd_tf import keras_internals
    from akd_tf.callbacks import TrainingLines, duration

    now, printed = [0.0], []
    monkeypatch.setattr(keras_internals, "print_msg", printed.append)
    lines = TrainingLines("teacher", batch_size=32, seconds=60, clock=lambda: now[0])
    lines.set_params({"steps": 100, "epochs": 5})
    lines.on_epoch_begin(1)
    for batch in range(100):  # a step every 2 s: a line after 30 steps (60 s), 60 and 90
        now[0] += 2.0
        lines.on_train_batch_end(batch, {"loss": 1.5 - batch / 100})
    assert printed == [
        "teacher: epoch 2/5, step 30/100, loss 1.2100, 16 examples/s, epoch ~2 min left, stage ~12 min left",
        "teacher: epoch 2/5, step 60/100, loss 0.9100, 16 examples/s, epoch ~80 s left, stage ~11 min left",
        "teacher: epoch 2/5, step 90/100, loss 0.6100, 16 examples/s, epoch ~20 s left, stage ~10 min left",
    ]
    assert [duration(s) for s in (45, 720, 3.4 * 3600, 7 * 86400)] == ["45 s", "12 min", "3.4 h", "7.0 days"]
    with pytest.raises(ValueError, match="Received: 0"):
        TrainingLines("teacher", 32, seconds=0)

    # Resumed inside the epoch: the 50 steps done before the checkpoint are passed over in no time and do not
    # count in the rate (the same 16 examples/s), the time left is that of the 50 steps to come.
    from akd_tf.checkpoint import SKIPPED

    printed.clear()
    lines.on_epoch_begin(1)
    for batch in range(50):
        lines.on_train_batch_end(batch, {SKIPPED: 1})
    for batch in range(50, 100):
        now[0] += 2.0
        lines.on_train_batch_end(batch, {"loss": 0.5})
    assert printed == [
        "teacher: epoch 2/5, step 80/100, loss 0.5000, 16 examples/s, epoch ~40 s left, stage ~11 min left"]


def test_best_epoch_keeps_the_best_value_and_a_copy_of_its_weights():
    from akd_tf.callbacks import BestEpoch

    weights = [np.zeros(2)]
    best = BestEpoch("val_loss", "min")
    assert best.offer(0, 0.5, lambda: weights) and best.best == {"epoch": 0, "val_loss": 0.5}
    weights[0][:] = 1.0  # a copy was kept, not the live arrays
    assert not best.offer(1, 0.7, lambda: weights) and best.best["epoch"] == 0
    np.testing.assert_array_equal(best.weights[0], [0.0, 0.0])
    assert best.offer(2, 0.4, lambda: weights) and best.best["epoch"] == 2
    np.testing.assert_array_equal(best.weights[0], [1.0, 1.0])
    record_only = BestEpoch("val_accuracy", "max", keep_weights=False)
    assert record_only.offer(0, 0.1, lambda: weights) and record_only.weights is None
    assert not record_only.offer(1, 0.1, lambda: weights)  # a tie is not better
