"""The registry of training methods: what the run pipeline, the configuration's checks, the command line, the
studies and the export know of a method, each declared once, in the method's own module.

A method module subclasses `Method` and calls `register` with an instance; `akd_tf.methods` imports every module of
its package, so a new method is one new file there. Nothing outside `akd_tf/methods/` compares a method's name: it
asks the method (``registry.get(config.method).teacher``, ``.build(...)``, ``.summary(...)``).
"""

from __future__ import annotations

import dataclasses

_METHODS: dict = {}


@dataclasses.dataclass(frozen=True)
class Training:
    """What a method builds for one stage: the model ``fit`` trains, and its callbacks.

    ``first`` are stateless and run before every other callback (e.g. a schedule that sets T and ψ from the epoch
    and adds them to the logs); ``early`` are stateful (checkpointed) and run before the logging callbacks, so the
    logs carry what they set; ``stateful`` are checkpointed and run after the logging callbacks."""

    model: object
    first: tuple = ()
    early: tuple = ()
    stateful: tuple = ()


class Method:
    """A training method as the run pipeline knows it. Subclasses set the class attributes and override what differs.

    Attributes:
        name: the ``--method`` value.
        title: its name in tables, plots and model cards ("Annealing-KD").
        short: its short name in table columns ("AKD").
        help: one sentence for ``--method``'s help.
        teacher: it distils from a teacher (False: labels only; a given teacher is evaluated, not used).
        via_assistant: the student learns from a teacher assistant trained from the teacher (TAKD);
            ``assistant_method`` names the method that trains the assistant.
        regression: it can train a regression student (one output, a score).
        images_only: it is implemented for image datasets only.
        keeps_best: it keeps the best weights itself (per phase); otherwise the run adds `akd_tf.KeepBest`.
        settings: `akd_tf.config.Config` fields that only this method reads (refused with another method).
    """

    name: str = ""
    title: str = ""
    short: str = ""
    help: str = ""
    teacher: bool = True
    via_assistant: bool = False
    assistant_method: str | None = None
    regression: bool = True
    images_only: bool = False
    keeps_best: bool = False
    settings: tuple = ()

    def check(self, config) -> None:
        """Raises `ValueError` for a configuration this method cannot run (its own settings); the generic checks
        (dataset kind, regression, settings of other methods) are `check_config`'s."""

    def build(self, teacher, student, config, *, optimizer, teacher_outputs="logits", regression=False,
              monitor="val_accuracy") -> Training:
        """The model to train for ``student`` (compiled with ``optimizer``) and its callbacks."""
        raise NotImplementedError

    def phases(self, config, epochs):
        """``(epochs of each phase, base learning rate of each phase)`` of a stage trained for ``epochs``: one
        phase, or, when ``phase2_learning_rate`` is set, the same two learning-rate phases as Annealing-KD's (the
        rate restarts at epoch ``phase1_epochs``; the loss stays the method's), so that an ablation of the restart
        changes the same thing for every method."""
        if config.phase2_learning_rate is not None and epochs > config.phase1_epochs:
            return ((config.phase1_epochs, epochs - config.phase1_epochs),
                    (config.learning_rate, config.phase2_learning_rate))
        return (epochs,), (config.learning_rate,)

    def cached_teacher_epochs(self, config):
        """How many first epochs read cached teacher logits (None: every epoch). Later epochs train on the labels
        alone and see freshly augmented images."""
        return None

    def summary(self, config, history, epochs, phase) -> dict:
        """What ``metrics.json`` records of the stage's phases; ``phase(start, stop)`` summarises epochs."""
        return {"training": phase(0, epochs)}

    def phase_boundary(self, config):
        """The epoch where the loss changes (a line in the run's plot), or None."""
        return None


def register(method: Method) -> Method:
    """Adds ``method`` to the registry under ``method.name``; a second method of the same name is refused."""
    if not method.name or not method.title or not method.short:
        raise ValueError(f"A method needs a name, a title and a short name. Received: {method!r}")
    if method.name in _METHODS and type(_METHODS[method.name]) is not type(method):
        raise ValueError(f"Method {method.name!r} is registered twice: {type(_METHODS[method.name]).__name__} and "
                         f"{type(method).__name__}")
    _METHODS[method.name] = method
    return method


def names() -> tuple:
    """Every registered method's name, in registration order."""
    return tuple(_METHODS)


def get(name: str) -> Method:
    """The registered method ``name``; `ValueError` naming the allowed ones otherwise."""
    try:
        return _METHODS[name]
    except KeyError:
        raise ValueError(f"Unknown `method` {name!r}. Allowed: {', '.join(_METHODS)}") from None


def title(name: str) -> str:
    """A method's title, or ``name`` itself for a name no method has (e.g. a file written by other code)."""
    return _METHODS[name].title if name in _METHODS else name


def short(name: str) -> str:
    """A method's short name, or ``name`` itself for a name no method has."""
    return _METHODS[name].short if name in _METHODS else name


def check_config(config, regression: bool, text: bool, defaults: dict) -> None:
    """The checks every method shares (its dataset kind, regression, the settings of other methods): raises
    `ValueError` naming the setting. ``defaults`` maps a setting's name to its default, to tell which settings were
    given. The method's own checks (`Method.check`) come after the configuration's checks of single values."""
    method = get(config.method)
    if method.images_only and text:
        allowed = [m.name for m in _METHODS.values() if not m.images_only and (m.regression or not regression)]
        raise ValueError(f"`method` {method.name!r} is implemented for image datasets. Received: "
                         f"dataset={config.dataset!r}. Allowed there: {', '.join(allowed)}")
    if regression and not method.regression:
        allowed = [m.name for m in _METHODS.values() if m.regression and not (m.images_only and text)]
        raise ValueError(f"`method` {method.name!r} needs class probabilities; {config.dataset} is a regression task. "
                         f"Allowed there: {', '.join(allowed)}")
    for other in _METHODS.values():
        if other is method:
            continue
        given = [name for name in other.settings
                 if name not in method.settings and getattr(config, name) != defaults[name]]
        if given:
            values = ", ".join(f"{name}={getattr(config, name)!r}" for name in given)
            raise ValueError(f"`{'` and `'.join(given)}` {'is' if len(given) == 1 else 'are'} read by "
                             f"method={other.name!r} only. Received: method={method.name!r}, {values}")
