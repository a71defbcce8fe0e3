"""Examples that a user brings for calibration and checking, instead of a TFDS dataset: an array of inputs, an
``(x, y)`` pair of arrays, a `tf.data.Dataset` of ``x`` or ``(x, y)`` (batched or not), or an ``.npz`` file
with arrays ``x`` and ``y``. Everything is checked against the student's input before any conversion, and
each error is one line naming what was received and what is expected.

Inputs are used as they are: prepare them exactly as the model was trained on them (e.g. normalised images).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf


def read_npz(path: str, flag: str, labels: bool = True):
    """``(x, y)`` from an ``.npz`` file (``y`` is None when ``labels`` is False and the file has none)."""
    expected = "arrays x (inputs)" + (" and y (integer labels)" if labels else " and optionally y")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{flag} file not found. Received: {path!r}; expected an .npz file with {expected}.")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"{flag} {path!r} is not a NumPy .npz file ({type(error).__name__}); expected {expected} "
                         "(np.savez(path, x=..., y=...)).") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{flag} {path!r} holds a single array, not an .npz archive; expected {expected} "
                         "(np.savez(path, x=..., y=...)).")
    with archive:
        missing = [name for name in ("x", "y") if name not in archive.files and (name == "x" or labels)]
        if missing:
            raise ValueError(f"{flag} {path!r} has no array {' or '.join(missing)}; it holds {sorted(archive.files)}. "
                             f"Expected {expected}.")
        return archive["x"], archive["y"] if "y" in archive.files else None


def _from_dataset(dataset: tf.data.Dataset, input_shape: tuple, what: str, limit: int | None):
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY and limit is None:
        raise ValueError(f"{what} is an infinite tf.data.Dataset (repeat()?); pass a finite one, e.g. dataset.take(n).")
    xs, ys, count = [], [], 0
    for element in dataset.as_numpy_iterator():
        if isinstance(element, tuple) and len(element) != 2:
            raise ValueError(f"{what}: a tf.data.Dataset of x or (x, y) elements is expected. Received tuples of "
                             f"{len(element)}.")
        x, y = element if isinstance(element, tuple) else (element, None)
        if isinstance(x, dict):
            raise ValueError(f"{what}: a tf.data.Dataset of x or (x, y) elements is expected, x an array. Received "
                             f"a dict of {sorted(x)}.")
        x = np.asarray(x)
        if x.ndim == len(input_shape):  # unbatched: one example per element
            x, y = x[np.newaxis], None if y is None else np.asarray(y)[np.newaxis]
        xs.append(x)
        ys.append(y)
        count += len(x)
        if limit is not None and count >= limit:
            break
    if not xs:
        raise ValueError(f"{what} is an empty tf.data.Dataset.")
    if len({x.shape[1:] for x in xs}) > 1:
        raise ValueError(f"{what}: batches of different example shapes {sorted({x.shape[1:] for x in xs})}; the "
                         f"student takes {tuple(input_shape)}.")
    labels = None if any(y is None for y in ys) else np.concatenate([np.reshape(y, (len(y), -1)) for y in ys])
    return np.concatenate(xs), labels


def examples(data, input_shape: tuple, what: str, *, labels: bool = True, num_classes: int | None = None,
             limit: int | None = None):
    """``(float32 inputs, int64 labels or None)`` of ``data``, at most ``limit`` of them.

    ``data``: an array of inputs, a pair ``(x, y)``, or a `tf.data.Dataset`. ``labels``: labels are required.
    Raises `ValueError` when the inputs do not have the student's ``input_shape`` per example, when labels are
    missing, of another length, not integer class ids, or out of ``[0, num_classes)``.
    """
    if isinstance(data, tf.data.Dataset):
        x, y = _from_dataset(data, tuple(input_shape), what, limit)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    else:
        x, y = data, None
    x = np.asarray(x)
    if x.ndim == 0 or tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(f"{what} has examples of shape {tuple(x.shape[1:])}; the student takes "
                         f"{tuple(input_shape)} (array of shape {x.shape}; the first axis counts the examples).")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{what} must be real numbers. Received dtype {x.dtype}.")
    if len(x) == 0:
        raise ValueError(f"{what} has no examples.")
    if limit is not None:
        x, y = x[:limit], None if y is None else y[:limit]
    if y is None:
        if labels:
            raise ValueError(f"{what} has no labels: pass (x, y), a dataset of (x, y), or an .npz file with arrays "
                             "x and y.")
        return x.astype(np.float32), None
    return x.astype(np.float32), labels_of(y, len(x), what, num_classes).astype(np.int64)


def labels_of(y, count: int, what: str, num_classes: int | None = None) -> np.ndarray:
    """``y`` as ``count`` labels, shape ``(count,)`` (a ``(count, 1)`` column is flattened): integer class ids in
    ``[0, num_classes)``, or any real scores for a regression student (``num_classes == 1``). Raises `ValueError`
    naming ``what`` otherwise."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    regression = num_classes == 1
    if y.shape != (count,) or not (np.issubdtype(y.dtype, np.integer) or regression and y.dtype.kind == "f"):
        kind = "scores" if regression else "integer class ids"
        raise ValueError(f"{what} labels must be {count} {kind}, shape ({count},). Received dtype {y.dtype}, shape "
                         f"{y.shape}.")
    if num_classes is not None and not regression and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{what} labels must lie in [0, {num_classes}) for this {num_classes}-class student. "
                         f"Received labels from {y.min()} to {y.max()}.")
    return y
