"""Annealing Knowledge Distillation (Jafari, Rezagholizadeh, Sharma, Ghodsi; EACL 2021, arXiv 2104.07163): the model
(`AnnealingKD`) and the callback that drives its two phases inside one ``fit`` (`AnnealingSchedule`).

Phase 1 (no labels) fits the student's logits to the annealed teacher's (`akd_tf.losses.annealing_loss`, with
``Φ(T)`` from `akd_tf.schedule.phi`); phase 2 trains on the hard labels. The schedule of T and of the phases is
pure Python in `akd_tf.schedule`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from akd_tf import callbacks, keras_internals, losses, schedule
from akd_tf.methods import registry
from akd_tf.methods.base import AnnealedDistiller


@keras.saving.register_keras_serializable(package="akd_tf")
class AnnealingKD(AnnealedDistiller):
    """Annealing Knowledge Distillation (Jafari et al., EACL 2021, arXiv 2104.07163).

    Phase 1 (``phase == 1``) fits the student's logits to the annealed teacher's, with no labels::

        loss = mean over batch and classes of (z_s(x) − Φ(T) · z_t(x))²,   Φ(T) = 1 − (T − 1) / τ_max

    Phase 2 (``phase == 2``) trains the student on the hard labels with ``compile``'s ``loss`` (default:
    cross-entropy from logits; squared error for a student with one output, a score as STS-B's); the teacher is
    not run. ``temperature`` is
    a variable that the traced step reads; each ``phase`` has its own traced step (retraced when it changes).
    The `akd_tf.AnnealingSchedule` callback sets both per epoch so that one ``fit`` runs both phases::

        akd = AnnealingKD(teacher=teacher, student=student, max_temperature=10)
        akd.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        akd.fit(train, validation_data=val, epochs=p1 + p2, callbacks=[AnnealingSchedule(p1)])

    Args:
        teacher: a trained `keras.Model` returning logits. It is frozen in place (``trainable = False``).
        student: a `keras.Model` returning logits of the same shape.
        max_temperature: τ_max, a positive integer (the paper uses 10 on CIFAR, 7 on GLUE).
        teacher_outputs: ``"logits"`` (default; a teacher ending in softmax/sigmoid is refused) or
            ``"probabilities"``: the teacher's outputs are converted to logits with a clipped log.
    """

    def __init__(self, teacher, student, max_temperature=10, **kwargs):
        super().__init__(teacher, student, max_temperature, **kwargs)
        self._phase = self.add_weight(
            name="phase", shape=(), dtype="float32", trainable=False,
            initializer=keras.initializers.Constant(schedule.PHASE_DISTILL),
        )

    @property
    def phase(self) -> int:
        """1 (logit matching against the annealed teacher) or 2 (hard labels)."""
        return int(round(float(ops.convert_to_numpy(self._phase))))

    @phase.setter
    def phase(self, value):
        if value not in (schedule.PHASE_DISTILL, schedule.PHASE_LABELS):
            raise ValueError(f"`phase` must be 1 or 2. Received: phase={value!r}")
        changed = value != self.phase
        self._phase.assign(float(value))
        if changed:  # each phase has its own traced step (see `uses_teacher`)
            self.retrace_steps()

    def uses_teacher(self):
        # A Python bool read from the phase variable when the step is traced, not a tf.cond in the step: the
        # phase-1 step runs the teacher unconditionally (a teacher inside a tf.cond runs as a slower function on
        # CPU) and the phase-2 step has no teacher at all. The phase setter
        # retraces when the phase changes.
        with tf.init_scope():
            return float(ops.convert_to_numpy(self._phase)) == schedule.PHASE_DISTILL

    def per_example_loss(self, labels, student_logits, teacher_logits):
        if self.uses_teacher():
            return losses.annealing_loss(student_logits, teacher_logits,
                                         self.annealed_phi())
        return self.labelled_loss(labels, student_logits)


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
        mode = callbacks.resolve_mode(monitor, mode)
        self.phase1_epochs = phase1_epochs
        self.max_temperature = max_temperature
        self.monitor = monitor
        self.mode = mode
        self.restore_best_weights = restore_best_weights
        self.reset_optimizer = reset_optimizer
        self.verbose = verbose
        self._phases = {}  # phase -> callbacks.BestEpoch: each phase's best student, as KeepBest keeps a fit's
        self._warned_missing_monitor = False
        self._pending_message = None

    # -- helpers ----------------------------------------------------------------------------------
    def _print(self, message):
        if self.verbose:
            keras_internals.print_msg(message)

    @property
    def best(self):
        """``{phase: {"epoch": int, monitor: float}}``: the best epoch of each phase so far."""
        return {phase: tracker.best for phase, tracker in self._phases.items() if tracker.best is not None}

    def _tracker(self, phase):
        if phase not in self._phases:
            self._phases[phase] = callbacks.BestEpoch(self.monitor, self.mode, self.restore_best_weights)
        return self._phases[phase]

    def _restore_best(self, phase):
        """Reloads the best student of ``phase``; returns what it did, for the log."""
        tracker = self._phases.get(phase)
        if tracker is None or tracker.weights is None:
            return f"no best phase-{phase} student recorded; keeping the last weights."
        self.model.student.set_weights(tracker.weights)
        best = tracker.best
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
        if schedule.PHASE_DISTILL in self._phases:  # phase 1's best student is done with
            self._phases[schedule.PHASE_DISTILL].weights = None
        # Printed when phase 2 starts, not inside the progress line of the epoch that ends phase 1.
        self._pending_message = f"AnnealingSchedule: {restored}Phase 2 (hard labels); " + (
            "optimizer and learning-rate schedule restarted." if self.reset_optimizer else "optimizer state kept."
        )

    # -- checkpointing (akd_tf.checkpoint.TrainingCheckpoint) ---------------------------------------
    def get_state(self):
        """The best-so-far record of each phase and the current phase's best weights (phase 1's are dropped when
        phase 2 starts), so a resumed run selects the same students."""
        state = {"best": {str(phase): best for phase, best in self.best.items()},
                 "warned_missing_monitor": self._warned_missing_monitor}
        kept = [tracker.weights for tracker in self._phases.values() if tracker.weights is not None]
        return state, list(kept[-1] if kept else [])

    def set_state(self, state, arrays):
        self._phases = {}
        for phase, best in sorted((int(phase), dict(best)) for phase, best in state["best"].items()):
            self._tracker(phase).best = best
        self._warned_missing_monitor = bool(state["warned_missing_monitor"])
        if arrays and self._phases:  # the weights of the latest phase with a record
            self._phases[max(self._phases)].weights = [np.array(a) for a in arrays]

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
        else:
            self._tracker(phase).offer(epoch, float(value), self.model.student.get_weights)
        if epoch == self.phase1_epochs - 1:
            self._enter_phase2(restore=self.restore_best_weights)

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.model.phase == schedule.PHASE_LABELS:
            self._print(f"AnnealingSchedule: {self._restore_best(schedule.PHASE_LABELS)}")


class _Annealing(registry.Method):
    name, title, short = "akd", "Annealing-KD", "AKD"
    help = ("Annealing-KD: phase 1 fits the student's logits to the annealed teacher's over phase1_epochs (T from "
            "max_temperature down to 1), phase 2 trains on the labels for phase2_epochs")
    keeps_best = True  # AnnealingSchedule keeps the best student of each phase

    def check(self, config):
        AnnealingSchedule(config.phase1_epochs, config.max_temperature)

    def build(self, teacher, student, config, *, optimizer, teacher_outputs="logits", regression=False,
              monitor="val_accuracy"):
        model = AnnealingKD(teacher=teacher, student=student, max_temperature=config.max_temperature,
                            teacher_outputs=teacher_outputs)
        model.compile(optimizer=optimizer)
        return registry.Training(model, early=(AnnealingSchedule(config.phase1_epochs, config.max_temperature,
                                                                 monitor=monitor, verbose=config.verbose),))

    def phases(self, config, epochs):
        # Phase 2 restarts the learning rate, at phase2_learning_rate when set (the recipe: learning_rate).
        return ((config.phase1_epochs, epochs - config.phase1_epochs),
                (config.learning_rate, config.phase2_learning_rate or config.learning_rate))

    def cached_teacher_epochs(self, config):
        return config.phase1_epochs

    def summary(self, config, history, epochs, phase):
        return {"phase1": phase(0, config.phase1_epochs), "phase2": phase(config.phase1_epochs, epochs)}

    def phase_boundary(self, config):
        return config.phase1_epochs


registry.register(_Annealing())
