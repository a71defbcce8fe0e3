"""akd_tf.methods.continuation: ContinuationKD's step against a hand computation, its schedule callback, the frozen teacher,
cached logits, serialisation, and a resumed run continuing T and ψ."""

import json
import os

import keras
from call_counter import CallCounter
import numpy as np
import pytest

import akd_tf
from akd_tf import schedule
from akd_tf.methods import continuation
from akd_tf.batch_keys import STUDENT_INPUTS, TEACHER_LOGITS

FEATURES, CLASSES = 5, 4


def _linear(name, seed):
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(CLASSES)], name=name)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.8, size=w.shape).astype("float32") for w in model.get_weights()])
    return model


def _data(n=8, seed=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, FEATURES)).astype("float32"), rng.integers(0, CLASSES, n)


def _ckd(margin=0.0, tau=4, learning_rate=0.1):
    ckd = akd_tf.ContinuationKD(teacher=_linear("teacher", 1), student=_linear("student", 2), max_temperature=tau,
                                margin=margin)
    ckd.compile(optimizer=keras.optimizers.SGD(learning_rate))
    return ckd


def _hand_step(x, y, w, b, wt, bt, phi, psi, margin, learning_rate):
    """The loss and the SGD update of a linear student, derived by hand from
    L = mean_batch[ψ·CE(y, z) + (1 − ψ)·max{0, mean_c (z − Φ·z_t)² − m·Φ}]."""
    z, zt = x @ w + b, x @ wt + bt
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    onehot = np.eye(CLASSES)[y]
    ce = -np.log((p * onehot).sum(-1))
    distance = ((z - phi * zt) ** 2).mean(-1)
    hinge = np.maximum(distance - margin * phi, 0.0)
    loss = np.mean(psi * ce + (1 - psi) * hinge)
    dz = (psi * (p - onehot) + (1 - psi) * (hinge > 0)[:, None] * 2.0 / CLASSES * (z - phi * zt)) / len(x)
    return loss, w - learning_rate * x.T @ dz, b - learning_rate * dz.sum(0), hinge


@pytest.mark.parametrize("margin", [0.0, 1.5])
def test_one_training_step_equals_the_hand_computation(margin):
    x, y = _data()
    ckd = _ckd(margin=margin)
    ckd.temperature, ckd.label_weight = 3, 0.4  # Φ = 0.5: both terms count
    (wt, bt), (w, b) = ckd.teacher.get_weights(), ckd.student.get_weights()
    loss, w_next, b_next, hinge = _hand_step(x, y, w, b, wt, bt, 0.5, 0.4, margin, 0.1)
    if margin:  # the margin must switch some examples' teacher term off, and not all
        assert 0 < np.sum(hinge == 0) < len(x)
    history = ckd.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
    assert history.history["loss"][0] == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(ckd.student.get_weights()[0], w_next, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ckd.student.get_weights()[1], b_next, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ckd.teacher.get_weights()[0], wt)  # frozen


def test_label_weight_one_is_plain_cross_entropy_training_without_the_teacher():
    x, y = _data(n=32)
    counter = CallCounter()
    teacher = keras.Sequential([keras.Input((FEATURES,)), counter, keras.layers.Dense(CLASSES)])
    ckd = akd_tf.ContinuationKD(teacher=teacher, student=_linear("student", 2), max_temperature=4)
    ckd.compile(optimizer=keras.optimizers.SGD(0.1))
    plain = _linear("plain", 2)
    plain.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ckd.label_weight = 1.0
    assert not ckd.uses_teacher()
    ckd.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    plain.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(ckd.student.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert float(counter.calls.numpy()) == 0  # the teacher never ran


def test_crossing_label_weight_one_retraces_the_step():
    x, y = _data()
    ckd = _ckd()
    ckd.fit(x, y, batch_size=8, epochs=1, verbose=0)
    with_teacher = ckd.train_function
    ckd.label_weight = 0.5  # still < 1: the same traced step reads the variable
    assert ckd.train_function is with_teacher
    ckd.label_weight = 1.0
    assert ckd.train_function is not with_teacher


def test_cached_teacher_logits_give_the_step_of_the_teacher_in_the_loop():
    x, y = _data(n=16)
    in_loop, cached = _ckd(), _ckd()
    for model in (in_loop, cached):
        model.temperature, model.label_weight = 2, 0.25
    logits = in_loop.teacher.predict(x, verbose=0)
    in_loop.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    cached.fit({STUDENT_INPUTS: x, TEACHER_LOGITS: logits}, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(in_loop.student.get_weights(), cached.student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_mixed_precision_step_keeps_float32_variables_and_loss():
    x, y = _data(n=16)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        ckd = _ckd()
        ckd.temperature, ckd.label_weight = 2, 0.5
        loss = ckd.fit(x, y, batch_size=8, epochs=1, verbose=0).history["loss"][0]
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(loss)
    assert all(v.dtype == "float32" for v in ckd.student.trainable_variables)


def test_keras_file_round_trip(tmp_path):
    ckd = _ckd(margin=0.25, tau=5)
    x, _ = _data()
    path = str(tmp_path / "ckd.keras")
    ckd.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, akd_tf.ContinuationKD)
    assert (loaded.max_temperature, loaded.margin, loaded.regression) == (5, 0.25, False)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), ckd.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"max_temperature": 0}, "max_temperature"),
    ({"margin": -1.0}, "margin"),
    ({"margin": "big"}, "margin"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        akd_tf.ContinuationKD(teacher=_linear("teacher", 1), student=_linear("student", 2), **kwargs)


def test_bad_label_weight_and_temperature_are_refused():
    ckd = _ckd(tau=4)
    with pytest.raises(ValueError, match=r"label_weight=1.5"):
        ckd.label_weight = 1.5
    with pytest.raises(ValueError, match=r"temperature=5"):
        ckd.temperature = 5


def test_schedule_sets_temperature_and_label_weight_each_epoch_and_logs_them():
    x, y = _data(n=16)
    ckd = _ckd(tau=2)
    callback = continuation.ContinuationSchedule(epochs=6, anneal_epochs=4, label_ramp_epochs=4, verbose=0)
    history = ckd.fit(x, y, batch_size=8, epochs=6, verbose=0, callbacks=[callback]).history
    assert history["temperature"] == [2, 2, 1, 1, 1, 1]
    assert history["phi"] == [0.5, 0.5, 1, 1, 1, 1]
    assert history["label_weight"] == pytest.approx([0, 0.25, 0.5, 0.75, 1, 1])


def test_schedule_resumed_at_an_epoch_lands_on_its_temperature_and_label_weight():
    x, y = _data(n=16)
    ckd = _ckd(tau=4)
    callback = continuation.ContinuationSchedule(epochs=10, anneal_epochs=8, label_ramp_epochs=7.5, verbose=0)
    history = ckd.fit(x, y, batch_size=8, initial_epoch=5, epochs=7, verbose=0, callbacks=[callback]).history
    assert history["temperature"] == [schedule.temperature_at(e, 8, 4) for e in (5, 6)] == [2, 1]
    assert history["label_weight"] == pytest.approx([5 / 7.5, 6 / 7.5])


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 10, "anneal_epochs": 12, "label_ramp_epochs": 5}, "anneal_epochs=12"),
    ({"epochs": 10, "anneal_epochs": 8, "label_ramp_epochs": 11}, "label_ramp_epochs=11"),
    ({"epochs": 10, "anneal_epochs": 8, "label_ramp_epochs": 0}, "label_ramp_epochs=0"),
    ({"epochs": 10, "anneal_epochs": 3, "label_ramp_epochs": 5, "max_temperature": 4}, "phase1_epochs=3"),
])
def test_schedule_refuses_impossible_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        continuation.ContinuationSchedule(**kwargs)


def test_schedule_refuses_a_model_that_is_not_continuation_kd():
    x, y = _data()
    akd = akd_tf.AnnealingKD(teacher=_linear("teacher", 1), student=_linear("student", 2), max_temperature=2)
    akd.compile(optimizer="sgd")
    with pytest.raises(TypeError, match="ContinuationKD"):
        akd.fit(x, y, epochs=1, verbose=0,
                callbacks=[continuation.ContinuationSchedule(epochs=2, anneal_epochs=2, label_ramp_epochs=1)])


def _smoke_config(**changes):
    from akd_tf.config import Config

    values = dict(dataset="cifar10", method="ckd", teacher_net="resnet8", student_net="plane2", train_size=256,
                  validation_size=128, test_size=128, batch_size=64, teacher_epochs=1, max_temperature=2,
                  phase1_epochs=2, phase2_epochs=2, learning_rate=0.01, verbose=0, deterministic=True)
    return Config(**{**values, **changes})


class _Killed(Exception):
    pass


def test_a_run_killed_mid_way_resumes_with_temperature_and_label_weight_where_they_were(tmp_path, monkeypatch):
    """The workdir keeps the checkpoint of the last finished epoch; the same call resumes there (T and ψ are
    functions of the epoch) and ends with the figures of a run that was never stopped."""
    from akd_tf import train

    whole = train.train_and_evaluate(_smoke_config(), str(tmp_path / "whole"))
    begin = continuation.ContinuationSchedule.on_epoch_begin

    def killed_at_epoch_3(self, epoch, logs=None):
        if epoch == 2:
            raise _Killed
        begin(self, epoch, logs)

    monkeypatch.setattr(continuation.ContinuationSchedule, "on_epoch_begin", killed_at_epoch_3)
    with pytest.raises(_Killed):
        train.train_and_evaluate(_smoke_config(), str(tmp_path / "killed"))
    monkeypatch.setattr(continuation.ContinuationSchedule, "on_epoch_begin", begin)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = train.train_and_evaluate(_smoke_config(), str(tmp_path / "killed"))
    # The frozen teacher's optimizer (compiled to evaluate it) has no state to restore: no false alarm about it.
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    assert resumed["phases"]["schedule"]["temperature"] == whole["phases"]["schedule"]["temperature"] == [2, 1, 1, 1]
    assert resumed["phases"]["schedule"]["label_weight"] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert resumed["student"]["test_accuracy"] == whole["student"]["test_accuracy"]
    for a, b in zip(keras.models.load_model(tmp_path / "whole" / "student.keras").get_weights(),
                    keras.models.load_model(tmp_path / "killed" / "student.keras").get_weights()):
        np.testing.assert_array_equal(a, b)  # deterministic: the very weights of the run never stopped
    with open(os.path.join(tmp_path / "killed", "metrics.json")) as f:
        assert json.load(f)["phases"]["schedule"]["label_ramp_epochs"] == 3.0


@pytest.mark.parametrize("changes, message", [
    ({"ckd_margin": -0.5}, "ckd_margin=-0.5"),
    ({"ckd_label_ramp_epochs": 9}, "ckd_label_ramp_epochs=9"),
    ({"ckd_label_ramp_epochs": 0}, "ckd_label_ramp_epochs=0"),
    ({"phase1_epochs": 1}, "phase1_epochs=1"),
    ({"method": "kd", "ckd_margin": 0.5}, "method='ckd' only"),
])
def test_config_refuses_bad_continuation_settings_in_one_line(changes, message):
    with pytest.raises(ValueError, match=message) as error:
        _smoke_config(**changes).validate()
    assert "\n" not in str(error.value)


def test_config_ramps_labels_over_three_quarters_of_the_run_by_default():
    assert continuation.label_ramp_epochs(_smoke_config(phase1_epochs=10, phase2_epochs=5)) == 11.25
    assert _smoke_config(phase1_epochs=200, phase2_epochs=0, max_temperature=20).student_epochs == 200
