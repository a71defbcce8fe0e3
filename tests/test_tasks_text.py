"""akd_tf.tasks.text, the text task through the pipeline: cached teacher logits = the teacher every step, AKD's
phase 2 on a regression task, presets that cannot download, a GLUE run end to end on mock data and through the
CLI, and the text student's TFLite export."""

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
from test_glue import _tiny_models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--teacher_net=bert_l1_h64", "--student_net=bert_l1_h64", "--teacher_vocabulary_size=600",
        "--student_vocabulary_size=400", "--sequence_length=32", "--batch_size=32", "--teacher_epochs=1",
        "--max_temperature=2", "--phase1_epochs=2", "--phase2_epochs=1", "--optimizer=adamw",
        "--learning_rate=0.001", "--weight_decay=0", "--clipnorm=1.0", "--lr_schedule=linear", "--verbose=0"]



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
    model = AnnealingKD(teacher=teacher, student=student, max_temperature=1)  # one output: regression
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
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        student = model_files.load_model(os.path.join(sst2_workdir, "student.keras"), "student")
    # The file holds no optimizer state; keras-hub's task compiles itself on load: no false alarm about it.
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
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
    from export import ExportData, ExportOptions, export_student

    for mode in ("int16x8", "uint8"):
        with pytest.raises(ValueError, match=rf"\['{mode}'\] do not support text students"):
            export_student(f"{sst2_workdir}/student", [mode], output=str(tmp_path / "x"))
    assert not os.path.exists(tmp_path / "x")
    # The .keras student (a keras-hub classifier with its preprocessor) exports as the SavedModel does
    _, from_keras = export_student(f"{sst2_workdir}/student.keras", ["fp32"], data=ExportData(test_size=16),
                                   options=ExportOptions(benchmark=False, mediapipe=False))
    assert from_keras["results"][0]["agreement"] == 1.0 and from_keras["metric"] == "accuracy"
    # int4: 4-bit dense weights, 8-bit embedding tables, float activations; smaller than the CLI's dynamic file above
    _, report = export_student(f"{sst2_workdir}/student", ["int4"], data=ExportData(test_size=64),
                               options=ExportOptions(benchmark=False))
    (int4,) = report["results"]
    assert int4["tensor_dtypes"].get("int4", 0) > 0 and int4["agreement"] >= 0.9
    assert int4["size_bytes"] < rows["dynamic"]["size_bytes"]
