"""The study runner's bookkeeping: a run killed with its session counts the time it had spent; the cores
runs had (pinned or not) reach the tables."""

import datetime
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from benchmarks import attempts, study_runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _interrupted_then_finished(workdir, monkeypatch, killed):
    """The record of a run whose first attempt ``killed`` ends (KeyboardInterrupt) and whose second finishes."""
    monkeypatch.setattr(study_runs, "_call", killed)
    with pytest.raises(KeyboardInterrupt):
        study_runs.run_main(str(workdir), ["--method=akd"])
    assert not (workdir / "study_run.json").exists()

    def finishes(command, stdout, stderr, heartbeat):
        (workdir / "metrics.json").write_text(json.dumps({"student": {"dev": 0.5}}))
        (workdir / "history_student.csv").write_text("epoch,loss\n0,1.0\n")
        return 0

    monkeypatch.setattr(study_runs, "_call", finishes)
    return study_runs.run_main(str(workdir), ["--method=akd"])["study"]


def _an_hour_ago(workdir):
    """Moves the running attempt's start an hour back (the session that started it has ended); returns it."""
    record = json.loads((workdir / attempts.FILE).read_text())
    started = record[-1]["started"] = record[-1]["started"] - 3600
    (workdir / attempts.FILE).write_text(json.dumps(record))
    return started


def test_interrupted_attempt_counts_until_its_last_heartbeat(tmp_path, monkeypatch):
    """The first attempt, an hour ago, was alive for 120 s, then its session ended; its directory was then copied to
    another machine, which gave every file the time of the copy (now): neither the hour between the sessions
    nor the copy counts."""
    workdir = tmp_path / "akd_seed0"

    def killed(command, stdout, stderr, heartbeat):
        started = _an_hour_ago(workdir)
        with monkeypatch.context() as m:
            m.setattr(attempts.time, "time", lambda: started + 120)
            heartbeat()
        raise KeyboardInterrupt

    record = _interrupted_then_finished(workdir, monkeypatch, killed)
    assert record["interrupted_attempts_s"] == [pytest.approx(120, abs=1e-6)]
    assert 120 <= record["wall_time_s"] < 130
    assert not (workdir / attempts.FILE).exists()
    # When it finished is written down (the copy's file times would say otherwise), to the minute, in UTC.
    now = datetime.datetime.now(datetime.timezone.utc)
    finished = datetime.datetime.strptime(record["finished_utc"] + " +0000", "%Y-%m-%d %H:%M %z")
    assert datetime.timedelta(0) <= now - finished < datetime.timedelta(minutes=2)
    # Finished: a third call reuses it and its record stays.
    assert study_runs.run_main(str(workdir), ["--method=akd"])["study"] == record


def test_interrupted_attempt_without_heartbeats_counts_until_the_runs_last_write(tmp_path, monkeypatch):
    """Attempts recorded before the heartbeats: the last write to the run's directory ends them."""
    workdir = tmp_path / "akd_seed0"

    def killed(command, stdout, stderr, heartbeat):
        started = _an_hour_ago(workdir)
        for name in os.listdir(workdir):
            if name != attempts.FILE:
                os.utime(workdir / name, (started, started))
        os.utime(workdir / "study.log", (started + 120, started + 120))
        raise KeyboardInterrupt

    record = _interrupted_then_finished(workdir, monkeypatch, killed)
    assert record["interrupted_attempts_s"] == [pytest.approx(120, abs=1)]
    assert "interrupted_attempts_notes" not in record


def test_an_attempts_time_set_by_hand_is_kept_with_its_note(tmp_path, monkeypatch):
    """An attempt whose time could not be read from its heartbeats or files: its seconds and a note, written into
    study_attempts.json by hand before the run goes on, reach the run's record."""
    workdir = tmp_path / "kd_seed0"

    def killed(command, stdout, stderr, heartbeat):
        record = json.loads((workdir / attempts.FILE).read_text())
        record[-1].update(seconds=1730.0, note="from its log: 6 epochs")
        (workdir / attempts.FILE).write_text(json.dumps(record))
        raise KeyboardInterrupt

    record = _interrupted_then_finished(workdir, monkeypatch, killed)
    assert record["interrupted_attempts_s"] == [1730.0] and 1730 <= record["wall_time_s"] < 1740
    assert record["interrupted_attempts_notes"] == ["attempt 1: from its log: 6 epochs"]


def test_seal_ends_an_attempt_without_heartbeats_at_its_last_write_before_a_copy(tmp_path):
    """Before a run's directory is copied to another machine (which gives its files the time of the copy), the
    last attempt of an older runner, which wrote no heartbeat, is sealed at the directory's last write."""
    runs = tmp_path / "akd_runs"
    old, beating = (runs / "study_long" / name for name in ("kd_seed1", "akd_seed1"))
    for directory in (old, beating):
        directory.mkdir(parents=True)
        (directory / "study.log").write_text("epochs")
        os.utime(directory / "study.log", (1_000_500, 1_000_500))
    (old / attempts.FILE).write_text(json.dumps([{"started": 1_000_000}]))
    (beating / attempts.FILE).write_text(json.dumps([{"started": 1_000_000, "alive": 1_000_300}]))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.attempts", "seal", str(runs)], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"sealed the last attempt of {old}" in proc.stdout and proc.stdout.count("sealed") == 1
    assert json.loads((old / attempts.FILE).read_text()) == [{"started": 1_000_000, "alive": 1_000_500}]
    assert json.loads((beating / attempts.FILE).read_text())[-1]["alive"] == 1_000_300
    # The copy (times reset) does not change what the next attempt counts.
    os.utime(old / "study.log")
    assert [a["seconds"] for a in attempts.start(str(old))] == [500]
    assert "tensorflow" not in subprocess.run(
        [sys.executable, "-c", "import sys, benchmarks.attempts; print(sorted(sys.modules))"], cwd=ROOT,
        capture_output=True, text=True).stdout


def test_a_running_command_writes_heartbeats_and_is_killed_with_its_runner(tmp_path, monkeypatch):
    monkeypatch.setattr(attempts, "HEARTBEAT_S", 0.05)
    beats = []
    status = study_runs._call([sys.executable, "-c", "import time; time.sleep(0.5)"], stdout=None, stderr=None,
                              heartbeat=lambda: beats.append(time.time()))
    assert status == 0 and len(beats) >= 3

    def unwritable():
        raise OSError("No space left on device")

    # A heartbeat that cannot be written does not stop the run.
    assert study_runs._call([sys.executable, "-c", "import time; time.sleep(0.2)"], stdout=None, stderr=None,
                            heartbeat=unwritable) == 0
    # Interrupted (the session's end reaches the runner first): the command does not outlive it.
    started = []

    def interrupt():
        started.append(True)
        raise KeyboardInterrupt

    marker = tmp_path / "outlived"
    with pytest.raises(KeyboardInterrupt):
        study_runs._call([sys.executable, "-c", f"import time; time.sleep(1); open({str(marker)!r}, 'w')"],
                         stdout=None, stderr=None, heartbeat=interrupt)
    time.sleep(1.5)
    assert started and not marker.exists()


def _finishes_in(workdir):
    """A stand-in for the run's subprocess that finishes at once, writing only its metrics."""
    def call(command, stdout, stderr, heartbeat):
        (workdir / "metrics.json").write_text("{}")
        return 0
    return call


def test_a_run_that_was_never_interrupted_records_only_its_own_time(tmp_path, monkeypatch):
    workdir = tmp_path / "finetune_seed0"
    monkeypatch.setattr(study_runs, "_call", _finishes_in(workdir))
    record = study_runs.run_main(str(workdir), ["--method=finetune"])["study"]
    assert "interrupted_attempts_s" not in record and record["wall_time_s"] < 5


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

    def finishes(command, stdout, stderr, heartbeat):
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

    def must_not_run(command, stdout, stderr, heartbeat):
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

    def finishes(command, stdout, stderr, heartbeat):
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


def test_the_times_a_run_was_stopped_are_left_out_of_its_wall_time(tmp_path, monkeypatch, capsys):
    workdir = tmp_path / "kd_seed0"
    workdir.mkdir()
    pauses = [{"start": 100.0, "end": 160.0, "seconds": 60.0, "why": "timing the tests"}]
    (workdir / study_runs.PAUSES).write_text(json.dumps(pauses))

    def finishes_after_a_pause(command, stdout, stderr, heartbeat):
        time.sleep(0.5)
        (workdir / "metrics.json").write_text("{}")
        return 0

    monkeypatch.setattr(study_runs, "_call", finishes_after_a_pause)
    record = study_runs.run_main(str(workdir), ["--method=kd"])["study"]
    assert record["paused_s"] == 60 and record["pauses"] == pauses
    assert record["wall_time_s"] == pytest.approx(record["wall_time_s_with_pauses"] - 60)
    assert 0.5 <= record["wall_time_s_with_pauses"] < 5
    assert sorted(os.listdir(workdir)) == ["metrics.json", "study.flags", "study.log", "study_run.json"]
    assert "] kd_seed0: done in " in capsys.readouterr().out


def test_pause_runs_stops_the_study_runs_under_its_root_while_a_command_runs(tmp_path):
    from benchmarks import pause_runs

    def fake_run(directory):  # the command line of a study run; it only sleeps
        directory.mkdir(parents=True)
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-m", "akd_tf.main",
                                 f"--flagfile={directory}/study.flags"])

    inside, outside = fake_run(tmp_path / "runs" / "study_mid" / "kd_seed0"), fake_run(tmp_path / "other" / "kd_seed0")
    try:
        states = tmp_path / "states.txt"
        check = (f"open({str(states)!r}, 'w').write(' '.join(open(f'/proc/{{pid}}/stat').read().split(')')[1].split()[0] "
                 f"for pid in ({inside.pid}, {outside.pid})))")
        assert pause_runs.paused_while([sys.executable, "-c", check], str(tmp_path / "runs"), "the test") == 0
        mine, elsewhere = states.read_text().split()
        assert mine == "T" and elsewhere != "T"  # stopped while the command ran; the run elsewhere was not
        with open(f"/proc/{inside.pid}/stat") as f:
            assert f.read().split(")")[1].split()[0] != "T"
        (pause,) = json.loads((tmp_path / "runs" / "study_mid" / "kd_seed0" / study_runs.PAUSES).read_text())
        assert pause["why"] == "the test" and 0 <= pause["seconds"] == pause["end"] - pause["start"] < 30
        assert not (tmp_path / "other" / "kd_seed0" / study_runs.PAUSES).exists()
    finally:
        inside.kill()
        outside.kill()


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

    def the_other_process_finishes():
        time.sleep(0.3)
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


def test_runs_shared_out_between_lanes_give_one_table_to_the_lane_that_finishes_last(tmp_path):
    # Lane A trains kd (slow); lane B finds it busy, trains akd, and reports no table; A, done with kd, takes akd
    # from B on its second look and has every run.
    busy = {"kd": True}
    asked = []

    def lane_b(key):
        asked.append(key)
        return None if key == "kd" and busy["kd"] else {"run": key}

    runs, elsewhere = study_runs.shared_out(["scratch", "kd", "akd"], lane_b)
    assert runs is None and elsewhere == ["kd"] and asked == ["scratch", "kd", "akd", "kd"]
    busy["kd"] = False
    runs, elsewhere = study_runs.shared_out(["scratch", "kd", "akd"], lane_b)
    assert runs == [{"run": "scratch"}, {"run": "kd"}, {"run": "akd"}] and elsewhere == []

    # A run that finishes between the two looks is taken on the second.
    looks = {"akd": 0}

    def finishes_meanwhile(key):
        looks[key] = looks.get(key, 0) + 1
        return {"run": key} if key != "akd" or looks["akd"] > 1 else None

    runs, elsewhere = study_runs.shared_out(["kd", "akd"], finishes_meanwhile)
    assert runs == [{"run": "kd"}, {"run": "akd"}] and elsewhere == [] and looks == {"kd": 1, "akd": 2}


def test_training_time_leaves_out_the_pauses_as_the_run_time_does():
    # Long scratch seed 1's record: 45 epochs of 18,529 s by their epoch times, 5,616 s of which it was stopped.
    run = {"student": {"wall_time_s": 18529.0}, "study": {"wall_time_s": 13013.0, "paused_s": 5616.0}}
    assert study_runs.training_time(run) == 12913.0
    assert study_runs.training_time({"student": {"wall_time_s": 60.0}, "study": {"wall_time_s": 70.0}}) == 60.0
