"""akd_tf.teacher_views: cached teacher views (``--teacher_views``) on real CIFAR-10 images: each image with its own
logits, independent of the global seed, the validation batches, phase 1 on views = the teacher in the loop, and a
teacher pass killed between views resuming at its view."""

import os

import keras
import numpy as np
import pytest

import akd_tf
from akd_tf import data
from akd_tf.batch_keys import STUDENT_INPUTS, TEACHER_LOGITS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N, K, BATCH = 48, 3, 16


@pytest.fixture(scope="module")
def splits():
    return data.load("cifar10", batch_size=BATCH, validation_size=16, train_size=N, test_size=16, shuffle_seed=3)


def _batches(dataset):
    return [({k: v.numpy() for k, v in x.items()}, y.numpy()) for x, y in dataset]


def test_views_pair_each_image_with_its_own_logits(splits):
    views = np.concatenate([x.numpy() for x in splits.teacher_views(K)])
    assert views.shape == (K * N, 32, 32, 3)
    # Golden logits that name their view and image: logits[v, i] = (1000 v + i, …).
    logits = np.zeros((K, N, 10), np.float32)
    logits[..., 0] = 1000 * np.arange(K)[:, None] + np.arange(N)[None, :]
    cached = splits.with_teacher_logits(logits, distill_epochs=2 * K)
    epochs = [_batches(cached.train_epochs(e, e + 1)) for e in range(2 * K + 1)]
    for e, batches in enumerate(epochs[:2 * K]):
        codes = np.concatenate([x[TEACHER_LOGITS][:, 0] for x, _ in batches]).astype(int)
        images = np.concatenate([x[STUDENT_INPUTS] for x, _ in batches])
        assert sorted(codes // 1000) == [e % K] * N  # epoch e shows view e mod K …
        assert sorted(codes % 1000) == list(range(N))  # … of every image once
        np.testing.assert_array_equal(images, views[(codes // 1000) * N + codes % 1000])  # the view its logits are of
    first, again = (np.concatenate([x[TEACHER_LOGITS][:, 0] for x, _ in epochs[e]]) for e in (0, K))
    assert not np.array_equal(first, again)  # same view, new order
    # After the distillation epochs: fresh augmentation and zeros (AKD's label phase never reads them).
    last = epochs[2 * K]
    assert all(not x[TEACHER_LOGITS].any() for x, _ in last)
    plain = np.concatenate([x.numpy() for x, _ in splits.train_epochs(2 * K, 2 * K + 1)])
    np.testing.assert_array_equal(np.concatenate([x[STUDENT_INPUTS] for x, _ in last]), plain)


def test_views_do_not_depend_on_the_global_seed(splits):
    """Seed 0 once broke the epoch shuffle (TF compares (global, op) seeds with (0, 0) in Python)."""
    orders = []
    for global_seed in (0, 1):
        keras.utils.set_random_seed(global_seed)
        orders.append(np.concatenate([y.numpy() for _, y in splits.train_epochs(0, 2)]))
    np.testing.assert_array_equal(*orders)


def test_validation_batches_carry_their_logits(splits):
    validation_logits = np.arange(16 * 10, dtype=np.float32).reshape(16, 10)
    cached = splits.with_teacher_logits(np.zeros((1, N, 10), np.float32), validation_logits)
    plain = _batches(splits.validation.map(lambda x, y: ({STUDENT_INPUTS: x}, y)))
    got = _batches(cached.validation)
    np.testing.assert_array_equal(np.concatenate([x[TEACHER_LOGITS] for x, _ in got]), validation_logits)
    for (xa, ya), (xb, yb) in zip(got, plain):
        np.testing.assert_array_equal(xa[STUDENT_INPUTS], xb[STUDENT_INPUTS])
        np.testing.assert_array_equal(ya, yb)
    with pytest.raises(ValueError, match=r"shape \[views, 48, 10\]"):
        splits.with_teacher_logits(np.zeros((2, N - 1, 10), np.float32))


def _net(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, strides=2),
                             keras.layers.BatchNormalization(), keras.layers.ReLU(),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])


def test_phase1_on_cached_views_equals_the_teacher_in_the_loop(splits):
    """Same loss, same schedule: the cached logits are exactly what the teacher computes in the step."""
    teacher = _net(1)
    logits = teacher.predict(splits.teacher_views(K), verbose=0).reshape(K, N, 10)
    cached = splits.with_teacher_logits(logits, distill_epochs=K)
    live = cached.train_epochs(0, K).map(lambda x, y: (x[STUDENT_INPUTS], y))  # same images, teacher runs
    weights = []
    for dataset in (cached.train_epochs(0, K), live):
        model = akd_tf.AnnealingKD(teacher=teacher, student=_net(2), max_temperature=K)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
        history = model.fit(dataset, epochs=K, steps_per_epoch=splits.steps_per_epoch, verbose=0, shuffle=False,
                            callbacks=[akd_tf.AnnealingSchedule(K, K)])
        weights.append((history.history["loss"], model.student.get_weights()))
    np.testing.assert_allclose(weights[0][0], weights[1][0], rtol=1e-5)
    for a, b in zip(weights[0][1], weights[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


class _KilledAfter:
    """The teacher, killed (as by the end of a session) when it starts its pass number ``passes + 1``."""

    def __init__(self, model, passes):
        self.model, self.passes, self.name = model, passes, model.name

    def predict(self, dataset, **kwargs):
        if self.passes == 0:
            raise KeyboardInterrupt
        self.passes -= 1
        return self.model.predict(dataset, **kwargs)


def test_a_teacher_pass_killed_between_views_resumes_at_the_view_it_was_in(splits, tmp_path, capsys):
    from types import SimpleNamespace

    from akd_tf.config import Config
    from akd_tf.teacher_views import teacher_view_logits, views_path

    teacher = _net(1)
    run = SimpleNamespace(config=Config(dataset="cifar10", teacher_views=K, batch_size=BATCH, verbose=2), chief=True,
                          out=str(tmp_path))
    path = views_path(run, teacher, "student")
    with pytest.raises(KeyboardInterrupt):
        teacher_view_logits(run, splits, _KilledAfter(teacher, passes=2), "student")
    assert sorted(os.listdir(path + ".parts")) == ["view000.npy", "view001.npy"] and not os.path.exists(path)
    capsys.readouterr()
    # The next attempt runs the teacher over the last view and the validation images only: 2 passes.
    logits, validation = teacher_view_logits(run, splits, _KilledAfter(teacher, passes=2), "student")
    out = capsys.readouterr().out
    assert "2 of them kept from an earlier attempt" in out and "view 3/3 kept: 1/1 views" in out
    assert "view 1/3" not in out and "view 2/3" not in out
    assert not os.path.exists(path + ".parts")
    # The same logits as one pass over all views, in the cached file as returned.
    whole = teacher.predict(splits.teacher_views(K), verbose=0).reshape(K, N, 10)
    np.testing.assert_allclose(logits, whole, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(validation, teacher.predict(splits.validation, verbose=0), rtol=1e-5, atol=1e-5)
    with np.load(path) as saved:
        np.testing.assert_array_equal(saved["views"], logits)
    # A kill between writing the file and removing the parts leaves them: the next run reads the file (no teacher
    # pass) and removes them.
    os.makedirs(path + ".parts")
    np.save(os.path.join(path + ".parts", "view000.npy"), logits[0])
    again, _ = teacher_view_logits(run, splits, _KilledAfter(teacher, passes=0), "student")
    np.testing.assert_array_equal(again, logits)
    assert not os.path.exists(path + ".parts")
