"""The study runner's bookkeeping: a run killed with its session counts the time it had spent; the cores
runs had (pinned or not) reach the tables."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from benchmarks import study_runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _interrupted_then_finished(workdir, monkeypatch, killed):
    """The record of a run whose first attempt ``killed`` ends (KeyboardInterrupt) and whose second finishes."""
    monkeypatch.setattr(study_runs, "_call", killed)
    with pytest.raises(KeyboardInterrupt):
        study_runs.run_main(str(workdir), ["--method=akd"])
    assert not (workdir / "study_run.json").exists()

    def finishes(command, stdout, stderr):
        (workdir / "metrics.json").write_text(json.dumps({"student": {"dev": 0.5}}))
        (workdir / "history_student.csv").write_text("epoch,loss\n0,1.0\n")
        return 0

    monkeypatch.setattr(study_runs, "_call", finishes)
    return study_runs.run_main(str(workdir), ["--method=akd"])["study"]


def _finishes_in(workdir):
    """A stand-in for the run's subprocess that finishes at once, writing only its metrics."""
    def call(command, stdout, stderr):
        (workdir / "metrics.json").write_text("{}")
        return 0
    return call


def test_a_run_records_the_cores_it_was_pinned_to(tmp_path, monkeypatch):
    workdir = tmp_path / "kd_seed0"
    monkeypatch.setattr(study_runs, "_call", _finishes_in(workdir))
    monkeypatch.setattr(study_runs.os, "sched_getaffinity", lambda pid: {1}, raising=False)
    assert study_runs.run_main(str(workdir), ["--method=kd"])["study"]["cpus"] == 1


@pytest.mark.parametrize("counts, expected", [
    ([4, 4], "4 CPU cores"),
    ([None, 4], "4 CPU cores"),  # records from before cores were recorded: the whole machine
    ([1, 1, None], "1 or 4 CPU cores per run (pinned; the machine has 4)"),
    ([1, 1], "1 CPU core per run (pinned; the machine has 4)"),
    ([2], "2 CPU cores per run (pinned; the machine has 4)"),
])
def test_tables_say_how_many_cores_the_runs_had(monkeypatch, counts, expected):
    monkeypatch.setattr(study_runs.os, "cpu_count", lambda: 4)
    assert study_runs.cores(counts) == expected


def test_usable_cpus_follows_the_affinity_not_the_machine(monkeypatch):
    monkeypatch.setattr(study_runs.os, "sched_getaffinity", lambda pid: {0, 2, 3}, raising=False)
    assert study_runs.usable_cpus() == 3
    monkeypatch.delattr(study_runs.os, "sched_getaffinity")
    monkeypatch.setattr(study_runs.os, "cpu_count", lambda: 8)
    assert study_runs.usable_cpus() == 8


def test_a_finished_run_is_recorded_and_a_new_machine_takes_it_from_the_record(tmp_path, monkeypatch):
    workdir, records = tmp_path / "home" / "kd_seed1", tmp_path / "repo" / "runs" / "kd_seed1"

    def finishes(command, stdout, stderr):
        (workdir / "metrics.json").write_text(json.dumps({"student": {"test_accuracy": 0.8236}}))
        (workdir / "history_student.csv").write_text("epoch,loss,val_accuracy\n0,1.5,0.4\n1,1.0,0.6\n")
        (workdir / "student.keras").write_bytes(b"weights")  # the student, recorded for the recheck
        (workdir / "teacher.keras").write_bytes(b"big weights")  # any other model: never recorded
        return 0

    monkeypatch.setattr(study_runs, "_call", finishes)
    first = study_runs.run_main(str(workdir), ["--method=kd"], records=str(records))
    assert sorted(os.listdir(records)) == ["history_student.csv", "metrics.json", "student.keras", "study.flags",
                                           "study_run.json"]
    recorded = json.loads((records / "study_run.json").read_text())
    assert recorded["machine"]["cores"] >= 1 and "cpu_units" in recorded["machine"]
    assert recorded["commit"] is None or len(recorded["commit"].split("+")[0]) == 40  # the code's checkout

    # The next session's machine: the workdir is gone, the committed record is not. Nothing is trained again.
    shutil.rmtree(tmp_path / "home")

    def must_not_run(command, stdout, stderr):
        raise AssertionError("a recorded run was trained again")

    monkeypatch.setattr(study_runs, "_call", must_not_run)
    again = study_runs.run_main(str(workdir), ["--method=kd"], records=str(records))
    assert again["study"] == first["study"] and again["student"] == {"test_accuracy": 0.8236}
    assert again["history"]["val_accuracy"] == [0.4, 0.6]
    assert (workdir / "metrics.json").exists() and (workdir / "student.keras").read_bytes() == b"weights"
    assert not (workdir / "teacher.keras").exists()


def test_an_unfinished_record_is_not_taken(tmp_path, monkeypatch):
    workdir, records = tmp_path / "home" / "akd_seed0", tmp_path / "runs" / "akd_seed0"
    records.mkdir(parents=True)
    (records / "metrics.json").write_text("{}")  # no study_run.json: not a finished run's record
    calls = []

    def finishes(command, stdout, stderr):
        calls.append(command)
        (workdir / "metrics.json").write_text(json.dumps({"student": {"test_accuracy": 0.5}}))
        return 0

    monkeypatch.setattr(study_runs, "_call", finishes)
    study_runs.run_main(str(workdir), ["--method=akd"], records=str(records))
    assert len(calls) == 1
    assert json.loads((records / "metrics.json").read_text()) == {"student": {"test_accuracy": 0.5}}
    assert (records / "study_run.json").exists()


def test_the_records_directory_is_not_ignored_by_git():
    """The records are committed so that a new machine takes finished runs from them; a .gitignore rule for
    every runs/ folder once kept them out of git without a word."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(root, ".git")):
        pytest.skip("not a git checkout")
    record = "benchmarks/results/runs/study_long/akd_seed0/study_run.json"
    proc = subprocess.run(["git", "check-ignore", "-v", record], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 1, f"git ignores {record}: {proc.stdout.strip()}"


def _finished_record(workdir):
    workdir.mkdir(exist_ok=True)
    (workdir / "metrics.json").write_text(json.dumps({"student": {"test_accuracy": 0.8}}))
    (workdir / "study_run.json").write_text(json.dumps({"wall_time_s": 7.0}))
    (workdir / "history_student.csv").write_text("epoch,loss\n0,1.0\n")


_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
open(sys.argv[1] + ".held", "w").close()
time.sleep(60)
"""


@pytest.fixture
def holder():
    """Starts a process that holds a run's lock (flock), as another process of the same study training it does."""
    started = []

    def hold(lock):
        proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock)])
        started.append(proc)
        while not os.path.exists(f"{lock}.held"):
            assert proc.poll() is None
            time.sleep(0.02)
        return proc

    yield hold
    for proc in started:
        proc.kill()
        proc.wait()


def test_a_run_another_process_is_training_is_skipped_not_trained_twice(tmp_path, monkeypatch, capsys, holder):
    workdir = tmp_path / "kd_seed0"
    holder = holder(tmp_path / "kd_seed0.lock")
    monkeypatch.setattr(study_runs, "_call", lambda *a, **k: pytest.fail("trained a run another process holds"))
    assert study_runs.run_main(str(workdir), ["--method=kd"], when_busy="skip") is None
    assert f"kd_seed0: process {holder.pid} is training it; left to that process" in capsys.readouterr().out
    assert (tmp_path / "kd_seed0.lock").read_text() == str(holder.pid)  # still the holder's
    with pytest.raises(ValueError, match="when_busy must be 'wait' or 'skip'. Received: 'later'"):
        study_runs.run_main(str(workdir), ["--method=kd"], when_busy="later")


def test_a_run_waited_for_is_taken_from_the_process_that_trained_it(tmp_path, monkeypatch, holder):
    import threading

    workdir = tmp_path / "teacher"
    holder = holder(tmp_path / "teacher.lock")
    monkeypatch.setattr(study_runs, "_call", lambda *a, **k: pytest.fail("trained a run waited for"))
    waiting = threading.Event()
    log = study_runs.log
    monkeypatch.setattr(study_runs, "log", lambda message: (log(message), "Waiting for" in message and waiting.set()))

    def the_other_process_finishes():
        assert waiting.wait(timeout=60)  # once the study waits for it
        _finished_record(workdir)
        holder.kill()  # the kernel releases its lock

    threading.Thread(target=the_other_process_finishes).start()
    metrics = study_runs.run_main(str(workdir), ["--method=scratch"])  # waits by default
    assert metrics["study"] == {"wall_time_s": 7.0} and metrics["student"]["test_accuracy"] == 0.8
    assert not (tmp_path / "teacher.lock").exists()


def test_a_run_whose_lock_file_outlived_its_process_is_trained(tmp_path, monkeypatch):
    # Its process was killed: the lock file stays, with a process id in it, but nothing holds it.
    workdir = tmp_path / "akd_seed1"
    (tmp_path / "akd_seed1.lock").write_text("12345")
    monkeypatch.setattr(study_runs, "_call", _finishes_in(workdir))
    assert study_runs.run_main(str(workdir), ["--method=akd"], when_busy="skip")["workdir"] == str(workdir)
    assert not (tmp_path / "akd_seed1.lock").exists()


def test_runs_shared_out_between_processes_give_one_table_to_the_process_that_finishes_last(tmp_path):
    # Process A trains kd (slow); process B finds it busy, trains akd, and reports no table; A, done with kd, takes
    # akd from B on its second look and has every run.
    busy = {"kd": True}
    asked = []

    def process_b(key):
        asked.append(key)
        return None if key == "kd" and busy["kd"] else {"run": key}

    runs, elsewhere = study_runs.shared_out(["scratch", "kd", "akd"], process_b)
    assert runs is None and elsewhere == ["kd"] and asked == ["scratch", "kd", "akd", "kd"]
    busy["kd"] = False
    runs, elsewhere = study_runs.shared_out(["scratch", "kd", "akd"], process_b)
    assert runs == [{"run": "scratch"}, {"run": "kd"}, {"run": "akd"}] and elsewhere == []

    # A run that finishes between the two looks is taken on the second.
    looks = {"akd": 0}

    def finishes_meanwhile(key):
        looks[key] = looks.get(key, 0) + 1
        return {"run": key} if key != "akd" or looks["akd"] > 1 else None

    runs, elsewhere = study_runs.shared_out(["kd", "akd"], finishes_meanwhile)
    assert runs == [{"run": "kd"}, {"run": "akd"}] and elsewhere == [] and looks == {"kd": 1, "akd": 2}




def test_an_interrupted_study_kills_its_run_and_records_a_resumed_one(tmp_path, monkeypatch):
    started = []

    class Interrupted(subprocess.Popen):
        """The run's process, recorded, whose ``wait`` is interrupted as Ctrl-C interrupts the study's."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

        def wait(self, timeout=None):
            raise KeyboardInterrupt

    monkeypatch.setattr(study_runs.subprocess, "Popen", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        study_runs._call([sys.executable, "-c", "import time; time.sleep(600)"], stdout=None, stderr=None)
    monkeypatch.undo()
    (run,) = started
    deadline = time.monotonic() + 60
    while run.poll() is None:  # killed with its runner: it ends now, not after its ten minutes
        assert time.monotonic() < deadline, "the run outlived its interrupted runner"
        time.sleep(0.01)
    assert run.returncode == -signal.SIGKILL

    workdir = tmp_path / "kd_seed0"
    (workdir / "checkpoints").mkdir(parents=True)  # a killed process left its checkpoint
    monkeypatch.setattr(study_runs, "_call", _finishes_in(workdir))
    study_runs.run_main(str(workdir), ["--method=kd"])
    assert json.loads((workdir / "study_run.json").read_text())["resumed"] is True


def test_the_recorded_commit_says_changes_for_code_and_not_for_the_studys_own_tables(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "study.py").write_text("x = 1\n")
    (tmp_path / "benchmarks" / "results" / "study.md").write_text("| a |\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "y")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert study_runs.code_commit(str(tmp_path)) == head.strip()
    (tmp_path / "benchmarks" / "results" / "study.md").write_text("| a | b |\n")  # the study's table, rewritten
    (tmp_path / "benchmarks" / "results" / "new.json").write_text("{}")
    assert study_runs.code_commit(str(tmp_path)) == head.strip()
    (tmp_path / "benchmarks" / "study.py").write_text("x = 2\n")
    assert study_runs.code_commit(str(tmp_path)) == head.strip() + "+changes"
    assert study_runs.code_commit(str(tmp_path / "nowhere")) is None


def test_training_time_leaves_out_the_minutes_an_old_record_was_paused():
    assert study_runs.training_time({"student": {"wall_time_s": 600.0}, "study": {"wall_time_s": 700.0}}) == 600.0
    paused = {"student": {"wall_time_s": 600.0}, "study": {"wall_time_s": 500.0, "paused_s": 200.0}}
    assert study_runs.training_time(paused) == 400.0


def test_no_committed_study_table_trains_longer_than_it_runs():
    """Every committed record: training (the student's epochs) is part of the whole run's wall time. A record marked
    ``resumed`` counts the wall time of its last attempt only (the killed process's is lost), so it is exempt."""
    import glob

    records = [os.path.dirname(p) for p in glob.glob(os.path.join(
        os.path.dirname(__file__), "..", "benchmarks", "results", "runs", "*", "*", "study_run.json"))]
    longer = []
    for path in records:
        with open(os.path.join(path, "metrics.json")) as f:
            run = json.load(f)
        with open(os.path.join(path, "study_run.json")) as f:
            run["study"] = json.load(f)
        if not run["study"].get("resumed") and study_runs.training_time(run) > run["study"]["wall_time_s"] + 1:
            longer.append(f"{path}: {study_runs.training_time(run):.0f} s > {run['study']['wall_time_s']:.0f} s")
    assert len(records) > 30 and not longer, longer
