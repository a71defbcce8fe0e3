"""akd_tf.model_files: a saved model keeps no optimizer state; a file the preflight loaded is read once."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from akd_tf import model_files, preflight
from akd_tf.methods import labels
from akd_tf.config import BadInput, Config


def test_a_saved_model_keeps_no_optimizer_state_and_stays_compiled_in_memory(tmp_path):
    """model_files.save_model writes the weights only (SGD momentum doubled the file, Adam's moments tripled it); the file
    loads without warnings and predicts as the model does; the model in memory goes on training with its
    optimizer."""
    import io
    import warnings
    import zipfile

    import h5py

    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(4096), keras.layers.Dense(3)])  # ~330 KB
    labels.compile_for_labels(model, keras.optimizers.Adam(1e-3))
    x, y = np.random.default_rng(0).normal(size=(8, 16)).astype("float32"), np.zeros(8, "int32")
    model.fit(x, y, verbose=0)
    model_files.save_model(model, str(tmp_path / "model.keras"))
    model.save(tmp_path / "as_keras_saves_it.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        names = []
        h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r").visit(names.append)
        assert names and not [n for n in names if "optimizer" in n]
    weights = sum(w.size for w in model.get_weights()) * 4
    assert os.path.getsize(tmp_path / "model.keras") < 1.2 * weights < 0.5 * os.path.getsize(
        tmp_path / "as_keras_saves_it.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.models.load_model(tmp_path / "model.keras")
    assert not loaded.compiled
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert model.compiled and int(model.optimizer.iterations) == 1
    model.fit(x, y, verbose=0)
    assert int(model.optimizer.iterations) == 2


def test_a_model_the_preflight_checked_is_taken_once_by_the_next_load_of_its_file(tmp_path):
    path = str(tmp_path / "teacher.keras")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).save(path)
    checked = model_files.load_model(path, keep=True)
    assert model_files.load_model(path, keep=True) is checked  # another check reads the kept model
    assert model_files.load_model(path) is checked  # the stage takes it
    again = model_files.load_model(path)
    assert again is not checked  # once only: two consumers never share one model
    # Not taken: inside a distribution strategy's scope (its variables must be created there), or the file changed.
    checked = model_files.load_model(path, keep=True)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert model_files.load_model(path) is not checked
    checked = model_files.load_model(path, keep=True)
    os.utime(path, ns=(0, 0))
    assert model_files.load_model(path) is not checked
    # A later run's preflight forgets what an earlier one kept.
    checked = model_files.load_model(path, keep=True)
    config = Config(dataset="cifar10", data_dir=str(tmp_path / "no_data"))
    with pytest.raises(BadInput):
        preflight.preflight(config, str(tmp_path / "run"))
    assert model_files.load_model(path) is not checked
