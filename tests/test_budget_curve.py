"""The budget curve: AKD's paired differences against each baseline across studies, as table, JSON and plot."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import budget_curve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _study(epochs, top1):
    """A study JSON as benchmarks.cifar_study writes it (only the fields the curve reads)."""
    return {"methods": {m: {"seeds": [0, 1], "test_top1": values, "epochs": epochs} for m, values in top1.items()}}


SHORT = _study(15, {"scratch": [70.0, 71.0], "kd": [73.0, 72.0], "takd": [72.5, 72.5], "akd": [71.0, 70.0]})
LONG = _study(45, {"scratch": [80.0, 81.0], "kd": [82.0, 83.0], "takd": [82.0, 82.0], "akd": [83.5, 84.5]})


def test_differences_are_paired_by_seed():
    row = budget_curve.summarise(SHORT, "short")
    assert row["akd_minus"]["kd"]["per_seed"] == [-2.0, -2.0] and row["akd_minus"]["kd"]["mean_std"] == (-2.0, 0.0)
    assert row["akd_minus"]["scratch"]["per_seed"] == [1.0, -1.0]
    mean, std = row["akd_minus"]["scratch"]["mean_std"]
    assert mean == 0.0 and std == pytest.approx(2 ** 0.5)
    assert row["methods"]["akd"] == pytest.approx((70.5, 0.5 ** 0.5))
    text = budget_curve.table([row, budget_curve.summarise(LONG, "long")])
    assert "| short | 15 | 70.50 ± 0.71 | 72.50 ± 0.71 | 72.50 ± 0.00 | 70.50 ± 0.71 | -2.00 ± 0.00 |" in text
    assert "- short: AKD lost to KD by 2.00 pt (more than the seed-to-seed std 0.00)" in text
    assert "- long: AKD beat KD by 1.50 pt" in text and "beat scratch by 3.50 pt" in text


def test_unpaired_or_akd_free_studies_are_refused():
    with pytest.raises(ValueError, match="share no seed"):
        budget_curve.summarise({"methods": {"akd": {"seeds": [0], "test_top1": [1.0], "epochs": 3},
                                            "kd": {"seeds": [1], "test_top1": [1.0], "epochs": 3}}}, "x")
    with pytest.raises(ValueError, match="no akd runs"):
        budget_curve.summarise({"methods": {"kd": {"seeds": [0], "test_top1": [1.0], "epochs": 3}}}, "x")


def test_cli_writes_table_json_and_plot(tmp_path):
    paths = []
    for name, study in (("long", LONG), ("short", SHORT)):  # out of order: the curve sorts by epochs
        paths.append(str(tmp_path / f"{name}.json"))
        (tmp_path / f"{name}.json").write_text(json.dumps(study))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.budget_curve", f"--studies={','.join(paths)}",
                           f"--output={tmp_path / 'curve'}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((tmp_path / "curve.json").read_text())["rows"]
    assert [r["epochs"] for r in rows] == [15, 45] and rows[1]["akd_minus"]["kd"]["mean_std"] == [1.5, 0.0]
    assert (tmp_path / "curve.png").stat().st_size > 10_000
    assert "AKD − TAKD (pt)" in (tmp_path / "curve.md").read_text()
