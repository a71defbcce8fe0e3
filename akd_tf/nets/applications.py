"""Students from `keras.applications` for images of any size: MobileNetV3 Small/Large and EfficientNet-B0, built
with random weights (``weights=None``: nothing downloads) and a head of ``num_classes`` logits. They take RGB pixels
0-255 and carry their own preprocessing as layers, the convention of models from outside the tool, so they fit
your own images (``--dataset=folder:DIR``) and export with no normalisation of their own."""

import keras

# name -> (keras.applications constructor, its arguments). The minimalistic MobileNetV3 (no squeeze-and-excite,
# no hard-swish, no 5×5 kernels) is the variant made for 8-bit hardware: its uint8 file agrees with the float model
# where the full one's hard-swish and squeeze-and-excite lose top classes: 99 % against 85 % of test photos
# (benchmarks/results/own_data.md, own_data_mobilenet_v3_small.md).
APPLICATIONS = {
    "mobilenet_v3_small": ("MobileNetV3Small", {}),
    "mobilenet_v3_small_minimalistic": ("MobileNetV3Small", {"minimalistic": True}),
    "mobilenet_v3_large": ("MobileNetV3Large", {}),
    "efficientnet_b0": ("EfficientNetB0", {}),
}


def application(net, num_classes=10, input_shape=(224, 224, 3), weight_decay=0.0, name=None, keras_module=None,
                sync_batchnorm=False):
    """The `keras.applications` network ``net`` (a key of `APPLICATIONS`) returning logits. ``weight_decay`` is
    not applied to these nets' kernels (Keras builds them without regularisers): use ``--optimizer=adamw``, whose
    decay is decoupled from the loss."""
    if sync_batchnorm:
        raise ValueError(f"`sync_batchnorm` is implemented for the CIFAR nets; {net} builds Keras' own BatchNorm "
                         "layers. Received: sync_batchnorm=True")
    k = keras_module or keras
    if input_shape[0] < 32 or input_shape[1] < 32:
        raise ValueError(f"{net} takes images of at least 32×32. Received: input_shape={tuple(input_shape)}")
    constructor, arguments = APPLICATIONS[net]
    model = getattr(k.applications, constructor)(input_shape=tuple(input_shape), weights=None, classes=num_classes,
                                                 classifier_activation=None, name=name or net, **arguments)
    for layer in model.layers:
        # Keras builds them with momentum 0.999 (0.99 for EfficientNet), made for ImageNet's 10,000 steps an epoch:
        # after the few hundred steps of a small dataset their moving statistics are still near their initial
        # values, and the model evaluates at chance. 0.9, as the CIFAR nets' BatchNorm.
        if isinstance(layer, k.layers.BatchNormalization):
            layer.momentum = 0.9
    return model
