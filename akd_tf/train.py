"""One run of the tool: teacher, student by the chosen method, evaluation, and the files a user keeps.

`train_and_evaluate(config, workdir)` is the library entry point; `akd_tf.main` only turns flags into a
`Config`. Everything written goes under ``workdir``:

    teacher.keras, student.keras     the models (Keras format)
    student/                         a TF SavedModel of the student, for `python -m export.tflite`
    metrics.json                     per-phase and final figures
    config.json                      the resolved configuration
    history_<stage>.csv, run.png     per-epoch logs and a plot of them
    tensorboard/<stage>/             TensorBoard logs
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from akd_tf import data as data_lib
from akd_tf import nets, plots, schedule
from akd_tf.callbacks import AnnealingSchedule
from akd_tf.distiller import AnnealingKD, HintonKD

METHODS = ("akd", "scratch", "kd")
STRATEGIES = ("auto", "mirrored", "one_device", "default")


@dataclasses.dataclass
class Config:
    """Everything a run needs; the defaults are the paper's CIFAR-10 recipe (``configs/cifar10.flags``)."""

    dataset: str = "cifar10"
    data_dir: str | None = None
    download: bool = False
    validation_size: int = 5000
    train_size: int | None = None
    test_size: int | None = None
    method: str = "akd"
    teacher_net: str = "resnet110"
    student_net: str = "resnet8"
    teacher_path: str | None = None
    teacher_epochs: int = 200
    phase1_epochs: int = 200
    phase2_epochs: int = 100
    max_temperature: int = 10
    kd_alpha: float = 0.9
    kd_temperature: float = 4.0
    batch_size: int = 128
    learning_rate: float = 0.1
    teacher_learning_rate: float | None = None  # None: same as learning_rate
    lr_schedule: str = "step"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    seed: int = 20
    strategy: str = "auto"
    verbose: int = 1

    def validate(self):
        """Raises `ValueError` naming the first bad field, before any data or model is touched."""
        def one_of(name, allowed):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"Unknown {name} {value!r}. Allowed: {', '.join(allowed)}")

        one_of("dataset", tuple(data_lib.DATASETS))
        one_of("method", METHODS)
        one_of("student_net", tuple(nets.NETS))
        if self.teacher_path is None and self.method != "scratch":
            one_of("teacher_net", tuple(nets.NETS))
        one_of("lr_schedule", tuple(schedule.LR_SCHEDULES))
        one_of("strategy", STRATEGIES)
        for name in ("phase1_epochs", "phase2_epochs", "batch_size", "max_temperature", "teacher_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        for name in ("learning_rate", "kd_temperature", "teacher_learning_rate"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be > 0. Received: {name}={getattr(self, name)!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"`momentum` must lie in [0, 1). Received: momentum={self.momentum!r}")
        if not 0 <= self.kd_alpha <= 1:
            raise ValueError(f"`kd_alpha` must lie in [0, 1]. Received: kd_alpha={self.kd_alpha!r}")
        if self.weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0. Received: weight_decay={self.weight_decay!r}")
        if self.method == "akd":
            schedule.validate_schedule(self.phase1_epochs, self.max_temperature)
        if self.teacher_path is not None and not os.path.isfile(self.teacher_path):
            raise FileNotFoundError(f"--teacher file not found. Received: {self.teacher_path!r}")

    @property
    def student_epochs(self):
        """Every method trains the student for as many epochs as AKD's two phases together."""
        return self.phase1_epochs + self.phase2_epochs


def make_strategy(name):
    """``auto``: `MirroredStrategy` over all GPUs when there are several, else the default strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"Unknown strategy {name!r}. Allowed: {', '.join(STRATEGIES)}")


class EpochTimer(keras.callbacks.Callback):
    """Adds the wall time of each epoch (training and validation) to its logs as ``epoch_time_s``."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_time_s"] = time.perf_counter() - self._start


def _sgd(config, learning_rate=None):
    return keras.optimizers.SGD(learning_rate=learning_rate or config.learning_rate, momentum=config.momentum)


def _callbacks(config, workdir, stage, phase_epochs, base_learning_rate):
    """Per-phase learning rate, timing, CSV and TensorBoard logs shared by every stage."""
    lr = lambda epoch, _: schedule.learning_rate_at(epoch, phase_epochs, base_learning_rate, config.lr_schedule)  # noqa: E731
    return [
        keras.callbacks.LearningRateScheduler(lr),
        EpochTimer(),
        keras.callbacks.CSVLogger(os.path.join(workdir, f"history_{stage}.csv")),
        keras.callbacks.TensorBoard(log_dir=os.path.join(workdir, "tensorboard", stage)),
    ]


def _restore_best(config):
    # Never stops early (patience = all epochs); only reloads the best weights by validation accuracy.
    return keras.callbacks.EarlyStopping(
        monitor="val_accuracy", mode="max", patience=10**9, restore_best_weights=True, verbose=config.verbose
    )


def _compile_classifier(model, optimizer):
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def _count_params(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def _evaluate(model, dataset, verbose):
    results = model.evaluate(dataset, verbose=verbose, return_dict=True)
    return {"test_accuracy": float(results["accuracy"]), "test_loss": float(results["loss"])}


def _best(history, key="val_accuracy", start=0, stop=None):
    values = history.get(key, [])[start:stop]
    if not values:
        return {}
    best = int(np.argmax(values))
    return {"best_epoch": start + best + 1, "best_val_accuracy": float(values[best])}


def _phase_summary(history, start, stop, num_train):
    times = history.get("epoch_time_s", [])[start:stop]
    summary = {"epochs": stop - start, **_best(history, start=start, stop=stop)}
    if times:
        summary["wall_time_s"] = float(np.sum(times))
        summary["images_per_second"] = float(num_train * len(times) / np.sum(times))
    if history.get("loss"):
        summary["final_train_loss"] = float(history["loss"][stop - 1])
    return summary


def _teacher(config, data, strategy, workdir):
    """Loads ``config.teacher_path`` or trains ``config.teacher_net`` with cross-entropy."""
    if config.teacher_path:
        logging.info("Loading the teacher from %s", config.teacher_path)
        with strategy.scope():
            teacher = keras.models.load_model(config.teacher_path, compile=False, safe_mode=True)
            _compile_classifier(teacher, _sgd(config))
        return teacher, {"source": config.teacher_path}, {}
    logging.info("Training the teacher %s for %d epochs", config.teacher_net, config.teacher_epochs)
    learning_rate = config.teacher_learning_rate or config.learning_rate
    with strategy.scope():
        teacher = nets.build(config.teacher_net, data.num_classes, data.input_shape, config.weight_decay)
        _compile_classifier(teacher, _sgd(config, learning_rate))
    start = time.perf_counter()
    history = teacher.fit(
        data.train, validation_data=data.validation, epochs=config.teacher_epochs, verbose=config.verbose,
        callbacks=_callbacks(config, workdir, "teacher", (config.teacher_epochs,), learning_rate)
        + ([_restore_best(config)] if data.validation is not None else []),
    ).history
    summary = {"source": "trained", "epochs": config.teacher_epochs, "wall_time_s": time.perf_counter() - start}
    return teacher, {**summary, **_best(history)}, history


def _student(config, data, strategy, teacher, workdir):
    """Trains the student by ``config.method``; returns it, its history and per-phase figures."""
    with strategy.scope():
        student = nets.build(config.student_net, data.num_classes, data.input_shape, config.weight_decay)
        if config.method == "akd":
            model = AnnealingKD(teacher=teacher, student=student, max_temperature=config.max_temperature)
            model.compile(optimizer=_sgd(config))
            phases = (config.phase1_epochs, config.phase2_epochs)
            extra = [AnnealingSchedule(config.phase1_epochs, config.max_temperature, verbose=config.verbose)]
        elif config.method == "kd":
            model = HintonKD(teacher=teacher, student=student, temperature=config.kd_temperature, alpha=config.kd_alpha)
            model.compile(optimizer=_sgd(config))
            phases, extra = (config.student_epochs,), []
        else:
            model = student
            _compile_classifier(model, _sgd(config))
            phases, extra = (config.student_epochs,), []
    if config.method != "akd" and data.validation is not None:
        extra.append(_restore_best(config))
    history = model.fit(
        data.train, validation_data=data.validation, epochs=config.student_epochs, verbose=config.verbose,
        # AnnealingSchedule first: it adds temperature/phase to the logs the others record.
        callbacks=extra + _callbacks(config, workdir, "student", phases, config.learning_rate),
    ).history
    num_train = data.num_examples["train"]
    if config.method == "akd":
        p1 = config.phase1_epochs
        summary = {
            "phase1": _phase_summary(history, 0, p1, num_train),
            "phase2": _phase_summary(history, p1, config.student_epochs, num_train),
        }
    else:
        summary = {"training": _phase_summary(history, 0, config.student_epochs, num_train)}
    return student, history, summary


def _save(model, path):
    # An optimizer compiled only for evaluate() is unbuilt; building it keeps the file's optimizer
    # state consistent with what load_model rebuilds (else Keras warns and skips it on load).
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.save(path)


def _write_json(path, payload):
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=False)
        f.write("\n")


def export_student(student, directory, data, config):
    """Writes the student as a TF SavedModel (``serve`` endpoint) with a JSON note of its input."""
    student.export(directory, format="tf_saved_model", verbose=False)
    _write_json(os.path.join(directory, "akd_tf.json"), {
        "dataset": config.dataset,
        "num_classes": data.num_classes,
        "input_shape": list(data.input_shape),
        "preprocessing": data.preprocessing,
        "net": config.student_net,
        "method": config.method,
    })


def train_and_evaluate(config: Config, workdir: str) -> dict:
    """Runs teacher, student and evaluation as ``config`` says and writes the results to ``workdir``.

    Returns the figures also written to ``metrics.json``.
    """
    config.validate()
    os.makedirs(workdir, exist_ok=True)
    _write_json(os.path.join(workdir, "config.json"), dataclasses.asdict(config))
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.strategy)
    logging.info("Strategy %s with %d replica(s)", type(strategy).__name__, strategy.num_replicas_in_sync)

    data = data_lib.load(
        config.dataset, batch_size=config.batch_size, data_dir=config.data_dir,
        validation_size=config.validation_size, train_size=config.train_size, test_size=config.test_size,
        shuffle_seed=config.seed, download=config.download,
    )
    logging.info("Data %s: %s examples", config.dataset, data.num_examples)
    metrics = {"method": config.method, "dataset": config.dataset, "num_examples": data.num_examples}

    teacher, teacher_history = None, {}
    if config.method != "scratch" or config.teacher_path:
        teacher, teacher_summary, teacher_history = _teacher(config, data, strategy, workdir)
        _save(teacher, os.path.join(workdir, "teacher.keras"))
        metrics["teacher"] = {
            "net": teacher.name, "params": _count_params(teacher), **teacher_summary,
            **_evaluate(teacher, data.test, config.verbose),
        }
        logging.info("Teacher: %s", metrics["teacher"])

    logging.info("Training the student %s with method %s", config.student_net, config.method)
    start = time.perf_counter()
    student, history, phases = _student(config, data, strategy, teacher, workdir)
    wall_time = time.perf_counter() - start
    with strategy.scope():
        _compile_classifier(student, _sgd(config))
    metrics["student"] = {
        "net": config.student_net, "params": _count_params(student), "wall_time_s": wall_time,
        **_evaluate(student, data.test, config.verbose),
    }
    metrics["phases"] = phases
    logging.info("Student: %s", metrics["student"])

    _save(student, os.path.join(workdir, "student.keras"))
    export_student(student, os.path.join(workdir, "student"), data, config)
    _write_json(os.path.join(workdir, "metrics.json"), metrics)
    plots.plot_run(
        history, os.path.join(workdir, "run.png"),
        title=f"{config.method}: {config.student_net} on {config.dataset}"
        + (f" (teacher {metrics['teacher']['net']}: {metrics['teacher']['test_accuracy']:.2%})" if teacher else "")
        + f" — student test {metrics['student']['test_accuracy']:.2%}",
        phase1_epochs=config.phase1_epochs if config.method == "akd" else None,
    )
    if teacher_history:
        plots.plot_run(teacher_history, os.path.join(workdir, "teacher.png"), title=f"teacher {config.teacher_net}")
    return metrics
