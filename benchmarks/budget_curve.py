"""Where does Annealing-KD pay off? AKD against KD, TAKD and scratch across studies of the same protocol at
different student budgets (``benchmarks.cifar_study`` outputs), or a study against its ablation.

    python -m benchmarks.budget_curve --studies=benchmarks/results/cifar_study_short.json,\\
        benchmarks/results/cifar_study_mid.json,benchmarks/results/cifar_study_long.json \\
        --output=benchmarks/results/budget_curve
    python -m benchmarks.budget_curve --labels="recipe (restart at 0.1),restart at 0.01" --noplot --ablation \\
        --studies=benchmarks/results/cifar_study_short.json,benchmarks/results/cifar_study_short_phase2_lr0.01.json \\
        --output=benchmarks/results/phase2_lr_ablation

Differences are paired by seed: runs with the same seed start from the same student weights and see the same
teacher views, so ``AKD − KD`` is averaged over the per-seed differences (mean ± sample std). Writes
``<output>.md`` (table and one plain sentence per study; with ``--ablation`` also each method's change from the
first study, paired by seed), ``.json`` and, unless ``--noplot``, ``.png`` (the differences against the student's
epochs, with the zero line).
"""

from __future__ import annotations

import json
import os

import numpy as np
from absl import app, flags

from akd_tf.command import command_line
from benchmarks.method_names import CIFAR_STUDY as METHODS
from benchmarks.method_names import SHORT as NAMES

FLAGS = flags.FLAGS


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    flags.DEFINE_list("studies", None, "Study JSON files (benchmarks.cifar_study --output), one per budget.",
                      required=True)
    flags.DEFINE_list("labels", None, "A row label per study (default: '<epochs> epochs').")
    flags.DEFINE_string("output", "benchmarks/results/budget_curve", "Output path without extension.")
    flags.DEFINE_bool("plot", True, "Draw the differences against the student's epochs.")
    flags.DEFINE_bool("ablation", False, "The first study is the reference, the others its variants: also tabulate "
                      "each method's change from it, paired by seed (keeps the given order).")


# The methods the curve is about, each against the methods it is measured against (paired by seed): Annealing-KD,
# which every study has; Continuation-KD, where a study has it, against the baseline it must beat and the method it
# succeeds. The first is the reference: its epochs are the row's budget.
SUBJECTS = {"akd": ("kd", "takd", "scratch"), "ckd": ("kd", "akd", "takd")}
REFERENCE = next(iter(SUBJECTS))
AGAINST, CKD_AGAINST = SUBJECTS.values()


def _mean_std(values):
    values = np.asarray(values, float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def summarise(study: dict, label: str) -> dict:
    """Mean ± std per method and AKD's paired differences against each other method, for one study."""
    methods = study["methods"]
    if REFERENCE not in methods:
        raise ValueError(f"{label}: the study has no {REFERENCE} runs; methods: {sorted(methods)}")
    row = {"label": label, "epochs": methods[REFERENCE]["epochs"], "teacher_views": _teacher_views(study),
           "methods": {}}
    for method in METHODS:
        if method in methods:
            row["methods"][method] = _mean_std(methods[method]["test_top1"])
    for subject, against in SUBJECTS.items():
        if subject in methods:
            row[f"{subject}_minus"] = {other: _paired(methods[subject], methods[other], f"{label}: {subject} and {other}")
                                       for other in against if other in methods}
    return row


def _teacher_views(study: dict):
    """K of the study's ``--teacher_views`` (0: the teacher ran at every step), None where its flags are not given."""
    for flag in study.get("protocol", {}).get("flags", ()):
        if flag.startswith("--teacher_views="):
            return int(flag.split("=", 1)[1])
    return None


def _paired(mine: dict, theirs: dict, what: str) -> dict:
    """``mine − theirs`` per shared seed (two ``methods`` entries of study JSONs), with their mean ± std."""
    a = dict(zip(mine["seeds"], mine["test_top1"]))
    b = dict(zip(theirs["seeds"], theirs["test_top1"]))
    paired = sorted(set(a) & set(b))
    if not paired:
        raise ValueError(f"{what} share no seed ({sorted(a)} and {sorted(b)})")
    differences = [a[s] - b[s] for s in paired]
    return {"seeds": paired, "per_seed": differences, "mean_std": _mean_std(differences)}


def _seeds_agreeing(per_seed, mean, sides=("ahead", "behind")) -> str:
    """How many seeds share the mean's sign, with the per-seed values: with 2 or 3 seeds a std says little, the
    signs and values say what there is."""
    same = sum(1 for d in per_seed if d * mean > 0)
    side = sides[0] if mean > 0 else sides[1]
    count = "both" if same == len(per_seed) == 2 else f"{same} of {len(per_seed)}"
    return f"{side} on {count} seed{'s' if len(per_seed) > 1 else ''}: " + ", ".join(f"{d:+.2f}" for d in per_seed)


def _verdict(row, method=REFERENCE):
    parts = []
    for other, diff in row[f"{method}_minus"].items():
        mean = diff["mean_std"][0]
        if mean == 0:
            parts.append(f"tied with {NAMES[other]}")
            continue
        word = "beat" if mean > 0 else "lost to"
        parts.append(f"{word} {NAMES[other]} by {abs(mean):.2f} pt ({_seeds_agreeing(diff['per_seed'], mean)})")
    seeds = max((len(d["seeds"]) for d in row[f"{method}_minus"].values()), default=0)
    return f"{row['label']}: {NAMES[method]} " + ", ".join(parts) + f"; over {seeds} seed{'s' if seeds != 1 else ''}."


def changes(reference: dict, variant: dict, labels) -> dict:
    """Each method's test top-1 change from the reference study to the variant (an ablation), paired by seed."""
    return {method: _paired(variant["methods"][method], reference["methods"][method],
                            f"{method}: {labels[0]!r} and {labels[1]!r}")
            for method in METHODS if method in reference["methods"] and method in variant["methods"]}


def changes_table(rows, diffs) -> str:
    """One table per variant (``diffs[i]`` from ``changes`` for ``rows[i + 1]``): every method's change from the
    first study, so an ablation shows what it does to each method, not only to AKD's margins."""
    reference, lines = rows[0], []
    for row, diff in zip(rows[1:], diffs):
        lines += [f"Change from {reference['label']} to {row['label']}, per method (test top-1, paired by seed):", "",
                  f"| method | {reference['label']} | {row['label']} | change (pt) | seeds |", "|---|---|---|---|---|"]
        for method, d in diff.items():
            mean, std = d["mean_std"]
            seeds = _seeds_agreeing(d["per_seed"], mean, ("up", "down")) if mean else "unchanged on every seed"
            ref, var = reference["methods"][method], row["methods"][method]
            lines.append(f"| {NAMES[method]} | {ref[0]:.2f} ± {ref[1]:.2f} | {var[0]:.2f} ± {var[1]:.2f} | "
                         f"{mean:+.2f} ± {std:.2f} | {seeds} |")
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def table(rows) -> str:
    present = [m for m in METHODS if any(m in r["methods"] for r in rows)]
    against = [m for m in AGAINST if any(m in r["akd_minus"] for r in rows)]
    ckd_against = [m for m in CKD_AGAINST if any(m in r.get("ckd_minus", {}) for r in rows)]
    head = (["study", "student epochs", "teacher views K"] + [f"{NAMES[m]} test top-1 %" for m in present]
            + [f"AKD − {NAMES[m]} (pt)" for m in against] + [f"CKD − {NAMES[m]} (pt)" for m in ckd_against])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def difference(diffs, m):
        return f"{diffs[m]['mean_std'][0]:+.2f} ± {diffs[m]['mean_std'][1]:.2f}" if m in diffs else "—"

    for r in rows:
        views = r.get("teacher_views")
        cells = [r["label"], str(r["epochs"]), "—" if views is None else str(views) if views else "none"]
        cells += [f"{r['methods'][m][0]:.2f} ± {r['methods'][m][1]:.2f}" if m in r["methods"] else "—" for m in present]
        cells += [difference(r["akd_minus"], m) for m in against]
        cells += [difference(r.get("ckd_minus", {}), m) for m in ckd_against]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Mean ± sample std over seeds; differences are per seed (same student initialisation), then averaged.",
              ""] + [f"- {_verdict(r, subject)}" for subject in SUBJECTS for r in rows if f"{subject}_minus" in r]
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"kd": "tab:blue", "takd": "tab:green", "scratch": "tab:gray", "akd": "tab:red"}
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    for (method, against), style, marker in zip(SUBJECTS.items(), ("-", "--"), ("o", "s")):
        for other in against:
            points = [(r["epochs"], *r[f"{method}_minus"][other]["mean_std"]) for r in rows
                      if other in r.get(f"{method}_minus", {})]
            if points:
                x, mean, std = map(np.asarray, zip(*sorted(points)))
                ax.errorbar(x, mean, yerr=std, marker=marker, capsize=4, linestyle=style,
                            color=colors[other], label=f"{NAMES[method]} − {NAMES[other]}")
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set_xlabel("student epochs (AKD: phase 1 + phase 2; CKD: one phase)")
    ax.set_ylabel("test top-1 difference (points)")
    ax.set_title(("Annealing-KD and Continuation-KD" if any(r.get("ckd_minus") for r in rows) else "Annealing-KD")
                 + " against the baselines, by student budget\n(mean ± std over seeds, paired by seed)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: inside, it hides the error bars
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.labels and len(FLAGS.labels) != len(FLAGS.studies):
        raise app.UsageError(f"--labels needs one label per study: {len(FLAGS.studies)} studies, "
                             f"{len(FLAGS.labels)} labels")
    if FLAGS.ablation and len(FLAGS.studies) < 2:
        raise app.UsageError(f"--ablation needs a reference study and at least one variant; got {FLAGS.studies}")
    rows, studies = [], []
    for i, path in enumerate(FLAGS.studies):
        if not os.path.isfile(path):
            raise app.UsageError(f"--studies: no file {path!r} (a benchmarks.cifar_study --output JSON)")
        with open(path) as f:
            studies.append(json.load(f))
        label = FLAGS.labels[i] if FLAGS.labels else f"{studies[-1]['methods']['akd']['epochs']} epochs"
        rows.append(summarise(studies[-1], label))
    diffs = []
    if FLAGS.ablation:
        diffs = [changes(studies[0], study, (rows[0]["label"], row["label"]))
                 for row, study in zip(rows[1:], studies[1:])]
    elif FLAGS.plot:
        rows.sort(key=lambda r: r["epochs"])
    text = table(rows) + ("\n\n" + changes_table(rows, diffs) if diffs else "")
    text += "\n\nCommand: `" + command_line("benchmarks.budget_curve") + "`\n"
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output + ".md", "w") as f:
        f.write(text)
    with open(FLAGS.output + ".json", "w") as f:
        json.dump({"studies": FLAGS.studies, "rows": rows, "changes_from_first": diffs}, f, indent=2)
    if FLAGS.plot:
        plot(rows, FLAGS.output + ".png")
    print(text)


if __name__ == "__main__":
    define_flags()
    app.run(main)
