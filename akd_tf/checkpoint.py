"""`TrainingCheckpoint`: everything a ``fit`` needs to resume after ``kill -9``, saved atomically each epoch and,
optionally, every few minutes inside an epoch.

Keras's `BackupAndRestore` writes its weights file in place (a kill during the write leaves a corrupt
backup) and knows nothing of callbacks that carry state across epochs, such as the best weights kept by
`akd_tf.AnnealingSchedule`. A checkpoint here is a directory ``epoch-000007/`` holding

    model.weights.h5     the model's variables and the optimizer's (slots, iterations)
    state.json           the number of finished epochs, their logs, and each stateful callback's state
    callbacks.npz        arrays of the stateful callbacks (e.g. best-so-far weights)

written under a temporary name and renamed when complete, so the newest ``epoch-*`` directory is always
whole. Stateful callbacks implement ``get_state() -> (dict, list of arrays)`` and
``set_state(dict, arrays)``.

Use::

    checkpoint = TrainingCheckpoint("ckpt/", stateful=[schedule_callback])
    start = checkpoint.restore(model)          # 0 when there is no checkpoint yet
    model.fit(..., initial_epoch=start, callbacks=[schedule_callback, ..., checkpoint])

(the checkpoint last, so it records what the other callbacks did at the end of the epoch).

With ``every_minutes``, a checkpoint ``epoch-000007-step-000180`` is also written inside an epoch (after 180 steps
of the 8th), holding the epoch's metric totals too, so that a kill loses minutes, not an epoch (a ResNet-110 epoch
is most of an hour on a CPU). Keras' ``BackupAndRestore(save_freq=N)`` saves inside an epoch too, but resumes at
the start of that epoch, so the steps before the kill are trained twice and the run is not the uninterrupted one.
Resuming there, ``fit`` is given the epochs from ``start`` as before; the checkpoint draws the batches of the steps
already done (``initial_step`` after ``restore``) without training on them, so the data goes on where it stopped,
and every callback sees the epoch's true step numbers. That resumes exactly when an epoch's batches are a function
of the epoch (`akd_tf.data.images.ImageSplits.train_epochs`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import warnings
import weakref

import keras
import numpy as np
import tensorflow as tf

from akd_tf import files, keras_internals

_NAME = re.compile(r"^epoch-(\d{6})(?:-step-(\d{6}))?$")
_RUNNING = weakref.WeakSet()  # checkpoints inside a `fit`, which `request_stop` asks to stop at the next step


def request_stop() -> bool:
    """Asks every `TrainingCheckpoint` inside a running ``fit`` to save at the end of the current training step
    and then raise ``KeyboardInterrupt``: a signal handler's clean stop. False when no ``fit`` is running (stop
    some other way)."""
    running = list(_RUNNING)
    for checkpoint in running:
        checkpoint.stop_requested = True
    return bool(running)


# The batch logs of a step that a resumed ``fit`` passes over (done before the checkpoint) hold this key:
# callbacks that measure speed leave those steps out (`is_skipped`).
SKIPPED = "skipped_step"


def is_skipped(logs) -> bool:
    """Are these the batch logs of a step passed over on resuming inside an epoch?"""
    return bool(logs and logs.get(SKIPPED))


def is_chief(strategy=None) -> bool:
    """False only on the non-chief workers of a multi-worker strategy (they must not write results)."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or ("chief" not in cluster and task_type == "worker" and task_id == 0)


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves the model, optimizer, epoch count, epoch logs and callback states after every epoch.

    Args:
        directory: where the ``epoch-*`` checkpoints live (created when needed).
        stateful: callbacks whose state must survive a restart (``get_state``/``set_state``).
        keep: how many of the newest checkpoints to keep (older ones are deleted once a newer one is whole).
        verbose: 1 prints a line per save.
        every_minutes: also save inside an epoch once this many minutes of training have passed since the last
            save (None: at epoch ends only).
    """

    def __init__(self, directory, stateful=(), keep=1, verbose=0, every_minutes=None):
        super().__init__()
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"`keep` must be a positive integer. Received: keep={keep!r}")
        if every_minutes is not None and (isinstance(every_minutes, bool) or not isinstance(every_minutes, (int, float))
                                          or not every_minutes > 0):
            raise ValueError(f"`every_minutes` must be a number > 0, or None (epoch ends only). "
                             f"Received: every_minutes={every_minutes!r}")
        for callback in stateful:
            if not (hasattr(callback, "get_state") and hasattr(callback, "set_state")):
                raise TypeError(f"{type(callback).__name__} has no get_state/set_state; it cannot be checkpointed.")
        self.directory = directory
        self.stateful = list(stateful)
        self.keep = keep
        self.verbose = verbose
        self.every_seconds = None if every_minutes is None else 60.0 * every_minutes
        self.logs = []  # one dict per finished epoch, restored with the checkpoint
        self.initial_step = 0  # steps of epoch ``restore()`` that the restored checkpoint had done
        self.stop_requested = False
        self._metric_values = None  # the epoch's metric totals at ``initial_step``

    # -- reading ----------------------------------------------------------------------------------
    def _checkpoints(self):
        if not os.path.isdir(self.directory):
            return []
        found = sorted((_position(name), name) for name in os.listdir(self.directory) if _NAME.match(name))
        return [os.path.join(self.directory, name) for _, name in found]

    def latest_position(self) -> tuple:
        """(finished epochs, steps done of the next epoch) of the newest checkpoint; (0, 0) when there is none."""
        checkpoints = self._checkpoints()
        return _position(os.path.basename(checkpoints[-1])) if checkpoints else (0, 0)

    def latest_epoch(self) -> int:
        """The number of finished epochs in the newest checkpoint; 0 when there is none."""
        return self.latest_position()[0]

    def restore(self, model) -> int:
        """Loads the newest checkpoint into ``model`` (built and compiled) and the stateful callbacks.

        Returns the number of finished epochs: pass it to ``fit(initial_epoch=…)``. 0 when there is none. After
        a checkpoint from inside an epoch, ``initial_step`` is the number of that epoch's steps it had done.
        """
        files.remove_stale_temporaries(self.directory)
        checkpoints = self._checkpoints()
        self.initial_step, self._metric_values = 0, None
        if not checkpoints:
            return 0
        path = checkpoints[-1]
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        _load_weights(model, os.path.join(path, "model.weights.h5"))
        if os.path.isfile(os.path.join(path, "random.npz")):
            with np.load(os.path.join(path, "random.npz")) as saved:
                states = _random_states(model)
                if len(saved.files) == len(states):
                    for i, variable in enumerate(states):
                        variable.assign(saved[f"state_{i}"])
        with open(os.path.join(path, "state.json")) as f:
            state = json.load(f)
        arrays = np.load(os.path.join(path, "callbacks.npz"))
        for i, (callback, callback_state) in enumerate(zip(self.stateful, state["callbacks"])):
            count = callback_state.pop("_num_arrays")
            callback.set_state(callback_state, [arrays[f"{i}_{j}"] for j in range(count)])
        self.logs = state["logs"]
        self.initial_step = int(state.get("step", 0))
        if self.initial_step:
            with np.load(os.path.join(path, "metrics.npz")) as saved:
                self._metric_values = [saved[f"v{i}"] for i in range(len(saved.files))]
        return int(state["epoch"])

    # -- inside fit -------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self.stop_requested = False
        self._last_save = time.monotonic()
        _RUNNING.add(self)
        self._to_skip, self.initial_step = self.initial_step, 0  # once: a later fit starts where it is told

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self._to_skip:
            # Keras' fit has no first step: the steps the checkpoint had done draw their batch and train on
            # nothing, so that the data and the callbacks' step numbers go on as in an uninterrupted run. Set here,
            # after the other callbacks' epoch begins: a schedule may have retraced the step there.
            train_function = self.model.train_function

            def passing_over(iterator):
                if self._to_skip:
                    self._to_skip -= 1
                    next(iterator)
                    return {SKIPPED: 1}
                self.model.train_function = train_function
                logs = train_function(iterator)
                if self._metric_values is not None:
                    self._add_metric_totals()
                    logs = self.model.get_metrics_result()
                return logs

            self.model.train_function = passing_over

    def _add_metric_totals(self):
        """Adds the epoch's metric totals before the checkpoint to those of the first step after it. Not before
        that step: compiled metrics are built by their first update. Every metric state here is a sum (Keras'
        `Mean`, accuracy's total and count), so the epoch ends with the uninterrupted run's figures, to the bit."""
        variables = _metric_variables(self.model)
        if len(variables) != len(self._metric_values):
            raise ValueError(f"The checkpoint holds {len(self._metric_values)} metric variables, the model has "
                             f"{len(variables)}: was it compiled with other metrics than the run that saved it?")
        for variable, value in zip(variables, self._metric_values):
            # assign, not assign_add: a metric variable under tf.distribute takes only assign in this context.
            variable.assign(variable.numpy() + value)
        self._metric_values = None

    def on_train_batch_end(self, batch, logs=None):
        steps = (self.params or {}).get("steps")
        if is_skipped(logs) or (steps and batch + 1 >= steps):  # after an epoch's last step: its end checkpoints
            return
        due = self.every_seconds is not None and time.monotonic() - self._last_save >= self.every_seconds
        if due or self.stop_requested:
            self.save(self._epoch, step=batch + 1)
        if self.stop_requested:
            self._stop(f"stopped after step {batch + 1} of epoch {self._epoch + 1}, checkpoint saved")

    def on_train_end(self, logs=None):
        _RUNNING.discard(self)

    def _stop(self, message):
        """Ends the ``fit`` a stop was requested of, its checkpoint written: it no longer counts as running."""
        _RUNNING.discard(self)
        raise KeyboardInterrupt(message)

    # -- writing ----------------------------------------------------------------------------------
    def on_epoch_end(self, epoch, logs=None):
        self.logs = self.logs[:epoch] + [{k: _plain(v) for k, v in (logs or {}).items()}]
        self.save(epoch + 1)
        if self.stop_requested:
            self._stop(f"stopped after epoch {epoch + 1}, checkpoint saved")

    def save(self, epochs_done, step=0):
        """Writes the checkpoint of ``epochs_done`` finished epochs and ``step`` steps of the next one (non-chief
        workers write a throwaway)."""
        self._last_save = time.monotonic()
        chief = is_chief(self.model.distribute_strategy)
        directory = self.directory if chief else tempfile.mkdtemp(prefix="akd_tf_worker_ckpt_")
        final = os.path.join(directory, f"epoch-{epochs_done:06d}" + (f"-step-{step:06d}" if step else ""))
        states, arrays = [], {}
        for i, callback in enumerate(self.stateful):
            state, callback_arrays = callback.get_state()
            states.append({**state, "_num_arrays": len(callback_arrays)})
            arrays.update({f"{i}_{j}": np.asarray(a) for j, a in enumerate(callback_arrays)})
        with files.atomic_path(final) as tmp:
            os.makedirs(tmp)
            self.model.save_weights(os.path.join(tmp, "model.weights.h5"))
            np.savez(os.path.join(tmp, "random.npz"),
                     **{f"state_{i}": np.asarray(v.numpy()) for i, v in enumerate(_random_states(self.model))})
            np.savez(os.path.join(tmp, "callbacks.npz"), **arrays)
            if step:
                np.savez(os.path.join(tmp, "metrics.npz"),
                         **{f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(_metric_variables(self.model))})
            files.write_json(os.path.join(tmp, "state.json"),
                             {"epoch": epochs_done, "step": step, "logs": self.logs, "callbacks": states})
        if not chief:
            shutil.rmtree(directory, ignore_errors=True)
            return
        for old in self._checkpoints()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        if self.verbose:
            keras_internals.print_msg(f"TrainingCheckpoint: saved epoch {epochs_done}"
                                      + (f", step {step}" if step else "") + f" to {final}")


def _position(name):
    """(finished epochs, steps of the next) of a checkpoint directory's name."""
    match = _NAME.match(name)
    return int(match.group(1)), int(match.group(2) or 0)


def _metric_variables(model):
    """The variables of the model's metrics (loss trackers, compiled metrics): an epoch's totals so far."""
    return [variable for metric in model.metrics for variable in metric.variables]


def _random_states(model):
    """The states of the model's random seed generators (Dropout's, and any layer drawing random numbers in
    training), which ``save_weights`` leaves out: without them a resumed run draws other dropout masks than an
    uninterrupted one, and ends with other weights."""
    saved = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in saved and v.path.endswith("seed_generator_state")]


def _plain(value):
    """A log value as a JSON number."""
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else value.tolist()


def _load_weights(model, path):
    """``model.load_weights(path)``, without Keras' notice about the optimizer of a model *inside* ``model`` (a
    distiller's frozen teacher, compiled to be evaluated): that optimizer never trains and its state is not kept,
    so the notice is a false alarm. One about ``model``'s own optimizer, whose state a resume needs, still shows."""
    own = getattr(model.optimizer, "name", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(path)
    for warning in caught:
        text = str(warning.message)
        if text.startswith(keras_internals.SKIPPED_OPTIMIZER_NOTICE) and f"optimizer '{own}'" not in text:
            continue
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
