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
        assert flag.default == field.default and flag.help.endswith(field.metadata["help"]), field.name
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
