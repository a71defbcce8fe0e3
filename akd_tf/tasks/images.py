"""Image classification: CIFAR-10/100 from TFDS and your own images (``folder:DIR``, ``tfds:NAME``).

The networks are `akd_tf.nets` (CIFAR ResNets, TAKD's plain CNNs, MobileNetV3/EfficientNet); distillation reads
the teacher's logits of K augmented views computed once (`akd_tf.teacher_views`, ``--teacher_views``) or runs the
teacher at every step; models are scored by top-1 accuracy on the test split.
"""

from __future__ import annotations

import os

from akd_tf import data as data_lib
from akd_tf import files, nets, precision, preflight, teacher_views
from akd_tf.data import glue, own
from akd_tf.model_files import FIELDS, in_run_precision, load_model, save_model
from akd_tf.run import evaluate_classifier
from akd_tf.tasks.base import Task


def matches(dataset: str) -> bool:
    """Images take every dataset that no other task claims; the configuration's checks name the allowed ones."""
    return not glue.is_glue(dataset)


class ImageTask(Task):

    def __init__(self, run):
        super().__init__(run)
        config = self.config
        self.splits = data_lib.load(
            config.dataset, batch_size=config.batch_size, data_dir=config.data_dir,
            validation_size=config.validation_size, train_size=config.train_size, test_size=config.test_size,
            shuffle_seed=config.seed, download=config.download,
            image_size=preflight.image_size(config) if own.is_own(config.dataset) else None,
            progress=(lambda line: print(line, flush=True)) if config.verbose else None,
        )

    @property
    def num_examples(self):
        return self.splits.num_examples

    def describe(self):
        return {"labels": list(self.splits.label_names)} if self.splits.label_names else {}

    def new_model(self, who, net=None):
        config, splits = self.config, self.splits
        model = nets.build(net or getattr(config, f"{who}_net"), splits.num_classes, splits.input_shape,
                           config.weight_decay, sync_batchnorm=config.sync_batchnorm)
        if config.student_init_file and who == "student":  # checked in preflight: the same network
            model.set_weights(load_model(config.student_init_file, FIELDS["student_init"]).get_weights())
        return model

    def load_model(self, path, who):
        return in_run_precision(load_model(path, FIELDS[who]), self.config)

    def data(self, model):
        return self.splits

    def with_teacher(self, data, teacher, stage, method, teacher_outputs, metrics):
        if not self.config.teacher_views:
            return data
        views, validation = teacher_views.teacher_view_logits(self.run, data, teacher, stage, teacher_outputs)
        return data.with_teacher_logits(views, validation, method.cached_teacher_epochs(self.config))

    def evaluate(self, model, who):
        if who == "teacher":  # a given teacher's figures may be kept in the cache
            return teacher_views.teacher_test_figures(self.run, self.splits, model)
        return evaluate_classifier(model, self.splits.test, self.config.verbose)

    def headline(self, figures):
        return f"test {figures['test_accuracy']:.2%}"

    def save(self, model, path):
        save_model(model, path)

    def save_serving(self, student, directory):
        save_serving_model(student, directory, self.splits, self.config)


TASK = ImageTask


def save_serving_model(student, directory, data, config):
    """Writes the student as a TF SavedModel (``serve`` endpoint) with a JSON note of its input. It computes in
    float32 whatever the run's precision (float32 in, float32 out, and no bfloat16 ops for the TFLite converter)."""
    with files.atomic_path(directory) as tmp, precision.computing_in(student, "float32"):
        student.export(tmp, format="tf_saved_model", verbose=False)
        files.write_json(os.path.join(tmp, "akd_tf.json"), {
            "dataset": config.dataset,
            "num_classes": data.num_classes,
            "input_shape": list(data.input_shape),
            "preprocessing": data.preprocessing,
            "labels": list(data.label_names) if data.label_names else None,
            # How the test split of your own images was drawn, so the export reads the same images.
            "split": {"seed": config.seed, "validation_size": config.validation_size, "test_size": config.test_size},
            "net": config.student_net,
            "method": config.method,
        })
