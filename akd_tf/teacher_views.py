"""Teacher views: the teacher's logits of K augmented views of every training image, computed once (batched,
inference mode) and kept, so that distillation epochs read them instead of running the teacher at every step
(``--teacher_views``). The views themselves, images regenerated from their seeds and the batches that carry the
stored logits, are pipelines of `akd_tf.data.images` (`ImageSplits.teacher_views`, `with_teacher_logits`); this
module computes, keeps, shares and reads the logits. A cache directory (``teacher_views_cache``) shares them
between runs with the same teacher, data, seed and K, and keeps a given teacher's test figures too.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from absl import logging

from akd_tf import files
from akd_tf.callbacks import PredictionLines
from akd_tf.data import own
from akd_tf.logits import outputs_as_logits
from akd_tf.model_files import weights_digest
from akd_tf.nets import fold
from akd_tf.run import evaluate_classifier


# Bump when the views of an image change (augmentation, normalisation): cached views of older code are not reused.
VIEWS_VERSION = 1


def views_path(run, teacher, stage, teacher_outputs="logits"):
    """Where the teacher views of ``stage`` are kept: ``teacher_views_<stage>.npz`` in the workdir, or, with
    ``config.teacher_views_cache``, a file in that directory named by a digest of the teacher's weights and of
    everything that fixes the views (dataset, split sizes, seed, K, what the teacher returns), so that runs of
    other methods or budgets with the same teacher and seed reuse them."""
    config = run.config
    if not config.teacher_views_cache:
        return os.path.join(run.out, f"teacher_views_{stage}.npz")
    keys = [VIEWS_VERSION, config.dataset, config.train_size, config.validation_size, config.seed,
            config.teacher_views, teacher_outputs]
    if own.is_own(config.dataset):  # the images behind the name may change; so may their size and split
        keys += [own.fingerprint(config.dataset, config.data_dir), config.image_size, config.test_size]
    return cache_path(config, teacher, "teacher_views_{}.npz", keys)


def cache_path(config, teacher, name, keys):
    """A file of ``config.teacher_views_cache`` computed from ``teacher``: ``name`` with a digest of its weights and
    of ``keys`` (everything else that fixes the file's content)."""
    digest = weights_digest(teacher)
    digest.update(json.dumps(keys).encode())
    return os.path.join(config.teacher_views_cache, name.format(digest.hexdigest()[:20]))


def teacher_view_logits(run, data, teacher, stage, teacher_outputs="logits"):
    """The teacher's logits of ``config.teacher_views`` augmented views of every training image and of
    the validation images, computed once (batched, inference mode) and kept (`views_path`).
    ``teacher_outputs="probabilities"``: the teacher's outputs are converted to logits before they are kept."""
    config = run.config
    path = views_path(run, teacher, stage, teacher_outputs)
    n, views = data.num_examples["train"], config.teacher_views
    saved = _saved_views(path, views, n, stage)
    if saved is not None:
        if run.chief:  # left by a kill between writing the file and removing its parts
            files.remove(f"{path}.parts")
        return saved
    if not (config.teacher_views_cache and run.chief):
        return _make_views(run, data, teacher, stage, teacher_outputs, path)
    # A cache shared by runs: two runs started together (e.g. two runs of one study) need the same views; one makes
    # them (minutes of the teacher's inference) while the other waits and reads them.
    with files.one_maker(path, say=print if config.verbose else lambda message, **_: logging.info(message)):
        saved = _saved_views(path, views, n, stage)
        return saved if saved is not None else _make_views(run, data, teacher, stage, teacher_outputs, path)


def _saved_views(path, views, n, stage):
    if os.path.isfile(path):
        with np.load(path) as saved:
            if saved["views"].shape[:2] == (views, n):
                logging.info("Teacher views of %s read from %s", stage, path)
                return saved["views"], saved["validation"] if saved["validation"].size else None
    return None


def _make_views(run, data, teacher, stage, teacher_outputs, path):
    """The teacher's pass over the views, one view at a time: each finished view is kept in ``<path>.parts/``
    until the whole file is written, so a run killed in this pass (an hour and more of a large teacher on a CPU)
    resumes at the view it was in. The parts are not shared between workers: every worker keeps the list of
    views it found at its start, so that all of them run the same predictions."""
    config = run.config
    n, views = data.num_examples["train"], config.teacher_views
    parts = f"{path}.parts"
    kept = {v: _saved_view(_part_path(parts, v), n) for v in range(views)}
    missing = [v for v, logits in kept.items() if logits is None]
    if config.verbose:
        resumed = f"; {views - len(missing)} of them kept from an earlier attempt" if len(missing) < views else ""
        print(f"Teacher views for the {stage}: {views} augmented views x {n} images through {teacher.name} "
              f"(once; the distillation epochs cycle over them){resumed}", flush=True)
    start = time.perf_counter()
    inference = fold.inference_copy(teacher)  # the same logits, to float rounding, faster
    for done, v in enumerate(missing, 1):
        label = f"Teacher views for the {stage}, view {v + 1}/{views}"
        lines = [PredictionLines(label, config.batch_size, lines=4)] if config.verbose == 2 else []
        kept[v] = outputs_as_logits(inference.predict(data.teacher_view(v), verbose=config.verbose,
                                                      callbacks=lines), teacher, teacher_outputs).reshape(n, -1)
        if run.chief:
            os.makedirs(parts, exist_ok=True)
            with files.atomic_path(_part_path(parts, v)) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, kept[v])
        if config.verbose == 2:
            elapsed = time.perf_counter() - start
            print(f"{label} kept: {done}/{len(missing)} views of this attempt in {elapsed:.0f} s, "
                  f"~{elapsed * (len(missing) - done) / done:.0f} s left", flush=True)
    logits = np.stack([kept[v] for v in range(views)])
    validation = (outputs_as_logits(inference.predict(data.validation, verbose=config.verbose), teacher, teacher_outputs)
                  if data.validation is not None else np.zeros((0,), np.float32))
    logging.info("Teacher views of %s: %s in %.1f s", stage, logits.shape, time.perf_counter() - start)
    if run.chief:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with files.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, views=logits, validation=validation)
        files.remove(parts)
    return logits, validation if validation.size else None


def _part_path(parts, view):
    return os.path.join(parts, f"view{view:03d}.npy")


def _saved_view(path, n):
    """A kept view's logits [n, classes], or None if there is none (or one of another training set's size)."""
    if not os.path.isfile(path):
        return None
    logits = np.load(path)
    return logits if logits.ndim == 2 and logits.shape[0] == n else None


def teacher_test_figures(run, data, teacher):
    """The teacher's test accuracy and loss. A given teacher's (``--teacher``) are kept in
    ``config.teacher_views_cache``, when there is one, under a digest of its weights and of what fixes them (the
    test split, the precision, what the teacher returns): each run of a study, and each resumed attempt, reported
    the same figures after minutes of the teacher's inference (minutes for a ResNet-56 on one core)."""
    config = run.config
    if not (config.teacher_path and config.teacher_views_cache):
        return evaluate_classifier(teacher, data.test, config.verbose)
    keys = [VIEWS_VERSION, config.dataset, config.test_size, data.num_examples["test"], config.mixed_precision,
            config.teacher_outputs]
    if own.is_own(config.dataset):
        keys += [own.fingerprint(config.dataset, config.data_dir), config.image_size, config.seed]
    path = cache_path(config, teacher, "teacher_test_{}.json", keys)
    if os.path.isfile(path):
        with open(path) as f:
            figures = json.load(f)
        logging.info("Teacher test figures read from %s", path)
        return figures
    figures = evaluate_classifier(teacher, data.test, config.verbose)
    if run.chief:
        os.makedirs(config.teacher_views_cache, exist_ok=True)
        files.write_json(path, figures)
    return figures
