"""Export from what users have: a model that never went through akd_tf.main (in memory or a .keras file), with
their own calibration and test data (arrays, tf.data, .npz), through the library call and the CLI; and every
bad combination as one line, exit 2, earlier output untouched."""

import json
import os
import subprocess
import sys
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

import akd_tf
import cli_cases
from export import ExportData, ExportOptions, export_student, runtime, user_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """A small trained Keras classifier of the user's own (8x8x3 inputs, 4 classes) and its data as .npz files."""
    d = tmp_path_factory.mktemp("user")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 8, 8, 3)).astype(np.float32)
    y = (x[:, :, :, 0].mean(axis=(1, 2)) > 0).astype(np.int64) + 2 * (x[:, :, :, 1].mean(axis=(1, 2)) > 0)
    # 48 filters: 1,296 conv weights, above the 1,024 under which dynamic-range quantization keeps floats.
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(48, 3, padding="same"), keras.layers.BatchNormalization(),
        keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)], name="users_model")
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x[:160], y[:160], epochs=20, verbose=0)
    model.save(d / "model.keras")
    np.savez(d / "calibration.npz", x=x[:64])
    np.savez(d / "test.npz", x=x[160:], y=y[160:])
    np.savez(d / "test_without_y.npz", x=x[160:])
    np.savez(d / "wrong_shape.npz", x=x[:16, :4, :4])
    np.savez(d / "labels_out_of_range.npz", x=x[:8], y=np.full(8, 9))
    np.save(d / "single_array.npy", x[:8])
    (d / "not_an_archive.npz").write_text("not numpy\n")
    lam = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Lambda(lambda t: t * 2.0), keras.layers.Flatten(),
                            keras.layers.Dense(4)])
    lam.save(d / "lambda.keras")
    return {"dir": d, "model": model, "x": x, "y": y}


def test_library_call_on_an_in_memory_model_with_arrays_and_datasets(user, tmp_path):
    """The README's call on a model that never went through the CLI: arrays, then the same examples as tf.data
    datasets (unbatched calibration, batched (x, y) test) give the same files and checks."""
    x, y, model = user["x"], user["y"], user["model"]
    keras_top1 = float(np.mean(model.predict(x[160:], verbose=0).argmax(-1) == y[160:]))
    out = tmp_path / "tflite"
    files, report = export_student(model, ["fp32", "dynamic", "int8"], output=str(out),
                                   data=ExportData(representative=x[:64], test=(x[160:], y[160:])),
                                   options=ExportOptions(invokes=10))
    assert sorted(files) == ["student_dynamic.tflite", "student_fp32.tflite", "student_int8.tflite"]
    rows = {r["mode"]: r for r in report["results"]}
    assert rows["fp32"]["max_abs_output_diff"] <= 1e-4 and rows["fp32"]["agreement"] == 1.0
    assert rows["fp32"]["keras_top1"] == pytest.approx(keras_top1) and keras_top1 > 0.6  # the model learned
    assert rows["int8"]["tensor_dtypes"]["int8"] > 0 and rows["int8"]["test_examples"] == 80
    assert report["model"] == "<in-memory model 'users_model'>" and report["dataset"] == "user data"
    # Inputs that are not pixels: the files still take them as they are (no normalisation known), carry metadata
    # with class ids for labels, and MediaPipe, which feeds 8-bit images, is not run on them.
    assert report["labels"] == ["0", "1", "2", "3"] and report["normalization"] == {"mean": [0.0], "std": [1.0],
                                                                                    "scale": 1.0}
    assert "not 8-bit pixels" in rows["fp32"]["mediapipe"]["skipped"]
    assert (out / "export_report.md").read_text().count("| int8 |") == 1
    assert report["outputs"] == "probabilities" and "one probability per class" in (out / "export_report.md").read_text()
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=files["student_fp32.tflite"])
    interpreter.allocate_tensors()
    assert interpreter.get_output_details()[0]["name"] == "probabilities"
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[160:161])
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).sum(), 1.0,
                               rtol=1e-5)
    logits_files, logits_report = export_student(model, ["fp32"], data=ExportData(test=(x[160:], y[160:])),
                                                 options=ExportOptions(benchmark=False, outputs="logits"))
    assert logits_report["outputs"] == "logits"
    assert Interpreter(model_content=logits_files["student_fp32.tflite"]).get_output_details()[0]["name"] == "logits"
    with pytest.raises(ValueError, match="outputs must be one of probabilities, logits. Received: outputs='softmax'"):
        export_student(model, ["fp32"], data=ExportData(test=(x[160:], y[160:])),
                       options=ExportOptions(outputs="softmax"))
    assert json.loads((out / "export_report.json").read_text())["results"][2]["mode"] == "int8"

    calibration = tf.data.Dataset.from_tensor_slices(x[:64])
    test = tf.data.Dataset.from_tensor_slices((x[160:], y[160:])).batch(32)
    files_ds, report_ds = export_student(model, ["fp32", "int8"], options=ExportOptions(benchmark=False),
                                         data=ExportData(representative=calibration, test=test))
    # Same calibration examples, same quantized file (up to the names of the SavedModel each was converted from)
    np.testing.assert_array_equal(*[runtime.TFLiteModel(f["student_int8.tflite"], batch_size=80).predict(x[160:])
                                    for f in (files_ds, files)])
    for a, b in zip(report_ds["results"], [rows["fp32"], rows["int8"]]):
        assert (a["top1"], a["agreement"]) == (b["top1"], b["agreement"])


def test_a_distiller_exports_its_student(user):
    model = user["model"]
    distiller = akd_tf.AnnealingKD(teacher=model, student=keras.models.clone_model(model))
    distiller.student.set_weights(model.get_weights())
    _, report = export_student(distiller, ["fp32"], data=ExportData(test=(user["x"][:20], user["y"][:20])),
                               options=ExportOptions(benchmark=False))
    assert report["results"][0]["agreement"] == 1.0 and report["model"] == "<in-memory model 'users_model'>"


@pytest.mark.parametrize("kwargs,message", [
    ({"representative": np.zeros((8, 4, 4, 3), np.float32)},
     r"representative data has examples of shape \(4, 4, 3\); the student takes \(8, 8, 3\)"),
    ({"test": np.zeros((8, 8, 8, 3), np.float32)}, r"test data has no labels: pass \(x, y\)"),
    ({"test": (np.zeros((8, 8, 8, 3)), np.zeros(7, np.int64))}, r"labels must be 8 integer class ids.*shape \(7,\)"),
    ({"test": (np.zeros((8, 8, 8, 3)), np.full(8, 0.5))}, r"integer class ids.*dtype float64"),
    ({"test": tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 3))).repeat()}, r"infinite tf.data.Dataset"),
    ({"test": tf.data.Dataset.from_tensor_slices((np.zeros((4, 8, 8, 3)), np.zeros(4), np.zeros(4)))},
     r"Received tuples of 3"),
    ({"modes": ["fp32", "int3"]}, r"unknown quantization mode\(s\) \['int3'\]"),
    ({"modes": ["uint8"]}, r"mode 'uint8' takes 8-bit pixels, and this student's test inputs are not 0-255"),
    ({"labels": ["a", "b"]}, r"labels: 2 name\(s\) for a 4-class student"),
    ({"modes": ["int8"], "representative": None}, r"names no dataset \(no akd_tf.json\) to read train examples"),
    ({"modes": ["fp32"], "test": None}, r"names no dataset \(no akd_tf.json\) to read test examples"),
    ({"modes": ["qat"]}, r"mode 'qat' rebuilds a CIFAR net .* names net None"),
])
def test_library_errors_are_one_line_and_raised_before_any_conversion(user, kwargs, message):
    arguments = {"modes": ["fp32", "int8"], "representative": user["x"][:8], "test": (user["x"][:8], user["y"][:8]),
                 **kwargs}
    modes = arguments.pop("modes")
    with pytest.raises(ValueError, match=message) as error:
        export_student(user["model"], modes, data=ExportData(**arguments), options=ExportOptions(benchmark=False))
    assert "\n" not in str(error.value)


def test_read_npz(user):
    d = user["dir"]
    x, y = user_data.read_npz(str(d / "test.npz"), "--test_data")
    assert x.shape == (80, 8, 8, 3) and y.shape == (80,)
    x, y = user_data.read_npz(str(d / "calibration.npz"), "--representative_data", labels=False)
    assert x.shape == (64, 8, 8, 3) and y is None


def _export(*args):
    return subprocess.run([sys.executable, "-m", "export.tflite", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_cli_exports_a_keras_file_with_npz_data_beside_it(cli_results, user):
    d = user["dir"]
    proc, _ = cli_results["npz_beside"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((d / "tflite" / "export_report.json").read_text())  # default output: beside the model
    assert report["model"] == str(d / "model.keras") and [r["mode"] for r in report["results"]] == ["fp32", "int8"]
    assert report["results"][0]["agreement"] == 1.0 and report["results"][0]["test_examples"] == 80


BAD = [
    ("lambda_keras", ["--model={dir}/lambda.keras", "--test_data={dir}/test.npz"],
     ["--model", "lambda.keras", "safe_mode=True", "Lambda"]),
    ("npz_without_y", ["--test_data={dir}/test_without_y.npz"],
     ["--test_data", "test_without_y.npz", "has no array y; it holds ['x']", "x (inputs) and y (integer labels)"]),
    ("calibration_wrong_shape", ["--representative_data={dir}/wrong_shape.npz", "--test_data={dir}/test.npz"],
     ["representative data has examples of shape (4, 4, 3); the student takes (8, 8, 3)"]),
    ("labels_out_of_range", ["--test_data={dir}/labels_out_of_range.npz", "--quantization=fp32"],
     ["labels must lie in [0, 4)", "to 9"]),
    ("npz_is_npy", ["--test_data={dir}/single_array.npy"], ["single_array.npy", "single array, not an .npz archive"]),
    ("npz_not_numpy", ["--test_data={dir}/not_an_archive.npz"], ["not_an_archive.npz", "is not a NumPy .npz file"]),
    ("npz_missing", ["--test_data={dir}/no_such.npz"], ["--test_data file not found", "no_such.npz"]),
    ("no_test_data", ["--quantization=fp32"], ["names no dataset", "--test_data"]),
    ("keras_not_a_model", ["--model={dir}/not_an_archive.npz"], ["--model", "expected a .keras file"]),
]


# Run as a real `python -m export.tflite` process (absl's app.run included); the others, and one export that
# succeeds, run in one interpreter through the same flags and main (tests/cli_cases.py).
IN_SUBPROCESS = "lambda_keras"


@pytest.fixture(scope="module")
def cli_results(user):
    """name: (result, output folder) for each BAD case, and for "npz_beside" (a .keras file with .npz data, the
    output left at its default, beside the model)."""
    d = user["dir"]
    argvs, targets = {}, {}
    for name, args, _ in BAD:
        argv = [a.format(dir=d) for a in args]
        if not any(a.startswith("--model") for a in argv):
            argv.insert(0, f"--model={d / 'model.keras'}")
        if not any(a.startswith("--quantization") for a in argv):
            argv.append("--quantization=fp32,int8")
        targets[name] = d / "tflite_bad" / name
        targets[name].mkdir(parents=True)
        (targets[name] / "earlier.txt").write_text("keep me")
        argvs[name] = argv + [f"--output={targets[name]}", "--invokes=5"]
    argvs["npz_beside"] = [f"--model={d / 'model.keras'}", "--quantization=fp32,int8",
                           f"--representative_data={d / 'calibration.npz'}", f"--test_data={d / 'test.npz'}",
                           "--invokes=10"]
    targets["npz_beside"] = d / "tflite"
    batch = {name: argv for name, argv in argvs.items() if name != IN_SUBPROCESS}
    results = {name: types.SimpleNamespace(**r) for name, r in
               cli_cases.run_in_subprocess("export.tflite", batch, str(d), ROOT).items()}
    results[IN_SUBPROCESS] = _export(*argvs[IN_SUBPROCESS])
    return {name: (results[name], targets[name]) for name in argvs}


@pytest.mark.parametrize("name,args,fragments", BAD, ids=[b[0] for b in BAD])
def test_cli_bad_input_is_one_line_and_leaves_earlier_output(cli_results, name, args, fragments):
    proc, target = cli_results[name]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("export.tflite: error: ")]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert os.listdir(target) == ["earlier.txt"] and (target / "earlier.txt").read_text() == "keep me"


def test_a_model_card_names_a_model_from_its_name_task_and_class_count():
    """Never `None` or a Keras auto-name: the model's own name when it has one, else the task and class count."""
    from export.library import _model_info
    from export.student import Student

    cases = [
        ({"net": "plane2", "dataset": "cifar10"}, "plane2 cifar10 classifier"),
        ({"model_name": "my_student"}, "my_student: 3-class image classifier"),
        ({"model_name": "functional_3", "dataset": None}, "3-class image classifier"),
        ({"model_name": "bert_text_classifier_1", "modality": "text", "dataset": "glue/sst2"},
         "3-class glue/sst2 text classifier"),
    ]
    for metadata, name in cases:
        described = _model_info(Student(directory="", serve=None, input_shape=(), num_classes=3, metadata=metadata))
        assert described.name == name and "None" not in described.description, described


def test_the_card_says_why_dynamic_is_as_large_as_fp32_on_a_small_model():
    from export import report

    def row(mode, size, ratio):
        return {"mode": mode, "size_bytes": size, "fp32_size_over_this": ratio, "input": {"dtype": "float32"},
                "metrics": {"top1": 0.5}, "keras_metrics": {"top1": 0.5}, "agreement": 1.0, "max_abs_output_diff": 0.0,
                "test_examples": 10}

    base = {"threads_all": 2, "model": "m", "dataset": "cifar10", "normalization": {"mean": [0.0] * 3, "std": [1.0] * 3, "scale": 1.0},
            "input_shape": [32, 32, 3]}
    small = report.markdown({**base, "results": [row("fp32", 20_000, 1.0), row("dynamic", 19_000, 1.05)]})
    assert "dynamic is about as large as fp32 (1.05× smaller): the converter quantizes only weight tensors of 1,024" \
        in small
    large = report.markdown({**base, "results": [row("fp32", 400_000, 1.0), row("dynamic", 110_000, 3.6)]})
    assert "dynamic is about as large" not in large


def test_the_former_keywords_are_refused_with_their_new_place(user):
    with pytest.raises(TypeError, match=r"export_student's test, benchmark moved into its settings objects: pass "
                                        r"data=ExportData\(test=\.\.\.\), options=ExportOptions\(benchmark=\.\.\.\)"):
        export_student(user["model"], ["fp32"], test=(user["x"][:8], user["y"][:8]), benchmark=False)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) tests"):
        export_student(user["model"], ["fp32"], tests=None)
    with pytest.raises(TypeError, match=r"`data` must be an ExportData.*Received: data=dict"):
        export_student(user["model"], ["fp32"], data={"test": None})
