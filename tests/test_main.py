"""The CLI end to end: the smoke config on the real CIFAR-10, and early, one-line errors."""

import json
import os
import re
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import cli_cases

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


@pytest.fixture(scope="module")
def cli_runs(smoke_workdir, tmp_path_factory):
    """The CLI cases below, run in one interpreter (one TensorFlow start), in this order."""
    tmp_path = tmp_path_factory.mktemp("cli_runs")
    copies = {name: tmp_path / name for name in ("bad_flag", "overwritten")}
    for workdir in copies.values():
        shutil.copytree(smoke_workdir, workdir)
        (workdir / "my_notes.txt").write_text("kept")
    teacher = os.path.join(smoke_workdir, "teacher.keras")
    smoke = "--flagfile=configs/smoke.flags"
    before = open(os.path.join(smoke_workdir, "metrics.json")).read()
    results = cli_cases.run_in_subprocess("akd_tf.main", {
        "finished": [smoke, f"--workdir={smoke_workdir}"],
        # A bad flag with --overwrite deletes nothing: every check runs before the old outputs are removed.
        "bad_flag": [smoke, f"--workdir={copies['bad_flag']}", "--overwrite", "--phase2_epochs=0"],
        "overwritten": [smoke, f"--workdir={copies['overwritten']}", "--overwrite", f"--teacher={teacher}"],
        "diverging": [smoke, f"--workdir={tmp_path / 'diverging'}", "--learning_rate=1e30", f"--teacher={teacher}"],
        "ckd": [smoke, f"--workdir={tmp_path / 'ckd'}", "--method=ckd", f"--teacher={teacher}"],
        "ckd_bad_margin": [smoke, f"--workdir={tmp_path / 'ckd_bad'}", "--method=ckd", "--ckd_margin=-1"],
    }, str(tmp_path), ROOT)
    return results, {**copies, "diverging": tmp_path / "diverging", "teacher": teacher, "before": before,
                     "ckd": tmp_path / "ckd"}


def test_continuation_kd_runs_from_the_smoke_config(cli_runs):
    results, paths = cli_runs
    assert results["ckd"]["returncode"] == 0, results["ckd"]["stderr"][-3000:]
    assert "student plane2 (ckd): test accuracy" in results["ckd"]["stdout"]
    metrics = json.load(open(paths["ckd"] / "metrics.json"))
    assert metrics["method"] == "ckd" and set(metrics["phases"]) == {"training", "schedule"}
    schedule = metrics["phases"]["schedule"]
    assert schedule["temperature"] == [2, 1, 1] and schedule["label_weight"] == pytest.approx([0, 4 / 9, 8 / 9])
    assert (paths["ckd"] / "run.png").is_file() and (paths["ckd"] / "student" / "saved_model.pb").is_file()
    bad = results["ckd_bad_margin"]
    assert bad["returncode"] == 2 and bad["stderr"].strip().splitlines()[-1] == (
        "akd_tf.main: error: --ckd_margin must be a number >= 0. Received: --ckd_margin=-1.0")


def test_diverging_run_stops_with_a_clear_message(cli_runs):
    results, paths = cli_runs
    proc = results["diverging"]
    assert proc["returncode"] == 3, proc["stderr"][-3000:]
    error = [line for line in proc["stderr"].splitlines() if line.startswith("akd_tf.main: error: ")]
    # inf or nan first, as float rounding decides: the message names which.
    assert len(error) == 1 and re.search(r"student training diverged: the training loss became (nan|inf) at epoch 1",
                                         error[0]), error
    assert "--learning_rate" in error[0]
    assert not (paths["diverging"] / "metrics.json").exists() and not (paths["diverging"] / "student.keras").exists()


def test_a_finished_workdir_is_kept_unless_overwrite(cli_runs, smoke_workdir):
    results, paths = cli_runs
    before = paths["before"]
    finished, bad_flag, overwritten = results["finished"], results["bad_flag"], results["overwritten"]
    assert finished["returncode"] == 2 and "holds a finished run (metrics.json). Pass --overwrite" in finished["stderr"]
    assert open(os.path.join(smoke_workdir, "metrics.json")).read() == before
    assert bad_flag["returncode"] == 2 and "Received: --phase2_epochs=0" in bad_flag["stderr"], bad_flag["stderr"][-2000:]
    assert (paths["bad_flag"] / "metrics.json").read_text() == before
    assert (paths["bad_flag"] / "history_teacher.csv").exists()
    assert overwritten["returncode"] == 0, overwritten["stderr"][-3000:]
    metrics = json.load(open(paths["overwritten"] / "metrics.json"))
    assert metrics["teacher"]["source"] == paths["teacher"]
    assert (paths["overwritten"] / "my_notes.txt").read_text() == "kept"
    assert not (paths["overwritten"] / "history_teacher.csv").exists()  # the old run's files are gone


def test_last_line_warns_of_a_glue_student_at_the_majority_class_floor():
    from akd_tf.main import summary_line

    metrics = {"metric": "matthews", "majority_class": {"class": 1, "accuracy": 0.6913, "matthews": 0.0},
               "student": {"net": "bert", "dev": {"dev": {"accuracy": 0.6913, "matthews": 0.0}},
                           "at_or_below_majority_class": True}}
    line = summary_line(metrics, "akd", "runs/x")
    assert line.startswith("student bert (akd): dev accuracy 0.6913, matthews 0.0000 — at or below the majority-class "
                           "floor (matthews 0.0000, every example given class 1): the student has not learnt the task")
    metrics["student"]["at_or_below_majority_class"] = False
    assert "floor" not in summary_line(metrics, "akd", "runs/x")
    assert summary_line({"student": {"net": "resnet8", "test_accuracy": 0.8}}, "kd", "w") == (
        "student resnet8 (kd): test accuracy 0.8000; files in w")


def test_library_errors_are_shown_in_flag_terms():
    from akd_tf import main

    message = ("`assistant_path` is read by method='takd' only. Received: method='akd', assistant_path='a.keras', "
               "teacher_views=-1. Pass `overwrite` or choose another `workdir`; keras.Model(x=1) stays")
    assert main.in_flag_terms(message) == (
        "--assistant is read by --method='takd' only. Received: --method='akd', --assistant='a.keras', "
        "--teacher_views=-1. Pass --overwrite or choose another --workdir; keras.Model(x=1) stays")
    assert main.in_flag_terms("flag --student_net=resnet9: bad") == "flag --student_net=resnet9: bad"  # absl's own


FULL_DISK = """
import errno, sys
import numpy as np
from absl import app
from akd_tf import main

real = np.savez
def savez(path, **arrays):  # the disk fills up half-way through the checkpoint of epoch 2
    if "epoch-000002" in str(path) and str(path).endswith("random.npz"):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    return real(path, **arrays)
np.savez = savez
sys.argv = ["akd_tf.main", *sys.argv[1:]]
app.run(main.main, flags_parser=main.parse_flags)
"""


def test_a_full_disk_stops_with_one_line_and_the_same_command_resumes(smoke_workdir, tmp_path):
    import subprocess
    import sys

    workdir = tmp_path / "run"
    args = ["--flagfile=configs/smoke.flags", f"--teacher={smoke_workdir}/teacher.keras", f"--workdir={workdir}",
            "--verbose=2"]
    full = subprocess.run([sys.executable, "-c", FULL_DISK, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert full.returncode == 4, full.stderr[-3000:]
    last = full.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"akd_tf\.main: error: no space left on the device of {workdir} \([\d,.]+ MB free\): free "
                        r"space and run the same command again; the run resumes from its last checkpoint\.", last)
    assert "Traceback" not in full.stderr
    # The half-written checkpoint of epoch 2 is not taken for one: the student resumes after epoch 1.
    assert sorted(os.listdir(workdir / "checkpoints" / "student")) == ["epoch-000001"]
    again = subprocess.run([sys.executable, "-m", "akd_tf.main", *args], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming student training at epoch 2/3 from its checkpoint." in again.stdout
    assert "No checkpoint of the student yet: training it from epoch 1/3." in full.stdout
    # Quiet start-up: the libraries' INFO lines stay out, the tool's own stay in.
    for line in ("Load dataset info from", "Constructing tf.data.Dataset", "Assets written to"):
        assert line not in again.stderr, line
    assert "Data cifar10: {'train': 512" in again.stderr
    assert not [name for name in os.listdir(workdir) if ".tmp-" in name]
    # No false alarm on resume: the optimizer is built before its variables are restored.
    assert "Skipping variable loading" not in again.stdout + again.stderr


def test_loading_the_saved_models_warns_of_nothing(smoke_workdir):
    import warnings

    for name in ("teacher.keras", "student.keras"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            keras.models.load_model(os.path.join(smoke_workdir, name))
        assert not [str(w.message) for w in caught], name  # saved without optimizer state: nothing to skip


@pytest.mark.parametrize("signum, name", [(2, "Ctrl-C"), (15, "SIGTERM")])
def test_ctrl_c_or_sigterm_stops_in_seconds_with_one_line(smoke_workdir, tmp_path, signum, name):
    import subprocess
    import sys
    import time

    workdir = tmp_path / "run"
    import signal

    # Ctrl-C's default: a process started with SIGINT ignored (as pytest-xdist's workers start theirs, and shells
    # their background jobs) keeps ignoring it, and Python then raises no KeyboardInterrupt.
    proc = subprocess.Popen([sys.executable, "-u", "-m", "akd_tf.main", "--flagfile=configs/smoke.flags",
                             f"--teacher={smoke_workdir}/teacher.keras", f"--workdir={workdir}", "--verbose=2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:  # the student's second epoch has begun: its first is a checkpoint
        if line.startswith("Epoch 2/3"):
            break
    sent = time.monotonic()
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 10
    assert proc.returncode == 128 + signum, stderr[-3000:]
    # The step in progress finishes and is checkpointed (or the epoch, when the signal lands in its validation).
    lines = stderr.strip().splitlines()
    assert lines[-2].startswith("akd_tf.main: stopping after this training step, with a checkpoint"), stderr[-2000:]
    assert re.fullmatch(rf"akd_tf\.main: stopped by {name}; the same command goes on: the student resumes "
                        r"(at epoch 2, after step \d|after its epoch 2)\.", lines[-1]), stderr[-2000:]
    assert "Traceback" not in stderr
    if signum != signal.SIGTERM:
        return
    resumed = subprocess.run([sys.executable, "-m", "akd_tf.main", "--flagfile=configs/smoke.flags",
                              f"--teacher={smoke_workdir}/teacher.keras", f"--workdir={workdir}"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"Resuming student training at epoch (2/3, after step \d of 8|3/3) from its checkpoint",
                     resumed.stdout), resumed.stdout[-2000:]
