"""The front page and docs/: the README stays a front page, its Python example runs as printed, every relative link
resolves, and no page speaks of the machines the project was measured on as prose (that is data, in results)."""

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(os.path.join("docs", name) for name in os.listdir(os.path.join(ROOT, "docs"))
                               if name.endswith(".md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _read(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        return f.read()


def _anchors(text):
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", heading.strip().lower()))
            for heading in re.findall(r"^#+ (.+)$", text, re.M)}


def test_readme_is_a_front_page():
    text = _read("README.md")
    assert len(text.splitlines()) <= 300
    assert text.index("## What it buys") < text.index("## Set up and run") < text.index("## In Keras")


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_resolves(page):
    text = _read(page)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), path)) if path else \
            os.path.join(ROOT, page)
        if not os.path.exists(resolved):
            broken.append(target)
        elif anchor and resolved.endswith(".md") and anchor not in _anchors(_read(os.path.relpath(resolved, ROOT))):
            broken.append(target)
    assert not broken, f"{page}: links that do not resolve: {broken}"


def test_the_headline_table_is_the_budget_curve_result():
    """Each figure of the README's headline table, as benchmarks/results/budget_curve.json has it."""
    import json

    with open(os.path.join(ROOT, "benchmarks", "results", "budget_curve.json")) as f:
        rows = {row["epochs"]: row for row in json.load(f)["rows"]}
    section = _read("README.md").split("## What it buys", 1)[1].split("\n## ", 1)[0]
    table = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| ")]
    head, body = [cell.strip() for cell in table[0]], table[1:]
    assert head[:2] == ["student epochs", "teacher views K"], head
    columns = {"scratch": ("methods", "scratch"), "Hinton KD": ("methods", "kd"), "TAKD": ("methods", "takd"),
               "Annealing-KD": ("methods", "akd"), "Continuation-KD": ("methods", "ckd"),
               "AKD − KD": ("akd_minus", "kd"), "CKD − KD": ("ckd_minus", "kd"), "CKD − AKD": ("ckd_minus", "akd")}
    assert set(head[2:]) <= set(columns), head
    assert sorted(int(cells[0]) for cells in body) == sorted(rows), "the table's budgets are not the result's"
    for cells in body:
        cells = [cell.strip().strip("*").replace("−", "-") for cell in cells]
        row = rows[int(cells[0])]
        assert cells[1] == str(row["teacher_views"]), (cells[0], head[1])
        for name, cell in zip(head[2:], cells[2:]):
            group, method = columns[name]
            assert method in row.get(group, {}), f"{cells[0]} epochs, {name}: README {cell}, the result has no {method}"
            mean, std = row[group][method] if group == "methods" else row[group][method]["mean_std"]
            expected = f"{mean:.2f} ± {std:.2f}" if group == "methods" else f"{mean:+.2f} ± {std:.2f}"
            assert cell == expected, f"{cells[0]} epochs, {name}: README {cell}, result {expected}"


README_EXAMPLES = {  # what each of the README's Python blocks prints, in order
    "images": ("'accuracy':", "'fp32':", "'int8':"),
    "text": ("'fp32': (", "'int4': ("),
}


@pytest.mark.parametrize("index, name", list(enumerate(README_EXAMPLES)))
def test_the_readme_python_examples_run_as_printed(tmp_path, index, name):
    blocks = re.findall(r"```python\n(.*?)```", _read("README.md"), re.S)
    assert len(blocks) == len(README_EXAMPLES)
    script = tmp_path / "readme_example.py"
    script.write_text(blocks[index])
    env = {k: v for k, v in os.environ.items() if k != "TFDS_DATA_DIR"}  # the example names its data itself
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for expected in README_EXAMPLES[name]:
        assert expected in proc.stdout, proc.stdout[-2000:]
    if name == "text":  # {mode: (dev accuracy, MediaPipe's agreement with the Keras student)}
        import ast

        results = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
        assert all(0.5 <= accuracy <= 1 and agreement >= 0.98 for accuracy, agreement in results.values()), results


EXAMPLE_OUTPUT = {"keras_api.py": ("AKD student", "Phase 2 (hard labels)"),
                  "own_images.py": ("Wrote 100 images of each of airplane, cat, ship", "Teacher (pixels 0-255 in"),
                  "own_text.py": ("wrote runs/reviews.csv (2000 rows)",)}  # what an example must print


def test_each_example_script_runs_with_the_command_in_its_docstring():
    directory = os.path.join(ROOT, "examples")
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".py"):
            continue
        text = _read(os.path.join("examples", name))
        commands = [line.strip() for line in text.split('"""')[1].splitlines() if f"examples/{name}" in line]
        assert len(commands) == 1, f"examples/{name}: its docstring gives no single command to run it"
        proc = subprocess.run(["bash", "-c", commands[0]], cwd=ROOT, capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, f"{commands[0]}\n{proc.stderr[-3000:]}"
        for expected in EXAMPLE_OUTPUT.get(name, ()):
            assert expected in proc.stdout, f"{commands[0]}: no {expected!r} in\n{proc.stdout[-2000:]}"


def _own_data_block(page):
    text = _read(page)
    return re.search(r"```bash\n(.*?)```", text[text.index("examples/own_images.py"):], re.S).group(1)


@pytest.mark.slow  # about 2 minutes of the 2 cores: `pytest -m slow`; tests/test_own_data_run.py runs it quicker
def test_the_own_data_commands_run_as_printed():
    block = _own_data_block("README.md")
    assert block == _own_data_block("docs/own-data.md")  # one run, told twice
    env = {k: v for k, v in os.environ.items() if k != "TFDS_DATA_DIR"}  # the commands name their data
    import shutil

    for written in ("photos", "my_teacher.keras", "mine"):  # what the commands write, so that they run as printed
        shutil.rmtree(os.path.join(ROOT, "runs", written), ignore_errors=True)
    if os.path.isfile(os.path.join(ROOT, "runs", "my_teacher.keras")):
        os.remove(os.path.join(ROOT, "runs", "my_teacher.keras"))
    proc = subprocess.run(["bash", "-ec", block], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(open(os.path.join(ROOT, "runs", "mine", "tflite", "export_report.json")).read())
    assert report["labels"] == ["airplane", "cat", "ship"]
    assert [row["mode"] for row in report["results"]] == ["fp32", "uint8"]


@pytest.mark.slow  # about 4 minutes of the 2 cores: `pytest -m slow`; tests/test_own_text.py runs a quicker one
def test_the_own_text_commands_run_as_printed():
    text = _read("docs/own-data.md")
    block = re.search(r"```bash\n(.*?)```", text[text.index("examples/own_text.py"):], re.S).group(1)
    env = {k: v for k, v in os.environ.items() if k != "TFDS_DATA_DIR"}  # the commands name their data
    import shutil

    shutil.rmtree(os.path.join(ROOT, "runs", "reviews"), ignore_errors=True)
    proc = subprocess.run(["bash", "-ec", block], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(open(os.path.join(ROOT, "runs", "reviews", "metrics.json")).read())
    assert metrics["labels"] == ["negative", "positive"]
    assert metrics["num_examples"] == {"train": 1620, "validation": 180, "test": 200}
    report = json.loads(open(os.path.join(ROOT, "runs", "reviews", "tflite", "export_report.json")).read())
    assert report["labels"] == ["negative", "positive"]
    assert all(row["mediapipe"]["categories"] == ["negative", "positive"] for row in report["results"])


def _fenced_blocks(text):
    """(info string, body) of every fenced code block of a Markdown page, fence by fence."""
    blocks, info, body = [], None, []
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if info is None:
                info, body = line.lstrip()[3:].strip(), []
            else:
                blocks.append((info, "\n".join(body)))
                info = None
        elif info is not None:
            body.append(line)
    return blocks


def _documented_commands():
    """Every ``python -m <module>`` command of a shell block in the README and docs/: (page, module, its flags)."""
    import shlex

    commands = []
    for page in PAGES:
        for info, block in _fenced_blocks(_read(page)):
            if info not in ("", "bash", "sh", "console"):
                continue
            for line in block.replace("\\\n", " ").splitlines():
                if "python -m " not in line:
                    continue
                words = shlex.split(line, comments=True)
                for i in (i for i, word in enumerate(words[:-1]) if word == "-m"):
                    rest = words[i + 2:]
                    end = next((j for j, word in enumerate(rest) if word in (";", "&&", "|", "||")), len(rest))
                    commands.append((page, words[i + 1], rest[:end]))
    return commands


def _documented_runs():
    """Every ``python -m akd_tf.main`` command of the pages: (page, its flags)."""
    return [(page, argv) for page, module, argv in _documented_commands() if module == "akd_tf.main"]


def test_every_documented_command_line_is_a_valid_configuration(monkeypatch):
    """What the pages tell a reader to run parses (flags that exist, values allowed) and passes the configuration's
    checks, without running: a renamed flag or a refused combination in the docs fails here."""
    from absl import flags

    from akd_tf import main as cli

    monkeypatch.chdir(ROOT)  # flagfile paths are relative to the repository root
    runs = _documented_runs()
    assert len(runs) >= 10, runs
    for page, argv in runs:
        values = flags.FlagValues()
        cli.define_config_flags(values)
        flags.DEFINE_string("workdir", None, "", flag_values=values)
        flags.DEFINE_bool("overwrite", False, "", flag_values=values)
        try:
            values(["akd_tf.main", *argv])
            config = cli.config_from_flags(values)
            config.validate()
        except FileNotFoundError:
            pass  # a file the page's earlier command writes (runs/my_teacher.keras)
        except Exception as error:  # noqa: BLE001 - the page and the command are the message
            pytest.fail(f"{page}: python -m akd_tf.main {' '.join(argv)}\n{type(error).__name__}: {error}")


# Parses each command's flags with the module's own definitions (absl raises on an unknown flag, a bad value or a
# missing flagfile), without running it.
_PARSE = """
import json, runpy, sys
from absl import app, flags
app.run = lambda main, *args, **kwargs: None  # each tool's __main__ defines its flags; nothing runs
bad = []
for name, runs in json.loads(sys.argv[1]).items():
    before, imported = set(flags.FLAGS), set(sys.modules)
    sys.argv = [name]
    runpy.run_module(name, run_name="__main__", alter_sys=True)
    for page, argv in runs:
        flags.FLAGS.unparse_flags()
        try:
            flags.FLAGS([name, *argv])
        except flags.Error as error:
            bad.append(f"{page}: python -m {name} {' '.join(argv)}: {error}")
    for flag in set(flags.FLAGS) - before:  # the next tool defines its own
        delattr(flags.FLAGS, flag)
    for module in set(sys.modules) - imported:  # and imports the modules that define them afresh
        if module.startswith(("benchmarks", "export", "akd_tf.main")):
            del sys.modules[module]
            parent, _, child = module.rpartition(".")
            if parent in sys.modules and hasattr(sys.modules[parent], child):  # `from akd_tf import main` reads it
                delattr(sys.modules[parent], child)
print("\\n".join(bad))
sys.exit(1 if bad else 0)
"""


def test_every_documented_tool_command_names_flags_that_exist():
    """The export and benchmark commands the pages give parse with their tools' flags (akd_tf.main's are checked
    as configurations above): a renamed or misspelt flag in the docs fails here."""
    by_module = {}
    for page, module, argv in _documented_commands():
        if module == "akd_tf.main" or not module.startswith(("export.", "benchmarks.")):
            continue
        argv = [os.path.expandvars(word) for word in argv]
        if any("$" in word and word.startswith("--flagfile") for word in argv):
            continue  # a flagfile named by a shell loop's variable
        by_module.setdefault(module, []).append((page, argv))
    assert {"export.tflite", "benchmarks.glue_study"} <= set(by_module), sorted(by_module)
    proc = subprocess.run([sys.executable, "-c", _PARSE, json.dumps(by_module)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
