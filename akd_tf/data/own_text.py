"""Your own text: a CSV or TSV file (``csv:FILE``) of labelled sentences, read into the same `TextSplits` as a
GLUE task, so every text model, method, cache and export that runs on GLUE runs on it.

The file is UTF-8 (a byte-order mark is allowed), comma-separated, or tab-separated when it ends in ``.tsv`` or
``.tab``, with a header row naming its columns: ``text`` and ``label``, optionally ``text_b`` (the second sentence
of a pair) and ``split`` (``train``, ``validation`` or ``test`` per row). Labels are class names; their sorted
order (numeric when every name is an integer) gives the class ids, as folder names do for your own images. Without
a ``split`` column, the test and validation rows are held out of the file by class, seeded
(`akd_tf.data.own.held_out`). Everything wrong with the file is a `ValueError` in one line naming it and the fix.
"""

from __future__ import annotations

import csv
import os

import numpy as np

CSV = "csv:"
TEXT, TEXT_B, LABEL, SPLIT = "text", "text_b", "label", "split"
SPLITS = ("train", "validation", "test")
TASK = "csv"  # the task name its metrics go by (`akd_tf.glue_metrics`: accuracy)
REPORT_SPLIT = "test"


def is_csv(name) -> bool:
    return isinstance(name, str) and name.startswith(CSV)


def path_of(name: str) -> str:
    return name[len(CSV):]


def spec(num_fields: int, num_classes: int) -> dict:
    """The task description a GLUE task has in `akd_tf.data.glue.TASKS`, for a file of one or two text columns."""
    return {"text": (TEXT, TEXT_B)[:num_fields], "num_classes": num_classes, "eval": {REPORT_SPLIT: REPORT_SPLIT},
            "metric": "accuracy"}


def read_rows(name: str) -> tuple:
    """``(columns, rows)`` of the file: its header's names and a list of dicts, checked (columns, UTF-8, no empty
    text or label). `FileNotFoundError`/`ValueError` in one line."""
    path = path_of(name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`dataset` {name}: no such file. Expected a CSV (or .tsv) file with columns "
                                f"{TEXT!r} and {LABEL!r}.")
    delimiter = "\t" if path.lower().endswith((".tsv", ".tab")) else ","
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            reader.fieldnames = columns
            rows = list(reader)
    except UnicodeDecodeError as error:
        raise ValueError(f"`dataset` {name} is not UTF-8 text (byte {error.start}: {error.reason}); save it as "
                         "UTF-8.") from None
    except csv.Error as error:
        raise ValueError(f"`dataset` {name} is not a readable {'TSV' if delimiter == chr(9) else 'CSV'} file: "
                         f"{error}") from None
    missing = [c for c in (TEXT, LABEL) if c not in columns]
    if missing:
        raise ValueError(f"`dataset` {name} has no column {' or '.join(map(repr, missing))}: its header reads "
                         f"{columns}; the file needs {TEXT!r} and {LABEL!r} (and optionally {TEXT_B!r}, {SPLIT!r}).")
    if not rows:
        raise ValueError(f"`dataset` {name} has a header and no rows.")
    used = [c for c in (TEXT, TEXT_B, LABEL, SPLIT) if c in columns]
    for line, row in enumerate(rows, start=2):
        if None in row:  # csv.DictReader's key for the fields beyond the header's
            raise ValueError(f"`dataset` {name}, line {line} has more fields than the header; quote a text that "
                             f"holds a {'tab' if delimiter == chr(9) else 'comma'} (\"like, this\").")
        for column in used:
            if row.get(column) is None or (column != TEXT_B and not row[column].strip()):
                raise ValueError(f"`dataset` {name}, line {line}: no {column!r}; every row needs {TEXT!r} and "
                                 f"{LABEL!r}" + (f" and a {SPLIT!r} of {', '.join(SPLITS)}." if SPLIT in columns
                                                 else "."))
        if SPLIT in columns and row[SPLIT].strip() not in SPLITS:
            raise ValueError(f"`dataset` {name}, line {line}: split {row[SPLIT]!r}; allowed: {', '.join(SPLITS)}.")
    return columns, rows


def label_names(name: str) -> list:
    """The class names of the file, in class-id order: sorted, numerically when every one is an integer."""
    _, rows = read_rows(name)
    return _names(rows, name)


def _names(rows, name):
    names = sorted({row[LABEL].strip() for row in rows})
    if all(_is_int(n) for n in names):
        names.sort(key=int)
    if len(names) < 2:
        raise ValueError(f"`dataset` {name}: every row has the label {names[0]!r}; a classifier needs at least two "
                         "classes.")
    return names


def _is_int(text):
    try:
        int(text)
        return True
    except ValueError:
        return False


def read(name: str, *, validation_size: int | None = None, test_size: int | None = None,
         train_size: int | None = None, seed: int = 0) -> tuple:
    """``(splits, label_names, fields)``: ``splits[split] = (texts, labels)`` with ``texts`` a tuple of string
    arrays (one per text column) and int64 class ids; a ``split`` column's splits, else held out by class."""
    from akd_tf.data import own

    columns, rows = read_rows(name)
    names = _names(rows, name)
    ids = {n: i for i, n in enumerate(names)}
    fields = (TEXT, TEXT_B) if TEXT_B in columns else (TEXT,)
    table = np.array([[row[f] or "" for f in fields] for row in rows], dtype=object)
    labels = np.array([ids[row[LABEL].strip()] for row in rows], np.int64)
    if SPLIT in columns:
        which = np.array([row[SPLIT].strip() for row in rows])
        splits = {s: (table[which == s], labels[which == s]) for s in SPLITS if (which == s).any()}
        if "train" not in splits or "test" not in splits:
            raise ValueError(f"`dataset` {name}: its {SPLIT!r} column names no "
                             f"{'train' if 'train' not in splits else 'test'} rows; it needs train and test rows.")
    else:
        splits = {"all": (table, labels)}
    splits = own.held_out(splits, len(names), validation_size, test_size, seed, name, unit="rows")
    if train_size is not None:
        splits["train"] = tuple(a[:train_size] for a in splits["train"])
    texts = {s: tuple(np.array(list(t[:, i]), dtype=object).astype(str) for i in range(len(fields)))
             for s, (t, _) in splits.items()}
    return {s: (texts[s], splits[s][1]) for s in splits}, names, fields


def load(name: str, *, batch_size: int, validation_size: int | None = None, train_size: int | None = None,
         test_size: int | None = None, shuffle_seed: int | None = None, group_by_length: bool = False):
    """The file as `akd_tf.data.glue.TextSplits` (task ``csv``: accuracy on the ``test`` split), with its label
    names (arguments as in `akd_tf.data.glue.load`; the held-out sizes as in `read`)."""
    from akd_tf.data import glue

    seed = 0 if shuffle_seed is None else shuffle_seed
    splits, names, fields = read(name, validation_size=validation_size, test_size=test_size,
                                 train_size=train_size, seed=seed)
    return glue.TextSplits(name=name, task=TASK, texts={s: t for s, (t, _) in splits.items()},
                           labels={s: y for s, (_, y) in splits.items()}, num_classes=len(names),
                           batch_size=batch_size, seed=seed, group_by_length=group_by_length,
                           task_spec=spec(len(fields), len(names)), label_names=tuple(names))
