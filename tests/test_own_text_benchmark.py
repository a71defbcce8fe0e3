"""benchmarks.own_text: its table from a result, golden (the pipeline it runs is tests/test_own_text.py's)."""

from benchmarks import own_text

RESULT = {
    "command": "python -m benchmarks.own_text --rows=100", "steps": {"file": "python examples/own_text.py ..."},
    "resumed": "python -m akd_tf.main ... --workdir=w/killed_run", "resume_seconds": 50.0, "resumed_weights_equal": True,
    "machine": {"cpu": "CPU", "cpu_units": ["avx2"], "cores": 2, "tensorflow": "2.21.0", "date": "2026-12-08"},
    "num_examples": {"train": 80, "validation": 10, "test": 10}, "labels": ["negative", "positive"],
    "teacher": {"params": 22713986, "dev": {"test": {"accuracy": 0.9}}},
    "student": {"params": 17391746, "dev": {"test": {"accuracy": 0.8}}},
    "finetuned": {"params": 17391746, "dev": {"test": {"accuracy": 0.7}}}, "method": "akd",
    "seconds": {"file": 3.0, "teacher and student": 57.0}, "total_seconds": 60.0,
    "export": [{"mode": "dynamic", "size_bytes": 1000, "metrics": {"accuracy": 0.8}, "agreement": 1.0,
                "mediapipe": {"categories": ["negative", "positive"], "agreement_with_keras": 0.9}}],
}


def test_the_table_names_every_figure_beside_its_command_and_machine():
    table = own_text._table(RESULT)
    assert table.startswith("Your own sentences, from a CSV file to MediaPipe-ready files: 100 rows labelled "
                            "negative, positive (train 80, validation 10, test 10)")
    for row in ("| teacher and student | 57 |", "| **all** | **60** (1.0 min) |",
                "| teacher (all-MiniLM-L6-v2, fine-tuned) | 22,713,986 | 90.0 |",
                "| student, akd | 17,391,746 | 80.0 |", "| the same student fine-tuned on the labels | 17,391,746 | 70.0 |",
                "| dynamic | 1,000 | 80.0 | 100.0 | negative, positive | 90.0 |"):
        assert row in table.splitlines(), row
    assert "weights equal the uninterrupted run's" in table and "One test sentence is 10.0 points" in table
    assert "Machine: CPU (avx2), 2 cores, TensorFlow 2.21.0, 2026-12-08" in table
    assert table.endswith("killed and resumed: `python -m akd_tf.main ... --workdir=w/killed_run`")
