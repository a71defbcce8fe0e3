"""One run of the tool: teacher, student by the chosen method, evaluation, and the files a user keeps.

`train_and_evaluate(config, workdir)` is the library entry point; `akd_tf.main` only turns flags into a
`Config`. Everything written goes under ``workdir``:

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

import csv
import dataclasses
import io
import json
import os
import tempfile
import time
import zipfile

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from akd_tf import data as data_lib
from akd_tf import distiller, files, multi_worker, nets, plots, schedule
from akd_tf.callbacks import AnnealingSchedule, KeepBest, LinearDecay, StopOnDivergence, TrainingDiverged
from akd_tf.data import glue
from akd_tf.nets import text as text_nets
from akd_tf.checkpoint import TrainingCheckpoint, is_chief
from akd_tf.distiller import AnnealingKD, HintonKD

# "finetune" is "scratch" (labels only) under the name that reads right for a pre-trained student.
METHODS = ("akd", "scratch", "kd", "takd", "finetune")
LABELS_ONLY = ("scratch", "finetune")
OPTIMIZERS = ("sgd", "adamw")
STRATEGIES = ("auto", "mirrored", "one_device", "default", "multi_worker")
# Everything a run writes into its workdir; `overwrite=True` removes exactly these.
OUTPUTS = ("teacher.keras", "assistant.keras", "student.keras", "student", "metrics.json", "config.json", "flags.txt",
           "run.png", "teacher.png", "history_teacher.csv", "history_assistant.csv", "history_student.csv",
           "teacher_views_assistant.npz", "teacher_views_student.npz", "tensorboard", "checkpoints")
# Config fields that may change when a run is resumed (they do not change what is computed).
RESUMABLE_CHANGES = ("verbose",)


class BadInput(ValueError):
    """A configuration, path or file that cannot work; raised before any training starts."""


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
    # TAKD: teacher -> assistant -> student; the assistant is loaded, or trained here by KD from the teacher.
    assistant_path: str | None = None
    assistant_net: str = "resnet20"
    assistant_epochs: int | None = None  # None: as many as the student
    # Images: K augmented views of every training image, teacher run once over them (0: teacher in the loop).
    teacher_views: int = 0
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
    deterministic: bool = False
    strategy: str = "auto"
    verbose: int = 1
    # Text (GLUE) runs only.
    teacher_preset: str | None = None
    student_preset: str | None = None
    sequence_length: int = 128
    teacher_vocabulary_size: int = 8000
    student_vocabulary_size: int = 8000
    cache_teacher_logits: bool = True
    optimizer: str = "sgd"
    clipnorm: float | None = None

    @property
    def text(self) -> bool:
        return glue.is_glue(self.dataset)

    def validate(self):
        """Raises `ValueError` naming the first bad field, before any data or model is touched."""
        def one_of(name, allowed):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"Unknown {name} {value!r}. Allowed: {', '.join(allowed)}")

        one_of("dataset", tuple(data_lib.DATASETS) + tuple(glue.DATASETS))
        one_of("method", METHODS)
        architectures = tuple(text_nets.ARCHITECTURES if self.text else nets.NETS)
        if not (self.text and self.student_preset):
            one_of("student_net", architectures)
        if self.method == "takd":
            if self.text:
                raise ValueError("`method` 'takd' is implemented for image datasets. Received: "
                                 f"dataset={self.dataset!r}. Allowed there: akd, scratch, kd, finetune")
            if self.assistant_path is None:
                one_of("assistant_net", architectures)
        elif self.assistant_path is not None:
            raise ValueError(f"`assistant` is read by --method=takd only. Received: method={self.method!r}, "
                             f"assistant={self.assistant_path!r}")
        if self.teacher_path is None and self.needs_teacher and not (self.text and self.teacher_preset):
            one_of("teacher_net", architectures)
        if isinstance(self.teacher_views, bool) or not isinstance(self.teacher_views, int) or self.teacher_views < 0:
            raise ValueError(f"`teacher_views` must be an integer >= 0. Received: teacher_views={self.teacher_views!r}")
        if self.teacher_views and (self.text or self.method in LABELS_ONLY):
            raise ValueError(
                "`teacher_views` caches the teacher's logits of augmented images for akd, kd and takd on image "
                f"datasets. Received: teacher_views={self.teacher_views}, method={self.method!r}, "
                f"dataset={self.dataset!r}" + (" (text runs cache logits with --cache_teacher_logits)" if self.text
                                                else ""))
        if self.assistant_epochs is not None and (isinstance(self.assistant_epochs, bool)
                                                  or not isinstance(self.assistant_epochs, int)
                                                  or self.assistant_epochs < 1):
            raise ValueError(f"`assistant_epochs` must be a positive integer. Received: "
                             f"assistant_epochs={self.assistant_epochs!r}")
        if not self.text and (self.teacher_preset or self.student_preset):
            raise ValueError("`teacher_preset`/`student_preset` name keras-nlp text models; they need a GLUE dataset "
                             f"(glue/<task>). Received: dataset={self.dataset!r}")
        if self.text and self.method == "kd" and glue.DATASETS[self.dataset]["num_classes"] == 1:
            raise ValueError(f"`method` 'kd' needs class probabilities; {self.dataset} is a regression task. "
                             "Allowed there: akd, scratch, finetune")
        one_of("lr_schedule", tuple(schedule.LR_SCHEDULES) + (schedule.LINEAR,))
        one_of("optimizer", OPTIMIZERS)
        one_of("strategy", STRATEGIES)
        for name in ("phase1_epochs", "phase2_epochs", "batch_size", "max_temperature", "teacher_epochs",
                     "sequence_length", "teacher_vocabulary_size", "student_vocabulary_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        for name in ("learning_rate", "kd_temperature", "teacher_learning_rate", "clipnorm"):
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
        for flag, path in (("--teacher", self.teacher_path), ("--assistant", self.assistant_path)):
            if path is not None and not os.path.isfile(path):
                raise FileNotFoundError(f"{flag} file not found. Received: {path!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"`seed` must be an integer >= 0. Received: seed={self.seed!r}")

    @property
    def student_epochs(self):
        """Every method trains the student for as many epochs as AKD's two phases together."""
        return self.phase1_epochs + self.phase2_epochs

    @property
    def needs_teacher(self):
        """Is the teacher loaded (or trained)? Not for TAKD with a given assistant; for labels-only methods
        only when ``--teacher`` is given (its test accuracy is then reported beside the student's)."""
        if self.method == "takd" and self.assistant_path:
            return False
        return self.method not in LABELS_ONLY or self.teacher_path is not None


def make_strategy(name):
    """``auto``: `MirroredStrategy` over all GPUs when there are several, else the default strategy.

    ``multi_worker``: `MultiWorkerMirroredStrategy` over the cluster that ``TF_CONFIG`` describes; it must
    be created before any other TensorFlow call of the process.
    """
    if name == "multi_worker":
        return multi_worker.strategy()
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


def _optimizer(config, learning_rate=None):
    """The configured optimizer: SGD with momentum (the CIFAR recipe) or AdamW (the GLUE recipe; its decoupled
    ``weight_decay`` replaces the nets' L2 penalty), with ``clipnorm`` if set."""
    learning_rate = learning_rate or config.learning_rate
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=config.weight_decay,
                                      clipnorm=config.clipnorm)
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=config.momentum, clipnorm=config.clipnorm)


def _callbacks(config, out, stage, phase_epochs, base_learning_rate, steps_per_epoch):
    """Per-phase learning rate, timing, CSV and TensorBoard logs shared by every stage."""
    if config.lr_schedule == schedule.LINEAR:
        learning_rate = LinearDecay(base_learning_rate, phase_epochs, steps_per_epoch)
    else:
        learning_rate = keras.callbacks.LearningRateScheduler(
            lambda epoch, _: schedule.learning_rate_at(epoch, phase_epochs, base_learning_rate, config.lr_schedule))
    return [
        learning_rate,
        EpochTimer(),
        # Appends: a resumed stage continues the log (trimmed to its checkpoint by `_fit`).
        keras.callbacks.CSVLogger(os.path.join(out, f"history_{stage}.csv"), append=True),
        keras.callbacks.TensorBoard(log_dir=os.path.join(out, "tensorboard", stage)),
    ]


def read_history(path):
    """A CSVLogger file as a Keras ``History.history`` dict (``{}`` when there is none)."""
    if not os.path.isfile(path):
        return {}
    history = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key != "epoch" and value != "":
                    history.setdefault(key, []).append(float(value))
    return history


def _truncate_history(path, epochs):
    """Keeps the header and the first ``epochs`` rows: rows past the checkpoint are recomputed on resume."""
    if not os.path.isfile(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) > epochs + 1:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows[: epochs + 1])
        files.write_text(path, text.getvalue())


class _Run:
    """Where a run reads and writes: the chief writes into the workdir; other workers of a multi-worker
    run read the chief's checkpoints but write into a private temporary directory."""

    def __init__(self, config, workdir, strategy):
        self.config, self.workdir, self.strategy = config, workdir, strategy
        self.chief = is_chief(strategy)
        self.out = workdir if self.chief else tempfile.mkdtemp(prefix="akd_tf_worker_")

    def fit(self, model, data, stage, epochs, phase_epochs, base_learning_rate, stateful, first=()):
        """``model.fit`` that resumes from the stage's checkpoint; returns the stage's full history.

        ``first``: stateless callbacks that run before all others (e.g. validation metrics they read).
        """
        config = self.config
        checkpoint = TrainingCheckpoint(os.path.join(self.workdir, "checkpoints", stage), stateful=stateful)
        start = checkpoint.restore(model)
        history_path = os.path.join(self.out, f"history_{stage}.csv")
        _truncate_history(history_path, start)
        if start:
            logging.info("Resuming %s at epoch %d of %d from %s", stage, start + 1, epochs, checkpoint.directory)
            if config.verbose:
                print(f"Resuming {stage} training at epoch {start + 1}/{epochs} from its checkpoint.")
        if start < epochs:
            callbacks = (
                list(first)
                + [c for c in stateful if isinstance(c, AnnealingSchedule)]  # early: it adds T/phase to the logs
                + _callbacks(config, self.out, stage, phase_epochs, base_learning_rate, data.steps_per_epoch)
                + [c for c in stateful if not isinstance(c, AnnealingSchedule)]
                + [StopOnDivergence(), checkpoint]  # last: it records what the others did
            )
            try:
                model.fit(
                    data.train_epochs(start, epochs), steps_per_epoch=data.steps_per_epoch, initial_epoch=start,
                    shuffle=False,  # the dataset shuffles, by (seed, epoch)
                    epochs=epochs, validation_data=data.validation, verbose=config.verbose, callbacks=callbacks,
                )
            except TrainingDiverged as error:
                kept = checkpoint.latest_epoch()
                raise TrainingDiverged(
                    f"{stage} training diverged: {error}. "
                    + (f"The last good checkpoint (after epoch {kept}) is kept in {checkpoint.directory}. "
                       if kept else "No epoch finished, so there is no checkpoint. ")
                    + "Try a lower --learning_rate (with --overwrite or a new --workdir)."
                ) from None
        else:
            for callback in stateful:  # the stage had finished: only its end-of-training step is left
                callback.set_model(model)
                callback.on_train_end()
        return read_history(history_path)


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
    return {"best_epoch": start + best + 1, f"best_{key}": float(values[best])}


def _phase_summary(history, start, stop, num_train):
    times = history.get("epoch_time_s", [])[start:stop]
    summary = {"epochs": stop - start, **_best(history, start=start, stop=stop)}
    if times:
        summary["wall_time_s"] = float(np.sum(times))
        summary["images_per_second"] = float(num_train * len(times) / np.sum(times))
    if history.get("loss"):
        summary["final_train_loss"] = float(history["loss"][stop - 1])
    return summary


def load_model(path, what="--teacher"):
    """Loads a ``.keras`` model with ``safe_mode`` on (no code from the file runs).

    Raises `BadInput` in one line when the file is missing, not a Keras model, corrupt or unsafe.
    """
    if not os.path.isfile(path):
        raise BadInput(f"{what} file not found. Received: {path!r}")
    prefix = f"{what} {path!r} is not a loadable Keras model"
    if not path.endswith(".keras"):
        raise BadInput(f"{prefix}: expected a .keras file (Keras 3 format).")
    if not zipfile.is_zipfile(path):
        raise BadInput(f"{prefix}: it is not a .keras zip archive (another format, or a truncated/corrupt file).")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - Keras raises many types for bad files; all mean the same here
        reason = " ".join(str(error).split())
        if "safe_mode" in reason or "arbitrary code" in reason:
            raise BadInput(f"{prefix} with safe_mode=True: it contains Python code (e.g. a Lambda layer) that "
                           "safe mode refuses to run. Rebuild it from registered layers.") from None
        if len(reason) > 200:
            reason = reason[:200] + "…"
        raise BadInput(f"{prefix} (loaded with safe_mode=True): {type(error).__name__}: {reason}") from None


def _check_teacher_fits_data(teacher, path, data_spec, flag="--teacher"):
    outputs = distiller._known_shape(teacher, "outputs")
    inputs = distiller._known_shape(teacher, "inputs")
    if outputs is not None and outputs[-1] != data_spec["num_classes"]:
        raise BadInput(f"{flag} {path!r} predicts {outputs[-1]} classes; the dataset has "
                       f"{data_spec['num_classes']}.")
    if "input_shape" in data_spec and inputs is not None and tuple(inputs) != tuple(data_spec["input_shape"]):
        raise BadInput(f"{flag} {path!r} takes inputs of shape {tuple(inputs)}; the dataset's images are "
                       f"{tuple(data_spec['input_shape'])}.")


def _teacher(run, data):
    """Loads ``config.teacher_path`` or the teacher this workdir already trained, or trains
    ``config.teacher_net`` with cross-entropy (resuming from its checkpoint)."""
    config, strategy = run.config, run.strategy
    trained = os.path.join(run.workdir, "teacher.keras")
    if config.teacher_path or os.path.isfile(trained):
        path = config.teacher_path or trained
        logging.info("Loading the teacher from %s", path)
        with strategy.scope():
            teacher = load_model(path)
            _compile_classifier(teacher, _optimizer(config))
        if config.teacher_path:
            return teacher, {"source": config.teacher_path}, {}
        history = read_history(os.path.join(run.workdir, "history_teacher.csv"))
        return teacher, _teacher_summary(config, history), history
    logging.info("Training the teacher %s for %d epochs", config.teacher_net, config.teacher_epochs)
    learning_rate = config.teacher_learning_rate or config.learning_rate
    keras.utils.set_random_seed(config.seed)  # per stage: a resumed run builds the same initial weights
    with strategy.scope():
        teacher = nets.build(config.teacher_net, data.num_classes, data.input_shape, config.weight_decay)
        _compile_classifier(teacher, _optimizer(config, learning_rate))
    keep_best = [KeepBest(verbose=config.verbose)] if data.validation is not None else []
    history = run.fit(teacher, data, "teacher", config.teacher_epochs, (config.teacher_epochs,), learning_rate,
                      stateful=keep_best)
    _save(teacher, os.path.join(run.out, "teacher.keras"))
    return teacher, _teacher_summary(config, history), history


def _teacher_summary(config, history, monitor="val_accuracy"):
    summary = {"source": "trained", "epochs": config.teacher_epochs}
    if history.get("epoch_time_s"):
        summary["wall_time_s"] = float(np.sum(history["epoch_time_s"]))
    return {**summary, **_best(history, monitor)}


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
            assistant = load_model(path, "--assistant")
            _compile_classifier(assistant, _optimizer(config))
        if config.assistant_path:
            return assistant, {"source": config.assistant_path}, {}
        history = read_history(os.path.join(run.workdir, "history_assistant.csv"))
    else:
        logging.info("Training the assistant %s for %d epochs by KD from the teacher", config.assistant_net, epochs)
        assistant, history, _ = _student(run, data, teacher, "assistant", config.assistant_net, "kd", epochs)
        with run.strategy.scope():  # for evaluate() and a loadable file, like the teacher's
            _compile_classifier(assistant, _optimizer(config))
        _save(assistant, os.path.join(run.out, "assistant.keras"))
    # From the history in both cases, so a resumed run reports what an uninterrupted one does.
    return assistant, {"source": "trained", **_phase_summary(history, 0, epochs, data.num_examples["train"])}, history


def teacher_view_logits(run, data, teacher, stage):
    """The teacher's logits of ``config.teacher_views`` augmented views of every training image and of
    the validation images, computed once per stage (batched, inference mode) and kept in the workdir."""
    config = run.config
    path = os.path.join(run.out, f"teacher_views_{stage}.npz")
    n, views = data.num_examples["train"], config.teacher_views
    if os.path.isfile(path):
        with np.load(path) as saved:
            if saved["views"].shape[:2] == (views, n):
                logging.info("Teacher views of %s read from %s", stage, path)
                return saved["views"], saved["validation"] if saved["validation"].size else None
    if config.verbose:
        print(f"Teacher views for the {stage}: {views} augmented views x {n} images through {teacher.name} "
              "(once; the distillation epochs cycle over them)", flush=True)
    start = time.perf_counter()
    logits = teacher.predict(data.teacher_views(views), verbose=config.verbose)
    logits = logits.reshape(views, n, -1).astype(np.float32)
    validation = (teacher.predict(data.validation, verbose=config.verbose).astype(np.float32)
                  if data.validation is not None else np.zeros((0,), np.float32))
    logging.info("Teacher views of %s: %s in %.1f s", stage, logits.shape, time.perf_counter() - start)
    if run.chief:
        with files.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, views=logits, validation=validation)
    return logits, validation if validation.size else None


def _student(run, data, teacher, stage="student", net=None, method=None, epochs=None):
    """Trains ``net`` (the student) by ``method`` (``config.method``) in ``stage``; returns it, its history
    and per-phase figures. TAKD's student is trained like KD's, with the assistant as ``teacher``."""
    config, strategy = run.config, run.strategy
    net, method, epochs = net or config.student_net, method or config.method, epochs or config.student_epochs
    keras.utils.set_random_seed(config.seed + 1)
    with strategy.scope():
        student = nets.build(net, data.num_classes, data.input_shape, config.weight_decay)
        if method == "akd":
            model = AnnealingKD(teacher=teacher, student=student, max_temperature=config.max_temperature)
            model.compile(optimizer=_optimizer(config))
            phases = (config.phase1_epochs, config.phase2_epochs)
            stateful = [AnnealingSchedule(config.phase1_epochs, config.max_temperature, verbose=config.verbose)]
        elif method in ("kd", "takd"):
            model = HintonKD(teacher=teacher, student=student, temperature=config.kd_temperature, alpha=config.kd_alpha)
            model.compile(optimizer=_optimizer(config))
            phases, stateful = (epochs,), []
        else:
            model = student
            _compile_classifier(model, _optimizer(config))
            phases, stateful = (epochs,), []
    if method != "akd" and data.validation is not None:
        stateful.append(KeepBest(verbose=config.verbose))
    if config.teacher_views and method not in LABELS_ONLY:
        views, validation = teacher_view_logits(run, data, teacher, stage)
        data = data.with_teacher_logits(views, validation, config.phase1_epochs if method == "akd" else None)
    history = run.fit(model, data, stage, epochs, phases, config.learning_rate, stateful)
    num_train = data.num_examples["train"]
    if method == "akd":
        p1 = config.phase1_epochs
        summary = {
            "phase1": _phase_summary(history, 0, p1, num_train),
            "phase2": _phase_summary(history, p1, epochs, num_train),
        }
    else:
        summary = {"training": _phase_summary(history, 0, epochs, num_train)}
    return student, history, summary


def _save(model, path):
    # An optimizer compiled only for evaluate() is unbuilt; building it keeps the file's optimizer
    # state consistent with what load_model rebuilds (else Keras warns and skips it on load).
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    with files.atomic_path(path) as tmp:
        model.save(tmp)


def export_student(student, directory, data, config):
    """Writes the student as a TF SavedModel (``serve`` endpoint) with a JSON note of its input."""
    with files.atomic_path(directory) as tmp:
        student.export(tmp, format="tf_saved_model", verbose=False)
        _write_metadata(tmp, data, config)


def _write_metadata(directory, data, config):
    files.write_json(os.path.join(directory, "akd_tf.json"), {
        "dataset": config.dataset,
        "num_classes": data.num_classes,
        "input_shape": list(data.input_shape),
        "preprocessing": data.preprocessing,
        "net": config.student_net,
        "method": config.method,
    })


def _differences(saved, config):
    """``name (saved X, now Y)`` for each field of the saved ``config.json`` that differs and matters."""
    current = dataclasses.asdict(config)
    names = sorted(k for k in set(saved) | set(current) if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k))
    return [f"{k} (saved {saved.get(k)!r}, now {current.get(k)!r})" for k in names]


def prepare_workdir(config: Config, workdir: str, overwrite: bool = False):
    """Checks that ``workdir`` can take this run, before anything long starts; `BadInput` otherwise.

    A new or empty workdir is fine. One with an unfinished run of the same configuration is resumed.
    A finished run, or an unfinished one with another configuration, is refused unless ``overwrite``;
    `clear_outputs` then removes them, once every other check has passed.
    """
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise BadInput(f"--workdir {workdir!r} exists and is not a directory.")
    try:
        os.makedirs(workdir, exist_ok=True)
        with tempfile.TemporaryFile(dir=workdir):
            pass
    except OSError as error:
        raise BadInput(f"--workdir {workdir!r} is not writable: {error.strerror or error}.") from None
    config_path, metrics_path = os.path.join(workdir, "config.json"), os.path.join(workdir, "metrics.json")
    if overwrite:
        doomed = [os.path.realpath(os.path.join(workdir, name)) for name in OUTPUTS]
        for flag, path in (("--teacher", config.teacher_path), ("--assistant", config.assistant_path)):
            real = os.path.realpath(path) if path else None
            if real and any(real == d or real.startswith(d + os.sep) for d in doomed):
                raise BadInput(f"{flag} {path!r} is one of the outputs that --overwrite would delete "
                               f"in --workdir {workdir!r}. Copy it elsewhere first.")
        return
    if os.path.isfile(metrics_path):
        raise BadInput(f"--workdir {workdir!r} holds a finished run (metrics.json). Pass --overwrite to replace "
                       "it, or choose another --workdir.")
    if os.path.isfile(config_path):
        with open(config_path) as f:
            differing = _differences(json.load(f), config)
        if differing:
            listed = ", ".join(differing[:3]) + (f" and {len(differing) - 3} more" if len(differing) > 3 else "")
            raise BadInput(
                f"--workdir {workdir!r} holds an unfinished run with other settings: {listed}. "
                "Run the same command to resume it, pass --overwrite to start over, or choose another --workdir."
            )


def _validate(config):
    try:
        config.validate()
    except (ValueError, OSError) as error:
        raise BadInput(str(error)) from None


def clear_outputs(workdir: str):
    """Removes this tool's outputs (`OUTPUTS`) from ``workdir`` and nothing else."""
    for name in OUTPUTS:
        files.remove(os.path.join(workdir, name))


def preflight(config: Config, workdir: str, overwrite: bool = False):
    """Every check that needs no training: configuration, workdir, prepared dataset, teacher file.

    Raises `BadInput` with a one-line message naming what was received and what is allowed.
    """
    _validate(config)
    prepare_workdir(config, workdir, overwrite)
    try:
        data_lib.images.builder(config.dataset, config.data_dir, config.download)
    except FileNotFoundError as error:
        raise BadInput(str(error)) from None
    for flag, path in (("--teacher", config.teacher_path), ("--assistant", config.assistant_path)):
        if path:
            _check_teacher_fits_data(load_model(path, flag), path, {**data_lib.DATASETS, **glue.DATASETS}[config.dataset],
                                     flag)
    if overwrite:  # last: a bad flag must not cost the user the run it would replace
        clear_outputs(workdir)


def train_and_evaluate(config: Config, workdir: str, overwrite: bool = False, notes: dict | None = None) -> dict:
    """Runs teacher, student and evaluation as ``config`` says and writes the results to ``workdir``.

    Resumes an unfinished run in ``workdir`` (see the module docstring). ``notes`` maps file names to
    text written into the workdir once it is prepared (the CLI's ``flags.txt``). Returns the figures
    also written to ``metrics.json``. Raises `BadInput` before training for unusable input, and
    `akd_tf.callbacks.TrainingDiverged` when the loss becomes NaN or infinite.
    """
    _validate(config)
    # A multi-worker strategy must exist before any other TensorFlow call; the others after the checks.
    strategy = make_strategy(config.strategy) if config.strategy == "multi_worker" else None
    if strategy is None or is_chief(strategy):
        preflight(config, workdir, overwrite)
    strategy = strategy or make_strategy(config.strategy)
    logging.info("Strategy %s with %d replica(s)", type(strategy).__name__, strategy.num_replicas_in_sync)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    run = _Run(config, workdir, strategy)
    if run.chief:
        files.remove_stale_temporaries(workdir)  # left by writes that a kill interrupted
        files.write_json(os.path.join(workdir, "config.json"), dataclasses.asdict(config))
        for name, text in (notes or {}).items():
            files.write_text(os.path.join(workdir, name), text)
    keras.utils.set_random_seed(config.seed)
    if config.text:
        from akd_tf import train_text  # keras-nlp: imported only for text runs

        return train_text.train_and_evaluate(run)

    data = data_lib.load(
        config.dataset, batch_size=config.batch_size, data_dir=config.data_dir,
        validation_size=config.validation_size, train_size=config.train_size, test_size=config.test_size,
        shuffle_seed=config.seed, download=config.download,
    )
    logging.info("Data %s: %s examples", config.dataset, data.num_examples)
    metrics = {"method": config.method, "dataset": config.dataset, "num_examples": data.num_examples}

    teacher, teacher_history = None, {}
    if config.needs_teacher:
        teacher, teacher_summary, teacher_history = _teacher(run, data)
        metrics["teacher"] = {
            "net": teacher.name, "params": _count_params(teacher), **teacher_summary,
            **_evaluate(teacher, data.test, config.verbose),
        }
        logging.info("Teacher: %s", metrics["teacher"])
    if config.method == "takd":
        teacher, assistant_summary, _ = _assistant(run, data, teacher)  # the student's teacher from here on
        metrics["assistant"] = {"net": teacher.name, "params": _count_params(teacher), **assistant_summary,
                                **_evaluate(teacher, data.test, config.verbose)}
        logging.info("Assistant: %s", metrics["assistant"])

    logging.info("Training the student %s with method %s", config.student_net, config.method)
    student, history, phases = _student(run, data, teacher)
    with strategy.scope():
        _compile_classifier(student, _optimizer(config))
    times = history.get("epoch_time_s", [])
    metrics["student"] = {
        "net": config.student_net, "params": _count_params(student), "wall_time_s": float(np.sum(times)),
        **_evaluate(student, data.test, config.verbose),
    }
    metrics["phases"] = phases
    logging.info("Student: %s", metrics["student"])

    _save(student, os.path.join(run.out, "student.keras"))
    export_student(student, os.path.join(run.out, "student"), data, config)
    guide = metrics.get("assistant") or metrics.get("teacher")
    title = (f"{config.method}: {config.student_net} on {config.dataset}"
             + (f" ({'assistant' if config.method == 'takd' else 'teacher'} {guide['net']}: "
                f"{guide['test_accuracy']:.2%})" if guide else "")
             + f" — student test {metrics['student']['test_accuracy']:.2%}")
    return finish(run, metrics, history, title, teacher_history, f"teacher {config.teacher_net}")


def finish(run, metrics, history, title, teacher_history=None, teacher_title=None):
    """The end of a run: plots, then ``metrics.json`` (which marks the run finished), then no checkpoints."""
    with files.atomic_path(os.path.join(run.out, "run.png")) as tmp:
        plots.plot_run(history, tmp, title=title,
                       phase1_epochs=run.config.phase1_epochs if run.config.method == "akd" else None)
    if teacher_history:
        with files.atomic_path(os.path.join(run.out, "teacher.png")) as tmp:
            plots.plot_run(teacher_history, tmp, title=teacher_title)
    files.write_json(os.path.join(run.out, "metrics.json"), metrics)
    files.remove(os.path.join(run.out, "checkpoints"))
    if not run.chief:
        files.remove(run.out)
    return metrics
