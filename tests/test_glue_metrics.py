"""GLUE metrics against values computed by hand (and the linear learning-rate schedule, the regression loss)."""

import numpy as np
import pytest

from akd_tf import glue_metrics, losses, schedule


def test_accuracy_f1_matthews_by_hand():
    predictions, labels = [1, 0, 1, 1], [1, 1, 1, 0]
    assert glue_metrics.accuracy(predictions, labels) == 0.5
    # tp=2, fp=1, fn=1: F1 = 2·2 / (3 + 3)
    assert glue_metrics.f1(predictions, labels) == pytest.approx(2 / 3)
    # tp=2, tn=0, fp=1, fn=1: (2·0 − 1·1) / sqrt(3·3·1·1)
    assert glue_metrics.matthews(predictions, labels) == pytest.approx(-1 / 3)
    # tp=2, tn=2, fp=1, fn=1: (4 − 1) / sqrt(3·3·3·3)
    assert glue_metrics.matthews([1, 1, 0, 0, 1, 0], [1, 0, 0, 0, 1, 1]) == pytest.approx(1 / 3)
    assert glue_metrics.matthews([1, 0, 1], [1, 0, 1]) == pytest.approx(1.0)


def test_degenerate_cases_follow_the_glue_convention():
    assert glue_metrics.matthews([1, 1, 1], [1, 0, 1]) == 0.0  # one predicted class: an empty column
    assert glue_metrics.f1([0, 0], [0, 0]) == 0.0
    assert glue_metrics.pearson([1, 1, 1], [1, 2, 3]) == 0.0


def test_pearson_and_spearman_by_hand():
    # x − mean = [−1, 0, 1]; y − mean = [−7/6, −1/6, 4/3]: r = 2.5 / sqrt(2 · 19/6)
    assert glue_metrics.pearson([1, 2, 3], [1, 2, 3.5]) == pytest.approx(2.5 / np.sqrt(2 * 19 / 6))
    # ranks with a tie: x → [1, 2.5, 2.5, 4], y → [1, 3, 2, 4]: r = 4.5 / sqrt(4.5 · 5)
    assert glue_metrics.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / np.sqrt(4.5 * 5))
    # monotone but not linear: Spearman 1, Pearson below 1
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert glue_metrics.spearman(x, x**3) == pytest.approx(1.0)
    assert glue_metrics.pearson(x, x**3) < 0.99


def test_task_metrics_pick_the_glue_metrics_of_each_task():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])  # predictions 0, 1, 0, 1
    labels = np.array([0, 1, 1, 1])
    assert glue_metrics.task_metrics("sst2", logits, labels) == {"accuracy": 0.75}
    assert set(glue_metrics.task_metrics("cola", logits, labels)) == {"accuracy", "matthews"}
    mrpc = glue_metrics.task_metrics("mrpc", logits, labels)
    assert mrpc["f1"] == pytest.approx(2 * 2 / (2 + 3))
    stsb = glue_metrics.task_metrics("stsb", np.array([[0.5], [1.0], [4.0]]), np.array([0.0, 2.0, 5.0]))
    assert set(stsb) == {"pearson", "spearman"} and stsb["spearman"] == pytest.approx(1.0)


def test_linear_learning_rate_restarts_each_phase():
    phases = (4, 2)
    rates = [schedule.linear_learning_rate_at(step, phases, 1e-3) for step in range(6)]
    np.testing.assert_allclose(rates, [1e-3, 7.5e-4, 5e-4, 2.5e-4, 1e-3, 5e-4])
    with pytest.raises(ValueError, match="past the last phase"):
        schedule.linear_learning_rate_at(6, phases, 1e-3)


def test_regression_loss_is_the_squared_error_of_the_single_output():
    np.testing.assert_allclose(losses.regression_loss(np.array([1.0, 2.0]), np.array([[1.5], [2.0]], "float32")),
                               [0.25, 0.0])
