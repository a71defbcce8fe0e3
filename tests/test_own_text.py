"""Your own text (``--dataset=csv:FILE``): the file's checks, its classes and splits, and one run from the file to
a MediaPipe TextClassifier that names its classes."""

import json
import os

import numpy as np
import pytest

from akd_tf.data import own_text

WORDS = {"bad": ["awful", "dull", "boring", "terrible", "lifeless"], "good": ["great", "lovely", "witty", "superb"],
         "meh": ["average", "fine", "ordinary", "so-so"]}


def _write(path, header, rows, encoding="utf-8"):
    with open(path, "w", encoding=encoding, newline="") as f:
        f.write(header + "\n" + "".join(row + "\n" for row in rows))
    return f"{own_text.CSV}{path}"


def _sentences(n, seed=0):
    """``n`` rows of three classes: a sentence whose adjectives name its class."""
    rng = np.random.default_rng(seed)
    names = sorted(WORDS)
    rows = []
    for i in range(n):
        label = names[i % 3]
        words = rng.choice(WORDS[label], 2)
        rows.append((f"the film was {words[0]} and {words[1]} , really", label))
    return rows


def test_classes_are_sorted_names_numeric_when_integers_and_splits_are_stratified(tmp_path):
    name = _write(tmp_path / "a.csv", "text,label", [f'"{t}",{y}' for t, y in _sentences(90)])
    splits, names, fields = own_text.read(name, seed=3)
    assert names == ["bad", "good", "meh"] and fields == ("text",)
    # A tenth of the rows held out for test (9), then a tenth of the other 81 for validation (8), by class
    assert {s: len(y) for s, (_, y) in splits.items()} == {"train": 73, "test": 9, "validation": 8}
    assert [int(c) for c in np.bincount(splits["test"][1])] == [3, 3, 3]
    assert splits["train"][0][0][0].startswith("the film was")
    numbers = _write(tmp_path / "n.tsv", "label\ttext", [f"{y}\tsentence {i}" for i, y in enumerate([10, 2, 1] * 8)])
    assert own_text.label_names(numbers) == ["1", "2", "10"]  # numeric order, not "1", "10", "2"
    again, _, _ = own_text.read(name, seed=3)
    np.testing.assert_array_equal(again["test"][1], splits["test"][1])  # seeded: the export draws the same rows


def test_a_split_column_and_sentence_pairs_and_a_byte_order_mark(tmp_path):
    rows = [f"{s},first {i},second {i},{'ab'[i % 2]}" for i, s in enumerate(["train"] * 20 + ["test"] * 6)]
    name = _write(tmp_path / "p.csv", "split,text,text_b,label", rows, encoding="utf-8-sig")
    splits, names, fields = own_text.read(name, validation_size=4)
    assert fields == ("text", "text_b") and names == ["a", "b"]
    assert {s: len(y) for s, (_, y) in splits.items()} == {"train": 16, "validation": 4, "test": 6}
    assert list(splits["test"][0][1][:2]) == ["second 20", "second 21"]


@pytest.mark.parametrize("header, rows, encoding, says", [
    ("sentence,label", ["hi,a", "ho,b"], "utf-8", r"has no column 'text': its header reads \['sentence', 'label'\]"),
    ("text,label", ["one,a", "two,a"], "utf-8", "every row has the label 'a'; a classifier needs at least two"),
    ("text,label", ["one,a", "two,"], "utf-8", "line 3: no 'label'"),
    ("text,label", ["caf\u00e9,a", "two,b"], "latin-1", r"is not UTF-8 text \(byte 14: invalid continuation byte\); save it as UTF-8"),
    ("text,label,split", ["one,a,train", "two,b,dev"], "utf-8", "line 3: split 'dev'; allowed: train, validation"),
    ("text,label,split", ["one,a,train", "two,b,train"], "utf-8", "names no test rows"),
    ("text,label", [], "utf-8", "has a header and no rows"),
    ("text,label", ["one, two,a", "three,b"], "utf-8", "line 2 has more fields than the header; quote a text that "
                                                       "holds a comma"),
])
def test_a_bad_file_is_one_line_naming_it(tmp_path, header, rows, encoding, says):
    name = _write(tmp_path / "bad.csv", header, rows, encoding=encoding)
    with pytest.raises(ValueError, match=says) as error:
        own_text.read(name)
    assert str(error.value).startswith(f"`dataset` {name}") and "\n" not in str(error.value)


def test_a_missing_file_says_what_the_file_needs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file. Expected a CSV"):
        own_text.label_names(f"csv:{tmp_path}/none.csv")


def test_the_command_line_refuses_a_bad_file_before_anything_is_written(tmp_path):
    import cli_cases

    name = _write(tmp_path / "bad.csv", "sentence,label", ["hi,a", "ho,b"])
    workdir = tmp_path / "run"
    result = cli_cases.run_in_subprocess("akd_tf.main", {"bad": [
        f"--dataset={name}", f"--workdir={workdir}", "--teacher_net=bert_l1_h64", "--student_net=bert_l1_h64",
        "--optimizer=adamw"]}, str(tmp_path), os.path.dirname(os.path.dirname(__file__)))["bad"]
    assert result["returncode"] == 2
    assert result["stderr"].strip().splitlines()[-1].startswith(f"akd_tf.main: error: --dataset {name} has no column")
    assert not workdir.exists() or not os.listdir(workdir)


def test_a_file_of_sentences_runs_to_a_mediapipe_text_classifier_that_names_its_classes(tmp_path):
    """The pipeline of GLUE on one's own CSV: teacher, Annealing-KD student, metrics with the file's class names,
    and the exported file, whose metadata MediaPipe's TextClassifier reads, scored on the run's own test rows."""
    from akd_tf import train
    from akd_tf.config import Config
    from export import ExportOptions, export_student

    name = _write(tmp_path / "reviews.csv", "text,label", [f'"{t}",{y}' for t, y in _sentences(480)])
    workdir = str(tmp_path / "run")
    config = Config(dataset=name, batch_size=16, teacher_net="bert_l1_h64", student_net="bert_l1_h64",
                    teacher_vocabulary_size=200, student_vocabulary_size=200, sequence_length=16, teacher_epochs=4,
                    max_temperature=2, phase1_epochs=3, phase2_epochs=2, optimizer="adamw", learning_rate=5e-3,
                    teacher_learning_rate=1e-2, weight_decay=0.0, lr_schedule="linear", verbose=0)
    metrics = train.train_and_evaluate(config, workdir)
    assert metrics["labels"] == ["bad", "good", "meh"] and metrics["report_splits"] == ["test"]
    assert metrics["num_examples"] == {"train": 389, "validation": 43, "test": 48}
    assert metrics["student"]["dev"]["test"]["accuracy"] > 0.9  # the adjectives name the class
    assert metrics["majority_class"]["accuracy"] == pytest.approx(1 / 3)
    with open(os.path.join(workdir, "student", "akd_tf.json")) as f:
        assert json.load(f)["labels"] == ["bad", "good", "meh"]
    _, report = export_student(os.path.join(workdir, "student"), modes=["fp32"], output=str(tmp_path / "export"),
                               options=ExportOptions(benchmark=False))
    mediapipe = report["results"][0]["mediapipe"]
    assert mediapipe["categories"] == ["bad", "good", "meh"] and mediapipe["examples"] == 48
    assert mediapipe["agreement_with_keras"] == 1.0
    low, high = mediapipe["top_score_range"]  # probabilities, which an app can threshold
    assert report["outputs"] == "probabilities" and 1 / 3 <= low <= high <= 1.0
