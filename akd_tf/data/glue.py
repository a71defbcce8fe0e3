"""GLUE from TFDS (``glue/<task>``): raw text splits, and per-model token features built from them.

* ``train[:-V]`` trains, ``train[-V:]`` (V = ``validation_size``; split ``validation`` here) selects
  models, and the GLUE dev split(s) are the report set, named ``dev`` (MNLI: ``dev_matched`` and
  ``dev_mismatched``). GLUE's test labels are hidden (TFDS stores -1), so the test split is not used.
* Text is not augmented, so each model's tokenization is computed once: `TextSplits.features` runs a
  model's own keras-nlp preprocessor over every split and keeps the token arrays in memory. Teacher and
  student may use different tokenizers; each gets its own features from the same raw text.
* `Features` has the interface `akd_tf.train` fits with (``train_epochs``, ``steps_per_epoch``,
  ``validation``): epoch ``e`` is a permutation drawn from (``seed``, ``e``), so a resumed run sees the
  same batches. Extra per-example arrays (e.g. the teacher's cached logits, `akd_tf.batch_keys.TEACHER_LOGITS`)
  ride along in the inputs dict.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from akd_tf.data import images as _images
from akd_tf.data import pipeline
from akd_tf.batch_keys import STUDENT_INPUTS

_DEV = {"dev": "validation"}
# task -> text features (one or a pair), classes (1: regression), report splits (our name -> TFDS split),
# main dev metric (model selection uses it too).
TASKS = {
    "cola": {"text": ("sentence",), "num_classes": 2, "eval": _DEV, "metric": "matthews"},
    "sst2": {"text": ("sentence",), "num_classes": 2, "eval": _DEV, "metric": "accuracy"},
    "mrpc": {"text": ("sentence1", "sentence2"), "num_classes": 2, "eval": _DEV, "metric": "f1"},
    "qqp": {"text": ("question1", "question2"), "num_classes": 2, "eval": _DEV, "metric": "f1"},
    "stsb": {"text": ("sentence1", "sentence2"), "num_classes": 1, "eval": _DEV, "metric": "pearson"},
    "mnli": {"text": ("premise", "hypothesis"), "num_classes": 3,
             "eval": {"dev_matched": "validation_matched", "dev_mismatched": "validation_mismatched"},
             "metric": "accuracy"},
    "qnli": {"text": ("question", "sentence"), "num_classes": 2, "eval": _DEV, "metric": "accuracy"},
    "rte": {"text": ("sentence1", "sentence2"), "num_classes": 2, "eval": _DEV, "metric": "accuracy"},
}
DATASETS = {f"glue/{task}": spec for task, spec in TASKS.items()}


def is_glue(name: str) -> bool:
    return name in DATASETS


def task_of(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"Unknown GLUE dataset {name!r}. Allowed: {', '.join(DATASETS)}")
    return name.split("/", 1)[1]


# Token features a keras-nlp packer pads on the right; `trim` cuts them to the longest example of a batch.
TOKEN_KEYS = ("token_ids", "segment_ids", "padding_mask")
TRIM_MULTIPLE = 8  # few distinct batch shapes, so few traces
GROUP_BATCHES = 50  # group_by_length sorts windows of this many batches (Hugging Face's megabatches)


def trim(inputs):
    """``inputs`` (a batch: dicts of arrays, nested) with every dict that has a ``padding_mask`` cut to its batch's
    longest example, rounded up to a multiple of `TRIM_MULTIPLE`. The cut positions are padding, which attention
    masks out, so the logits are unchanged; the work saved is the padding's (half of it on these GLUE tasks)."""
    if not isinstance(inputs, dict):
        return inputs
    if "padding_mask" not in inputs:
        return {key: trim(value) for key, value in inputs.items()}
    mask = inputs["padding_mask"]
    longest = tf.reduce_max(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1))
    keep = tf.minimum(tf.shape(mask)[1], -(-longest // TRIM_MULTIPLE) * TRIM_MULTIPLE)
    return {key: value[:, :keep] if key in TOKEN_KEYS else trim(value) for key, value in inputs.items()}


def lengths(inputs) -> np.ndarray | None:
    """Tokens per example of the first ``padding_mask`` in ``inputs`` (depth first; None without one)."""
    if not isinstance(inputs, dict):
        return None
    if "padding_mask" in inputs:
        return np.asarray(inputs["padding_mask"]).astype(np.int64).sum(axis=1)
    for value in inputs.values():
        found = lengths(value)
        if found is not None:
            return found
    return None


@dataclasses.dataclass(frozen=True)
class Features:
    """One model's view of every split: token arrays (and extras) in memory, batched on demand.

    ``arrays[split]`` holds ``(inputs dict, labels)``; `dataset` batches a split in order, `validation` is
    the held-out split's, and `train_epochs` the shuffled training epochs.
    """

    arrays: dict
    batch_size: int
    seed: int
    eval_splits: tuple
    # Training batches of similar lengths: each window of GROUP_BATCHES batches of the epoch's permutation is
    # sorted by length before batching, so trimmed batches carry little padding.
    group_by_length: bool = False

    @property
    def num_examples(self) -> dict:
        return {split: int(len(labels)) for split, (_, labels) in self.arrays.items()}

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.num_examples["train"] // self.batch_size)

    def dataset(self, split: str, batch_size: int | None = None) -> tf.data.Dataset:
        """``split`` in order, batched."""
        inputs, labels = self.arrays[split]
        ds = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(batch_size or self.batch_size)
        ds = ds.map(_images.as_is(lambda x, y: (trim(x), y)), num_parallel_calls=pipeline.PARALLEL_CALLS)
        return pipeline.steady(ds)

    def predict(self, model, split: str, batch_size: int | None = None, verbose=0) -> np.ndarray:
        """``model``'s outputs over ``split``, in the split's order, computed in batches of similar lengths (the
        examples sorted by token count, then put back), so trimmed batches carry little padding."""
        inputs, labels = self.arrays[split]
        size = lengths(inputs)
        order = np.arange(len(labels)) if size is None else np.argsort(size, kind="stable")
        ds = tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(lambda array: array[order], inputs))
        ds = ds.batch(batch_size or self.batch_size).map(_images.as_is(trim), num_parallel_calls=pipeline.PARALLEL_CALLS)
        predicted = model.predict(pipeline.steady(ds), verbose=verbose)
        outputs = np.empty_like(predicted)
        outputs[order] = predicted
        return outputs

    @property
    def validation(self):
        return self.dataset("validation") if "validation" in self.arrays else None

    def train_epochs(self, start: int, stop: int) -> tf.data.Dataset:
        """Epochs ``start … stop-1``, each a permutation of the training set drawn from (seed, epoch)."""
        if not 0 <= start < stop:
            raise ValueError(f"Need 0 <= start < stop. Received: start={start}, stop={stop}")
        inputs, labels = self.arrays["train"]
        count = len(labels)
        table = tf.data.Dataset.from_tensors((inputs, labels)).cache()  # one copy, shared by every epoch
        sizes = lengths(inputs) if self.group_by_length else None
        if self.group_by_length and sizes is None:
            raise ValueError("group_by_length needs token features with a padding_mask")

        def epoch_batches(epoch):
            key = tf.stack([tf.cast(self.seed, tf.int64), tf.cast(epoch, tf.int64)])
            order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=key)
            ds = tf.data.Dataset.from_tensor_slices(order)
            if sizes is not None:
                table_of_sizes = tf.constant(sizes)

                def by_length(window):
                    rank = tf.argsort(tf.gather(table_of_sizes, window), direction="DESCENDING", stable=True)
                    return tf.gather(window, rank)

                ds = ds.batch(self.batch_size * GROUP_BATCHES).map(_images.as_is(by_length)).unbatch()
            return ds.batch(self.batch_size)

        def gather(whole, indices):
            x, y = tf.nest.map_structure(lambda array: tf.gather(array, indices), whole)
            return trim(x), y

        batches = tf.data.Dataset.range(start, stop).flat_map(_images.as_is(epoch_batches))
        ds = tf.data.Dataset.zip(table.repeat(), batches)
        ds = ds.map(_images.as_is(gather), num_parallel_calls=pipeline.PARALLEL_CALLS)
        ds = ds.apply(tf.data.experimental.assert_cardinality((stop - start) * self.steps_per_epoch))
        return pipeline.steady(ds)

    def with_inputs(self, **extra) -> "Features":
        """The same examples with ``inputs = {STUDENT_INPUTS: features, **extra}`` (``extra`` maps a name
        to ``{split: array}``), e.g. the teacher's cached logits or its own token features."""
        arrays = {}
        for split, (inputs, labels) in self.arrays.items():
            arrays[split] = ({STUDENT_INPUTS: inputs, **{k: v[split] for k, v in extra.items()}}, labels)
        return dataclasses.replace(self, arrays=arrays)


@dataclasses.dataclass(frozen=True)
class TextSplits:
    """Raw GLUE text by split: ``texts[split]`` is a tuple of string arrays (one per text field),
    ``labels[split]`` int64 class ids (float32 scores for STS-B)."""

    name: str
    task: str
    texts: dict
    labels: dict
    num_classes: int
    batch_size: int
    seed: int
    group_by_length: bool = False
    task_spec: dict | None = None  # a task outside `TASKS`: your own text (`akd_tf.data.own_text`)
    label_names: tuple | None = None

    @property
    def spec(self) -> dict:
        return self.task_spec or TASKS[self.task]

    @property
    def regression(self) -> bool:
        return self.num_classes == 1

    @property
    def eval_splits(self) -> tuple:
        return tuple(self.spec["eval"])

    @property
    def num_examples(self) -> dict:
        return {split: int(len(labels)) for split, labels in self.labels.items()}

    def features(self, preprocessor, batch_size: int = 512, progress: bool = True) -> Features:
        """Every split through ``preprocessor`` (a keras-nlp text classifier preprocessor), once."""
        arrays = {}
        for split, texts in self.texts.items():
            arrays[split] = (tokenize(preprocessor, texts, batch_size, progress and split == "train",
                                      f"tokenizing {self.name} {split}"), self.labels[split])
        return Features(arrays=arrays, batch_size=self.batch_size, seed=self.seed, eval_splits=self.eval_splits,
                        group_by_length=self.group_by_length)


def tokenize(preprocessor, texts: tuple, batch_size: int = 512, progress: bool = False, title: str = "") -> dict:
    """``preprocessor`` over a tuple of string arrays, batched; returns a dict of numpy arrays."""
    import keras

    count = len(texts[0])
    bar = keras.utils.Progbar(count, unit_name="example") if progress else None
    if progress and title:
        print(title)
    parts = []
    for start in range(0, count, batch_size):
        batch = tuple(tf.constant(t[start:start + batch_size]) for t in texts)
        # By keyword: keras-nlp preprocessors read a positional tuple as (x, y), which would drop the
        # second sentence of a pair into the labels.
        out = preprocessor(x=batch if len(batch) > 1 else batch[0])
        parts.append(tf.nest.map_structure(np.asarray, out))
        if bar:
            bar.update(min(start + batch_size, count))
    return tf.nest.map_structure(lambda *xs: np.concatenate(xs), *parts)


def read_split(builder, tfds_split: str, task: str):
    """``(texts, labels)`` of one TFDS split of a GLUE task: a tuple of string arrays (one per text field)
    and int64 class ids (float32 scores for STS-B)."""
    spec = TASKS[task]
    columns = {key: [] for key in (*spec["text"], "label")}
    for batch in builder.as_dataset(split=tfds_split, shuffle_files=False).batch(4096).as_numpy_iterator():
        for key in columns:
            columns[key].append(batch[key])
    label = np.concatenate(columns["label"])
    return (tuple(np.concatenate(columns[key]) for key in spec["text"]),
            label.astype(np.float32) if spec["num_classes"] == 1 else label.astype(np.int64))


def majority_class(task: str, data_dir: str | None = None) -> dict | None:
    """`majority_floor` of the task's whole training split on its whole (first) dev split. On MRPC it is F1 81.2,
    the score of a student that calls every pair a paraphrase."""
    if TASKS[task]["num_classes"] == 1:
        return None
    builder = _images.builder(f"glue/{task}", data_dir)
    return majority_floor(task, read_split(builder, "train", task)[1],
                          read_split(builder, next(iter(TASKS[task]["eval"].values())), task)[1])


def majority_floor(task: str, train_labels, dev_labels, num_classes: int | None = None) -> dict | None:
    """Every dev metric of predicting the most frequent class of ``train_labels`` for every example of
    ``dev_labels`` (``None`` for a regression task, where a constant has no correlation): the floor a student must
    clear to have learnt anything. ``num_classes``: the task's (from `TASKS` when None)."""
    from akd_tf import glue_metrics

    num_classes = num_classes or TASKS[task]["num_classes"]
    if num_classes == 1:
        return None
    majority = int(np.bincount(np.asarray(train_labels)).argmax())
    outputs = np.eye(num_classes)[np.full(len(dev_labels), majority)]
    return {"class": majority, **glue_metrics.task_metrics(task, outputs, dev_labels)}


def load(
    name: str,
    *,
    batch_size: int,
    data_dir: str | None = None,
    validation_size: int = 1000,
    train_size: int | None = None,
    test_size: int | None = None,
    shuffle_seed: int | None = None,
    download: bool = False,
    group_by_length: bool = False,
) -> TextSplits:
    """Reads a GLUE task from TFDS into memory (arguments as in `akd_tf.data.images.load`).

    ``test_size`` limits the task's GLUE dev split(s), the report set.
    """
    task = task_of(name)
    _images.check_sizes(batch_size, validation_size, train_size, test_size)
    spec = TASKS[task]
    builder = _images.builder(name, data_dir, download)
    splits = _images.train_validation_splits(builder, name, validation_size, train_size)
    for split, tfds_split in spec["eval"].items():
        splits[split] = tfds_split if test_size is None else f"{tfds_split}[:{test_size}]"
    texts, labels = {}, {}
    for split, tfds_split in splits.items():
        texts[split], labels[split] = read_split(builder, tfds_split, task)
    return TextSplits(name=name, task=task, texts=texts, labels=labels, num_classes=spec["num_classes"],
                      batch_size=batch_size, seed=0 if shuffle_seed is None else shuffle_seed,
                      group_by_length=group_by_length)
