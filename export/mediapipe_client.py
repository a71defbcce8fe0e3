"""The exported files run by MediaPipe Tasks, the on-device API that Android, iOS, web and Python apps use: the
file is handed over as it is (its metadata says how to feed it and what the outputs mean), nothing of ours
around it."""

from __future__ import annotations

import numpy as np


def classify_images(model: bytes, images: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
    """MediaPipe's ``ImageClassifier`` on ``images`` (uint8 RGB, ``[n, height, width, 3]``): the top class index,
    the category name and the score it returns for each image."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_buffer=model), max_results=1)
    indices, names, scores = np.empty(len(images), np.int64), [], np.empty(len(images))
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for i, image in enumerate(images):
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
            top = result.classifications[0].categories[0]
            indices[i], scores[i] = top.index, top.score
            names.append(top.category_name)
    return indices, names, scores


def classify_texts(model: bytes, texts) -> tuple[np.ndarray, list[str], np.ndarray]:
    """MediaPipe's ``TextClassifier`` on ``texts`` (strings): the top class index, category name and score of each;
    it tokenizes with the vocabulary in the file's metadata."""
    from mediapipe.tasks.python import BaseOptions, text

    options = text.TextClassifierOptions(base_options=BaseOptions(model_asset_buffer=model), max_results=1)
    indices, names, scores = np.empty(len(texts), np.int64), [], np.empty(len(texts))
    with text.TextClassifier.create_from_options(options) as classifier:
        for i, sentence in enumerate(texts):
            sentence = sentence.decode("utf-8") if isinstance(sentence, bytes) else str(sentence)
            top = classifier.classify(sentence).classifications[0].categories[0]
            indices[i], scores[i] = top.index, top.score
            names.append(top.category_name)
    return indices, names, scores
