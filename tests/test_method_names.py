"""Every method the CLI accepts has a name in the studies' tables, and no name stands for two methods."""

from akd_tf.config import METHODS
from benchmarks import method_names


def test_every_method_is_named_once():
    for names in (method_names.SHORT, method_names.LONG):
        assert set(names) == set(METHODS)
        assert len(set(names.values())) == len(names)


def test_a_cifar_study_compares_methods_the_cli_runs_each_once():
    assert set(method_names.CIFAR_STUDY) <= set(METHODS)
    assert len(set(method_names.CIFAR_STUDY)) == len(method_names.CIFAR_STUDY)
