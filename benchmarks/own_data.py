"""Your own images from a folder to MediaPipe-ready files, timed: the commands of docs/own-data.md, and the same
student trained from scratch beside it.

    python -m benchmarks.own_data --per_class=333 --output=benchmarks/results/own_data

Writes a folder of ``--per_class`` CIFAR-10 test photos of each of 3 classes upscaled to 64×64
(`examples/own_images.py`) and trains a small teacher of "your own" for its classes (on other CIFAR-10 photos),
then runs ``python -m akd_tf.main --dataset=folder:…`` with the teacher file (``--method``, default Annealing-KD)
and without it (``--method=scratch``), with no other flags (the own-images recipe a user gets, unless
``--run_flags``), and ``python -m export.tflite`` on the distilled student. Each step is a process of its own, timed from its start
to its end. Writes ``<output>.json`` and ``<output>.md``: test top-1 of teacher, student and scratch student, the
wall time of each step and of all, the uint8 file's size, agreement and MediaPipe's result, the commands and the
machine. ``--workdir`` keeps the folder and runs (default: a temporary directory).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from akd_tf import machine
from akd_tf.command import command_line

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    flags.DEFINE_integer("per_class", 333, "Photos per class (3 classes; at most 1,000).")
    flags.DEFINE_integer("teacher_epochs", 15, "Epochs of the teacher of 'your own' (examples/own_images.py).")
    flags.DEFINE_integer("teacher_per_class", 1500, "CIFAR-10 training photos of each class that teacher learns "
                         "from (examples/own_images.py; none of the folder's).")
    flags.DEFINE_string("method", "akd", "The distillation method of the student run.")
    flags.DEFINE_list("run_flags", [], "akd_tf.main flags of both student runs beyond the data and the method "
                      "(default: none, the own-images recipe a user gets, akd_tf.data.own.RECIPE).")
    flags.DEFINE_string("workdir", None, "Where the folder, teacher and runs go (default: a temporary directory).")
    flags.DEFINE_string("output", "benchmarks/results/own_data", "Output path prefix (.json and .md).")


def step(name, command, log):
    """Runs ``command`` (a list) from the repository root, its output appended to ``log``; returns its seconds."""
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    with open(log, "a") as out:
        status = subprocess.call(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if status:
        raise SystemExit(f"{name} failed with exit status {status}; see {log}")
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {seconds:.0f} s", flush=True)
    return seconds


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    workdir = FLAGS.workdir or tempfile.mkdtemp(prefix="akd_tf_own_data_")
    os.makedirs(workdir, exist_ok=True)
    folder, teacher, log = (os.path.join(workdir, name) for name in ("photos", "my_teacher.keras", "steps.log"))
    python = sys.executable
    steps = {
        "folder and teacher": [python, "examples/own_images.py", f"--output={folder}", f"--per_class={FLAGS.per_class}",
                               f"--teacher={teacher}", f"--teacher_epochs={FLAGS.teacher_epochs}",
                               f"--teacher_per_class={FLAGS.teacher_per_class}"],
        "student": [python, "-m", "akd_tf.main", f"--dataset=folder:{folder}", f"--teacher={teacher}",
                    f"--method={FLAGS.method}", *FLAGS.run_flags, f"--workdir={workdir}/student_run", "--verbose=2"],
        "scratch student": [python, "-m", "akd_tf.main", f"--dataset=folder:{folder}", "--method=scratch",
                            *FLAGS.run_flags, f"--workdir={workdir}/scratch_run", "--verbose=2"],
        "export": [python, "-m", "export.tflite", f"--model={workdir}/student_run/student/", "--quantization=fp32,uint8"],
    }
    seconds = {name: step(name, command, log) for name, command in steps.items()}
    student, scratch = read(workdir, "student_run", "metrics.json"), read(workdir, "scratch_run", "metrics.json")
    export = read(workdir, "student_run", "tflite", "export_report.json")
    rows = {row["mode"]: row for row in export["results"]}
    result = {
        "command": command_line("benchmarks.own_data"),
        "steps": {name: " ".join(["python", *c[1:]]) for name, c in steps.items()},
        "machine": machine.machine(), "num_examples": student["num_examples"], "labels": student.get("labels"),
        "teacher_top1": student["teacher"]["test_accuracy"], "student_top1": student["student"]["test_accuracy"],
        "scratch_top1": scratch["student"]["test_accuracy"], "method": FLAGS.method, "run_flags": FLAGS.run_flags,
        "student_net": student["student"]["net"], "student_params": student["student"]["params"],
        "seconds": seconds, "total_seconds": sum(seconds.values()),
        "uint8": {key: rows["uint8"][key] for key in ("size_bytes", "top1", "keras_top1", "agreement")},
        "fp32_bytes": rows["fp32"]["size_bytes"], "mediapipe_uint8": rows["uint8"].get("mediapipe"),
    }
    write(result, _table(result), FLAGS.output)


def read(workdir, *path):
    """The JSON file a step wrote at ``workdir/<path>``."""
    with open(os.path.join(workdir, *path)) as f:
        return json.load(f)


def write(result, table, output):
    """``<output>.json`` (the result) and ``<output>.md`` (its table), and the table on stdout."""
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    with open(output + ".json", "w") as f:
        json.dump(result, f, indent=2)
    with open(output + ".md", "w") as f:
        f.write(table + "\n")
    print(table)


def _table(r):
    n = r["num_examples"]
    m = r["machine"]
    uint8 = r["uint8"]
    mediapipe = r["mediapipe_uint8"] or {}
    lines = [
        f"Your own images, from a folder to MediaPipe-ready files: {sum(n.values()):,} photos of "
        f"{', '.join(r['labels'])} at 64×64 (train {n['train']}, validation {n.get('validation', 0)}, test {n['test']}), "
        f"a small teacher of one's own, a {r['student_net']} student ({r['student_params']:,} parameters)"
        + (f", flags {' '.join(r['run_flags'])}." if r.get("run_flags") else ", the own-images recipe (no flags)."),
        "",
        "| step | wall time (s) |",
        "|---|---|",
        *(f"| {name} | {s:.0f} |" for name, s in r["seconds"].items()),
        f"| **all** | **{r['total_seconds']:.0f}** ({r['total_seconds'] / 60:.1f} min) |",
        "",
        "| model | test top-1 % |",
        "|---|---|",
        f"| teacher (the user's own file) | {100 * r['teacher_top1']:.1f} |",
        f"| student, {r['method']} | {100 * r['student_top1']:.1f} |",
        f"| the same student from scratch | {100 * r['scratch_top1']:.1f} |",
        f"| student, uint8 TFLite | {100 * uint8['top1']:.1f} (agreement with the float student "
        f"{100 * uint8['agreement']:.1f} %; MediaPipe = LiteRT on {100 * mediapipe.get('agreement_with_litert', 0):.1f} %) |",
        "",
        f"uint8 file {uint8['size_bytes']:,} bytes ({r['fp32_bytes'] / uint8['size_bytes']:.2f}× smaller than fp32). "
        f"One test photo is {100 / n['test']:.1f} points. Machine: {machine.describe(m)}, TensorFlow {m['tensorflow']}, "
        f"{m['date']}.",
        "",
        f"Command: `{r['command']}`; its steps: " + "; ".join(f"`{c}`" for c in r["steps"].values()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    define_flags()
    app.run(main)
