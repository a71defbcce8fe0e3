"""One run of the tool, for every task: teacher, TAKD's assistant, student by the chosen method, evaluation, and
the files a user keeps.

`train_and_evaluate(config, workdir)` is the library entry point; `akd_tf.main` only turns flags into a
`akd_tf.config.Config`. The stages are the same for images and text; what depends on the data (loading it,
building and scoring models, the teacher's cached logits, the serving model) is the run's task
(`akd_tf.tasks`), and what depends on the method (the model that trains, its schedule) is its registry entry
(`akd_tf.methods`). Everything written goes under ``workdir``:

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

from akd_tf import tasks
from akd_tf.callbacks import KeepBest
from akd_tf.config import Config
from akd_tf.methods import registry
from akd_tf.methods.labels import compile_for_labels
from akd_tf.model_files import count_params
from akd_tf.run import finish, make_optimizer, phase_summary, start, teacher_summary
from akd_tf.workdir import read_history


def _teacher(run, task):
    """Loads ``config.teacher_path`` or the teacher this workdir already trained, or trains a new one with the
    labels (resuming from its checkpoint). Returns it, its figures and its history."""
    config, strategy = run.config, run.strategy
    trained = os.path.join(run.workdir, "teacher.keras")
    if config.teacher_path or os.path.isfile(trained):
        path = config.teacher_path or trained
        logging.info("Loading the teacher from %s", path)
        with strategy.scope():
            teacher = task.load_model(path, "teacher")
            compile_for_labels(teacher, make_optimizer(config), task.regression,
                               from_logits=config.teacher_outputs == "logits")
        if config.teacher_path:
            return teacher, {"source": config.teacher_path}, {}
        history = read_history(os.path.join(run.workdir, "history_teacher.csv"))
        return teacher, teacher_summary(config, history, task.monitor), history
    learning_rate = config.resolved()["teacher_learning_rate"]
    keras.utils.set_random_seed(config.seed)  # per stage: a resumed run builds the same initial weights
    with strategy.scope():
        teacher = task.new_model("teacher")
        compile_for_labels(teacher, make_optimizer(config, learning_rate), task.regression)
    logging.info("Training the teacher %s for %d epochs", teacher.name, config.teacher_epochs)
    data = task.data(teacher)
    keep_best = [KeepBest(monitor=task.monitor, verbose=config.verbose)] if data.validation is not None else []
    history = run.fit(teacher, data, "teacher", config.teacher_epochs, (config.teacher_epochs,), learning_rate,
                      stateful=keep_best, first=task.first_callbacks(data))
    task.save(teacher, os.path.join(run.out, "teacher.keras"))
    return teacher, teacher_summary(config, history, task.monitor), history


def _assistant(run, task, teacher):
    """TAKD's assistant: ``--assistant``, the one this workdir already trained, or ``config.assistant_net``
    trained here by the method's assistant method from the teacher. Returns it, its figures and its history."""
    config = run.config
    trained = os.path.join(run.workdir, "assistant.keras")
    epochs = config.assistant_epochs or config.student_epochs
    if config.assistant_path or os.path.isfile(trained):
        path = config.assistant_path or trained
        logging.info("Loading the assistant from %s", path)
        with run.strategy.scope():
            assistant = task.load_model(path, "assistant")
            compile_for_labels(assistant, make_optimizer(config), task.regression)
        if config.assistant_path:
            return assistant, {"source": config.assistant_path}, {}
        history = read_history(os.path.join(run.workdir, "history_assistant.csv"))
    else:
        logging.info("Training the assistant %s for %d epochs by KD from the teacher", config.assistant_net, epochs)
        assistant, history, _ = _student(run, task, teacher, None, "assistant", config.assistant_net,
                                         registry.get(config.method).assistant_method, epochs)
        with run.strategy.scope():  # for evaluation and a loadable file, like the teacher's
            compile_for_labels(assistant, make_optimizer(config), task.regression)
        task.save(assistant, os.path.join(run.out, "assistant.keras"))
    # From the history in both cases, so a resumed run reports what an uninterrupted one does.
    num_train = task.num_examples["train"]
    return assistant, {"source": "trained", **phase_summary(history, 0, epochs, num_train, task.monitor)}, history


def _new_student(run, task, stage="student", net=None):
    keras.utils.set_random_seed(run.config.seed + 1)  # per stage: a resumed run builds the same initial weights
    with run.strategy.scope():
        return task.new_model(stage, net)


def _student(run, task, teacher, student, stage="student", net=None, method=None, epochs=None, metrics=None):
    """Trains ``student`` (a new ``net`` when None) by ``method`` (``config.method``) in ``stage``; returns it, its
    history and per-phase figures. A student of a method that learns through an assistant has the assistant as
    ``teacher``. What the teacher's cached logits cost goes into ``metrics``."""
    config, strategy = run.config, run.strategy
    epochs = epochs or config.student_epochs
    method = registry.get(method or config.method)
    # What ``teacher`` returns: an assistant trained here returns logits.
    teacher_outputs = "logits" if method.via_assistant else config.teacher_outputs
    student = student if student is not None else _new_student(run, task, stage, net)
    with strategy.scope():
        training = method.build(teacher, student, config, optimizer=make_optimizer(config),
                                teacher_outputs=teacher_outputs, regression=task.regression, monitor=task.monitor)
    stateful = list(training.stateful)
    data = plain = task.data(student)
    if not method.keeps_best and data.validation is not None:
        stateful.append(KeepBest(monitor=task.monitor, verbose=config.verbose))
    if teacher is not None and method.teacher:
        data = task.with_teacher(plain, teacher, stage, method, teacher_outputs, {} if metrics is None else metrics)
    logging.info("Training the %s %s with method %s", stage, student.name, method.name)
    phases, rates = method.phases(config, epochs)
    history = run.fit(training.model, data, stage, epochs, phases, rates, stateful,
                      first=[*task.first_callbacks(plain), *training.first], early=training.early)
    num_train = plain.num_examples["train"]
    summary = method.summary(config, history, epochs,
                             lambda begin, end: phase_summary(history, begin, end, num_train, task.monitor))
    return student, history, summary


def train_and_evaluate(config: Config, workdir: str, overwrite: bool = False, notes: dict | None = None) -> dict:
    """Runs teacher, student and evaluation as ``config`` says and writes the results to ``workdir``.

    Resumes an unfinished run in ``workdir`` (see the module docstring). ``notes`` maps file names to
    text written into the workdir once it is prepared (the CLI's ``flags.txt``). Returns the figures
    also written to ``metrics.json``. Raises `BadInput` before training for unusable input, and
    `akd_tf.callbacks.TrainingDiverged` when the loss becomes NaN or infinite.
    """
    run = start(config, workdir, overwrite, notes)
    config, strategy = run.config, run.strategy
    task = tasks.for_run(run)
    logging.info("Data %s: %s examples", config.dataset, task.num_examples)
    metrics = {"method": config.method, "dataset": config.dataset, "num_examples": task.num_examples,
               **task.describe()}
    student = _new_student(run, task) if task.student_first else None

    teacher, guide, teacher_history = None, None, {}
    if config.needs_teacher:
        teacher, teacher_figures, teacher_history = _teacher(run, task)
        metrics["teacher"] = {"net": teacher.name, "params": count_params(teacher), **teacher_figures,
                              **task.evaluate(teacher, "teacher")}
        logging.info("Teacher: %s", metrics["teacher"])
        guide = "teacher"
    if registry.get(config.method).via_assistant:
        teacher, assistant_figures, _ = _assistant(run, task, teacher)  # the student's teacher from here on
        metrics["assistant"] = {"net": teacher.name, "params": count_params(teacher), **assistant_figures,
                                **task.evaluate(teacher, "assistant")}
        logging.info("Assistant: %s", metrics["assistant"])
        guide = "assistant"

    student, history, phases = _student(run, task, teacher, student, metrics=metrics)
    with strategy.scope():  # the method compiled the model it trained, not the student
        compile_for_labels(student, make_optimizer(config), task.regression)
    metrics["student"] = {"net": student.name, "params": count_params(student),
                          "wall_time_s": float(np.sum(history.get("epoch_time_s", []))),
                          **task.evaluate(student, "student")}
    metrics["phases"] = phases
    logging.info("Student: %s", metrics["student"])
    task.report(metrics)

    task.save(student, os.path.join(run.out, "student.keras"))
    task.save_serving(student, os.path.join(run.out, "student"))
    title = (f"{config.method}: {student.name} on {config.dataset}"
             + (f" ({guide} {metrics[guide]['net']}: {task.headline(metrics[guide])})" if guide else "")
             + f" — student {task.headline(metrics['student'])}")
    return finish(run, metrics, history, title, teacher_history,
                  f"teacher {metrics['teacher']['net']}" if teacher_history else None)
