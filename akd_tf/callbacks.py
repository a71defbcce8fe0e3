"""`AnnealingSchedule`: the Keras callback that runs both Annealing-KD phases inside one ``fit``."""

from __future__ import annotations

import time

import keras
import numpy as np
from keras.src.utils import io_utils  # the printer Keras callbacks use (respects absl logging)

from akd_tf import schedule


def _resolve_mode(monitor, mode):
    if mode not in ("auto", "max", "min"):
        raise ValueError(f"`mode` must be 'auto', 'max' or 'min'. Received: mode={mode!r}")
    if mode == "auto":
        higher_is_better = ("acc", "auc", "corr", "f1", "matthews", "pearson", "spearman")
        return "max" if any(name in monitor for name in higher_is_better) else "min"
    return mode


def _better(value, previous, mode):
    """Whether ``value`` beats ``previous`` (None: nothing recorded yet) in ``mode`` ``"max"``/``"min"``."""
    return previous is None or (value > previous if mode == "max" else value < previous)


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


class AnnealingSchedule(keras.callbacks.Callback):
    """Sets an `akd_tf.AnnealingKD` model's temperature and phase at every epoch.

    * Epochs ``[0, phase1_epochs)`` are phase 1; T starts at τ_max and drops by 1 every
      ``phase1_epochs // τ_max`` epochs (`akd_tf.schedule.temperature_at`). Later epochs are phase 2.
    * At the end of the last phase-1 epoch: reload the best phase-1 student by ``monitor`` (when the
      validation data provides it), switch to phase 2, and return the optimizer to its just-built state
      (slots zeroed, ``iterations`` and so any iteration-based learning-rate schedule restarted), as the
      official recipe does. An epoch-based `LearningRateScheduler` restarts by itself if it is given the
      epoch within the phase (`akd_tf.schedule.learning_rate_at`).
    * At the end of training, reload the best phase-2 student (``restore_best_weights``).
    * Adds ``temperature``, ``phi`` and ``phase`` to each epoch's logs (History, CSV, TensorBoard).

    It reads the epoch index Keras passes in, so ``fit(..., initial_epoch=k)`` lands on the right T
    and phase.

    Args:
        phase1_epochs: number of phase-1 epochs; at least τ_max.
        max_temperature: optional τ_max, to check the schedule when the callback is built rather than
            when training starts; it must equal the model's.
        monitor: the log entry that selects the best student of each phase (higher is better for
            accuracy-like names, lower otherwise; ``mode`` overrides).
        mode: ``"auto"``, ``"max"`` or ``"min"``.
        restore_best_weights: reload the best student of each phase at its end.
        reset_optimizer: restart the optimizer state for phase 2.
        verbose: 0 silent, 1 a line per epoch.
    """

    def __init__(
        self,
        phase1_epochs,
        max_temperature=None,
        monitor="val_accuracy",
        mode="auto",
        restore_best_weights=True,
        reset_optimizer=True,
        verbose=1,
    ):
        super().__init__()
        if max_temperature is not None:
            schedule.validate_schedule(phase1_epochs, max_temperature)
        elif isinstance(phase1_epochs, bool) or not isinstance(phase1_epochs, int) or phase1_epochs < 1:
            raise ValueError(f"`phase1_epochs` must be a positive integer. Received: phase1_epochs={phase1_epochs!r}")
        mode = _resolve_mode(monitor, mode)
        self.phase1_epochs = phase1_epochs
        self.max_temperature = max_temperature
        self.monitor = monitor
        self.mode = mode
        self.restore_best_weights = restore_best_weights
        self.reset_optimizer = reset_optimizer
        self.verbose = verbose
        self.best = {}  # phase -> {"epoch": int, monitor: float}
        self._best_weights = None
        self._warned_missing_monitor = False
        self._pending_message = None

    # -- helpers ----------------------------------------------------------------------------------
    def _print(self, message):
        if self.verbose:
            io_utils.print_msg(message)

    def _improved(self, value, phase):
        return _better(value, self.best.get(phase, {}).get(self.monitor), self.mode)

    def _restore_best(self, phase):
        """Reloads the best student of ``phase``; returns what it did, for the log."""
        if self._best_weights is None:
            return f"no best phase-{phase} student recorded; keeping the last weights."
        self.model.student.set_weights(self._best_weights)
        best = self.best[phase]
        return (
            f"restored the best phase-{phase} student "
            f"(epoch {best['epoch'] + 1}, {self.monitor}={best[self.monitor]:.4f})."
        )

    def _reset_optimizer(self):
        optimizer = self.model.optimizer
        if optimizer is None or not optimizer.built:
            return
        # A fresh optimizer from the same config, built on the same variables, holds exactly the
        # just-built state of any optimizer (zero slots, iterations 0, the configured learning rate).
        fresh = type(optimizer).from_config(optimizer.get_config())
        fresh.build(self.model.trainable_variables)
        if len(fresh.variables) != len(optimizer.variables):
            raise RuntimeError(
                f"Cannot reset {type(optimizer).__name__}: a fresh copy has {len(fresh.variables)} "
                f"variables, the trained one {len(optimizer.variables)}."
            )
        for variable, initial in zip(optimizer.variables, fresh.variables):
            variable.assign(initial.value)

    def _enter_phase2(self, restore):
        restored = self._restore_best(schedule.PHASE_DISTILL) + " " if restore else ""
        self.model.phase = schedule.PHASE_LABELS
        self.model.temperature = 1
        if self.reset_optimizer:
            self._reset_optimizer()
        self._best_weights = None
        # Printed when phase 2 starts, not inside the progress line of the epoch that ends phase 1.
        self._pending_message = f"AnnealingSchedule: {restored}Phase 2 (hard labels); " + (
            "optimizer and learning-rate schedule restarted." if self.reset_optimizer else "optimizer state kept."
        )

    # -- checkpointing (akd_tf.checkpoint.TrainingCheckpoint) ---------------------------------------
    def get_state(self):
        """The best-so-far record and weights, so a resumed run selects the same students."""
        state = {"best": {str(phase): best for phase, best in self.best.items()},
                 "warned_missing_monitor": self._warned_missing_monitor}
        return state, list(self._best_weights or [])

    def set_state(self, state, arrays):
        self.best = {int(phase): dict(best) for phase, best in state["best"].items()}
        self._warned_missing_monitor = bool(state["warned_missing_monitor"])
        self._best_weights = [np.array(a) for a in arrays] or None

    # -- Keras hooks ------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        model = self.model
        if not all(hasattr(model, name) for name in ("temperature", "phase", "max_temperature", "student")):
            raise TypeError(
                "AnnealingSchedule drives an akd_tf.AnnealingKD model (with `temperature`, `phase` and "
                f"`max_temperature`). Received a {type(model).__name__}."
            )
        if self.max_temperature is not None and self.max_temperature != model.max_temperature:
            raise ValueError(
                f"AnnealingSchedule(max_temperature={self.max_temperature}) does not match the model's "
                f"max_temperature={model.max_temperature}."
            )
        schedule.validate_schedule(self.phase1_epochs, model.max_temperature)

    def on_epoch_begin(self, epoch, logs=None):
        if self._pending_message:
            self._print(self._pending_message)
            self._pending_message = None
        phase = schedule.phase_at(epoch, self.phase1_epochs)
        if phase == schedule.PHASE_LABELS and self.model.phase == schedule.PHASE_DISTILL:
            # A fit resumed past the boundary (initial_epoch >= phase1_epochs): the best phase-1
            # student is not known to this fit, so the current weights carry on.
            self._enter_phase2(restore=False)
        if phase == schedule.PHASE_DISTILL:
            self.model.phase = phase
            self.model.temperature = schedule.temperature_at(epoch, self.phase1_epochs, self.model.max_temperature)
            self._print(
                f"AnnealingSchedule: epoch {epoch + 1}, phase 1, T={self.model.temperature}, "
                f"Φ(T)={self.model.phi:.3f}"
            )

    def on_epoch_end(self, epoch, logs=None):
        phase = self.model.phase
        if logs is not None:
            logs.update(temperature=float(self.model.temperature), phi=float(self.model.phi), phase=float(phase))
        value = None if logs is None else logs.get(self.monitor)
        if value is None:
            if not self._warned_missing_monitor:
                self._print(
                    f"AnnealingSchedule: `{self.monitor}` is not in the logs (no validation data?); "
                    "each phase keeps its last weights."
                )
                self._warned_missing_monitor = True
        elif self._improved(float(value), phase):
            self.best[phase] = {"epoch": epoch, self.monitor: float(value)}
            if self.restore_best_weights:
                self._best_weights = [np.array(w) for w in self.model.student.get_weights()]
        if epoch == self.phase1_epochs - 1:
            self._enter_phase2(restore=self.restore_best_weights)

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.model.phase == schedule.PHASE_LABELS:
            self._print(f"AnnealingSchedule: {self._restore_best(schedule.PHASE_LABELS)}")


class KeepBest(keras.callbacks.Callback):
    """Keeps the weights of the best epoch by ``monitor`` and restores them when training ends.

    `keras.callbacks.EarlyStopping(restore_best_weights=True)` without the stopping, plus
    ``get_state``/``set_state`` so that the best-so-far weights survive a resumed run.
    """

    def __init__(self, monitor="val_accuracy", mode="auto", verbose=1):
        super().__init__()
        mode = _resolve_mode(monitor, mode)
        self.monitor, self.mode, self.verbose = monitor, mode, verbose
        self.best = None  # {"epoch": int, monitor: float}
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        if _better(value, None if self.best is None else self.best[self.monitor], self.mode):
            self.best = {"epoch": epoch, self.monitor: value}
            self.best_weights = [np.array(w) for w in self.model.get_weights()]

    def on_train_end(self, logs=None):
        if self.best_weights is None:
            return
        self.model.set_weights(self.best_weights)
        if self.verbose:
            io_utils.print_msg(
                f"KeepBest: restored the weights of epoch {self.best['epoch'] + 1} "
                f"({self.monitor}={self.best[self.monitor]:.4f})."
            )

    def get_state(self):
        return {"best": self.best}, list(self.best_weights or [])

    def set_state(self, state, arrays):
        self.best = state["best"]
        self.best_weights = [np.array(a) for a in arrays] or None


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
        io_utils.print_msg(f"{self.label}: {done}/{self._steps} batches ({100 * done // self._steps} %), "
                           f"{done * self.batch_size / elapsed:,.0f} images/s, {elapsed:.0f} s, ~{left:.0f} s left")
