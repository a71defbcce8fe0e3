"""The export stage as values: convert the student in each mode, write its metadata, check every file against
the float student with the LiteRT interpreter and with MediaPipe's classifier, benchmark it. Returns bytes and
dicts; writing files is the CLI's job."""

from __future__ import annotations

import os
import tempfile

import numpy as np
from absl import logging

from export import convert as convert_lib
from export import image_input, runtime

QAT = "qat"
FP32_TOLERANCE = 1e-4  # max |output difference| allowed between the fp32 file and the float student
ALL_MODES = convert_lib.MODES + (QAT,)
MEDIAPIPE_INPUTS = ("float32", "uint8")  # what MediaPipe's image classifier feeds (not int8)


def check(model: bytes, inputs, labels: np.ndarray, reference: np.ndarray, task: str | None = None,
          image: bool = True, probabilities: bool = False) -> tuple[dict, np.ndarray]:
    """Runs the file over ``inputs`` and compares it with the float student's outputs ``reference`` (logits; their
    softmax when the file returns ``probabilities``); returns the figures and the file's predictions (classes;
    scores for a regression student).

    Images are scored by top-1; text students by their GLUE task's metrics (accuracy, F1, Matthews; Pearson and
    Spearman for a regression student, which is compared with the float student by the Pearson correlation of
    their scores instead of class agreement)."""
    from akd_tf import glue_metrics

    outputs = runtime.TFLiteModel(model, batch_size=100).predict(inputs)
    expected = softmax(reference) if probabilities else reference
    figures = {"test_examples": int(len(labels)), "max_abs_output_diff": float(np.max(np.abs(outputs - expected)))}
    if reference.shape[-1] == 1:
        figures.update(metrics=glue_metrics.task_metrics("stsb", outputs, labels),
                       keras_metrics=glue_metrics.task_metrics("stsb", reference, labels),
                       pearson_with_keras=glue_metrics.pearson(outputs.reshape(-1), reference.reshape(-1)))
        return figures, outputs.reshape(-1)
    predictions = outputs.argmax(-1)
    if image:
        figures.update(metrics={"top1": float(np.mean(predictions == labels))},
                       keras_metrics={"top1": float(np.mean(reference.argmax(-1) == labels))})
        figures.update(top1=figures["metrics"]["top1"], keras_top1=figures["keras_metrics"]["top1"])
    else:
        figures.update(metrics=glue_metrics.task_metrics(task, outputs, labels),
                       keras_metrics=glue_metrics.task_metrics(task, reference, labels))
    figures["agreement"] = float(np.mean(predictions == reference.argmax(-1)))
    return figures, predictions


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def primary_metric(student, task):
    """The figure the report leads with: top-1 for images; the GLUE task's own metric for text."""
    from akd_tf.data import glue

    if not student.text:
        return "top1"
    if task in glue.TASKS:
        return glue.TASKS[task]["metric"]
    return "pearson" if student.num_classes == 1 else "accuracy"


class _ImageSources:
    """The pixel-input SavedModels (`export.image_input`) the image modes convert, made when first needed."""

    def __init__(self, student, normalization, directory, probabilities):
        self.student, self.normalization, self.directory = student, normalization, directory
        self.probabilities, self.made = probabilities, {}

    def __call__(self, uint8: bool) -> str:
        if uint8 not in self.made:
            path = os.path.join(self.directory, "uint8" if uint8 else "float")
            self.made[uint8] = image_input.saved_model(self.student.serve, self.student.input_shape,
                                                       self.normalization, path, uint8=uint8, keep=self.student.loaded,
                                                       probabilities=self.probabilities)
        return self.made[uint8]


def export_modes(student, modes, representative, test_inputs, test_labels, *, int8_io=False, benchmark=True,
                 invokes=200, qat_options=None, labels=None, info=None, normalization=None, mediapipe=True,
                 test_texts=None, outputs="probabilities"):
    """Converts, describes, checks and benchmarks the student in every mode.

    Image files take RGB pixels (`export.image_input`): ``normalization`` (an `image_input.Normalization`) turns
    the student's inputs (``representative``, ``test_inputs``) into pixels. With ``labels`` and ``info`` (an
    `export.metadata.ModelInfo`) every image file carries its metadata, and, with ``mediapipe``, is also run by
    MediaPipe's ``ImageClassifier`` on the test images when they are 8-bit pixels.

    Text files take token features (`export.text_input`) and carry the tokenizer in their metadata; with
    ``mediapipe``, MediaPipe's ``TextClassifier`` classifies ``test_texts`` (the raw strings of the test examples)
    as an app would, for single-text classification tasks.

    ``outputs``: what a classifier's files return, ``probabilities`` (softmax) or ``logits``; a regression
    student's return its score.

    Returns ``(files, report)``: ``files`` maps a file name to its bytes; ``report`` is what
    ``export_report.json`` holds.
    """
    unknown = [m for m in modes if m not in ALL_MODES]
    if unknown:
        raise ValueError(f"Unknown quantization mode(s) {unknown}. Allowed: {', '.join(ALL_MODES)}")
    convert_lib.check_outputs(outputs)
    probabilities = outputs == "probabilities" and student.num_classes > 1
    reference = student.predict(test_inputs)
    threads_all = os.cpu_count() or 1
    image = not student.text
    task = student.metadata.get("task")
    metric = primary_metric(student, task)
    if image:
        normalization = normalization or image_input.Normalization.of(None, student.input_shape[-1])
        file_inputs = normalization.to_pixels(test_inputs)
        calibration = None if representative is None else normalization.to_pixels(representative)
        pixels = image_input.uint8_images(file_inputs) if mediapipe else None
    else:
        from export import text_input

        file_inputs, calibration, pixels = test_inputs, representative, None
        tokenizer = text_input.tokenizer_settings(student)
    files, rows = {}, []
    with tempfile.TemporaryDirectory(prefix="akd_tf_export_") as scratch:
        sources = (_ImageSources(student, normalization, scratch, probabilities) if image
                   else _text_source(student, scratch, probabilities))
        for mode in modes:
            logging.info("[%s] converting", mode)
            if mode == QAT:
                from export import qat  # imports tfmot, which switches tf.keras to Keras 2: only here

                model, qat_info = qat.quantization_aware_int8(
                    student, **{**(qat_options or {}), "representative": calibration}, normalization=normalization,
                    probabilities=probabilities)
            else:
                source = sources(mode == "uint8") if image else sources
                model, qat_info = convert_lib.convert(source, mode, calibration, int8_io), None
            model = convert_lib.name_io_tensors(model)
            described = False
            if info is not None:
                model, described = _with_metadata(model, student, info, labels, None if image else tokenizer)
            name = f"student_{mode}.tflite"
            files[name] = model
            logging.info("[%s] %d bytes; checking on %d test examples", mode, len(model), len(test_labels))
            figures, predictions = check(model, file_inputs, test_labels, reference, task, image, probabilities)
            row = {"mode": mode, "file": name, "size_bytes": len(model), "input": _input_of(model),
                   "tensor_dtypes": convert_lib.tensor_dtypes(model), **figures}
            if mode == "uint8" and row["input"].get("quantization") != {"scale": 1.0, "zero_point": 0}:
                raise RuntimeError(f"The uint8 file's input is quantized as {row['input'].get('quantization')}, not "
                                   "scale 1 / zero point 0: its uint8 values would not be the pixels.")
            if mode == "fp32" and row["max_abs_output_diff"] > FP32_TOLERANCE:
                raise RuntimeError(
                    f"The fp32 TFLite file differs from the float student by {row['max_abs_output_diff']:.2e} "
                    f"(allowed: {FP32_TOLERANCE:g}); the conversion is wrong, nothing is reported."
                )
            if qat_info:
                row["qat"] = qat_info
            if mediapipe:
                row["mediapipe"] = (
                    _mediapipe(model, row["input"]["dtype"], pixels, test_labels, predictions, described) if image
                    else _mediapipe_text(model, test_texts, test_labels, predictions, reference, task, described))
            if benchmark:
                for threads in sorted({1, threads_all}):
                    logging.info("[%s] latency, batch 1, %d thread(s), %d invokes", mode, threads, invokes)
                    row[f"latency_{threads}_threads"] = runtime.latency(model, file_inputs, threads, invokes)
            rows.append(row)
            logging.info("[%s] %s %.4f (Keras %.4f)", mode, metric, row["metrics"][metric], row["keras_metrics"][metric])
    fp32 = next((r["size_bytes"] for r in rows if r["mode"] == "fp32"), None)
    for row in rows:
        if fp32:
            row["fp32_size_over_this"] = fp32 / row["size_bytes"]
    from akd_tf import machine

    report = {"model": student.source or student.directory, "machine": machine.machine(),
              "dataset": student.metadata.get("dataset") or "user data", "metric": metric,
              "threads_all": threads_all, "results": rows,
              "outputs": "probabilities" if probabilities else "score" if student.num_classes == 1 else "logits"}
    if image:
        report["normalization"] = normalization.as_dict()
    else:
        report["tokenizer"] = {k: v for k, v in tokenizer.items() if k != "vocabulary"}
        report["sequence_length"] = student.metadata.get("sequence_length")
    if labels is not None:
        report["labels"] = list(labels)
    if info is not None:
        report["model_info"] = dict(vars(info))
    return files, report


def _input_of(model: bytes) -> dict:
    """The file's input tensors as an app sees them: name, shape, dtype, and the value range of integer inputs."""
    interpreter = runtime.TFLiteModel(model).interpreter
    described = []
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        entry = {"name": detail["name"], "shape": [int(d) for d in detail["shape"]], "dtype": dtype.name}
        scale, zero_point = detail["quantization"]
        if scale:
            entry["quantization"] = {"scale": float(scale), "zero_point": int(zero_point)}
        described.append(entry)
    return described[0] if len(described) == 1 else {"tensors": described}


def _mediapipe(model, dtype, pixels, labels, litert_predictions, described) -> dict:
    """MediaPipe's ImageClassifier on the file (its input of ``dtype``) as it is, over the test images (8-bit RGB
    pixels)."""
    if pixels is None:
        return {"skipped": "the test inputs are not 8-bit pixels (0-255 whole numbers) once un-normalised"}
    if dtype not in MEDIAPIPE_INPUTS:
        return {"skipped": f"MediaPipe's image classifier takes float32 or uint8 input, this file {dtype}"}
    if not described:
        return {"skipped": "the file has no metadata (no labels)"}
    from export import mediapipe_client

    indices, names, scores = mediapipe_client.classify_images(model, pixels)
    top1 = float(np.mean(indices == labels))
    return {"metrics": {"top1": top1}, "top1": top1, "top_score_range": [float(scores.min()), float(scores.max())],
            "agreement_with_litert": float(np.mean(indices == litert_predictions)),
            "categories": sorted(set(names)), "examples": int(len(indices))}


def _text_source(student, directory, probabilities):
    """The text student as a SavedModel of `export.text_input` (named inputs, output ``probabilities`` or
    ``logits``)."""
    from export import text_input

    return text_input.saved_model(student.serve, list(student.metadata["inputs"]), student.metadata["sequence_length"],
                                  os.path.join(directory, "text"), keep=student.loaded, probabilities=probabilities)


def _with_metadata(model, student, info, labels, tokenizer):
    """``(model with its metadata, whether it has any)``: an image file's (``tokenizer`` None), or a text file's
    when its student has a WordPiece vocabulary and the three BERT inputs (named as their features since
    `convert.name_io_tensors`)."""
    from export import metadata, text_input

    if tokenizer is None:
        return metadata.image_classifier(model, info, labels), True
    if tokenizer["vocabulary"] is None or set(student.metadata["inputs"]) != set(text_input.FEATURES):
        return model, False  # not a BERT WordPiece student: no tokenizer an app could be told of
    return metadata.text_classifier(model, info, None if student.num_classes == 1 else labels,
                                    tokenizer["vocabulary"], {name: name for name in text_input.FEATURES}), True


SENTENCE_PAIRS = ("MediaPipe's TextClassifier takes one string; for a sentence pair an app tokenizes the pair itself "
                  "([CLS] a [SEP] b [SEP], segment ids 0 then 1, with the vocabulary packed in the file) and runs the "
                  "file with the LiteRT interpreter")


def _mediapipe_text(model, texts, labels, litert_predictions, reference, task, described) -> dict:
    """MediaPipe's TextClassifier on the file as it is, over the test examples' raw text."""
    from akd_tf import glue_metrics

    if texts is None:
        return {"skipped": "no raw text for the test examples"}
    if len(texts) != 1:
        return {"skipped": SENTENCE_PAIRS}
    if reference.shape[-1] == 1:
        return {"skipped": "a regression student: MediaPipe's TextClassifier returns categories"}
    if not described:
        return {"skipped": "the file has no tokenizer in its metadata (not a BERT WordPiece student)"}
    from export import mediapipe_client

    indices, names, scores = mediapipe_client.classify_texts(model, texts[0])
    one_hot = np.eye(reference.shape[-1])[indices]
    return {"metrics": glue_metrics.task_metrics(task, one_hot, labels),
            "top_score_range": [float(scores.min()), float(scores.max())],
            "agreement_with_keras": float(np.mean(indices == reference.argmax(-1))),
            "agreement_with_litert": float(np.mean(indices == litert_predictions)),
            "categories": sorted(set(names)), "examples": int(len(indices))}
