"""The pre-trained GLUE study: per task, a MiniLM-L6 teacher fine-tuned once, then fine-tune / Hinton KD /
Annealing-KD (and, with ``--methods=...,ckd``, Continuation-KD) students (the teacher's first layer,
``--student_init=truncate:1``), several seeds each, GLUE dev metrics.

    python -m benchmarks.glue_study --workdir=$HOME/akd_runs/glue_minilm

The text twin of `benchmarks.cifar_study`: every run is one ``python -m akd_tf.main`` command whose flagfile is
the task's config (``--config``, default ``configs/glue_minilm_<task>.flags``) plus the run's method, seed and
teacher, kept in the run's directory; a finished run is skipped, so a killed study resumes where it stopped.
``akd_tf.main`` flags given on this command line (e.g. ``--phase2_learning_rate``) go to every student run.

The teacher is a ``finetune`` run of ``--teacher_preset`` itself (as many epochs as ``--teacher_epochs``, at
``--teacher_learning_rate``); every student run gets its ``student.keras`` as ``--teacher`` (cached logits, and the
source of the truncated student) and its logits are computed once per task (``--teacher_logits_cache``).
Regression tasks (STS-B) have no Hinton KD. Outputs: ``<output>.md``/``.json`` (per task: teacher, each method's
dev metric mean ± std over seeds and per seed, the gaps between methods, wall times; the paper's rows) and
``<output>.png`` (the same as bars).
"""

import json
import os
import platform

from absl import app, flags

from akd_tf import main as cli  # defines the run flags (and --workdir)
from akd_tf.command import command_line
from akd_tf.data import glue
from akd_tf.methods import registry
from benchmarks import study_runs
from benchmarks.method_names import SHORT

FLAGS = flags.FLAGS


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    flags.DEFINE_list("tasks", ["rte", "mrpc", "stsb", "cola"], "GLUE tasks, each with its config file.")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of the student runs (each method runs once per seed and task).")
    flags.DEFINE_list("methods", ["finetune", "kd", "akd"], "Methods compared (kd is skipped on regression tasks).")
    flags.DEFINE_string("config", "configs/glue_minilm_{task}.flags", "Each task's flagfile; {task} is replaced.")
    flags.DEFINE_integer("teacher_seed", 0, "Seed of the teacher's fine-tuning run.")
    flags.DEFINE_string("output", "benchmarks/results/glue_minilm", "Output path prefix (.md, .json, .png).")
    flags.DEFINE_string("records", None, "A directory (committed, unlike --workdir) where each finished run's record "
                        "is kept, <records>/<task>/<run>: metrics, history, flags, the commit and CPU, not the model "
                        "(text models are tens of MB). A student run recorded there is not trained again.")
    flags.DEFINE_string("teacher_workdir", None, "A finished teacher run to reuse instead of fine-tuning one, e.g. "
                        "another study's <workdir>/{task}/teacher ({task} is replaced). Default: <workdir>/<task>/teacher.")


NAMES = {"finetune": "fine-tuned student", "kd": "Hinton KD", "akd": "Annealing-KD", "ckd": "Continuation-KD"}
# Set per run here, so not passed on from this command line.
_OWN = ("workdir", "overwrite", "method", "seed", "teacher", "flagfile", "teacher_logits_cache")
# Ablations of the students' schedule leave the teacher's fine-tuning as it is.
_STUDENTS_ONLY = ("phase2_learning_rate", "student_init", "student_net", "student_preset", "phase1_epochs",
                  "phase2_epochs", "learning_rate", "max_temperature")
# The paper's GLUE dev rows (RoBERTa-large -> DistilRoBERTa; ../shared/docs/paper.md), x100 like ours.
PAPER = {"cola": {"teacher": 68.1, "finetune": 59.3, "kd": 60.97, "akd": 61.67},
         "rte": {"teacher": 86.3, "finetune": 67.9, "kd": 71.11, "akd": 73.64},
         "mrpc": {"teacher": 91.9, "finetune": 88.6, "kd": 90.2, "akd": 90.6},
         "stsb": {"teacher": 92.3, "finetune": 88.5, "kd": 88.86, "akd": 89.01},
         "sst2": {"teacher": 96.4, "finetune": 92.5, "kd": 92.54, "akd": 93.11}}
TASK_NAMES = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "stsb": "STS-B", "mnli": "MNLI",
              "qnli": "QNLI", "rte": "RTE"}
METRIC_NAMES = {"matthews": "Matthews corr.", "accuracy": "accuracy", "f1": "F1", "pearson": "Pearson", "spearman": "Spearman"}


def _explicit(students_only=True):
    """``akd_tf.main`` flags set on this command line, passed on to every student run (to the teacher's, but for
    the students' schedule)."""
    skip = _OWN if students_only else _OWN + _STUDENTS_ONLY
    return [flag.serialize() for flag in FLAGS.get_flags_for_module(cli) if flag.present and flag.name not in skip]


def _task_config(task):
    path = FLAGS.config.format(task=task)
    if not os.path.isfile(path):
        raise app.UsageError(f"--config for task {task!r} not found. Received: {path!r}")
    return path


def _read_flagfile(path, name):
    """The last value of ``--name`` in ``path`` and the flagfiles it includes, expanded by absl itself."""
    values = [arg.split("=", 1)[1] for arg in FLAGS.read_flags_from_files([f"--flagfile={path}"], force_gnu=True)
              if arg.startswith(f"--{name}=")]
    return values[-1] if values else None


def _dev(metrics):
    """The task's main GLUE metric on the first report split, x100, and all of that split's metrics."""
    split = metrics["report_splits"][0]
    values = metrics["student"]["dev"][split]
    return 100 * values[metrics["metric"]], values


def _setting(config, name):
    """A run flag as this command line (first) or the task's config sets it."""
    return str(FLAGS[name].value) if FLAGS[name].present else _read_flagfile(config, name)


def _teacher(task, config):
    """A labels-only run of the teacher: its preset (or architecture) fine-tuned for teacher_epochs."""
    preset = _setting(config, "teacher_preset")
    model = f"--student_preset={preset}" if preset else f"--student_net={_setting(config, 'teacher_net')}"
    epochs = int(_setting(config, "teacher_epochs"))
    if epochs < 2:  # a run trains phase1_epochs + phase2_epochs >= 2 epochs
        raise app.UsageError(f"The study's teacher trains >= 2 epochs. Received: teacher_epochs={epochs} ({config})")
    rate = _setting(config, "teacher_learning_rate") or _setting(config, "learning_rate")
    lines = [f"--flagfile={config}", *_explicit(students_only=False), "--method=finetune", model, "--student_init=",
             f"--seed={FLAGS.teacher_seed}", f"--phase1_epochs={epochs - 1}", "--phase2_epochs=1",
             f"--learning_rate={rate}"]
    workdir = (FLAGS.teacher_workdir.format(task=task) if FLAGS.teacher_workdir
               else os.path.join(FLAGS.workdir, task, "teacher"))
    # Its record is kept, never taken in place of the run: the students read the teacher's model file.
    metrics = study_runs.run_main(workdir, lines, f"{task}/teacher")
    if FLAGS.records:
        study_runs.keep_record(workdir, os.path.join(FLAGS.records, task, "teacher"), study_runs.TEXT_RECORD)
    return metrics


def _task(task):
    config = _task_config(task)
    regression = glue.DATASETS[f"glue/{task}"]["num_classes"] == 1
    teacher = _teacher(task, config)
    teacher_path = os.path.join(teacher["workdir"], "student.keras")
    methods = [m for m in FLAGS.methods if registry.get(m).regression or not regression]
    runs = []
    for seed in FLAGS.seeds:
        for method in methods:
            lines = [f"--flagfile={config}", *_explicit(), f"--method={method}", f"--seed={seed}",
                     f"--teacher={teacher_path}", f"--teacher_logits_cache={os.path.join(FLAGS.workdir, task, 'logits')}"]
            name = f"{method}_seed{seed}"
            records = os.path.join(FLAGS.records, task, name) if FLAGS.records else None
            metrics = study_runs.run_main(os.path.join(FLAGS.workdir, task, name), lines, f"{task}/{name}",
                                          records=records, record=study_runs.TEXT_RECORD)
            runs.append({**metrics, "method": method, "seed": int(seed)})
    return teacher, runs


def _summarise(task, teacher, runs):
    first = runs[0]
    methods = {}
    for method in FLAGS.methods:
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        values = [_dev(r)[0] for r in mine]
        methods[method] = {
            "seeds": [r["seed"] for r in mine], "dev": values, "dev_mean_std": study_runs.mean_std(values),
            "dev_all_metrics": [_dev(r)[1] for r in mine],
            "training_wall_time_s": [study_runs.training_time(r) for r in mine],
            "run_wall_time_s": [r["study"]["wall_time_s"] for r in mine],
        }
    return {
        "task": task, "metric": first["metric"], "num_examples": first["num_examples"],
        "majority": glue.majority_class(task, _setting(_task_config(task), "data_dir")),
        "teacher": {"net": teacher["student"]["net"], "params": teacher["student"]["params"],
                    "dev": _dev(teacher)[0], "dev_all_metrics": _dev(teacher)[1],
                    "run_wall_time_s": teacher["study"]["wall_time_s"]},
        "student": {"net": first["student"]["net"], "params": first["student"]["params"]},
        "epochs": len(first["history"].get("loss", [])),
        "methods": methods, "paper": PAPER.get(task),
        "wall_time_s": teacher["study"]["wall_time_s"] + sum(r["study"]["wall_time_s"] for r in runs),
        "cpus_per_run": [r["study"].get("cpus") for r in [teacher, *runs]],
        "resumed_runs": sorted(os.path.basename(r["workdir"]) for r in [teacher, *runs]
                               if r["study"].get("interrupted_attempts_s") or r["study"].get("resumed")),
    }


# Gap columns of the table, (method, baseline), each shown when the study ran both.
GAPS = (("akd", "finetune"), ("akd", "kd"), ("ckd", "kd"), ("ckd", "akd"))


def _table(tasks, command, methods):
    """The study's Markdown table: a row per task and metric, a column per method in ``methods`` (mean ± std, per
    seed), then the gaps of `GAPS` between the methods' means; and the minutes it took in all."""
    gaps = [(a, b) for a, b in GAPS if a in methods and b in methods]

    def values(task, method, metric):
        m = task["methods"].get(method)
        return None if not m else [100 * v[metric] for v in m["dev_all_metrics"]]

    def cell(task, method, metric):
        v = values(task, method, metric)
        if not v:
            return "—"
        mean, std = study_runs.mean_std(v)
        return f"{mean:.2f} ± {std:.2f} ({', '.join(f'{x:.1f}' for x in v)})"

    def gap(task, a, b, metric):
        va, vb = values(task, a, metric), values(task, b, metric)
        if not va or not vb:
            return "—"
        return f"{study_runs.mean_std(va)[0] - study_runs.mean_std(vb)[0]:+.2f}"

    first = tasks[0]
    cores = study_runs.cores(n for t in tasks for n in t["cpus_per_run"])
    seeds = max(len(m["dev"]) for m in first["methods"].values())
    lines = [
        f"GLUE dev, teacher {first['teacher']['net']} ({first['teacher']['params']:,} params, fine-tuned per task) → "
        f"student {first['student']['net']} ({first['student']['params']:,} params), {first['epochs']} student "
        f"epochs, {seeds} seeds per method (mean ± std, per seed in brackets), {cores}. "
        "Metric ×100; the first row of a task is its GLUE metric, which selects the best epoch.",
        "",
        "| task (metric) | teacher | majority class | " + "".join(f"{NAMES[m]} | " for m in methods)
        + "".join(f"{SHORT[a]} − {SHORT[b]} | " for a, b in gaps) + "paper: teacher / fine-tune / KD / AKD | min |",
        "|---|---|---|" + "---|" * (len(methods) + len(gaps)) + "---|---|",
    ]
    for t in tasks:
        paper = t["paper"]
        paper_cell = " / ".join(f"{paper[k]}" for k in ("teacher", "finetune", "kd", "akd")) if paper else "—"
        majority = t.get("majority")
        for i, metric in enumerate([t["metric"], *(k for k in t["teacher"]["dev_all_metrics"] if k != t["metric"])]):
            name = METRIC_NAMES.get(metric, metric)
            label = (f"{TASK_NAMES[t['task']]} ({name}, {t['num_examples']['train']:,} train)" if i == 0
                     else f"{TASK_NAMES[t['task']]} ({name})")
            floor = f"{100 * majority[metric]:.2f}" if majority else "—"
            lines.append(f"| {label} | {100 * t['teacher']['dev_all_metrics'][metric]:.2f} | {floor} | "
                         + "".join(f"{cell(t, m, metric)} | " for m in methods)
                         + "".join(f"{gap(t, a, b, metric)} | " for a, b in gaps)
                         + (f"{paper_cell} | {t['wall_time_s'] / 60:.0f} |" if i == 0 else " | |"))
    total = sum(t["wall_time_s"] for t in tasks) / 60
    lines += ["", "majority class: every dev example given the training set's most frequent class (— for a "
              "regression task). std: sample standard deviation over seeds. min: the task's runs (teacher fine-tuning, every "
              "student run with its data, teacher logits, evaluation and export), summed. Paper: RoBERTa-large → "
              "DistilRoBERTa, 14 + 4 epochs, one run.",
              f"Whole study: {total:.0f} min. Command: `{command}`"]
    resumed = [f"{t['task']}/{name}" for t in tasks for name in t.get("resumed_runs", [])]
    if resumed:
        lines.append(f"Resumed from a checkpoint after a killed process: {', '.join(resumed)}.")
    return "\n".join(lines), total


def _plot(tasks, output):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    colors = {"teacher": "tab:gray", "finetune": "tab:blue", "kd": "tab:green", "akd": "tab:red", "ckd": "tab:purple"}
    fig, ax = plt.subplots(figsize=(max(6.5, 2.2 + 2.2 * len(tasks)), 4.5))
    width = 0.8 / (1 + len(FLAGS.methods))
    floor_labelled = False
    for i, t in enumerate(tasks):
        ax.bar(i, t["teacher"]["dev"], width, color=colors["teacher"], label="teacher" if i == 0 else None)
        if t.get("majority"):
            ax.hlines(100 * t["majority"][t["metric"]], i - width / 2, i + width * (len(FLAGS.methods) + 0.5),
                      colors="k", linestyles="--", linewidth=1, zorder=4,
                      label=None if floor_labelled else "majority class")
            floor_labelled = True
        for j, method in enumerate(FLAGS.methods, start=1):
            m = t["methods"].get(method)
            if m:
                mean, std = m["dev_mean_std"]
                ax.bar(i + j * width, mean, width, yerr=std, capsize=3, color=colors.get(method),
                       label=NAMES[method] if i == 0 else None)
                ax.scatter([i + j * width] * len(m["dev"]), m["dev"], s=8, color="k", zorder=3)
    ax.set_xticks(np.arange(len(tasks)) + width * len(FLAGS.methods) / 2)
    ax.set_xticklabels([f"{TASK_NAMES[t['task']]}\n({METRIC_NAMES.get(t['metric'], t['metric'])})" for t in tasks])
    ax.set_ylabel("GLUE dev metric ×100")
    ax.set_title("Pre-trained teacher → truncated student: mean ± std over seeds (dots: seeds)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=5)
    fig.tight_layout()
    fig.savefig(output + ".png", dpi=110)
    plt.close(fig)


def main(argv):
    study_runs.check_arguments(argv, FLAGS.methods, NAMES)
    bad = sorted(set(FLAGS.tasks) - set(glue.TASKS))
    if bad:
        raise app.UsageError(f"Unknown --tasks {bad}. Allowed: {', '.join(glue.TASKS)}")
    configs = [_task_config(task) for task in FLAGS.tasks]  # all checked before the first run
    study_runs.log(f"GLUE study in {FLAGS.workdir}: {', '.join(FLAGS.tasks)}; teacher, then "
                   f"{len(FLAGS.methods)} methods x {len(FLAGS.seeds)} seeds per task ({', '.join(configs)})")
    tasks = [_summarise(task, *_task(task)) for task in FLAGS.tasks]
    command = command_line("benchmarks.glue_study")
    table, minutes = _table(tasks, command, FLAGS.methods)
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output + ".json", "w") as f:
        json.dump({"protocol": {"command": command, "configs": configs, "seeds": FLAGS.seeds,
                                "passed_on": _explicit(), "wall_time_min": minutes,
                                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}},
                   "tasks": tasks}, f, indent=2)
    with open(FLAGS.output + ".md", "w") as f:
        f.write(table + "\n")
    _plot(tasks, FLAGS.output)
    print(table)
    study_runs.log(f"GLUE study done in {minutes:.0f} min: {FLAGS.output}.md")


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=cli.parse_flags)
