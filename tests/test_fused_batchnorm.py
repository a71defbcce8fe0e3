"""akd_tf.nets.fused_batchnorm: BatchNorms on the fused kernel train as Keras' own do (loss, gradients, outputs,
running statistics), and a saved model is plain Keras."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from akd_tf import keras_internals, nets
from akd_tf.nets import fused_batchnorm


def _batchnorms(model):
    return [l for l in keras_internals.all_layers(model) if isinstance(l, keras.layers.BatchNormalization)]


def _twins(name="resnet8"):
    """Two copies of a net with the same weights, the second on the fused kernel."""
    keras.utils.set_random_seed(0)
    plain = nets.build(name)
    fused = nets.build(name)
    fused.set_weights(plain.get_weights())
    assert fused_batchnorm.enable(fused) == len(_batchnorms(fused))
    return plain, fused


def _smooth_net():
    """Conv → BN (+ a 1×1 conv → BN shortcut) → tanh, twice, then pooled logits: a ResNet block's pattern with a
    smooth activation, so float rounding cannot flip a ReLU and the gradients compare to rounding."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 4))
    x = inputs
    for i, strides in enumerate((1, 2)):
        main = keras.layers.Conv2D(8, 3, strides, padding="same", use_bias=False)(x)
        main = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"bn{i}")(main)
        side = keras.layers.BatchNormalization(epsilon=1e-5)(keras.layers.Conv2D(8, 1, strides, use_bias=False)(x))
        x = keras.layers.Activation("tanh")(keras.layers.Add()([main, side]))
    return keras.Model(inputs, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x)))


def test_a_training_step_matches_keras_batchnorm():
    plain, fused = _smooth_net(), _smooth_net()
    fused.set_weights(plain.get_weights())
    assert fused_batchnorm.enable(fused) == 4
    rng = np.random.default_rng(0)
    x, y = rng.normal(1.0, 2.0, size=(16, 16, 16, 4)).astype("float32"), rng.integers(0, 10, 16)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    results = []
    for model in (plain, fused):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        results.append((float(loss), gradients, [w.numpy() for w in model.non_trainable_weights]))
    (loss, gradients, moving), (fused_loss, fused_gradients, fused_moving) = results
    assert fused_loss == pytest.approx(loss, rel=1e-6)
    for variable, g, f in zip(plain.trainable_variables, gradients, fused_gradients):
        np.testing.assert_allclose(f, g, rtol=1e-4, atol=1e-4 * np.abs(g).max(), err_msg=variable.path)
    for m, f in zip(moving, fused_moving):  # running mean and (biased-variance) running variance
        np.testing.assert_allclose(f, m, rtol=1e-5, atol=1e-7)
    assert not np.allclose(moving[1], 1.0)  # the step did move the statistics
    np.testing.assert_allclose(fused(x, training=False), plain(x, training=False), rtol=1e-5, atol=1e-5)


def test_a_resnet_trains_as_with_keras_batchnorm():
    plain, fused = _twins()
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, size=(16, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(fused(x, training=True), plain(x, training=True), rtol=1e-4, atol=1e-4)
    for p, f in zip(plain.non_trainable_weights, fused.non_trainable_weights):
        np.testing.assert_allclose(f.numpy(), p.numpy(), rtol=1e-5, atol=1e-6, err_msg=p.path)
    np.testing.assert_allclose(fused(x, training=False), plain(x, training=False), rtol=1e-4, atol=1e-4)


def test_enable_is_idempotent_and_skips_what_the_kernel_cannot_do():
    _, fused = _twins()
    call = fused.get_layer("stem_bn").call
    assert fused_batchnorm.enable(fused) == len(_batchnorms(fused)) == 9 and fused.get_layer("stem_bn").call is call
    assert fused_batchnorm.enable(nets.build("resnet8", sync_batchnorm=True)) == 0
    assert fused_batchnorm.enable(keras.Sequential([keras.Input((4, 4, 2)),
                                                    keras.layers.BatchNormalization(axis=1)])) == 0


def test_other_ranks_and_masks_take_keras_path():
    dense = keras.layers.BatchNormalization()
    reference = keras.layers.BatchNormalization()
    model = keras.Sequential([keras.Input((5,)), dense])
    keras.Sequential([keras.Input((5,)), reference])
    assert fused_batchnorm.enable(model) == 1
    x = np.random.default_rng(0).normal(size=(8, 5)).astype("float32")
    np.testing.assert_allclose(dense(x, training=True), reference(x, training=True), rtol=1e-6)
    mask = np.array([[True] * 4 + [False]] * 8)
    x3 = np.random.default_rng(1).normal(size=(8, 5, 5)).astype("float32")
    sequence, sequence_reference = keras.layers.BatchNormalization(), keras.layers.BatchNormalization()
    for layer in (sequence, sequence_reference):
        layer.build((None, 5, 5))
    fused_batchnorm.enable(keras.Sequential([keras.Input((5, 5)), sequence]))
    np.testing.assert_allclose(sequence(x3, training=True, mask=mask),
                               sequence_reference(x3, training=True, mask=mask), rtol=1e-6)


def test_bfloat16_policy_keeps_keras_dtypes():
    layer = keras.layers.BatchNormalization(dtype="mixed_bfloat16")
    reference = keras.layers.BatchNormalization(dtype="mixed_bfloat16")
    for l in (layer, reference):
        l.build((None, 4, 4, 8))
    fused_batchnorm.enable(keras.Sequential([keras.Input((4, 4, 8)), layer]))
    x = tf.cast(np.random.default_rng(0).normal(size=(6, 4, 4, 8)), tf.bfloat16)
    out = layer(x, training=True)
    assert out.dtype == tf.bfloat16 and layer.moving_mean.dtype == "float32"
    np.testing.assert_allclose(tf.cast(out, tf.float32), tf.cast(reference(x, training=True), tf.float32), atol=2e-2)
    np.testing.assert_allclose(layer.moving_variance.numpy(), reference.moving_variance.numpy(), rtol=1e-5)


def test_a_saved_model_is_plain_keras(tmp_path):
    plain, fused = _twins()
    fused(np.ones((2, 32, 32, 3), "float32"), training=True)  # moves the running statistics
    path = str(tmp_path / "student.keras")
    fused.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.get_layer("stem_bn")
    assert type(layer) is keras.layers.BatchNormalization and not hasattr(layer, fused_batchnorm._FUSED)
    assert layer.get_config() == plain.get_layer("stem_bn").get_config()
    x = np.random.default_rng(3).normal(size=(4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x, training=False), fused(x, training=False), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("training", [True, False])
def test_the_fused_kernel_runs(training):
    """The speed is in the graph: one FusedBatchNormV3 per layer (and its gradient), no separate moments."""
    _, fused = _twins()
    x = tf.zeros((2, 32, 32, 3))
    graph = tf.function(lambda x: fused(x, training=training)).get_concrete_function(x).graph
    ops = [op.type for op in graph.get_operations()]
    assert ops.count("FusedBatchNormV3") == 9 and "SquaredDifference" not in ops and "Rsqrt" not in ops


def test_distillers_train_their_student_on_the_fused_kernel():
    import akd_tf

    keras.utils.set_random_seed(0)
    teacher, student = nets.build("plane2"), nets.build("plane2")
    akd = akd_tf.AnnealingKD(teacher=teacher, student=student, max_temperature=2)
    akd.compile(optimizer=keras.optimizers.SGD(0.01))
    x = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32")
    akd.fit(x, np.arange(8) % 10, batch_size=4, epochs=1, verbose=0)
    assert all(getattr(l, fused_batchnorm._FUSED, False) for l in _batchnorms(student)) and _batchnorms(student)
