"""The private parts of Keras this project uses, in one place, each with why no public API serves. A Keras release
that moves one breaks `tests/test_keras_internals.py`, loudly, instead of a run (`KERAS_CHECKED` names the release
they were checked against). The multi-worker shim for keras-team/keras#20585 patches Keras' trainer and stays in
`akd_tf.multi_worker`, where its reason is written.
"""

from __future__ import annotations

from keras.src.utils import io_utils

# The Keras release (major.minor) these accessors were checked against.
KERAS_CHECKED = "3.15"
# How Keras' saving code begins the UserWarning it gives when a model's optimizer and the file's disagree (no warning
# class of its own to filter on): `akd_tf.model_files` and `akd_tf.checkpoint` drop the ones that are false alarms.
SKIPPED_OPTIMIZER_NOTICE = "Skipping variable loading for optimizer"


def print_msg(message: str) -> None:
    """Prints as Keras' own callbacks do: to stdout, or to absl logging after
    ``keras.config.disable_interactive_logging()``. No public function routes a line that way."""
    io_utils.print_msg(message)


def all_layers(model) -> list:
    """``model`` and every layer inside it, nested models included: ``model.layers`` lists the top level only."""
    return list(model._flatten_layers(include_self=True, recursive=True))


def inbound_nodes(layer) -> list:
    """The nodes that call ``layer`` in functional graphs: Keras keeps the graph only here."""
    return layer._inbound_nodes


def producer(tensor):
    """The layer (operation) whose output ``tensor`` is, for a symbolic tensor of a functional model; else None."""
    history = getattr(tensor, "_keras_history", None)
    return history.operation if history is not None else None


def loss_tracker(model):
    """The ``Mean`` metric behind ``logs["loss"]``: a custom ``train_step`` that computes its own loss updates it,
    as ``Model.compute_loss`` does, so that ``fit`` reports the loss the same way (no public handle)."""
    return model._loss_tracker
