"""What `akd_tf.train`'s stages ask of a task: its data, its models, how a model is scored and saved.

A task object belongs to one run (`akd_tf.run.Run`): it loads the data when it is made and keeps what the run's
models need from it (for text, each model's own token features). The stages themselves (which model trains when,
resume, checkpoints, the method's training) are the same for every task and live in `akd_tf.train`.
"""

from __future__ import annotations


class Task:
    """The interface; `akd_tf.tasks.images` and `akd_tf.tasks.text` implement it."""

    # The validation figure that selects the best epoch (`akd_tf.callbacks.KeepBest`) and phase summaries report.
    monitor = "val_accuracy"
    # Whether the student is built before the teacher stage, so that a student that cannot be built (a preset that
    # does not load) fails before hours of teacher training.
    student_first = False

    def __init__(self, run):
        self.run, self.config = run, run.config

    @property
    def regression(self) -> bool:
        return False

    @property
    def num_examples(self) -> dict:
        raise NotImplementedError

    def describe(self) -> dict:
        """Fields of ``metrics.json`` that describe the data beyond its size (label names, the metric)."""
        return {}

    def new_model(self, who: str, net: str | None = None):
        """A new ``who`` model ("teacher", "assistant", "student") of network ``net`` (the configured one when
        None), in the run's precision; called inside the run's strategy scope with the stage's seed set."""
        raise NotImplementedError

    def load_model(self, path: str, who: str):
        """The ``who`` model in ``path`` (a ``.keras`` file), in the run's precision; inside the strategy scope."""
        raise NotImplementedError

    def data(self, model):
        """The splits ``model`` reads (`akd_tf.data.images.ImageSplits`, `akd_tf.data.glue.Features`)."""
        raise NotImplementedError

    def first_callbacks(self, data) -> list:
        """Callbacks that add validation figures to the logs before the others read them."""
        return []

    def with_teacher(self, data, teacher, stage: str, method, teacher_outputs: str, metrics: dict):
        """``data`` for distillation from ``teacher`` in ``stage``: with the teacher's cached logits, or its inputs;
        what it costs goes into ``metrics``."""
        return data

    def evaluate(self, model, who: str) -> dict:
        """``model``'s figures on the report split(s)."""
        raise NotImplementedError

    def headline(self, figures: dict) -> str:
        """The main figure of `evaluate`'s ``figures`` in a few words (plot titles)."""
        raise NotImplementedError

    def report(self, metrics: dict) -> None:
        """Adds the task's own checks of the finished run to ``metrics`` (e.g. a floor the student must beat)."""

    def save(self, model, path: str) -> None:
        """Writes ``model`` to the ``.keras`` file ``path``."""
        raise NotImplementedError

    def save_serving(self, student, directory: str) -> None:
        """Writes ``student/``: the SavedModel `python -m export.tflite` reads, with ``akd_tf.json``."""
        raise NotImplementedError
