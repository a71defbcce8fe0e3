"""Metadata inside the image files: general information, labels, input; read back with MediaPipe's displayer and
used by MediaPipe's ImageClassifier as it is."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from export import convert, image_input, mediapipe_client, metadata, runtime

NAMES = ["cat", "dog", "bird"]


@pytest.fixture(scope="module")
def pixel_files(tmp_path_factory):
    """fp32 and uint8 files of a tiny 3-class model over 8x8 RGB pixels, with calibration pixels."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    norm = image_input.Normalization.of({"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}, 3)
    root = tmp_path_factory.mktemp("pixels")
    model.export(str(root / "student"), verbose=False)  # the export reads students as SavedModels (export.student)
    loaded = tf.saved_model.load(str(root / "student"))
    pixels = np.random.default_rng(0).integers(0, 256, (120, 8, 8, 3)).astype(np.float32)
    files = {}
    for mode in ("fp32", "uint8"):
        source = image_input.saved_model(loaded.serve, (8, 8, 3), norm, str(root / mode), uint8=mode == "uint8",
                                         keep=loaded)
        files[mode] = convert.convert(source, mode, pixels[:60])
    return files, pixels


def test_image_metadata_reads_back_with_labels_and_general_information(pixel_files):
    files, _ = pixel_files
    info = metadata.ModelInfo("tiny", "a test model", version="7", license="MIT")
    described = metadata.read(metadata.image_classifier(files["uint8"], info, NAMES))
    assert (described["name"], described["description"], described["version"], described["license"]) == (
        "tiny", "a test model", "7", "MIT")
    assert described["associated_files"]["labels.txt"].split() == NAMES
    image = described["subgraph_metadata"][0]["input_tensor_metadata"][0]
    assert image["content"]["content_properties"]["color_space"] == "RGB"
    assert image["process_units"][0]["options"] == {"mean": [0.0], "std": [1.0]}
    assert "uint8" in image["description"]
    assert metadata.read(files["fp32"]) == {}


@pytest.mark.parametrize("mode", ["fp32", "uint8"])
def test_mediapipe_classifies_the_file_as_the_interpreter_does_and_names_the_classes(pixel_files, mode):
    files, pixels = pixel_files
    model = metadata.image_classifier(files[mode], metadata.ModelInfo("tiny", "test"), NAMES)
    indices, names, _ = mediapipe_client.classify_images(model, pixels[60:].astype(np.uint8))
    litert = runtime.TFLiteModel(model, batch_size=20).predict(pixels[60:]).argmax(-1)
    np.testing.assert_array_equal(indices, litert)
    assert names == [NAMES[i] for i in indices]


def test_uint8_file_takes_the_pixels_themselves(pixel_files):
    files, _ = pixel_files
    detail = runtime.TFLiteModel(files["uint8"]).interpreter.get_input_details()[0]
    assert np.dtype(detail["dtype"]) == np.uint8 and detail["quantization"] == (1.0, 0)


def test_labels_file_must_have_one_name_per_class(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("cat\ndog\nbird\n\n")
    assert metadata.read_labels(str(good), 3) == NAMES
    bad = tmp_path / "bad.txt"
    bad.write_text("cat\ndog\n")
    with pytest.raises(ValueError, match=r"has 2 line\(s\); the student has 3 classes"):
        metadata.read_labels(str(bad), 3)
    blank = tmp_path / "blank.txt"
    blank.write_text("cat\n\nbird\n")
    with pytest.raises(ValueError, match=r"3 line\(s\) \(1 blank\)"):
        metadata.read_labels(str(blank), 3)
    with pytest.raises(FileNotFoundError, match="labels file not found"):
        metadata.read_labels(str(tmp_path / "none.txt"), 3)


def test_dataset_labels_are_the_tfds_label_names():
    assert metadata.dataset_labels("cifar10")[:3] == ["airplane", "automobile", "bird"]
