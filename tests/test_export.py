"""Export: every quantization mode on a tiny model, the checks, QAT, the CLI on the smoke student, errors."""

import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from export import convert, runtime
from export import student as student_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny CIFAR-shaped Keras model exported as a SavedModel, with calibration and probe images."""
    keras.utils.set_random_seed(0)
    # 48 filters: 1,296 conv weights, above the 1,024 under which dynamic-range quantization keeps floats.
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(48, 3, padding="same"), keras.layers.BatchNormalization(),
        keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
    rng = np.random.default_rng(0)
    images = rng.normal(size=(64, 8, 8, 3)).astype("float32")
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, rng.integers(0, 4, 64), epochs=1, verbose=0)
    directory = str(tmp_path_factory.mktemp("tiny") / "student")
    model.export(directory, verbose=False)
    return directory, images, model.predict(images, verbose=0)


@pytest.mark.parametrize("mode", convert.MODES)
def test_every_mode_converts_and_runs(tiny, mode):
    directory, images, reference = tiny
    model = convert.convert(directory, mode, representative_images=images[:32])
    logits = runtime.TFLiteModel(model, batch_size=16).predict(images)
    assert logits.shape == reference.shape
    error = np.abs(logits - reference).max()
    if mode == "fp32":
        assert error <= 1e-4
    else:  # quantized: close to the float logits relative to their spread
        assert error < reference.std(), (error, reference.std())
    dtypes = convert.tensor_dtypes(model)
    expected = {"fp32": "float32", "dynamic": "int8", "float16": "float16", "int8": "int8", "int16x8": "int16",
                "uint8": "uint8", "int4": "int4"}
    assert dtypes.get(expected[mode], 0) > 0, dtypes
    if mode == "int4":  # 4-bit weights: an eighth of fp32's weights, plus the graph that 1,500 weights do not hide
        assert len(model) < 0.6 * len(convert.convert(directory, "fp32"))


def test_int8_file_holds_int8_tensors_and_optional_int8_io(tiny):
    directory, images, reference = tiny
    float_io = convert.convert(directory, "int8", representative_images=images)
    int8_io = convert.convert(directory, "int8", representative_images=images, int8_io=True)
    for model, io in ((float_io, np.float32), (int8_io, np.int8)):
        dtypes = convert.tensor_dtypes(model)
        assert dtypes["int8"] > dtypes.get("float32", 0)
        assert runtime.TFLiteModel(model).input_dtype == io
    # The int8-io model, fed quantized inputs through the same helper, agrees with the float-io one.
    a = runtime.TFLiteModel(float_io, batch_size=8).predict(images)
    b = runtime.TFLiteModel(int8_io, batch_size=8).predict(images)
    assert np.mean(a.argmax(-1) == b.argmax(-1)) >= 0.9


def test_calibration_raises_no_interpreter_deprecation_warning(tmp_path):
    # Calibrating on named inputs (a text student's token features), TF's calibrator builds a tf.lite.Interpreter,
    # which warns that it is deprecated: not for our users to see, since they cannot act on it.
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,), dtype="int32", name="token_ids"), keras.layers.Embedding(50, 8),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)])
    model.export(str(tmp_path / "text"), verbose=False)
    tokens = {"token_ids": np.random.default_rng(0).integers(0, 50, (8, 6))}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert.convert(str(tmp_path / "text"), "int8", representative_images=tokens)
        warnings.warn("a later warning still shows", UserWarning)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "tf.lite.Interpreter is deprecated" in m], messages
    assert "a later warning still shows" in messages


def test_convert_errors(tiny):
    directory, _, _ = tiny
    with pytest.raises(ValueError, match="Unknown quantization mode 'int3'. Allowed: fp32"):
        convert.convert(directory, "int3")
    with pytest.raises(ValueError, match="needs representative images"):
        convert.convert(directory, "int8")


def test_latency_reports_percentiles(tiny):
    directory, images, _ = tiny
    result = runtime.latency(convert.convert(directory, "fp32"), images, num_threads=1, invokes=50, warmup=5)
    assert result["invokes"] == 50 and 0 < result["min_us"] <= result["median_us"] <= result["p90_us"] <= result["p99_us"]


def test_student_loading_errors(tmp_path, tiny):
    # In the library's terms (the CLI says --model, --dataset, ...: ERRORS below and tests/test_export_user.py)
    with pytest.raises(FileNotFoundError, match="^model path does not exist. Received: '/no/such'"):
        student_lib.load("/no/such")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a SavedModel"):
        student_lib.load(str(tmp_path / "empty"))
    bare = student_lib.load(tiny[0])  # no akd_tf.json: loads, but has no dataset to read examples from
    with pytest.raises(ValueError, match=r"names no dataset \(no akd_tf.json\) to read test examples from: pass "
                                         r"ExportData\(dataset=...\) .*\(ExportData\(representative=..., "
                                         r"test=...\)\)"):
        student_lib.examples(bare, "test", 10)
    flat = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    flat.export(str(tmp_path / "flat"), verbose=False)
    with pytest.raises(ValueError, match="unexpected signature.*Received inputs"):
        student_lib.load(str(tmp_path / "flat"), dataset="cifar10")


def test_calibration_examples_of_own_images_span_every_class():
    labels = np.repeat([0, 1, 2], [270, 270, 269])  # a folder's training split: class after class
    chosen = student_lib.spread(len(labels), 300, seed=20)
    assert len(chosen) == 300 and np.all(np.diff(chosen) > 0)  # distinct, in the split's order
    assert min(np.bincount(labels[chosen], minlength=3)) > 70  # the first 300 hold no ship
    assert np.array_equal(chosen, student_lib.spread(len(labels), 300, seed=20))
    assert np.array_equal(student_lib.spread(5, None, 0), np.arange(5))
    assert np.array_equal(student_lib.spread(5, 9, 0), np.arange(5))


def test_a_bare_keras_file_named_after_an_akd_tf_net_names_that_net(tmp_path):
    # The qat mode rebuilds the student by its net's name; a .keras without akd_tf.json has only the model's name.
    from akd_tf import nets

    nets.build("plane2", input_shape=(8, 8, 3)).save(tmp_path / "plane2.keras")
    keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(10)], name="mine").save(
        tmp_path / "mine.keras")
    assert student_lib.load(str(tmp_path / "plane2.keras")).metadata["net"] == "plane2"
    assert "net" not in student_lib.load(str(tmp_path / "mine.keras")).metadata


def _export(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "export.tflite", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_cli_on_the_smoke_student(smoke_workdir, tmp_path):
    out = tmp_path / "tflite"
    proc = _export(f"--model={smoke_workdir}/student", "--quantization=fp32,dynamic,int8,uint8,qat", "--test_size=1000",
                   "--representative_examples=64", "--invokes=20", "--qat_train_size=256", "--qat_epochs=1",
                   f"--output={out}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    for name in ("student_fp32.tflite", "student_dynamic.tflite", "student_int8.tflite", "student_uint8.tflite",
                 "student_qat.tflite", "export_report.json", "export_report.md", "export_report.png"):
        assert (out / name).exists(), name
    report = json.loads((out / "export_report.json").read_text())
    rows = {r["mode"]: r for r in report["results"]}
    assert rows["fp32"]["max_abs_output_diff"] <= 1e-4 and rows["fp32"]["agreement"] == 1.0
    assert rows["int8"]["tensor_dtypes"]["int8"] > 0 and rows["qat"]["tensor_dtypes"]["int8"] > 0
    assert rows["int8"]["fp32_size_over_this"] > 2.5
    assert rows["qat"]["qat"]["copy_max_abs_logit_diff"] < 1e-3
    # uint8: camera pixels in (scale 1, zero point 0), as an app passes them
    assert rows["uint8"]["input"]["dtype"] == "uint8"
    assert rows["uint8"]["input"]["quantization"] == {"scale": 1.0, "zero_point": 0}
    assert rows["uint8"]["agreement"] >= 0.9
    for row in rows.values():
        assert row["test_examples"] == 1000 and row["latency_1_threads"]["invokes"] == 20
        # MediaPipe's ImageClassifier loads every file as it is and names the classes by their labels
        mediapipe = row["mediapipe"]
        assert mediapipe["examples"] == 1000 and mediapipe["agreement_with_litert"] >= 0.999, (row["mode"], mediapipe)
        assert set(mediapipe["categories"]) <= set(CIFAR10) and len(mediapipe["categories"]) >= 2
        assert abs(mediapipe["top1"] - row["top1"]) <= 0.001
    assert report["labels"] == CIFAR10 and report["normalization"]["mean"] == [0.507, 0.487, 0.441]
    card = (out / "export_report.md").read_text()
    assert "| uint8 |" in card and "MediaPipe top-1" in card and "0 airplane, 1 automobile" in card
    from export import metadata

    described = metadata.read((out / "student_uint8.tflite").read_bytes())
    assert described["associated_files"]["labels.txt"].split() == CIFAR10
    assert described["name"] == "plane2 cifar10 classifier" and described["license"] == "Apache-2.0"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no staging directory left behind


ERRORS = {  # name: (arguments, the message)
    "missing_model": (["--model=/no/such/student"], "--model path does not exist. Received: '/no/such/student'"),
    "unknown_mode": (["--quantization=fp32,int3"], "unknown quantization mode(s) ['int3']. Allowed: fp32, dynamic"),
    "labels_count": (["--labels={root}/three_labels.txt"], "has 3 line(s); the student has 10 classes"),
    "cifar100": (["--dataset=cifar100"], "TFDS dataset 'cifar100' is not prepared under"),
    "text_dataset": (["--dataset=glue/sst2"], "export.tflite: error: --dataset 'glue/sst2' is text and "),
}


@pytest.fixture(scope="module")
def cli_results(smoke_workdir, tmp_path_factory):
    """The error cases through the CLI's flags and main, all in one interpreter (tests/cli_cases.py), with one
    export that succeeds ("run_keras_file"): one TensorFlow start instead of four. Each error case writes into a
    folder that already holds an earlier file."""
    import cli_cases

    root = tmp_path_factory.mktemp("export_cli")
    (root / "three_labels.txt").write_text("cat\ndog\nbird\n")
    cases = {}
    for name, (args, _) in ERRORS.items():
        (root / name).mkdir()
        (root / name / "earlier.txt").write_text("keep me")
        model = [] if any(a.startswith("--model") for a in args) else [f"--model={smoke_workdir}/student"]
        cases[name] = [*model, *[a.format(root=root) for a in args], f"--output={root / name}"]
    cases["run_keras_file"] = [f"--model={smoke_workdir}/student.keras", "--quantization=fp32", "--test_size=200",
                               "--nobenchmark", f"--output={root / 'run_keras_file'}"]
    return root, cli_cases.run_in_subprocess("export.tflite", cases, str(root), ROOT, timeout=300)


@pytest.mark.parametrize("name", list(ERRORS))
def test_cli_errors_leave_earlier_output_untouched(cli_results, name):
    root, results = cli_results
    result, message = results[name], ERRORS[name][1]
    assert result["returncode"] != 0
    assert message in result["stderr"] and "Traceback" not in result["stderr"], result["stderr"][-3000:]
    assert (root / name / "earlier.txt").read_text() == "keep me" and os.listdir(root / name) == ["earlier.txt"]


def test_cli_exports_the_student_keras_file_of_a_run_with_its_dataset(cli_results, smoke_workdir):
    """<workdir>/student.keras finds <workdir>/student/akd_tf.json: dataset and normalisation as for student/."""
    root, results = cli_results
    assert results["run_keras_file"]["returncode"] == 0, results["run_keras_file"]["stderr"][-3000:]
    row = json.loads((root / "run_keras_file" / "export_report.json").read_text())["results"][0]
    with open(os.path.join(smoke_workdir, "metrics.json")) as f:
        student_top1 = json.load(f)["student"]["test_accuracy"]
    # The smoke run tests on the first 512 images; this checks on the first 200 of the same split.
    assert row["test_examples"] == 200 and row["agreement"] == 1.0 and abs(row["keras_top1"] - student_top1) < 0.1
