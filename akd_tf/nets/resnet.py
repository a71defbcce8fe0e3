"""CIFAR ResNets of depth 6n+2 as in the official Annealing-KD / TAKD ``resnet_cifar.py``.

3×3 conv (16) + BN + ReLU, three stages of n basic blocks with 16/32/64 filters (strides 1/2/2),
global average pooling, dense logits. A block whose stride or width changes takes a 1×1 conv + BN
shortcut. Convolutions have no bias; trainable parameters for 10 classes: ResNet-8 78,042,
ResNet-14 175,258, ResNet-20 272,474, ResNet-110 1,730,714.

The builders take the Keras module to build with: Keras 3 by default, or ``tf_keras`` for the
quantization-aware-training export path (tfmot works only on tf_keras models); layer names are the same
in both, so weights copy across by name.
"""

import keras


def l2_regularizer(weight_decay, k=keras):
    # SGD's coupled weight decay λ·w (PyTorch `weight_decay=λ`) is the gradient of (λ/2)·‖w‖².
    return k.regularizers.L2(weight_decay / 2.0) if weight_decay else None


def _conv(k, filters, kernel_size, strides, weight_decay, name):
    return k.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False,
        kernel_initializer="he_normal", kernel_regularizer=l2_regularizer(weight_decay, k), name=name,
    )


def batch_norm(k, name, synchronized=False):
    # PyTorch's BatchNorm2d defaults: momentum 0.1 (Keras 0.9), eps 1e-5. `synchronized`: statistics of the global
    # batch under a tf.distribute strategy (passed only when set, so tf_keras builds are unchanged).
    extra = {"synchronized": True} if synchronized else {}
    return k.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name, **extra)


def logits_layer(k, num_classes, weight_decay):
    # float32 under a mixed-precision policy too (Keras's advice): logits and losses keep full precision.
    return k.layers.Dense(num_classes, kernel_regularizer=l2_regularizer(weight_decay, k), dtype="float32",
                          name="logits")


def _basic_block(k, x, filters, strides, weight_decay, name, sync):
    shortcut = x
    y = _conv(k, filters, 3, strides, weight_decay, f"{name}_conv1")(x)
    y = k.layers.ReLU(name=f"{name}_relu1")(batch_norm(k, f"{name}_bn1", sync)(y))
    y = batch_norm(k, f"{name}_bn2", sync)(_conv(k, filters, 3, 1, weight_decay, f"{name}_conv2")(y))
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(k, filters, 1, strides, weight_decay, f"{name}_shortcut_conv")(x)
        shortcut = batch_norm(k, f"{name}_shortcut_bn", sync)(shortcut)
    return k.layers.ReLU(name=f"{name}_out")(k.layers.Add(name=f"{name}_add")([y, shortcut]))


def resnet_cifar(depth, num_classes=10, input_shape=(32, 32, 3), weight_decay=0.0, name=None, keras_module=None,
                 sync_batchnorm=False):
    """A CIFAR ResNet of ``depth = 6n + 2`` returning logits (float32 under any dtype policy).
    ``sync_batchnorm``: BatchNorm over the global batch when trained under a tf.distribute strategy."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, …). Received: depth={depth}")
    k = keras_module or keras
    blocks = (depth - 2) // 6
    inputs = k.Input(shape=input_shape, name="image")
    x = _conv(k, 16, 3, 1, weight_decay, "stem_conv")(inputs)
    x = k.layers.ReLU(name="stem_relu")(batch_norm(k, "stem_bn", sync_batchnorm)(x))
    for stage, (filters, strides) in enumerate(((16, 1), (32, 2), (64, 2)), start=1):
        for block in range(blocks):
            x = _basic_block(k, x, filters, strides if block == 0 else 1, weight_decay,
                             f"stage{stage}_block{block + 1}", sync_batchnorm)
    x = k.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = logits_layer(k, num_classes, weight_decay)(x)
    return k.Model(inputs, outputs, name=name or f"resnet{depth}")
