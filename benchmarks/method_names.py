"""How the studies' tables, verdicts and plots name the methods, from the methods' registry
(`akd_tf.methods.registry`): short in table headers and gap columns, long where a row names its method; and which
methods a CIFAR-10 study compares, in its tables' order."""

from akd_tf.methods import registry

CIFAR_STUDY = ("scratch", "kd", "kd_ls", "takd", "akd", "ckd")

SHORT = {name: registry.short(name) for name in registry.names()}
LONG = {name: registry.title(name) for name in registry.names()}
