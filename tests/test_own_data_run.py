"""Your own images through the whole pipeline, as a user runs it: a folder of real photos in 3 classes (CIFAR-10
test images upscaled to 64×64), a small teacher of the user's own (a .keras file that takes pixels 0-255), the
own-images recipe's MobileNetV3-Small (minimalistic) student by Annealing-KD from the command line, killed at the phase boundary and resumed to the
uninterrupted run's weights under --deterministic, then the uint8 export that MediaPipe's ImageClassifier runs,
naming the folder's classes."""

import json
import os
import signal
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import own_images  # noqa: E402  (examples/own_images.py)


def test_a_folder_and_a_teacher_of_ones_own_go_from_the_command_line_to_mediapipe(tmp_path):
    folder = own_images.make_folder(str(tmp_path / "photos"), per_class=40)
    teacher = own_images.train_teacher(str(tmp_path / "my_teacher.keras"), per_class=100, epochs=2)
    workdir = tmp_path / "run"
    def command(workdir):
        return [sys.executable, "-m", "akd_tf.main", f"--dataset=folder:{folder}", f"--teacher={teacher}",
                "--student_net=mobilenet_v3_small_minimalistic", "--method=akd", f"--workdir={workdir}", "--phase1_epochs=2",
                "--phase2_epochs=1", "--max_temperature=2", "--batch_size=32", "--learning_rate=0.05", "--verbose=2",
                "--deterministic"]

    proc = subprocess.run(command(workdir), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    # The same command in another workdir, killed (SIGKILL) when phase 2 starts, then run again: it resumes.
    _run_until(command(tmp_path / "killed"), "Phase 2 (hard labels)")
    resumed = subprocess.run(command(tmp_path / "killed"), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming student training at epoch 3/3" in resumed.stdout
    import keras

    uninterrupted = keras.models.load_model(workdir / "student.keras").get_weights()
    for a, b in zip(uninterrupted, keras.models.load_model(tmp_path / "killed" / "student.keras").get_weights()):
        np.testing.assert_array_equal(a, b)
    assert "Reading 40 images of class 'cat'" in proc.stdout
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["labels"] == ["airplane", "cat", "ship"]
    # 120 images: 12 held out for test, then 11 of the other 108 for validation, each class in proportion.
    assert metrics["num_examples"] == {"train": 97, "validation": 11, "test": 12}
    assert 0 <= metrics["student"]["test_accuracy"] <= 1 and metrics["teacher"]["source"] == teacher
    note = json.loads((workdir / "student" / "akd_tf.json").read_text())
    assert note["labels"] == ["airplane", "cat", "ship"] and note["input_shape"] == [64, 64, 3]
    assert note["preprocessing"]["scale"] == 1.0  # pixels as they are: the student carries its preprocessing

    from export import ExportOptions, export_student

    _, report = export_student(str(workdir / "student"), ["uint8"], options=ExportOptions(benchmark=False),
                               output=str(tmp_path / "tflite"))
    (row,) = report["results"]
    assert report["labels"] == ["airplane", "cat", "ship"] and row["test_examples"] == 12
    # The class names MediaPipe answered with, read from the file's metadata: the folder's.
    assert row["mediapipe"]["categories"] and set(row["mediapipe"]["categories"]) <= {"airplane", "cat", "ship"}
    # MediaPipe runs the very file the LiteRT check ran. (How often uint8 keeps the float student's top class is
    # measured, not asserted: a student of 3 epochs on 97 photos has logits too close together for it to mean much;
    # benchmarks/results/own_data.md has it for 999 photos.)
    assert row["mediapipe"]["agreement_with_litert"] == 1.0 and 0.0 <= row["agreement"] <= 1.0
    assert np.isfinite(row["max_abs_output_diff"])
    # An app's scores: the files end in softmax, so MediaPipe's top score is a probability.
    low, high = row["mediapipe"]["top_score_range"]
    assert report["outputs"] == "probabilities" and 1 / 3 <= low <= high <= 1.0


def _run_until(command, marker, timeout=600):
    """Starts ``command`` and kills it (SIGKILL) right after it prints ``marker``."""
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = False
    try:
        for line in proc.stdout:
            if marker in line:
                seen = True
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=timeout)
    assert seen and proc.returncode == -signal.SIGKILL, f"the run ended without printing {marker!r}"
