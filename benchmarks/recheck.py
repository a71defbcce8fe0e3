"""Re-evaluates the saved models of finished runs on their test split and compares with what the runs recorded.

    TFDS_DATA_DIR=../shared/tensorflow_datasets python -m benchmarks.recheck \\
        --runs=$HOME/akd_runs/study_long,$HOME/akd_runs/study_mid --output=benchmarks/results/budget_study_recheck

A study's table is written from its runs' ``metrics.json``; this reads each run's exported student
(``<run>/student/``, the SavedModel `export.tflite` reads, or the ``student.keras`` a committed run record keeps) and the teacher and assistant the runs name
(``metrics.json``'s ``source``), evaluates them again on the same test examples, and says whether every recorded
test top-1 is reproduced. It is how a figure measured on another day is checked today, and how a run whose
model was swapped or corrupted after its record was written is caught. Exits non-zero when a model's top-1
differs from its record by more than ``--tolerance`` points. ``--runs`` takes run directories or directories of
runs (a study's workdir). Writes ``<output>.md`` and ``.json``.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time

import numpy as np
from absl import app, flags, logging

from akd_tf import machine as machine_lib
from akd_tf.command import command_line

FLAGS = flags.FLAGS


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    flags.DEFINE_list("runs", None, "Run directories (metrics.json and student/ or student.keras inside), or "
                      "directories of them (a study's workdir, or its committed records).",
                      required=True)
    flags.DEFINE_string("output", None, "Output path without extension (.md, .json).", required=True)
    flags.DEFINE_float("tolerance", 0.05, "Largest |re-evaluated - recorded| test top-1, in points, that counts as "
                       "reproduced (float32 kernels may order sums differently from run to run).")
    flags.DEFINE_string("data_dir", None, "TFDS data directory (default: $TFDS_DATA_DIR or TFDS's own).")


def find_runs(paths: list[str]) -> list[str]:
    """The finished runs under ``paths``: each path itself when it is one, else its sub-directories that are, sorted.
    A path with neither is an error: a typo must not shrink the check to nothing."""
    runs = []
    for path in paths:
        if _is_run(path):
            runs.append(path)
            continue
        inside = sorted(os.path.join(path, name) for name in os.listdir(path)) if os.path.isdir(path) else []
        found = [p for p in inside if _is_run(p)]
        if not found:
            raise ValueError(f"--runs: no finished run (metrics.json with student/saved_model.pb or student.keras) at "
                             f"or under {path!r}")
        runs.extend(found)
    return runs


def _is_run(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "metrics.json")) and _student(path) is not None


def _student(run: str) -> str | None:
    """The run's student: the SavedModel of its workdir, else the ``student.keras`` its committed record keeps."""
    for candidate in (os.path.join(run, "student"), os.path.join(run, "student.keras")):
        if os.path.isfile(os.path.join(candidate, "saved_model.pb")) or candidate.endswith(".keras") and \
                os.path.isfile(candidate):
            return candidate
    return None


def plan(runs: list[str]) -> list[dict]:
    """What to evaluate: every run's student, then each distinct teacher/assistant file the runs name, once, with
    the test-set size the record was measured on (a model recorded on two sizes is checked on each)."""
    items, given = [], {}
    for run in runs:
        with open(os.path.join(run, "metrics.json")) as f:
            metrics = json.load(f)
        if "test_accuracy" not in metrics.get("student", {}):  # e.g. a GLUE run: dev metrics, no test top-1
            raise ValueError(f"--runs: {run!r} records no test top-1 (no student.test_accuracy in its metrics.json); "
                             "recheck checks image classification runs")
        n = metrics["num_examples"]["test"]
        parent, base = os.path.split(os.path.abspath(run))
        name = os.path.join(os.path.basename(parent), base)  # <study>/<run>
        items.append({"name": name, "role": "student", "model": _student(run),
                      "dataset": metrics["dataset"], "test_examples": n,
                      "recorded": 100 * metrics["student"]["test_accuracy"]})
        for role in ("teacher", "assistant"):
            record = metrics.get(role) or {}
            source = record.get("source")
            if source == "trained":  # trained by the run itself, saved beside its student
                source, shown = os.path.join(run, f"{role}.keras"), f"{name}/{role}.keras"
            else:
                shown = source
            if source and "test_accuracy" in record and (source, n) not in given:
                given[(source, n)] = {"name": shown, "role": role, "model": source, "dataset": metrics["dataset"],
                                      "test_examples": n, "recorded": 100 * record["test_accuracy"]}
    return items + list(given.values())


def evaluate(items: list[dict], data_dir: str | None = None, say=print) -> list[dict]:
    """Adds ``top1`` (re-evaluated, %) to each item; the test examples are read once per dataset, size and
    preprocessing."""
    from export import student as student_lib

    cache = {}
    for i, item in enumerate(items, 1):
        start = time.perf_counter()
        if not os.path.exists(item["model"]):
            item["top1"] = None
            say(f"[{i}/{len(items)}] {item['name']}: {item['model']} not found here; not checked", flush=True)
            continue
        student = student_lib.load(item["model"], dataset=item["dataset"])
        key = (item["dataset"], item["test_examples"], json.dumps(student.metadata.get("preprocessing", {}),
                                                                   sort_keys=True))
        if key not in cache:
            cache[key] = student_lib.images(student, "test", item["test_examples"], data_dir)
        images, labels = cache[key]
        item["top1"] = 100 * float(np.mean(np.argmax(student.predict(images), axis=-1) == labels))
        say(f"[{i}/{len(items)}] {item['name']} ({item['role']}): {item['top1']:.2f} % re-evaluated, "
            f"{item['recorded']:.2f} % recorded ({time.perf_counter() - start:.0f} s)", flush=True)
    return items


def table(items: list[dict], tolerance: float, now: str) -> tuple[str, bool]:
    """The markdown report and whether every model found reproduced its record within ``tolerance`` points."""
    checked = [x for x in items if x["top1"] is not None]
    off = [x for x in checked if abs(x["top1"] - x["recorded"]) > tolerance]
    largest = max((abs(x["top1"] - x["recorded"]) for x in checked), default=0.0)
    missing = len(items) - len(checked)
    headline = (f"Re-evaluated at {now} UTC: {len(checked)} of {len(items)} models"
                + (f" ({missing} not found here)" if missing else "") + ", "
                + (f"all within {tolerance:.2f} pt of their recorded test top-1 (largest difference "
                   f"{largest:.2f} pt)." if not off else
                   f"{len(off)} differ from their record by more than {tolerance:.2f} pt: "
                   + ", ".join(x["name"] for x in off) + "."))
    lines = [headline, "",
             "| model | role | test examples | recorded top-1 % | re-evaluated top-1 % | difference (pt) |",
             "|---|---|---|---|---|---|"]
    for x in items:
        again = "not found" if x["top1"] is None else f"{x['top1']:.2f}"
        diff = "—" if x["top1"] is None else f"{round(x['top1'] - x['recorded'], 2) + 0.0:+.2f}"  # no "-0.00"
        lines.append(f"| {x['name']} | {x['role']} | {x['test_examples']} | {x['recorded']:.2f} | {again} | {diff} |")
    return "\n".join(lines), not off


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines on loading each SavedModel drown the progress
    try:
        runs = find_runs(FLAGS.runs)
        items = plan(runs)
    except ValueError as error:
        print(f"recheck: error: {error}", file=sys.stderr)
        return 2
    print(f"recheck: {len(items)} models ({len(runs)} students, {len(items) - len(runs)} teachers/assistants)",
          flush=True)
    evaluate(items, FLAGS.data_dir)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    text, reproduced = table(items, FLAGS.tolerance, now)
    m = machine_lib.machine()
    text += (f"\n\nMachine: {machine_lib.describe(m)}, TensorFlow {m['tensorflow']}, Keras {m['keras']}, {m['date']}.\n"
             "\nCommand: `" + command_line("benchmarks.recheck") + "`\n")
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output + ".md", "w") as f:
        f.write(text)
    with open(FLAGS.output + ".json", "w") as f:
        json.dump({"checked_utc": now, "tolerance_pt": FLAGS.tolerance, "reproduced": reproduced, "models": items,
                   "machine": m, "command": command_line("benchmarks.recheck")}, f, indent=1)
    print(text.splitlines()[0])
    print(f"Wrote {FLAGS.output}.md and .json")
    return 0 if reproduced else 1


if __name__ == "__main__":
    define_flags()
    app.run(main)
