"""benchmarks.recheck: a finished run's saved student and teacher, evaluated again, reproduce the run's record; a
record that does not match its model is caught and named."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from benchmarks import recheck

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TFDS_DATA_DIR": os.environ.get("TFDS_DATA_DIR", os.path.join(ROOT, "..", "shared",
                                                                                      "tensorflow_datasets"))}


def _recheck(*args):
    return subprocess.run([sys.executable, "-m", "benchmarks.recheck", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)


def test_a_run_reproduces_its_record_and_a_doctored_record_is_caught(smoke_workdir, tmp_path):
    study = tmp_path / "study"
    run = study / "akd_seed0"
    shutil.copytree(smoke_workdir, run, ignore=shutil.ignore_patterns("tensorboard"))
    metrics = json.loads((run / "metrics.json").read_text())

    proc = _recheck(f"--runs={study}", f"--output={tmp_path / 'ok'}")  # a study's directory: its runs are found
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "ok.json").read_text())
    assert report["reproduced"] and [m["role"] for m in report["models"]] == ["student", "teacher"]
    student, teacher = report["models"]
    assert student["name"] == "study/akd_seed0" and student["test_examples"] == 512  # the run's own test size
    assert student["top1"] == pytest.approx(100 * metrics["student"]["test_accuracy"], abs=0.05)
    assert teacher["name"] == "study/akd_seed0/teacher.keras"  # trained by the run: read beside its student
    assert teacher["top1"] == pytest.approx(100 * metrics["teacher"]["test_accuracy"], abs=0.05)
    text = (tmp_path / "ok.md").read_text()
    assert "2 of 2 models, all within 0.05 pt" in text.splitlines()[0]
    assert report["machine"]["cores"] >= 1 and f"Machine: {report['machine']['cpu']} (" in text  # as data and as text
    assert "[1/2] study/akd_seed0 (student): " in proc.stdout

    metrics["student"]["test_accuracy"] += 0.01  # one point more than the model gives
    (run / "metrics.json").write_text(json.dumps(metrics))
    proc = _recheck(f"--runs={run}", f"--output={tmp_path / 'off'}")
    assert proc.returncode == 1
    assert "1 differ from their record by more than 0.05 pt: study/akd_seed0." in (tmp_path / "off.md").read_text()


def test_a_path_without_finished_runs_is_refused(tmp_path):
    (tmp_path / "not_a_run").mkdir()
    with pytest.raises(ValueError, match="no finished run .* under '.*not_a_run'"):
        recheck.find_runs([str(tmp_path / "not_a_run")])
    with pytest.raises(ValueError, match="no finished run"):
        recheck.find_runs([str(tmp_path / "typo")])
    glue = tmp_path / "glue_run"  # a finished run without a test top-1 (GLUE records dev metrics)
    (glue / "student").mkdir(parents=True)
    (glue / "student" / "saved_model.pb").write_bytes(b"")
    (glue / "metrics.json").write_text(json.dumps({"dataset": "glue/sst2", "num_examples": {"test": 872},
                                                   "student": {"dev": {"accuracy": 0.9}}}))
    with pytest.raises(ValueError, match="records no test top-1 .* recheck checks image classification runs"):
        recheck.plan(recheck.find_runs([str(glue)]))


def test_table_marks_a_model_not_found_and_rounds_without_negative_zero():
    items = [{"name": "s/a", "role": "student", "test_examples": 10, "recorded": 80.0, "top1": 79.999},
             {"name": "t.keras", "role": "teacher", "test_examples": 10, "recorded": 90.0, "top1": None}]
    text, reproduced = recheck.table(items, 0.05, "now")
    assert reproduced
    assert text.splitlines()[0] == ("Re-evaluated at now UTC: 1 of 2 models (1 not found here), all within 0.05 pt "
                                    "of their recorded test top-1 (largest difference 0.00 pt).")
    assert "| s/a | student | 10 | 80.00 | 80.00 | +0.00 |" in text
    assert "| t.keras | teacher | 10 | 90.00 | not found | — |" in text


def test_a_committed_record_with_its_student_keras_file_is_rechecked(smoke_workdir, tmp_path):
    """What `benchmarks.study_runs` commits of a run (its record and student.keras, no workdir): enough for the
    recheck from a clean clone."""
    from benchmarks import study_runs

    record = tmp_path / "records" / "ckd_seed0"
    record.mkdir(parents=True)
    for name in study_runs.RECORD:
        if os.path.isfile(os.path.join(smoke_workdir, name)):
            shutil.copy2(os.path.join(smoke_workdir, name), record / name)
    assert (record / "student.keras").is_file() and not (record / "student").exists()
    items = recheck.plan(recheck.find_runs([str(tmp_path / "records")]))
    assert items[0]["model"] == str(record / "student.keras")
    recheck.evaluate(items[:1], say=lambda *a, **k: None)
    recorded = 100 * json.loads((record / "metrics.json").read_text())["student"]["test_accuracy"]
    assert items[0]["top1"] == pytest.approx(recorded, abs=0.05)
