"""Are a model's outputs logits? Distillation here works on logits: Annealing-KD regresses the student's logits
onto ``Φ(T)·z_t``, and Hinton KD softens ``z/τ``. A model whose last layer applies softmax or sigmoid (most
`keras.applications` models, many saved classifiers, a keras-hub classifier built with ``activation="softmax"``)
returns probabilities instead, and regressing onto probabilities trains a poor student without any error.

`probability_output(model)` finds such a last layer; `probabilities_to_logits` turns probabilities back into
logits: ``log p`` for softmax (the logits up to a per-example constant, which softmax ignores) and
``log p − log(1 − p)`` for sigmoid (exact), with ``p`` clipped to ``[ε, 1 − ε]`` (``keras.config.epsilon()``)
so that a saturated probability gives a large finite logit (|z| ≤ 16.1), not ``−inf``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from akd_tf import keras_internals

OUTPUTS = ("logits", "probabilities")
SOFTMAX, SIGMOID = "softmax", "sigmoid"
_PROBABILITY_FUNCTIONS = (SOFTMAX, SIGMOID)


def _function_name(activation):
    name = getattr(activation, "__name__", None) or (activation if isinstance(activation, str) else None)
    return name if name in _PROBABILITY_FUNCTIONS else None


def _last_operation(model):
    """The operation that produces a functional or Sequential model's single output (None: unknown)."""
    if isinstance(model, keras.Sequential):
        return model.layers[-1] if model.layers else None
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1:
        return None
    return keras_internals.producer(outputs[0])


def probability_output(model) -> tuple[str, str] | None:
    """``(layer name, "softmax" | "sigmoid")`` when ``model``'s outputs are probabilities, else None.

    Looks at a keras-hub classifier's ``activation``, then at the operation that makes the output: a layer with
    a softmax/sigmoid ``activation`` (Dense, Conv, Activation), a ``Softmax`` layer, or ``keras.ops.softmax``/
    ``keras.ops.sigmoid`` called in a functional model; a nested model is looked into. Subclassed models whose
    ``call`` cannot be read give None: say ``teacher_outputs="probabilities"`` for them yourself.
    """
    name = _function_name(getattr(model, "activation", None))
    if name and hasattr(model, "backbone"):  # a keras-hub task model: the head's activation
        return model.name, name
    operation = _last_operation(model)
    while isinstance(operation, keras.Model):  # a nested model makes the output: look inside it
        operation = _last_operation(operation)
    if operation is None:
        return None
    if isinstance(operation, keras.layers.Softmax):
        return operation.name, SOFTMAX
    name = _function_name(getattr(operation, "activation", None)) or _function_name(
        type(operation).__name__.lower())  # keras.ops.softmax/sigmoid on a KerasTensor: a Softmax/Sigmoid op
    return (operation.name, name) if name else None


def check_logits(model, who: str) -> None:
    """Raises `ValueError` (one line, naming the layer and the fix) when ``model`` returns probabilities."""
    found = probability_output(model)
    if found is None:
        return
    layer, function = found
    fix = f"rebuild that layer with activation=None (or drop the final {function})"
    if who == "teacher":
        fix = (f"pass teacher_outputs='probabilities' to convert them to "
               f"logits with a log, or {fix}")
    raise ValueError(f"The {who} {model.name!r} returns probabilities: its output layer {layer!r} applies "
                     f"{function}, and distillation needs logits. Fix: {fix}.")


def probability_function(model) -> str:
    """``"softmax"`` or ``"sigmoid"``: the one ``model`` applies, or, when that cannot be read, sigmoid for one
    output and softmax for several."""
    found = probability_output(model)
    if found is not None:
        return found[1]
    outputs = getattr(model, "outputs", None)
    width = outputs[0].shape[-1] if outputs and len(outputs) == 1 else None
    return SIGMOID if width == 1 else SOFTMAX


def probabilities_to_logits(probabilities, function: str = SOFTMAX):
    """Logits of ``probabilities`` that ``function`` (softmax or sigmoid) made, in float32 (see the module)."""
    if function not in _PROBABILITY_FUNCTIONS:
        raise ValueError(f"Unknown probability function {function!r}. Allowed: {', '.join(_PROBABILITY_FUNCTIONS)}")
    epsilon = keras.config.epsilon()
    p = ops.clip(ops.cast(probabilities, "float32"), epsilon, 1.0 - epsilon)
    if function == SIGMOID:
        return ops.log(p) - ops.log1p(-p)
    return ops.log(p)


def outputs_as_logits(outputs, model, kind: str = "logits") -> np.ndarray:
    """``model``'s predicted ``outputs`` as float32 logits: as they are for ``kind="logits"``, converted for
    ``"probabilities"`` (e.g. a probability teacher's outputs before they are cached)."""
    if kind not in OUTPUTS:
        raise ValueError(f"Unknown outputs kind {kind!r}. Allowed: {', '.join(OUTPUTS)}")
    if kind == "logits":
        return np.asarray(outputs, np.float32)
    return np.asarray(ops.convert_to_numpy(probabilities_to_logits(outputs, probability_function(model))), np.float32)
