"""Running TFLite files with LiteRT (`ai_edge_litert.interpreter.Interpreter`): outputs and latency.

The Interpreter's default op resolver applies the XNNPACK delegate to float *and* int8 graphs; on this
x86 CPU that was the fastest path measured (the `CompiledModel` API in XNNPACK mode matched it, the
builtin kernels without XNNPACK were 2-4x slower); see `benchmarks/litert_paths.py`.
"""

from __future__ import annotations

import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def take(inputs, start, stop=None):
    """Examples ``start:stop`` of an input array or of every array of an input dict."""
    if isinstance(inputs, dict):
        return {name: array[start:stop] for name, array in inputs.items()}
    return inputs[start:stop]


def count(inputs) -> int:
    return len(next(iter(inputs.values()))) if isinstance(inputs, dict) else len(inputs)


class TFLiteModel:
    """A TFLite model run from float32 images, or from a dict of int32 token features (text students), with
    float32 outputs on the caller's side whatever its tensor types."""

    def __init__(self, model: bytes, num_threads: int | None = None, batch_size: int = 1):
        self.interpreter = Interpreter(model_content=model, num_threads=num_threads)
        if batch_size != 1:
            for detail in self.interpreter.get_input_details():
                self.interpreter.resize_tensor_input(detail["index"], [batch_size, *detail["shape"][1:]])
        self.interpreter.allocate_tensors()
        self._inputs = self.interpreter.get_input_details()
        self._input = self._inputs[0]
        self._output = self.interpreter.get_output_details()[0]
        self.batch_size = batch_size

    @property
    def input_dtype(self):
        return np.dtype(self._input["dtype"])

    def _detail_for(self, name):
        # Converted SavedModels name their inputs "serving_default_<name>:0".
        matches = [d for d in self._inputs if d["name"].split(":")[0].endswith(name)]
        if len(matches) != 1:
            raise ValueError(f"Input {name!r} matches {len(matches)} tensors of the TFLite model: "
                             f"{[d['name'] for d in self._inputs]}")
        return matches[0]

    def quantize_input(self, inputs):
        """Images in the model's input type (int8 inputs are quantized); token features cast to its types."""
        if isinstance(inputs, dict):
            return {name: array.astype(self._detail_for(name)["dtype"]) for name, array in inputs.items()}
        if self.input_dtype == np.float32:
            return inputs.astype(np.float32)
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(self.input_dtype)
        return np.clip(np.round(inputs / scale + zero_point), info.min, info.max).astype(self.input_dtype)

    def _dequantize_output(self, values: np.ndarray) -> np.ndarray:
        if np.dtype(self._output["dtype"]) == np.float32:
            return values
        scale, zero_point = self._output["quantization"]
        return (values.astype(np.float32) - zero_point) * scale

    def set_inputs(self, batch):
        """Puts one prepared batch (`quantize_input`) of exactly ``batch_size`` into the input tensors."""
        if isinstance(batch, dict):
            for name, array in batch.items():
                self.interpreter.set_tensor(self._detail_for(name)["index"], array)
        else:
            self.interpreter.set_tensor(self._input["index"], batch)

    def invoke(self, batch) -> np.ndarray:
        """Runs one prepared batch of exactly ``batch_size`` and returns float logits."""
        self.set_inputs(batch)
        self.interpreter.invoke()
        return self._dequantize_output(self.interpreter.get_tensor(self._output["index"]))

    def predict(self, inputs) -> np.ndarray:
        """Float logits for every example; the last partial batch is padded."""
        prepared = self.quantize_input(inputs)
        outputs = []
        for start in range(0, count(prepared), self.batch_size):
            batch = take(prepared, start, start + self.batch_size)
            pad = self.batch_size - count(batch)
            if pad:
                pad_rows = lambda a: np.concatenate([a, np.repeat(a[-1:], pad, axis=0)])  # noqa: E731
                batch = {k: pad_rows(v) for k, v in batch.items()} if isinstance(batch, dict) else pad_rows(batch)
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


def latency(model: bytes, examples, num_threads: int, invokes: int = 200, warmup: int = 20) -> dict:
    """Batch-1 latency of set_tensor + invoke on the first of ``examples`` (images, or a dict of token
    features), in microseconds, over ``invokes`` runs after ``warmup``."""
    runner = TFLiteModel(model, num_threads=num_threads)
    batch = runner.quantize_input(take(examples, 0, 1))

    def run():
        runner.set_inputs(batch)
        runner.interpreter.invoke()

    times = time_calls(run, invokes, warmup)
    return {
        "threads": num_threads,
        "invokes": invokes,
        "median_us": float(np.median(times)),
        "p90_us": float(np.percentile(times, 90)),
        "p99_us": float(np.percentile(times, 99)),
        "min_us": float(times.min()),
    }
