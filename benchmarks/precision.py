"""Mixed precision against float32 on real CIFAR-10, same data, same global batch, for each step that matters:
(a) the student's training step, (b) the teacher's inference, (c) the AKD phase-1 step with the teacher in the
loop, (d) the AKD phase-1 step on cached teacher views.

    python -m benchmarks.precision --images=2048 --repeats=5
    python -m benchmarks.precision --precisions=none,bfloat16,float16,none+xla

A variant is a ``--mixed_precision`` value, with ``+xla`` for its steps compiled by XLA (``jit_compile=True``).

Every model is built once per precision (a model keeps the dtype policy it was built in), then each round times
one epoch of every (step, precision) back to back, so the speed-ups are ratios within a round; the first round
only traces. Figures are medians over ``repeats`` rounds and the fastest epoch of each. Writes ``.json``, ``.md``
and a ``.png`` bar chart. Weights are random: speed does not depend on them.
"""

from absl import app, flags

from akd_tf.command import command_line
from benchmarks import speed

FLAGS = flags.FLAGS


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    speed.define_flags(images=2048, repeats=5, output="benchmarks/results/precision")  # .json, .md, .png
    flags.DEFINE_list("precisions", ["none", "bfloat16"], "Variants to compare: --mixed_precision values, each "
                      "optionally with +xla (jit_compile); the first is the baseline.")
    flags.DEFINE_float("goal", 1.2, "The speed-up of (c) in bfloat16 over the baseline that the issue asks for.")


STEPS = {
    "student_train": "(a) {student} training step",
    "teacher_inference": "(b) {teacher} inference",
    "akd_phase1": "(c) AKD phase 1, teacher in the loop",
    "akd_phase1_views": "(d) AKD phase 1, cached teacher views",
}


def _variant(name):
    """``(mixed_precision value, jit_compile)`` of a variant such as ``bfloat16+xla``; `ValueError` if unknown."""
    from akd_tf import precision

    base, _, xla = name.partition("+")
    if xla not in ("", "xla"):
        raise ValueError(f"Unknown variant {name!r}: expected <mixed_precision>[+xla], e.g. bfloat16+xla")
    precision.policy_name(base)
    return base, bool(xla)


def _steps(splits, variant):
    """The four timed callables (`speed.project_steps`), on models built in the variant's precision."""
    from akd_tf import precision

    precision_name, jit = _variant(variant)
    precision.set_global(precision_name)
    try:
        return speed.project_steps(splits, FLAGS.teacher_net, FLAGS.student_net, jit_compile=jit)[0]
    finally:
        precision.set_global("none")


def _plot(medians, fastest, names, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    precisions = list(next(iter(medians.values())))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(precisions)
    for i, p in enumerate(precisions):
        x = np.arange(len(names)) + i * width
        ax.bar(x, [medians[k][p] for k in names], width, label=f"{p} (median)")
        ax.scatter(x, [fastest[k][p] for k in names], color="black", marker="_", s=200,
                   label="fastest epoch" if i == 0 else None)
    ax.set_xticks(np.arange(len(names)) + width * (len(precisions) - 1) / 2)
    ax.set_xticklabels([names[k] for k in names], rotation=12, fontsize=8)
    ax.set_ylabel("images / s")
    ax.set_yscale("log")
    ax.set_title("Mixed precision vs float32, CIFAR-10 batch {}".format(FLAGS.batch_size))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv):
    del argv
    import numpy as np

    for p in FLAGS.precisions:
        _variant(p)  # validate before anything slow
    splits = speed.load_images()
    n = splits.num_examples["train"]
    print(f"building {len(FLAGS.precisions)} model sets and one view of teacher logits each (not timed)", flush=True)
    runs = {p: _steps(splits, p) for p in FLAGS.precisions}
    flat = speed.interleaved({**{f"{k} {p}": runs[p][k] for k in STEPS for p in FLAGS.precisions},
                              speed.REFERENCE: speed.host_reference()}, FLAGS.repeats, n)
    reference = flat.pop(speed.REFERENCE)
    seconds = {k: {p: flat[f"{k} {p}"] for p in FLAGS.precisions} for k in STEPS}
    rates = {k: {p: n / np.array(t) for p, t in v.items()} for k, v in seconds.items()}
    medians = {k: {p: float(np.median(r)) for p, r in v.items()} for k, v in rates.items()}
    fastest = {k: {p: float(r.max()) for p, r in v.items()} for k, v in rates.items()}
    base = FLAGS.precisions[0]
    speedups = {k: {p: {"median": float(np.median(rates[k][p] / rates[k][base])), "fastest": fastest[k][p] / fastest[k][base],
                        "per_round": [float(v) for v in rates[k][p] / rates[k][base]]}
                    for p in FLAGS.precisions[1:]} for k in STEPS}
    # The goal is for bfloat16 (plain or with XLA) against the baseline.
    goal = {p: {"step": "akd_phase1", "target": FLAGS.goal, "median": speedups["akd_phase1"][p]["median"],
                "met": speedups["akd_phase1"][p]["median"] >= FLAGS.goal}
            for p in FLAGS.precisions[1:] if _variant(p)[0] == "bfloat16"}
    report = {
        "command": command_line("benchmarks.precision", [FLAGS[k].serialize() for k in (
            "images", "batch_size", "repeats", "precisions", "teacher_net", "student_net")]),
        "machine": speed.machine(),
        "two_speeds": {k: {p: speed.two_speeds(t) for p, t in d.items()} for k, d in seconds.items()},
        "images_per_second": medians, "fastest_images_per_second": fastest,
        "epoch_seconds": {k: {p: [float(t) for t in v] for p, v in d.items()} for k, d in seconds.items()},
        "speedup_over_" + base: speedups, "goal": goal,
        "host_reference": {"epoch_seconds": [float(t) for t in reference],
                           "median_over_fastest": speed.steadiness(reference)},
    }
    names = {k: v.format(student=FLAGS.student_net, teacher=FLAGS.teacher_net) for k, v in STEPS.items()}
    others = FLAGS.precisions[1:]
    lines = [
        f"Mixed precision, CIFAR-10, batch {FLAGS.batch_size}, {n} images, median of {FLAGS.repeats} interleaved "
        f"rounds",
        "",
        "| step | " + " | ".join(f"{p} img/s (fastest)" for p in FLAGS.precisions) + " | "
        + " | ".join(f"{p} / {base}, median (fastest)" for p in others) + " |",
        "|---|" + "---|" * (len(FLAGS.precisions) + len(others)),
        *(f"| {names[k]} | " + " | ".join(f"{medians[k][p]:.0f} ({fastest[k][p]:.0f})" for p in FLAGS.precisions)
          + " | " + " | ".join(f"{speedups[k][p]['median']:.2f}x ({speedups[k][p]['fastest']:.2f}x)" for p in others)
          + " |" for k in STEPS),
        "",
        *(f"Goal: (c) in {p} >= {FLAGS.goal:.1f}x {base}: {'met' if g['met'] else 'not met'} "
          f"({g['median']:.2f}x)." for p, g in goal.items()),
        "",
        "Two speeds (rounds in a fast and a slow cluster, benchmarks.speed.two_speeds): "
        + (", ".join(f"{names[k]} in {p}" for k, d in report["two_speeds"].items() for p, flagged in d.items()
                     if flagged) or "none") + ".",
        "",
        speed.reference_line(reference),
    ]
    speed.write(FLAGS.output, report, lines)
    _plot(medians, fastest, names, FLAGS.output + ".png")


if __name__ == "__main__":
    define_flags()
    app.run(main)
