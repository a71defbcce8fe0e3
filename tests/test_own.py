"""akd_tf.data.own: your own images from a folder of class folders or a TFDS dataset by name: layouts, the seeded
stratified split, class names, resizing, and every bad input as one line naming the file or folder."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from akd_tf.data import images, own


def _image(path, size=(20, 30), value=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.full((*size, 3), value, np.uint8)
    pixels[0, 0] = (255, 0, 0)
    encode = tf.io.encode_png if path.endswith(".png") else tf.io.encode_jpeg
    tf.io.write_file(path, encode(pixels))


def _folder(root, counts, split="", size=(20, 30)):
    for name, count in counts.items():
        for i in range(count):
            _image(os.path.join(root, split, name, f"{i}.png"), size, value=(10 * i) % 250)
    return str(root)


def test_a_flat_folder_is_split_by_class_with_a_seed(tmp_path):
    root = _folder(tmp_path, {"b_dog": 30, "a_cat": 20, "c_owl": 50})
    read = own.read(f"folder:{root}", 16, seed=3)
    assert read.label_names == ["a_cat", "b_dog", "c_owl"]  # sorted folder names: the class ids
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = (read.splits[s] for s in ("train", "validation", "test"))
    assert train_x.shape[1:] == (16, 16, 3) and train_x.dtype == np.uint8
    # A tenth of the 100 images for test, then a tenth of the other 90 for validation, each class in proportion.
    assert np.bincount(test_y).tolist() == [2, 3, 5] and np.bincount(val_y).tolist() == [2, 3, 4]
    assert len(train_y) + len(val_y) + len(test_y) == 100
    again = own.read(f"folder:{root}", 16, seed=3)
    np.testing.assert_array_equal(again.splits["test"][0], test_x)
    other = own.read(f"folder:{root}", 16, seed=4)
    assert not np.array_equal(other.splits["test"][0], test_x)
    assert read.notes == ("images of 1 size(s) (20×30) resized to 16×16",)


def test_given_counts_and_a_train_test_layout_are_kept(tmp_path):
    _folder(tmp_path, {"x": 6, "y": 6}, "train", size=(8, 8))
    _folder(tmp_path, {"x": 3, "y": 2}, "test", size=(8, 8))
    read = own.read(f"folder:{tmp_path}", 8, validation_size=4, test_size=4)
    assert len(read.splits["test"][1]) == 4 and len(read.splits["validation"][1]) == 4
    assert len(read.splits["train"][1]) == 8 and read.notes == ()
    read = own.read(f"folder:{tmp_path}", 8, validation_size=0)
    assert "validation" not in read.splits and len(read.splits["test"][1]) == 5


def test_the_pipeline_feeds_pixels_and_names_the_classes(tmp_path):
    root = _folder(tmp_path, {"a": 12, "b": 12})
    splits = images.load(f"folder:{root}", batch_size=4, image_size=32, shuffle_seed=0)
    assert splits.label_names == ("a", "b") and splits.input_shape == (32, 32, 3)
    assert splits.preprocessing["scale"] == 1.0 and splits.preprocessing["mean"] == [0.0, 0.0, 0.0]
    x, _ = next(iter(splits.test))
    assert x.dtype == tf.float32 and float(tf.reduce_max(x)) > 1.0  # pixels 0-255, not scaled
    batch = next(iter(splits.train_epochs(0, 1)))[0]
    assert batch.shape[1:] == (32, 32, 3)


def test_a_tfds_dataset_by_name_reads_image_and_label(tmp_path):
    with tfds.testing.mock_data(num_examples=100, data_dir=os.environ["TFDS_DATA_DIR"]):
        read = own.read("tfds:cifar10", 16, seed=0, validation_size=5)
    assert read.label_names[:2] == ["airplane", "automobile"] and len(read.label_names) == 10
    assert read.splits["test"][0].shape == (100, 16, 16, 3)  # its own test split
    assert len(read.splits["train"][1]) == 95 and len(read.splits["validation"][1]) == 5


@pytest.mark.parametrize("layout, message", [
    ({"only": 3}, r"has 1 class folder\(s\) \(only\); a classifier needs at least 2"),
    ({}, r"has 0 class folder\(s\) \(none\)"),
])
def test_too_few_classes_are_refused(tmp_path, layout, message):
    root = _folder(tmp_path, layout)
    with pytest.raises(ValueError, match=message):
        own.label_names(f"folder:{root}")


def test_bad_folders_and_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"`dataset` folder not found\. Received: folder:'/nope'"):
        own.label_names("folder:/nope")
    root = _folder(tmp_path / "empty_class", {"a": 3})
    os.makedirs(os.path.join(root, "b"))
    with pytest.raises(ValueError, match=r"class folder '.*/b' has no image \(.jpg"):
        own.read(f"folder:{root}", 8)
    root = _folder(tmp_path / "corrupt", {"a": 3, "b": 3})
    with open(os.path.join(root, "b", "1.png"), "wb") as f:
        f.write(b"not a png")
    with pytest.raises(ValueError, match=r"image file '.*/b/1\.png' cannot be decoded .*remove or replace it"):
        own.read(f"folder:{root}", 8)
    root = _folder(tmp_path / "half", {"a": 3, "b": 3}, "train")
    with pytest.raises(ValueError, match=r"has train/ but no test/"):
        own.label_names(f"folder:{root}")
    root = _folder(tmp_path / "few", {"a": 2, "b": 2})
    with pytest.raises(ValueError, match=r"4 images in 2 classes, too few to hold out test images by default"):
        own.read(f"folder:{root}", 8)


def test_mixed_sizes_are_resized_and_said_once(tmp_path):
    _image(str(tmp_path / "a" / "0.png"), (10, 12))
    _image(str(tmp_path / "a" / "1.jpg"), (40, 40))
    _image(str(tmp_path / "b" / "0.png"), (10, 12))
    _image(str(tmp_path / "b" / "1.png"), (10, 12))
    read = own.read(f"folder:{tmp_path}", 16, validation_size=0, test_size=2)
    assert read.notes == ("images of 2 size(s) (10×12, 40×40) resized to 16×16",)


def test_the_fingerprint_follows_the_images(tmp_path):
    root = _folder(tmp_path, {"a": 2, "b": 2})
    first = own.fingerprint(f"folder:{root}")
    assert own.fingerprint(f"folder:{root}") == first
    _image(os.path.join(root, "b", "9.png"))
    assert own.fingerprint(f"folder:{root}") != first
