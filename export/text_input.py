"""What an exported text file takes, and the tokenizer that makes it: WordPiece token ids, segment ids and a padding
mask (int32, ``[1, sequence_length]``), made by the keras-hub preprocessor saved with the student
(``<student>/preset/``, a keras-hub preset: vocabulary file and settings).

The file's serving function is a wrapper that takes the three features by name and returns ``{"logits": ...}``,
so the file's output is called ``logits`` whatever the student's SavedModel named it. The vocabulary goes into the
file's metadata (`export.metadata.text_classifier`), which is what MediaPipe's ``TextClassifier`` tokenizes with.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

FEATURES = ("token_ids", "segment_ids", "padding_mask")


def saved_model(serve, names, length: int, directory: str, keep=None, probabilities: bool = False) -> str:
    """Writes a SavedModel whose ``serving_default`` takes the token features ``names`` (int32 ``[batch, length]``)
    and returns ``{"logits": serve(features)}``, or with ``probabilities`` their softmax (`export.convert.outputs`);
    ``keep``: the object whose variables ``serve`` uses."""
    from export import convert

    signature = [{name: tf.TensorSpec([None, int(length)], tf.int32, name=name) for name in names}]
    return convert.serving_saved_model(lambda features: convert.outputs(serve(features), probabilities), signature,
                                       directory, keep)


def preset_directory(student) -> str:
    return os.path.join(student.directory, student.metadata.get("preset", "preset"))


def preprocessor(student):
    """The keras-hub preprocessor saved with the student: raw strings -> its token features."""
    import keras_hub

    return keras_hub.models.TextClassifierPreprocessor.from_preset(preset_directory(student))


def tokenizer_settings(student) -> dict:
    """The WordPiece tokenizer the student was trained with: its class, vocabulary file and settings."""
    directory = preset_directory(student)
    with open(os.path.join(directory, "tokenizer.json")) as f:
        saved = json.load(f)
    config = saved.get("config", {})
    vocabulary = os.path.join(directory, "assets", "tokenizer", "vocabulary.txt")
    return {"class": saved.get("class_name"), "vocabulary": vocabulary if os.path.isfile(vocabulary) else None,
            **{key: config.get(key) for key in ("lowercase", "strip_accents", "suffix_indicator", "oov_token")}}


def tokenize(student, texts: tuple) -> dict:
    """Token features (int32 arrays keyed as the student's inputs) of ``texts``: a tuple of string arrays, one
    per text field (two for sentence-pair tasks)."""
    from akd_tf.data import glue

    features = glue.tokenize(preprocessor(student), texts)
    return {name: np.asarray(features[name]).astype(np.int32) for name in student.metadata["inputs"]}


def as_texts(data, what: str):
    """``data`` (strings, or a tuple of two string arrays for sentence pairs) as a tuple of string arrays, or
    raises `ValueError`."""
    fields = data if isinstance(data, tuple) else (data,)
    fields = tuple(np.asarray(field) for field in fields)
    if not 1 <= len(fields) <= 2 or any(f.ndim != 1 or f.dtype.kind not in "USO" for f in fields):
        raise ValueError(f"{what}: a text student takes strings (an array of them), or a tuple of two string arrays "
                         f"for sentence pairs. Received {[f'{f.dtype}{list(f.shape)}' for f in fields]}.")
    if len({len(f) for f in fields}) != 1:
        raise ValueError(f"{what}: the two sentence arrays differ in length: {[len(f) for f in fields]}.")
    return tuple(f.astype(object) if f.dtype.kind == "U" else f for f in fields)
