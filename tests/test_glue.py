"""akd_tf.data.glue: the real TFDS files read with their splits and labels, the majority-class floor, and the
training epochs (permutations drawn from seed and epoch, batches cut to their longest example, grouping by length)."""

import dataclasses

import keras
import numpy as np

from akd_tf.data import glue
from akd_tf.nets import text as text_nets


def test_real_glue_files_are_read_with_their_splits_and_labels():
    """The prepared GLUE files beside the repository (must exist in CI: no skip)."""
    sst2 = glue.load("glue/sst2", batch_size=32, validation_size=1000)
    assert sst2.num_examples == {"train": 66_349, "validation": 1000, "dev": 872}
    assert sst2.labels["dev"].dtype == np.int64 and set(np.unique(sst2.labels["dev"])) == {0, 1}
    assert isinstance(sst2.texts["dev"][0][0], bytes) and len(sst2.texts["dev"]) == 1
    stsb = glue.load("glue/stsb", batch_size=32, validation_size=500)
    assert stsb.num_examples == {"train": 5249, "validation": 500, "dev": 1500}
    assert stsb.regression and stsb.labels["dev"].dtype == np.float32
    assert 0.0 <= stsb.labels["dev"].min() and stsb.labels["dev"].max() <= 5.0
    mrpc = glue.load("glue/mrpc", batch_size=32, validation_size=300, test_size=100)
    assert len(mrpc.texts["train"]) == 2 and mrpc.num_examples["dev"] == 100



def test_majority_class_floor_on_the_real_dev_sets():
    """The floor each study row is read against: the training set's most frequent class given to every dev
    example, from the real GLUE files (MRPC: 279 of 408 dev pairs are paraphrases; CoLA: 721 of 1,043 acceptable)."""
    mrpc = glue.majority_class("mrpc")
    assert mrpc["class"] == 1 and mrpc["accuracy"] == 279 / 408 and abs(mrpc["f1"] - 2 * 279 / (408 + 279)) < 1e-12
    cola = glue.majority_class("cola")
    assert cola["class"] == 1 and cola["accuracy"] == 721 / 1043 and cola["matthews"] == 0.0
    assert glue.majority_class("rte")["accuracy"] == 146 / 277
    assert glue.majority_class("stsb") is None

def _tiny_models(raw, seed=0):
    """Teacher and student with their own vocabularies and lengths; no dropout, so that two fits of the
    same student draw nothing random."""
    keras.utils.set_random_seed(seed)
    teacher, teacher_pre = text_nets.from_architecture(
        "bert_l1_h64", text_nets.learn_vocabulary(raw.texts["train"], 500, verbose=False), raw.num_classes, 32, dropout=0.0)
    student, student_pre = text_nets.from_architecture(
        "bert_l1_h64", text_nets.learn_vocabulary(raw.texts["train"], 60, verbose=False), raw.num_classes, 24, dropout=0.0)
    return teacher, teacher_pre, student, student_pre


def test_features_epochs_are_permutations_drawn_from_seed_and_epoch():
    raw = glue.load("glue/sst2", batch_size=16, validation_size=16, train_size=40, test_size=8)
    _, _, _, preprocessor = _tiny_models(raw)
    features = raw.features(preprocessor, progress=False)
    epochs = [labels.numpy() for _, labels in features.train_epochs(0, 3)]
    assert len(epochs) == 3 * features.steps_per_epoch == 9
    first, second = np.concatenate(epochs[:3]), np.concatenate(epochs[3:6])
    assert sorted(first) == sorted(raw.labels["train"]) and sorted(second) == sorted(raw.labels["train"])
    resumed = [labels.numpy() for _, labels in features.train_epochs(1, 3)]
    for a, b in zip(epochs[3:], resumed):
        np.testing.assert_array_equal(a, b)


def test_batches_are_cut_to_their_longest_example_and_give_the_same_logits():
    raw = glue.load("glue/mrpc", batch_size=8, validation_size=16, train_size=64, test_size=16)
    teacher, preprocessor, _, _ = _tiny_models(raw)  # 32 tokens, sentence pairs (segment ids)
    features = raw.features(preprocessor, progress=False)
    full = {key: value for key, value in features.arrays["dev"][0].items()}
    for inputs, _ in features.dataset("dev"):
        longest = int(inputs["padding_mask"].numpy().sum(axis=1).max())
        assert inputs["token_ids"].shape[1] == min(32, -(-longest // glue.TRIM_MULTIPLE) * glue.TRIM_MULTIPLE)
        assert {key: value.shape for key, value in inputs.items()} == {key: inputs["token_ids"].shape for key in full}
    expected = teacher.predict(full, verbose=0)
    np.testing.assert_allclose(teacher.predict(features.dataset("dev"), verbose=0), expected, atol=1e-5)
    # Sorted by length, then put back in order.
    np.testing.assert_allclose(features.predict(teacher, "dev", batch_size=4), expected, atol=1e-5)


def test_group_by_length_gives_permutations_of_similar_lengths_drawn_from_seed_and_epoch():
    rng = np.random.default_rng(0)
    count, length = 400, 32
    size = rng.integers(3, length + 1, count)
    mask = np.arange(length)[None, :] < size[:, None]
    inputs = {"token_ids": np.where(mask, 7, 0).astype(np.int32), "padding_mask": mask}
    features = glue.Features(arrays={"train": (inputs, np.arange(count))}, batch_size=4, seed=3, eval_splits=(),
                             group_by_length=True)  # the label of an example is its index

    def epochs(f, start, stop):
        return [labels.numpy() for _, labels in f.train_epochs(start, stop)]

    batches, steps = epochs(features, 0, 2), features.steps_per_epoch
    for epoch in (batches[:steps], batches[steps:]):
        assert sorted(np.concatenate(epoch)) == list(range(count))
    assert not np.array_equal(np.concatenate(batches[:steps]), np.concatenate(batches[steps:]))
    for a, b in zip(epochs(features, 1, 2), batches[steps:]):  # drawn from (seed, epoch): a resumed run sees them
        np.testing.assert_array_equal(a, b)
    plain = epochs(dataclasses.replace(features, group_by_length=False), 0, 2)
    spread, plain_spread = ([np.ptp(size[batch]) for batch in bs] for bs in (batches, plain))
    assert np.mean(spread) < np.mean(plain_spread) / 5  # similar lengths: trimmed batches carry little padding
    widths = [x["token_ids"].shape[1] for x, _ in features.train_epochs(0, 1)]
    assert np.mean(widths) < 0.75 * length
