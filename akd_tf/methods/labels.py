"""Training on the labels alone: the from-scratch baseline, and fine-tuning a pre-trained student. No teacher."""

import keras

from akd_tf.methods import registry


def compile_for_labels(model, optimizer, regression=False, from_logits=True):
    """Compiles ``model`` for its labels: cross-entropy and top-1 accuracy, or (``regression``) squared error."""
    if regression:
        model.compile(optimizer=optimizer, loss=keras.losses.MeanSquaredError(),
                      metrics=[keras.metrics.MeanSquaredError(name="mse")])
    else:
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])


class _Scratch(registry.Method):
    name, title, short = "scratch", "scratch (labels only)", "scratch"
    help = "labels only, from random weights (a given --teacher is evaluated beside the student, not used)"
    teacher = False

    def build(self, teacher, student, config, *, optimizer, teacher_outputs="logits", regression=False,
              monitor="val_accuracy"):
        compile_for_labels(student, optimizer, regression)
        return registry.Training(student)


class _FineTune(_Scratch):
    # The same training under the name that reads right for a pre-trained student.
    name, title, short = "finetune", "fine-tune", "fine-tune"
    help = "labels only, the name for a pre-trained student (--student_preset, --student_init)"


registry.register(_Scratch())
registry.register(_FineTune())
