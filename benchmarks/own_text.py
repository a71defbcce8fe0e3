"""Your own sentences from a CSV file to MediaPipe-ready files with a pre-trained teacher, timed: the all-MiniLM-L6-v2
preset fine-tuned on the file as the teacher, a student of its first 3 layers by Annealing-KD, the same student
fine-tuned on the labels alone beside it, and the export that MediaPipe's TextClassifier runs.

    python -m benchmarks.own_text --rows=2000 --output=benchmarks/results/own_text_minilm

Writes ``--rows`` real movie-review sentences (GLUE SST-2's training split, `examples/own_text.py`) as a CSV, then
runs ``python -m akd_tf.main --dataset=csv:…`` with ``configs/glue_minilm3_base.flags`` (the text study's recipe)
and ``--run_flags``, with ``--method`` and with ``--method=finetune``, and ``python -m export.tflite`` on the
distilled student. The distillation runs once more in another workdir, killed (SIGKILL) when its phase 2 starts
and resumed; both runs are ``--deterministic`` and the record says whether the two students' weights are equal.
Writes ``<output>.json`` and ``<output>.md`` with the figures, the wall time of each step, the commands and the
machine. ``--workdir`` keeps the file and runs (default: a temporary directory).
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from akd_tf import machine
from akd_tf.command import command_line
from benchmarks.own_data import ROOT, read, step, write

FLAGS = flags.FLAGS
RESUMED_AT = "Phase 2 (hard labels)"


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    flags.DEFINE_integer("rows", 2000, "Sentences in the CSV file (examples/own_text.py).")
    flags.DEFINE_string("method", "akd", "The distillation method of the student run.")
    flags.DEFINE_list("run_flags", ["--flagfile=configs/glue_minilm3_base.flags", "--sequence_length=48",
                                    "--teacher_epochs=2", "--max_temperature=3", "--phase1_epochs=3",
                                    "--phase2_epochs=1"], "akd_tf.main flags of both student runs.")
    flags.DEFINE_list("quantization", ["fp32", "dynamic"], "Export modes.")
    flags.DEFINE_string("workdir", None, "Where the file and runs go (default: a temporary directory).")
    flags.DEFINE_string("output", "benchmarks/results/own_text_minilm", "Output path prefix (.json and .md).")


def _killed_and_resumed(command, log):
    """Runs ``command``, kills it (SIGKILL) once it prints `RESUMED_AT`, runs it again; its seconds in all."""
    start = time.perf_counter()
    with open(log, "a") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        for line in proc.stdout:
            out.write(line)
            if RESUMED_AT in line:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait()
        out.flush()
        status = subprocess.call(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    if status:
        raise SystemExit(f"the resumed run failed with exit status {status}; see {log}")
    return time.perf_counter() - start


def _same_weights(a, b):
    import keras
    import numpy as np

    return all(np.array_equal(x, y) for x, y in zip(keras.saving.load_model(a).get_weights(),
                                                    keras.saving.load_model(b).get_weights()))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    workdir = FLAGS.workdir or tempfile.mkdtemp(prefix="akd_tf_own_text_")
    os.makedirs(workdir, exist_ok=True)
    csv_file, log = os.path.join(workdir, "reviews.csv"), os.path.join(workdir, "steps.log")
    python = sys.executable
    run = [python, "-m", "akd_tf.main", f"--dataset=csv:{csv_file}", *FLAGS.run_flags, "--verbose=2", "--deterministic"]
    steps = {
        "file": [python, "examples/own_text.py", f"--output={csv_file}", f"--rows={FLAGS.rows}"],
        "teacher and student": [*run, f"--method={FLAGS.method}", f"--workdir={workdir}/student_run"],
        "fine-tuned student": [*run, "--method=finetune", f"--workdir={workdir}/finetune_run"],
        "export": [python, "-m", "export.tflite", f"--model={workdir}/student_run/student/",
                   f"--quantization={','.join(FLAGS.quantization)}"],
    }
    seconds = {name: step(name, command, log) for name, command in steps.items()}
    resumed = [*run, f"--method={FLAGS.method}", f"--workdir={workdir}/killed_run"]
    print(f"[{time.strftime('%H:%M:%S')}] killed at {RESUMED_AT!r} and resumed: {' '.join(resumed)}", flush=True)
    resume_seconds = _killed_and_resumed(resumed, log)
    student, finetuned = read(workdir, "student_run", "metrics.json"), read(workdir, "finetune_run", "metrics.json")
    export = read(workdir, "student_run", "tflite", "export_report.json")
    result = {
        "command": command_line("benchmarks.own_text"),
        "steps": {name: " ".join(["python", *c[1:]]) for name, c in steps.items()},
        "resumed": " ".join(["python", *resumed[1:]]), "resume_seconds": resume_seconds,
        "resumed_weights_equal": _same_weights(os.path.join(workdir, "student_run", "student.keras"),
                                               os.path.join(workdir, "killed_run", "student.keras")),
        "machine": machine.machine(), "num_examples": student["num_examples"], "labels": student.get("labels"),
        "metric": student.get("metric", "accuracy"), "teacher": student["teacher"], "student": student["student"],
        "finetuned": finetuned["student"], "majority_class": student.get("majority_class"), "method": FLAGS.method,
        "seconds": seconds, "total_seconds": sum(seconds.values()),
        "export": [{key: row.get(key) for key in ("mode", "size_bytes", "metrics", "agreement", "mediapipe")}
                   for row in export["results"]],
    }
    write(result, _table(result), FLAGS.output)


def _figure(stage):
    """A stage's accuracy on the test split in ``metrics.json`` (text runs report it under ``dev``)."""
    return stage["dev"]["test"]["accuracy"]


def _table(r):
    n, m = r["num_examples"], r["machine"]
    lines = [
        f"Your own sentences, from a CSV file to MediaPipe-ready files: {sum(n.values()):,} rows labelled "
        f"{', '.join(r['labels'])} (train {n['train']}, validation {n.get('validation', 0)}, test {n['test']}), "
        f"the all-MiniLM-L6-v2 teacher fine-tuned on them, a student of its first layers by {r['method']}.",
        "",
        "| step | wall time (s) |",
        "|---|---|",
        *(f"| {name} | {s:.0f} |" for name, s in r["seconds"].items()),
        f"| **all** | **{r['total_seconds']:.0f}** ({r['total_seconds'] / 60:.1f} min) |",
        "",
        "| model | parameters | test accuracy % |",
        "|---|---|---|",
        f"| teacher (all-MiniLM-L6-v2, fine-tuned) | {r['teacher'].get('params', 0):,} | "
        f"{100 * _figure(r['teacher']):.1f} |",
        f"| student, {r['method']} | {r['student'].get('params', 0):,} | {100 * _figure(r['student']):.1f} |",
        f"| the same student fine-tuned on the labels | {r['finetuned'].get('params', 0):,} | "
        f"{100 * _figure(r['finetuned']):.1f} |",
        "",
        "| file | bytes | test accuracy % | agreement with the float student % | MediaPipe's classes | "
        "MediaPipe = Keras % |",
        "|---|---|---|---|---|---|",
        *(f"| {row['mode']} | {row['size_bytes']:,} | {100 * (row['metrics'] or {}).get('accuracy', float('nan')):.1f} "
          f"| {100 * row['agreement']:.1f} | {', '.join((row['mediapipe'] or {}).get('categories') or [])} | "
          f"{100 * (row['mediapipe'] or {}).get('agreement_with_keras', float('nan')):.1f} |" for row in r["export"]),
        "",
        f"Killed (SIGKILL) when phase 2 started and run again: the resumed student's weights "
        f"{'equal' if r['resumed_weights_equal'] else 'DIFFER FROM'} the uninterrupted run's (`--deterministic`; "
        f"{r['resume_seconds']:.0f} s for both parts). One test sentence is {100 / n['test']:.1f} points. "
        f"Machine: {machine.describe(m)}, TensorFlow {m['tensorflow']}, {m['date']}.",
        "",
        f"Command: `{r['command']}`; its steps: " + "; ".join(f"`{c}`" for c in r["steps"].values())
        + f"; killed and resumed: `{r['resumed']}`",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    define_flags()
    app.run(main)
