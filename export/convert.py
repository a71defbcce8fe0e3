"""SavedModel -> TFLite bytes, one function per quantization mode. Nothing is written or printed here.

Modes (TFLite post-training quantization):

* ``fp32``     no quantization.
* ``dynamic``  int8 weights, float activations (dynamic-range quantization); no data needed.
* ``float16``  float16 weights.
* ``int8``     full integer: int8 weights and activations, calibrated on a representative dataset; the
               input/output tensors are float32 (quantize/dequantize inside) unless ``int8_io=True``.
* ``int16x8``  int16 activations, int8 weights (more accurate than int8, slower on most CPUs).

Conversion goes through ``TFLiteConverter.from_saved_model`` (``from_concrete_functions`` left variable ops
and NaN outputs here).
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterable

import numpy as np
import tensorflow as tf

MODES = ("fp32", "dynamic", "float16", "int8", "int16x8")
NEEDS_DATA = ("int8", "int16x8")


def convert(
    saved_model_dir: str,
    mode: str,
    representative_images: np.ndarray | None = None,
    int8_io: bool = False,
) -> bytes:
    """Converts the SavedModel's serving signature to a TFLite flatbuffer in ``mode``.

    ``representative_images`` (float32, the model's input layout; for a text student a dict of int32 token
    features) calibrate ``int8`` and ``int16x8``.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown quantization mode {mode!r}. Allowed: {', '.join(MODES)}")
    if mode in NEEDS_DATA and (representative_images is None or len(representative_images) == 0):
        raise ValueError(f"Mode {mode!r} needs representative images to calibrate activations; received none.")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    if mode != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in NEEDS_DATA:
        converter.representative_dataset = representative_dataset(representative_images)
    if mode == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    if mode == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    return run(converter)


def run(converter: tf.lite.TFLiteConverter) -> bytes:
    """``converter.convert()`` without the deprecation warning TF's own calibrator raises when it builds a
    ``tf.lite.Interpreter`` to calibrate on named inputs (a text student's token features): it is not about this
    code (which runs models with ``ai_edge_litert``) and a user cannot act on it. Every other warning passes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated",
                                category=UserWarning)
        return converter.convert()


def representative_dataset(examples) -> Callable[[], Iterable]:
    """The converter's calibration input: one example per step, with a batch dimension. ``examples`` are
    float32 images, or a dict of int32 token features keyed by the signature's input names."""
    def generator():
        if isinstance(examples, dict):
            for i in range(len(next(iter(examples.values())))):
                yield {name: array[i:i + 1].astype(np.int32) for name, array in examples.items()}
        else:
            for image in examples:
                yield [image[np.newaxis].astype(np.float32)]

    return generator


def tensor_dtypes(model: bytes) -> dict[str, int]:
    """How many tensors of each dtype the model holds (e.g. ``{"int8": 40, "int32": 9, "float32": 2}``)."""
    from ai_edge_litert.interpreter import Interpreter

    counts: dict[str, int] = {}
    for detail in Interpreter(model_content=model).get_tensor_details():
        name = np.dtype(detail["dtype"]).name
        counts[name] = counts.get(name, 0) + 1
    return counts
