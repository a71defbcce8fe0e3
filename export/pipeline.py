"""The export stage as values: convert the student in each mode, check every file against the float
student, benchmark it. Returns bytes and dicts; writing files is the CLI's job."""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from export import convert as convert_lib
from export import runtime

QAT = "qat"
FP32_TOLERANCE = 1e-4  # max |logit difference| allowed between the fp32 file and the float student
ALL_MODES = convert_lib.MODES + (QAT,)


def check(model: bytes, images: np.ndarray, labels: np.ndarray, reference_logits: np.ndarray) -> dict:
    """Runs the file over ``images`` and compares it with the float student's logits."""
    logits = runtime.TFLiteModel(model, batch_size=100).predict(images)
    predictions, reference = logits.argmax(-1), reference_logits.argmax(-1)
    return {
        "test_examples": int(len(labels)),
        "top1": float(np.mean(predictions == labels)),
        "keras_top1": float(np.mean(reference == labels)),
        "agreement": float(np.mean(predictions == reference)),
        "max_abs_logit_diff": float(np.max(np.abs(logits - reference_logits))),
    }


def export_modes(student, modes, representative, test_images, test_labels, *, int8_io=False,
                 benchmark=True, invokes=200, qat_options=None):
    """Converts, checks and benchmarks the student in every mode.

    Returns ``(files, report)``: ``files`` maps a file name to its bytes; ``report`` is what
    ``export_report.json`` holds.
    """
    unknown = [m for m in modes if m not in ALL_MODES]
    if unknown:
        raise ValueError(f"Unknown quantization mode(s) {unknown}. Allowed: {', '.join(ALL_MODES)}")
    reference = student.predict(test_images)
    threads_all = os.cpu_count() or 1
    files, rows = {}, []
    for mode in modes:
        logging.info("[%s] converting", mode)
        if mode == QAT:
            from export import qat  # imports tfmot, which switches tf.keras to Keras 2: only here

            model, qat_info = qat.quantization_aware_int8(student, **(qat_options or {}))
        else:
            model, qat_info = convert_lib.convert(student.directory, mode, representative, int8_io), None
        name = f"student_{mode}.tflite"
        files[name] = model
        logging.info("[%s] %d bytes; checking on %d test examples", mode, len(model), len(test_labels))
        row = {"mode": mode, "file": name, "size_bytes": len(model), "tensor_dtypes": convert_lib.tensor_dtypes(model),
               **check(model, test_images, test_labels, reference)}
        if mode == "fp32" and row["max_abs_logit_diff"] > FP32_TOLERANCE:
            raise RuntimeError(
                f"The fp32 TFLite file differs from the float student by {row['max_abs_logit_diff']:.2e} "
                f"(allowed: {FP32_TOLERANCE:g}); the conversion is wrong, nothing is reported."
            )
        if qat_info:
            row["qat"] = qat_info
        if benchmark:
            for threads in sorted({1, threads_all}):
                logging.info("[%s] latency, batch 1, %d thread(s), %d invokes", mode, threads, invokes)
                row[f"latency_{threads}_threads"] = runtime.latency(model, test_images, threads, invokes)
        rows.append(row)
        logging.info("[%s] top-1 %.4f (Keras %.4f), agreement %.4f", mode, row["top1"], row["keras_top1"],
                     row["agreement"])
    fp32 = next((r["size_bytes"] for r in rows if r["mode"] == "fp32"), None)
    for row in rows:
        if fp32:
            row["fp32_size_over_this"] = fp32 / row["size_bytes"]
    return files, {"model": student.source or student.directory, "dataset": student.metadata.get("dataset", "user data"),
                   "threads_all": threads_all, "results": rows}
