"""Quantization-aware training (tensorflow-model-optimization) of the saved student, then int8 TFLite.

tfmot supports only tf_keras (Keras 2) models, and importing it sets ``TF_USE_LEGACY_KERAS=1`` (``tf.keras``
becomes Keras 2), so it is imported here and nowhere else. The student's architecture is rebuilt in tf_keras
from its ``akd_tf.json`` (``net``: any `akd_tf.nets` name: the CIFAR ResNets and TAKD plain CNNs), its
weights are copied by name from the SavedModel, the copy is checked against the SavedModel, fine-tuned with
fake quantization on the hard labels (BatchNorm frozen), and converted through a SavedModel (pixels in,
`export.image_input`) to full-integer TFLite.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import tensorflow as tf
from absl import logging

from akd_tf import nets
from export import convert
from export import student as student_lib


def _tf_keras_copy(student):
    import tf_keras

    net = student.metadata.get("net")
    if net not in nets.NETS:
        raise ValueError(
            f"QAT rebuilds the student in tf_keras and supports the akd_tf.nets architectures "
            f"({', '.join(nets.NETS)}); this student's akd_tf.json names net={net!r}."
        )
    model = nets.build(net, student.num_classes, student.input_shape, keras_module=tf_keras)
    saved = {v.name: v for v in student.loaded.variables}
    for weight in model.weights:
        if weight.name not in saved or tuple(saved[weight.name].shape) != tuple(weight.shape):
            raise ValueError(f"QAT: the saved student has no variable matching {weight.name} {weight.shape}")
        weight.assign(saved[weight.name].numpy())
    return model


def quantization_aware_int8(student, epochs=2, train_size=10000, learning_rate=1e-3, data_dir=None,
                            representative=None, batch_size=128, normalization=None, probabilities=False):
    """Returns ``(int8 TFLite bytes, info)`` after ``epochs`` of QAT fine-tuning on ``train_size`` images. The file
    takes pixels like every image export (`export.image_input`, ``normalization``; ``representative``: pixels)."""
    from export import image_input

    import tensorflow_model_optimization as tfmot  # noqa: F401  (sets TF_USE_LEGACY_KERAS)
    import tf_keras

    model = _tf_keras_copy(student)
    x, y = student_lib.images(student, "train", train_size, data_dir)
    probe = x[:64]
    gap = float(np.max(np.abs(model(probe, training=False).numpy() - student.predict(probe))))
    if gap > 1e-3:
        raise RuntimeError(f"QAT: the tf_keras copy differs from the saved student by {gap:.2e} on logits")
    # BatchNorm runs in inference mode during QAT: re-estimating its statistics on these un-augmented
    # images moved the student (agreement 0.85 with the float student after one epoch at learning rate 0);
    # frozen, the fine-tune only adapts the weights to fake quantization (measured: 0.97 at rate 0).
    for layer in model.layers:
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            layer.trainable = False
    qat_model = tfmot.quantization.keras.quantize_model(model)
    qat_model.compile(
        optimizer=tf_keras.optimizers.SGD(learning_rate, momentum=0.9),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    logging.info("QAT: fine-tuning %s for %d epoch(s) on %d training images", student.metadata["net"], epochs, len(y))
    history = qat_model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=2)
    with tempfile.TemporaryDirectory() as directory:
        saved = os.path.join(directory, "qat_savedmodel")
        normalization = normalization or image_input.Normalization.of(None, student.input_shape[-1])
        image_input.saved_model(lambda x: qat_model(x, training=False), student.input_shape, normalization, saved,
                                keep=qat_model, probabilities=probabilities)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if representative is not None:
            converter.representative_dataset = convert.representative_dataset(representative)
        model_bytes = convert.run(converter)
    info = {"epochs": epochs, "train_examples": int(len(y)), "learning_rate": learning_rate,
            "final_train_accuracy": float(history.history["accuracy"][-1]), "copy_max_abs_logit_diff": gap}
    return model_bytes, info
