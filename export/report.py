"""export_report as markdown and as a PNG plot (size vs latency vs accuracy), and the writing of an export."""

from __future__ import annotations

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401


def markdown(report: dict) -> str:
    threads_all = report["threads_all"]
    lines = [
        f"Export of `{report['model']}` ({report['dataset']}); latency at batch 1, LiteRT Interpreter (XNNPACK), "
        "median / p90 / p99 in µs.",
        "",
        f"| mode | size (bytes) | fp32/size | top-1 | Keras top-1 | agreement | max abs logit diff "
        f"| 1 thread | {threads_all} threads |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        def lat(key):
            value = r.get(key)
            return "—" if not value else f"{value['median_us']:.0f} / {value['p90_us']:.0f} / {value['p99_us']:.0f}"

        lines.append(
            f"| {r['mode']} | {r['size_bytes']:,} | "
            + (f"{r['fp32_size_over_this']:.2f}×" if "fp32_size_over_this" in r else "—") + " "
            f"| {r['top1']:.4f} | {r['keras_top1']:.4f} | {r['agreement']:.4f} | {r['max_abs_logit_diff']:.2e} "
            f"| {lat('latency_1_threads')} | {lat(f'latency_{threads_all}_threads')} |"
        )
    return "\n".join(lines) + "\n"


def plot(report: dict, path: str) -> str:
    rows = [r for r in report["results"] if r.get("latency_1_threads")]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        ax.scatter(r["latency_1_threads"]["median_us"], r["top1"] * 100, s=r["size_bytes"] / 1000, alpha=0.6)
        ax.annotate(f"{r['mode']}\n{r['size_bytes'] / 1024:.0f} KiB",
                    (r["latency_1_threads"]["median_us"], r["top1"] * 100), fontsize=8, ha="center")
    if rows:
        ax.axhline(rows[0]["keras_top1"] * 100, color="k", linestyle=":", label="Keras float student")
        ax.legend(loc="upper center")
    ax.set_xscale("log")  # int16x8 runs on reference kernels, ~30x slower than the rest
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("latency, batch 1, 1 thread (µs, median, log scale)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(f"TFLite student, {report['dataset']} (marker area ∝ file size)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(output: str, files: dict, report: dict) -> None:
    """Writes the ``.tflite`` files and ``export_report.{json,md,png}`` into a temporary sibling of ``output``,
    then swaps it in: a failure leaves an earlier ``output`` as it was."""
    from akd_tf import files as akd_files

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with akd_files.atomic_path(output) as staging:
        os.makedirs(staging)
        for name, content in files.items():
            with open(os.path.join(staging, name), "wb") as f:
                f.write(content)
        with open(os.path.join(staging, "export_report.json"), "w") as f:
            json.dump(report, f, indent=2)
        with open(os.path.join(staging, "export_report.md"), "w") as f:
            f.write(markdown(report))
        plot(report, os.path.join(staging, "export_report.png"))
