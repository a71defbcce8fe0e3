"""CIFAR-10/100 from TFDS: a validation slice held out of the training split, augmentation, normalisation.

* ``train[:-V]`` trains, ``train[-V:]`` (V = ``validation_size``, 5,000 by default) selects models, and
  ``test`` is only for the final report (the official code picks checkpoints on test; this does not).
* Training images: random 32×32 crop of the image zero-padded by 4 pixels, random horizontal flip.
* All images: scaled to [0, 1], then normalised per channel with the official recipe's mean and std.
* Batches are *global* batches: under a `tf.distribute` strategy, Keras splits each into per-replica
  batches of ``batch_size / num_replicas`` (data auto-sharding for several workers).
* Offline: TFDS reads the prepared dataset from ``data_dir`` (or ``TFDS_DATA_DIR``) and never downloads
  unless ``download=True``.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf
import tensorflow_datasets as tfds

# The official Annealing-KD recipe normalises every CIFAR variant with these.
MEAN = (0.507, 0.487, 0.441)
STD = (0.267, 0.256, 0.276)

DATASETS = {
    "cifar10": {"num_classes": 10, "input_shape": (32, 32, 3), "train_examples": 50_000},
    "cifar100": {"num_classes": 100, "input_shape": (32, 32, 3), "train_examples": 50_000},
}


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


def normalize(image, mean=MEAN, std=STD, scale=1 / 255.0):
    """uint8 pixels (any leading batch dims) -> float32, scaled and per-channel standardised."""
    image = tf.cast(image, tf.float32) * scale
    return (image - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def augment(image):
    """Random crop of the 4-pixel zero-padded image, random horizontal flip (uint8 in, uint8 out)."""
    height, width = image.shape[0], image.shape[1]
    padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
    image = tf.image.random_crop(padded, tf.shape(image))
    image = tf.ensure_shape(image, (height, width, image.shape[-1]))
    return tf.image.random_flip_left_right(image)


def _check_positive(name, value, allow_none=True):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def builder(name, data_dir=None, download=False):
    """The TFDS builder of a prepared dataset; `FileNotFoundError` in one line when it is not prepared."""
    dataset_builder = tfds.builder(name, data_dir=data_dir)
    if download:
        dataset_builder.download_and_prepare()  # a no-op when the dataset is already prepared
    try:
        dataset_builder.as_dataset(split="train[:1]")
    except AssertionError:  # TFDS's "could not find data in <dir>"
        where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
        raise FileNotFoundError(
            f"TFDS dataset {name!r} is not prepared under {where!r} and downloading is off. "
            "Point --data_dir or TFDS_DATA_DIR at a prepared TFDS directory, or allow the download."
        ) from None
    return dataset_builder


def load(
    name: str,
    *,
    batch_size: int,
    data_dir: str | None = None,
    validation_size: int = 5000,
    train_size: int | None = None,
    test_size: int | None = None,
    shuffle_seed: int | None = None,
    download: bool = False,
) -> ImageSplits:
    """Builds the train/validation/test pipelines of a TFDS image dataset.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        batch_size: the global batch size.
        data_dir: the TFDS data directory (default: ``TFDS_DATA_DIR`` or TFDS's own default).
        validation_size: examples held out of the end of the training split; 0 for none.
        train_size: keep only the first ``train_size`` training examples (for quick runs).
        test_size: keep only the first ``test_size`` test examples (for quick runs).
        shuffle_seed: seed of the training shuffle.
        download: let TFDS download and prepare the dataset when it is not there.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Allowed: {', '.join(DATASETS)}")
    _check_positive("batch_size", batch_size, allow_none=False)
    _check_positive("train_size", train_size)
    _check_positive("test_size", test_size)
    if isinstance(validation_size, bool) or not isinstance(validation_size, int) or validation_size < 0:
        raise ValueError(f"`validation_size` must be an integer >= 0. Received: validation_size={validation_size!r}")
    spec = DATASETS[name]
    dataset_builder = builder(name, data_dir, download)
    total_train = dataset_builder.info.splits["train"].num_examples
    if validation_size >= total_train:
        raise ValueError(
            f"`validation_size` must be smaller than the {total_train} training examples of {name}. "
            f"Received: validation_size={validation_size}"
        )
    train_end = total_train - validation_size
    if train_size is not None:
        train_end = min(train_end, train_size)
    splits = {"train": f"train[:{train_end}]", "test": "test" if test_size is None else f"test[:{test_size}]"}
    if validation_size:
        splits["validation"] = f"train[{total_train - validation_size}:]"

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    datasets, counts = {}, {}
    for split, tfds_split in splits.items():
        ds = dataset_builder.as_dataset(split=tfds_split, as_supervised=True, shuffle_files=False)
        counts[split] = int(ds.cardinality())
        ds = ds.cache()
        if split == "train":
            ds = ds.shuffle(counts[split], seed=shuffle_seed, reshuffle_each_iteration=True)
            ds = ds.map(lambda x, y: (normalize(augment(x)), y), num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = ds.map(lambda x, y: (normalize(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        datasets[split] = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options)

    return ImageSplits(
        name=name,
        train=datasets["train"],
        validation=datasets.get("validation"),
        test=datasets["test"],
        num_classes=spec["num_classes"],
        input_shape=spec["input_shape"],
        num_examples=counts,
        preprocessing={"input": "uint8 RGB HWC pixels", "scale": 1 / 255.0, "mean": list(MEAN), "std": list(STD)},
    )
