"""Mixed precision: models follow a dtype policy with float32 logits, a float16 step with loss scaling equals the
float32 step within float16 tolerance, an overflowing float16 step is skipped, and bfloat16 models round-trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import akd_tf
from akd_tf import precision


@pytest.fixture(autouse=True)
def float32_after():
    """The global policy is process-wide: every test here leaves it as it found it (float32)."""
    yield
    keras.mixed_precision.set_global_policy("float32")


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 32, 32, 3)).astype("float32"), rng.integers(0, 10, size=n)


def _pair(policy, seed=3):
    """Teacher and student ResNet-8s built in ``policy`` with weights that do not depend on it."""
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(seed)
    weights = [akd_tf.nets.build("resnet8").get_weights() for _ in range(2)]
    precision.set_global(policy)
    teacher, student = akd_tf.nets.build("resnet8"), akd_tf.nets.build("resnet8", weight_decay=1e-4)
    teacher.set_weights(weights[0])
    student.set_weights(weights[1])
    return teacher, student


def test_policy_names_and_a_clear_error():
    assert precision.POLICIES == {"none": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
    with pytest.raises(ValueError, match=r"Unknown mixed_precision 'fp8'\. Allowed: none, bfloat16, float16"):
        precision.set_global("fp8")


def test_nets_compute_in_the_global_policy_with_float32_logits():
    precision.set_global("bfloat16")
    model = akd_tf.nets.build("resnet8")
    assert model.get_layer("stem_conv").compute_dtype == "bfloat16"
    assert model.get_layer("stem_conv").kernel.dtype == "float32"  # variables stay float32
    assert model.get_layer("logits").compute_dtype == "float32"
    assert model(np.zeros((2, 32, 32, 3), "float32")).dtype == tf.float32
    assert precision.is_mixed(model)


def test_a_float32_model_follows_a_mixed_policy_and_computing_in_restores_it():
    model = akd_tf.nets.build("plane2")
    x = _data(4)[0]
    reference = model(x).numpy()
    assert not precision.is_mixed(model)
    precision.follow(model, "mixed_bfloat16")
    assert model.get_layer("conv1").compute_dtype == "bfloat16" and model.get_layer("logits").compute_dtype == "float32"
    mixed = model(x).numpy()
    assert mixed.dtype == np.float32
    assert 0 < np.max(np.abs(mixed - reference)) < 0.1 * np.max(np.abs(reference))  # bfloat16: ~3 significant digits
    with precision.computing_in(model, "float32"):
        np.testing.assert_allclose(model(x).numpy(), reference, rtol=1e-5, atol=1e-5)
    assert model.get_layer("conv1").compute_dtype == "bfloat16"


def test_nested_model_keeps_its_inner_output_layer_float32():
    inner = akd_tf.nets.build("plane2")
    inputs = keras.Input((32, 32, 3))
    outer = keras.Model(inputs, inner(inputs))
    precision.follow(outer, "mixed_float16")
    assert inner.get_layer("conv1").compute_dtype == "float16"
    assert inner.get_layer("logits").compute_dtype == "float32"


def test_bfloat16_annealing_kd_trains_both_phases_with_float32_losses_and_a_frozen_teacher():
    teacher, student = _pair("bfloat16")
    x, y = _data()
    before = [w.copy() for w in teacher.get_weights()]
    akd = akd_tf.AnnealingKD(teacher=teacher, student=student, max_temperature=2)
    akd.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    assert not isinstance(akd.optimizer, keras.optimizers.LossScaleOptimizer)  # bfloat16 needs no loss scaling
    history = akd.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[akd_tf.AnnealingSchedule(2)])
    assert all(np.isfinite(history.history["loss"]))
    assert history.history["phase"] == [1, 1, 2]
    for a, b in zip(teacher.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert student.get_layer("stem_conv").compute_dtype == "bfloat16"


def _one_step(policy, x, y, phase):
    teacher, student = _pair(policy)
    akd = akd_tf.AnnealingKD(teacher=teacher, student=student, max_temperature=4)
    akd.compile(optimizer=keras.optimizers.SGD(0.05))
    akd.phase, akd.temperature = phase, 3
    before = [w.copy() for w in student.get_weights()]
    loss = akd.train_on_batch(x, y, return_dict=True)["loss"]
    return akd, loss, [a - b for a, b in zip(student.get_weights(), before)]


@pytest.mark.parametrize("phase", [1, 2])
def test_float16_step_with_loss_scaling_equals_the_float32_step(phase):
    x, y = _data(16)
    akd16, loss16, update16 = _one_step("float16", x, y, phase)
    assert isinstance(akd16.optimizer, keras.optimizers.LossScaleOptimizer)
    assert int(akd16.optimizer.iterations) == 1  # the step was applied, not skipped
    _, loss32, update32 = _one_step("none", x, y, phase)
    assert loss16 == pytest.approx(loss32, rel=5e-3)
    kernels = [i for i, u in enumerate(update32) if u.ndim == 4]
    assert len(kernels) == 9
    for i in kernels:  # every conv kernel moved the same way, to float16 accuracy
        # Measured: relative error 3-7 % (largest in the first layers, whose gradients sum float16 products over
        # the most positions), cosine >= 0.9975. An unscaled or twice-scaled step would be off by 2^15 or 2x.
        norm = np.linalg.norm(update32[i])
        assert norm > 0
        assert np.linalg.norm(update16[i] - update32[i]) / norm < 0.15, f"weight {i}"
        assert np.sum(update16[i] * update32[i]) / (np.linalg.norm(update16[i]) * norm) > 0.99, f"weight {i}"


def test_float16_overflow_skips_the_step_and_halves_the_loss_scale():
    teacher, student = _pair("float16")
    x, y = _data(8)  # float16 convolutions are slow on CPU
    akd = akd_tf.AnnealingKD(teacher=teacher, student=student, max_temperature=4)
    akd.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    akd.optimizer.build(akd.trainable_variables)
    # A scale this large makes the float16 gradients overflow to inf, as a too-high dynamic scale does in training.
    akd.optimizer.dynamic_scale.assign(2.0**100)
    # The trainable weights; BatchNorm's moving statistics move in any training-mode forward pass, as everywhere.
    trainable = lambda: [keras.ops.convert_to_numpy(w) for w in student.trainable_weights]  # noqa: E731
    before = trainable()
    logs = akd.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])  # the logged loss is the unscaled one
    for a, b in zip(trainable(), before):
        np.testing.assert_array_equal(a, b)
    assert float(akd.optimizer.dynamic_scale) == 2.0**99
    assert int(akd.optimizer.iterations) == 0
    akd.train_on_batch(x, y)  # at 2^99 the gradients still overflow; scales come down step by step
    assert float(akd.optimizer.dynamic_scale) == 2.0**98
    akd.optimizer.dynamic_scale.assign(2.0**10)
    akd.train_on_batch(x, y)
    assert int(akd.optimizer.iterations) == 1
    assert all(np.any(a != b) for a, b in zip(trainable(), before))


def test_bfloat16_distiller_round_trips_through_a_keras_file(tmp_path):
    teacher, student = _pair("bfloat16")
    x, y = _data(16)
    akd = akd_tf.AnnealingKD(teacher=teacher, student=student, max_temperature=2)
    akd.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    akd.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "akd.keras")
    akd.save(path)
    keras.mixed_precision.set_global_policy("float32")  # the file, not the global policy, decides
    loaded = keras.models.load_model(path)
    assert loaded.student.get_layer("stem_conv").compute_dtype == "bfloat16"
    assert loaded.student.get_layer("logits").compute_dtype == "float32"
    # bfloat16 rounding apart: the trained student normalises on the fused kernel, the loaded one with Keras' ops.
    np.testing.assert_allclose(loaded.predict(x, verbose=0), akd.predict(x, verbose=0), rtol=2e-2, atol=2e-2)


def test_jit_compiled_annealing_kd_step_matches_the_plain_one():
    x, y = _data(16)
    updates = []
    for jit in (False, True):
        teacher, student = _pair("none")
        akd = akd_tf.AnnealingKD(teacher=teacher, student=student, max_temperature=4)
        akd.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=jit)
        before = [w.copy() for w in student.get_weights()]
        akd.train_on_batch(x, y)
        updates.append([a - b for a, b in zip(student.get_weights(), before)])
    for a, b in zip(*updates):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)
