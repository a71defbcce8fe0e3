"""akd_tf.config: every setting is written once, in Config; the CLI's flags are made from its fields."""

import dataclasses

import pytest

from akd_tf import config as config_lib
from akd_tf import main as cli


def test_every_flag_takes_its_default_help_and_choices_from_its_config_field():
    fields = dataclasses.fields(config_lib.Config)
    own = {flag.name for flag in cli.FLAGS.get_flags_for_module(cli)}
    assert own == {f.metadata["flag"] or f.name for f in fields} | {"workdir", "overwrite"}
    for field in fields:
        flag = cli.FLAGS[field.metadata["flag"] or field.name]
        assert flag.default == field.default and field.metadata["help"] in flag.help, field.name
        if field.metadata["choices"] is not None:
            assert list(flag.parser.enum_values) == list(field.metadata["choices"]), field.name


def _parsed(argv):
    """The Config of ``argv`` through the CLI's own flag definitions, in flag values of their own (the global ones
    may hold other modules' required flags in this test process)."""
    from absl import flags

    values = flags.FlagValues()
    cli.define_config_flags(values)
    values(["akd_tf.main", *argv])
    return cli.config_from_flags(values)


def test_flags_become_the_config_and_cli_names_map_to_fields():
    config = _parsed(["--teacher=t.keras", "--method=ckd", "--ckd_margin=0.5", "--phase2_epochs=0"])
    assert (config.teacher_path, config.method, config.ckd_margin, config.phase2_epochs) == ("t.keras", "ckd", 0.5, 0)
    assert config.dataset == config_lib.Config().dataset and config.assistant_path is None


def test_own_images_take_their_recipe_under_the_flags_given():
    recipe = config_lib.recipe("folder:photos")
    assert recipe and set(recipe) <= {f.name for f in dataclasses.fields(config_lib.Config)}
    config = _parsed(["--dataset=folder:photos", "--phase1_epochs=7", "--batch_size=128"])
    # A flag given at the field's default (batch_size 128) is given all the same.
    assert (config.phase1_epochs, config.batch_size) == (7, 128)
    assert all(getattr(config, name) == value for name, value in recipe.items()
               if name not in ("phase1_epochs", "batch_size"))
    assert config == config_lib.Config.with_recipe(dataset="folder:photos", phase1_epochs=7, batch_size=128,
                                                   verbose=config.verbose)  # 2 when stdout is not a terminal
    cifar = _parsed(["--dataset=cifar10"])
    assert cifar == config_lib.Config(verbose=cifar.verbose) and config_lib.recipe("cifar10") == {}
    assert f"{recipe['phase1_epochs']} unless given" in cli.FLAGS["phase1_epochs"].help


@pytest.mark.parametrize("argv", [["--dataset=folder:photos", "--teacher=t.keras", "--learning_rate=0.01"],
                                  ["--method=ckd", "--ckd_margin=0.5", "--phase2_epochs=0", "--verbose=2"]])
def test_flags_txt_reproduces_the_run_recipe_included(argv):
    from absl import flags

    config = _parsed(argv)
    values = flags.FlagValues()
    cli.define_config_flags(values)
    flags.DEFINE_string("workdir", None, "", flag_values=values)
    values(["akd_tf.main", "--workdir=runs/x"])
    lines = cli.resolved_flags(config, values).splitlines()
    assert "--workdir=runs/x" in lines and all(line.startswith("--") for line in lines)
    # Read back with a recipe-free dataset's defaults in between, it is the same run.
    assert _parsed([line for line in lines if not line.startswith("--workdir")]) == config


@pytest.mark.parametrize("flagfile", ["configs/cifar10.flags", "configs/cifar10_ckd.flags", "configs/smoke.flags",
                                      "configs/study_xlong.flags", "configs/glue_tiny_smoke.flags"])
def test_shipped_flagfiles_make_valid_configs(flagfile, monkeypatch):
    import os

    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # The study flagfile carries the study runner's own flags; only akd_tf.main's are read here.
    names = {f.metadata["flag"] or f.name for f in dataclasses.fields(config_lib.Config)} - {"teacher", "assistant"}
    lines = [line for line in open(flagfile).read().splitlines()
             if line.startswith("--") and (line.split("=")[0][2:] in names or line.startswith("--flagfile="))]
    _parsed(lines).validate()


def _defined_flag_names(path):
    """The flags a module defines, read from its source (the benchmarks define theirs only when run)."""
    import re

    return set(re.findall(r'flags\.DEFINE_\w+\(\s*"(\w+)"', open(path).read()))


def _flag_lines(flagfile):
    """Every ``--name`` of ``flagfile``, with the files it includes, as (file, name)."""
    found = []
    for line in open(flagfile).read().splitlines():
        if line.startswith("--flagfile="):
            found += _flag_lines(line.split("=", 1)[1])
        elif line.startswith("--"):
            found.append((flagfile, line[2:].split("=", 1)[0]))
    return found


def _shipped_flagfiles():
    import glob
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "configs", "*.flags")))


@pytest.mark.parametrize("flagfile", _shipped_flagfiles())
def test_every_shipped_flagfile_names_only_flags_that_exist(flagfile, monkeypatch):
    """Strict: a misspelt flag in a shipped config fails here, not hours into a run. A study's config may also
    carry its runner's flags (benchmarks/cifar_study.py, glue_study.py)."""
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    monkeypatch.chdir(root)
    known = {f.metadata["flag"] or f.name for f in dataclasses.fields(config_lib.Config)} | {"workdir", "overwrite"}
    known |= {"nooverwrite"} | {f"no{f.name}" for f in dataclasses.fields(config_lib.Config)
                                 if f.type in ("bool", bool)}
    runners = _defined_flag_names("benchmarks/cifar_study.py") | _defined_flag_names("benchmarks/glue_study.py")
    assert {"methods", "seeds"} <= runners  # the source reading sees the runners' flags
    unknown = [(f, name) for f, name in _flag_lines(flagfile) if name not in known | runners]
    assert not unknown, f"flags that no command defines: {unknown}"
