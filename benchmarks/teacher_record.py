"""The record of a shipped teacher trained in several learning-rate cycles: one table row per cycle and the
accuracy curve over all its epochs, read from the records kept beside the model (each cycle's metrics, flags and history).

    python -m benchmarks.teacher_record --cycles=benchmarks/teachers/resnet56_cifar10_cycle1,\\
        benchmarks/teachers/resnet56_cifar10_cycle2,benchmarks/teachers/resnet56_cifar10 \\
        --output=benchmarks/results/teacher_resnet56_cifar10

Each cycle is a path prefix with ``_metrics.json``, ``_flags.txt`` and ``_history_student.csv`` (the run's
``metrics.json``, ``flags.txt``, ``history_student.csv``), in training order; the last is the shipped one.
Writes ``<output>.md`` (table), ``.json`` (the rows) and ``.png`` (train and validation accuracy and the
learning rate per epoch, cycle boundaries marked).
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from akd_tf.command import command_line
from akd_tf.methods import registry
from akd_tf.workdir import read_history
from benchmarks.study_runs import read_flags

FLAGS = flags.FLAGS


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    flags.DEFINE_list("cycles", None, "Record prefixes of the teacher's cycles, in training order (the last is "
                      "shipped).", required=True)
    flags.DEFINE_string("output", "benchmarks/results/teacher", "Output path without extension.")

RECORD = ("_metrics.json", "_flags.txt", "_history_student.csv")
FLAG_KEYS = ("student_net", "learning_rate", "lr_schedule", "momentum", "weight_decay", "batch_size",
             "mixed_precision", "seed", "student_init")
PRECISION = {"none": "float32", "bfloat16": "mixed bfloat16", "float16": "mixed float16"}


def read_cycle(prefix: str) -> dict:
    missing = [prefix + suffix for suffix in RECORD if not os.path.isfile(prefix + suffix)]
    if missing:
        raise ValueError(f"{prefix!r} is not a complete run record: missing {', '.join(missing)} "
                         f"(a record is a run's {', '.join(s[1:] for s in RECORD)})")
    with open(prefix + "_metrics.json") as f:
        metrics = json.load(f)
    method = metrics.get("method")
    if method not in registry.names() or registry.get(method).teacher or "training" not in metrics.get("phases", {}):
        raise ValueError(f"{prefix}_metrics.json is not a labels-only training run (method "
                         f"{metrics.get('method')!r}); a teacher is trained with --method=scratch")
    flag_values = read_flags(prefix + "_flags.txt")
    history = read_history(prefix + "_history_student.csv")
    training = metrics["phases"]["training"]
    if len(history.get("val_accuracy", ())) != training["epochs"]:
        raise ValueError(f"{prefix}_history_student.csv has {len(history.get('val_accuracy', ()))} epochs; "
                         f"its metrics say {training['epochs']}")
    return {
        "record": prefix,
        "net": metrics["student"]["net"],
        "params": metrics["student"]["params"],
        "train_examples": metrics["num_examples"]["train"],
        "epochs": training["epochs"],
        "best_epoch": training["best_epoch"],
        "best_val_accuracy": training["best_val_accuracy"],
        "test_accuracy": metrics["student"]["test_accuracy"],
        "wall_time_s": training["wall_time_s"],
        "images_per_second": training["images_per_second"],
        "flags": {key: flag_values[key] for key in FLAG_KEYS if key in flag_values},
        "history": {key: history[key] for key in ("accuracy", "val_accuracy", "learning_rate") if key in history},
    }


def table(cycles) -> str:
    shipped = cycles[-1]
    lines = [f"{shipped['net']} ({shipped['params']:,} parameters) on {shipped['train_examples']:,} training images, "
             f"{len(cycles)} learning-rate cycle(s), each from the previous cycle's weights; the last is shipped.", "",
             "| cycle | epochs | learning rate (schedule) | weight decay | batch | precision | best val top-1 (epoch) "
             "| test top-1 | wall time | images/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for i, c in enumerate(cycles, 1):
        f = c["flags"]
        lines.append(
            f"| {i}{' (shipped)' if c is shipped else ''} | {c['epochs']} | {f.get('learning_rate', '?')} "
            f"({f.get('lr_schedule', '?')}) | {f.get('weight_decay', '?')} | {f.get('batch_size', '?')} "
            f"| {PRECISION.get(f.get('mixed_precision', 'none'), f.get('mixed_precision'))} | {100 * c['best_val_accuracy']:.2f} % ({c['best_epoch']}) "
            f"| {100 * c['test_accuracy']:.2f} % | {c['wall_time_s'] / 3600:.1f} h | {c['images_per_second']:.0f} |")
    hours = sum(c["wall_time_s"] for c in cycles) / 3600
    lines += ["", f"In all: {sum(c['epochs'] for c in cycles)} epochs, {hours:.1f} h of wall time. Test top-1 of the "
              f"shipped model: **{100 * shipped['test_accuracy']:.2f} %** (the best validation epoch of each cycle is "
              "kept; no choice is made on test)."]
    return "\n".join(lines)


def plot(cycles, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax_lr = ax.twinx()
    start = 0
    for i, c in enumerate(cycles, 1):
        epochs = list(range(start + 1, start + c["epochs"] + 1))
        history = c["history"]
        ax.plot(epochs, history["accuracy"], "-", color="tab:blue", label="train" if i == 1 else None)
        ax.plot(epochs, history["val_accuracy"], "--", color="tab:orange", label="validation" if i == 1 else None)
        if "learning_rate" in history:
            ax_lr.plot(epochs, history["learning_rate"], ":", color="tab:gray", label="learning rate" if i == 1 else None)
        ax.annotate(f"cycle {i}: test {100 * c['test_accuracy']:.2f} %", (epochs[-1], history["val_accuracy"][-1]),
                    textcoords="offset points", xytext=(-10, -28), ha="right", fontsize=8)
        if i > 1:
            ax.axvline(start + 0.5, color="k", linestyle=":", linewidth=0.8)
        start += c["epochs"]
    ax.set_xlabel("epoch (all cycles)")
    ax.set_ylabel("top-1 accuracy")
    ax_lr.set_ylabel("learning rate", color="tab:gray")
    ax.grid(alpha=0.3)
    handles = [h for a in (ax, ax_lr) for h in a.get_legend_handles_labels()[0]]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles))
    ax.set_title(f"Teacher {cycles[-1]['net']}: {len(cycles)} learning-rate cycles")
    fig.tight_layout(rect=(0, 0.07, 1, 1))  # room for the legend under the axes
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        cycles = [read_cycle(prefix) for prefix in FLAGS.cycles]
    except ValueError as error:
        raise app.UsageError(f"--cycles: {error}") from None
    text = table(cycles) + "\n\nCommand: `" + command_line("benchmarks.teacher_record") + "`\n"
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output + ".md", "w") as f:
        f.write(text)
    with open(FLAGS.output + ".json", "w") as f:
        json.dump({"cycles": [{k: v for k, v in c.items() if k != "history"} for c in cycles]}, f, indent=2)
    plot(cycles, FLAGS.output + ".png")
    print(text)


if __name__ == "__main__":
    define_flags()
    app.run(main)
