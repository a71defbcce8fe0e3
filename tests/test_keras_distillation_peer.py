"""benchmarks/keras_distillation_peer.py: what `keras.distillation` computes beside `HintonKD`, pinned on tiny models
so that a Keras release that changes it fails here (and the docs' paragraph is revisited)."""

import keras
import numpy as np
import pytest

from benchmarks.keras_distillation_peer import one_step


def test_keras_default_soft_term_is_kl_on_clipped_logits_and_the_instance_is_hinton_kd():
    keras.utils.set_random_seed(0)
    teacher = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5)])
    teacher.trainable = False
    student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5)])
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32") * 3
    y = np.arange(16) % 5
    results, closed, parts = one_step(teacher, student, x, y, temperature=4.0, w=0.1)
    for name, (loss, _) in results.items():
        assert loss == pytest.approx(closed[name], rel=1e-5), name
    ours = results["akd_tf_hinton_kd"][1]
    for gradient, expected in zip(results["keras_kl_instance"][1], ours):
        np.testing.assert_allclose(gradient, expected, atol=1e-5)
    # The default differs: no softmax, no T².
    assert results["keras_default_kl"][0] != pytest.approx(results["akd_tf_hinton_kd"][0], rel=1e-2)
    assert parts["kl_on_clipped_logits"] != pytest.approx(parts["kl_softmax"], rel=1e-2)
