"""akd_tf.keras_internals: each private Keras name the project reads still means what it did; a Keras release that
moves one fails here, by name, rather than in a run."""

import keras
import numpy as np

from akd_tf import keras_internals


def _nested():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="inner_dense")], name="inner")
    inputs = keras.Input((4,))
    hidden = keras.layers.BatchNormalization(name="bn")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(inner(hidden)), name="outer")


def test_the_installed_keras_is_the_release_the_accessors_were_checked_against():
    installed = ".".join(keras.__version__.split(".")[:2])
    assert installed == keras_internals.KERAS_CHECKED, (
        f"Keras {keras.__version__}: run this file's tests and bump KERAS_CHECKED once they pass")


def test_all_layers_reaches_into_nested_models_and_includes_the_model():
    names = [layer.name for layer in keras_internals.all_layers(_nested())]
    assert names[0] == "outer" and {"bn", "inner", "inner_dense", "head"} <= set(names)


def test_inbound_nodes_and_producer_walk_a_functional_graph():
    model = _nested()
    assert keras_internals.producer(model.outputs[0]).name == "head"
    (node,) = keras_internals.inbound_nodes(model.get_layer("head"))
    assert keras_internals.producer(node.input_tensors[0]).name == "inner"
    assert keras_internals.producer(np.zeros(2)) is None  # not a symbolic tensor


def test_loss_tracker_is_what_fit_reports_as_loss():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    tracker = keras_internals.loss_tracker(model)
    tracker.update_state(3.0)
    assert model.get_metrics_result()["loss"] == 3.0


def test_print_msg_prints_a_line(capsys):
    keras_internals.print_msg("a line")
    assert capsys.readouterr().out == "a line\n"



def test_the_skipped_optimizer_notice_is_the_one_keras_gives():
    import inspect

    from keras.src.optimizers import base_optimizer

    # Filtered by its text (akd_tf.model_files, akd_tf.checkpoint): if Keras rewords it, the filters let it pass.
    assert f'f"{keras_internals.SKIPPED_OPTIMIZER_NOTICE} ' in inspect.getsource(base_optimizer)
