"""The stages every run shares, image or text: its start (`start`: the checks of `akd_tf.preflight`, the strategy,
the workdir's config and notes), the optimizer, ``fit`` with per-epoch checkpoints and resume (`Run.fit`), per-phase
figures, and the end of a run (`finish`). Model files are `akd_tf.model_files`; the workdir, `akd_tf.workdir`.

`akd_tf.train` (the stages) and the tasks (`akd_tf.tasks`) call down into this module; it calls neither.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from akd_tf import files, multi_worker, plots, precision, preflight, schedule
from akd_tf.callbacks import LinearDecay, StopOnDivergence, TrainingDiverged, TrainingLines
from akd_tf.checkpoint import TrainingCheckpoint, is_chief
from akd_tf.config import Config, STRATEGIES
from akd_tf.nets import fused_batchnorm
from akd_tf.workdir import read_history, truncate_history
from akd_tf.methods import registry


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
    lines = ([TrainingLines(stage, config.batch_size, config.progress_seconds)]
             if config.verbose == 2 and config.progress_seconds else [])
    return [
        learning_rate,
        EpochTimer(),
        *lines,
        # Appends: a resumed stage continues the log (trimmed to its checkpoint by `_fit`).
        keras.callbacks.CSVLogger(os.path.join(out, f"history_{stage}.csv"), append=True),
        keras.callbacks.TensorBoard(log_dir=os.path.join(out, "tensorboard", stage)),
    ]


class Run:
    """Where a run reads and writes: the chief writes into the workdir; other workers of a multi-worker
    run read the chief's checkpoints but write into a private temporary directory."""

    def __init__(self, config, workdir, strategy):
        self.config, self.workdir, self.strategy = config, workdir, strategy
        self.chief = is_chief(strategy)
        self.out = workdir if self.chief else tempfile.mkdtemp(prefix="akd_tf_worker_")

    def fit(self, model, data, stage, epochs, phase_epochs, base_learning_rate, stateful, first=(), early=()):
        """``model.fit`` that resumes from the stage's checkpoint; returns the stage's full history.

        ``first``: stateless callbacks that run before all others (e.g. validation metrics they read); ``early``:
        stateful callbacks that run before the logging ones, so that the logs carry what they set (e.g. T, phase).
        """
        stateful = [*early, *stateful]
        config = self.config
        checkpoint = TrainingCheckpoint(os.path.join(self.workdir, "checkpoints", stage), stateful=stateful,
                                        every_minutes=config.checkpoint_minutes or None)
        # Made here rather than by the first traced step: variables created while tf.function traces make it trace
        # the whole step twice (a first step of twice the time).
        fused_batchnorm.enable(model)  # every model trained here; a distiller's own fit does it too, for Keras users
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        start = checkpoint.restore(model)
        history_path = os.path.join(self.out, f"history_{stage}.csv")
        truncate_history(history_path, start)
        if start or checkpoint.initial_step:
            at = f"epoch {start + 1}/{epochs}" + (
                f", after step {checkpoint.initial_step} of {data.steps_per_epoch}" if checkpoint.initial_step else "")
            logging.info("Resuming %s at %s from %s", stage, at, checkpoint.directory)
            if config.verbose:
                print(f"Resuming {stage} training at {at} from its checkpoint.")
        elif config.verbose:  # said on every start, so a rerun after a kill says what it found
            print(f"No checkpoint of the {stage} yet: training it from epoch 1/{epochs}.")
        if start < epochs:
            callbacks = (
                list(first)
                + list(early)
                + _callbacks(config, self.out, stage, phase_epochs, base_learning_rate, data.steps_per_epoch)
                + stateful[len(early):]
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
                    + "Try a lower `learning_rate` (with `overwrite` or a new `workdir`)."
                ) from None
        else:
            for callback in stateful:  # the stage had finished: only its end-of-training step is left
                callback.set_model(model)
                callback.on_train_end()
        return read_history(history_path)


def evaluate_classifier(model, dataset, verbose):
    results = model.evaluate(dataset, verbose=verbose, return_dict=True)
    return {"test_accuracy": float(results["accuracy"]), "test_loss": float(results["loss"])}


def best_epoch(history, key="val_accuracy", start=0, stop=None):
    values = history.get(key, [])[start:stop]
    if not values:
        return {}
    best = int(np.argmax(values))
    return {"best_epoch": start + best + 1, f"best_{key}": float(values[best])}


def phase_summary(history, start, stop, num_train, monitor="val_accuracy"):
    times = history.get("epoch_time_s", [])[start:stop]
    summary = {"epochs": stop - start, **best_epoch(history, monitor, start, stop)}
    if times:
        summary["wall_time_s"] = float(np.sum(times))
        summary["images_per_second"] = float(num_train * len(times) / np.sum(times))
    if history.get("loss"):
        summary["final_train_loss"] = float(history["loss"][stop - 1])
    return summary


def teacher_summary(config, history, monitor="val_accuracy"):
    summary = {"source": "trained", "epochs": config.teacher_epochs}
    if history.get("epoch_time_s"):
        summary["wall_time_s"] = float(np.sum(history["epoch_time_s"]))
    return {**summary, **best_epoch(history, monitor)}


def finish(run, metrics, history, title, teacher_history=None, teacher_title=None):
    """The end of a run: plots, then ``metrics.json`` (which marks the run finished), then no checkpoints."""
    with files.atomic_path(os.path.join(run.out, "run.png")) as tmp:
        plots.plot_run(history, tmp, title=title,
                       phase1_epochs=registry.get(run.config.method).phase_boundary(run.config))
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
    preflight.validate_config(config)
    precision.set_global(config.mixed_precision)  # before any model is built
    # A multi-worker strategy must exist before any other TensorFlow call; the others after the checks.
    strategy = make_strategy(config.strategy) if config.strategy == "multi_worker" else None
    if strategy is None or is_chief(strategy):
        preflight.preflight(config, workdir, overwrite)
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
