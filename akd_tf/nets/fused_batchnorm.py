"""BatchNormalization layers that train with TensorFlow's fused kernel, the same layers in every saved file.

Keras 3's `keras.layers.BatchNormalization` normalises with separate ops on the TensorFlow backend (``tf.nn.moments``
then ``tf.nn.batch_normalization``: several passes over every activation map, forward and backward); Keras 2 had a
``fused`` path through ``FusedBatchNormV3``, one kernel each way, and Keras 3 dropped it. On 2 CPU cores the fused
kernel makes a ResNet-8 training step 1.48× faster (`benchmarks/results/throughput.md`, (a) / (a')).

`enable` gives each eligible layer of a model a ``call`` that runs the fused kernel: the same outputs, moving
statistics and gradients to float rounding (tested). It sets the call on the layer *instance*: the layer stays a
`keras.layers.BatchNormalization`, with the same config and weights, so a saved ``.keras`` file loads anywhere
without this package (and then trains with Keras' own ops).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from akd_tf import keras_internals

_FUSED = "_akd_fused_batchnorm"


def eligible(layer) -> bool:
    """Can ``layer`` use the fused kernel? A Keras 3 BatchNormalization over the last axis, neither synchronised
    across replicas nor with batch renormalisation (the kernel has neither), on the TensorFlow backend."""
    return (isinstance(layer, keras.layers.BatchNormalization) and keras.backend.backend() == "tensorflow"
            and layer.axis == -1 and not layer.synchronized and not layer.renorm)


def enable(model) -> int:
    """Switches every eligible BatchNormalization in ``model`` (nested models included) to the fused kernel;
    returns how many layers use it. Idempotent. Inputs of another rank than 4, or with a mask, take Keras' own
    path at call time."""
    count = 0
    for layer in keras_internals.all_layers(model):
        if not eligible(layer):
            continue
        if not getattr(layer, _FUSED, False):
            keras_call = layer.call
            layer.call = _fused_call(layer, keras_call)
            object.__setattr__(layer, _FUSED, True)  # plain attribute: not tracked, never saved
        count += 1
    return count


def _fused_call(layer, keras_call):
    def call(inputs, training=None, mask=None):
        if mask is not None or len(inputs.shape) != 4:
            return keras_call(inputs, training=training, mask=mask)
        # As Keras does: statistics in float32 whatever the compute dtype (bfloat16/float16 overflow there).
        x = tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        scale = tf.cast(layer.gamma, tf.float32) if layer.scale else tf.ones([channels], tf.float32)
        offset = tf.cast(layer.beta, tf.float32) if layer.center else tf.zeros([channels], tf.float32)
        moving_mean = tf.cast(layer.moving_mean, tf.float32)
        moving_variance = tf.cast(layer.moving_variance, tf.float32)
        if training and layer.trainable:
            # The raw op, not tf.nn.fused_batch_norm, which raises epsilon to cuDNN's minimum 1.001e-5 (the ResNets
            # here use 1e-5) even on CPU.
            y, mean, variance = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=scale, offset=offset, mean=tf.zeros([0]), variance=tf.zeros([0]),
                epsilon=layer.epsilon, data_format="NHWC", is_training=True)[:3]
            # The kernel returns the unbiased (n − 1) batch variance for the running average; Keras keeps the
            # biased one it normalised with. Same running statistics as Keras' path:
            n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
            variance = variance * (n - 1.0) / tf.maximum(n, 1.0)
            momentum = layer.momentum
            layer.moving_mean.assign(moving_mean * momentum + mean * (1.0 - momentum))
            layer.moving_variance.assign(moving_variance * momentum + variance * (1.0 - momentum))
        else:
            y = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=scale, offset=offset, mean=moving_mean, variance=moving_variance,
                epsilon=layer.epsilon, data_format="NHWC", is_training=False)[0]
        return tf.cast(y, layer.compute_dtype)

    return call
