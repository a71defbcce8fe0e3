"""A ``--mixed_precision=bfloat16`` run of the CLI on real CIFAR-10: killed in phase 1 it resumes from its
checkpoint, its models compute in bfloat16 with float32 logits, and its student exports (SavedModel and TFLite)
take and return float32 with no bfloat16 op left."""

import json
import os
import signal
import subprocess
import sys

import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _command(workdir):
    return [sys.executable, "-u", "-m", "akd_tf.main", "--flagfile=configs/smoke.flags", f"--workdir={workdir}",
            "--mixed_precision=bfloat16"]


@pytest.fixture(scope="module")
def bf16_workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bf16")
    marker = "AnnealingSchedule: epoch 2, phase 1, T=1"
    proc = subprocess.Popen(_command(workdir), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "".join(lines)[-3000:]
    resumed = subprocess.run(_command(workdir), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming student training at epoch 2/3" in resumed.stdout, resumed.stdout[-2000:]
    return workdir


def test_the_resumed_bfloat16_run_finishes_with_bfloat16_models(bf16_workdir):
    import keras

    metrics = json.loads((bf16_workdir / "metrics.json").read_text())
    assert json.loads((bf16_workdir / "config.json").read_text())["mixed_precision"] == "bfloat16"
    assert 0.1 < metrics["student"]["test_accuracy"] < 1 and 0.1 < metrics["teacher"]["test_accuracy"] < 1
    for name, first in (("teacher.keras", "stem_conv"), ("student.keras", "conv1")):
        model = keras.models.load_model(bf16_workdir / name)
        assert model.get_layer(first).compute_dtype == "bfloat16", name
        assert model.get_layer("logits").compute_dtype == "float32", name


def test_the_bfloat16_student_exports_as_float32(bf16_workdir, tmp_path):
    saved = tf.saved_model.load(str(bf16_workdir / "student"))
    signature = saved.signatures["serving_default"]
    assert next(iter(signature.structured_input_signature[1].values())).dtype == tf.float32
    assert next(iter(signature.structured_outputs.values())).dtype == tf.float32
    graph = signature.graph.as_graph_def()
    ops = [node for function in graph.library.function for node in function.node_def] + list(graph.node)
    assert not [n.name for n in ops if any(v.type == tf.bfloat16.as_datatype_enum for v in n.attr.values())]

    out = tmp_path / "student"
    proc = subprocess.run([sys.executable, "-m", "export.tflite", f"--model={bf16_workdir / 'student'}",
                           "--quantization=fp32,int8", "--test_size=256", "--representative_examples=64", "--invokes=5",
                           f"--output={out}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["mode"]: r for r in json.loads((out / "export_report.json").read_text())["results"]}
    assert rows["int8"]["agreement"] > 0.8
    # The .keras file converts too (in this process: the library call the CLI makes, one TensorFlow start less).
    from export import ExportData, ExportOptions, export_student

    _, report = export_student(str(bf16_workdir / "student.keras"), ["fp32"], data=ExportData(test_size=256),
                               options=ExportOptions(invokes=5))
    rows.update({f"keras_{r['mode']}": r for r in report["results"]})
    for key in ("fp32", "keras_fp32"):
        assert rows[key]["max_abs_output_diff"] <= 1e-4 and rows[key]["agreement"] == 1.0, key
        assert rows[key]["top1"] == rows[key]["keras_top1"] > 0.1, key
