"""Every method the CLI accepts has a name in the studies' tables, and no name stands for two methods."""

from akd_tf.config import METHODS
from benchmarks import method_names


def test_every_method_is_named_once():
    for names in (method_names.SHORT, method_names.LONG):
        assert set(names) == set(METHODS)
        assert len(set(names.values())) == len(names)
