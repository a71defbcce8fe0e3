"""A frozen network's inference copy with every BatchNorm folded into the convolution before it.

In inference mode a BatchNormalization after a convolution is an affine map per channel, y = s·conv(x) + b with
s = γ / sqrt(var + ε) and b = β − s·mean, so it can be folded into that convolution's kernel (× s) and bias (b):
the same outputs, to float rounding, without the 2 elementwise passes over every activation map that Keras runs
for it. A ResNet-110 teacher has 109 of them (folded against unfolded inference: `benchmarks/results/throughput.md`,
(b) / (b')). TFLite's converter does the same for exported files.

The copy is for a teacher's forward passes only (distillation steps, cached teacher views): it is never trained,
saved or serialised, and `refresh` copies the network's current weights into it.
"""

from __future__ import annotations

import keras
import numpy as np

from akd_tf import keras_internals


class _Folded(keras.layers.Layer):
    """Where a folded BatchNorm was: passes its input through (takes the call arguments the BatchNorm took)."""

    def call(self, inputs, training=None, mask=None):
        return inputs


def foldable(model) -> dict:
    """``{convolution name: BatchNorm name}`` of the BatchNorms ``model`` can fold: each the only consumer of a
    bias-free or biased `Conv2D` without activation, both called once, normalising the last (channel) axis."""
    if not isinstance(model, keras.Model) or not hasattr(model, "_run_through_graph"):
        return {}  # subclassed models have no graph to rewrite
    consumers = {}
    for layer in model.layers:
        for node in keras_internals.inbound_nodes(layer):
            for tensor in node.input_tensors:
                consumers.setdefault(keras_internals.producer(tensor).name, []).append(layer)
    pairs = {}
    for bn in model.layers:
        if not isinstance(bn, keras.layers.BatchNormalization) or len(keras_internals.inbound_nodes(bn)) != 1:
            continue
        inputs = keras_internals.inbound_nodes(bn)[0].input_tensors
        conv = keras_internals.producer(inputs[0]) if len(inputs) == 1 else None
        if (type(conv) is keras.layers.Conv2D and len(keras_internals.inbound_nodes(conv)) == 1
                and len(consumers.get(conv.name, ())) == 1 and conv.get_config()["activation"] == "linear"
                and conv.data_format == "channels_last" and bn.axis in (-1, len(bn.input.shape) - 1)):
            pairs[conv.name] = bn.name
    return pairs


def inference_copy(model):
    """``model``'s BatchNorms folded (`foldable`) into a new model with its own weights (`refresh`), for inference
    only; ``model`` itself when it has none to fold. The copy's variables are made under ``model``'s distribution
    strategy (mirrored where its are), so its ``predict`` and calls run on the same devices."""
    pairs = foldable(model)
    if not pairs:
        return model
    folded_bns = set(pairs.values())

    def clone(layer):
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
        elif layer.name in folded_bns:
            return _Folded(name=layer.name, dtype=layer.dtype_policy)
        return layer.__class__.from_config(config)

    with model.distribute_strategy.scope():
        copy = keras.models.clone_model(model, clone_function=clone)
    copy.trainable = False
    copy._akd_folded = pairs
    refresh(model, copy)
    return copy


def refresh(model, copy) -> None:
    """Copies ``model``'s current weights into its `inference_copy`, folding each BatchNorm on the way (in float64,
    then cast to the variables' dtype)."""
    pairs = getattr(copy, "_akd_folded", None)
    if not pairs:
        return
    folded_bns = set(pairs.values())
    for layer in model.layers:
        if layer.name in folded_bns or not layer.weights:
            continue
        target = copy.get_layer(layer.name)
        if layer.name not in pairs:
            target.set_weights(layer.get_weights())
            continue
        bn = model.get_layer(pairs[layer.name])
        conv_weights = [np.asarray(w, np.float64) for w in layer.get_weights()]
        kernel, bias = conv_weights[0], conv_weights[1] if layer.use_bias else 0.0
        channels = kernel.shape[-1]
        weights = {w.name: np.asarray(w, np.float64) for w in bn.weights}
        gamma = weights.get("gamma", np.ones(channels))
        beta = weights.get("beta", np.zeros(channels))
        scale = gamma / np.sqrt(weights["moving_variance"] + bn.epsilon)
        target.set_weights([(kernel * scale).astype(np.float32),
                            (beta + (bias - weights["moving_mean"]) * scale).astype(np.float32)])
