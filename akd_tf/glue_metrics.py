"""GLUE dev metrics as GLUE defines them, in NumPy (no scikit-learn):

* CoLA: Matthews correlation;  MRPC, QQP: F1 of the positive class and accuracy;
* STS-B: Pearson and Spearman correlation;  every other task: accuracy.

`task_metrics(task, outputs, labels)` takes a model's raw outputs (logits, or the score for STS-B).
"""

from __future__ import annotations

import numpy as np


def accuracy(predictions, labels) -> float:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return float(np.mean(predictions == labels))


def f1(predictions, labels, positive=1) -> float:
    """F1 of the ``positive`` class; 0 when it is never predicted nor present."""
    predictions, labels = np.asarray(predictions) == positive, np.asarray(labels) == positive
    tp = np.sum(predictions & labels)
    denominator = np.sum(predictions) + np.sum(labels)
    return float(2 * tp / denominator) if denominator else 0.0


def matthews(predictions, labels) -> float:
    """Matthews correlation coefficient of binary predictions; 0 when a row or column of the confusion
    matrix is empty (the convention of scikit-learn and GLUE)."""
    p, t = np.asarray(predictions).astype(bool), np.asarray(labels).astype(bool)
    tp, tn = float(np.sum(p & t)), float(np.sum(~p & ~t))
    fp, fn = float(np.sum(p & ~t)), float(np.sum(~p & t))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator else 0.0


def pearson(x, y) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denominator) if denominator else 0.0


def _ranks(values):
    """Ranks 1..n, ties sharing their mean rank (as Spearman's coefficient needs)."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0  # mean of ranks start+1 … end
            start = end
    return ranks


def spearman(x, y) -> float:
    return pearson(_ranks(x), _ranks(y))


def task_metrics(task: str, outputs, labels) -> dict:
    """Every dev metric of ``task`` from raw model ``outputs`` ([n, classes] logits; [n, 1] for STS-B)."""
    outputs, labels = np.asarray(outputs), np.asarray(labels)
    if task == "stsb":
        scores = outputs.reshape(-1)
        return {"pearson": pearson(scores, labels), "spearman": spearman(scores, labels)}
    predictions = outputs.argmax(-1)
    result = {"accuracy": accuracy(predictions, labels)}
    if task == "cola":
        result["matthews"] = matthews(predictions, labels)
    if task in ("mrpc", "qqp"):
        result["f1"] = f1(predictions, labels)
    return result
