"""Training callbacks every method and stage uses: `KeepBest` (the best epoch's weights), `StopOnDivergence`,
`LinearDecay` (the GLUE learning rate), `ValidationMetrics`, `PredictionLines` and `TrainingLines`. The callbacks that drive a
method live beside its model (`akd_tf.methods`)."""

from __future__ import annotations

import time

import keras
import numpy as np

from akd_tf import checkpoint, keras_internals, schedule


def resolve_mode(monitor, mode):
    if mode not in ("auto", "max", "min"):
        raise ValueError(f"`mode` must be 'auto', 'max' or 'min'. Received: mode={mode!r}")
    if mode == "auto":
        higher_is_better = ("acc", "auc", "corr", "f1", "matthews", "pearson", "spearman")
        return "max" if any(name in monitor for name in higher_is_better) else "min"
    return mode


def better(value, previous, mode):
    """Whether ``value`` beats ``previous`` (None: nothing recorded yet) in ``mode`` ``"max"``/``"min"``."""
    return previous is None or (value > previous if mode == "max" else value < previous)


class BestEpoch:
    """The best epoch by ``monitor`` so far and, with ``keep_weights``, a copy of the weights it ended with: what
    `KeepBest` keeps over a fit and `akd_tf.AnnealingSchedule` over each phase, one implementation for both.

    ``best`` is ``{"epoch": int, monitor: float}`` or None; ``weights`` the copied arrays or None."""

    def __init__(self, monitor, mode, keep_weights=True):
        self.monitor, self.mode, self.keep_weights = monitor, mode, keep_weights
        self.best, self.weights = None, None

    def offer(self, epoch, value, get_weights) -> bool:
        """Records ``epoch`` when ``value`` beats the best so far, copying ``get_weights()``; whether it did."""
        if not better(value, None if self.best is None else self.best[self.monitor], self.mode):
            return False
        self.best = {"epoch": epoch, self.monitor: value}
        if self.keep_weights:
            self.weights = [np.array(w) for w in get_weights()]
        return True


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


class StopOnDivergence(keras.callbacks.Callback):
    """Raises `TrainingDiverged` at the first batch whose loss is NaN or infinite.

    Unlike `keras.callbacks.TerminateOnNaN`, it stops ``fit`` at once, before any ``on_epoch_end``
    hook can record the diverged weights as a checkpoint or a best model.
    """

    def __init__(self):
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            where = f"epoch {self._epoch + 1}, batch {batch + 1}"
            if hasattr(self.model, "phase") and hasattr(self.model, "temperature"):
                where += f" (phase {self.model.phase}, T={self.model.temperature})"
            raise TrainingDiverged(f"the training loss became {float(loss)} at {where}")


class KeepBest(keras.callbacks.Callback):
    """Keeps the weights of the best epoch by ``monitor`` and restores them when training ends.

    `keras.callbacks.EarlyStopping(restore_best_weights=True)` without the stopping, plus
    ``get_state``/``set_state`` so that the best-so-far weights survive a resumed run.
    """

    def __init__(self, monitor="val_accuracy", mode="auto", verbose=1):
        super().__init__()
        mode = resolve_mode(monitor, mode)
        self.monitor, self.mode, self.verbose = monitor, mode, verbose
        self._best = BestEpoch(monitor, mode)

    @property
    def best(self):
        """``{"epoch": int, monitor: float}`` of the best epoch so far, or None."""
        return self._best.best

    @property
    def best_weights(self):
        return self._best.weights

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None:
            self._best.offer(epoch, float(value), self.model.get_weights)

    def on_train_end(self, logs=None):
        if self.best_weights is None:
            return
        self.model.set_weights(self.best_weights)
        if self.verbose:
            keras_internals.print_msg(f"KeepBest: restored the weights of epoch {self.best['epoch'] + 1} "
                                      f"({self.monitor}={self.best[self.monitor]:.4f}).")

    def get_state(self):
        return {"best": self.best}, list(self.best_weights or [])

    def set_state(self, state, arrays):
        self._best.best = state["best"]
        self._best.weights = [np.array(a) for a in arrays] or None


class LinearDecay(keras.callbacks.Callback):
    """Sets the learning rate before every batch: linear decay from ``base_learning_rate`` to 0 over each
    phase, restarting with each phase (`akd_tf.schedule.linear_learning_rate_at`). A pure function of
    (epoch, batch), so it needs no state to resume."""

    def __init__(self, base_learning_rate, phase_epochs, steps_per_epoch):
        super().__init__()
        self.base_learning_rate = schedule.per_phase(base_learning_rate, len(phase_epochs))  # one rate per phase
        self.steps_per_epoch = int(steps_per_epoch)
        self.phase_steps = tuple(int(e) * self.steps_per_epoch for e in phase_epochs)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        step = self._epoch * self.steps_per_epoch + batch
        self.model.optimizer.learning_rate = schedule.linear_learning_rate_at(
            step, self.phase_steps, self.base_learning_rate)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class ValidationMetrics(keras.callbacks.Callback):
    """Adds metrics of the whole validation set's outputs to each epoch's logs as ``val_<name>``: those that
    are not means over batches (Matthews and Pearson correlation, F1), so model selection can use them.

    ``metric_fn(outputs, labels) -> {name: value}``; ``dataset`` yields the model's inputs in the order
    of ``labels``. Put it before the callbacks that read these logs.
    """

    def __init__(self, dataset, labels, metric_fn):
        super().__init__()
        self.dataset, self.labels, self.metric_fn = dataset, labels, metric_fn

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        outputs = self.model.predict(self.dataset, verbose=0)
        for name, value in self.metric_fn(outputs, self.labels).items():
            logs[f"val_{name}"] = float(value)


class PredictionLines(keras.callbacks.Callback):
    """A line each tenth of a long ``predict`` (batches done, rate, time left), for logs written with
    ``verbose=2``, where Keras prints only when the pass has ended: the teacher's pass over K views of the
    training set is ~30 minutes of silence on a CPU otherwise. Needs ``predict`` to know its number of batches."""

    def __init__(self, label, batch_size, lines=10):
        super().__init__()
        if lines < 1:
            raise ValueError(f"`lines` must be at least 1. Received: {lines}")
        self.label, self.batch_size, self.lines = label, batch_size, lines

    def on_predict_begin(self, logs=None):
        self._steps = self.params.get("steps")
        self._start, self._next = time.perf_counter(), 1

    def on_predict_batch_end(self, batch, logs=None):
        if not self._steps:
            return
        done = batch + 1
        if done * self.lines < self._next * self._steps and done != self._steps:
            return
        self._next = done * self.lines // self._steps + 1
        elapsed = time.perf_counter() - self._start
        left = elapsed * (self._steps - done) / done
        keras_internals.print_msg(f"{self.label}: {done}/{self._steps} batches ({100 * done // self._steps} %), "
                                  f"{done * self.batch_size / elapsed:,.0f} images/s, {elapsed:.0f} s, "
                                  f"~{left:.0f} s left")


def duration(seconds: float) -> str:
    """``seconds`` in the largest unit that reads at a glance: ``45 s``, ``12 min``, ``3.4 h``, ``2.1 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class TrainingLines(keras.callbacks.Callback):
    """A line every ``seconds`` of training, for logs written with ``verbose=2``, where Keras prints only when an
    epoch has ended: an epoch of a ResNet-110 teacher on a CPU is most of an hour of silence otherwise. The line
    gives the stage, epoch and step, the mean loss of the epoch so far, the rate, and the time left of the epoch and
    of the stage (from this epoch's rate). ``clock`` is for tests."""

    def __init__(self, label, batch_size, seconds=60.0, clock=time.monotonic):
        super().__init__()
        if not seconds > 0:
            raise ValueError(f"`seconds` must be > 0. Received: {seconds}")
        self.label, self.batch_size, self.seconds, self.clock = label, batch_size, seconds, clock

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._start, self._passed = epoch, self.clock(), 0
        self._next = self._start + self.seconds

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        if checkpoint.is_skipped(logs):  # done before a resume: the rate counts from the first step trained
            self._start, self._passed = now, batch + 1
            return
        if now < self._next:
            return
        self._next = now + self.seconds
        steps, epochs, done = self.params.get("steps"), self.params.get("epochs"), batch + 1
        elapsed = max(now - self._start, 1e-9)
        trained = done - self._passed
        line = f"{self.label}: epoch {self._epoch + 1}/{epochs}, step {done}" + (f"/{steps}" if steps else "")
        if logs and logs.get("loss") is not None:
            line += f", loss {float(logs['loss']):.4f}"
        line += f", {trained * self.batch_size / elapsed:,.0f} examples/s"
        if steps:
            epoch_left = elapsed * (steps - done) / trained
            stage_left = epoch_left + (epochs - self._epoch - 1) * elapsed * steps / trained
            line += f", epoch ~{duration(epoch_left)} left, stage ~{duration(stage_left)} left"
        keras_internals.print_msg(line)
