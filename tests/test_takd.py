"""akd_tf.methods.takd: TAKD (``--method=takd``) through the CLI, its assistant trained once and reused."""

import json
import os

import numpy as np
import pytest

import cli_cases

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N, K, BATCH = 48, 3, 16


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
