"""Tasks, the data axis of the tool (methods, in `akd_tf.methods`, are the other): what a run learns from and
everything that depends on it, one module per kind of data, each on `akd_tf.tasks.base.Task`:

    images.py   image classification: CIFAR-10/100, your own images (folder:DIR, tfds:NAME)
    text.py     text classification and regression: the GLUE tasks (glue/<task>)

`akd_tf.train` runs the same stages (teacher, assistant, student, evaluation, saved files) for every task and asks
the task for what differs. `for_run` picks the task of a run's dataset; a new kind of data is one new module here
and its line in `_MODULES` ([layout](../../docs/layout.md)).
"""

from __future__ import annotations

import importlib

# The task modules, in the order their `matches` are asked.
_MODULES = ("text", "images")


def module_for(dataset: str):
    """The task module whose ``matches(dataset)`` is true (images take what no other task claims)."""
    for name in _MODULES:
        module = importlib.import_module(f"akd_tf.tasks.{name}")
        if module.matches(dataset):
            return module
    raise ValueError(f"No task reads dataset {dataset!r}.")  # unreachable: images take the rest


def for_run(run):
    """The `Task` of ``run`` (its data loaded)."""
    return module_for(run.config.dataset).TASK(run)
