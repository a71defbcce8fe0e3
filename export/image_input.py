"""What an exported image file takes: RGB pixels (0-255), the training normalisation folded into its graph.

An app then passes camera pixels as they are: float32 pixels to the float and int8 files, uint8 pixels to the
``uint8`` file. This is also what MediaPipe's ``ImageClassifier`` can feed: its metadata takes one mean and one
standard deviation for all channels ("Per-channel image normalization is not available"), while the students are
trained on per-channel standardised images. The file's metadata therefore says mean 0, std 1.

The student is wrapped in a SavedModel whose serving function normalises and then calls it; the converter reads
that SavedModel. For ``uint8`` the pixels first pass a fake-quantization node over exactly [0, 255] with 8 bits,
which fixes the input's quantization to scale 1, zero point 0: the uint8 tensor holds the pixel values
themselves, whatever range the calibration images happen to span.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

PIXEL_RANGE = (0.0, 255.0)


@dataclasses.dataclass(frozen=True)
class Normalization:
    """How the student's float input is made from pixels ``p``: ``(p * scale - mean) / std`` per channel."""
    mean: tuple
    std: tuple
    scale: float = 1 / 255.0

    @classmethod
    def of(cls, preprocessing: dict | None, channels: int) -> Normalization:
        """From an ``akd_tf.json`` ``preprocessing`` entry; without mean and std, the identity (the student takes
        pixels, or inputs that are not images of 0-255 pixels)."""
        if preprocessing and "mean" in preprocessing and "std" in preprocessing:
            mean, std = tuple(map(float, preprocessing["mean"])), tuple(map(float, preprocessing["std"]))
            if len(mean) not in (1, channels) or len(std) not in (1, channels) or min(std) <= 0:
                raise ValueError(f"normalisation mean {list(mean)} / std {list(std)} does not fit {channels} "
                                 "channel(s): expected one value or one per channel, std > 0")
            return cls(mean, std, float(preprocessing.get("scale", 1 / 255.0)))
        return cls((0.0,), (1.0,), 1.0)

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and set(self.mean) == {0.0} and set(self.std) == {1.0}

    def as_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "scale": self.scale}

    def normalize(self, pixels):
        """Pixels (a tensor) -> the student's input."""
        return (pixels * self.scale - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)

    def to_pixels(self, inputs: np.ndarray) -> np.ndarray:
        """The student's inputs back to float pixels (exact up to float rounding)."""
        inputs = np.asarray(inputs, np.float32)
        return (inputs * np.float32(self.std) + np.float32(self.mean)) / np.float32(self.scale)


def uint8_images(pixels: np.ndarray) -> np.ndarray | None:
    """``pixels`` as uint8 when they are whole numbers in [0, 255] up to float rounding, else None (inputs that
    are not images of 8-bit pixels)."""
    rounded = np.round(pixels)
    if pixels.size == 0 or np.abs(pixels - rounded).max() > 1e-2 or rounded.min() < 0 or rounded.max() > 255:
        return None
    return rounded.astype(np.uint8)


def saved_model(serve, input_shape, normalization: Normalization, directory: str, uint8: bool = False,
                keep=None, probabilities: bool = False) -> str:
    """Writes a SavedModel to ``directory`` whose ``serving_default`` takes float32 pixels ``[batch, *input_shape]``
    and returns the logits of ``serve`` (the student's function on normalised inputs), or with ``probabilities``
    their softmax (`export.convert.outputs`). ``keep``: an object whose variables ``serve`` uses (saved with it)."""
    from export import convert

    def pixels_to_outputs(image):
        if uint8:
            image = tf.quantization.fake_quant_with_min_max_args(image, *PIXEL_RANGE, num_bits=8)
        return convert.outputs(serve(normalization.normalize(image)), probabilities)

    signature = [tf.TensorSpec([None, *input_shape], tf.float32, name="image")]
    return convert.serving_saved_model(pixels_to_outputs, signature, directory, keep)
