"""The budget curve: AKD's paired differences against each baseline across studies, as table, JSON and plot."""

import json
import os
import shlex
import subprocess
import sys

import pytest

import cli_cases
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
    assert "| short | 15 | — | 70.50 ± 0.71 | 72.50 ± 0.71 | 72.50 ± 0.00 | 70.50 ± 0.71 | -2.00 ± 0.00 |" in text
    assert "- short: AKD lost to KD by 2.00 pt (behind on both seeds: -2.00, -2.00)" in text
    assert "beat scratch by 1.00 pt" not in text and "tied with scratch" in text  # +1 and -1: a tie, not a win
    assert "- long: AKD beat KD by 1.50 pt" in text and "beat scratch by 3.50 pt" in text


def test_each_row_states_its_teacher_views():
    flags = {"protocol": {"flags": ["--teacher_net=resnet110", "--teacher_views=16", "--phase1_epochs=60"]}}
    rows = [budget_curve.summarise({**LONG, **flags}, "long"),
            budget_curve.summarise({**SHORT, "protocol": {"flags": ["--teacher_views=0"]}}, "short")]
    assert [r["teacher_views"] for r in rows] == [16, 0]
    lines = budget_curve.table(rows).splitlines()
    assert lines[0].startswith("| study | student epochs | teacher views K | scratch test top-1 % |")
    assert lines[2].startswith("| long | 45 | 16 | ") and lines[3].startswith("| short | 15 | none | ")


def test_unpaired_or_akd_free_studies_are_refused():
    with pytest.raises(ValueError, match="share no seed"):
        budget_curve.summarise({"methods": {"akd": {"seeds": [0], "test_top1": [1.0], "epochs": 3},
                                            "kd": {"seeds": [1], "test_top1": [1.0], "epochs": 3}}}, "x")
    with pytest.raises(ValueError, match="no akd runs"):
        budget_curve.summarise({"methods": {"kd": {"seeds": [0], "test_top1": [1.0], "epochs": 3}}}, "x")


VARIANT = _study(15, {"scratch": [70.5, 70.0], "kd": [73.0, 72.0], "takd": [72.0, 73.5], "akd": [74.0, 72.0]})


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """The CLI's runs of this module through its own flags and main, in one interpreter (tests/cli_cases.py)."""
    directory = tmp_path_factory.mktemp("curve")
    paths = {}
    for name, study in (("long", LONG), ("short", SHORT), ("variant", VARIANT)):
        paths[name] = str(directory / f"{name}.json")
        (directory / f"{name}.json").write_text(json.dumps(study))
    cases = {  # the curve out of order (it sorts by epochs); an ablation whose labels have spaces; one study alone
        "curve": [f"--studies={paths['long']},{paths['short']}", f"--output={directory / 'curve'}"],
        "ablation": [f"--studies={paths['short']},{paths['variant']}", "--labels=at 0.1,at 0.01", "--ablation",
                     "--noplot", f"--output={directory / 'ab'}"],
        "alone": [f"--studies={paths['short']}", "--ablation", f"--output={directory / 'x'}"],
    }
    return directory, cli_cases.run_in_subprocess("benchmarks.budget_curve", cases, str(directory), ROOT)


def test_cli_writes_table_json_and_plot(cli):
    directory, results = cli
    assert results["curve"]["returncode"] == 0, results["curve"]["stderr"][-2000:]
    rows = json.loads((directory / "curve.json").read_text())["rows"]
    assert [r["epochs"] for r in rows] == [15, 45] and rows[1]["akd_minus"]["kd"]["mean_std"] == [1.5, 0.0]
    assert (directory / "curve.png").stat().st_size > 10_000
    assert "AKD − TAKD (pt)" in (directory / "curve.md").read_text()


def test_ablation_tabulates_each_methods_change_paired_by_seed(cli, tmp_path):
    diff = budget_curve.changes(SHORT, VARIANT, ("recipe", "variant"))
    assert diff["akd"]["per_seed"] == [3.0, 2.0] and diff["akd"]["mean_std"] == pytest.approx((2.5, 0.5 ** 0.5))
    assert diff["scratch"]["per_seed"] == [0.5, -1.0] and diff["kd"]["mean_std"] == (0.0, 0.0)
    directory, results = cli
    assert results["ablation"]["returncode"] == 0, results["ablation"]["stderr"][-2000:]
    text = (directory / "ab.md").read_text()
    assert "| AKD | 70.50 ± 0.71 | 73.00 ± 1.41 | +2.50 ± 0.71 | up on both seeds: +3.00, +2.00 |" in text
    assert "| scratch | 70.50 ± 0.71 | 70.25 ± 0.35 | -0.25 ± 1.06 | down on 1 of 2 seeds: +0.50, -1.00 |" in text
    assert "| KD | 72.50 ± 0.71 | 72.50 ± 0.71 | +0.00 ± 0.00 | unchanged on every seed |" in text
    assert [r["label"] for r in json.loads((directory / "ab.json").read_text())["rows"]] == ["at 0.1", "at 0.01"]
    assert not (directory / "ab.png").exists()
    alone = results["alone"]
    assert alone["returncode"] != 0 and "--ablation needs a reference study and at least one variant" in alone["stderr"]
    # The command written under the table makes the same table again when pasted into a shell (labels with spaces),
    # as a real process.
    command = text.rsplit("Command: `", 1)[1].split("`", 1)[0]
    assert command.startswith("python -m benchmarks.budget_curve ")
    (directory / "ab.md").unlink()
    again = subprocess.run(["bash", "-c", shlex.quote(sys.executable) + command[len("python"):]], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (directory / "ab.md").read_text() == text


def test_continuation_kd_rows_are_paired_against_kd_akd_and_takd(tmp_path):
    with_ckd = _study(15, {"scratch": [70.0, 71.0], "kd": [73.0, 72.0], "takd": [72.5, 72.5], "akd": [71.0, 70.0],
                           "ckd": [74.0, 72.5]})
    row = budget_curve.summarise(with_ckd, "short")
    assert row["ckd_minus"]["kd"]["per_seed"] == [1.0, 0.5] and row["ckd_minus"]["akd"]["per_seed"] == [3.0, 2.5]
    text = budget_curve.table([row, budget_curve.summarise(LONG, "long")])
    header = text.splitlines()[0]
    assert "CKD test top-1 %" in header and header.endswith("| CKD − KD (pt) | CKD − AKD (pt) | CKD − TAKD (pt) |")
    assert text.splitlines()[2].endswith("| +0.75 ± 0.35 | +2.75 ± 0.35 | +0.75 ± 1.06 |")
    assert text.splitlines()[3].endswith("| — | — | — |")  # the long study has no CKD runs
    assert "- short: CKD beat KD by 0.75 pt (ahead on both seeds: +1.00, +0.50), beat AKD by 2.75 pt" in text
    budget_curve.plot([row], str(tmp_path / "curve.png"))
    assert (tmp_path / "curve.png").stat().st_size > 0
