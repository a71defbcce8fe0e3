"""GLUE with keras-nlp: the real TFDS files, mock data end to end, cached teacher logits = teacher every step,
presets that cannot download, and the text student's TFLite export."""

import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

import cli_cases
from akd_tf import AnnealingSchedule
from akd_tf import model_files, train
from akd_tf.config import Config
from akd_tf.data import glue
from akd_tf.batch_keys import TEACHER_INPUTS, TEACHER_LOGITS
from akd_tf.methods import AnnealingKD
from akd_tf.nets import text as text_nets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--teacher_net=bert_l1_h64", "--student_net=bert_l1_h64", "--teacher_vocabulary_size=600",
        "--student_vocabulary_size=400", "--sequence_length=32", "--batch_size=32", "--teacher_epochs=1",
        "--max_temperature=2", "--phase1_epochs=2", "--phase2_epochs=1", "--optimizer=adamw",
        "--learning_rate=0.001", "--weight_decay=0", "--clipnorm=1.0", "--lr_schedule=linear", "--verbose=0"]


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


def test_cached_teacher_logits_give_the_same_student_as_running_the_teacher_every_step():
    """Teacher and student tokenize differently; the cached path never runs the teacher in fit."""
    raw = glue.load("glue/sst2", batch_size=16, validation_size=16, train_size=64, test_size=16)
    teacher, teacher_pre, student, student_pre = _tiny_models(raw)
    teacher_features, student_features = raw.features(teacher_pre, progress=False), raw.features(student_pre, progress=False)
    # Two tokenizers: other vocabularies and lengths.
    assert teacher_pre.tokenizer.vocabulary_size() > student_pre.tokenizer.vocabulary_size()
    assert teacher_features.arrays["train"][0]["token_ids"].shape == (64, 32)
    assert student_features.arrays["train"][0]["token_ids"].shape == (64, 24)
    initial = student.get_weights()
    logits = {split: teacher.predict(teacher_features.dataset(split), verbose=0) for split in teacher_features.arrays}
    runs = {
        "cached": student_features.with_inputs(**{TEACHER_LOGITS: logits}),
        "every_step": student_features.with_inputs(
            **{TEACHER_INPUTS: {s: a[0] for s, a in teacher_features.arrays.items()}}),
    }
    results = {}
    for name, features in runs.items():
        student.set_weights(initial)
        model = AnnealingKD(teacher=teacher, student=student, max_temperature=2)
        model.compile(optimizer=keras.optimizers.SGD(0.05))
        history = model.fit(features.train_epochs(0, 3), steps_per_epoch=features.steps_per_epoch, epochs=3,
                            validation_data=features.validation, verbose=0,
                            callbacks=[AnnealingSchedule(2, 2, verbose=0)])
        results[name] = (history.history, [w.copy() for w in student.get_weights()])
    (cached_history, cached_weights), (live_history, live_weights) = results["cached"], results["every_step"]
    np.testing.assert_allclose(cached_history["loss"], live_history["loss"], rtol=1e-5)
    np.testing.assert_allclose(cached_history["val_loss"], live_history["val_loss"], rtol=1e-5)
    for a, b in zip(cached_weights, live_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not all(np.array_equal(a, b) for a, b in zip(initial, cached_weights))


def test_akd_phase2_on_a_regression_task_fits_the_score():
    raw = glue.load("glue/stsb", batch_size=16, validation_size=16, train_size=32, test_size=16)
    teacher, teacher_pre, student, student_pre = _tiny_models(raw)
    assert student.output.shape[-1] == 1
    features = raw.features(student_pre, progress=False)
    model = AnnealingKD(teacher=teacher, student=student, max_temperature=1, regression=True)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    model.phase = 2
    x, y = next(iter(features.dataset("train")))
    expected = float(np.mean((student(x).numpy()[:, 0] - y.numpy()) ** 2))
    logs = model.test_on_batch(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)


def test_preset_that_cannot_download_is_one_clear_line():
    with pytest.raises(text_nets.PresetUnavailable, match=r"could not be downloaded \(no network\?\)"):
        text_nets.from_preset("bert_tiny_en_uncased", 2, 32)
    with pytest.raises(text_nets.PresetUnavailable, match="not a loadable keras-nlp"):
        text_nets.from_preset(os.path.join(ROOT, "configs"), 2, 32)
    for preset, says in (("/no/such/dir", r"'/no/such/dir' does not exist \(no such directory\)\. Expected a local"),
                         ("no_such_preset", r"'no_such_preset' is neither a directory nor a keras-hub text classifier")):
        with pytest.raises(text_nets.PresetUnavailable, match=says) as error:
            text_nets.from_preset(preset, 2, 32, setting="teacher_preset")
        assert str(error.value).startswith("`teacher_preset`") and "\n" not in str(error.value)
        assert str(error.value).endswith("such as bert_tiny_en_uncased.")


def test_glue_run_end_to_end_on_mock_data_for_a_pair_task(tmp_path):
    """MRPC (sentence pairs, F1) through `train_and_evaluate` on TFDS mock data."""
    config = Config(dataset="glue/mrpc", train_size=48, validation_size=32, test_size=32, batch_size=16,
                    teacher_net="bert_l1_h64", student_net="bert_l1_h64", teacher_vocabulary_size=300,
                    student_vocabulary_size=300, sequence_length=24, teacher_epochs=1, max_temperature=1,
                    phase1_epochs=1, phase2_epochs=1, optimizer="adamw", learning_rate=1e-3, weight_decay=0.0,
                    lr_schedule="linear", verbose=0)
    # Random strings and labels in the shape of the real features; the split metadata comes from the real files.
    with tfds.testing.mock_data(num_examples=120, policy=tfds.testing.MockPolicy.USE_FILES,
                                data_dir=os.environ["TFDS_DATA_DIR"]):
        metrics = train.train_and_evaluate(config, str(tmp_path))
    assert metrics["metric"] == "f1" and set(metrics["student"]["dev"]["dev"]) == {"accuracy", "f1"}
    assert metrics["teacher_logits"]["cached"] is True
    history = open(os.path.join(tmp_path, "history_student.csv")).readline()
    assert "val_f1" in history and "temperature" in history
    # One vocabulary of 300 tokens learned once and shared by both models.
    assert metrics["teacher"]["params"] == metrics["student"]["params"]


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Two text runs of the CLI in one interpreter (one TensorFlow start): the tiny offline SST-2 config on the real
    GLUE files (teacher, AKD student, saved outputs), and a student preset that cannot be downloaded."""
    root = tmp_path_factory.mktemp("glue")
    workdirs = {"sst2": str(root / "sst2"), "preset": str(root / "preset")}
    results = cli_cases.run_in_subprocess("akd_tf.main", {
        "sst2": ["--flagfile=configs/glue_tiny_smoke.flags", f"--workdir={workdirs['sst2']}", "--verbose=0"],
        "preset": ["--dataset=glue/sst2", f"--workdir={workdirs['preset']}", "--train_size=64", "--validation_size=32",
                   "--test_size=32", "--student_preset=distil_bert_base_en_uncased", *TINY[:1], *TINY[2:]],
    }, str(root), ROOT)
    return results, workdirs


@pytest.fixture(scope="module")
def sst2_workdir(cli_runs):
    results, workdirs = cli_runs
    assert results["sst2"]["returncode"] == 0, results["sst2"]["stderr"][-4000:]
    return workdirs["sst2"]


def test_cli_student_preset_fails_before_the_teacher_trains(cli_runs):
    results, workdirs = cli_runs
    proc = results["preset"]
    assert proc["returncode"] == 2, proc["stderr"][-2000:]
    last = proc["stderr"].strip().splitlines()[-1]
    assert last.startswith("akd_tf.main: error: --student_preset 'distil_bert_base_en_uncased' could not be downloaded")
    assert not os.path.exists(os.path.join(workdirs["preset"], "teacher.keras"))


def test_cli_glue_run_writes_metrics_models_and_a_loadable_student(sst2_workdir):
    metrics = json.load(open(os.path.join(sst2_workdir, "metrics.json")))
    assert metrics["num_examples"] == {"train": 256, "validation": 64, "dev": 128}
    assert set(metrics["phases"]) == {"phase1", "phase2"}
    assert metrics["teacher_logits"]["cached"]
    for who in ("teacher", "student"):
        assert 0.0 <= metrics[who]["dev"]["dev"]["accuracy"] <= 1.0
    # The floor a student must clear, on the examples it saw and was scored on: the majority class of its 256
    # training sentences (positive, 149) on the first 128 dev sentences (67 positive)
    assert metrics["majority_class"]["class"] == 1
    assert metrics["majority_class"]["accuracy"] == pytest.approx(67 / 128)
    below = metrics["student"]["dev"]["dev"]["accuracy"] <= 67 / 128
    assert metrics["student"]["at_or_below_majority_class"] == below
    # The .keras student carries its tokenizer: it classifies raw strings, as the metrics were computed.
    student = model_files.load_model(os.path.join(sst2_workdir, "student.keras"), "student")
    logits = student.predict(np.array(["a gorgeous , witty , seductive movie .", "dull and lifeless ."]), verbose=0)
    assert logits.shape == (2, 2)
    # The preset beside the SavedModel loads with keras-nlp's own from_preset, offline.
    import keras_nlp

    preset = keras_nlp.models.TextClassifier.from_preset(os.path.join(sst2_workdir, "student", "preset"))
    np.testing.assert_allclose(preset.predict(np.array(["dull and lifeless ."]), verbose=0), logits[1:], atol=1e-5)


def test_text_student_exports_to_tflite_with_builtin_ops(sst2_workdir, tmp_path):
    out = tmp_path / "tflite"
    proc = subprocess.run([sys.executable, "-m", "export.tflite", f"--model={sst2_workdir}/student", f"--output={out}",
                           "--representative_examples=50", "--test_size=64", "--invokes=20"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.load(open(out / "export_report.json"))
    rows = {row["mode"]: row for row in report["results"]}
    assert set(rows) == {"fp32", "dynamic", "float16", "int8"}  # the default drops int16x8 and qat for text
    assert rows["fp32"]["max_abs_output_diff"] < 1e-4 and rows["fp32"]["agreement"] == 1.0
    assert rows["int8"]["tensor_dtypes"].get("int8", 0) > 0 and rows["int8"]["agreement"] >= 0.9
    # MediaPipe's TextClassifier tokenizes the raw dev sentences with the vocabulary packed in each file
    for row in rows.values():
        assert row["mediapipe"]["examples"] == 64 and row["mediapipe"]["agreement_with_keras"] >= 0.98, row["mediapipe"]
        assert set(row["mediapipe"]["categories"]) <= {"negative", "positive"}
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out / "student_int8.tflite"))
    inputs = {d["name"]: (tuple(d["shape"]), np.dtype(d["dtype"]).name) for d in interpreter.get_input_details()}
    assert sorted(inputs.values()) == [((1, 32), "int32")] * 3
    # Asked for by name, a mode text students cannot take is refused before anything is written (the CLI prints
    # such a ValueError as one line and exits 2, as for an unknown mode: tests/test_export.py).
    from export import export_student

    for mode in ("int16x8", "uint8"):
        with pytest.raises(ValueError, match=rf"\['{mode}'\] do not support text students"):
            export_student(f"{sst2_workdir}/student", [mode], output=str(tmp_path / "x"))
    assert not os.path.exists(tmp_path / "x")
    # The .keras student (a keras-hub classifier with its preprocessor) exports as the SavedModel does
    _, from_keras = export_student(f"{sst2_workdir}/student.keras", ["fp32"], test_size=16, benchmark=False,
                                   mediapipe=False)
    assert from_keras["results"][0]["agreement"] == 1.0 and from_keras["metric"] == "accuracy"
    # int4: 4-bit dense weights, 8-bit embedding tables, float activations; smaller than the CLI's dynamic file above
    _, report = export_student(f"{sst2_workdir}/student", ["int4"], test_size=64, benchmark=False)
    (int4,) = report["results"]
    assert int4["tensor_dtypes"].get("int4", 0) > 0 and int4["agreement"] >= 0.9
    assert int4["size_bytes"] < rows["dynamic"]["size_bytes"]
