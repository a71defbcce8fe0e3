"""A prepared TFDS dataset, offline: its builder, or one line saying where it was looked for and how to get it."""

from __future__ import annotations

import os

import tensorflow_datasets as tfds


def builder(name, data_dir=None, download=False):
    """The TFDS builder of a prepared dataset; `FileNotFoundError` in one line when it is not prepared."""
    dataset_builder = tfds.builder(name, data_dir=data_dir)
    if download:
        dataset_builder.download_and_prepare()  # a no-op when the dataset is already prepared
    # is_prepared() also turns away a directory with the dataset's folders but not its prepared files (a stopped
    # preparation), on which the read alone fails with a KeyError deep in TFDS.
    prepared = dataset_builder.is_prepared()
    if prepared:
        try:
            dataset_builder.as_dataset(split="train[:1]")
        except AssertionError:  # TFDS's "could not find data in <dir>"
            prepared = False
    if not prepared:
        where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
        raise FileNotFoundError(
            f"TFDS dataset {name!r} is not prepared under {where!r} and downloading is off. "
            "Point `data_dir` or TFDS_DATA_DIR at a prepared TFDS directory, or set `download` to let TFDS fetch and "
            "prepare it (network access needed)."
        )
    return dataset_builder
