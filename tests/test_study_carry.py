"""benchmarks/study_carry.sh: an unfinished study's checkpoints and teacher views go to the work tree and come
back on a machine without them; the last attempt of a run without heartbeats is sealed at its last write first."""

import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _carry(action, runs, carry):
    env = {**os.environ, "AKD_RUNS": str(runs), "AKD_CARRY": str(carry)}
    done = subprocess.run(["bash", "benchmarks/study_carry.sh", action], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_save_then_restore_on_a_new_machine(tmp_path):
    runs, carry = tmp_path / "home" / "akd_runs", tmp_path / "repo" / ".study_carry"
    run = runs / "study_long" / "kd_seed0"
    (run / "checkpoints").mkdir(parents=True)
    (run / "tensorboard").mkdir()
    (run / "checkpoints" / "state.weights.h5").write_bytes(b"\0" * 1000)
    (run / "study_attempts.json").write_text('[{"started": 1.0}]')  # no heartbeat: an older runner
    (run / "history_student.csv").write_text("epoch,loss\n0,1.0\n")
    (run / "tensorboard" / "events.out").write_text("not carried")
    (runs / "study_long" / "scratch_seed0").mkdir()
    (runs / "study_long" / "scratch_seed0" / "student.keras").write_bytes(b"model: not carried")
    (runs / "teacher_views").mkdir()
    (runs / "teacher_views" / "teacher_views_0123.npz").write_bytes(b"views")
    (runs / "teacher_views" / "teacher_views_0123.npz.lock").write_text("12345")
    os.utime(run / "history_student.csv", (1_000_000, 1_000_000))

    last_write = max(p.stat().st_mtime for p in run.rglob("*") if p.is_file() and p.name != "study_attempts.json")
    out = _carry("save", runs, carry)
    assert "saved" in out and f"sealed the last attempt of {run}" in out
    kept = sorted(str(p.relative_to(carry)) for p in carry.rglob("*") if p.is_file())
    assert kept == ["study_long/kd_seed0/checkpoints/state.weights.h5", "study_long/kd_seed0/history_student.csv",
                    "study_long/kd_seed0/study_attempts.json", "teacher_views/teacher_views_0123.npz"]

    # A new machine has none of $RUNS; after a restore the run resumes from its checkpoint.
    os.rename(tmp_path / "home", tmp_path / "old_home")
    _carry("restore", runs, carry)
    assert (run / "checkpoints" / "state.weights.h5").read_bytes() == b"\0" * 1000
    assert json.loads((run / "study_attempts.json").read_text()) == [{"started": 1.0, "alive": last_write}]
    assert os.path.getmtime(run / "history_student.csv") == 1_000_000
    assert not (run / "tensorboard").exists()

    # A machine that went on meanwhile keeps its own newer files.
    (run / "history_student.csv").write_text("epoch,loss\n0,1.0\n1,0.8\n")
    _carry("restore", runs, carry)
    assert (run / "history_student.csv").read_text().endswith("1,0.8\n")


def test_nothing_to_save_or_restore_is_said_not_failed(tmp_path):
    assert "nothing to save" in _carry("save", tmp_path / "none", tmp_path / "carry")
    assert "nothing to restore" in _carry("restore", tmp_path / "runs", tmp_path / "carry")
