"""Networks by name: a flat registry from name to constructor.

Every constructor takes ``(num_classes=10, input_shape=(32, 32, 3), weight_decay=0.0, name=None, keras_module=None,
sync_batchnorm=False)`` and returns a functional `keras.Model` that outputs float32 logits.
"""

import functools

from akd_tf.nets.applications import APPLICATIONS, application
from akd_tf.nets.plain_cnn import plain_cnn
from akd_tf.nets.resnet import resnet_cifar

NETS = {
    **{f"resnet{d}": functools.partial(resnet_cifar, d) for d in (8, 14, 20, 26, 32, 44, 56, 110)},
    **{f"plane{d}": functools.partial(plain_cnn, d) for d in (2, 4, 6, 8, 10)},
    **{name: functools.partial(application, name) for name in APPLICATIONS},
}
# The CIFAR nets take normalised images (`akd_tf.data.images.MEAN`, `STD`); keras.applications nets take pixels.
PIXEL_INPUT = tuple(APPLICATIONS)


def build(name, num_classes=10, input_shape=(32, 32, 3), weight_decay=0.0, keras_module=None, sync_batchnorm=False):
    """Builds the network registered as ``name`` (with ``keras_module``: Keras 3 by default, or tf_keras), in the
    global dtype policy; ``sync_batchnorm``: BatchNorm statistics over the global batch under a strategy."""
    if name not in NETS:
        raise ValueError(f"Unknown network {name!r}. Allowed: {', '.join(NETS)}")
    return NETS[name](num_classes=num_classes, input_shape=tuple(input_shape), weight_decay=weight_decay, name=name,
                      keras_module=keras_module, sync_batchnorm=sync_batchnorm)


__all__ = ["NETS", "build", "plain_cnn", "resnet_cifar"]
