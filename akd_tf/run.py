"""The stages every run shares, image or text: checks before training (`preflight`), the strategy, the workdir
(`prepare_workdir`, `start`), ``fit`` with per-epoch checkpoints and resume (`Run.fit`), model files
(`load_model`, `save_model`), per-phase figures, and the end of a run (`finish`).

`akd_tf.train` (images) and `akd_tf.train_text` (GLUE) call down into this module; it calls neither.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
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
from akd_tf import files, logits, multi_worker, nets, plots, precision, schedule
from akd_tf.callbacks import LinearDecay, StopOnDivergence, TrainingDiverged
from akd_tf.checkpoint import TrainingCheckpoint, is_chief
from akd_tf.config import BadInput, Config, STRATEGIES
from akd_tf.methods import AnnealingSchedule, ContinuationSchedule
from akd_tf.methods.base import known_shape
from akd_tf.data import glue

# Everything a run writes into its workdir; `overwrite=True` removes exactly these.
OUTPUTS = ("teacher.keras", "assistant.keras", "student.keras", "student", "metrics.json", "config.json", "flags.txt",
           "run.png", "teacher.png", "history_teacher.csv", "history_assistant.csv", "history_student.csv",
           "teacher_views_assistant.npz", "teacher_views_student.npz", "tensorboard", "checkpoints")
# Config fields that may change when a run is resumed (they do not change what is computed).
RESUMABLE_CHANGES = ("verbose", "teacher_views_cache", "jit_compile")


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


def make_optimizer(config, learning_rate=None):
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


class Run:
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
        # Made here rather than by the first traced step: variables created while tf.function traces make it trace
        # the whole step twice (a MiniLM's first training step took 63 s instead of 31 here).
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
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
            model.jit_compile = config.jit_compile  # read when fit traces the step
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


def continuation_schedule(config, method=None):
    """``[ContinuationSchedule]`` for a Continuation-KD run (T over ``phase1_epochs``, ψ over its ramp), else ``[]``.
    Stateless (T and ψ are functions of the epoch), it runs first so the epoch's logs carry them."""
    if (method or config.method) != "ckd":
        return []
    return [ContinuationSchedule(config.student_epochs, config.phase1_epochs, config.label_ramp_epochs,
                                 config.max_temperature, verbose=config.verbose)]


def continuation_summary(config, history):
    """What ``metrics.json`` records of a Continuation-KD run's schedule: its settings and T, ψ per epoch."""
    if config.method != "ckd":
        return {}
    return {"schedule": {"max_temperature": config.max_temperature, "anneal_epochs": config.phase1_epochs,
                         "label_ramp_epochs": config.label_ramp_epochs, "margin": config.ckd_margin,
                         "temperature": history.get("temperature", []),
                         "label_weight": history.get("label_weight", [])}}


def compile_classifier(model, optimizer, from_logits=True):
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def count_params(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def evaluate_classifier(model, dataset, verbose):
    results = model.evaluate(dataset, verbose=verbose, return_dict=True)
    return {"test_accuracy": float(results["accuracy"]), "test_loss": float(results["loss"])}


def best_epoch(history, key="val_accuracy", start=0, stop=None):
    values = history.get(key, [])[start:stop]
    if not values:
        return {}
    best = int(np.argmax(values))
    return {"best_epoch": start + best + 1, f"best_{key}": float(values[best])}


def phase_summary(history, start, stop, num_train):
    times = history.get("epoch_time_s", [])[start:stop]
    summary = {"epochs": stop - start, **best_epoch(history, start=start, stop=stop)}
    if times:
        summary["wall_time_s"] = float(np.sum(times))
        summary["images_per_second"] = float(num_train * len(times) / np.sum(times))
    if history.get("loss"):
        summary["final_train_loss"] = float(history["loss"][stop - 1])
    return summary


# Models `preflight` loaded to check them, by path: the stage that loads the same file next takes it instead of
# reading it again (~3 s for the ResNet-56 teacher, more for a MiniLM).
_checked = {}


def _file_state(path):
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size


def load_model(path, what="--teacher", keep=False):
    """Loads a ``.keras`` model with ``safe_mode`` on (no code from the file runs).

    ``keep``: hold the model for the next load of the same unchanged file, which takes it unless a distribution
    strategy is in scope (whose variables must be created within it). Each kept model is taken once: two loads
    never share one model.

    Raises `BadInput` in one line when the file is missing, not a Keras model, corrupt or unsafe.
    """
    kept = _checked.pop(path, None)
    if (kept is not None and not keep and not tf.distribute.has_strategy() and os.path.isfile(path)
            and kept[0] == _file_state(path)):
        return kept[1]
    model = _load_keras_file(path, what)
    if keep:
        _checked[path] = (_file_state(path), model)
    return model


def _load_keras_file(path, what):
    if not os.path.isfile(path):
        raise BadInput(f"{what} file not found. Received: {path!r}")
    prefix = f"{what} {path!r} is not a loadable Keras model"
    if not path.endswith(".keras"):
        raise BadInput(f"{prefix}: expected a .keras file (Keras 3 format).")
    if not zipfile.is_zipfile(path):
        raise BadInput(f"{prefix}: it is not a .keras zip archive (another format, or a truncated/corrupt file).")
    start = time.perf_counter()
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
        logging.info("Read %s %s in %.1f s", what, path, time.perf_counter() - start)
        return model
    except Exception as error:  # noqa: BLE001 - Keras raises many types for bad files; all mean the same here
        reason = " ".join(str(error).split())
        if "safe_mode" in reason or "arbitrary code" in reason:
            raise BadInput(f"{prefix} with safe_mode=True: it contains Python code (e.g. a Lambda layer) that "
                           "safe mode refuses to run. Rebuild it from registered layers.") from None
        if len(reason) > 200:
            reason = reason[:200] + "…"
        raise BadInput(f"{prefix} (loaded with safe_mode=True): {type(error).__name__}: {reason}") from None


def in_run_precision(model, config):
    """A built or loaded model set to compute in the run's dtype policy (`akd_tf.precision.follow`): a teacher file
    saved in float32 computes in bfloat16 in a ``--mixed_precision=bfloat16`` run, and the other way round."""
    return precision.follow(model, precision.policy_name(config.mixed_precision))


def check_fits_data(teacher, path, data_spec, flag="--teacher", returns="logits"):
    """`BadInput` unless the model in ``path`` predicts the dataset's classes from its inputs, and returns
    logits (unless ``returns`` is ``"probabilities"``)."""
    outputs = known_shape(teacher, "outputs")
    inputs = known_shape(teacher, "inputs")
    if outputs is not None and outputs[-1] != data_spec["num_classes"]:
        raise BadInput(f"{flag} {path!r} predicts {outputs[-1]} classes; the dataset has "
                       f"{data_spec['num_classes']}.")
    if "input_shape" in data_spec and inputs is not None and tuple(inputs) != tuple(data_spec["input_shape"]):
        raise BadInput(f"{flag} {path!r} takes inputs of shape {tuple(inputs)}; the dataset's images are "
                       f"{tuple(data_spec['input_shape'])}.")
    if returns == "logits":
        try:
            logits.check_logits(teacher, flag.lstrip("-"))
        except ValueError as error:
            raise BadInput(f"{flag} {path!r}: {error}") from None


def weights_digest(model):
    """A sha256 over every weight of ``model`` (names a cache file computed from it); update it with the rest."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest


def check_same_network(model, net, path, name):
    """`BadInput` unless ``model`` (from ``path``) has the weights of the network ``net`` (built as ``name``)."""
    have = [tuple(w.shape) for w in model.weights]
    want = [tuple(w.shape) for w in net.weights]
    if have != want:
        raise BadInput(f"--student_init {path!r} is not a {name}: its weights have other shapes "
                       f"({len(have)} weights, {count_params(model):,} trainable parameters; a {name} has "
                       f"{len(want)}, {count_params(net):,}). Pass a model of --student_net.")


def teacher_summary(config, history, monitor="val_accuracy"):
    summary = {"source": "trained", "epochs": config.teacher_epochs}
    if history.get("epoch_time_s"):
        summary["wall_time_s"] = float(np.sum(history["epoch_time_s"]))
    return {**summary, **best_epoch(history, monitor)}



def save_model(model, path):
    """Writes ``model`` to a ``.keras`` file as an uncompiled model: without its optimizer's state, which made the
    file twice the weights' size with SGD momentum and three times with Adam, and which no reader uses (this tool
    and `export` load with ``compile=False``; training resumes from its checkpoints). The model in memory stays
    compiled."""
    with files.atomic_path(path) as tmp, _uncompiled(model):
        model.save(tmp)


@contextlib.contextmanager
def _uncompiled(model):
    # Keras 3 writes a .keras file's optimizer and compile settings whenever the model is compiled (its
    # include_optimizer is for .h5 files only), so the model is shown as uncompiled for the time of the save.
    if not model.compiled:
        yield
        return
    optimizer = model.optimizer
    model.optimizer, model.compiled = None, False
    try:
        yield
    finally:
        model.optimizer, model.compiled = optimizer, True



def _differences(saved, config):
    """``name (saved X, now Y)`` for each field of the saved ``config.json`` that differs and matters. A field
    that the saved run did not know (added to `Config` since) counts as its default, which keeps the behaviour
    of the code that wrote it: runs started by an older version resume."""
    current = dataclasses.asdict(config)
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    saved = {**{k: defaults[k] for k in current if k not in saved}, **saved}
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
        for flag, path in (("--teacher", config.teacher_path), ("--assistant", config.assistant_path),
                           ("--student_init", config.student_init_file)):
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


def validate_config(config):
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
    validate_config(config)
    _checked.clear()  # what an earlier run of this process kept and did not use
    prepare_workdir(config, workdir, overwrite)
    try:
        data_lib.images.builder(config.dataset, config.data_dir, config.download)
    except FileNotFoundError as error:
        raise BadInput(str(error)) from None
    spec = {**data_lib.DATASETS, **glue.DATASETS}[config.dataset]
    for flag, path in (("--teacher", config.teacher_path), ("--assistant", config.assistant_path)):
        if path:
            check_fits_data(load_model(path, flag, keep=True), path, spec, flag,
                            config.teacher_outputs if flag == "--teacher" else "logits")
    if config.student_init_file:  # truncate:K is checked when the student is built from the teacher
        init = load_model(config.student_init_file, "--student_init", keep=True)
        check_fits_data(init, config.student_init_file, spec, "--student_init")
        check_same_network(init, nets.build(config.student_net, spec["num_classes"], spec["input_shape"]),
                           config.student_init_file, config.student_net)
    if overwrite:  # last: a bad flag must not cost the user the run it would replace
        clear_outputs(workdir)


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


def start(config: Config, workdir: str, overwrite: bool = False, notes: dict | None = None) -> Run:
    """The beginning of every run: checks (`preflight`), the strategy, determinism, ``config.json`` and
    ``notes`` (file name -> text, e.g. the CLI's ``flags.txt``) in the workdir, and the seed."""
    validate_config(config)
    precision.set_global(config.mixed_precision)  # before any model is built
    # A multi-worker strategy must exist before any other TensorFlow call; the others after the checks.
    strategy = make_strategy(config.strategy) if config.strategy == "multi_worker" else None
    if strategy is None or is_chief(strategy):
        preflight(config, workdir, overwrite)
    strategy = strategy or make_strategy(config.strategy)
    logging.info("Strategy %s with %d replica(s)", type(strategy).__name__, strategy.num_replicas_in_sync)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    run = Run(config, workdir, strategy)
    if run.chief:
        files.remove_stale_temporaries(workdir)  # left by writes that a kill interrupted
        files.write_json(os.path.join(workdir, "config.json"), dataclasses.asdict(config))
        for name, text in (notes or {}).items():
            files.write_text(os.path.join(workdir, name), text)
    keras.utils.set_random_seed(config.seed)
    return run
