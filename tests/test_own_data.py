"""benchmarks.own_data: its table from a result, golden (the run itself is tests/test_own_data_run.py's)."""

from benchmarks import own_data

RESULT = {
    "command": "python -m benchmarks.own_data --per_class=10", "steps": {"student": "python -m akd_tf.main ..."},
    "machine": {"cpu": "CPU", "cpu_units": ["avx2"], "cores": 2, "tensorflow": "2.21.0", "date": "2026-12-07"},
    "num_examples": {"train": 24, "validation": 3, "test": 3}, "labels": ["airplane", "cat", "ship"],
    "teacher_top1": 2 / 3, "student_top1": 1.0, "scratch_top1": 1 / 3, "method": "akd",
    "student_net": "mobilenet_v3_small", "student_params": 1533043, "seconds": {"student": 60.0, "export": 30.0},
    "total_seconds": 90.0, "uint8": {"size_bytes": 1000, "top1": 1.0, "keras_top1": 1.0, "agreement": 1.0},
    "fp32_bytes": 3350, "mediapipe_uint8": {"agreement_with_litert": 1.0},
}


def test_the_table_names_every_figure_beside_its_command_and_machine():
    table = own_data._table(RESULT)
    assert table.startswith("Your own images, from a folder to MediaPipe-ready files: 30 photos of airplane, cat, "
                            "ship at 64×64 (train 24, validation 3, test 3)")
    for row in ("| student | 60 |", "| **all** | **90** (1.5 min) |", "| teacher (the user's own file) | 66.7 |",
                "| student, akd | 100.0 |", "| the same student from scratch | 33.3 |",
                "| student, uint8 TFLite | 100.0 (agreement with the float student 100.0 %; MediaPipe = LiteRT on 100.0 %) |"):
        assert row in table.splitlines(), row
    assert "3.35× smaller than fp32" in table and "One test photo is 33.3 points" in table
    assert "Machine: CPU (avx2), 2 cores, TensorFlow 2.21.0, 2026-12-07" in table
    assert "`python -m benchmarks.own_data --per_class=10`" in table
