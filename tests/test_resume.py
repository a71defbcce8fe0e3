"""kill -9 the CLI at several points of the smoke run, one inside an epoch; the same command resumes, and with
--deterministic the resumed run ends with the very weights and logs of the uninterrupted one (the `smoke_workdir`
run, which wrote no checkpoint inside an epoch)."""

import csv
import glob
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Where the smoke run is killed: inside the teacher's second epoch (resumed from the checkpoint of a step, which
# `--checkpoint_minutes` this small writes after every step), the phase boundary (resumed from the last phase-1
# checkpoint into phase 2, with the best phase-1 student restored), and the end of training (evaluation and export).
# Each point is a TensorFlow start; a kill in the middle of phase 1 is resumed in tests/test_precision_cli.py.
INSIDE_AN_EPOCH = "checkpoints/teacher/epoch-000001-step-*"
KILL_AFTER = (
    INSIDE_AN_EPOCH,
    "Phase 2 (hard labels)",
    "restored the best phase-2 student",
)


def _command(workdir):
    return [sys.executable, "-u", "-m", "akd_tf.main", "--flagfile=configs/smoke.flags", f"--workdir={workdir}",
            "--checkpoint_minutes=1e-9"]


def _run_until(workdir, marker, timeout=300):
    """Starts the CLI and kills it (SIGKILL) as soon as it prints ``marker``, as soon as a file matching ``marker``
    (a pattern of paths in the workdir) exists, or as soon as ``marker()`` is true; returns its output."""
    proc = subprocess.Popen(_command(workdir), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    if callable(marker):
        seen = marker
    elif "/" in marker:
        seen = lambda: glob.glob(os.path.join(workdir, marker))  # noqa: E731
    else:
        seen = lambda: any(marker in line for line in list(lines))  # noqa: E731
    deadline = time.monotonic() + timeout
    try:
        while not seen() and proc.poll() is None:
            assert time.monotonic() < deadline, f"no {marker!r} within {timeout} s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(timeout=10)
    output = "".join(lines)
    assert proc.returncode == -signal.SIGKILL, f"the run ended without {marker!r}:\n{output[-3000:]}"
    return output


def _history(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "epoch_time_s"} for row in csv.DictReader(f)]


def test_killed_at_three_points_resumes_to_the_same_student(tmp_path, smoke_workdir):
    workdir = tmp_path / "killed"
    outputs = [_run_until(workdir, marker) for marker in KILL_AFTER]
    assert not (workdir / "metrics.json").exists()
    # Each restart after the first picked up where the previous process stopped.
    assert re.search(r"Resuming teacher training at epoch 2/2, after step [1-7] of 8 from its checkpoint",
                     outputs[1]), outputs[1][-2000:]
    assert "Resuming student training at epoch 3/3" in outputs[2], outputs[2][-2000:]

    (workdir / ".student.tmp-99999.keras").write_text("half of a model")  # as a kill during a save leaves it
    final = subprocess.run(_command(workdir), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    assert not any(name.startswith(".") for name in os.listdir(workdir))  # no temporaries left behind
    assert not (workdir / "checkpoints").exists()

    for name in ("teacher.keras", "student.keras"):
        resumed = keras.models.load_model(workdir / name).get_weights()
        reference = keras.models.load_model(os.path.join(smoke_workdir, name)).get_weights()
        assert len(resumed) == len(reference)
        for a, b in zip(resumed, reference):
            np.testing.assert_array_equal(a, b, err_msg=name)
    for stage in ("teacher", "student"):
        assert _history(workdir / f"history_{stage}.csv") == _history(os.path.join(smoke_workdir, f"history_{stage}.csv"))
    resumed = json.load(open(workdir / "metrics.json"))
    reference = json.load(open(os.path.join(smoke_workdir, "metrics.json")))
    assert resumed["student"]["test_accuracy"] == reference["student"]["test_accuracy"]
    assert resumed["phases"]["phase1"]["best_val_accuracy"] == reference["phases"]["phase1"]["best_val_accuracy"]


@pytest.mark.slow
def test_five_kills_at_random_steps_each_resume_to_the_same_student(tmp_path, smoke_workdir):
    """kill -9 at five random steps of the smoke run's stages (seeded, so a failure replays), each as soon as the
    stage has a checkpoint at or past that step; each rerun resumes there (a kill loses at most the step in
    progress), and the run ends with the uninterrupted one's weights."""
    from akd_tf.checkpoint import TrainingCheckpoint

    # Every step with a checkpoint inside an epoch (8 steps an epoch; the last is the epoch's own checkpoint).
    positions = [(stage, epoch, step) for stage, epochs in (("teacher", 2), ("student", 3))
                 for epoch in range(epochs) for step in range(1, 8)]
    targets = sorted(random.Random(0).sample(positions, 5), key=positions.index)
    workdir = tmp_path / "killed"

    def reached(stage, epoch, step):
        def seen():
            done = (workdir / f"{stage}.keras").exists()
            return done or TrainingCheckpoint(str(workdir / "checkpoints" / stage)).latest_position() >= (epoch, step)
        return seen

    for i, (stage, epoch, step) in enumerate(targets):
        output = _run_until(workdir, reached(stage, epoch, step))
        if i:
            assert re.search(r"Resuming \w+ training at epoch \d+/\d+|No checkpoint of the student yet", output), \
                output[-2000:]
    final = subprocess.run(_command(workdir), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    for name in ("teacher.keras", "student.keras"):
        resumed = keras.models.load_model(workdir / name).get_weights()
        reference = keras.models.load_model(os.path.join(smoke_workdir, name)).get_weights()
        for a, b in zip(resumed, reference):
            np.testing.assert_array_equal(a, b, err_msg=name)
