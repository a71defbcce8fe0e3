"""benchmarks.glue_study end to end on tiny random BERTs and 64 real STS-B pairs: a teacher run, students truncated
from it, Hinton KD skipped on a regression task, teacher logits computed once, the table, and a second start that reuses every finished run."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import glue_study

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = """--dataset=glue/{task}
--teacher_net=bert_l2_h64
--student_init=truncate:1
--teacher_vocabulary_size=600
--train_size=64
--validation_size=32
--test_size=32
--sequence_length=24
--teacher_epochs=2
--max_temperature=2
--phase1_epochs=2
--phase2_epochs=1
--optimizer=adamw
--learning_rate=0.001
--teacher_learning_rate=0.002
--weight_decay=0
--lr_schedule=linear
--verbose=0
"""


@pytest.mark.slow  # four TensorFlow starts with BERT graphs, ~2 min of the 2 cores: `pytest -m slow`
def test_glue_study_runs_teacher_and_students_per_seed(tmp_path):
    (tmp_path / "stsb.flags").write_text(TINY.format(task="stsb"))
    command = [sys.executable, "-m", "benchmarks.glue_study", f"--config={tmp_path}/{{task}}.flags", "--tasks=stsb",
               "--seeds=0,1", "--methods=kd,akd", f"--workdir={tmp_path}/study", f"--output={tmp_path}/out",
               f"--records={tmp_path}/records"]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Hinton KD has no meaning on a regression task: the study skips it and runs AKD only.
    assert sorted(os.listdir(tmp_path / "study" / "stsb")) == ["akd_seed0", "akd_seed1", "logits", "teacher"]
    # The teacher is the architecture fine-tuned alone; every student starts from its first layer and reads it.
    teacher_flags = (tmp_path / "study" / "stsb" / "teacher" / "study.flags").read_text()
    assert "--method=finetune" in teacher_flags and "--student_net=bert_l2_h64" in teacher_flags
    student_flags = (tmp_path / "study" / "stsb" / "akd_seed1" / "study.flags").read_text().splitlines()
    assert f"--teacher={tmp_path}/study/stsb/teacher/student.keras" in student_flags and "--seed=1" in student_flags
    # The teacher's logits are computed by the first AKD run and read by the second.
    assert len(os.listdir(tmp_path / "study" / "stsb" / "logits")) == 1
    assert "Teacher logits read from" not in (tmp_path / "study" / "stsb" / "akd_seed0" / "study.log").read_text()
    assert "Teacher logits read from" in (tmp_path / "study" / "stsb" / "akd_seed1" / "study.log").read_text()
    result = json.load(open(tmp_path / "out.json"))
    (task,) = result["tasks"]
    assert task["metric"] == "pearson" and set(task["methods"]) == {"akd"}
    assert task["student"]["net"] == "bert_l2_h64_first1" and task["student"]["params"] < task["teacher"]["params"]
    m = task["methods"]["akd"]
    assert m["seeds"] == [0, 1] and len(m["dev"]) == 2 and -100 <= min(m["dev"]) <= max(m["dev"]) <= 100
    per_run = [json.load(open(tmp_path / "study" / "stsb" / f"akd_seed{s}" / "metrics.json")) for s in (0, 1)]
    assert m["dev"] == [100 * r["student"]["dev"]["dev"]["pearson"] for r in per_run]
    table = (tmp_path / "out.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| STS-B (Pearson, 64 train)"))
    assert f"{task['teacher']['dev']:.2f}" in row and " — |" in row and "92.3 / 88.5 / 88.86 / 89.01" in row
    assert row.split(" | ")[2] == "—"  # a regression task has no majority class
    spearman = next(line for line in table.splitlines() if line.startswith("| STS-B (Spearman)"))
    akd = [100 * r["student"]["dev"]["dev"]["spearman"] for r in per_run]
    assert f"({akd[0]:.1f}, {akd[1]:.1f})" in spearman and "92.3" not in spearman
    assert (tmp_path / "out.png").stat().st_size > 10_000
    # Each run's record is kept without its model (text models are tens of MB), the teacher's too.
    assert sorted(os.listdir(tmp_path / "records" / "stsb")) == ["akd_seed0", "akd_seed1", "teacher"]
    kept = sorted(os.listdir(tmp_path / "records" / "stsb" / "akd_seed1"))
    assert "student.keras" not in kept and {"metrics.json", "study.flags", "study_run.json"} <= set(kept)
    # A second study (another workdir) with the first one's teacher and records trains nothing.
    again = [*command[:-3], f"--workdir={tmp_path}/again", f"--output={tmp_path}/again",
             f"--teacher_workdir={tmp_path}/study/{{task}}/teacher", f"--records={tmp_path}/records"]
    proc = subprocess.run(again, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "stsb/teacher: finished before" in proc.stdout and proc.stdout.count("its record is in") == 2
    assert json.load(open(tmp_path / "again.json"))["tasks"][0]["methods"]["akd"]["dev"] == m["dev"]


def _task(metric_values):
    """A summarised task as `glue_study._summarise` writes it, with ``metric_values[method]`` per seed."""
    return {
        "task": "rte", "metric": "accuracy", "num_examples": {"train": 2240}, "majority": {"accuracy": 0.5},
        "teacher": {"net": "t", "params": 30, "dev": 60.0, "dev_all_metrics": {"accuracy": 0.6}},
        "student": {"net": "s", "params": 10}, "epochs": 9, "paper": glue_study.PAPER["rte"], "wall_time_s": 600,
        "cpus_per_run": [None], "resumed_runs": [],
        "methods": {m: {"dev": [100 * v for v in vs], "dev_all_metrics": [{"accuracy": v} for v in vs]}
                    for m, vs in metric_values.items()},
    }


def test_table_has_a_gap_column_for_each_pair_of_methods_run():
    task = _task({"finetune": [0.50, 0.52], "kd": [0.53, 0.55], "akd": [0.56, 0.56], "ckd": [0.60, 0.58]})
    table, minutes = glue_study._table([task], "cmd", ["finetune", "kd", "akd", "ckd"])
    header, _, row = table.splitlines()[2:5]
    assert header.split(" | ")[3:11] == ["fine-tuned student", "Hinton KD", "Annealing-KD", "Continuation-KD",
                                          "AKD − fine-tune", "AKD − KD", "CKD − KD", "CKD − AKD"]
    cells = row.split(" | ")
    assert cells[6] == "59.00 ± 1.41 (60.0, 58.0)"  # CKD: mean ± sample std, then each seed
    assert cells[7:11] == ["+5.00", "+2.00", "+5.00", "+3.00"]  # 56-51, 56-54, 59-54, 59-56
    assert cells[11] == "86.3 / 67.9 / 71.11 / 73.64" and minutes == 10
    assert "2 seeds per method" in table
    # Without CKD in the study its gap columns go, as do those of a method the study did not run.
    table, _ = glue_study._table([task], "cmd", ["kd", "akd"])
    assert "CKD" not in table and "AKD − fine-tune" not in table and "| AKD − KD |" in table
