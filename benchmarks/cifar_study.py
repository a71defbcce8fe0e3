"""The method study: scratch, Hinton KD, TAKD, Annealing-KD and Continuation-KD for one student on real CIFAR-10.

    python -m benchmarks.cifar_study --flagfile=configs/study_cpu.flags

Every run is one ``python -m akd_tf.main`` command (its flagfile is kept in the run's directory), so each
figure can be re-made alone. Several processes may run the same study at once (one per core group): each trains
the runs no other is training, and the one that finishes the last run writes the table. The teacher is given
(``--teacher``, e.g. the shipped one in ``benchmarks/teachers/``) or trained once (a ``scratch`` run of
``--teacher_net``); the TAKD assistant likewise (``--assistant``, or a ``kd`` run of ``--assistant_net`` from the
teacher); every student run then reuses them with ``--teacher``/``--assistant``. A finished run is skipped when the study is started again, so a killed
study resumes where it stopped.

The protocol (subset sizes, epochs, τ_max, nets, seeds) is the flagfile's: ``akd_tf.main``'s flags plus the
study's own below; ``--workdir`` is the study's directory, each run a subdirectory of it. Outputs: ``<output>.md`` and ``.json`` (mean ± std over seeds of the test top-1 and of the
best validation top-1, epochs, wall time per method), ``<output>_val_accuracy.png`` (validation accuracy per
epoch, per method) and ``<output>_schedule.png`` (AKD's T and Φ(T) per epoch).
"""

import json
import os
import platform

from absl import app, flags

from akd_tf import main as cli  # defines the run flags this study passes on
from akd_tf.command import command_line
from akd_tf.machine import describe
from akd_tf.methods import registry
from benchmarks import study_runs
from benchmarks.method_names import CIFAR_STUDY as METHODS
from benchmarks.method_names import LONG as NAMES

FLAGS = flags.FLAGS


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    flags.DEFINE_list("seeds", list(study_runs.STUDY_SEEDS),
                      "Seeds of the student runs (each method runs once per seed).")
    flags.DEFINE_list("methods", list(study_runs.STUDY_METHODS), "Methods compared.")
    flags.DEFINE_integer("teacher_seed", 0, "Seed of the teacher and assistant runs.")
    flags.DEFINE_string("output", "benchmarks/results/cifar_study", "Output path prefix (.md, .json, _*.png).")
    flags.DEFINE_string("records", None, "A directory (committed, unlike --workdir) where each finished student run's "
                        "record (metrics, history, flags; no model) is kept, and from which a run found finished there "
                        "is taken instead of trained: for a study that outlives the machine its workdir is on.")


# Flags of akd_tf.main not passed on; per-run settings come after the passed-on ones, and the last wins.
# --assistant goes to TAKD runs only (the others refuse it).
_NOT_PASSED = ("workdir", "overwrite", "assistant")
# Ablations of the students' schedule leave the teacher and assistant the study trains itself as the recipe has them.
_STUDENTS_ONLY = ("phase2_learning_rate",)
# The paper's CIFAR-10 rows (ResNet-110 -> ResNet-8, ../shared/docs/paper.md), for the table.
PAPER = {"scratch": 88.44, "kd": 88.45, "takd": 88.47, "akd": 89.44, "ckd": 90.21}


def _passed_on():
    """``akd_tf.main``'s flags as the study's flagfile set them."""
    own = FLAGS.get_flags_for_module(cli)
    return [flag.serialize() for flag in own if flag.name not in _NOT_PASSED and flag.value is not None]


def _run(name, omit=(), records=False, **overrides):
    """Runs ``akd_tf.main`` in ``<study_dir>/<name>`` unless it finished there; returns its metrics. The
    study's flags are passed on, but for those named in ``omit``; ``overrides`` come last and win. With
    ``records`` (student runs: the teacher's and assistant's models are read by later runs) and ``--records``,
    the run's record is kept in, or taken from, ``<--records>/<name>``; and a student run that another process
    is training is left to it (None), while the teacher and assistant are waited for."""
    lines = [line for line in _passed_on() if line.split("=")[0].lstrip("-") not in omit]
    last = [f"--{key}={value}" for key, value in overrides.items() if value is not None]
    kept = os.path.join(FLAGS.records, name) if records and FLAGS.records else None
    return study_runs.run_main(os.path.join(FLAGS.workdir, name), lines, name, last, records=kept,
                               when_busy="skip" if records else "wait")


def _given(path, runs, key):
    """The record of a model the study was given (``--teacher``/``--assistant``), from the runs that
    evaluated it, in the shape of a run's metrics."""
    seen = next((r[key] for r in runs if key in r), None)
    if seen is None:
        raise SystemExit(f"no run of the study evaluated the {key} {path!r}")
    return {"student": {"net": seen["net"], "params": seen["params"], "test_accuracy": seen["test_accuracy"]},
            "study": {"wall_time_s": 0.0, "given": path}}


def _summarise(runs, teacher, assistant):
    methods = {}
    for method in FLAGS.methods:
        mine = [r for r in runs if r["method"] == method]
        test = [100 * r["student"]["test_accuracy"] for r in mine]
        val = [100 * max(r["history"].get("val_accuracy", [0.0])) for r in mine]
        methods[method] = {
            "seeds": [r["seed"] for r in mine],
            "test_top1": test, "test_top1_mean_std": study_runs.mean_std(test),
            "best_val_top1": val, "best_val_top1_mean_std": study_runs.mean_std(val),
            "epochs": len(mine[0]["history"].get("loss", [])),
            "training_wall_time_s": [study_runs.training_time(r) for r in mine],
            "run_wall_time_s": [r["study"]["wall_time_s"] for r in mine],
            "machine": [r["study"].get("machine") for r in mine],
            "paper_top1": PAPER.get(method),
        }
    def model(record):
        return {"net": record["student"]["net"], "params": record["student"]["params"],
                "test_top1": 100 * record["student"]["test_accuracy"],
                "run_wall_time_s": record["study"]["wall_time_s"], "given": record["study"].get("given")}

    return {
        "teacher": model(teacher),
        "assistant": model(assistant) if assistant else None,
        "student": {"net": runs[0]["student"]["net"], "params": runs[0]["student"]["params"]},
        "methods": methods,
    }


def _table(summary, protocol, total_minutes):
    import numpy as np

    t, a, s = summary["teacher"], summary["assistant"], summary["student"]
    seeds = len(FLAGS.seeds)

    def origin(record, what):
        return f"given: `{record['given']}`" if record.get("given") else f"{what}, {record['run_wall_time_s'] / 60:.1f} min"

    lines = [
        f"CIFAR-10 ({protocol['train']} training images, {protocol['validation']} held out for validation, "
        f"{protocol['test']} test), student {s['net']} ({s['params']:,} params), {seeds} seeds per method, "
        f"{protocol['machine']['cores']}.",
        f"Teacher {t['net']} ({t['params']:,} params, {t['params'] / s['params']:.1f}x the student): "
        f"test {t['test_top1']:.2f} % ({origin(t, 'trained once')})."
        + (f" TAKD assistant {a['net']} ({a['params']:,} params, KD from the teacher): test {a['test_top1']:.2f} % "
           f"({origin(a, 'trained once')})." if a else ""),
        "",
        "| method | test top-1 %, mean ± std | per seed | best val top-1 %, mean ± std | epochs | training min/run "
        "| run min/run | paper (ResNet-110 → ResNet-8, full CIFAR-10) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, m in summary["methods"].items():
        (tm, ts), (vm, vs) = m["test_top1_mean_std"], m["best_val_top1_mean_std"]
        lines.append(
            f"| {NAMES.get(method, method)} | {tm:.2f} ± {ts:.2f} | {', '.join(f'{v:.2f}' for v in m['test_top1'])} "
            f"| {vm:.2f} ± {vs:.2f} | {m['epochs']} | {np.mean(m['training_wall_time_s']) / 60:.1f} "
            f"| {np.mean(m['run_wall_time_s']) / 60:.1f} | {m['paper_top1'] if m['paper_top1'] else '—'} |")
    lines += [
        "",
        "std: sample standard deviation over seeds. training min: the student's epochs; run min: the whole command "
        "(data, teacher views, evaluation, export).",
        f"Whole study: {total_minutes:.0f} min (the sum of its runs' wall times). Command: `{protocol['command']}`",
        runs_cpus(summary["methods"]),
    ]
    return "\n".join(lines)


def runs_cpus(methods) -> str:
    """Which CPU each run's minutes come from, grouped by CPU (``methods`` as `_summarise` returns them): a study
    that outlives its machine has runs on several, and an AVX2-only epoch can take twice an AVX-512 one. A record
    keeps the CPU of the attempt that finished the run; records written before CPUs were recorded have none."""
    groups = {}
    for method, m in methods.items():
        for seed, machine in zip(m["seeds"], m["machine"]):
            groups.setdefault(describe(machine) if machine else "not recorded", []).append(f"{method}_seed{seed}")
    return "CPU of each run (the attempt that finished it): " + "; ".join(
        f"{cpu}: {', '.join(names)}" for cpu, names in groups.items()) + "."


def _plots(runs, output):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from akd_tf import schedule

    colors = {"scratch": "tab:gray", "kd": "tab:blue", "takd": "tab:green", "akd": "tab:red", "ckd": "tab:purple"}
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in runs:
        accuracy = [100 * v for v in r["history"].get("val_accuracy", [])]
        first = r["seed"] == runs[0]["seed"]
        ax.plot(range(1, len(accuracy) + 1), accuracy, color=colors.get(r["method"]), alpha=0.85,
                linestyle="-" if first else "--", label=f"{NAMES.get(r['method'], r['method'])}, seed {r['seed']}")
    # Runs of a method whose loss changes at phase1_epochs (Annealing-KD): the line, and the logged T.
    akd = [r for r in runs if registry.get(r["method"]).phase_boundary(FLAGS) is not None]
    restart = FLAGS.phase2_learning_rate
    if restart is not None:  # --phase2_learning_rate restarts every method there, not only AKD
        ax.axvline(FLAGS.phase1_epochs + 0.5, color="k", linestyle=":",
                   label=f"every method: LR restart at {restart:g}")
    elif akd:
        ax.axvline(FLAGS.phase1_epochs + 0.5, color="k", linestyle=":", label="AKD phase 1 | phase 2")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation top-1 %")
    ax.set_title("Validation accuracy per epoch"
                 + (f" (phase-2 restart at LR {restart:g})" if restart is not None else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(output + "_val_accuracy.png", dpi=110)
    plt.close(fig)

    p1, p2, tau = FLAGS.phase1_epochs, FLAGS.phase2_epochs, FLAGS.max_temperature
    epochs = list(range(1, p1 + p2 + 1))
    temps = [schedule.temperature_at(e - 1, p1, tau) if e <= p1 else 1 for e in epochs]
    logged = akd[0]["history"].get("temperature") if akd else None
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.step(epochs, logged or temps, where="mid", color="tab:red", label="temperature T (as logged by the run)"
            if logged else "temperature T")
    ax.set_xlabel("epoch")
    ax.set_ylabel("T", color="tab:red")
    ax2 = ax.twinx()
    ax2.step(epochs, [schedule.annealing_factor(t, tau) if e <= p1 else float("nan") for e, t in zip(epochs, temps)],
             where="mid", color="tab:blue", label="Φ(T) = 1 − (T − 1)/τ_max")
    ax2.set_ylabel("Φ(T)", color="tab:blue")
    ax2.set_ylim(0, 1.05)
    ax.axvline(p1 + 0.5, color="k", linestyle=":")
    ax.text(p1 + 0.7, tau * 0.9, "phase 2: labels", fontsize=9)
    ax.set_title(f"AKD schedule: τ_max = {tau}, {p1} phase-1 epochs, {p2} phase-2 epochs")
    fig.legend(loc="lower left", bbox_to_anchor=(0.1, 0.15), fontsize=8)
    fig.tight_layout()
    fig.savefig(output + "_schedule.png", dpi=110)
    plt.close(fig)


def main(argv):
    study_runs.check_arguments(argv, FLAGS.methods, METHODS)
    os.makedirs(FLAGS.workdir, exist_ok=True)
    total = FLAGS.teacher_epochs
    study_runs.log(f"study in {FLAGS.workdir}: teacher, assistant, then {len(FLAGS.methods)} methods x {len(FLAGS.seeds)} seeds")
    # The teacher: given, or a labels-only run of the teacher net; the assistant: given, or a KD run from it.
    teacher = teacher_path = assistant = assistant_path = None
    if FLAGS.teacher:
        teacher_path = FLAGS.teacher
    else:
        teacher = _run("teacher", method="scratch", seed=FLAGS.teacher_seed, student_net=FLAGS.teacher_net,
                       phase1_epochs=total - 1, phase2_epochs=1, teacher_views=0, omit=_STUDENTS_ONLY,
                       learning_rate=FLAGS.teacher_learning_rate or FLAGS.learning_rate)
        teacher_path = os.path.join(teacher["workdir"], "student.keras")
    via_assistant = [m for m in FLAGS.methods if registry.get(m).via_assistant]
    if via_assistant:
        if FLAGS.assistant:
            assistant_path = FLAGS.assistant
        else:
            assistant = _run("assistant", method=registry.get(via_assistant[0]).assistant_method,
                             seed=FLAGS.teacher_seed, teacher=teacher_path,
                             student_net=FLAGS.assistant_net, omit=_STUDENTS_ONLY)
            assistant_path = os.path.join(assistant["workdir"], "student.keras")

    def student(method, seed):
        spec = registry.get(method)
        extra = {"teacher_views": 0} if not spec.teacher else {}
        if spec.via_assistant:
            extra["assistant"] = assistant_path
        metrics = _run(f"{method}_seed{seed}", method=method, seed=int(seed), records=True,
                       teacher=None if spec.via_assistant else teacher_path, **extra)
        return None if metrics is None else {**metrics, "method": method, "seed": int(seed)}

    order = [(method, seed) for seed in FLAGS.seeds for method in FLAGS.methods]
    runs, elsewhere = study_runs.shared_out(order, lambda key: student(*key))
    if elsewhere:  # e.g. another process running the same study
        names = ", ".join(f"{method}_seed{seed}" for method, seed in elsewhere)
        study_runs.log(f"no table yet: {names} being trained by other processes; "
                       "run the same command again when they have finished")
        return
    # The sum over runs, so that a study resumed after a kill (or extended by a seed) still reports its cost.
    minutes = sum(r["study"]["wall_time_s"] for r in [teacher, assistant, *runs] if r) / 60
    first = runs[0]["num_examples"]
    command = command_line("benchmarks.cifar_study")
    protocol = {"train": first["train"], "validation": first.get("validation", 0), "test": first["test"],
                "command": command, "flags": _passed_on(), "seeds": FLAGS.seeds,
                "machine": {"cpus": os.cpu_count(), "cores": study_runs.cores(r["study"].get("cpus") for r in runs),
                            "platform": platform.platform()}}
    teacher = teacher or _given(teacher_path, runs, "teacher")
    if via_assistant:
        assistant = assistant or _given(assistant_path, runs, "assistant")
    summary = _summarise(runs, teacher, assistant)  # no assistant without TAKD runs
    table = _table(summary, protocol, minutes)
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output + ".json", "w") as f:
        json.dump({"protocol": protocol, **summary,
                   "val_accuracy_per_epoch": {f"{r['method']}_seed{r['seed']}": r["history"].get("val_accuracy")
                                              for r in runs}}, f, indent=2)
    with open(FLAGS.output + ".md", "w") as f:
        f.write(table + "\n")
    _plots(runs, FLAGS.output)
    print(table)
    study_runs.log(f"study done in {minutes:.0f} min: {FLAGS.output}.md")


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=cli.parse_flags)
