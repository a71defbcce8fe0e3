"""export_report as markdown and as a PNG plot (size vs latency vs accuracy), and the writing of an export."""

from __future__ import annotations

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401

from akd_tf import machine as machine_lib  # noqa: E402


def markdown(report: dict) -> str:
    """The report as a model card: what the model is, what its files take and return, and how each file did."""
    threads_all = report["threads_all"]
    info = report.get("model_info") or {}
    lines = [f"# {info.get('name', 'Exported student')}", ""]
    if info:
        lines += [info["description"], "",
                  f"Version {info['version']} · licence {info['license']} · author {info['author']}", ""]
    lines += [f"Exported from `{report['model']}` ({report['dataset']})"
              + (f" by `{report['command']}`." if report.get("command") else "."), "", "## Input and output", ""]
    lines += _inputs(report)
    if report.get("labels"):
        scores = ("one probability per class (softmax: they sum to 1; an app can threshold them)"
                  if report.get("outputs", "logits") == "probabilities" else "one score (logit) per class")
        lines += ["", f"Output: {scores}; the highest names the class. Labels, in class-id order "
                  "(also inside each file, as its metadata's label file): "
                  + ", ".join(f"{i} {name}" for i, name in enumerate(report["labels"])) + "."]
    metric = report.get("metric", "top1")
    name = NAMES.get(metric, metric)
    regression = any("pearson_with_keras" in r for r in report["results"])
    ran = [r for r in report["results"] if "metrics" in r.get("mediapipe", {})]
    text = report.get("normalization") is None
    lines += ["", "## Files", "",
              f"Checked on {report['results'][0]['test_examples']:,} test examples against the float Keras student; "
              "latency at batch 1 with the LiteRT interpreter (XNNPACK), p50 / p90 in µs"
              + (f"; MediaPipe: its {'TextClassifier' if text else 'ImageClassifier'} on the file as it is, fed the "
                 f"test {'sentences as raw text' if text else 'images as 8-bit RGB'}, and how often its top class "
                 "equals the LiteRT interpreter's" + (" and the Keras student's" if text else "") if ran else "")
              + ".", ""]
    if report.get("machine"):
        m = report["machine"]
        lines += [f"Machine: {machine_lib.describe(m)}, "
                  f"TensorFlow {m['tensorflow']}, LiteRT {m.get('ai-edge-litert', '?')}, MediaPipe "
                  f"{m.get('mediapipe', '—')}, {m['date']}.", ""]
    header = ["mode", "size (bytes)", "fp32/size", "input", name, f"Keras {name}",
              "Pearson with Keras" if regression else "agreement",
              "max abs probability diff" if report.get("outputs") == "probabilities" else "max abs output diff"]
    if ran:
        header += [f"MediaPipe {name}", "MediaPipe = LiteRT"] + (["MediaPipe = Keras"] if text else [])
    header += ["1 thread", f"{threads_all} threads"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in report["results"]:
        def lat(key):
            value = r.get(key)
            return "—" if not value else f"{value['median_us']:.0f} / {value['p90_us']:.0f}"

        cells = [r["mode"], f"{r['size_bytes']:,}",
                 f"{r['fp32_size_over_this']:.2f}×" if "fp32_size_over_this" in r else "—",
                 _dtypes(r.get("input", {})), f"{r['metrics'][metric]:.4f}", f"{r['keras_metrics'][metric]:.4f}",
                 f"{r.get('pearson_with_keras', r.get('agreement')):.4f}", f"{r['max_abs_output_diff']:.2e}"]
        if ran:
            mp = r.get("mediapipe", {})
            cells += ([f"{mp['metrics'][metric]:.4f}", f"{mp['agreement_with_litert']:.4f}"]
                      + ([f"{mp['agreement_with_keras']:.4f}"] if text else [])) if "metrics" in mp else (
                ["—"] * (3 if text else 2))
        cells += [lat("latency_1_threads"), lat(f"latency_{threads_all}_threads")]
        lines.append("| " + " | ".join(cells) + " |")
    skipped = {}  # why MediaPipe was not run -> the modes
    for r in report["results"]:
        if "skipped" in r.get("mediapipe", {}):
            skipped.setdefault(r["mediapipe"]["skipped"], []).append(r["mode"])
    lines += [""] + [f"MediaPipe not run on {', '.join(modes)}: {why}." for why, modes in skipped.items()]
    dynamic = next((r for r in report["results"] if r["mode"] == "dynamic"), None)
    if dynamic and dynamic.get("fp32_size_over_this", 0) and dynamic["fp32_size_over_this"] < DYNAMIC_PAYS:
        lines.append(f"dynamic is about as large as fp32 ({dynamic['fp32_size_over_this']:.2f}× smaller): the converter "
                     "quantizes only weight tensors of 1,024 elements or more, and this model's are mostly smaller; "
                     "int8 or uint8 quantize all of them.")
    return "\n".join(lines).rstrip("\n") + "\n"


# Below this fp32/dynamic size ratio the card says why dynamic-range quantization left the model about as it was.
DYNAMIC_PAYS = 1.5


NAMES = {"top1": "top-1", "matthews": "Matthews corr.", "f1": "F1", "pearson": "Pearson"}


def _dtypes(described):
    tensors = described.get("tensors", [described])
    return "/".join(sorted({t.get("dtype", "—") for t in tensors}))


def _inputs(report):
    rows = report["results"]
    if report.get("normalization") is None:  # text students: token features
        first = rows[0].get("input", {})
        tensors = first.get("tensors", [first])
        lines = ["Inputs, in the files' order: " + ", ".join(f"`{t['name']}` {t['dtype']} {t['shape']}"
                                                            for t in tensors) + "."]
        tokenizer = report.get("tokenizer")
        if tokenizer:
            lines.append(f"They are made by a {tokenizer.get('class')} (WordPiece; lowercase {tokenizer.get('lowercase')}, "
                         f"strip accents {tokenizer.get('strip_accents')}, unknown token {tokenizer.get('oov_token')}) "
                         f"to {report.get('sequence_length')} tokens: [CLS] text [SEP] (pairs: [CLS] a [SEP] b [SEP], "
                         "segment ids 0 then 1), padded with 0 and a mask of 0. The vocabulary is packed in each file's "
                         "metadata, bound to the id, mask and segment inputs (MediaPipe's TextClassifier reads it).")
        return lines
    shape = rows[0].get("input", {}).get("shape")
    by_dtype = {}
    for r in rows:
        by_dtype.setdefault(r.get("input", {}).get("dtype", "?"), []).append(r["mode"])
    norm = report["normalization"]
    lines = [f"Input: one RGB image {shape}, pixel values 0-255, " + "; ".join(
        f"{dtype} in {', '.join(modes)}" for dtype, modes in by_dtype.items()) + "."]
    if norm["scale"] == 1.0 and set(norm["mean"]) == {0.0} and set(norm["std"]) == {1.0}:
        lines.append("The model takes these values as they are (no normalisation was given).")
    else:
        lines.append(f"The training normalisation is inside the model, (pixel × {norm['scale']:.6g} − mean) / std with "
                     f"mean {norm['mean']} and std {norm['std']}: an app passes camera pixels unchanged.")
    return lines


def plot(report: dict, path: str) -> str:
    """Writes `figure` to ``path``."""
    fig = figure(report)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


# Metrics read as percentages; the others (correlations in [-1, 1]) keep their own scale.
PERCENT = ("top1", "f1")


def figure(report: dict):
    """The files' metric against batch-1 latency (marker area: size), or against size when latency was not
    measured; each point named by its mode, the labels placed apart (`place_labels`), the Keras float student a
    dotted line whose legend sits under the axes, off the points."""
    metric = report.get("metric", "top1")
    rows = report["results"]
    timed = all(r.get("latency_1_threads") for r in rows)
    x = ((lambda r: r["latency_1_threads"]["median_us"]) if timed else (lambda r: r["size_bytes"] / 1024))
    scale = 100 if metric in PERCENT else 1
    fig, ax = plt.subplots(figsize=(7, 4.8))
    points = [(x(r), r["metrics"][metric] * scale) for r in rows]
    for r, (px, py) in zip(rows, points):
        ax.scatter(px, py, s=max(r["size_bytes"] / 1000, 10) if timed else 40, alpha=0.6)
    if rows:
        ax.axhline(rows[0]["keras_metrics"][metric] * scale, color="k", linestyle=":", label="Keras float student")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    ax.set_xscale("log")  # int16x8 runs on reference kernels, ~30x slower than the rest; sizes span 10x
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("latency, batch 1, 1 thread (µs, median, log scale)" if timed else "file size (KiB, log scale)")
    name = NAMES.get(metric, metric)
    ax.set_ylabel(f"test {name} (%)" if scale == 100 else f"test {name}")
    ax.set_title(f"TFLite student, {report['dataset']}" + (" (marker area ∝ file size)" if timed else ""))
    ax.grid(alpha=0.3)
    # Room around the points for their labels.
    ax.margins(x=0.25, y=0.35)
    fig.tight_layout()
    place_labels(ax, points, [f"{r['mode']}, {r['size_bytes'] / 1024:.0f} KiB" if timed else r["mode"] for r in rows])
    return fig


# Where a label may go around its point, in points: nearest first, then farther out (with a leader line).
_OFFSETS = [(dx * d, dy * d) for d in (12, 24, 36, 48) for dx, dy in
            ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1))]


def place_labels(ax, points, labels):
    """Annotates each point with its label at the first offset (`_OFFSETS`) where the label's box overlaps no
    label placed before it and no point, and stays inside the axes; the first offset when none is free."""
    renderer = ax.figure.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    marks = [ax.transData.transform(p) for p in points]
    placed = []
    for point, label in zip(points, labels):
        chosen = None
        for dx, dy in _OFFSETS:
            far = abs(dx) > 12 or abs(dy) > 12
            text = ax.annotate(label, point, xytext=(dx, dy), textcoords="offset points", fontsize=8,
                               ha="center" if dx == 0 else ("left" if dx > 0 else "right"),
                               va="center" if dy == 0 else ("bottom" if dy > 0 else "top"),
                               arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6} if far else None)
            box = text.get_window_extent(renderer).padded(2)
            free = (not any(box.overlaps(other) for other in placed)
                    and not any(box.contains(*mark) for mark in marks)
                    and inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1))
            if free:
                chosen = text
                break
            text.remove()
        if chosen is None:
            dx, dy = _OFFSETS[0]
            chosen = ax.annotate(label, point, xytext=(dx, dy), textcoords="offset points", fontsize=8, ha="center")
        placed.append(chosen.get_window_extent(renderer).padded(2))


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
