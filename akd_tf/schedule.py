"""The Annealing-KD and Continuation-KD schedules as pure functions: no TensorFlow, no Keras, no flags.

Jafari et al., *Annealing Knowledge Distillation*, EACL 2021 (arXiv 2104.07163); Jafari et al., *Continuation-KD*,
EMNLP Findings 2022 (arXiv 2212.05998).

* Annealing function: ``Φ(T) = 1 − (T − 1) / τ_max`` for integer ``T`` in ``[1, τ_max]``,
  so ``Φ(τ_max) = 1/τ_max`` and ``Φ(1) = 1``.
* Temperature: ``T`` starts at ``τ_max`` and drops by 1 every ``⌊phase1_epochs / τ_max⌋`` epochs, never
  below 1. The official code keeps a counter ``t = 1, 2, …`` that steps when
  ``epoch % int(epochs / τ_max) == 0 and epoch > 0`` and scales the teacher by ``t / τ_max``; with
  ``T = τ_max − t + 1`` that is the same factor at every epoch (it would overshoot ``Φ = 1`` when
  ``phase1_epochs`` is not a multiple of ``τ_max``; here ``T`` stays at 1 instead).
* Phases: epochs ``[0, phase1_epochs)`` are phase 1 (logit matching, no labels), later epochs phase 2
  (hard labels). Each phase restarts its own learning-rate schedule.
* Continuation-KD has no phases: the same temperature schedule over its ``anneal_epochs``, and a label weight
  ``ψ(i) = min(i / label_ramp_epochs, 1)`` that brings the labels in while the teacher's term fades out.
"""

from __future__ import annotations

import math

PHASE_DISTILL = 1
PHASE_LABELS = 2


def check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def validate_schedule(phase1_epochs: int, max_temperature: int) -> None:
    """Raises `ValueError` unless every temperature ``τ_max … 1`` gets at least one phase-1 epoch."""
    check_positive_int("max_temperature", max_temperature)
    check_positive_int("phase1_epochs", phase1_epochs)
    if phase1_epochs < max_temperature:
        raise ValueError(
            "Phase 1 needs at least one epoch per temperature, so `phase1_epochs` must be >= "
            f"`max_temperature`. Received: phase1_epochs={phase1_epochs}, max_temperature={max_temperature}"
        )


def phi(temperature, max_temperature):
    """``Φ(T) = 1 − (T − 1) / τ_max``, the scale of the teacher's logits, written once for floats and tensors alike
    (the traced training steps pass their temperature variable)."""
    return 1.0 - (temperature - 1.0) / max_temperature


def annealing_factor(temperature: float, max_temperature: int) -> float:
    """`phi` of a temperature checked to lie in ``[1, τ_max]``."""
    if not 1 <= temperature <= max_temperature:
        raise ValueError(
            f"`temperature` must lie in [1, max_temperature={max_temperature}]. Received: temperature={temperature}"
        )
    return phi(temperature, max_temperature)


def epochs_per_temperature(phase1_epochs: int, max_temperature: int) -> int:
    """How many epochs each temperature lasts (the last temperature, T=1, takes any remainder)."""
    validate_schedule(phase1_epochs, max_temperature)
    return phase1_epochs // max_temperature


def temperature_at(epoch: int, phase1_epochs: int, max_temperature: int) -> int:
    """The temperature for a 0-based ``epoch`` of the whole run; 1 for every epoch after phase 1."""
    if epoch < 0:
        raise ValueError(f"`epoch` must be >= 0. Received: epoch={epoch}")
    step = epochs_per_temperature(phase1_epochs, max_temperature)
    return max(1, max_temperature - epoch // step)


def phase_at(epoch: int, phase1_epochs: int) -> int:
    """1 for epochs in ``[0, phase1_epochs)``, 2 after."""
    if epoch < 0:
        raise ValueError(f"`epoch` must be >= 0. Received: epoch={epoch}")
    return PHASE_DISTILL if epoch < phase1_epochs else PHASE_LABELS


def validate_label_ramp(label_ramp_epochs, epochs=None) -> None:
    """Raises `ValueError` unless ``label_ramp_epochs`` is a number > 0 (and, given the run's ``epochs``, at most
    that many, so that the run ends on labels alone)."""
    if isinstance(label_ramp_epochs, bool) or not isinstance(label_ramp_epochs, (int, float)) \
            or not label_ramp_epochs > 0:
        raise ValueError(f"`label_ramp_epochs` must be a number > 0. Received: label_ramp_epochs={label_ramp_epochs!r}")
    if epochs is not None and label_ramp_epochs > epochs:
        raise ValueError(
            "The label weight ψ must reach 1 within the run, so `label_ramp_epochs` must be <= `epochs`. "
            f"Received: label_ramp_epochs={label_ramp_epochs}, epochs={epochs}"
        )


def label_weight_at(epoch: int, label_ramp_epochs: float) -> float:
    """Continuation-KD's ``ψ(i) = min(i / label_ramp_epochs, 1)`` for a 0-based ``epoch`` ``i``: 0 at the first
    epoch (teacher only), 1 from ``label_ramp_epochs`` on (labels only)."""
    if epoch < 0:
        raise ValueError(f"`epoch` must be >= 0. Received: epoch={epoch}")
    validate_label_ramp(label_ramp_epochs)
    return min(epoch / label_ramp_epochs, 1.0)


def teacher_epochs(label_ramp_epochs: float) -> int:
    """How many epochs of a Continuation-KD run read the teacher (ψ < 1): the first ``⌈label_ramp_epochs⌉``."""
    validate_label_ramp(label_ramp_epochs)
    return math.ceil(label_ramp_epochs)


def step_learning_rate(epoch_in_phase: int, phase_epochs: int, base_learning_rate: float) -> float:
    """The official CIFAR ResNet recipe, per phase: ``base`` for the first half of the phase's epochs,
    ``base/10`` until 75 %, then ``base/100``."""
    check_positive_int("phase_epochs", phase_epochs)
    if epoch_in_phase < 0.5 * phase_epochs:
        return base_learning_rate
    if epoch_in_phase < 0.75 * phase_epochs:
        return base_learning_rate * 0.1
    return base_learning_rate * 0.01


def per_phase(base_learning_rate, phases: int) -> tuple[float, ...]:
    """The base learning rate of each of ``phases`` phases: one rate for all, or one per phase."""
    if isinstance(base_learning_rate, (int, float)):
        return (float(base_learning_rate),) * phases
    rates = tuple(float(rate) for rate in base_learning_rate)
    if len(rates) != phases:
        raise ValueError(f"One base learning rate per phase is needed: {phases} phases. Received: {rates}")
    return rates


def learning_rate_at(
    epoch: int,
    phase_epochs: tuple[int, ...],
    base_learning_rate,
    kind: str = "step",
) -> float:
    """Learning rate for a 0-based ``epoch`` of a run made of consecutive phases of ``phase_epochs``
    epochs each; every phase restarts the schedule (``kind`` is ``"step"`` or ``"constant"``) at its base
    rate (``base_learning_rate``: one for all phases, or one per phase)."""
    if kind not in LR_SCHEDULES:
        raise ValueError(f"Unknown learning-rate schedule {kind!r}. Allowed: {sorted(LR_SCHEDULES)}")
    start = 0
    for epochs, base in zip(phase_epochs, per_phase(base_learning_rate, len(phase_epochs))):
        if epoch < start + epochs:
            return LR_SCHEDULES[kind](epoch - start, epochs, base)
        start += epochs
    raise ValueError(f"`epoch` {epoch} lies past the last phase; phases: {tuple(phase_epochs)}")


def linear_learning_rate_at(step: int, phase_steps: tuple[int, ...], base_learning_rate) -> float:
    """Linear decay from ``base`` towards 0 over each phase of ``phase_steps`` optimizer steps, per step and
    without warm-up (the official GLUE recipe); every phase restarts at its base rate (one for all phases, or
    one per phase)."""
    start = 0
    for steps, base in zip(phase_steps, per_phase(base_learning_rate, len(phase_steps))):
        check_positive_int("phase_steps", steps)
        if step < start + steps:
            return base * (1.0 - (step - start) / steps)
        start += steps
    raise ValueError(f"`step` {step} lies past the last phase; phase steps: {tuple(phase_steps)}")


# Per-epoch schedules; "linear" (per step, `linear_learning_rate_at`) is applied by `akd_tf.callbacks.LinearDecay`.
LR_SCHEDULES = {
    "step": step_learning_rate,
    "constant": lambda epoch_in_phase, phase_epochs, base: base,
}
LINEAR = "linear"
