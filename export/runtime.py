"""Running TFLite files with LiteRT (`ai_edge_litert.interpreter.Interpreter`): outputs and latency.

The Interpreter's default op resolver applies the XNNPACK delegate to float *and* int8 graphs; on this
x86 CPU that was the fastest path measured (the `CompiledModel` API in XNNPACK mode matched it, the
builtin kernels without XNNPACK were 2-4x slower); see `benchmarks/litert_paths.py`.
"""

from __future__ import annotations

import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter


class TFLiteModel:
    """A TFLite classifier with float32 inputs/outputs from the caller's side, whatever its tensor types."""

    def __init__(self, model: bytes, num_threads: int | None = None, batch_size: int = 1):
        self.interpreter = Interpreter(model_content=model, num_threads=num_threads)
        self._input = self.interpreter.get_input_details()[0]
        if batch_size != 1:
            self.interpreter.resize_tensor_input(self._input["index"], [batch_size, *self._input["shape"][1:]])
        self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self.batch_size = batch_size

    @property
    def input_dtype(self):
        return np.dtype(self._input["dtype"])

    def quantize_input(self, images: np.ndarray) -> np.ndarray:
        if self.input_dtype == np.float32:
            return images.astype(np.float32)
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(self.input_dtype)
        return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(self.input_dtype)

    def _dequantize_output(self, values: np.ndarray) -> np.ndarray:
        if np.dtype(self._output["dtype"]) == np.float32:
            return values
        scale, zero_point = self._output["quantization"]
        return (values.astype(np.float32) - zero_point) * scale

    def invoke(self, batch: np.ndarray) -> np.ndarray:
        """Runs one prepared (already quantized) batch of exactly ``batch_size`` and returns float logits."""
        self.interpreter.set_tensor(self._input["index"], batch)
        self.interpreter.invoke()
        return self._dequantize_output(self.interpreter.get_tensor(self._output["index"]))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Float logits for every image; the last partial batch is padded."""
        prepared = self.quantize_input(images)
        outputs = []
        for start in range(0, len(prepared), self.batch_size):
            batch = prepared[start:start + self.batch_size]
            pad = self.batch_size - len(batch)
            if pad:
                batch = np.concatenate([batch, np.repeat(batch[-1:], pad, axis=0)])
            outputs.append(self.invoke(batch)[: self.batch_size - pad])
        return np.concatenate(outputs)


def time_calls(run, invokes: int = 200, warmup: int = 20) -> np.ndarray:
    """Wall time of each of ``invokes`` calls of ``run()`` after ``warmup`` untimed ones, in microseconds."""
    for _ in range(warmup):
        run()
    times = np.empty(invokes)
    for i in range(invokes):
        start = time.perf_counter()
        run()
        times[i] = time.perf_counter() - start
    return times * 1e6


def latency(model: bytes, image: np.ndarray, num_threads: int, invokes: int = 200, warmup: int = 20) -> dict:
    """Batch-1 latency of set_tensor + invoke, in microseconds, over ``invokes`` runs after ``warmup``."""
    runner = TFLiteModel(model, num_threads=num_threads)
    batch = runner.quantize_input(image[np.newaxis])
    interpreter, index = runner.interpreter, runner._input["index"]

    def run():
        interpreter.set_tensor(index, batch)
        interpreter.invoke()

    times = time_calls(run, invokes, warmup)
    return {
        "threads": num_threads,
        "invokes": invokes,
        "median_us": float(np.median(times)),
        "p90_us": float(np.percentile(times, 90)),
        "p99_us": float(np.percentile(times, 99)),
        "min_us": float(times.min()),
    }
