"""TFDS input: splits, augmentation, normalisation; on mock data and on the real prepared CIFAR-10."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from akd_tf import data
from akd_tf.data import images


def test_augment_keeps_shape_and_moves_content():
    image = tf.ones((32, 32, 3), tf.uint8) * 200
    outs = [images.augment(image, tf.constant([7, i])).numpy() for i in range(20)]
    assert all(o.shape == (32, 32, 3) and o.dtype == np.uint8 for o in outs)
    # Crops of the zero-padded image show black borders in most draws.
    assert sum((o == 0).any() for o in outs) >= 10
    # Stateless: the same seed gives the same view.
    np.testing.assert_array_equal(images.augment(image, tf.constant([7, 3])).numpy(), outs[3])


def test_each_epoch_is_a_pure_function_of_seed_and_epoch():
    """What makes a resumed run see the batches of an uninterrupted one."""
    splits = data.load("cifar10", batch_size=32, validation_size=16, train_size=64, test_size=16, shuffle_seed=5)
    assert splits.steps_per_epoch == 2
    whole = [(x.numpy(), y.numpy()) for x, y in splits.train_epochs(0, 3)]
    assert len(whole) == 6 and int(splits.train_epochs(1, 3).cardinality()) == 4
    resumed = [(x.numpy(), y.numpy()) for x, y in splits.train_epochs(2, 3)]
    for (xa, ya), (xb, yb) in zip(whole[4:], resumed):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    # Every epoch visits every example once, in a new order with new crops.
    epoch_labels = [np.concatenate([whole[2 * e][1], whole[2 * e + 1][1]]) for e in range(3)]
    assert all(sorted(labels) == sorted(epoch_labels[0]) for labels in epoch_labels)
    assert not np.array_equal(epoch_labels[0], epoch_labels[1]) and not np.array_equal(whole[0][0], whole[2][0])
    with pytest.raises(ValueError, match="start=3, stop=3"):
        splits.train_epochs(3, 3)


def test_normalize_uses_the_official_statistics():
    pixel = np.array([[[0.507, 0.487, 0.441]]]) * 255
    np.testing.assert_allclose(images.normalize(tf.constant(pixel)).numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(images.normalize(tf.zeros((1, 1, 3))).numpy().ravel(),
                               -np.array(images.MEAN) / np.array(images.STD), rtol=1e-6)


def test_pipeline_on_mock_data():
    # Mock examples with the real metadata; the mock yields `num_examples` per split whatever the slice.
    with tfds.testing.mock_data(num_examples=40, data_dir=os.environ["TFDS_DATA_DIR"]):
        splits = data.load("cifar10", batch_size=16, validation_size=8, train_size=16, test_size=24)
        assert splits.num_examples == {"train": 40, "validation": 40, "test": 40}
        assert (splits.num_classes, splits.input_shape) == (10, (32, 32, 3))
        x, y = next(iter(splits.train))
        assert x.shape == (16, 32, 32, 3) and x.dtype == tf.float32 and y.shape == (16,)
        assert [b[0].shape[0] for b in splits.test] == [16, 16, 8]
        assert np.isfinite(x.numpy()).all()


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'. Allowed: cifar10, cifar100"):
        data.load("mnist", batch_size=8)
    with pytest.raises(ValueError, match="batch_size=0"):
        data.load("cifar10", batch_size=0)
    with pytest.raises(FileNotFoundError, match="not prepared under"):
        data.load("cifar100", batch_size=8, data_dir=os.path.join(os.path.dirname(__file__), "no_such_dir"))


def test_a_dataset_folder_without_its_prepared_files_is_reported_as_not_prepared(tmp_path):
    # As a stopped preparation leaves it: TFDS itself fails later with a KeyError ("`splits` is empty").
    (tmp_path / "cifar10" / "3.0.2").mkdir(parents=True)
    (tmp_path / "cifar10" / "3.0.2" / "tmp.txt").write_text("")
    with pytest.raises(FileNotFoundError, match=f"TFDS dataset 'cifar10' is not prepared under '{tmp_path}'"):
        data.load("cifar10", batch_size=8, data_dir=str(tmp_path))


def test_real_cifar10_from_the_shared_tfds_directory():
    """Fails (never skips) when the prepared data is missing: CI must have it."""
    data_dir = os.environ["TFDS_DATA_DIR"]
    assert os.path.isfile(os.path.join(data_dir, "cifar10", "3.0.2", "dataset_info.json")), (
        f"Prepared CIFAR-10 not found under TFDS_DATA_DIR={data_dir}")
    splits = data.load("cifar10", batch_size=250, validation_size=500, test_size=500, train_size=500)
    assert splits.num_examples == {"train": 500, "validation": 500, "test": 500}
    x, y = next(iter(splits.validation))
    x = x.numpy()
    # Normalised real photos: roughly zero mean, unit spread per channel; all ten classes present.
    assert np.all(np.abs(x.mean(axis=(0, 1, 2))) < 0.3) and np.all(np.abs(x.std(axis=(0, 1, 2)) - 1) < 0.3)
    labels = np.concatenate([b[1].numpy() for b in splits.test])
    assert set(labels.tolist()) == set(range(10))
    # The validation slice is the end of the training split, disjoint from the training slice.
    train_ids = {e["id"].numpy() for e in tfds.load("cifar10", split="train[:500]")}
    val_ids = {e["id"].numpy() for e in tfds.load("cifar10", split="train[-500:]")}
    assert not train_ids & val_ids


def test_pipelines_are_built_without_autograph(monkeypatch):
    """No dataset function of akd_tf.data goes through autograph, which reads a function's source from its file
    when a dataset is built: a study run whose package had been edited since it started got other lines and
    crashed. (Their batches were checked unchanged by this: the same bytes before and after.)"""
    from tensorflow.python.autograph.impl import api as autograph_api
    from tensorflow.python.autograph.pyct import cache as autograph_cache

    from akd_tf.data import glue

    converted, transform = [], autograph_api._TRANSPILER.transform

    def recording(entity, context):
        converted.append(getattr(entity, "__code__", None) and entity.__code__.co_filename)
        return transform(entity, context)

    monkeypatch.setattr(autograph_api._TRANSPILER, "transform", recording)
    monkeypatch.setattr(autograph_api._TRANSPILER, "_cache", autograph_cache.CodeObjectCache())  # none converted yet
    splits = data.load("cifar10", batch_size=16, validation_size=16, train_size=32, test_size=16, shuffle_seed=5)
    rng = np.random.default_rng(0)
    views = splits.with_teacher_logits(rng.normal(size=(2, 32, 10)).astype("float32"),
                                       rng.normal(size=(16, 10)).astype("float32"), distill_epochs=2)
    mask = np.arange(8)[None, :] < rng.integers(1, 9, 12)[:, None]
    tokens = {"token_ids": mask.astype(np.int32), "padding_mask": mask}
    text = glue.Features(arrays={"train": (tokens, np.arange(12)), "dev": (tokens, np.arange(12))}, batch_size=4,
                         seed=0, eval_splits=("dev",), group_by_length=True)
    for dataset in (splits.train, splits.validation, splits.test, splits.train_epochs(0, 1), splits.teacher_views(2),
                    splits.teacher_view(1), views.train_epochs(0, 3), views.validation, text.train_epochs(0, 2),
                    text.dataset("dev")):
        assert next(iter(dataset)) is not None
    ours = os.path.dirname(images.__file__)
    assert not [path for path in converted if path and path.startswith(ours)]
