"""akd_tf.nets.fold: a teacher's inference copy with its BatchNorms folded gives the teacher's logits, follows its
weights, and stays out of what a distiller trains and saves."""

import keras
import numpy as np

import akd_tf
from akd_tf import nets
from akd_tf.nets import fold


def _with_statistics(model, seed=0):
    """``model`` with BatchNorm statistics and affine weights far from their initial (identity) values."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.gamma.shape
            layer.set_weights([rng.uniform(0.5, 1.5, shape), rng.normal(0, 0.2, shape), rng.normal(0, 0.2, shape),
                               rng.uniform(0.5, 2.0, shape)])
    return model


def _images(n=8, seed=1):
    return np.random.default_rng(seed).normal(size=(n, 32, 32, 3)).astype("float32")


def test_every_batchnorm_of_a_resnet_folds_and_the_logits_stay():
    keras.utils.set_random_seed(0)
    teacher = _with_statistics(nets.build("resnet20"))
    batchnorms = [l.name for l in teacher.layers if isinstance(l, keras.layers.BatchNormalization)]
    pairs = fold.foldable(teacher)
    assert len(batchnorms) == 21 and sorted(pairs.values()) == sorted(batchnorms)
    assert pairs["stem_conv"] == "stem_bn" and pairs["stage2_block1_shortcut_conv"] == "stage2_block1_shortcut_bn"
    copy = fold.inference_copy(teacher)
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in copy.layers)
    assert not copy.trainable and copy.get_layer("stem_conv").use_bias
    x = _images()
    np.testing.assert_allclose(copy(x, training=False), teacher(x, training=False), rtol=1e-4, atol=1e-4)


def test_refresh_follows_the_teachers_weights():
    keras.utils.set_random_seed(0)
    teacher = _with_statistics(nets.build("resnet8"))
    copy = fold.inference_copy(teacher)
    _with_statistics(teacher, seed=5)
    x = _images()
    assert not np.allclose(copy(x, training=False), teacher(x, training=False), atol=1e-3)
    fold.refresh(teacher, copy)
    np.testing.assert_allclose(copy(x, training=False), teacher(x, training=False), rtol=1e-4, atol=1e-4)


def test_only_a_batchnorm_that_is_a_convolutions_sole_consumer_folds():
    inputs = keras.Input((8, 8, 3))
    shared = keras.layers.Conv2D(4, 3, padding="same", name="shared")(inputs)  # also read by the Add: not folded
    bn_shared = keras.layers.BatchNormalization(name="bn_shared")(shared)
    activated = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="activated")(inputs)
    bn_activated = keras.layers.BatchNormalization(name="bn_activated")(activated)  # after a ReLU: not folded
    plain = keras.layers.Conv2D(4, 3, padding="same", name="plain")(inputs)
    bn_plain = keras.layers.BatchNormalization(name="bn_plain")(plain)
    y = keras.layers.Add()([shared, bn_shared, bn_activated, bn_plain])
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(y)))
    assert fold.foldable(model) == {"plain": "bn_plain"}
    _with_statistics(model)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(fold.inference_copy(model)(x), model(x), rtol=1e-4, atol=1e-4)


def test_a_model_without_a_graph_or_batchnorms_is_its_own_copy():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = keras.layers.Conv2D(2, 3), keras.layers.BatchNormalization()

        def call(self, x):
            return self.bn(self.conv(x))

    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])
    for model in (Subclassed(), dense):
        assert fold.inference_copy(model) is model


def test_a_plain_cnns_biased_convolutions_fold_too():
    keras.utils.set_random_seed(0)
    model = _with_statistics(nets.build("plane4"))
    assert len(fold.foldable(model)) == 4
    x = _images()
    np.testing.assert_allclose(fold.inference_copy(model)(x), model(x, training=False), rtol=1e-4, atol=1e-4)


def test_a_distiller_runs_the_copy_but_never_trains_or_saves_it(tmp_path):
    keras.utils.set_random_seed(0)
    teacher = _with_statistics(nets.build("resnet8"))
    akd = akd_tf.AnnealingKD(teacher=teacher, student=nets.build("plane2"), max_temperature=2)
    akd.compile(optimizer=keras.optimizers.SGD(0.01))
    weights_before = len(akd.weights)
    x, y = _images(16), np.arange(16) % 10
    akd.fit(x, y, batch_size=8, epochs=1, verbose=0)
    copy = akd._inference.model
    assert copy is not teacher and copy.get_layer("stem_conv").use_bias  # made by fit
    np.testing.assert_allclose(akd.teacher_logits(x), teacher(x, training=False), rtol=1e-4, atol=1e-4)
    assert len(akd.weights) == weights_before and not any(v is w for v in akd.trainable_variables for w in copy.weights)
    akd.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert akd._inference.model is copy  # the traced step keeps its copy; refreshed, not replaced
    path = str(tmp_path / "akd.keras")
    akd.save(path)
    loaded = keras.models.load_model(path)
    assert len(loaded.weights) == weights_before
    # To rounding: the trained student normalises on the fused kernel, the loaded one with Keras' ops.
    np.testing.assert_allclose(loaded.predict(x, verbose=0), akd.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
