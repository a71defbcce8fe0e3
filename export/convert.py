"""SavedModel -> TFLite bytes, one function per quantization mode. Nothing is written or printed here.

Modes (TFLite post-training quantization):

* ``fp32``     no quantization.
* ``dynamic``  int8 weights, float activations (dynamic-range quantization); no data needed.
* ``float16``  float16 weights.
* ``int8``     full integer: int8 weights and activations, calibrated on a representative dataset; the
               input/output tensors are float32 (quantize/dequantize inside) unless ``int8_io=True``.
* ``int16x8``  int16 activations, int8 weights (more accurate than int8, slower on most CPUs).
* ``uint8``    full integer like ``int8``, with a uint8 input tensor: for a SavedModel of `export.image_input`
               (pixels in, fixed to scale 1 / zero point 0), the raw pixels; float32 probabilities (or logits) out.
* ``int4``     4-bit weights (per output channel) of the dense and convolution ops, 8-bit embedding tables,
               float activations: the fp32 file quantized by Google's ai-edge-quantizer (`int4_weights`).

Conversion goes through ``TFLiteConverter.from_saved_model`` (``from_concrete_functions`` leaves variable ops in
the file, whose outputs can be NaN).
"""

from __future__ import annotations

import os
import warnings
from typing import Callable, Iterable

import flatbuffers
import numpy as np
import tensorflow as tf

MODES = ("fp32", "dynamic", "float16", "int8", "int16x8", "uint8", "int4")
NEEDS_DATA = ("int8", "int16x8", "uint8")


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
    if mode == "int4":
        return int4_weights(convert(saved_model_dir, "fp32"), representative_images)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    if mode != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in NEEDS_DATA:
        converter.representative_dataset = representative_dataset(representative_images)
    if mode in ("int8", "uint8"):
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if mode == "uint8":
        converter.inference_input_type = tf.uint8
    if mode == "int8":
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    if mode == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    return run(converter)


# What an exported classifier returns: class probabilities (softmax) by default, which is what apps threshold and what
# MediaPipe's classifiers report as scores; or the logits. A regression student returns its score either way.
OUTPUTS = ("probabilities", "logits")


def check_outputs(outputs: str) -> None:
    """`ValueError` in one line unless ``outputs`` is one of `OUTPUTS`."""
    if outputs not in OUTPUTS:
        raise ValueError(f"outputs must be one of {', '.join(OUTPUTS)}. Received: outputs={outputs!r}")


def outputs(logits, probabilities: bool) -> dict:
    """The serving function's outputs: ``{"probabilities": softmax(logits)}`` or ``{"logits": logits}``; the key
    names the file's output tensor (`name_io_tensors`)."""
    return {"probabilities": tf.nn.softmax(logits, axis=-1)} if probabilities else {"logits": logits}


def serving_saved_model(function, input_signature, directory: str, keep=None) -> str:
    """Writes ``function`` (inputs -> `outputs`) as the ``serving_default`` signature of a SavedModel in
    ``directory``, the form `convert` reads; ``keep``: the object whose variables ``function`` uses (saved with
    it). The signature's names become the file's tensor names (`name_io_tensors`)."""
    module = tf.Module()
    module.keep = keep
    module.serve = tf.function(function, input_signature=input_signature)
    tf.saved_model.save(module, directory, signatures={"serving_default": module.serve})
    return directory


def int4_weights(fp32_model: bytes, representative=None, calibration_examples: int = 32) -> bytes:
    """``fp32_model`` with 4-bit weights, per output channel, and float arithmetic, by Google's ai-edge-quantizer.

    Dense, batched-matmul and convolution weights take its weight-only recipe (dequantized once, when the
    interpreter is prepared). Embedding tables are read by GATHER ops (TensorFlow's converter emits no
    EMBEDDING_LOOKUP), which its 4-bit recipes do not cover; they take its static recipe on GATHER instead, which
    stores the table in 8 bits (GATHER output on the table's own scale, hence the same values) and needs
    ``representative`` examples (a dict of token feature arrays) to run. Without them (an image model has no
    tables) the tables stay float."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import qtyping, quantizer, recipe_manager

    recipe = recipe_manager.RecipeManager()
    recipe.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=4)
    gathers = "GATHER" in _operators(fp32_model) and isinstance(representative, dict)
    if gathers:
        recipe.add_static_config(regex=".*", operation_name=qtyping.TFLOperationName.GATHER, activation_num_bits=8,
                                 weight_num_bits=4)
    engine = quantizer.Quantizer(bytearray(fp32_model))
    engine.load_quantization_recipe(recipe.get_quantization_recipe())
    with warnings.catch_warnings():  # its calibrating interpreter keeps every tensor, on purpose
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors", category=UserWarning)
        calibration = None
        if gathers:
            signature = next(iter(Interpreter(model_content=fp32_model).get_signature_list()))
            count = min(calibration_examples, len(next(iter(representative.values()))))
            examples = [{name: array[i:i + 1].astype(np.int32) for name, array in representative.items()}
                        for i in range(count)]
            calibration = engine.calibrate({signature: examples}, num_threads=os.cpu_count() or 1)
        return _inline_buffers(bytes(engine.quantize(calibration, enable_progress_report=False).quantized_model))


def _inline_buffers(model: bytes) -> bytes:
    """``model`` with every weight buffer inside the flatbuffer. ai-edge-quantizer writes models over 256 KB with
    their buffers after the flatbuffer, addressed by offset; the interpreter reads that, but a rewrite of the
    flatbuffer (the metadata writers', `name_io_tensors`) drops the data behind it."""
    root = _unpack(model)
    outside = [buffer for buffer in root.buffers or () if (buffer.offset or 0) > 1]
    if not outside:
        return model
    for buffer in outside:
        buffer.data = np.frombuffer(model, np.uint8, count=buffer.size, offset=buffer.offset)
        buffer.offset = buffer.size = 0
    return _pack(root, len(model))


def _operators(model: bytes) -> set[str]:
    from tensorflow.lite.python import schema_py_generated as schema

    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    root = schema.Model.GetRootAsModel(model, 0)
    return {names.get(root.OperatorCodes(i).BuiltinCode(), "?") for i in range(root.OperatorCodesLength())}


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
    """How many tensors of each type the model's graphs hold (e.g. ``{"int8": 40, "int32": 9, "float32": 2}``), read
    from the flatbuffer: the interpreter shows 4-bit tensors as int8, the file says int4."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {value: key.lower() for key, value in vars(schema.TensorType).items() if not key.startswith("_")}
    root = schema.Model.GetRootAsModel(model, 0)
    counts: dict[str, int] = {}
    for g in range(root.SubgraphsLength()):
        subgraph = root.Subgraphs(g)
        for t in range(subgraph.TensorsLength()):
            name = names.get(subgraph.Tensors(t).Type(), "unknown")
            counts[name] = counts.get(name, 0) + 1
    return counts


def name_io_tensors(model: bytes) -> bytes:
    """``model`` with its input and output tensors named as its signature names them (``token_ids``, ``image``,
    ``logits``) instead of the converter's ``serving_default_token_ids:0`` and ``StatefulPartitionedCall:0``: the
    names an app and the metadata see. The other tensors lose their names (TensorFlow op paths, a few KB that
    nothing reads when the file runs; on a ResNet-8 about 1 % of the int8 file). Call it before the metadata is
    written: the files packed with the metadata ride after the flatbuffer, and a repack drops them."""
    root = _unpack(model)
    for signature in root.signatureDefs or ():
        subgraph = root.subgraphs[signature.subgraphIndex]
        io = {entry.tensorIndex: entry.name for entry in (signature.inputs or []) + (signature.outputs or [])}
        for index, tensor in enumerate(subgraph.tensors):
            tensor.name = io.get(index, "")
    return _pack(root, len(model))


def _unpack(model: bytes):
    """The model as the flatbuffer schema's object tree, to edit (`_pack` writes it back)."""
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))


def _pack(root, size_hint: int) -> bytes:
    builder = flatbuffers.Builder(size_hint + 1024)
    builder.Finish(root.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
