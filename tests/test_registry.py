"""akd_tf.methods.registry: every method is declared once, in its own module, and nothing outside akd_tf/methods/
compares a method's name; the checks every method shares."""

import ast
import dataclasses
import pathlib

import pytest

from akd_tf.config import METHODS, Config
from akd_tf.methods import registry

ROOT = pathlib.Path(__file__).resolve().parents[1]
METHODS_DIR = ROOT / "akd_tf" / "methods"


def _compared_names(path):
    """``(line, name)`` of every comparison (``==``, ``!=``, ``in``, ``not in``) of a registered method's name in
    ``path``: a string constant, or one inside a tuple, list or set literal, on either side of the comparison."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        for side in (node.left, *node.comparators):
            items = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
            found += [(node.lineno, item.value) for item in items
                      if isinstance(item, ast.Constant) and item.value in registry.names()]
    return found


def test_the_scan_finds_a_comparison(tmp_path):
    """Guards the test below: the forms it is about are seen."""
    sample = tmp_path / "sample.py"
    sample.write_text('if method == "akd" or method in ("kd", "x") or "takd" != m:\n    pass\n')
    assert sorted(name for _, name in _compared_names(sample)) == ["akd", "kd", "takd"]


def test_no_module_outside_methods_compares_a_method_name():
    offenders = [f"{path.relative_to(ROOT)}:{line}: {name!r}"
                 for package in ("akd_tf", "export", "benchmarks") for path in sorted((ROOT / package).rglob("*.py"))
                 if METHODS_DIR not in path.parents for line, name in _compared_names(path)]
    assert not offenders, "ask the method (akd_tf.methods.registry) instead: " + "; ".join(offenders)


def test_every_method_module_registers_its_methods_and_the_cli_offers_them():
    assert METHODS == registry.names()
    assert {"akd", "ckd", "kd", "takd", "scratch", "finetune"} <= set(METHODS)
    for attribute in ("title", "short"):
        values = [getattr(registry.get(name), attribute) for name in METHODS]
        assert len(set(values)) == len(values), attribute
    # Each method lives in the module of its package that registers it.
    for name in METHODS:
        module = type(registry.get(name)).__module__
        assert module.startswith("akd_tf.methods.") and module != "akd_tf.methods.registry"


def test_a_name_is_registered_once():
    class Other(registry.Method):
        name, title, short = "akd", "Another", "X"

    with pytest.raises(ValueError, match="'akd' is registered twice"):
        registry.register(Other())
    assert type(registry.get("akd")).__name__ == "_Annealing"


def test_unknown_names_are_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match=r"Unknown `method` 'nope'. Allowed: akd, ckd"):
        registry.get("nope")
    assert registry.title("nope") == "nope" and registry.title("akd") == "Annealing-KD"


def _check(**changes):
    config = Config(**{"phase1_epochs": 4, "phase2_epochs": 2, "max_temperature": 4, **changes})
    defaults = {field.name: field.default for field in dataclasses.fields(Config)}
    registry.check_config(config, regression=config.dataset == "glue/stsb", text=config.dataset.startswith("glue/"),
                          defaults=defaults)


@pytest.mark.parametrize("changes, message", [
    ({"method": "takd", "dataset": "glue/sst2"}, r"`method` 'takd' is implemented for image datasets\. Received: "
                                                 r"dataset='glue/sst2'\. Allowed there: akd, ckd, kd, scratch"),
    ({"method": "kd", "dataset": "glue/stsb"}, r"`method` 'kd' needs class probabilities; glue/stsb is a regression "
                                               r"task\. Allowed there: akd, ckd, scratch, finetune$"),
    ({"method": "akd", "ckd_margin": 0.5}, r"`ckd_margin` is read by method='ckd' only\. Received: method='akd', "
                                           r"ckd_margin=0\.5"),
    ({"method": "kd", "assistant_path": "a.keras"}, r"`assistant_path` is read by method='takd' only"),
])
def test_shared_checks_name_the_setting_and_what_is_allowed(changes, message):
    with pytest.raises(ValueError, match=message):
        _check(**changes)


def test_a_method_accepts_its_own_settings():
    _check(method="ckd", ckd_margin=0.5, ckd_label_ramp_epochs=3)
    _check(method="takd", assistant_path="a.keras")
