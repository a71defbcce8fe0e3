"""One run of the tool: teacher, student by the chosen method, evaluation, and the files a user keeps.

`train_and_evaluate(config, workdir)` is the library entry point; `akd_tf.main` only turns flags into a
`akd_tf.config.Config`. This module holds the image stages (teacher, TAKD assistant, teacher views, student)
and hands GLUE runs to `akd_tf.train_text`; both build on the shared stages of `akd_tf.run`.
Everything written goes under ``workdir``:

    teacher.keras, student.keras     the models (Keras format)
    student/                         a TF SavedModel of the student, for `python -m export.tflite`
    metrics.json                     per-phase and final figures
    config.json                      the resolved configuration
    history_<stage>.csv, run.png     per-epoch logs and a plot of them
    tensorboard/<stage>/             TensorBoard logs
    checkpoints/<stage>/             the newest end-of-epoch checkpoint while a stage trains

Every file is written under a temporary name and renamed, so a kill never leaves half a file. Killed at
any moment, the same call with the same ``workdir`` resumes: a finished teacher is reused, a stage in
progress continues from its last checkpoint (weights, optimizer, epoch, temperature, phase, best-so-far
weights), and the training data of each epoch is a pure function of (seed, epoch). With
``deterministic=True`` the resumed run ends with the same weights as an uninterrupted one.
A workdir that holds a finished run (``metrics.json``) is refused unless ``overwrite=True``.
"""

from __future__ import annotations

import os

import keras
import numpy as np
from absl import logging

from akd_tf import data as data_lib
from akd_tf import files, nets, precision, preflight, teacher_views
from akd_tf.callbacks import KeepBest
from akd_tf.config import Config
from akd_tf.methods import registry
from akd_tf.methods.labels import compile_for_labels
from akd_tf.model_files import FIELDS, count_params, in_run_precision, load_model, save_model
from akd_tf.run import evaluate_classifier, finish, make_optimizer, phase_summary, start, teacher_summary
from akd_tf.workdir import read_history


def _teacher(run, data):
    """Loads ``config.teacher_path`` or the teacher this workdir already trained, or trains
    ``config.teacher_net`` with cross-entropy (resuming from its checkpoint)."""
    config, strategy = run.config, run.strategy
    trained = os.path.join(run.workdir, "teacher.keras")
    if config.teacher_path or os.path.isfile(trained):
        path = config.teacher_path or trained
        logging.info("Loading the teacher from %s", path)
        with strategy.scope():
            teacher = in_run_precision(load_model(path), config)
            compile_for_labels(teacher, make_optimizer(config), from_logits=config.teacher_outputs == "logits")
        if config.teacher_path:
            return teacher, {"source": config.teacher_path}, {}
        history = read_history(os.path.join(run.workdir, "history_teacher.csv"))
        return teacher, teacher_summary(config, history), history
    logging.info("Training the teacher %s for %d epochs", config.teacher_net, config.teacher_epochs)
    learning_rate = config.teacher_learning_rate or config.learning_rate
    keras.utils.set_random_seed(config.seed)  # per stage: a resumed run builds the same initial weights
    with strategy.scope():
        teacher = nets.build(config.teacher_net, data.num_classes, data.input_shape, config.weight_decay,
                             sync_batchnorm=config.sync_batchnorm)
        compile_for_labels(teacher, make_optimizer(config, learning_rate))
    keep_best = [KeepBest(verbose=config.verbose)] if data.validation is not None else []
    history = run.fit(teacher, data, "teacher", config.teacher_epochs, (config.teacher_epochs,), learning_rate,
                      stateful=keep_best)
    save_model(teacher, os.path.join(run.out, "teacher.keras"))
    return teacher, teacher_summary(config, history), history



def _assistant(run, data, teacher):
    """TAKD's assistant: ``--assistant``, the one this workdir already trained, or ``config.assistant_net``
    trained here by Hinton KD from the teacher. Returns it, its figures and its history."""
    config = run.config
    trained = os.path.join(run.workdir, "assistant.keras")
    epochs = config.assistant_epochs or config.student_epochs
    if config.assistant_path or os.path.isfile(trained):
        path = config.assistant_path or trained
        logging.info("Loading the assistant from %s", path)
        with run.strategy.scope():
            assistant = in_run_precision(load_model(path, FIELDS["assistant"]), config)
            compile_for_labels(assistant, make_optimizer(config))
        if config.assistant_path:
            return assistant, {"source": config.assistant_path}, {}
        history = read_history(os.path.join(run.workdir, "history_assistant.csv"))
    else:
        logging.info("Training the assistant %s for %d epochs by KD from the teacher", config.assistant_net, epochs)
        assistant, history, _ = _student(run, data, teacher, "assistant", config.assistant_net,
                                         registry.get(config.method).assistant_method, epochs)
        with run.strategy.scope():  # for evaluate() and a loadable file, like the teacher's
            compile_for_labels(assistant, make_optimizer(config))
        save_model(assistant, os.path.join(run.out, "assistant.keras"))
    # From the history in both cases, so a resumed run reports what an uninterrupted one does.
    return assistant, {"source": "trained", **phase_summary(history, 0, epochs, data.num_examples["train"])}, history


def _student(run, data, teacher, stage="student", net=None, method=None, epochs=None):
    """Trains ``net`` (the student) by ``method`` (``config.method``) in ``stage``; returns it, its history
    and per-phase figures. A student of a method that learns through an assistant has the assistant as ``teacher``."""
    config, strategy = run.config, run.strategy
    net, epochs = net or config.student_net, epochs or config.student_epochs
    method = registry.get(method or config.method)
    # What ``teacher`` returns: an assistant trained here returns logits.
    teacher_outputs = "logits" if method.via_assistant else config.teacher_outputs
    keras.utils.set_random_seed(config.seed + 1)
    with strategy.scope():
        student = nets.build(net, data.num_classes, data.input_shape, config.weight_decay,
                             sync_batchnorm=config.sync_batchnorm)
        if config.student_init_file and stage == "student":  # checked in preflight: the same network
            student.set_weights(load_model(config.student_init_file, FIELDS["student_init"]).get_weights())
        training = method.build(teacher, student, config, optimizer=make_optimizer(config),
                                teacher_outputs=teacher_outputs)
    stateful = list(training.stateful)
    if not method.keeps_best and data.validation is not None:
        stateful.append(KeepBest(verbose=config.verbose))
    if config.teacher_views and method.teacher:
        views, validation = teacher_views.teacher_view_logits(run, data, teacher, stage, teacher_outputs)
        data = data.with_teacher_logits(views, validation, method.cached_teacher_epochs(config))
    phases, rates = method.phases(config, epochs)
    history = run.fit(training.model, data, stage, epochs, phases, rates, stateful, first=training.first,
                      early=training.early)
    num_train = data.num_examples["train"]
    summary = method.summary(config, history, epochs,
                             lambda begin, end: phase_summary(history, begin, end, num_train))
    return student, history, summary


def save_serving_model(student, directory, data, config):
    """Writes the student as a TF SavedModel (``serve`` endpoint) with a JSON note of its input. It computes in
    float32 whatever the run's precision (float32 in, float32 out, and no bfloat16 ops for the TFLite converter)."""
    with files.atomic_path(directory) as tmp, precision.computing_in(student, "float32"):
        student.export(tmp, format="tf_saved_model", verbose=False)
        _write_metadata(tmp, data, config)


def _write_metadata(directory, data, config):
    files.write_json(os.path.join(directory, "akd_tf.json"), {
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



def train_and_evaluate(config: Config, workdir: str, overwrite: bool = False, notes: dict | None = None) -> dict:
    """Runs teacher, student and evaluation as ``config`` says and writes the results to ``workdir``.

    Resumes an unfinished run in ``workdir`` (see the module docstring). ``notes`` maps file names to
    text written into the workdir once it is prepared (the CLI's ``flags.txt``). Returns the figures
    also written to ``metrics.json``. Raises `BadInput` before training for unusable input, and
    `akd_tf.callbacks.TrainingDiverged` when the loss becomes NaN or infinite.
    """
    run = start(config, workdir, overwrite, notes)
    config, strategy = run.config, run.strategy
    if config.text:
        from akd_tf import train_text  # keras-nlp: imported only for text runs

        return train_text.train_and_evaluate(run)

    own_images = data_lib.own.is_own(config.dataset)
    data = data_lib.load(
        config.dataset, batch_size=config.batch_size, data_dir=config.data_dir,
        validation_size=config.validation_size, train_size=config.train_size, test_size=config.test_size,
        shuffle_seed=config.seed, download=config.download,
        image_size=preflight.image_size(config) if own_images else None,
        progress=(lambda line: print(line, flush=True)) if config.verbose else None,
    )
    logging.info("Data %s: %s examples", config.dataset, data.num_examples)
    metrics = {"method": config.method, "dataset": config.dataset, "num_examples": data.num_examples}
    if data.label_names:
        metrics["labels"] = list(data.label_names)

    teacher, teacher_history = None, {}
    if config.needs_teacher:
        teacher, teacher_figures, teacher_history = _teacher(run, data)
        metrics["teacher"] = {
            "net": teacher.name, "params": count_params(teacher), **teacher_figures,
            **teacher_views.teacher_test_figures(run, data, teacher),
        }
        logging.info("Teacher: %s", metrics["teacher"])
    if registry.get(config.method).via_assistant:
        teacher, assistant_summary, _ = _assistant(run, data, teacher)  # the student's teacher from here on
        metrics["assistant"] = {"net": teacher.name, "params": count_params(teacher), **assistant_summary,
                                **evaluate_classifier(teacher, data.test, config.verbose)}
        logging.info("Assistant: %s", metrics["assistant"])

    logging.info("Training the student %s with method %s", config.student_net, config.method)
    student, history, phases = _student(run, data, teacher)
    with strategy.scope():
        compile_for_labels(student, make_optimizer(config))
    times = history.get("epoch_time_s", [])
    metrics["student"] = {
        "net": config.student_net, "params": count_params(student), "wall_time_s": float(np.sum(times)),
        **evaluate_classifier(student, data.test, config.verbose),
    }
    metrics["phases"] = phases
    logging.info("Student: %s", metrics["student"])

    save_model(student, os.path.join(run.out, "student.keras"))
    save_serving_model(student, os.path.join(run.out, "student"), data, config)
    guide = metrics.get("assistant") or metrics.get("teacher")
    title = (f"{config.method}: {config.student_net} on {config.dataset}"
             + (f" ({'assistant' if 'assistant' in metrics else 'teacher'} {guide['net']}: "
                f"{guide['test_accuracy']:.2%})" if guide else "")
             + f" — student test {metrics['student']['test_accuracy']:.2%}")
    return finish(run, metrics, history, title, teacher_history, f"teacher {config.teacher_net}")


