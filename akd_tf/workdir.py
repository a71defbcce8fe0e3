"""The workdir of a run: what a run writes there (`OUTPUTS`), whether a workdir can take a run (a new one, the same
unfinished run to resume, or a finished one only with ``overwrite``), and the per-epoch history a stage keeps."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import tempfile

from akd_tf import files
from akd_tf.config import BadInput, Config, resolve_defaults, upgrade


# Everything a run writes into its workdir; `overwrite=True` removes exactly these.
OUTPUTS = ("teacher.keras", "assistant.keras", "student.keras", "student", "metrics.json", "config.json", "flags.txt",
           "run.png", "teacher.png", "history_teacher.csv", "history_assistant.csv", "history_student.csv",
           "teacher_views_assistant.npz", "teacher_views_student.npz", "tensorboard", "checkpoints")


# Config fields that may change when a run is resumed (they do not change what is computed).
RESUMABLE_CHANGES = ("verbose", "progress_seconds", "checkpoint_minutes", "teacher_views_cache", "jit_compile")


def _differences(saved, config):
    """``name (saved X, now Y)`` for each field of the saved ``config.json`` that differs and matters. A field
    that the saved run did not know (added to `Config` since) counts as its default, which keeps the behaviour
    of the code that wrote it: runs started by an older version resume."""
    current = config.resolved()
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    saved = upgrade(saved)
    saved = resolve_defaults({**{k: defaults[k] for k in current if k not in saved}, **saved})
    names = sorted(k for k in set(saved) | set(current) if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k))
    return [f"{k} (saved {saved.get(k)!r}, now {current.get(k)!r})" for k in names]


def prepare_workdir(config: Config, workdir: str, overwrite: bool = False):
    """Checks that ``workdir`` can take this run, before anything long starts; `BadInput` otherwise.

    A new or empty workdir is fine. One with an unfinished run of the same configuration is resumed.
    A finished run, or an unfinished one with another configuration, is refused unless ``overwrite``;
    `clear_outputs` then removes them, once every other check has passed.
    """
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise BadInput(f"`workdir` {workdir!r} exists and is not a directory.")
    try:
        os.makedirs(workdir, exist_ok=True)
        with tempfile.TemporaryFile(dir=workdir):
            pass
    except OSError as error:
        raise BadInput(f"`workdir` {workdir!r} is not writable: {error.strerror or error}.") from None
    config_path, metrics_path = os.path.join(workdir, "config.json"), os.path.join(workdir, "metrics.json")
    if overwrite:
        doomed = [os.path.realpath(os.path.join(workdir, name)) for name in OUTPUTS]
        for name, path in (("teacher_path", config.teacher_path), ("assistant_path", config.assistant_path),
                           ("student_init", config.student_init_file)):
            real = os.path.realpath(path) if path else None
            if real and any(real == d or real.startswith(d + os.sep) for d in doomed):
                raise BadInput(f"`{name}` {path!r} is one of the outputs that `overwrite` would delete "
                               f"in `workdir` {workdir!r}. Copy it elsewhere first.")
        return
    if os.path.isfile(metrics_path):
        raise BadInput(f"`workdir` {workdir!r} holds a finished run (metrics.json). Pass `overwrite` to replace "
                       "it, or choose another `workdir`.")
    if os.path.isfile(config_path):
        with open(config_path) as f:
            differing = _differences(json.load(f), config)
        if differing:
            listed = ", ".join(differing[:3]) + (f" and {len(differing) - 3} more" if len(differing) > 3 else "")
            raise BadInput(
                f"`workdir` {workdir!r} holds an unfinished run with other settings: {listed}. "
                "Run the same command to resume it, pass `overwrite` to start over, or choose another `workdir`."
            )


def clear_outputs(workdir: str):
    """Removes this tool's outputs (`OUTPUTS`) from ``workdir`` and nothing else."""
    for name in OUTPUTS:
        files.remove(os.path.join(workdir, name))


def read_history(path):
    """A CSVLogger file as a Keras ``History.history`` dict (``{}`` when there is none)."""
    if not os.path.isfile(path):
        return {}
    history = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key != "epoch" and value != "":
                    history.setdefault(key, []).append(float(value))
    return history


def truncate_history(path, epochs):
    """Keeps the header and the first ``epochs`` rows: rows past the checkpoint are recomputed on resume."""
    if not os.path.isfile(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) > epochs + 1:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows[: epochs + 1])
        files.write_text(path, text.getvalue())


# The stages of a run, in the order they train; each writes ``<stage>.keras`` when it has finished.
STAGES = ("teacher", "assistant", "student")


def kept_progress(workdir: str) -> str:
    """What a rerun of an interrupted run in ``workdir`` starts from, in words: the checkpoint of the stage in
    progress (one without its finished model file; a finished stage's checkpoints stay until the run ends), or the
    finished models when no stage had finished an epoch."""
    from akd_tf.checkpoint import TrainingCheckpoint

    done = [stage for stage in STAGES if os.path.isfile(os.path.join(workdir, f"{stage}.keras"))]
    for stage in STAGES:
        epochs, steps = TrainingCheckpoint(os.path.join(workdir, "checkpoints", stage)).latest_position()
        if stage not in done and (epochs or steps):
            return (f"the {stage} resumes at epoch {epochs + 1}, after step {steps}" if steps
                    else f"the {stage} resumes after its epoch {epochs}")
    return (f"the {' and '.join(done)} {'is' if len(done) == 1 else 'are'} kept; the next stage starts from its first "
            "epoch" if done else "no epoch had finished: it starts again")
