"""The shipped teacher's record: one row per learning-rate cycle, read from the files beside the model."""

import os
import shutil
import subprocess
import sys

import pytest

from benchmarks import teacher_record

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "benchmarks", "teachers", "resnet56_cifar10")
CYCLES = [SHIPPED + "_cycle1", SHIPPED + "_cycle2", SHIPPED]


def test_the_shipped_teachers_cycles():
    cycles = [teacher_record.read_cycle(prefix) for prefix in CYCLES]
    assert [c["epochs"] for c in cycles] == [30, 15, 30]
    assert [c["flags"]["learning_rate"] for c in cycles] == ["0.1", "0.02", "0.05"]
    assert cycles[-1]["flags"]["student_init"].endswith("teacher_resnet56_cycle2/student.keras")
    assert round(100 * cycles[-1]["test_accuracy"], 2) == 88.38 and cycles[-1]["params"] == 855770
    text = teacher_record.table(cycles)
    assert "| 3 (shipped) | 30 | 0.05 (linear) | 0.0005 | 128 | float32 | 89.04 % (30) | 88.38 % | 2.6 h | 146 |" in text
    assert "In all: 75 epochs, 9.0 h of wall time" in text


def test_flags_file_values():
    path = os.path.join(ROOT, "benchmarks", "teachers", "resnet56_cifar10_flags.txt")
    values = teacher_record.read_flags(path)
    assert values["deterministic"] is False and values["cache_teacher_logits"] is True
    assert values["method"] == "scratch" and values["batch_size"] == "128"


def test_incomplete_record_is_refused(tmp_path):
    prefix = str(tmp_path / "teacher")
    for suffix in ("_metrics.json", "_flags.txt"):
        shutil.copy(SHIPPED + suffix, prefix + suffix)
    with pytest.raises(ValueError, match=r"missing .*teacher_history_student\.csv"):
        teacher_record.read_cycle(prefix)
    result = subprocess.run([sys.executable, "-m", "benchmarks.teacher_record", f"--cycles={prefix}",
                             f"--output={tmp_path / 'out'}"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "--cycles: " in result.stderr and "missing" in result.stderr
    assert not os.path.exists(tmp_path / "out.md")
