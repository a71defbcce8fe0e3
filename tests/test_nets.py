import numpy as np
import pytest

from akd_tf import nets


def _trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("name,classes,expected", [
    ("resnet8", 10, 78_042), ("resnet14", 10, 175_258), ("resnet20", 10, 272_474), ("resnet110", 10, 1_730_714),
    ("resnet8", 100, 83_892), ("resnet14", 100, 181_108), ("resnet20", 100, 278_324), ("resnet110", 100, 1_736_564),
    ("plane2", 10, 13_082),
])
def test_parameter_counts_match_the_paper(name, classes, expected):
    assert _trainable(nets.build(name, num_classes=classes)) == expected


def test_registry_has_the_paper_nets_and_outputs_logits():
    for name in ("resnet8", "resnet14", "resnet20", "resnet32", "resnet56", "resnet110", "plane2", "plane10"):
        assert name in nets.NETS
    model = nets.build("resnet8", num_classes=10)
    out = model.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)
    assert out.shape == (2, 10)
    assert model.layers[-1].activation.__name__ == "linear"


def test_weight_decay_adds_l2_terms():
    model = nets.build("resnet8", weight_decay=1e-4)
    assert len(model.losses) == 10  # 7 convs + 2 shortcut convs + dense


def test_unknown_names_and_depths_are_rejected():
    with pytest.raises(ValueError, match="Unknown network 'resnet9'. Allowed: resnet8"):
        nets.build("resnet9")
    with pytest.raises(ValueError, match="depth=9"):
        nets.resnet_cifar(9)
    with pytest.raises(ValueError, match="depth=3"):
        nets.plain_cnn(3)


@pytest.mark.parametrize("name", sorted(nets.PIXEL_INPUT))
def test_application_students_return_logits_of_pixels_with_a_momentum_small_data_can_move(name):
    import keras

    model = nets.build(name, num_classes=3, input_shape=(64, 64, 3))
    logits = model.predict(np.full((2, 64, 64, 3), 128.0, "float32"), verbose=0)
    assert logits.shape == (2, 3) and np.all(np.isfinite(logits)) and not np.allclose(logits.sum(-1), 1.0)
    momenta = {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.9}
    # The minimalistic variant is the 8-bit one: no squeeze-and-excite (a Multiply) and no hard-swish.
    multiplies = [layer for layer in model.layers if isinstance(layer, keras.layers.Multiply)]
    assert (not multiplies) == name.endswith("_minimalistic")
