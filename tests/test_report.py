"""export.report's plot: eight modes, some of them on the same spot, get labels that do not overlap, inside the
axes, with the legend under them; accuracy in percent, a correlation on its own scale."""

import matplotlib

matplotlib.use("Agg")

from export import report  # noqa: E402

# The modes of a full export: int8/uint8 and fp32/dynamic share a size and nearly a latency; int16x8 is far off.
MODES = [("fp32", 310, 120, 0.8512), ("fp16", 160, 118, 0.8512), ("dynamic", 300, 121, 0.8511),
         ("int8", 95, 60, 0.8490), ("uint8", 95, 61, 0.8490), ("int16x8", 170, 3900, 0.8509),
         ("int4", 60, 150, 0.8402), ("qat", 95, 60, 0.8495)]


def _report(metric="top1", scale=1.0):
    return {"dataset": "cifar10", "metric": metric, "results": [
        {"mode": mode, "size_bytes": kib * 1024, "latency_1_threads": {"median_us": us},
         "metrics": {metric: value * scale}, "keras_metrics": {metric: 0.8512 * scale}}
        for mode, kib, us, value in MODES]}


def test_eight_modes_get_labels_that_do_not_overlap_inside_the_axes():
    fig = report.figure(_report())
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in ax.texts]
    assert [text.get_text().split(",")[0] for text in ax.texts] == [mode for mode, *_ in MODES]
    for i, box in enumerate(boxes):
        for other in boxes[i + 1:]:
            assert not box.overlaps(other), (ax.texts[i].get_text(), box, other)
    inside = ax.get_window_extent(renderer)
    assert all(inside.contains(b.x0, b.y0) and inside.contains(b.x1, b.y1) for b in boxes)
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.y1 <= inside.y0  # under the axes, off the points
    assert ax.get_ylabel() == "test top-1 (%)"


def test_a_correlation_keeps_its_scale(tmp_path):
    fig = report.figure(_report("matthews", scale=0.5))
    assert fig.axes[0].get_ylabel() == "test Matthews corr."
    assert report.plot(_report(), str(tmp_path / "plot.png")) == str(tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 10_000
