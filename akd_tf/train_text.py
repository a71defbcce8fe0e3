"""A GLUE run (``--dataset=glue/<task>``): text teacher, student by the chosen method, GLUE dev metrics.

Called by `akd_tf.train.train_and_evaluate` for GLUE datasets, with the same workdir, resume and output
contract as image runs. What differs:

* models come from keras-nlp: a preset (``teacher_preset``/``student_preset``: a Kaggle handle, or a local
  preset directory) or a BERT architecture (``teacher_net``/``student_net``, e.g. ``bert_l2_h128``) with
  random weights and a WordPiece vocabulary learned from the training text;
* each model tokenizes the raw text with its own preprocessor, once (`akd_tf.data.glue`);
* with ``cache_teacher_logits`` (the default) the teacher's logits over every split are computed once,
  before the student trains, and phase 1 reads them (`akd_tf.batch_keys.TEACHER_LOGITS`): the teacher is
  never run inside ``fit``. Otherwise the teacher runs on its own tokens at every step;
* model selection uses the task's GLUE metric on ``train[-V:]``; the report is on the GLUE dev split(s);
* the student is saved as ``student.keras`` (with its preprocessor: it takes raw strings) and as
  ``student/``: a SavedModel over fixed-length token ids for `python -m export.tflite`, with its
  preprocessor as a keras-nlp preset in ``student/preprocessor/`` and ``akd_tf.json``.
"""

from __future__ import annotations

import json
import os
import time

import keras
import numpy as np
from absl import logging

from akd_tf import files, glue_metrics, precision
from akd_tf.callbacks import KeepBest, ValidationMetrics
from akd_tf.config import BadInput
from akd_tf import data as data_lib
from akd_tf.data import glue
from akd_tf.batch_keys import TEACHER_INPUTS, TEACHER_LOGITS
from akd_tf.methods import labels, registry
from akd_tf.logits import outputs_as_logits
from akd_tf.nets import text as text_nets
from akd_tf.model_files import FIELDS, count_params, in_run_precision, load_model, save_model, weights_digest
from akd_tf.run import best_epoch, finish, make_optimizer, phase_summary, teacher_summary
from akd_tf.workdir import read_history

PRESET_DIR = "preset"


def _build(run, raw, who, vocabularies):
    """``(classifier, preprocessor)`` for ``who`` ("teacher"/"student"): its preset, else its architecture
    with a vocabulary learned from the training text (one per size, shared between the two models); in the run's
    dtype policy (a preset's saved policy does not decide it)."""
    classifier, preprocessor = _build_float(run, raw, who, vocabularies)
    return in_run_precision(classifier, run.config), preprocessor


def _build_float(run, raw, who, vocabularies):
    config = run.config
    preset = getattr(config, f"{who}_preset")
    truncate = text_nets.truncate_layers(config.student_init) if who == "student" else None
    with run.strategy.scope():
        if truncate:
            return _truncated_student(config, raw, truncate)
        if preset:
            try:
                return text_nets.from_preset(preset, raw.num_classes, config.sequence_length, setting=f"{who}_preset")
            except text_nets.PresetUnavailable as error:
                raise BadInput(str(error)) from None
        size = getattr(config, f"{who}_vocabulary_size")
        if size not in vocabularies:
            vocabularies[size] = text_nets.learn_vocabulary(raw.texts["train"], size, verbose=bool(config.verbose))
        return text_nets.from_architecture(getattr(config, f"{who}_net"), vocabularies[size], raw.num_classes,
                                           config.sequence_length)


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


def _validation_metrics(features, task):
    if features.validation is None:
        return []
    labels = features.arrays["validation"][1]
    return [ValidationMetrics(features.validation, labels, lambda outputs, y: glue_metrics.task_metrics(task, outputs, y))]


def _dev_metrics(model, features, task, verbose):
    """GLUE metrics of ``model`` on each report split (``{split: {metric: value}}``)."""
    result = {}
    for split in features.eval_splits:
        outputs = features.predict(model, split, verbose=verbose)
        result[split] = glue_metrics.task_metrics(task, outputs, features.arrays[split][1])
    return result


def load_classifier(path, what):
    model = load_model(path, what)
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is None:
        raise BadInput(f"{what} {path!r} is not a keras-nlp text classifier with a preprocessor (it cannot "
                             "tokenize text).")
    model.preprocessor = None
    return model, preprocessor


def _save(model, preprocessor, path):
    with text_nets.attached(model, preprocessor):
        save_model(model, path)


def _teacher(run, raw, vocabularies):
    config, monitor = run.config, f"val_{raw.spec['metric']}"
    trained = os.path.join(run.workdir, "teacher.keras")
    if config.teacher_path or os.path.isfile(trained):
        path = config.teacher_path or trained
        logging.info("Loading the teacher from %s", path)
        with run.strategy.scope():
            teacher, preprocessor = load_classifier(path, FIELDS["teacher"])
            in_run_precision(teacher, config)
        if config.teacher_path:
            return teacher, preprocessor, raw.features(preprocessor), {"source": config.teacher_path}, {}
        history = read_history(os.path.join(run.workdir, "history_teacher.csv"))
        return (teacher, preprocessor, raw.features(preprocessor),
                teacher_summary(config, history, monitor), history)
    keras.utils.set_random_seed(config.seed)
    teacher, preprocessor = _build(run, raw, "teacher", vocabularies)
    features = raw.features(preprocessor)
    learning_rate = config.teacher_learning_rate or config.learning_rate
    with run.strategy.scope():
        labels.compile_for_labels(teacher, make_optimizer(config, learning_rate), raw.regression)
    keep_best = [KeepBest(monitor=monitor, verbose=config.verbose)] if features.validation is not None else []
    logging.info("Training the teacher %s for %d epochs", teacher.name, config.teacher_epochs)
    history = run.fit(teacher, features, "teacher", config.teacher_epochs, (config.teacher_epochs,), learning_rate,
                      stateful=keep_best, first=_validation_metrics(features, raw.task))
    _save(teacher, preprocessor, os.path.join(run.out, "teacher.keras"))
    return teacher, preprocessor, features, teacher_summary(config, history, monitor), history


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


def _new_student(run, raw, vocabularies):
    keras.utils.set_random_seed(run.config.seed + 1)  # per stage: a resumed run builds the same weights
    return _build(run, raw, "student", vocabularies)


def _student(run, raw, student, preprocessor, teacher, teacher_features, metrics):
    config, task = run.config, raw.task
    monitor = f"val_{raw.spec['metric']}"
    plain = raw.features(preprocessor)
    features = plain
    method = registry.get(config.method)
    if teacher is not None and method.teacher:
        if config.cache_teacher_logits:
            start = time.perf_counter()
            logits = teacher_logits(run, teacher, teacher_features)
            metrics["teacher_logits"] = {"cached": True, "wall_time_s": time.perf_counter() - start}
            features = plain.with_inputs(**{TEACHER_LOGITS: logits})
        else:
            metrics["teacher_logits"] = {"cached": False}
            features = plain.with_inputs(**{TEACHER_INPUTS: {s: a[0] for s, a in teacher_features.arrays.items()}})
    with run.strategy.scope():
        training = method.build(teacher, student, config, optimizer=make_optimizer(config),
                                teacher_outputs=config.teacher_outputs, regression=raw.regression, monitor=monitor)
    stateful = list(training.stateful)
    if not method.keeps_best and features.validation is not None:
        stateful.append(KeepBest(monitor=monitor, verbose=config.verbose))
    logging.info("Training the student %s with method %s", student.name, config.method)
    phases, rates = method.phases(config, config.student_epochs)
    history = run.fit(training.model, features, "student", config.student_epochs, phases, rates, stateful,
                      first=[*_validation_metrics(features, task), *training.first], early=training.early)
    num_train = plain.num_examples["train"]
    summary = method.summary(config, history, config.student_epochs,
                             lambda begin, end: _phase(history, begin, end, num_train, monitor))
    return student, preprocessor, plain, history, summary


def _phase(history, start, stop, num_train, monitor):
    summary = phase_summary(history, start, stop, num_train)
    summary.pop("best_val_accuracy", None)
    summary.pop("best_epoch", None)
    return {**summary, **best_epoch(history, monitor, start, stop)}


def save_serving_model(student, preprocessor, directory, raw, config):
    """``student/`` of a run (`write_serving_model`), described by the run's dataset, task and method."""
    write_serving_model(student, preprocessor, directory, config.sequence_length, {
        "dataset": config.dataset, "task": raw.task, "num_classes": raw.num_classes,
        "net": config.student_preset or config.student_init or config.student_net, "method": config.method})


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
    with files.atomic_path(directory) as tmp, precision.computing_in(student, "float32"):  # as in train.save_serving_model
        with text_nets.attached(student, None):  # the SavedModel serves token features: no tokenizer in it
            student.export(tmp, format="tf_saved_model", input_signature=signature, verbose=False)
        with text_nets.attached(student, preprocessor):
            student.save_to_preset(os.path.join(tmp, PRESET_DIR))
        files.write_json(os.path.join(tmp, "akd_tf.json"), {
            "dataset": description.get("dataset"),
            "modality": "text",
            "task": description.get("task"),
            "num_classes": description["num_classes"],
            "sequence_length": length,
            "inputs": {name: f"int32 [batch, {length}]" for name in names},
            "preset": PRESET_DIR,
            "net": description.get("net"),
            "method": description.get("method"),
        })


def train_and_evaluate(run) -> dict:
    """The GLUE half of `akd_tf.train.train_and_evaluate` (after the workdir is prepared)."""
    config = run.config
    raw = glue.load(config.dataset, batch_size=config.batch_size, data_dir=config.data_dir,
                    validation_size=data_lib.images.DEFAULT_VALIDATION_SIZE if config.validation_size is None
                    else config.validation_size, train_size=config.train_size,
                    test_size=config.test_size, shuffle_seed=config.seed, download=config.download,
                    group_by_length=config.group_by_length)
    logging.info("Data %s: %s examples", config.dataset, raw.num_examples)
    metrics = {"method": config.method, "dataset": config.dataset, "num_examples": raw.num_examples,
               "metric": raw.spec["metric"], "report_splits": list(raw.eval_splits)}
    vocabularies = {}
    # Built first: a student preset that cannot load must fail before the teacher trains, not after.
    student, preprocessor = _new_student(run, raw, vocabularies)
    teacher = teacher_features = None
    teacher_history = {}
    if config.needs_teacher:
        teacher, teacher_preprocessor, teacher_features, summary, teacher_history = _teacher(run, raw, vocabularies)
        metrics["teacher"] = {"net": teacher.name, "params": count_params(teacher), **summary,
                              "dev": _dev_metrics(teacher, teacher_features, raw.task, config.verbose)}
        logging.info("Teacher: %s", metrics["teacher"])

    student, preprocessor, features, history, phases = _student(run, raw, student, preprocessor, teacher,
                                                                teacher_features, metrics)
    metrics["student"] = {"net": student.name, "params": count_params(student),
                          "wall_time_s": float(np.sum(history.get("epoch_time_s", []))),
                          "dev": _dev_metrics(student, features, raw.task, config.verbose)}
    metrics["phases"] = phases
    logging.info("Student: %s", metrics["student"])
    # The floor on the dev examples the student was scored on, from the training examples it saw
    floor = glue.majority_floor(raw.task, raw.labels["train"], raw.labels[raw.eval_splits[0]])
    if floor is not None:  # a student no better than one constant answer has learnt nothing: say so
        metrics["majority_class"] = floor
        score = metrics["student"]["dev"][raw.eval_splits[0]][raw.spec["metric"]]
        metrics["student"]["at_or_below_majority_class"] = bool(score <= floor[raw.spec["metric"]] + 1e-9)
        if metrics["student"]["at_or_below_majority_class"]:
            logging.warning("The student's dev %s (%.4f) is at or below the majority-class floor (%.4f): it has not "
                            "learnt the task.", raw.spec["metric"], score, floor[raw.spec["metric"]])

    _save(student, preprocessor, os.path.join(run.out, "student.keras"))
    save_serving_model(student, preprocessor, os.path.join(run.out, "student"), raw, config)
    main = raw.spec["metric"]
    first = raw.eval_splits[0]
    title = (f"{config.method}: {student.name} on {config.dataset}"
             + (f" (teacher {teacher.name}: {main} {metrics['teacher']['dev'][first][main]:.4f})" if teacher else "")
             + f" — student {main} {metrics['student']['dev'][first][main]:.4f}")
    return finish(run, metrics, history, title, teacher_history, f"teacher {teacher.name}" if teacher else None)
