"""Model files: loading a ``.keras`` file safely and once (`load_model`), saving one without optimizer state
(`save_model`), checking that a model fits the data or is the network it should be, and a digest of its weights."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import warnings
import zipfile

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from akd_tf import files, keras_internals, logits, precision
from akd_tf.config import BadInput
from akd_tf.methods.base import known_shape


# Models `preflight` loaded to check them, by path: the stage that loads the same file next takes it instead of
# reading it again (~3 s for the ResNet-56 teacher, more for a MiniLM).
_checked = {}


def _file_state(path):
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size


# The `Config` field that gives the file of each model a run loads, as its errors name it.
FIELDS = {"teacher": "`teacher_path`", "assistant": "`assistant_path`", "student_init": "`student_init`"}


def load_model(path, what=FIELDS["teacher"], keep=False):
    """Loads a ``.keras`` model with ``safe_mode`` on (no code from the file runs); ``what`` names it in errors.

    ``keep``: hold the model for the next load of the same unchanged file, which takes it unless a distribution
    strategy is in scope (whose variables must be created within it). Each kept model is taken once: two loads
    never share one model. Checks (``keep=True`` again, e.g. the preflight's shape checks and the image size of your
    own images, which read and change nothing) share the kept model, so the file is read once for all of them.

    Raises `BadInput` in one line when the file is missing, not a Keras model, corrupt or unsafe.
    """
    kept = _checked.get(path)
    unchanged = kept is not None and os.path.isfile(path) and kept[0] == _file_state(path)
    if keep and unchanged:
        return kept[1]
    _checked.pop(path, None)
    if unchanged and not keep and not tf.distribute.has_strategy():
        return kept[1]
    model = _load_keras_file(path, what)
    if keep:
        _checked[path] = (_file_state(path), model)
    return model


def _load_keras_file(path, what):
    if not os.path.isfile(path):
        raise BadInput(f"{what} file not found. Received: {path!r}")
    prefix = f"{what} {path!r} is not a loadable Keras model"
    if not path.endswith(".keras"):
        raise BadInput(f"{prefix}: expected a .keras file (Keras 3 format).")
    if not zipfile.is_zipfile(path):
        raise BadInput(f"{prefix}: it is not a .keras zip archive (another format, or a truncated/corrupt file).")
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # keras-hub's tasks compile themselves when built (an Adam, with its variables) even under
            # compile=False; the file holds no optimizer state, by design (`save_model`), so Keras' notice that it
            # skips loading that state is about nothing.
            warnings.filterwarnings("ignore", message=keras_internals.SKIPPED_OPTIMIZER_NOTICE, category=UserWarning)
            model = keras.models.load_model(path, compile=False, safe_mode=True)
        logging.info("Read %s %s in %.1f s", what.strip("`"), path, time.perf_counter() - start)
        return model
    except Exception as error:  # noqa: BLE001 - Keras raises many types for bad files; all mean the same here
        reason = " ".join(str(error).split())
        if "safe_mode" in reason or "arbitrary code" in reason:
            raise BadInput(f"{prefix} with safe_mode=True: it contains Python code (e.g. a Lambda layer) that "
                           "safe mode refuses to run. Rebuild it from registered layers.") from None
        if len(reason) > 200:
            reason = reason[:200] + "…"
        raise BadInput(f"{prefix} (loaded with safe_mode=True): {type(error).__name__}: {reason}") from None


def save_model(model, path):
    """Writes ``model`` to a ``.keras`` file as an uncompiled model: without its optimizer's state, which made the
    file twice the weights' size with SGD momentum and three times with Adam, and which no reader uses (this tool
    and `export` load with ``compile=False``; training resumes from its checkpoints). The model in memory stays
    compiled."""
    with files.atomic_path(path) as tmp, uncompiled(model):
        model.save(tmp)


@contextlib.contextmanager
def uncompiled(model):
    """``model`` shown as uncompiled for the time of a save. Keras 3 writes a file's optimizer (state and settings)
    whenever the model is compiled: a ``.keras`` file's (its include_optimizer is for .h5 files only) and a
    keras-hub preset's weights file, whose reader then warns that it skips the optimizer's variables."""
    if not model.compiled:
        yield
        return
    optimizer = model.optimizer
    model.optimizer, model.compiled = None, False
    try:
        yield
    finally:
        model.optimizer, model.compiled = optimizer, True


def weights_digest(model):
    """A sha256 over every weight of ``model`` (names a cache file computed from it); update it with the rest."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest


def check_fits_data(teacher, path, data_spec, role="teacher", returns="logits"):
    """`BadInput` unless the ``role`` model (a key of `FIELDS`) in ``path`` predicts the dataset's classes from its
    inputs, and returns logits (unless ``returns`` is ``"probabilities"``)."""
    what = FIELDS[role]
    outputs = known_shape(teacher, "outputs")
    inputs = known_shape(teacher, "inputs")
    if outputs is not None and outputs[-1] != data_spec["num_classes"]:
        raise BadInput(f"{what} {path!r} predicts {outputs[-1]} classes; the dataset has "
                       f"{data_spec['num_classes']}.")
    if "input_shape" in data_spec and inputs is not None and tuple(inputs) != tuple(data_spec["input_shape"]):
        raise BadInput(f"{what} {path!r} takes inputs of shape {tuple(inputs)}; the dataset's images are "
                       f"{tuple(data_spec['input_shape'])}.")
    if returns == "logits":
        try:
            logits.check_logits(teacher, role)
        except ValueError as error:
            raise BadInput(f"{what} {path!r}: {error}") from None


def check_same_network(model, net, path, name):
    """`BadInput` unless ``model`` (from ``path``) has the weights of the network ``net`` (built as ``name``)."""
    have = [tuple(w.shape) for w in model.weights]
    want = [tuple(w.shape) for w in net.weights]
    if have != want:
        raise BadInput(f"{FIELDS['student_init']} {path!r} is not a {name}: its weights have other shapes "
                       f"({len(have)} weights, {count_params(model):,} trainable parameters; a {name} has "
                       f"{len(want)}, {count_params(net):,}). Pass a model of `student_net`.")


def count_params(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def in_run_precision(model, config):
    """A built or loaded model set to compute in the run's dtype policy (`akd_tf.precision.follow`): a teacher file
    saved in float32 computes in bfloat16 in a ``--mixed_precision=bfloat16`` run, and the other way round."""
    return precision.follow(model, precision.policy_name(config.mixed_precision))


def forget_checked():
    """Drops the models `load_model` kept for a next load that never came (an earlier run of this process)."""
    _checked.clear()
