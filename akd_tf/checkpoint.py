"""`TrainingCheckpoint`: everything a ``fit`` needs to resume after ``kill -9``, saved atomically each epoch.

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
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from akd_tf import files, keras_internals

_NAME = re.compile(r"^epoch-(\d{6})$")


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
    """

    def __init__(self, directory, stateful=(), keep=1, verbose=0):
        super().__init__()
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"`keep` must be a positive integer. Received: keep={keep!r}")
        for callback in stateful:
            if not (hasattr(callback, "get_state") and hasattr(callback, "set_state")):
                raise TypeError(f"{type(callback).__name__} has no get_state/set_state; it cannot be checkpointed.")
        self.directory = directory
        self.stateful = list(stateful)
        self.keep = keep
        self.verbose = verbose
        self.logs = []  # one dict per finished epoch, restored with the checkpoint

    # -- reading ----------------------------------------------------------------------------------
    def _checkpoints(self):
        if not os.path.isdir(self.directory):
            return []
        found = sorted((int(m.group(1)), name) for name in os.listdir(self.directory) if (m := _NAME.match(name)))
        return [os.path.join(self.directory, name) for _, name in found]

    def latest_epoch(self) -> int:
        """The number of finished epochs in the newest checkpoint; 0 when there is none."""
        checkpoints = self._checkpoints()
        return int(_NAME.match(os.path.basename(checkpoints[-1])).group(1)) if checkpoints else 0

    def restore(self, model) -> int:
        """Loads the newest checkpoint into ``model`` (built and compiled) and the stateful callbacks.

        Returns the number of finished epochs: pass it to ``fit(initial_epoch=…)``. 0 when there is none.
        """
        files.remove_stale_temporaries(self.directory)
        checkpoints = self._checkpoints()
        if not checkpoints:
            return 0
        path = checkpoints[-1]
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(path, "model.weights.h5"))
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
        return int(state["epoch"])

    # -- writing ----------------------------------------------------------------------------------
    def on_epoch_end(self, epoch, logs=None):
        self.logs = self.logs[:epoch] + [{k: _plain(v) for k, v in (logs or {}).items()}]
        self.save(epoch + 1)

    def save(self, epochs_done):
        """Writes the checkpoint of ``epochs_done`` finished epochs (non-chief workers write a throwaway)."""
        chief = is_chief(self.model.distribute_strategy)
        directory = self.directory if chief else tempfile.mkdtemp(prefix="akd_tf_worker_ckpt_")
        final = os.path.join(directory, f"epoch-{epochs_done:06d}")
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
            files.write_json(os.path.join(tmp, "state.json"),
                             {"epoch": epochs_done, "logs": self.logs, "callbacks": states})
        if not chief:
            shutil.rmtree(directory, ignore_errors=True)
            return
        for old in self._checkpoints()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        if self.verbose:
            keras_internals.print_msg(f"TrainingCheckpoint: saved epoch {epochs_done} to {final}")


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
