"""The CLI end to end: the smoke config on the real CIFAR-10, and early, one-line errors."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _main(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "akd_tf.main", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_smoke_run_writes_every_output(smoke_workdir):
    for name in ("teacher.keras", "student.keras", "metrics.json", "config.json", "flags.txt", "run.png",
                 "teacher.png", "history_student.csv", "history_teacher.csv", "student/saved_model.pb",
                 "student/akd_tf.json"):
        assert os.path.exists(os.path.join(smoke_workdir, name)), name
    assert os.listdir(os.path.join(smoke_workdir, "tensorboard", "student"))
    metrics = json.load(open(os.path.join(smoke_workdir, "metrics.json")))
    assert metrics["method"] == "akd" and metrics["num_examples"] == {"train": 512, "validation": 256, "test": 512}
    assert set(metrics["phases"]) == {"phase1", "phase2"}
    assert metrics["phases"]["phase1"]["epochs"] == 2 and metrics["phases"]["phase2"]["epochs"] == 1
    for who in ("teacher", "student"):
        assert 0.0 <= metrics[who]["test_accuracy"] <= 1.0
    assert metrics["student"]["params"] == 13_082
    flags_txt = open(os.path.join(smoke_workdir, "flags.txt")).read()
    assert "--student_net=plane2" in flags_txt and "--max_temperature=2" in flags_txt


def test_saved_model_matches_the_keras_student(smoke_workdir):
    student = keras.models.load_model(os.path.join(smoke_workdir, "student.keras"))
    exported = tf.saved_model.load(os.path.join(smoke_workdir, "student"))
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(exported.serve(x).numpy(), student.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    meta = json.load(open(os.path.join(smoke_workdir, "student", "akd_tf.json")))
    assert meta["dataset"] == "cifar10" and meta["num_classes"] == 10 and meta["input_shape"] == [32, 32, 3]


def test_smoke_history_follows_the_schedule(smoke_workdir):
    import csv

    rows = list(csv.DictReader(open(os.path.join(smoke_workdir, "history_student.csv"))))
    assert [float(r["temperature"]) for r in rows] == [2.0, 1.0, 1.0]
    assert [float(r["phase"]) for r in rows] == [1.0, 1.0, 2.0]
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx([0.01, 0.001, 0.01])


@pytest.mark.parametrize("args,message", [
    (["--phase1_epochs=3", "--max_temperature=10"], "phase1_epochs=3, max_temperature=10"),
    (["--teacher=/no/such/teacher.keras"], "--teacher file not found. Received: '/no/such/teacher.keras'"),
    (["--batch_size=0"], "batch_size=0"),
])
def test_bad_input_fails_fast_with_one_line(tmp_path, args, message):
    proc = _main("--flagfile=configs/smoke.flags", f"--workdir={tmp_path}", *args, timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "teacher.keras")


def test_unknown_network_is_refused_by_the_flag_parser(tmp_path):
    proc = _main("--flagfile=configs/smoke.flags", f"--workdir={tmp_path}", "--student_net=resnet9", timeout=120)
    assert proc.returncode != 0 and "resnet9" in proc.stderr


def test_keras_api_example_runs():
    proc = subprocess.run(
        [sys.executable, "examples/keras_api.py", "--train_size=256", "--teacher_epochs=1", "--phase1_epochs=2",
         "--phase2_epochs=1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "AKD student" in proc.stdout and "Phase 2 (hard labels)" in proc.stdout
