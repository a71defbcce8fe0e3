"""Image files take pixels: the normalisation folded into the graph, round trips between inputs and pixels."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from export import image_input

CIFAR = {"mean": [0.507, 0.487, 0.441], "std": [0.267, 0.256, 0.276], "scale": 1 / 255.0}


def test_normalization_round_trip_and_identity():
    norm = image_input.Normalization.of(CIFAR, 3)
    pixels = np.random.default_rng(0).integers(0, 256, (4, 5, 5, 3)).astype(np.float32)
    normalised = norm.normalize(tf.constant(pixels)).numpy()
    np.testing.assert_allclose(normalised[0, 0, 0], (pixels[0, 0, 0] / 255 - CIFAR["mean"]) / CIFAR["std"], rtol=1e-5)
    np.testing.assert_allclose(norm.to_pixels(normalised), pixels, atol=1e-3)
    np.testing.assert_array_equal(image_input.uint8_images(norm.to_pixels(normalised)), pixels.astype(np.uint8))
    identity = image_input.Normalization.of(None, 3)
    assert identity.identity and not norm.identity
    np.testing.assert_array_equal(identity.to_pixels(pixels), pixels)


@pytest.mark.parametrize("values", [np.array([0.5, 1.0]), np.array([-1.0, 3.0]), np.array([0.0, 256.0])])
def test_inputs_that_are_not_8_bit_pixels_give_none(values):
    assert image_input.uint8_images(values) is None


@pytest.mark.parametrize("bad", [{"mean": [0.5, 0.5], "std": [1, 1, 1]}, {"mean": [0.5], "std": [0.0]}])
def test_normalization_that_does_not_fit_the_channels_is_refused(bad):
    with pytest.raises(ValueError, match="does not fit 3 channel"):
        image_input.Normalization.of(bad, 3)


def test_pixel_saved_model_equals_the_student_on_normalised_inputs(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    norm = image_input.Normalization.of(CIFAR, 3)
    path = image_input.saved_model(model, (6, 6, 3), norm, str(tmp_path / "pixels"), keep=model)
    pixels = np.random.default_rng(1).integers(0, 256, (2, 6, 6, 3)).astype(np.float32)
    served = tf.saved_model.load(path).signatures["serving_default"](image=tf.constant(pixels))["logits"].numpy()
    np.testing.assert_allclose(served, model(norm.normalize(tf.constant(pixels))).numpy(), atol=1e-5)
