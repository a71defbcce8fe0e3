"""benchmarks.speed: the interleaved timer and this project's four timed steps, on real CIFAR-10 images."""

import numpy as np

from akd_tf import data
from benchmarks import speed


def test_interleaved_drops_the_warm_up_round_and_keeps_the_order_within_rounds():
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in ("a", "b")}
    seconds = speed.interleaved(steps, repeats=3, images=64)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed ones
    assert {k: len(v) for k, v in seconds.items()} == {"a": 3, "b": 3}


def test_project_steps_each_run_one_epoch():
    splits = data.load("cifar10", batch_size=32, validation_size=0, train_size=64, test_size=32)
    steps, teacher = speed.project_steps(splits, "resnet8", "plane2")
    assert list(steps) == ["student_train", "teacher_inference", "akd_phase1", "akd_phase1_views"]
    assert steps["teacher_inference"]().shape == (64, 10)
    for name in ("student_train", "akd_phase1", "akd_phase1_views"):
        history = steps[name]().history
        assert all(len(v) == 1 and np.isfinite(v[0]) for v in history.values()), (name, history)
    assert not teacher.trainable  # phase 1 froze it: only the students' weights move


def test_write_adds_the_machine_and_the_command(tmp_path, capsys):
    import json

    machine = {"cpu": "AMD EPYC", "cpu_units": ["avx2", "avx512f"], "cores": 2, "tensorflow": "2.21.0",
               "keras": "3.15.1", "date": "2026-12-03"}
    report = {"command": "python -m benchmarks.throughput --images=8", "machine": machine, "x": [1.5]}
    speed.write(str(tmp_path / "out" / "t"), report, ["| a |", "|---|"], extra=", PyTorch 2.13")
    assert json.loads((tmp_path / "out" / "t.json").read_text()) == report
    assert (tmp_path / "out" / "t.md").read_text() == (
        "| a |\n|---|\n\nMachine: AMD EPYC (avx2, avx512f), 2 cores, TensorFlow 2.21.0, Keras 3.15.1, PyTorch 2.13, "
        "2026-12-03.\n\nCommand: `python -m benchmarks.throughput --images=8`\n")
    assert "Machine: AMD EPYC" in capsys.readouterr().out


def test_the_host_reference_does_its_fixed_work_without_tensorflow(monkeypatch):
    import numpy as np

    calls = []
    real = np.matmul
    monkeypatch.setattr(np, "matmul", lambda a, b, out: calls.append(a.shape) or real(a, b, out=out))
    speed.host_reference()()
    assert calls == [(1024, 1024)] * speed.REFERENCE_MATMULS


def test_steadiness_is_the_fastest_round_over_the_median_round():
    assert speed.steadiness([2.0, 2.0, 2.0]) == 1.0
    assert speed.steadiness([1.0, 1.25, 2.0, 1.1, 1.3]) == 0.8
    line = speed.reference_line([1.0, 1.25, 2.0, 1.1, 1.3])
    assert line.endswith("epoch seconds 1.00, 1.25, 2.00, 1.10, 1.30; median / fastest 0.80.")


def test_progress_shows_the_host_reference_in_seconds_and_steps_in_images_per_second():
    assert speed._progress(speed.REFERENCE, 0.987, 2048) == "host reference 0.99 s"
    assert speed._progress("(a) resnet8 training", 4.0, 2048) == "(a) resnet8 training 512 img/s"
