"""akd_tf.methods.standardized: Hinton KD on z-scored logits (Sun et al., CVPR 2024) against a NumPy computation of the
authors' formula, one step against a hand-written one, its settings through get_config, the CLI's method."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from akd_tf.config import Config
from akd_tf.methods import registry, standardized

Z_S = np.array([[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, 0.3, 3.0]], "float32")
Z_T = np.array([[4.0, -2.0, 1.0, 1.0], [-1.0, 0.0, 2.0, 6.0]], "float32")
LABELS = np.array([0, 3])


def _numpy_loss(z_s, z_t, labels, temperature=2.0, w_s=0.1, w_d=9.0):
    """The authors' loss: z-scores with the sample std (torch.std), T² · KL(softmax(ẑ_t/T) ‖ softmax(ẑ_s/T)) summed
    over classes, plus the weighted cross-entropy on the raw student logits."""
    def z(v):
        return (v - v.mean(-1, keepdims=True)) / (v.std(-1, ddof=1, keepdims=True) + 1e-7)

    def log_softmax(v):
        v = v - v.max(-1, keepdims=True)
        return v - np.log(np.exp(v).sum(-1, keepdims=True))

    log_p_t, log_p_s = log_softmax(z(z_t) / temperature), log_softmax(z(z_s) / temperature)
    kl = (np.exp(log_p_t) * (log_p_t - log_p_s)).sum(-1)
    ce = -log_softmax(z_s)[np.arange(len(labels)), labels]
    return w_s * ce + w_d * temperature ** 2 * kl


def test_standardize_gives_zero_mean_and_unit_sample_std():
    z = keras.ops.convert_to_numpy(standardized.standardize(tf.constant(Z_T)))
    np.testing.assert_allclose(z.mean(-1), 0, atol=1e-6)
    np.testing.assert_allclose(z.std(-1, ddof=1), 1, atol=1e-5)
    # Invariant to a per-example shift and positive scale: only the logits' relations are left.
    shifted = keras.ops.convert_to_numpy(standardized.standardize(tf.constant(3 * Z_T + 7)))
    np.testing.assert_allclose(shifted, z, atol=1e-5)


def _models(seed):
    keras.utils.set_random_seed(seed)
    teacher = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4)], name="t")
    student = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4)], name="s")
    return teacher, student


def test_per_example_loss_is_the_authors_formula():
    teacher, student = _models(0)
    model = standardized.LogitStandardizedKD(teacher=teacher, student=student)
    got = keras.ops.convert_to_numpy(model.per_example_loss(LABELS, tf.constant(Z_S), tf.constant(Z_T)))
    # float32 against float64, the KL term weighted 9 · T² = 36: agreement to 1e-4.
    np.testing.assert_allclose(got, _numpy_loss(Z_S, Z_T, LABELS), rtol=1e-4)
    other = standardized.LogitStandardizedKD(teacher=teacher, student=student, temperature=4.0,
                                             student_loss_weight=0.5, distillation_loss_weight=1.0)
    got = keras.ops.convert_to_numpy(other.per_example_loss(LABELS, tf.constant(Z_S), tf.constant(Z_T)))
    np.testing.assert_allclose(got, _numpy_loss(Z_S, Z_T, LABELS, 4.0, 0.5, 1.0), rtol=1e-4)


def test_one_step_is_sgd_on_that_loss():
    teacher, student = _models(1)
    x = np.random.default_rng(0).normal(size=(8, 5)).astype("float32")
    y = np.arange(8) % 4
    copy = keras.models.clone_model(student)
    copy.set_weights(student.get_weights())
    z_t = teacher(x)
    with tf.GradientTape() as tape:
        z_s = copy(x)
        loss = tf.reduce_mean(
            0.1 * keras.losses.sparse_categorical_crossentropy(y, z_s, from_logits=True)
            + 9.0 * 4.0 * keras.losses.kl_divergence(tf.nn.softmax(standardized.standardize(z_t) / 2.0),
                                                     tf.nn.softmax(standardized.standardize(z_s) / 2.0)))
    keras.optimizers.SGD(0.1).apply_gradients(zip(tape.gradient(loss, copy.trainable_variables),
                                                  copy.trainable_variables))
    model = standardized.LogitStandardizedKD(teacher=teacher, student=student)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert history.history["loss"][0] == pytest.approx(float(loss), rel=1e-5)
    for a, b in zip(student.get_weights(), copy.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_settings_are_validated_and_survive_get_config():
    teacher, student = _models(2)
    with pytest.raises(ValueError, match=r"`temperature` must be > 0\. Received: temperature=0"):
        standardized.LogitStandardizedKD(teacher=teacher, student=student, temperature=0)
    with pytest.raises(ValueError, match=r"`distillation_loss_weight` must be >= 0\. Received: distillation_loss_weight=-1"):
        standardized.LogitStandardizedKD(teacher=teacher, student=student, distillation_loss_weight=-1)
    model = standardized.LogitStandardizedKD(teacher=teacher, student=student, temperature=3.0, student_loss_weight=0.2)
    clone = standardized.LogitStandardizedKD.from_config(model.get_config())
    assert (clone.temperature, clone.student_loss_weight, clone.distillation_loss_weight) == (3.0, 0.2, 9.0)


def test_the_cli_offers_it_with_the_authors_settings_and_refuses_regression():
    assert "kd_ls" in Config.__dataclass_fields__["method"].metadata["choices"]
    teacher, student = _models(3)
    training = registry.get("kd_ls").build(teacher, student, Config(), optimizer="sgd")
    assert isinstance(training.model, standardized.LogitStandardizedKD)
    assert (training.model.temperature, training.model.student_loss_weight,
            training.model.distillation_loss_weight) == (2.0, 0.1, 9.0)
    with pytest.raises(ValueError, match="'kd_ls' needs class probabilities; glue/stsb is a regression task"):
        Config(dataset="glue/stsb", method="kd_ls", teacher_net="bert_l2_h64", student_net="bert_l1_h64",
               phase1_epochs=2, phase2_epochs=1, max_temperature=2).validate()
