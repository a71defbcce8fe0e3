"""A study's progress report, read from run directories as the study runner leaves them mid-study."""

import json
import os

import pytest

import cli_cases
from benchmarks import attempts, study_progress, study_runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(study, name, method, seed, test=None, wall=None, epochs_done=0, epoch_times=None):
    """A run directory: the flagfile the runner writes (a repeated flag: the last wins), the CSV history so
    far, and for a finished run its metrics and record."""
    directory = study / name
    directory.mkdir(parents=True)
    (directory / "study.flags").write_text(
        f"--method=scratch\n--seed=20\n--phase1_epochs=20\n--phase2_epochs=10\n--nodeterministic\n"
        f"--workdir={directory}\n--method={method}\n--seed={seed}\n")
    if epochs_done and epoch_times:
        rows = "".join(f"{e},{1.0 / (e + 1)},{t}\n" for e, t in zip(range(epochs_done), epoch_times))
        (directory / "history_student.csv").write_text("epoch,loss,epoch_time_s\n" + rows)
    elif epochs_done:
        rows = "".join(f"{e},{1.0 / (e + 1)}\n" for e in range(epochs_done))
        (directory / "history_student.csv").write_text("epoch,loss\n" + rows)
    if test is not None:
        (directory / "metrics.json").write_text(json.dumps({"student": {"test_accuracy": test}}))
        (directory / "study_run.json").write_text(json.dumps({"wall_time_s": wall, "finished_utc": "2026-11-22 10:00"}))


@pytest.fixture
def study(tmp_path):
    study = tmp_path / "study_mid"
    _run(study, "akd_seed0", "akd", 0, test=0.8127, wall=2184.0, epochs_done=30)
    _run(study, "kd_seed0", "kd", 0, test=0.8236, wall=2304.0, epochs_done=30)
    _run(study, "akd_seed1", "akd", 1, test=0.8227, wall=2160.0, epochs_done=30)
    # Its sixth epoch was slowed by a pause: the pace is the median of the last five.
    _run(study, "kd_seed1", "kd", 1, epochs_done=7, epoch_times=[260, 250, 250, 250, 240, 830, 250])
    # Its time so far: a killed attempt of 1 h, the one under way alive for 30 min, less a 10-min pause.
    (study / "kd_seed1" / attempts.FILE).write_text(json.dumps([{"started": 1e9, "seconds": 3600.0},
                                                                 {"started": 2e9, "alive": 2e9 + 1800}]))
    (study / "kd_seed1" / attempts.PAUSES).write_text(json.dumps([{"start": 1e6, "end": 1e6 + 600, "seconds": 600.0}]))
    _run(study, "scratch_seed1", "scratch", 1)  # started, no epoch finished yet
    (study / "teacher_views").mkdir()  # not a run: no study.flags
    return study


def test_runs_and_means_so_far(study):
    report = study_progress.read_study(str(study))
    assert [r["name"] for r in report["runs"]] == ["kd_seed0", "akd_seed0", "scratch_seed1", "kd_seed1", "akd_seed1"]
    kd1 = report["runs"][3]
    assert (kd1["method"], kd1["seed"], kd1["epochs"], kd1["epochs_done"], kd1["finished"]) == ("kd", 1, 30, 7, False)
    assert list(report["methods"]) == ["kd", "akd"]  # only methods with a finished seed
    assert report["methods"]["kd"]["seeds"] == 1
    mean, std = report["methods"]["akd"]["test_top1_mean_std"]
    assert mean == pytest.approx(81.77) and std == pytest.approx(0.7071, abs=1e-4)

    text = study_progress.table([report], "2026-11-23 06:00")
    assert kd1["spent_s"] == pytest.approx(4800) and report["runs"][2]["spent_s"] == 0  # scratch_seed1: no record
    assert text.startswith("Progress at 2026-11-23 06:00 UTC: 3 of the 5 runs started have finished (1.8 h of run "
                           "wall time; the others have spent 1.3 h so far); ")
    assert "| study_mid | akd_seed1 | 30 | 82.27 | 36.0 | 2026-11-22 10:00 |" in text
    assert "| study_mid | kd_seed1 | 7 of 30 done (last " in text
    assert "; 250 s per epoch, ~1.6 h left) | — | — | not yet |" in text  # 23 epochs x 250 s
    assert "s per epoch" not in next(line for line in text.splitlines() if "akd_seed0" in line)
    assert "| study_mid | scratch_seed1 | 0 of 30 done | — | — | not yet |" in text
    assert "| study_mid | akd | 2 | 81.77 ± 0.71 |" in text
    assert "| study_mid | kd | 1 | 82.36 |" in text  # one seed: no spread shown
    finished = dict(report, runs=[r for r in report["runs"] if r["finished"]])
    assert study_progress.table([finished], "now").startswith(
        "Progress at now UTC: all 3 runs have finished (1.8 h of run wall time).\n")


def test_read_flags_last_wins_and_negations(study):
    values = study_runs.read_flags(str(study / "akd_seed0" / "study.flags"))
    assert values["method"] == "akd" and values["seed"] == "0" and values["deterministic"] is False


def test_epochs_a_pause_fell_in_leave_the_pace(tmp_path):
    # Five epochs of 250 s, then three that a 600 s stop of the suite's timing stretched; the history was last
    # written at t=10,000.
    times = [250.0] * 5 + [850.0, 850.0, 850.0]
    study = tmp_path / "study_long"
    _run(study, "kd_seed0", "kd", 0, epochs_done=8, epoch_times=times)
    os.utime(study / "kd_seed0" / "history_student.csv", (10_000, 10_000))
    (study / "kd_seed0" / study_runs.PAUSES).write_text(json.dumps([
        {"start": 10_000 - 2_500.0, "end": 10_000 - 1_900.0, "seconds": 600.0},
        {"start": 10_000 - 1_650.0, "end": 10_000 - 1_050.0, "seconds": 600.0},
        {"start": 10_000 - 800.0, "end": 10_000 - 200.0, "seconds": 600.0}]))
    assert study_progress.read_run(str(study / "kd_seed0"))["epoch_s"] == 250.0
    assert study_progress._unpaused(times, 10_000, []) == times  # no pause: every epoch counts
    every = [{"start": 0.0, "end": 10_000.0, "seconds": 10_000.0}]
    assert study_progress._unpaused(times, 10_000, every) == times  # all paused: nothing better to go on


def _flagfile(path, extra=""):
    path.write_text("# a study's flagfile\n--phase1_epochs=20\n--phase2_epochs=10\n--seeds=0,1\n" + extra)
    return str(path)


def test_a_flagfile_lists_the_runs_not_started_and_the_epochs_left(study, tmp_path):
    flagfile = _flagfile(tmp_path / "study_mid.flags", "--methods=scratch,kd,akd\n")
    report = study_progress.read_study(str(study), flagfile)
    runs = {r["name"]: r for r in report["runs"]}
    assert [r["name"] for r in report["runs"]] == ["scratch_seed0", "kd_seed0", "akd_seed0", "scratch_seed1",
                                                   "kd_seed1", "akd_seed1"]
    assert runs["scratch_seed0"] == {"name": "scratch_seed0", "method": "scratch", "seed": 0, "epochs": 30,
                                     "epochs_done": 0, "finished": False, "started": False}
    # kd_seed1: 23 epochs left at its 250 s; scratch_seed1 (started, no epoch yet) and scratch_seed0: 30 each.
    assert study_progress.left([report]) == {"epochs": 83, "epoch_s": 250.0, "lane_hours": 83 * 250 / 3600}
    text = study_progress.table([report], "2026-11-23 17:00")
    assert text.startswith("Progress at 2026-11-23 17:00 UTC: 3 of the 6 runs planned have finished (1.8 h of run "
                           "wall time; the others have spent 1.3 h so far); 83 student epochs left, ~5.8 h of one "
                           "lane at 250 s per epoch")
    assert "| study_mid | scratch_seed0 | 0 of 30 done (not started) | — | — | not yet |" in text
    assert "| study_mid | scratch_seed1 | 0 of 30 done | — | — | not yet |" in text


def test_a_study_not_started_is_all_planned_runs_and_defaults_are_the_study_runners(tmp_path):
    report = study_progress.read_study(str(tmp_path / "study_short"), _flagfile(tmp_path / "short.flags"))
    assert len(report["runs"]) == 8 and not any(r["started"] or r["finished"] for r in report["runs"])
    assert {r["method"] for r in report["runs"]} == {"scratch", "kd", "takd", "akd"}  # cifar_study's default
    assert study_progress.left([report]) == {"epochs": 240, "epoch_s": None, "lane_hours": None}
    assert "240 student epochs left." in study_progress.table([report], "now")


def test_cli_writes_report_and_refuses_a_missing_directory_or_a_flagfile_short(study, tmp_path):
    # The report, then its two refusals, in one interpreter (tests/cli_cases.py: one TensorFlow import).
    output, missing = tmp_path / "out" / "progress", tmp_path / "study_long"
    flagfiles = f"--flagfiles={_flagfile(tmp_path / 'a.flags')},{_flagfile(tmp_path / 'b.flags')}"
    studies = f"--studies={study},{missing}"
    results = cli_cases.run_in_subprocess("benchmarks.study_progress", {
        "done": [studies, flagfiles, f"--output={output}"],
        "short": [studies, f"--flagfiles={tmp_path / 'a.flags'}"],
        # Without flagfiles a study must have started: its directory is where the runs are read.
        "unread": [studies],
    }, str(tmp_path), ROOT)
    done, short, unread = results["done"], results["short"], results["unread"]
    assert done["returncode"] == 0, done["stderr"]
    saved = json.loads(output.with_suffix(".json").read_text())
    assert [s["label"] for s in saved["studies"]] == ["study_mid", "study_long"]
    assert [len(s["runs"]) for s in saved["studies"]] == [8, 8] and saved["left"]["epochs"] == 83 + 30 + 30 + 240
    assert "| study_mid | akd | 2 | 81.77 ± 0.71 |" in output.with_suffix(".md").read_text()
    assert short["returncode"] != 0
    assert "--flagfiles needs one flagfile per study: 2 studies, received 1 flagfiles" in short["stderr"]
    assert unread["returncode"] != 0
    assert f"--studies/--flagfiles: '{missing}' is not a directory" in unread["stderr"]


def test_times_come_from_records_and_heartbeats_not_from_copied_files(tmp_path):
    """A run carried between sessions: the copy gave its files the time of the copy (now). A finished run's time
    is its record's; one without (a record from before the runner wrote it) has none, not the copy's. The
    unfinished run's last epoch ended before its last heartbeat, not at the copy."""
    study = tmp_path / "study_long"
    _run(study, "kd_seed0", "kd", 0, test=0.8275, wall=16322.0, epochs_done=45)
    (study / "kd_seed0" / "study_run.json").write_text(json.dumps({"wall_time_s": 16322.0}))
    _run(study, "akd_seed1", "akd", 1, epochs_done=21, epoch_times=[138.0] * 21)
    alive = 1_796_000_000.0  # 2026-11-30 00:53:20 UTC
    (study / "akd_seed1" / attempts.FILE).write_text(json.dumps([{"started": alive - 3000, "alive": alive}]))
    runs = {r["name"]: r for r in study_progress.read_study(str(study))["runs"]}
    assert runs["kd_seed0"]["finished_at"] == "—"
    assert runs["akd_seed1"]["last_epoch_at"] == "2026-11-30 00:53"
    # On the machine that ran it (history written a minute before the heartbeat), the file's time stands.
    os.utime(study / "akd_seed1" / "history_student.csv", (alive - 60, alive - 60))
    assert study_progress.read_run(str(study / "akd_seed1"))["last_epoch_at"] == "2026-11-30 00:52"
    assert study_progress._last_epoch_end(str(study / "akd_seed1"), str(study / "akd_seed1" / "history_student.csv")) \
        == alive - 60
    # A killed attempt's recorded end and a new attempt's start count as signs of life too; a run never started
    # has none.
    (study / "akd_seed1" / attempts.FILE).write_text(json.dumps([{"started": alive, "seconds": 600.0}]))
    assert attempts.last_alive(str(study / "akd_seed1")) == alive + 600
    (study / "akd_seed1" / attempts.FILE).write_text(json.dumps([{"started": alive, "seconds": 600.0},
                                                                  {"started": alive + 900}]))
    assert attempts.last_alive(str(study / "akd_seed1")) == alive + 900
    assert attempts.last_alive(str(study / "kd_seed0")) is None
