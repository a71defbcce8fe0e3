"""Text classification and regression: the GLUE tasks (``--dataset=glue/<task>``) and your own labelled text
(``--dataset=csv:FILE``, `akd_tf.data.own_text`).

What differs from images:

* models come from keras-hub: a preset (``teacher_preset``/``student_preset``: a Kaggle handle, or a local
  preset directory), the first K layers of the teacher (``student_init=truncate:K``) or a BERT architecture
  (``teacher_net``/``student_net``, e.g. ``bert_l2_h128``) with random weights and a WordPiece vocabulary learned
  from the training text;
* each model tokenizes the raw text with its own preprocessor, once (`akd_tf.data.glue`): `TextTask.data` is the
  token features of that model;
* with ``cache_teacher_logits`` (the default) the teacher's logits over every split are computed once, before the
  student trains, and phase 1 reads them (`akd_tf.batch_keys.TEACHER_LOGITS`); otherwise the teacher runs on its
  own tokens at every step;
* model selection uses the task's GLUE metric on ``train[-V:]``; the report is on the GLUE dev split(s) (your own
  file's: accuracy on its test rows), beside the majority-class floor;
* ``student.keras`` carries its preprocessor (it takes raw strings); ``student/`` is a SavedModel over
  fixed-length token ids with the preprocessor as a keras-hub preset in ``student/preset/`` and ``akd_tf.json``.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from absl import logging

from akd_tf import files, glue_metrics, precision
from akd_tf.batch_keys import TEACHER_INPUTS, TEACHER_LOGITS
from akd_tf.callbacks import ValidationMetrics
from akd_tf.config import BadInput
from akd_tf.data import glue, own_text
from akd_tf.logits import outputs_as_logits
from akd_tf.model_files import FIELDS, in_run_precision, load_model, save_model, uncompiled, weights_digest
from akd_tf.nets import text as text_nets
from akd_tf.tasks.base import Task

PRESET_DIR = "preset"


def matches(dataset: str) -> bool:
    return glue.is_glue(dataset) or own_text.is_csv(dataset)


class TextTask(Task):
    student_first = True  # a student preset that cannot load fails before the teacher trains, not after

    def __init__(self, run):
        super().__init__(run)
        config = self.config
        if own_text.is_csv(config.dataset):
            self.raw = own_text.load(config.dataset, batch_size=config.batch_size,
                                     validation_size=config.validation_size, train_size=config.train_size,
                                     test_size=config.test_size, shuffle_seed=config.seed,
                                     group_by_length=config.group_by_length)
        else:
            self.raw = glue.load(config.dataset, batch_size=config.batch_size, data_dir=config.data_dir,
                                 validation_size=config.resolved()["validation_size"],
                                 train_size=config.train_size, test_size=config.test_size, shuffle_seed=config.seed,
                                 download=config.download, group_by_length=config.group_by_length)
        self.monitor = f"val_{self.raw.spec['metric']}"
        self._vocabularies = {}  # one learned vocabulary per size, shared by the teacher and the student
        self._preprocessors = {}  # id(model) -> its tokenizer
        self._features = {}  # id(model) -> its token features

    @property
    def regression(self):
        return self.raw.regression

    @property
    def num_examples(self):
        return self.raw.num_examples

    def describe(self):
        labels = {"labels": list(self.raw.label_names)} if self.raw.label_names else {}
        return {"metric": self.raw.spec["metric"], "report_splits": list(self.raw.eval_splits), **labels}

    def new_model(self, who, net=None):
        classifier, preprocessor = self._build(who)
        self._preprocessors[id(classifier)] = preprocessor
        return in_run_precision(classifier, self.config)

    def load_model(self, path, who):
        model, preprocessor = load_classifier(path, FIELDS[who])
        self._preprocessors[id(model)] = preprocessor
        return in_run_precision(model, self.config)

    def data(self, model):
        if id(model) not in self._features:
            # Keras' bar in a terminal only: in a log file its redraws are one long line.
            self._features[id(model)] = self.raw.features(self._preprocessors[id(model)],
                                                          progress=self.config.verbose == 1)
        return self._features[id(model)]

    def first_callbacks(self, data):
        if data.validation is None:
            return []
        labels = data.arrays["validation"][1]
        task = self.raw.task
        return [ValidationMetrics(data.validation, labels,
                                  lambda outputs, y: glue_metrics.task_metrics(task, outputs, y))]

    def with_teacher(self, data, teacher, stage, method, teacher_outputs, metrics):
        teacher_features = self.data(teacher)
        if not self.config.cache_teacher_logits:
            metrics["teacher_logits"] = {"cached": False}
            return data.with_inputs(**{TEACHER_INPUTS: {s: a[0] for s, a in teacher_features.arrays.items()}})
        start = time.perf_counter()
        logits = teacher_logits(self.run, teacher, teacher_features)
        metrics["teacher_logits"] = {"cached": True, "wall_time_s": time.perf_counter() - start}
        return data.with_inputs(**{TEACHER_LOGITS: logits})

    def evaluate(self, model, who):
        """GLUE metrics of ``model`` on each report split: ``{"dev": {split: {metric: value}}}``."""
        features, result = self.data(model), {}
        for split in features.eval_splits:
            outputs = features.predict(model, split, verbose=self.config.verbose)
            result[split] = glue_metrics.task_metrics(self.raw.task, outputs, features.arrays[split][1])
        return {"dev": result}

    def headline(self, figures):
        metric = self.raw.spec["metric"]
        return f"{metric} {figures['dev'][self.raw.eval_splits[0]][metric]:.4f}"

    def report(self, metrics):
        # The floor on the dev examples the student was scored on, from the training examples it saw: a student no
        # better than one constant answer has learnt nothing; say so.
        raw, metric = self.raw, self.raw.spec["metric"]
        floor = glue.majority_floor(raw.task, raw.labels["train"], raw.labels[raw.eval_splits[0]], raw.num_classes)
        if floor is None:
            return
        metrics["majority_class"] = floor
        score = metrics["student"]["dev"][raw.eval_splits[0]][metric]
        metrics["student"]["at_or_below_majority_class"] = bool(score <= floor[metric] + 1e-9)
        if metrics["student"]["at_or_below_majority_class"]:
            logging.warning("The student's dev %s (%.4f) is at or below the majority-class floor (%.4f): it has not "
                            "learnt the task.", metric, score, floor[metric])

    def save(self, model, path):
        with text_nets.attached(model, self._preprocessors[id(model)]):
            save_model(model, path)

    def save_serving(self, student, directory):
        config = self.config
        write_serving_model(student, self._preprocessors[id(student)], directory, config.sequence_length, {
            "dataset": config.dataset, "task": self.raw.task, "num_classes": self.raw.num_classes,
            "labels": list(self.raw.label_names) if self.raw.label_names else None,
            # How the test rows of your own file were drawn, so the export reads the same rows.
            "split": {"seed": config.seed, "validation_size": config.validation_size, "test_size": config.test_size},
            # A student cut from the teacher ("truncate:3") is named for what it is, "<teacher>_first3".
            "net": config.student_preset or (student.name if config.student_init else config.student_net),
            "method": config.method})

    def _build(self, who):
        """``(classifier, preprocessor)`` for ``who`` ("teacher"/"student"): its preset, else its architecture with
        a vocabulary learned from the training text; float32 (a preset's saved policy does not decide it)."""
        config, raw = self.config, self.raw
        preset = getattr(config, f"{who}_preset")
        truncate = text_nets.truncate_layers(config.student_init) if who == "student" else None
        if truncate:
            return _truncated_student(config, raw, truncate)
        if preset:
            try:
                return text_nets.from_preset(preset, raw.num_classes, config.sequence_length, setting=f"{who}_preset")
            except text_nets.PresetUnavailable as error:
                raise BadInput(str(error)) from None
        size = getattr(config, f"{who}_vocabulary_size")
        if size not in self._vocabularies:
            self._vocabularies[size] = text_nets.learn_vocabulary(raw.texts["train"], size,
                                                                  verbose=bool(config.verbose))
        return text_nets.from_architecture(getattr(config, f"{who}_net"), self._vocabularies[size], raw.num_classes,
                                           config.sequence_length)


TASK = TextTask


def _truncated_student(config, raw, num_layers):
    """The student of ``--student_init=truncate:K``: the first K layers of the --teacher file's backbone, else of
    --teacher_preset's (pre-trained, not yet fine-tuned here), with the teacher's tokenizer; a new head."""
    if config.teacher_path:
        source, preprocessor = load_classifier(config.teacher_path, FIELDS["teacher"])
        preprocessor.sequence_length = config.sequence_length
    else:
        try:
            source, preprocessor = text_nets.from_preset(config.teacher_preset, raw.num_classes,
                                                         config.sequence_length, setting="teacher_preset")
        except text_nets.PresetUnavailable as error:
            raise BadInput(str(error)) from None
    try:
        student = text_nets.truncated(source, num_layers, raw.num_classes, name=f"{source.name}_first{num_layers}")
    except ValueError as error:
        raise BadInput(str(error)) from None
    logging.info("Student: the embeddings and first %d transformer layers of %s", num_layers,
                 config.teacher_path or config.teacher_preset)
    return student, preprocessor


def load_classifier(path, what):
    """``(model, preprocessor)`` of the keras-hub text classifier in ``path``: the model without its tokenizer,
    which runs once over the data instead (`akd_tf.data.glue.TextSplits.features`)."""
    model = load_model(path, what)
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is None:
        raise BadInput(f"{what} {path!r} is not a keras-nlp text classifier with a preprocessor (it cannot "
                       "tokenize text).")
    model.preprocessor = None
    return model, preprocessor


def cache_logits(teacher, features, verbose=1, batch_size=256, teacher_outputs="logits"):
    """The teacher's logits (inference mode) for every example of every split: ``{split: array}``; a teacher
    that returns probabilities (``teacher_outputs``) has them converted to logits."""
    logits = {}
    for split in features.arrays:
        if verbose:
            print(f"Teacher logits, {split} ({features.num_examples[split]:,} examples)")
        logits[split] = outputs_as_logits(features.predict(teacher, split, batch_size, verbose=verbose),
                                          teacher, teacher_outputs)
    return logits


# Bump when what a cached logits file holds changes: files of older code are not reused.
LOGITS_VERSION = 1


def logits_path(config, teacher, features):
    """``config.teacher_logits_cache``'s file for these logits (None without a cache): named by a digest of the
    teacher's weights, of its token features of every split (data, split sizes, tokenizer, length) and of what
    the teacher returns, so runs of other methods and seeds with the same teacher and data share it."""
    if not config.teacher_logits_cache:
        return None
    digest = weights_digest(teacher)
    digest.update(json.dumps([LOGITS_VERSION, config.teacher_outputs, sorted(features.arrays)]).encode())
    for split in sorted(features.arrays):
        inputs, labels = features.arrays[split]
        for array in [*(inputs[key] for key in sorted(inputs)), labels]:
            digest.update(np.ascontiguousarray(array).tobytes())
    return os.path.join(config.teacher_logits_cache, f"teacher_logits_{digest.hexdigest()[:20]}.npz")


def teacher_logits(run, teacher, features):
    """The teacher's cached logits of every split (`cache_logits`), read from ``config.teacher_logits_cache``
    when another run computed them, else computed and kept there."""
    config = run.config
    path = logits_path(config, teacher, features)
    if path and os.path.isfile(path):
        with np.load(path) as saved:
            logging.info("Teacher logits read from %s", path)
            if config.verbose:
                print(f"Teacher logits read from {path}")
            return {split: saved[split] for split in features.arrays}
    logits = cache_logits(teacher, features, verbose=config.verbose, teacher_outputs=config.teacher_outputs)
    if path and run.chief:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with files.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **logits)
    return logits


def write_serving_model(student, preprocessor, directory, sequence_length, description):
    """A SavedModel in ``directory`` whose ``serve`` takes fixed-length token features (int32 ``token_ids``,
    ``segment_ids``, ``padding_mask`` of shape [batch, sequence_length]) and returns logits; the student with the
    preprocessor that makes those from text as a keras-hub preset (``TextClassifier.from_preset`` loads it; so does
    ``--teacher_preset``/``--student_preset``); and ``akd_tf.json``: ``description`` (dataset, task, num_classes,
    net, method) with the input's shape."""
    import tensorflow as tf

    length = sequence_length
    names = [name for name in ("token_ids", "segment_ids", "padding_mask") if name in student.input]
    signature = [{name: tf.TensorSpec([None, length], tf.int32, name=name) for name in names}]
    # float32 whatever the run's precision, as images' serving model
    with files.atomic_path(directory) as tmp, precision.computing_in(student, "float32"):
        with text_nets.attached(student, None):  # the SavedModel serves token features: no tokenizer in it
            student.export(tmp, format="tf_saved_model", input_signature=signature, verbose=False)
        with text_nets.attached(student, preprocessor), uncompiled(student):
            student.save_to_preset(os.path.join(tmp, PRESET_DIR))
        files.write_json(os.path.join(tmp, "akd_tf.json"), {
            "dataset": description.get("dataset"),
            "modality": "text",
            "task": description.get("task"),
            "num_classes": description["num_classes"],
            "sequence_length": length,
            "inputs": {name: f"int32 [batch, {length}]" for name in names},
            "preset": PRESET_DIR,
            "labels": description.get("labels"),
            "split": description.get("split"),
            "net": description.get("net"),
            "method": description.get("method"),
        })
