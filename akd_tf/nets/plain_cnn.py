"""The plain CNNs ("plane2" … "plane10") of TAKD (Mirzadeh et al., AAAI 2020), which the Annealing-KD
paper also uses. ``Conv<k>`` is a 3×3 conv with bias + BN + ReLU, ``MaxPool`` halves the resolution,
``FC<k>`` a dense layer (ReLU except the last); the specs are TAKD's ``plane_cifar10_book`` and
``plane_cifar100_book``.
"""

import keras

from akd_tf.nets.resnet import batch_norm, l2_regularizer, logits_layer

_CIFAR10_SPECS = {
    2: ["Conv16", "MaxPool", "Conv16", "MaxPool"],
    4: ["Conv16", "Conv16", "MaxPool", "Conv32", "Conv32", "MaxPool"],
    6: ["Conv16", "Conv16", "MaxPool", "Conv32", "Conv32", "MaxPool", "Conv64", "Conv64", "MaxPool"],
    8: ["Conv16", "Conv16", "MaxPool", "Conv32", "Conv32", "MaxPool", "Conv64", "Conv64", "MaxPool",
        "Conv128", "Conv128", "MaxPool", "FC64"],
    10: ["Conv32", "Conv32", "MaxPool", "Conv64", "Conv64", "MaxPool", "Conv128", "Conv128", "MaxPool",
         "Conv256", "Conv256", "Conv256", "Conv256", "MaxPool", "FC128"],
}
_CIFAR100_SPECS = {
    2: ["Conv32", "MaxPool", "Conv32", "MaxPool"],
    4: ["Conv32", "Conv32", "MaxPool", "Conv64", "Conv64", "MaxPool"],
    6: ["Conv32", "Conv32", "MaxPool", "Conv64", "Conv64", "MaxPool", "Conv128", "Conv128"],
    8: ["Conv32", "Conv32", "MaxPool", "Conv64", "Conv64", "MaxPool", "Conv128", "Conv128", "MaxPool",
        "Conv256", "Conv256", "MaxPool", "FC64"],
    10: ["Conv32", "Conv32", "MaxPool", "Conv64", "Conv64", "MaxPool", "Conv128", "Conv128", "MaxPool",
         "Conv256", "Conv256", "Conv256", "Conv256", "MaxPool", "FC512"],
}


def plain_cnn(depth, num_classes=10, input_shape=(32, 32, 3), weight_decay=0.0, name=None, keras_module=None,
              sync_batchnorm=False):
    """TAKD's plain CNN with ``depth`` in {2, 4, 6, 8, 10} learnable layers; the CIFAR-100 variants
    (wider) are used when ``num_classes == 100``. ``keras_module``, ``sync_batchnorm``: as in `resnet_cifar`."""
    specs = _CIFAR100_SPECS if num_classes == 100 else _CIFAR10_SPECS
    if depth not in specs:
        raise ValueError(f"Plain CNN depth must be one of {sorted(specs)}. Received: depth={depth}")
    k = keras_module or keras
    layers = k.layers
    inputs = k.Input(shape=input_shape, name="image")
    x = inputs
    for i, layer in enumerate(specs[depth], start=1):
        if layer.startswith("Conv"):
            x = layers.Conv2D(int(layer[4:]), 3, padding="same", kernel_regularizer=l2_regularizer(weight_decay, k),
                              name=f"conv{i}")(x)
            x = layers.ReLU(name=f"relu{i}")(batch_norm(k, f"bn{i}", sync_batchnorm)(x))
        elif layer == "MaxPool":
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
        else:
            if len(x.shape) > 2:
                # PyTorch flattens NCHW; the order of features differs but the function class is the same.
                x = layers.Flatten(name="flatten")(x)
            x = layers.Dense(int(layer[2:]), activation="relu", kernel_regularizer=l2_regularizer(weight_decay, k),
                             name=f"fc{i}")(x)
    if len(x.shape) > 2:
        x = layers.Flatten(name="flatten")(x)
    outputs = logits_layer(k, num_classes, weight_decay)(x)
    return k.Model(inputs, outputs, name=name or f"plane{depth}")
