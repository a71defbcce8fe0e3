"""AnnealingKD / HintonKD: the step's math, the frozen teacher, the variables, serialisation."""

import keras
from call_counter import CallCounter
import numpy as np
import pytest
import tensorflow as tf

import akd_tf
from akd_tf import nets


def _data(n=64, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype("float32"), rng.integers(0, classes, n)


def _mlp(name, classes=3, features=6, hidden=8):
    return keras.Sequential([keras.Input((features,)), keras.layers.Dense(hidden, activation="relu"),
                             keras.layers.Dense(classes)], name=name)


def _akd(tau=4):
    keras.utils.set_random_seed(1)
    akd = akd_tf.AnnealingKD(teacher=_mlp("teacher", hidden=16), student=_mlp("student"), max_temperature=tau)
    akd.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return akd


def test_phase1_loss_is_the_annealed_mse_and_changes_without_retracing():
    x, y = _data()
    akd = _akd(tau=4)
    z_s = akd.student.predict(x, verbose=0)
    z_t = akd.teacher.predict(x, verbose=0)
    for temperature in (4, 2, 1):  # the same traced test function sees each new value
        akd.temperature = temperature
        phi = 1 - (temperature - 1) / 4
        loss = akd.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)["loss"]
        assert loss == pytest.approx(np.mean((z_s - phi * z_t) ** 2), rel=1e-5)
        if temperature == 4:
            traced = akd.test_function
    assert akd.test_function is traced


def test_fit_traces_the_training_step_once():
    """compile() builds the optimizer: built by the first traced step, its variables made tf.function trace the
    whole step twice."""
    x, y = _data()
    akd = akd_tf.AnnealingKD(teacher=_mlp("teacher"), student=_mlp("student"), max_temperature=2)
    akd.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    # Iterations, learning rate, a momentum per student weight (none for the teacher).
    assert akd.optimizer.built and len(akd.optimizer.variables) == 2 + len(akd.student.trainable_variables)
    traced, step = [], akd.train_step
    akd.train_step = lambda batch: traced.append(1) or step(batch)
    akd.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert len(traced) == 1


def test_phase2_loss_is_cross_entropy_and_skips_the_teacher():
    x, y = _data()
    akd = _akd()
    akd.phase = 2
    z_s = akd.student.predict(x, verbose=0)
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, z_s)
    result = akd.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert result["accuracy"] == pytest.approx(np.mean(z_s.argmax(-1) == y))

    # A teacher that counts its calls: phase 2 must never run it.
    counter = CallCounter()
    teacher = keras.Sequential([keras.Input((6,)), counter, keras.layers.Dense(3)])
    akd2 = akd_tf.AnnealingKD(teacher=teacher, student=_mlp("student"), max_temperature=2)
    akd2.compile(optimizer="sgd")
    akd2.phase = 2
    start = float(counter.calls.numpy())
    akd2.fit(x, y, batch_size=16, epochs=1, verbose=0)
    akd2.evaluate(x, y, batch_size=16, verbose=0)
    assert float(counter.calls.numpy()) == start
    akd2.phase = 1
    akd2.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert float(counter.calls.numpy()) == start + 4  # 64 examples / 16
    # Within one fit the phase-2 step (retraced at the switch) no longer runs it: 2 phase-1 epochs x 4 steps.
    akd2.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[akd_tf.AnnealingSchedule(2, 2, verbose=0)])
    assert float(counter.calls.numpy()) == start + 4 + 8


def test_one_training_step_matches_a_hand_written_step():
    x, y = _data(n=16)
    akd = _akd(tau=4)
    akd.temperature = 3
    student_copy = keras.models.clone_model(akd.student)
    student_copy.set_weights(akd.student.get_weights())
    z_t = akd.teacher(x, training=False)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(student_copy(x, training=True) - 0.5 * z_t))
    grads = tape.gradient(loss, student_copy.trainable_variables)
    sgd = keras.optimizers.SGD(0.05, momentum=0.9)
    sgd.apply_gradients(zip(grads, student_copy.trainable_variables))
    history = akd.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    assert history.history["loss"][0] == pytest.approx(float(loss), rel=1e-5)
    for a, b in zip(akd.student.get_weights(), student_copy.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_teacher_is_bit_identical_after_fit_and_not_in_the_optimizer():
    keras.utils.set_random_seed(2)
    teacher = nets.build("resnet8", num_classes=3, input_shape=(8, 8, 3), weight_decay=1e-4)  # BN + L2
    student = nets.build("plane2", num_classes=3, input_shape=(8, 8, 3))
    before = [np.array(w) for w in teacher.weights]
    akd = akd_tf.AnnealingKD(teacher=teacher, student=student, max_temperature=2)
    akd.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 8, 8, 3)).astype("float32"), rng.integers(0, 3, 32)
    akd.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[akd_tf.AnnealingSchedule(2)])
    assert akd.phase == 2
    for b, a in zip(before, teacher.weights):
        np.testing.assert_array_equal(b, np.array(a))
    teacher_ids = {id(v) for v in teacher.weights}
    assert not teacher_ids & {id(v) for v in akd.trainable_variables}
    assert {id(v) for v in akd.trainable_variables} == {id(v) for v in student.trainable_variables}
    optimizer_shapes = sum(np.prod(v.shape) for v in akd.optimizer.variables if "momentum" in v.path)
    assert optimizer_shapes == sum(np.prod(v.shape) for v in student.trainable_variables)


def test_call_returns_student_logits():
    x, _ = _data()
    akd = _akd()
    np.testing.assert_allclose(akd.predict(x, verbose=0), akd.student.predict(x, verbose=0), rtol=1e-6)


def test_keras_user_script_runs_both_phases_in_one_fit():
    """What the README shows: Sequential teacher and student, compile, one fit with the callback."""
    x, y = _data(n=128)
    val = tf.data.Dataset.from_tensor_slices(_data(n=32, seed=1)).batch(32)
    teacher = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3)])
    teacher.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(x, y, epochs=3, verbose=0)
    student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    akd = akd_tf.AnnealingKD(teacher=teacher, student=student, max_temperature=3)
    akd.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    history = akd.fit(x, y, batch_size=32, validation_data=val, epochs=8, verbose=0,
                      callbacks=[akd_tf.AnnealingSchedule(phase1_epochs=6)]).history
    assert history["temperature"] == [3, 3, 2, 2, 1, 1, 1, 1]
    assert history["phase"] == [1, 1, 1, 1, 1, 1, 2, 2]
    assert history["phi"][:6] == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert akd.phase == 2


def test_metrics_reset_every_epoch():
    x, y = _data(n=32)
    akd = _akd()
    akd.fit(x, y, batch_size=32, epochs=1, verbose=0)
    first = akd.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    akd.evaluate(x[:1] * 100, y[:1], batch_size=1, verbose=0)
    again = akd.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    assert again == pytest.approx(first)


def test_temperature_and_phase_are_validated():
    akd = _akd(tau=4)
    with pytest.raises(ValueError, match="temperature=5"):
        akd.temperature = 5
    with pytest.raises(ValueError, match="phase=3"):
        akd.phase = 3
    with pytest.raises(ValueError, match="max_temperature=0"):
        akd_tf.AnnealingKD(teacher=_mlp("t"), student=_mlp("s"), max_temperature=0)
    with pytest.raises(ValueError, match="teacher outputs 4, student outputs 3"):
        akd_tf.AnnealingKD(teacher=_mlp("t", classes=4), student=_mlp("s"))
    with pytest.raises(ValueError, match=r"teacher \(7,\), student \(6,\)"):
        akd_tf.AnnealingKD(teacher=_mlp("t", features=7), student=_mlp("s"))


def test_config_round_trip():
    akd = _akd(tau=5)
    clone = akd_tf.AnnealingKD.from_config(akd.get_config())
    assert clone.max_temperature == 5 and clone.teacher.trainable is False
    assert [w.shape for w in clone.student.weights] == [w.shape for w in akd.student.weights]
    kd = akd_tf.HintonKD(teacher=_mlp("t"), student=_mlp("s"), temperature=3.0, student_loss_weight=0.25)
    kd_clone = akd_tf.HintonKD.from_config(kd.get_config())
    assert (kd_clone.temperature, kd_clone.student_loss_weight) == (3.0, 0.25)


def test_hinton_kd_weights_the_labels_with_keras_name_and_refuses_the_old_one():
    with pytest.raises(TypeError, match=r"`alpha` \(the soft term's weight\) is now `student_loss_weight`.*"
                                        r"Received: alpha=0.9"):
        akd_tf.HintonKD(teacher=_mlp("t"), student=_mlp("s"), alpha=0.9)
    with pytest.raises(ValueError, match=r"student_loss_weight=1.5"):
        akd_tf.HintonKD(teacher=_mlp("t"), student=_mlp("s"), student_loss_weight=1.5)


@pytest.mark.parametrize("kind", ["akd", "kd"])
def test_saved_distiller_round_trips(tmp_path, kind):
    x, y = _data()
    if kind == "akd":
        model = _akd(tau=4)
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        model.temperature, model.phase = 2, 2
    else:
        model = akd_tf.HintonKD(teacher=_mlp("t"), student=_mlp("s"), temperature=2.0, student_loss_weight=0.5)
        model.compile(optimizer="sgd")
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    for a, b in zip(loaded.teacher.get_weights(), model.teacher.get_weights()):
        np.testing.assert_array_equal(a, b)
    if kind == "akd":
        assert (loaded.temperature, loaded.phase) == (2, 2)
    # The compiled state comes back too: the loaded model trains on.
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)


def test_student_saved_alone_round_trips(tmp_path):
    x, y = _data()
    akd = _akd()
    akd.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "student.keras")
    akd.student.save(path)
    np.testing.assert_allclose(keras.models.load_model(path).predict(x, verbose=0), akd.predict(x, verbose=0),
                               rtol=1e-6)


def test_labels_are_required():
    x, _ = _data()
    akd = _akd()
    with pytest.raises(ValueError, match="inputs only"):
        akd.fit(tf.data.Dataset.from_tensor_slices(x).batch(8), epochs=1, verbose=0)


def test_compile_loss_is_the_label_term_and_is_saved_with_the_model(tmp_path):
    x = _data()[0]
    targets = np.random.default_rng(1).normal(size=(64, 1)).astype("float32")
    akd = akd_tf.AnnealingKD(teacher=_mlp("t", classes=1), student=_mlp("s", classes=1), max_temperature=2)
    assert akd.regression  # one output: a score
    akd.phase = 2  # the label phase: the loss is the label term alone
    z = akd.student(x)
    # The default for a regression student: squared error; compile(loss=) replaces it, per example.
    akd.compile(optimizer="sgd")
    np.testing.assert_allclose(akd.per_example_loss(targets, z, z), np.square(targets - z)[:, 0], rtol=1e-6)
    akd.compile(optimizer="sgd", loss=keras.losses.MeanAbsoluteError())
    np.testing.assert_allclose(akd.per_example_loss(targets, z, z), np.abs(targets - z)[:, 0], rtol=1e-6)
    akd.fit(x, targets, batch_size=16, epochs=1, verbose=0)
    akd.save(tmp_path / "akd.keras")
    loaded = keras.models.load_model(tmp_path / "akd.keras")
    assert isinstance(keras.saving.deserialize_keras_object(loaded.get_compile_config()["loss"]),
                      keras.losses.MeanAbsoluteError)
    np.testing.assert_allclose(loaded.per_example_loss(targets, z, z), np.abs(targets - z)[:, 0], rtol=1e-6)
    with pytest.raises(ValueError, match=r"`loss` must be a keras.losses.Loss.*Received: loss=3"):
        akd.compile(optimizer="sgd", loss=3)


def test_regression_is_what_the_student_says_and_an_old_files_flag_must_agree():
    classifier = akd_tf.AnnealingKD(teacher=_mlp("t"), student=_mlp("s"), max_temperature=2)
    assert not classifier.regression
    # A file saved before 0.2 carries regression=...: accepted when it agrees with the student, refused otherwise.
    assert akd_tf.ContinuationKD(teacher=_mlp("t", classes=1), student=_mlp("s", classes=1), regression=True).regression
    with pytest.raises(ValueError, match=r"a student with one output is a regression student.*regression=True"):
        akd_tf.AnnealingKD(teacher=_mlp("t"), student=_mlp("s"), max_temperature=2, regression=True)


def test_hinton_kd_weighs_the_compiled_label_loss():
    x, y = _data()
    kd = akd_tf.HintonKD(teacher=_mlp("t"), student=_mlp("s"), temperature=2.0, student_loss_weight=1.0)
    kd.compile(optimizer="sgd", loss=lambda labels, logits: 2.0 * akd_tf.losses.label_loss(labels, logits))
    z = kd.student(x)
    np.testing.assert_allclose(kd.per_example_loss(y, z, kd.teacher(x)), 2.0 * akd_tf.losses.label_loss(y, z),
                               rtol=1e-6)
