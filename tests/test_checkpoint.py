"""Atomic writes, TrainingCheckpoint round trips, divergence, and the workdir rules (finished, resumed,
overwritten)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from akd_tf import files, model_files, preflight, run, workdir
from akd_tf.config import BadInput, Config
from akd_tf.callbacks import KeepBest, StopOnDivergence, TrainingDiverged
from akd_tf.methods import AnnealingSchedule
from akd_tf.checkpoint import TrainingCheckpoint
from akd_tf.methods import AnnealingKD


def test_atomic_path_keeps_the_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / "metrics.json"
    files.write_json(path, {"a": 1})
    with pytest.raises(RuntimeError):
        with files.atomic_path(path) as tmp:
            open(tmp, "w").write('{"a": ')  # half written, then the writer dies
            raise RuntimeError("killed")
    assert json.load(open(path)) == {"a": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_atomic_path_replaces_a_directory(tmp_path):
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "old.txt").write_text("old")
    with files.atomic_path(tmp_path / "student") as tmp:
        os.makedirs(tmp)
        open(os.path.join(tmp, "new.txt"), "w").write("new")
    assert os.listdir(tmp_path / "student") == ["new.txt"] and os.listdir(tmp_path) == ["student"]


def _akd(seed):
    keras.utils.set_random_seed(seed)
    net = lambda name: keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name=name)  # noqa: E731
    model = AnnealingKD(teacher=net("teacher"), student=net("student"), max_temperature=2)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return model


def _data():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 3, 32)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


_MAKER = """
import sys, time
from akd_tf import files
path = sys.argv[1]
with files.one_maker(path):
    open(path + ".started", "w").close()
    time.sleep(1.5)
    open(path, "w").write("made by the first")
"""


def test_one_maker_makes_a_shared_file_once_while_another_process_waits(tmp_path):
    import subprocess
    import sys
    import time

    path = str(tmp_path / "views.npz")
    first = subprocess.Popen([sys.executable, "-c", _MAKER, path], cwd=os.path.dirname(os.path.dirname(__file__)))
    deadline = time.time() + 300  # the maker imports TensorFlow (akd_tf), slow on a loaded machine
    while not os.path.exists(path + ".started"):
        assert time.time() < deadline and first.poll() is None, "the first maker did not start"
        time.sleep(0.05)
    said = []
    with files.one_maker(path, say=lambda message, **_: said.append(message)):
        # It waited for the first maker, so the file is there to read, and it holds the lock now.
        assert open(path).read() == "made by the first"
        assert open(path + ".lock").read() == str(os.getpid())
    assert first.wait(timeout=60) == 0
    assert len(said) == 1 and said[0].startswith(f"Waiting for process {first.pid} to finish {path}")
    assert not os.path.exists(path + ".lock")


_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
open(sys.argv[1] + ".held", "w").close()
time.sleep(float(sys.argv[2]))
"""


def _hold(lock, seconds=60):
    """A process holding ``lock`` with flock, as another maker does; it has taken it when this returns."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock), str(seconds)])
    while not os.path.exists(f"{lock}.held"):
        assert proc.poll() is None
        time.sleep(0.02)
    return proc


def test_a_lock_is_free_again_when_its_holder_is_killed(tmp_path):
    """The kernel releases a flock with its process: a maker killed with its session leaves nothing to take over,
    even though its lock file (with its process id in it) stays behind."""
    lock = tmp_path / "views.npz.lock"
    holder = _hold(lock)
    with files.claim(tmp_path / "views.npz") as seen:
        assert seen == holder.pid
    holder.kill()
    holder.wait()
    assert lock.exists()
    said = []
    with files.one_maker(tmp_path / "views.npz", say=said.append):
        assert lock.read_text() == str(os.getpid())
    assert said == [] and not lock.exists()


def test_claim_does_not_wait_for_a_live_holder_and_leaves_its_lock(tmp_path):
    lock = tmp_path / "kd_seed0.lock"
    holder = _hold(lock)
    try:
        with files.claim(tmp_path / "kd_seed0") as seen:
            assert seen == holder.pid
        assert lock.read_text() == str(holder.pid)
    finally:
        holder.kill()
        holder.wait()
    with files.claim(tmp_path / "kd_seed0") as seen:  # its holder has died: free
        assert seen is None


def test_checkpoint_round_trip_restores_weights_optimizer_and_callback_state(tmp_path):
    model, schedule = _akd(0), AnnealingSchedule(2, 2, verbose=0)
    checkpoint = TrainingCheckpoint(str(tmp_path), stateful=[schedule])
    model.fit(_data(), validation_data=_data(), epochs=3, verbose=0, callbacks=[schedule, checkpoint])
    assert sorted(os.listdir(tmp_path)) == ["epoch-000003"]  # older checkpoints replaced

    restored, restored_schedule = _akd(1), AnnealingSchedule(2, 2, verbose=0)
    assert TrainingCheckpoint(str(tmp_path), stateful=[restored_schedule]).restore(restored) == 3
    for a, b in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(restored.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(restored.optimizer.iterations.numpy()) == 4  # reset at the phase boundary, then one epoch
    assert (restored.phase, restored.temperature) == (2, 1)
    assert restored_schedule.best == schedule.best and set(schedule.best) == {1, 2}
    for a, b in zip(restored_schedule._best_weights, schedule._best_weights):
        np.testing.assert_array_equal(a, b)


def test_divergence_stops_at_the_first_bad_batch_and_keeps_the_last_good_checkpoint(tmp_path):
    model = _akd(0)
    keep = KeepBest(verbose=0)
    checkpoint = TrainingCheckpoint(str(tmp_path), stateful=[keep])
    blow_up = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.05 if epoch == 0 else 1e38)
    with pytest.raises(TrainingDiverged, match=r"became (nan|inf) at epoch 2, batch \d \(phase 1, T=2\)"):
        model.fit(_data(), validation_data=_data(), epochs=3, verbose=0,
                  callbacks=[blow_up, keep, StopOnDivergence(), checkpoint])
    assert os.listdir(tmp_path) == ["epoch-000001"]
    fresh = _akd(1)
    assert TrainingCheckpoint(str(tmp_path), stateful=[KeepBest()]).restore(fresh) == 1
    assert all(np.isfinite(w).all() for w in fresh.get_weights())


def test_workdir_rules(tmp_path):
    config = Config(train_size=64)
    workdir.prepare_workdir(config, str(tmp_path))  # empty: fine
    files.write_json(tmp_path / "config.json", __import__("dataclasses").asdict(config))
    workdir.prepare_workdir(Config(train_size=64, verbose=0), str(tmp_path))  # verbosity may change on resume
    # A run written before a field existed resumes when the field keeps its default, and not otherwise.
    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({k: v for k, v in saved.items() if k != "teacher_outputs"}))
    workdir.prepare_workdir(Config(train_size=64), str(tmp_path))
    with pytest.raises(BadInput, match=r"other settings: teacher_outputs \(saved 'logits', now 'probabilities'\)"):
        workdir.prepare_workdir(Config(train_size=64, teacher_outputs="probabilities"), str(tmp_path))
    with pytest.raises(BadInput, match=r"other settings: train_size \(saved 64, now 128\)"):
        workdir.prepare_workdir(Config(train_size=128), str(tmp_path))
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "student").mkdir()
    with pytest.raises(BadInput, match="holds a finished run"):
        workdir.prepare_workdir(config, str(tmp_path))
    (tmp_path / "teacher.keras").write_text("")
    with pytest.raises(BadInput, match="would delete"):
        workdir.prepare_workdir(Config(teacher_path=str(tmp_path / "teacher.keras")), str(tmp_path), True)
    workdir.prepare_workdir(config, str(tmp_path), overwrite=True)
    workdir.clear_outputs(str(tmp_path))
    assert os.listdir(tmp_path) == ["notes.txt"]  # only this tool's outputs are removed


def test_a_stage_traces_its_training_step_once(tmp_path):
    """The optimizer is built before ``fit``: built by the first traced step instead, its variables made
    tf.function trace the whole step a second time (half of a MiniLM's first step here)."""
    from akd_tf import data, nets

    splits = data.load("cifar10", batch_size=16, validation_size=16, train_size=32, test_size=16, shuffle_seed=0)
    model = nets.build("plane2", splits.num_classes, splits.input_shape, 0.0)
    run.compile_classifier(model, keras.optimizers.SGD(0.01, momentum=0.9))
    traced, step = [], model.train_step
    model.train_step = lambda batch: traced.append(1) or step(batch)
    stage = run.Run(Config(dataset="cifar10", verbose=0), str(tmp_path), tf.distribute.get_strategy())
    history = stage.fit(model, splits, "student", 2, (2,), 0.01, [])
    assert len(history["loss"]) == 2 and len(traced) == 1


def test_a_saved_model_keeps_no_optimizer_state_and_stays_compiled_in_memory(tmp_path):
    """model_files.save_model writes the weights only (SGD momentum doubled the file, Adam's moments tripled it); the file
    loads without warnings and predicts as the model does; the model in memory goes on training with its
    optimizer."""
    import io
    import warnings
    import zipfile

    import h5py

    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(4096), keras.layers.Dense(3)])  # ~330 KB
    run.compile_classifier(model, keras.optimizers.Adam(1e-3))
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
