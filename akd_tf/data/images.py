"""CIFAR-10/100 from TFDS: a validation slice held out of the training split, augmentation, normalisation.

* ``train[:-V]`` trains, ``train[-V:]`` (V = ``validation_size``, 5,000 by default) selects models, and
  ``test`` is only for the final report (the official code picks checkpoints on test; this does not).
* Training images: random 32×32 crop of the image zero-padded by 4 pixels, random horizontal flip.
  The draws are stateless: epoch ``e`` of `ImageSplits.train_epochs` is a pure function of
  (``shuffle_seed``, ``e``), so a run resumed at epoch ``e`` sees the very batches an uninterrupted
  run would have seen.
* All images: scaled to [0, 1], then normalised per channel with the official recipe's mean and std.
* Batches are *global* batches: under a `tf.distribute` strategy, Keras splits each into per-replica
  batches of ``batch_size / num_replicas`` (data auto-sharding for several workers).
* Offline: TFDS reads the prepared dataset from ``data_dir`` (or ``TFDS_DATA_DIR``) and never downloads
  unless ``download=True``.
"""

from __future__ import annotations

import dataclasses
import numbers

import tensorflow as tf

from akd_tf.batch_keys import STUDENT_INPUTS, TEACHER_LOGITS
from akd_tf.data import own, pipeline
from akd_tf.data.prepared import builder  # noqa: F401 (its users read it here)

# The official Annealing-KD recipe normalises every CIFAR variant with these.
MEAN = (0.507, 0.487, 0.441)
STD = (0.267, 0.256, 0.276)

DATASETS = {
    "cifar10": {"num_classes": 10, "input_shape": (32, 32, 3), "train_examples": 50_000},
    "cifar100": {"num_classes": 100, "input_shape": (32, 32, 3), "train_examples": 50_000},
}
# The recipe's validation slice of CIFAR's training split.
DEFAULT_VALIDATION_SIZE = 5000
# Your own images are resized to this side when neither --image_size nor a teacher file says another.
OWN_IMAGE_SIZE = 64
# Your own images' input: RGB pixels 0-255 as they are, the convention of models from outside the tool.
PIXELS = {"input": "uint8 RGB HWC pixels", "scale": 1.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}


@dataclasses.dataclass(frozen=True)
class ImageSplits:
    """The three splits of an image classification dataset, batched and ready for ``fit``."""

    name: str
    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    num_classes: int
    input_shape: tuple
    num_examples: dict  # split name -> number of examples
    preprocessing: dict  # what a deployed model must do to raw uint8 pixels, for export
    batch_size: int = 0
    label_names: tuple | None = None  # class names in class-id order, where the dataset has them
    train_examples: tf.data.Dataset | None = None  # (index, (uint8 image, label)) in file order, cached
    shuffle_seed: int = 0
    # Set by `with_teacher_logits`: [K, N, classes] logits of the teacher views, for epochs < distill_epochs.
    view_logits: tf.Tensor | None = None
    distill_epochs: int | None = None

    @property
    def steps_per_epoch(self) -> int:
        """Batches in one training epoch (the last one may be partial)."""
        return -(-self.num_examples["train"] // self.batch_size)

    def train_epochs(self, start: int, stop: int) -> tf.data.Dataset:
        """Training epochs ``start … stop-1`` back to back, each shuffled and augmented as a pure
        function of (``shuffle_seed``, epoch). Pass it to ``fit(…, initial_epoch=start, epochs=stop,
        steps_per_epoch=self.steps_per_epoch)``: a run resumed at ``start`` gets the same batches as
        an uninterrupted one.
        """
        if not 0 <= start < stop:
            raise ValueError(f"Need 0 <= start < stop. Received: start={start}, stop={stop}")
        epochs = tf.data.Dataset.range(start, stop).flat_map(as_is(self._epoch))
        # flat_map hides the length; stating it keeps Keras and tf.distribute on their known-size paths.
        epochs = epochs.apply(tf.data.experimental.assert_cardinality((stop - start) * self.steps_per_epoch))
        return pipeline.steady(epochs)

    def _epoch(self, epoch):
        """Epoch ``epoch`` (an int64 tensor): every training image once, in an order drawn from (seed,
        epoch); augmented by (seed, epoch, index), or, with teacher views and ``epoch < distill_epochs``, shown
        as view ``epoch mod K`` beside that view's logits."""
        key = epoch_key(self.shuffle_seed, epoch)
        ds = _shuffle(self.train_examples, self.num_examples["train"], key)
        prepare = self._prepare
        if self.view_logits is None:
            example = lambda i, item: _train_example((i, item), key, prepare)  # noqa: E731
        else:
            view = epoch % self.view_logits.shape[0]
            use_view = epoch < self.distill_epochs
            draw = tf.where(use_view, view_key(self.shuffle_seed, view), tf.cast(key, tf.int64))
            # AKD's label epochs carry zeros, which the label loss never reads.
            logits = tf.where(use_view, self.view_logits[view], tf.zeros_like(self.view_logits[0]))

            def example(i, item):
                image, label = _train_example((i, item), draw, prepare)
                return {STUDENT_INPUTS: image, TEACHER_LOGITS: tf.gather(logits, i)}, label
        return ds.map(as_is(example), num_parallel_calls=pipeline.PARALLEL_CALLS).batch(self.batch_size)

    def teacher_views(self, views: int) -> tf.data.Dataset:
        """Batches of augmented training images, view after view, each in file order: ``views`` × N images.

        View ``v`` of image ``i`` is a pure function of (``shuffle_seed``, ``v``, ``i``), so the teacher's
        logits for it can be computed once and the image regenerated, not stored (`with_teacher_logits`).
        """
        _check_positive("views", views, allow_none=False)
        batches = -(-views * self.num_examples["train"] // self.batch_size)
        views = tf.data.Dataset.range(views).flat_map(as_is(self._view)).batch(self.batch_size)
        # flat_map hides the length; without it Keras's predict warns that the input "ran out of data".
        return pipeline.steady(views.apply(tf.data.experimental.assert_cardinality(batches)))

    def teacher_view(self, view: int) -> tf.data.Dataset:
        """Batches of view ``view`` alone (the images `teacher_views` gives as its ``view``-th N), so that a
        long teacher pass can be made and kept one view at a time."""
        if isinstance(view, bool) or not isinstance(view, numbers.Integral) or view < 0:
            raise ValueError(f"`view` must be an integer >= 0. Received: view={view!r}")
        return pipeline.steady(self._view(tf.constant(view, tf.int64)).batch(self.batch_size))

    def _view(self, v):
        prepare = self._prepare
        return self.train_examples.map(
            as_is(lambda i, example: prepare(augment(example[0], tf.stack([view_key(self.shuffle_seed, v), i])))),
            num_parallel_calls=pipeline.PARALLEL_CALLS)

    def _prepare(self, image):
        """uint8 pixels -> the model's float32 input, as ``preprocessing`` says."""
        return prepare_fn(self.preprocessing)(image)

    def with_teacher_logits(self, view_logits, validation_logits=None, distill_epochs=None) -> "ImageSplits":
        """These splits with the teacher's logits in every batch: ``({STUDENT_INPUTS: x, TEACHER_LOGITS: z}, y)``.

        ``view_logits``: float array [K, N, classes], the teacher's logits of `teacher_views` (K views).
        Epoch ``e < distill_epochs`` shows view ``e mod K`` of every image (shuffled by (seed, e)) with its
        logits; later epochs (AKD's label phase) are augmented afresh as usual and carry zeros, which the
        label loss never reads. ``validation_logits`` [V, classes]: the validation batches carry them too, so
        no step runs the teacher.
        """
        view_logits = tf.constant(view_logits, tf.float32)
        n = self.num_examples["train"]
        if view_logits.shape[1:] != (n, self.num_classes):
            raise ValueError(f"`view_logits` must have shape [views, {n}, {self.num_classes}]. "
                             f"Received: {tuple(view_logits.shape)}")

        validation = self.validation
        if validation is not None and validation_logits is not None:
            logits = tf.data.Dataset.from_tensor_slices(tf.constant(validation_logits, tf.float32))
            batches = int(validation.cardinality())
            validation = tf.data.Dataset.zip(validation.unbatch(), logits).map(
                as_is(lambda xy, z: ({STUDENT_INPUTS: xy[0], TEACHER_LOGITS: z}, xy[1]))
            ).batch(self.batch_size)
            # unbatch() hides the length; Keras warns of "ran out of data" without it.
            validation = validation.apply(tf.data.experimental.assert_cardinality(batches))
            validation = pipeline.steady(validation)
        return dataclasses.replace(self, view_logits=view_logits, distill_epochs=distill_epochs or 2**62,
                                   validation=validation)


def view_key(seed, view):
    """The random key of teacher view ``view``: negative, so never equal to an `epoch_key`."""
    return -1 - epoch_key(seed, view)


def normalize(image, mean=MEAN, std=STD, scale=1 / 255.0):
    """uint8 pixels (any leading batch dims) -> float32, scaled and per-channel standardised."""
    image = tf.cast(image, tf.float32) * scale
    return (image - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def prepare_fn(preprocessing):
    """The function that turns uint8 pixels into a model's input, as ``preprocessing`` (`ImageSplits`') says."""
    mean, std, scale = preprocessing["mean"], preprocessing["std"], preprocessing["scale"]
    return lambda image: normalize(image, mean, std, scale)


def augment(image, seed):
    """Random crop of the zero-padded image (4 pixels of padding on a 32-pixel image, an eighth of the side on
    others), random horizontal flip (uint8 in, uint8 out).

    ``seed``: an int32/int64 tensor of shape [2]; the same seed gives the same view.
    """
    height, width = image.shape[0], image.shape[1]
    pad = max(1, height // 8)
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    image = tf.image.stateless_random_crop(padded, tf.shape(image), crop_seed)
    image = tf.ensure_shape(image, (height, width, image.shape[-1]))
    return tf.image.stateless_random_flip_left_right(image, flip_seed)


def epoch_key(seed, epoch):
    """The random key of one training epoch: distinct for every (seed, epoch) pair."""
    return tf.cast(seed, tf.int64) * 1_000_003 + tf.cast(epoch, tf.int64)


def _check_positive(name, value, allow_none=True):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def check_sizes(batch_size, validation_size, train_size, test_size):
    """The size arguments every TFDS loader here takes; `ValueError` naming the first bad one."""
    _check_positive("batch_size", batch_size, allow_none=False)
    _check_positive("train_size", train_size)
    _check_positive("test_size", test_size)
    if isinstance(validation_size, bool) or not isinstance(validation_size, int) or validation_size < 0:
        raise ValueError(f"`validation_size` must be an integer >= 0. Received: validation_size={validation_size!r}")


def train_validation_splits(dataset_builder, name, validation_size, train_size=None) -> dict:
    """TFDS split strings: ``train[:-V]`` (its first ``train_size`` examples at most) and, when V > 0,
    ``validation`` = ``train[-V:]``."""
    total = dataset_builder.info.splits["train"].num_examples
    if validation_size >= total:
        raise ValueError(
            f"`validation_size` must be smaller than the {total} training examples of {name}. "
            f"Received: validation_size={validation_size}"
        )
    train_end = total - validation_size
    if train_size is not None:
        train_end = min(train_end, train_size)
    splits = {"train": f"train[:{train_end}]"}
    if validation_size:
        splits["validation"] = f"train[{total - validation_size}:]"
    return splits


def load(
    name: str,
    *,
    batch_size: int,
    data_dir: str | None = None,
    validation_size: int | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    shuffle_seed: int | None = None,
    download: bool = False,
    image_size: int | None = None,
    progress=None,
) -> ImageSplits:
    """Builds the train/validation/test pipelines of an image dataset.

    Args:
        name: ``"cifar10"``, ``"cifar100"``, or your own images: ``"folder:DIR"`` or ``"tfds:NAME"``
            (`akd_tf.data.own`).
        batch_size: the global batch size.
        data_dir: the TFDS data directory (default: ``TFDS_DATA_DIR`` or TFDS's own default).
        validation_size: examples held out of the end of the training split; 0 for none. Default: 5,000 for CIFAR
            (the recipe's), a tenth of your own images (by class, seeded) where they have no validation split.
        train_size: keep only the first ``train_size`` training examples (for quick runs).
        test_size: keep only the first ``test_size`` test examples (for quick runs); your own images without a
            test split: how many to hold out for it (default: a tenth).
        shuffle_seed: seed of the training shuffle (and of the split of your own images).
        download: let TFDS download and prepare the dataset when it is not there.
        image_size: your own images are resized to ``image_size`` × ``image_size`` (default `OWN_IMAGE_SIZE`);
            CIFAR keeps its 32 × 32.
        progress: a function that takes a line of progress while your own images are read.
    """
    check_sizes(batch_size, 0 if validation_size is None else validation_size, train_size, test_size)
    seed = 0 if shuffle_seed is None else shuffle_seed
    if own.is_own(name):
        read = own.read(name, image_size or OWN_IMAGE_SIZE, validation_size=validation_size, test_size=test_size,
                        train_size=train_size, seed=seed, data_dir=data_dir, progress=progress)
        sources = {split: tf.data.Dataset.from_tensor_slices(arrays) for split, arrays in read.splits.items()}
        num_classes, input_shape = read.num_classes, (read.image_size, read.image_size, 3)
        preprocessing, label_names = dict(PIXELS), tuple(read.label_names)
        for note in read.notes:
            (progress or print)(f"Note: {note}")
    else:
        if name not in DATASETS:
            raise ValueError(f"Unknown dataset {name!r}. Allowed: {', '.join(DATASETS)}, or your own images "
                             f"({own.FOLDER}DIR, {own.TFDS}NAME)")
        spec = DATASETS[name]
        dataset_builder = builder(name, data_dir, download)
        held_out = DEFAULT_VALIDATION_SIZE if validation_size is None else validation_size
        splits = {**train_validation_splits(dataset_builder, name, held_out, train_size),
                  "test": "test" if test_size is None else f"test[:{test_size}]"}
        sources = {split: dataset_builder.as_dataset(split=tfds_split, as_supervised=True, shuffle_files=False)
                   for split, tfds_split in splits.items()}
        num_classes, input_shape = spec["num_classes"], spec["input_shape"]
        preprocessing = {"input": "uint8 RGB HWC pixels", "scale": 1 / 255.0, "mean": list(MEAN), "std": list(STD)}
        names = getattr(dataset_builder.info.features["label"], "names", None)
        label_names = tuple(names) if names else None

    prepare = prepare_fn(preprocessing)
    datasets, counts = {}, {}
    for split, ds in sources.items():
        counts[split] = int(ds.cardinality())
        ds = ds.cache()
        if split == "train":
            train_cache = ds.enumerate()  # (index, (image, label)): the index keys each example's draws
            # Reshuffled each iteration, for plain `fit(train, epochs=…)` use; the CLI uses `train_epochs`.
            ds = tf.data.Dataset.zip(train_cache, tf.data.Dataset.random(shuffle_seed, rerandomize_each_iteration=True))
            ds = ds.shuffle(counts[split], seed=shuffle_seed, reshuffle_each_iteration=True)
            ds = ds.map(as_is(lambda i, key: _train_example(i, key, prepare)), num_parallel_calls=pipeline.PARALLEL_CALLS)
        else:
            ds = ds.map(as_is(lambda x, y: (prepare(x), y)), num_parallel_calls=pipeline.PARALLEL_CALLS)
        datasets[split] = pipeline.steady(ds.batch(batch_size))

    return ImageSplits(
        name=name,
        train=datasets["train"],
        validation=datasets.get("validation"),
        test=datasets["test"],
        num_classes=num_classes,
        input_shape=tuple(input_shape),
        num_examples=counts,
        preprocessing=preprocessing,
        batch_size=batch_size,
        label_names=label_names,
        train_examples=train_cache,
        shuffle_seed=seed,
    )


def _shuffle(ds, n, key):
    """``ds.shuffle(n, seed=key)`` for a tensor ``key`` inside a traced function: the same order for the same
    ``key``, whatever the global seed.

    TensorFlow pairs an op seed with the global seed, and its helper tests ``(global, op) == (0, 0)`` in
    Python, which fails on a symbolic ``key`` when the global seed is 0 (``keras.utils.set_random_seed(0)``).
    Unsetting the traced graph's global seed around the call avoids both: the pair is (TF's default, key).
    """
    graph = tf.compat.v1.get_default_graph()
    saved, graph.seed = graph.seed, None
    try:
        return ds.shuffle(n, seed=key, reshuffle_each_iteration=False)
    finally:
        graph.seed = saved


def _train_example(example, key, prepare=normalize):
    index, (image, label) = example
    return prepare(augment(image, tf.stack([tf.cast(key, tf.int64), index]))), label


def as_is(fn):
    """``fn`` for a tf.data ``map``/``flat_map`` as it is written, not rewritten by autograph. These functions have
    no Python control flow on tensors; autograph reads a function's source from its file when the dataset is built,
    so a process whose package was edited since it started (a ``git pull`` under a long run) got other lines, and
    a study run crashed so."""
    return tf.autograph.experimental.do_not_convert(fn)
