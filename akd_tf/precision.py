"""Mixed precision: which Keras dtype policy a run computes in, and models made to follow it.

``bfloat16`` and ``float16`` mean Keras's ``mixed_bfloat16``/``mixed_float16`` policies: layers compute in the low
dtype and keep float32 variables. The layers that produce a model's outputs stay float32, as Keras recommends, so
logits and every loss are float32. A ``float16`` model compiled by Keras gets a `keras.optimizers.LossScaleOptimizer`
(``compile(auto_scale_loss=True)``, the default); `akd_tf.Distiller`'s step scales its loss through it.

Keras gives a layer the global policy when the layer is *built*; a model loaded from a ``.keras`` file keeps the
policies it was saved with. `follow` sets a built model's layers to a policy (e.g. a float32 teacher file used in
a bfloat16 run), and `computing_in` does so for the length of a ``with`` block (e.g. exporting a bfloat16
student as a float32 SavedModel, which TFLite can convert).
"""

from __future__ import annotations

import contextlib

import keras

from akd_tf import keras_internals

# --mixed_precision value -> Keras dtype policy.
POLICIES = {"none": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def policy_name(mixed_precision: str) -> str:
    """The Keras policy of a ``--mixed_precision`` value; `ValueError` naming the allowed ones otherwise."""
    if mixed_precision not in POLICIES:
        raise ValueError(f"Unknown mixed_precision {mixed_precision!r}. Allowed: {', '.join(POLICIES)}")
    return POLICIES[mixed_precision]


def set_global(mixed_precision: str):
    """Sets Keras's global policy: layers built from now on compute in it (``"none"``: float32)."""
    keras.mixed_precision.set_global_policy(policy_name(mixed_precision))


def _output_layers(model):
    """The layers whose outputs are ``model``'s outputs, looking inside nested models."""
    found = []
    for tensor in keras.tree.flatten(getattr(model, "outputs", None) or []):
        layer = keras_internals.producer(tensor)
        if isinstance(layer, keras.Model) and layer is not model:
            found.extend(_output_layers(layer) or [layer])
        elif isinstance(layer, keras.layers.Layer):
            found.append(layer)
    return found


def _layers(model):
    return keras_internals.all_layers(model)


def follow(model, policy):
    """Sets every floating-point layer of a built ``model`` to ``policy`` (a Keras policy name) and returns the
    model; the layers that produce its outputs stay float32 when ``policy`` is a mixed one. Variables keep their
    float32 values: only the dtype the layers compute in changes (from the next call or trace)."""
    policy = keras.dtype_policies.get(policy)
    for layer in _layers(model):
        if _floating(layer):
            layer.dtype_policy = policy
    if policy.compute_dtype != policy.variable_dtype:
        for layer in _output_layers(model):
            if _floating(layer):
                layer.dtype_policy = "float32"
    return model


def _floating(layer):
    # Layers that compute in integers, or hold quantized weights, keep their own policy.
    current = layer.dtype_policy
    return current.quantization_mode is None and current.compute_dtype in ("float32", "float16", "bfloat16")


def is_mixed(model) -> bool:
    """Does any layer of ``model`` compute in a dtype other than its variables'?"""
    return any(layer.dtype_policy.compute_dtype != layer.dtype_policy.variable_dtype for layer in _layers(model))


@contextlib.contextmanager
def computing_in(model, policy="float32"):
    """Within the block every layer of ``model`` computes in ``policy``; their own policies come back after."""
    saved = [(layer, layer.dtype_policy) for layer in _layers(model)]
    try:
        follow(model, policy)
        yield model
    finally:
        for layer, layer_policy in saved:
            layer.dtype_policy = layer_policy
