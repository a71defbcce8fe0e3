"""benchmarks.cifar_study: its table parts that need no run, and the study end to end on real CIFAR-10 images (its
runs, a study given a teacher, the views cache shared by the methods of a seed)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import cli_cases
from benchmarks.cifar_study import runs_cpus

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

AVX2 = {"cpu": "AMD EPYC", "cpu_units": ["avx2"], "cores": 2}
AVX512 = {"cpu": "AMD EPYC", "cpu_units": ["avx2", "avx512f"], "cores": 2}


def test_runs_cpus_groups_runs_by_cpu_in_study_order_and_names_unrecorded_ones():
    methods = {"kd": {"seeds": [0, 1], "machine": [AVX512, AVX2]},
               "akd": {"seeds": [0, 1], "machine": [None, AVX2]},
               "takd": {"seeds": [0], "machine": [None]}}  # records written before runs' CPUs were kept
    assert runs_cpus(methods) == ("CPU of each run (the attempt that finished it): "
                                  "AMD EPYC (avx2, avx512f), 2 cores: kd_seed0; "
                                  "AMD EPYC (avx2), 2 cores: kd_seed1, akd_seed1; "
                                  "not recorded: akd_seed0, takd_seed0.")


# The study runner on a few hundred images (both tests below).
TINY_STUDY = ["--flagfile=configs/study_cpu.flags", "--train_size=256", "--validation_size=128", "--test_size=128",
              "--teacher_net=resnet8", "--assistant_net=plane2", "--student_net=plane2", "--teacher_epochs=2",
              "--phase1_epochs=2", "--phase2_epochs=1", "--max_temperature=2", "--teacher_views=2",
              "--learning_rate=0.01"]


# The heavy tier (`pytest -m slow`): five TensorFlow starts. A study given a teacher is checked by the default run
# (the test after this one).
@pytest.mark.slow
def test_study_runner_end_to_end(tmp_path):
    """The study on a few hundred images: teacher, assistant and two TAKD seeds, the table, the JSON and both
    plots."""
    out = tmp_path / "study"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.cifar_study", *TINY_STUDY, f"--workdir={tmp_path / 'runs'}",
         f"--output={out}", "--seeds=0,1", "--methods=takd"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "study.json").read_text())
    assert set(summary["methods"]) == {"takd"}
    for method in summary["methods"].values():
        assert len(method["test_top1"]) == 2 and method["epochs"] == 3
        mean, std = method["test_top1_mean_std"]
        assert mean == pytest.approx(np.mean(method["test_top1"])) and std >= 0
    assert summary["teacher"]["net"] == "resnet8" and summary["assistant"]["net"] == "plane2"
    table = (tmp_path / "study.md").read_text()
    assert "| TAKD |" in table and "88.47" in table
    takd_flags = (tmp_path / "runs" / "takd_seed1" / "study.flags").read_text().splitlines()
    assert f"--assistant={tmp_path / 'runs' / 'assistant' / 'student.keras'}" in takd_flags
    for png in ("study_val_accuracy.png", "study_schedule.png"):
        assert (tmp_path / png).stat().st_size > 10_000


def test_a_study_given_a_teacher_runs_the_ablation_without_an_assistant(tmp_path, smoke_workdir):
    """A study given a teacher and an assistant (as the shipped teacher is given), with the phase-2 restart
    ablation and no TAKD run: nothing is trained but the students, the assistant reaches no run and the table names
    none, the restart reaches every student, and a labels-only run (scratch) is run without teacher views. (A
    finished run reused when a study starts again, and runs shared out by processes of one study:
    tests/test_study_runs.py.)"""
    given = {"teacher": os.path.join(smoke_workdir, "teacher.keras"),
             "assistant": os.path.join(smoke_workdir, "student.keras")}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.cifar_study", *TINY_STUDY, f"--workdir={tmp_path / 'ablation'}",
         f"--output={tmp_path / 'ablation_study'}", "--seeds=0", "--methods=scratch,kd", f"--teacher={given['teacher']}",
         f"--assistant={given['assistant']}", "--phase2_learning_rate=0.004"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trained = sorted(line.split("] ")[1].split(":")[0] for line in proc.stdout.splitlines()
                     if " -m akd_tf.main --flagfile=" in line)
    assert trained == ["kd_seed0", "scratch_seed0"], proc.stdout[-3000:]
    assert sorted(os.listdir(tmp_path / "ablation")) == ["kd_seed0", "scratch_seed0"]
    flagfiles = {m: (tmp_path / "ablation" / f"{m}_seed0" / "study.flags").read_text() for m in ("scratch", "kd")}
    assert all("--assistant=" not in text and f"--teacher={given['teacher']}" in text for text in flagfiles.values())
    assert all("--phase2_learning_rate=0.004" in text for text in flagfiles.values())
    assert flagfiles["scratch"].rstrip().splitlines()[-1] == "--teacher_views=0"
    assert "--teacher_views=0" not in flagfiles["kd"]
    summary = json.loads((tmp_path / "ablation_study.json").read_text())
    assert summary["teacher"]["given"] == given["teacher"] and summary["teacher"]["net"] == "resnet8"
    assert summary["assistant"] is None
    assert set(summary["methods"]) == {"scratch", "kd"} and all(m["epochs"] == 3 for m in summary["methods"].values())
    table = (tmp_path / "ablation_study.md").read_text()
    assert "given: `" in table and "Teacher resnet8 " in table and "TAKD assistant" not in table
    assert "| Hinton KD |" in table and "| scratch (labels only) |" in table
    assert "CPU of each run (the attempt that finished it): " in table and "scratch_seed0, kd_seed0." in table
    assert all(m["machine"][0]["cores"] >= 1 for m in summary["methods"].values())
    assert (tmp_path / "ablation_study_val_accuracy.png").stat().st_size > 10_000


def test_views_cache_is_shared_by_methods_of_one_seed(tmp_path):
    """--teacher_views_cache: a KD and an AKD run of one seed compute the teacher's views once (the AKD run
    reads the KD run's file, untouched); another seed makes its own; no workdir keeps a copy. The given teacher's
    test figures are computed once for all seeds."""
    keras.utils.set_random_seed(0)
    teacher = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    teacher.save(tmp_path / "teacher.keras")
    cache = tmp_path / "views"
    common = ["--flagfile=configs/smoke.flags", f"--teacher={tmp_path / 'teacher.keras'}", "--teacher_views=2",
              f"--teacher_views_cache={cache}", "--train_size=128", "--validation_size=32", "--test_size=32",
              "--max_temperature=1", "--phase1_epochs=1", "--phase2_epochs=1", "--verbose=0"]
    results = cli_cases.run_in_subprocess("akd_tf.main", {  # one interpreter, the runs in this order
        "kd": common + ["--method=kd", "--seed=0", f"--workdir={tmp_path / 'kd'}"],
        "akd": common + ["--method=akd", "--seed=0", f"--workdir={tmp_path / 'akd'}"],
        "kd_seed1": common + ["--method=kd", "--seed=1", f"--workdir={tmp_path / 'kd_seed1'}"],
    }, str(tmp_path), ROOT)
    assert all(r["returncode"] == 0 for r in results.values()), {k: r["stderr"][-2000:] for k, r in results.items()}
    assert len(os.listdir(cache)) == 3  # views of two seeds, one file of figures
    (first,) = [name for name in os.listdir(cache) if name.startswith("teacher_views_") and
                f"read from {cache / name}" in results["akd"]["stderr"]]
    (figures,) = [name for name in os.listdir(cache) if name.startswith("teacher_test_")]
    # Written by the first run and not rewritten since: the later runs read them.
    first_done = os.stat(tmp_path / "kd" / "metrics.json").st_mtime_ns
    assert all(os.stat(cache / name).st_mtime_ns <= first_done for name in (first, figures))
    read = f"Teacher test figures read from {cache / figures}"
    assert read not in results["kd"]["stderr"]
    assert read in results["akd"]["stderr"] and read in results["kd_seed1"]["stderr"]
    teacher = json.load(open(tmp_path / "kd" / "metrics.json"))["teacher"]
    assert json.loads((cache / figures).read_text()) == {k: teacher[k] for k in ("test_accuracy", "test_loss")}
    for workdir in ("akd", "kd_seed1"):
        assert json.load(open(tmp_path / workdir / "metrics.json"))["teacher"] == teacher
    with np.load(cache / first) as views:
        assert views["views"].shape == (2, 128, 10) and views["validation"].shape == (32, 10)
    for workdir in ("kd", "akd", "kd_seed1"):
        assert (tmp_path / workdir / "metrics.json").exists()
        assert not [f for f in os.listdir(tmp_path / workdir) if f.startswith("teacher_views")]
