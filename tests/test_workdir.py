"""akd_tf.workdir: which runs a workdir takes (new, the same unfinished run to resume, a finished one only with
overwrite), and what overwrite removes."""

import json
import os

import pytest

from akd_tf import files, workdir
from akd_tf.config import BadInput, Config


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
    # A run saved with a field's old name (kd_alpha = 1 − kd_student_loss_weight) resumes under the new one.
    renamed = {**{k: v for k, v in saved.items() if k != "kd_student_loss_weight"}, "kd_alpha": 0.9}
    (tmp_path / "config.json").write_text(json.dumps(renamed))
    workdir.prepare_workdir(Config(train_size=64), str(tmp_path))
    with pytest.raises(BadInput, match=r"kd_student_loss_weight \(saved 0.1, now 0.2\)"):
        workdir.prepare_workdir(Config(train_size=64, kd_student_loss_weight=0.2), str(tmp_path))
    # A run saved with the recipe's values written out (configs/base.flags did) is the run of their defaults.
    spelled = {**saved, "teacher_learning_rate": 0.1, "validation_size": 5000}
    (tmp_path / "config.json").write_text(json.dumps(spelled))
    workdir.prepare_workdir(Config(train_size=64), str(tmp_path))
    with pytest.raises(BadInput, match=r"teacher_learning_rate \(saved 0.1, now 0.2\)"):
        workdir.prepare_workdir(Config(train_size=64, learning_rate=0.2), str(tmp_path))
    with pytest.raises(BadInput, match=r"validation_size \(saved 5000, now None\)"):
        workdir.prepare_workdir(Config(train_size=64, dataset="folder:photos"), str(tmp_path))
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


def test_kept_progress_names_the_stage_in_progress_not_a_finished_one(tmp_path):
    from akd_tf.workdir import kept_progress

    assert kept_progress(str(tmp_path)) == "no epoch had finished: it starts again"
    (tmp_path / "checkpoints" / "teacher" / "epoch-000200").mkdir(parents=True)
    assert kept_progress(str(tmp_path)) == "the teacher resumes after its epoch 200"
    # The teacher finished (its checkpoints stay until the run ends); the student was killed in its first epoch
    (tmp_path / "teacher.keras").write_text("")
    assert kept_progress(str(tmp_path)) == "the teacher is kept; the next stage starts from its first epoch"
    (tmp_path / "checkpoints" / "student" / "epoch-000003").mkdir(parents=True)
    assert kept_progress(str(tmp_path)) == "the student resumes after its epoch 3"
    (tmp_path / "checkpoints" / "student" / "epoch-000003-step-000180").mkdir(parents=True)
    assert kept_progress(str(tmp_path)) == "the student resumes at epoch 4, after step 180"
