"""Cached teacher views (``--teacher_views``) and TAKD (``--method=takd``) on real CIFAR-10 images."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import akd_tf
import cli_cases
from akd_tf import data
from akd_tf.batch_keys import STUDENT_INPUTS, TEACHER_LOGITS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N, K, BATCH = 48, 3, 16


@pytest.fixture(scope="module")
def splits():
    return data.load("cifar10", batch_size=BATCH, validation_size=16, train_size=N, test_size=16, shuffle_seed=3)


def _batches(dataset):
    return [({k: v.numpy() for k, v in x.items()}, y.numpy()) for x, y in dataset]


def test_views_pair_each_image_with_its_own_logits(splits):
    views = np.concatenate([x.numpy() for x in splits.teacher_views(K)])
    assert views.shape == (K * N, 32, 32, 3)
    # Golden logits that name their view and image: logits[v, i] = (1000 v + i, …).
    logits = np.zeros((K, N, 10), np.float32)
    logits[..., 0] = 1000 * np.arange(K)[:, None] + np.arange(N)[None, :]
    cached = splits.with_teacher_logits(logits, distill_epochs=2 * K)
    epochs = [_batches(cached.train_epochs(e, e + 1)) for e in range(2 * K + 1)]
    for e, batches in enumerate(epochs[:2 * K]):
        codes = np.concatenate([x[TEACHER_LOGITS][:, 0] for x, _ in batches]).astype(int)
        images = np.concatenate([x[STUDENT_INPUTS] for x, _ in batches])
        assert sorted(codes // 1000) == [e % K] * N  # epoch e shows view e mod K …
        assert sorted(codes % 1000) == list(range(N))  # … of every image once
        np.testing.assert_array_equal(images, views[(codes // 1000) * N + codes % 1000])  # the view its logits are of
    first, again = (np.concatenate([x[TEACHER_LOGITS][:, 0] for x, _ in epochs[e]]) for e in (0, K))
    assert not np.array_equal(first, again)  # same view, new order
    # After the distillation epochs: fresh augmentation and zeros (AKD's label phase never reads them).
    last = epochs[2 * K]
    assert all(not x[TEACHER_LOGITS].any() for x, _ in last)
    plain = np.concatenate([x.numpy() for x, _ in splits.train_epochs(2 * K, 2 * K + 1)])
    np.testing.assert_array_equal(np.concatenate([x[STUDENT_INPUTS] for x, _ in last]), plain)


def test_views_do_not_depend_on_the_global_seed(splits):
    """Seed 0 once broke the epoch shuffle (TF compares (global, op) seeds with (0, 0) in Python)."""
    orders = []
    for global_seed in (0, 1):
        keras.utils.set_random_seed(global_seed)
        orders.append(np.concatenate([y.numpy() for _, y in splits.train_epochs(0, 2)]))
    np.testing.assert_array_equal(*orders)


def test_validation_batches_carry_their_logits(splits):
    validation_logits = np.arange(16 * 10, dtype=np.float32).reshape(16, 10)
    cached = splits.with_teacher_logits(np.zeros((1, N, 10), np.float32), validation_logits)
    plain = _batches(splits.validation.map(lambda x, y: ({STUDENT_INPUTS: x}, y)))
    got = _batches(cached.validation)
    np.testing.assert_array_equal(np.concatenate([x[TEACHER_LOGITS] for x, _ in got]), validation_logits)
    for (xa, ya), (xb, yb) in zip(got, plain):
        np.testing.assert_array_equal(xa[STUDENT_INPUTS], xb[STUDENT_INPUTS])
        np.testing.assert_array_equal(ya, yb)
    with pytest.raises(ValueError, match=r"shape \[views, 48, 10\]"):
        splits.with_teacher_logits(np.zeros((2, N - 1, 10), np.float32))


def _net(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, strides=2),
                             keras.layers.BatchNormalization(), keras.layers.ReLU(),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])


def test_phase1_on_cached_views_equals_the_teacher_in_the_loop(splits):
    """Same loss, same schedule: the cached logits are exactly what the teacher computes in the step."""
    teacher = _net(1)
    logits = teacher.predict(splits.teacher_views(K), verbose=0).reshape(K, N, 10)
    cached = splits.with_teacher_logits(logits, distill_epochs=K)
    live = cached.train_epochs(0, K).map(lambda x, y: (x[STUDENT_INPUTS], y))  # same images, teacher runs
    weights = []
    for dataset in (cached.train_epochs(0, K), live):
        model = akd_tf.AnnealingKD(teacher=teacher, student=_net(2), max_temperature=K)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
        history = model.fit(dataset, epochs=K, steps_per_epoch=splits.steps_per_epoch, verbose=0, shuffle=False,
                            callbacks=[akd_tf.AnnealingSchedule(K, K)])
        weights.append((history.history["loss"], model.student.get_weights()))
    np.testing.assert_allclose(weights[0][0], weights[1][0], rtol=1e-5)
    for a, b in zip(weights[0][1], weights[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


class _KilledAfter:
    """The teacher, killed (as by the end of a session) when it starts its pass number ``passes + 1``."""

    def __init__(self, model, passes):
        self.model, self.passes, self.name = model, passes, model.name

    def predict(self, dataset, **kwargs):
        if self.passes == 0:
            raise KeyboardInterrupt
        self.passes -= 1
        return self.model.predict(dataset, **kwargs)


def test_a_teacher_pass_killed_between_views_resumes_at_the_view_it_was_in(splits, tmp_path, capsys):
    from types import SimpleNamespace

    from akd_tf.config import Config
    from akd_tf.teacher_views import teacher_view_logits, views_path

    teacher = _net(1)
    run = SimpleNamespace(config=Config(dataset="cifar10", teacher_views=K, batch_size=BATCH, verbose=2), chief=True,
                          out=str(tmp_path))
    path = views_path(run, teacher, "student")
    with pytest.raises(KeyboardInterrupt):
        teacher_view_logits(run, splits, _KilledAfter(teacher, passes=2), "student")
    assert sorted(os.listdir(path + ".parts")) == ["view000.npy", "view001.npy"] and not os.path.exists(path)
    capsys.readouterr()
    # The next attempt runs the teacher over the last view and the validation images only: 2 passes.
    logits, validation = teacher_view_logits(run, splits, _KilledAfter(teacher, passes=2), "student")
    out = capsys.readouterr().out
    assert "2 of them kept from an earlier attempt" in out and "view 3/3 kept: 1/1 views" in out
    assert "view 1/3" not in out and "view 2/3" not in out
    assert not os.path.exists(path + ".parts")
    # The same logits as one pass over all views, in the cached file as returned.
    whole = teacher.predict(splits.teacher_views(K), verbose=0).reshape(K, N, 10)
    np.testing.assert_allclose(logits, whole, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(validation, teacher.predict(splits.validation, verbose=0), rtol=1e-5, atol=1e-5)
    with np.load(path) as saved:
        np.testing.assert_array_equal(saved["views"], logits)
    # A kill between writing the file and removing the parts leaves them: the next run reads the file (no teacher
    # pass) and removes them.
    os.makedirs(path + ".parts")
    np.save(os.path.join(path + ".parts", "view000.npy"), logits[0])
    again, _ = teacher_view_logits(run, splits, _KilledAfter(teacher, passes=0), "student")
    np.testing.assert_array_equal(again, logits)
    assert not os.path.exists(path + ".parts")


def test_takd_trains_an_assistant_once_and_reuses_it(tmp_path, smoke_workdir):
    teacher = os.path.join(smoke_workdir, "teacher.keras")  # given, as a study gives it: not trained again here
    assistant = str(tmp_path / "takd" / "assistant.keras")
    smoke = ["--flagfile=configs/smoke.flags", "--method=takd"]
    results = cli_cases.run_in_subprocess("akd_tf.main", {  # one interpreter, the cases in this order
        "takd": smoke + [f"--workdir={tmp_path / 'takd'}", "--assistant_net=plane2", "--assistant_epochs=2",
                         "--teacher_views=2", f"--teacher={teacher}"],
        # Reused: the student's teacher is the given assistant; no teacher is trained or loaded.
        "reuse": smoke + [f"--workdir={tmp_path / 'reuse'}", f"--assistant={assistant}"],
    }, str(tmp_path), ROOT)
    assert all(r["returncode"] == 0 for r in results.values()), {k: r["stderr"][-3000:] for k, r in results.items()}
    first, second = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("takd", "reuse"))
    assert "Teacher views for the assistant: 2 augmented views x 512 images" in results["takd"]["stdout"]
    assert "Teacher views for the student" in results["takd"]["stdout"]
    assert first["teacher"]["net"] == "resnet8" and first["assistant"]["net"] == "plane2"
    assert first["assistant"]["epochs"] == 2 and 0 <= first["assistant"]["test_accuracy"] <= 1
    assert first["teacher"]["source"] == teacher
    for name in ("assistant.keras", "history_assistant.csv", "teacher_views_assistant.npz",
                 "teacher_views_student.npz"):
        assert os.path.exists(tmp_path / "takd" / name), name
    with np.load(tmp_path / "takd" / "teacher_views_student.npz") as saved:
        assert saved["views"].shape == (2, 512, 10) and saved["validation"].shape == (256, 10)
    assert "teacher" not in second and second["assistant"]["source"] == assistant
    assert not os.path.exists(tmp_path / "reuse" / "teacher.keras")
    assert second["assistant"]["test_accuracy"] == pytest.approx(first["assistant"]["test_accuracy"])


# The study runner on a few hundred images (both tests below).
TINY_STUDY = ["--flagfile=configs/study_cpu.flags", "--train_size=256", "--validation_size=128", "--test_size=128",
              "--teacher_net=resnet8", "--assistant_net=plane2", "--student_net=plane2", "--teacher_epochs=2",
              "--phase1_epochs=2", "--phase2_epochs=1", "--max_temperature=2", "--teacher_views=2",
              "--learning_rate=0.01"]


# The heavy tier (`pytest -m slow`): five TensorFlow starts, ~2 min of the 2 cores. The lanes and the given teacher
# are checked by the default run (the test after this one).
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
