"""Probability teachers and students: detected on every kind of output layer, refused by default in one line,
converted to logits when the user says the teacher returns probabilities (Keras API and CLI)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import akd_tf
from akd_tf import logits
from akd_tf.batch_keys import TEACHER_LOGITS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _dense(activation=None, classes=10, name="head"):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(classes, activation=activation, name=name)])


def _functional(last):
    inputs = keras.Input((4,))
    return keras.Model(inputs, last(keras.layers.Dense(10, name="logits")(inputs)))


@pytest.mark.parametrize("model,expected", [
    (lambda: _dense("softmax"), ("head", "softmax")),
    (lambda: _dense("sigmoid", classes=1), ("head", "sigmoid")),
    (lambda: _functional(keras.layers.Activation("softmax", name="probs")), ("probs", "softmax")),
    (lambda: _functional(keras.layers.Softmax(name="probs")), ("probs", "softmax")),
    (lambda: _functional(keras.ops.softmax), "softmax"),
    (lambda: _functional(keras.ops.sigmoid), "sigmoid"),
    (lambda: keras.Sequential([keras.Input((4,)), _dense("softmax", name="inner_head")]), ("inner_head", "softmax")),
    (lambda: _dense(None), None),
    (lambda: _dense("relu"), None),
    (lambda: _functional(keras.layers.Activation("log_softmax")), None),
    (lambda: _functional(lambda x: x), None),
])
def test_probability_output_is_found_on_every_kind_of_last_layer(model, expected):
    found = logits.probability_output(model())
    if isinstance(expected, str):  # an op-level call: its auto-generated name varies
        assert found is not None and found[1] == expected
    else:
        assert found == expected


def test_keras_hub_classifier_activation_is_read():
    import keras_hub

    backbone = keras_hub.models.BertBackbone(vocabulary_size=16, num_layers=1, num_heads=1, hidden_dim=8,
                                             intermediate_dim=16, max_sequence_length=8)
    softmax = keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None, activation="softmax")
    plain = keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None)
    assert logits.probability_output(softmax) == (softmax.name, "softmax")
    assert logits.probability_output(plain) is None


def test_probabilities_to_logits_golden_values():
    z = np.array([[2.0, -1.0, 0.5], [30.0, -30.0, 0.0]], np.float32)
    softmax = keras.ops.convert_to_numpy(keras.ops.softmax(z))
    got = keras.ops.convert_to_numpy(logits.probabilities_to_logits(softmax, "softmax"))
    # log p = z − logsumexp(z) where p is above the clip; a saturated p = 0 becomes log(1e-7) = −16.118.
    np.testing.assert_allclose(got[0], z[0] - np.log(np.exp(z[0]).sum()), rtol=1e-5)
    np.testing.assert_allclose(got[1], [np.log(1 - 1e-7), np.log(1e-7), np.log(1e-7)], atol=1e-6)
    assert np.all(np.isfinite(got))
    s = np.array([[-3.0], [0.0], [4.0], [40.0]], np.float32)
    back = keras.ops.convert_to_numpy(logits.probabilities_to_logits(keras.ops.sigmoid(s), "sigmoid"))
    np.testing.assert_allclose(back[:3], s[:3], atol=1e-4)  # the sigmoid's inverse, exactly
    assert 15.9 < back[3, 0] < 16.2  # clipped at 1 − 1e-7: large and finite
    with pytest.raises(ValueError, match="Unknown probability function 'tanh'"):
        logits.probabilities_to_logits(softmax, "tanh")


def _image_models():
    keras.utils.set_random_seed(0)
    teacher_logits = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, name="logits")])
    probabilities = keras.Sequential([teacher_logits, keras.layers.Softmax(name="probs")])
    student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, name="student_logits")])
    return teacher_logits, probabilities, student


def test_a_probability_teacher_is_refused_in_one_line_naming_the_layer_and_the_fix():
    _, probabilities, student = _image_models()
    with pytest.raises(ValueError) as error:
        akd_tf.AnnealingKD(teacher=probabilities, student=student)
    message = str(error.value)
    assert "\n" not in message
    for fragment in ("'probs' applies softmax", "teacher_outputs='probabilities'", "activation=None"):
        assert fragment in message, message


def test_a_probability_student_is_refused():
    teacher, _, _ = _image_models()
    student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="softmax", name="out")])
    for cls in (akd_tf.AnnealingKD, akd_tf.HintonKD):
        with pytest.raises(ValueError, match=r"The student .* output layer 'out' applies softmax.*activation=None"):
            cls(teacher=teacher, student=student)
    with pytest.raises(ValueError, match=r"`teacher_outputs` must be one of logits, probabilities. Received: "
                                         r"teacher_outputs='probs'"):
        akd_tf.AnnealingKD(teacher=teacher, student=teacher, teacher_outputs="probs")


def test_probabilities_are_distilled_as_their_log_and_the_step_matches_a_log_softmax_teacher():
    """A softmax teacher with teacher_outputs="probabilities" trains the student exactly like a teacher that
    returns log_softmax of the same logits (what the conversion promises), in both phases and for KD."""
    teacher, probabilities, _ = _image_models()
    log_softmax = keras.Sequential([teacher, keras.layers.Activation("log_softmax")])
    x = np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32)
    y = np.arange(32) % 3
    expected = keras.ops.convert_to_numpy(keras.ops.log_softmax(teacher(x)))
    for cls, kwargs in ((akd_tf.AnnealingKD, {"max_temperature": 2}), (akd_tf.HintonKD, {})):
        weights = []
        for t, outputs in ((probabilities, "probabilities"), (log_softmax, "logits")):
            keras.utils.set_random_seed(1)
            student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
            model = cls(teacher=t, student=student, teacher_outputs=outputs, **kwargs)
            np.testing.assert_allclose(keras.ops.convert_to_numpy(model.teacher_logits(x)), expected, atol=1e-5)
            model.compile(optimizer=keras.optimizers.SGD(0.1))
            history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
            weights.append((student.get_weights(), history.history["loss"]))
        (w_prob, loss_prob), (w_log, loss_log) = weights
        np.testing.assert_allclose(loss_prob, loss_log, rtol=1e-5)
        for a, b in zip(w_prob, w_log):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_teacher_outputs_survives_a_keras_file_round_trip(tmp_path):
    _, probabilities, student = _image_models()
    model = akd_tf.AnnealingKD(teacher=probabilities, student=student, max_temperature=3,
                               teacher_outputs="probabilities")
    model.compile(optimizer="sgd")
    model.save(tmp_path / "akd.keras")
    loaded = keras.models.load_model(tmp_path / "akd.keras")
    assert loaded.teacher_outputs == "probabilities" and loaded.max_temperature == 3
    x = np.ones((2, 6), np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.teacher_logits(x)),
                               keras.ops.convert_to_numpy(model.teacher_logits(x)), rtol=1e-6)
    # Cached values are logits by contract: they are used as they are.
    cached = np.full((2, 3), 7.0, np.float32)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.teacher_logits({"student_inputs": x, TEACHER_LOGITS: cached})), cached)


def test_cli_distils_from_a_probability_teacher_when_told(tmp_path):
    """--teacher_outputs=probabilities: the run finishes, the cached teacher views are log-probabilities
    (each row's logsumexp is 0; raw probabilities would give ~2.4), and the teacher's test loss is the
    cross-entropy of its probabilities (the run compiles it with from_logits=False)."""
    keras.utils.set_random_seed(0)
    teacher = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                                keras.layers.Dense(10, activation="softmax", name="probs")])
    kernel, bias = teacher.get_weights()
    teacher.set_weights([30 * kernel, bias])  # confident and mostly wrong: a large cross-entropy
    teacher.save(tmp_path / "softmax.keras")
    workdir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "akd_tf.main", "--flagfile=configs/smoke.flags", f"--workdir={workdir}",
         f"--teacher={tmp_path / 'softmax.keras'}", "--teacher_outputs=probabilities", "--teacher_views=1",
         "--train_size=256", "--validation_size=64", "--test_size=128", "--max_temperature=1", "--phase1_epochs=1",
         "--phase2_epochs=1", "--verbose=0"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(workdir / "teacher_views_student.npz") as saved:
        views, validation = saved["views"], saved["validation"]
    assert views.shape == (1, 256, 10)
    for rows in (views.reshape(-1, 10), validation):
        np.testing.assert_allclose(tf.reduce_logsumexp(rows, axis=-1).numpy(), 0.0, atol=1e-4)
    with open(workdir / "metrics.json") as f:
        metrics = json.load(f)
    assert np.isfinite(metrics["student"]["test_accuracy"])
    # Cross-entropy of confident, mostly wrong probabilities is large; read as logits (from_logits=True),
    # outputs in [0, 1] would give at most log(9 + e) = 2.46.
    assert metrics["teacher"]["test_loss"] > 5.0, metrics["teacher"]
