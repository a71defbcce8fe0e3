"""The package's import graph: modules call downwards (no two import each other, no longer cycle either), and
no underscore name crosses a module boundary. Read from the source (AST), so function-level imports count."""

import ast
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("akd_tf", "export")


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _resolve(name):
    """The module that ``name`` (``pkg.mod`` or ``pkg.mod.attr``) refers to, if it is one of ours."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module):
    """``[(imported module, names taken from it, lineno)]`` and ``{alias: module}`` of one of our modules."""
    tree = ast.parse(MODULES[module].read_text())
    edges, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name)
                if target:
                    edges.append((target, [], node.lineno))
                    if alias.asname:
                        aliases[alias.asname] = target
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = _resolve(node.module)
            if not base:
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in MODULES:  # `from pkg import module`
                    edges.append((full, [], node.lineno))
                    aliases[alias.asname or alias.name] = full
                else:
                    edges.append((base, [alias.name], node.lineno))
    return edges, aliases, tree


GRAPH = {m: _imports(m) for m in MODULES}


def test_the_graph_is_read():
    """Guards the test itself: it sees the edges it is about."""
    assert "akd_tf.run" in {target for target, _, _ in GRAPH["akd_tf.train"][0]}
    assert "akd_tf.tasks" in {target for target, _, _ in GRAPH["akd_tf.train"][0]}
    assert "akd_tf.preflight" in {target for target, _, _ in GRAPH["akd_tf.run"][0]}
    assert "akd_tf.methods.base" in {target for target, _, _ in GRAPH["akd_tf.model_files"][0]}


def test_no_import_cycles():
    edges = {m: {t for t, _, _ in GRAPH[m][0] if t != m} for m in MODULES}
    state, cycles = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for module in MODULES:
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_crosses_a_module_boundary(module):
    edges, aliases, tree = GRAPH[module]
    crossing = [f"line {line}: from {target} import {name}" for target, names, line in edges for name in names
                if name.startswith("_") and not name.startswith("__")]
    crossing += [f"line {node.lineno}: {node.value.id}.{node.attr}" for node in ast.walk(tree)
                 if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                 and node.value.id in aliases and aliases[node.value.id] != module
                 and node.attr.startswith("_") and not node.attr.startswith("__")]
    assert not crossing, f"{module} uses private names of other modules: {crossing}"


@pytest.mark.parametrize("task", ["akd_tf.tasks.images", "akd_tf.tasks.text"])
def test_a_task_knows_nothing_of_the_stages_or_of_another_task(task):
    """One stage pipeline (`akd_tf.train`) for every task: a task module gives what differs by data and imports
    neither the pipeline nor a sibling task."""
    targets = {t for t, _, _ in GRAPH[task][0]}
    assert "akd_tf.train" not in targets and "akd_tf.tasks.base" in targets
    assert not {t for t in targets if t.startswith("akd_tf.tasks.") and t != "akd_tf.tasks.base"}


def test_the_stage_pipeline_names_no_task():
    """`akd_tf.train` reads the run's task through `akd_tf.tasks`, never a task module or a dataset kind."""
    targets = {t for t, _, _ in GRAPH["akd_tf.train"][0]}
    assert targets & {"akd_tf.tasks"} and not {t for t in targets if t.startswith("akd_tf.tasks.")}
    source = MODULES["akd_tf.train"].read_text()
    assert not [word for word in ("glue", "text", "image", "cifar") if f'"{word}' in source.lower()]


def test_the_library_is_the_product_without_its_operations():
    """``import akd_tf`` (and export) loads no study or operations code; the library reads no process's /proc
    entries (only /proc/cpuinfo, the CPU model its results record), stops no process and keeps no heartbeat (a
    lock is an fcntl.flock, which the kernel releases with its process)."""
    import subprocess
    import sys

    code = ("import sys, akd_tf, export; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('benchmarks', 'tools', 'tests')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr[-2000:]
    found = []
    for package in ("akd_tf", "export"):
        for directory, _, names in os.walk(os.path.join(ROOT, package)):
            for name in names:
                if name.endswith(".py"):
                    text = open(os.path.join(directory, name), encoding="utf-8").read()
                    text = text.replace("/proc/cpuinfo", "")
                    found += [f"{name}: {word}" for word in ("/proc/", "SIGSTOP", "heartbeat") if word in text]
    assert not found


def test_every_benchmark_imports_beside_the_others_and_the_cli():
    """pytest-xdist runs several test files in one process, so a benchmark that defined its flags on import broke
    collection when another defined the same name (--output, --workdir). Each defines them only when run."""
    import subprocess
    import sys

    names = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "__init__")
    assert {"budget_curve", "cifar_study", "glue_study", "precision", "throughput"} <= set(names)
    code = "import importlib, akd_tf.main\n" + "".join(f"importlib.import_module('benchmarks.{n}')\n" for n in names)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
