"""The contract every registered method keeps (`akd_tf.methods.registry`), checked by adding its name: built as the
run pipeline builds it, the teacher stays frozen, the trained model round-trips through a ``.keras`` file, cached
teacher logits give the step of the teacher in the loop, and a run killed after an epoch and resumed from its
checkpoint ends with the weights of an uninterrupted one. (2 replicas = 1 device: tests/test_distribute.py, a
process of its own.)"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from akd_tf.batch_keys import STUDENT_INPUTS, TEACHER_LOGITS
from akd_tf.checkpoint import TrainingCheckpoint
from akd_tf.config import Config
from akd_tf.methods import registry

CONFIG = Config(phase1_epochs=2, phase2_epochs=1, max_temperature=2, verbose=0)
EPOCHS = CONFIG.student_epochs
rng = np.random.default_rng(0)
X = rng.normal(size=(32, 6)).astype("float32")
Y = rng.integers(0, 3, size=32)


def _dense(name, seed):
    # Dropout: a resumed run must draw the masks an uninterrupted one draws (its seed generator's state).
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.3),
                              keras.layers.Dense(3)], name=name)
    weights = np.random.default_rng(seed)
    model.set_weights([weights.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return model


def _build(name):
    keras.utils.set_random_seed(0)  # the dropout layers' seeds
    teacher, student = _dense("teacher", 1), _dense("student", 2)
    training = registry.get(name).build(teacher, student, CONFIG, optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return teacher, student, training


def _callbacks(training):
    return [*training.first, *training.early, *training.stateful]


def _data(teacher=None):
    inputs = X if teacher is None else {STUDENT_INPUTS: X, TEACHER_LOGITS: teacher.predict(X, verbose=0)}
    return tf.data.Dataset.from_tensor_slices((inputs, Y)).batch(8)


@pytest.mark.parametrize("name", registry.names())
def test_teacher_stays_frozen_and_out_of_the_optimizer(name):
    teacher, student, training = _build(name)
    before = [w.copy() for w in teacher.get_weights()]
    training.model.fit(_data(), epochs=EPOCHS, verbose=0, callbacks=_callbacks(training))
    for old, new in zip(before, teacher.get_weights()):
        np.testing.assert_array_equal(old, new)
    teacher_ids = {id(v) for v in teacher.weights}
    assert not teacher_ids & {id(v) for v in training.model.trainable_variables}
    assert training.model is student or registry.get(name).teacher  # a labels-only method trains the student


@pytest.mark.parametrize("name", registry.names())
def test_trained_model_round_trips_through_a_keras_file(tmp_path, name):
    _, _, training = _build(name)
    training.model.fit(_data(), epochs=EPOCHS, verbose=0, callbacks=_callbacks(training))
    path = str(tmp_path / f"{name}.keras")
    training.model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(training.model)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), training.model.predict(X, verbose=0), atol=1e-6)
    if registry.get(name).teacher:
        assert loaded.get_config().keys() == training.model.get_config().keys()


@pytest.mark.parametrize("name", [n for n in registry.names() if registry.get(n).teacher])
def test_cached_teacher_logits_give_the_step_of_the_teacher_in_the_loop(name):
    teacher, student, training = _build(name)
    training.model.fit(_data(), epochs=EPOCHS, verbose=0, callbacks=_callbacks(training))
    cached_teacher, cached_student, cached = _build(name)
    cached.model.fit(_data(cached_teacher), epochs=EPOCHS, verbose=0, callbacks=_callbacks(cached))
    for a, b in zip(student.get_weights(), cached_student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", registry.names())
def test_killed_after_an_epoch_and_resumed_gives_the_uninterrupted_weights(tmp_path, name):
    _, student, training = _build(name)
    training.model.fit(_data(), epochs=EPOCHS, verbose=0, shuffle=False, callbacks=_callbacks(training))

    _, first, interrupted = _build(name)
    checkpoint = TrainingCheckpoint(str(tmp_path), stateful=[*interrupted.early, *interrupted.stateful])
    interrupted.model.fit(_data(), epochs=1, verbose=0, shuffle=False,
                          callbacks=[*interrupted.first, *interrupted.early, *interrupted.stateful, checkpoint])
    _, resumed_student, resumed = _build(name)  # a new process: new models, callbacks and optimizer
    checkpoint = TrainingCheckpoint(str(tmp_path), stateful=[*resumed.early, *resumed.stateful])
    start = checkpoint.restore(resumed.model)
    assert start == 1
    resumed.model.fit(_data(), epochs=EPOCHS, initial_epoch=start, verbose=0, shuffle=False,
                      callbacks=[*resumed.first, *resumed.early, *resumed.stateful, checkpoint])
    for a, b in zip(student.get_weights(), resumed_student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
