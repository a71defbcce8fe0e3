import keras
import numpy as np
import pytest

from akd_tf import losses

S = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")
T = np.array([[2.0, 2.0], [4.0, 0.0]], "float32")


def test_annealing_loss_golden():
    # Φ=0.5: targets [[1,1],[2,0]], squared errors [[0,1],[1,16]], per-example means [0.5, 8.5].
    per_example = keras.ops.convert_to_numpy(losses.annealing_loss(S, T, 0.5))
    np.testing.assert_allclose(per_example, [0.5, 8.5])
    assert per_example.mean() == pytest.approx(4.5)


def test_annealing_loss_at_phi_one_is_plain_mse_on_raw_teacher_logits():
    mse = keras.losses.MeanSquaredError()(T, S)
    assert float(keras.ops.mean(losses.annealing_loss(S, T, 1.0))) == pytest.approx(float(mse))


def test_annealing_loss_does_not_scale_the_student():
    # Student equal to Φ·teacher gives zero loss for any Φ.
    for phi in (0.1, 0.5, 1.0):
        assert float(keras.ops.max(losses.annealing_loss(phi * T, T, phi))) == pytest.approx(0.0, abs=1e-7)


def test_label_loss_golden():
    # CE of logits [1,2] for label 1: log(1 + e^-1) = 0.3132617.
    value = keras.ops.convert_to_numpy(losses.label_loss(np.array([1, 0]), S))
    np.testing.assert_allclose(value, [np.log1p(np.exp(-1.0)), np.log1p(np.exp(1.0))], rtol=1e-6)


def test_hinton_kd_loss_golden():
    labels = np.array([1, 0])
    temperature, weight = 2.0, 0.25  # the label term's weight
    pt = np.exp(T / temperature) / np.exp(T / temperature).sum(-1, keepdims=True)
    ps = np.exp(S / temperature) / np.exp(S / temperature).sum(-1, keepdims=True)
    kl = (pt * np.log(pt / ps)).sum(-1)
    ce = np.array([np.log1p(np.exp(-1.0)), np.log1p(np.exp(1.0))])
    expected = weight * ce + (1 - weight) * temperature**2 * kl
    got = keras.ops.convert_to_numpy(losses.hinton_kd_loss(labels, S, T, temperature, weight))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_continuation_loss_golden_with_and_without_margin():
    # Φ=0.5: per-example annealed MSE [0.5, 8.5] (above); CE of labels [1, 0] from S: [0.3133, 1.3133].
    labels = np.array([1, 0])
    ce = keras.ops.convert_to_numpy(losses.label_loss(labels, S))
    np.testing.assert_allclose(ce, [0.31326169, 1.31326169], rtol=1e-6)
    plain = keras.ops.convert_to_numpy(losses.continuation_loss(labels, S, T, 0.5, 0.25))
    np.testing.assert_allclose(plain, 0.25 * ce + 0.75 * np.array([0.5, 8.5]), rtol=1e-6)
    # m = 2: the hinge subtracts m·Φ = 1 and cuts the first example's teacher term to 0.
    hinged = keras.ops.convert_to_numpy(losses.continuation_loss(labels, S, T, 0.5, 0.25, margin=2.0))
    np.testing.assert_allclose(hinged, 0.25 * ce + 0.75 * np.array([0.0, 7.5]), rtol=1e-6)


def test_continuation_loss_with_a_step_label_weight_is_annealing_kd():
    """The paper: Annealing-KD is Continuation-KD with m = 0 and ψ a 0/1 step."""
    labels = np.array([1, 0])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(losses.continuation_loss(labels, S, T, 0.5, 0.0)),
                               keras.ops.convert_to_numpy(losses.annealing_loss(S, T, 0.5)), rtol=1e-7)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(losses.continuation_loss(labels, S, T, 0.5, 1.0)),
                               keras.ops.convert_to_numpy(losses.label_loss(labels, S)), rtol=1e-7)
    targets = np.array([2.0, 3.0], "float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(losses.continuation_loss(targets, S[:, :1], T[:, :1], 1.0, 1.0, labelled_loss=losses.regression_loss)),
        keras.ops.convert_to_numpy(losses.regression_loss(targets, S[:, :1])), rtol=1e-7)
