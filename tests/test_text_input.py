"""Text exports from the Keras API: a keras-hub classifier with its preprocessor, raw strings for data; the
tokenizer and labels inside the file; MediaPipe's TextClassifier as the client; regression (STS-B-like) students
checked by Pearson; pair tasks and bad text data."""

import keras
import keras_hub
import numpy as np
import pytest

from export import ExportData, ExportOptions, export_student, metadata, text_input

NO_TIMING = ExportOptions(benchmark=False)  # the checks, not the speed

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "movie", "film", "plot", "the", "a", "very", "not"]
VOCABULARY = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", *WORDS]


def _sentences(rng, count):
    good, bad = WORDS[:3], WORDS[3:6]
    labels = rng.integers(0, 2, count)
    texts = np.array([" ".join([*rng.choice(WORDS[6:], 3), rng.choice(good if y else bad), *rng.choice(WORDS[6:], 2)])
                      for y in labels], dtype=object)
    return texts, labels


def _classifier(num_classes, seed=0):
    keras.utils.set_random_seed(seed)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.tokenizers.BertTokenizer(vocabulary=VOCABULARY, lowercase=True), sequence_length=12)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(VOCABULARY), num_layers=1, num_heads=2, hidden_dim=16,
                                             intermediate_dim=32, max_sequence_length=12)
    return keras_hub.models.BertTextClassifier(backbone, num_classes=num_classes, preprocessor=preprocessor,
                                               activation=None)


@pytest.fixture(scope="module")
def sentiment():
    rng = np.random.default_rng(0)
    texts, labels = _sentences(rng, 400)
    model = _classifier(2)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(texts[:300], labels[:300], epochs=4, batch_size=32, verbose=0)
    return model, texts, labels


def test_a_keras_hub_classifier_exports_with_its_tokenizer_and_mediapipe_reads_it(sentiment, tmp_path):
    model, texts, labels = sentiment
    files, report = export_student(model, ["fp32", "int4"], output=str(tmp_path / "out"), options=NO_TIMING,
                                   data=ExportData(representative=texts[:50], test=(texts[300:], labels[300:]),
                                                   labels=["negative", "positive"]))
    rows = {row["mode"]: row for row in report["results"]}
    assert rows["fp32"]["agreement"] == 1.0 and rows["fp32"]["metrics"]["accuracy"] > 0.9  # it learnt the words
    assert rows["int4"]["tensor_dtypes"].get("int4", 0) > 0
    for row in rows.values():  # MediaPipe tokenizes the raw sentences with the vocabulary inside the file
        mediapipe = row["mediapipe"]
        assert mediapipe["examples"] == 100 and mediapipe["agreement_with_keras"] >= 0.98, mediapipe
        assert set(mediapipe["categories"]) <= {"negative", "positive"}
    assert report["metric"] == "accuracy" and report["model"] == f"<in-memory model {model.name!r}>"
    # The file: inputs and output by name, vocabulary and labels packed, the model's general information
    described = metadata.read(files["student_fp32.tflite"])
    assert described["associated_files"]["vocabulary.txt"].split() == VOCABULARY
    assert described["associated_files"]["labels.txt"].split() == ["negative", "positive"]
    assert {t["name"] for t in described["subgraph_metadata"][0]["input_tensor_metadata"]} == {
        "ids", "mask", "segment_ids"}
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=files["student_fp32.tflite"])
    assert {d["name"] for d in interpreter.get_input_details()} == set(text_input.FEATURES)
    assert interpreter.get_output_details()[0]["name"] == "probabilities"  # what an app thresholds
    card = (tmp_path / "out" / "export_report.md").read_text()
    assert "top-1" not in card and "| accuracy | Keras accuracy |" in card and "MediaPipe = Keras" in card and "BertTokenizer" in card
    assert model.preprocessor is not None  # the user's model keeps its preprocessor


def test_a_regression_student_is_checked_by_pearson_and_pairs_are_explained():
    rng = np.random.default_rng(1)
    first, _ = _sentences(rng, 60)
    second, _ = _sentences(rng, 60)
    scores = rng.uniform(0, 5, 60).astype(np.float32)
    model = _classifier(1)
    _, report = export_student(model, ["fp32", "dynamic"], options=NO_TIMING, data=ExportData(
        representative=(first[:20], second[:20]), test=((first, second), scores)))
    rows = {row["mode"]: row for row in report["results"]}
    assert report["metric"] == "pearson" and "labels" not in report
    assert rows["fp32"]["pearson_with_keras"] > 0.9999 and rows["dynamic"]["pearson_with_keras"] > 0.9
    assert set(rows["fp32"]["metrics"]) == {"pearson", "spearman"} and "agreement" not in rows["fp32"]
    assert "takes one string; for a sentence pair an app tokenizes the pair itself" in rows["fp32"]["mediapipe"]["skipped"]


@pytest.mark.parametrize("kwargs, message", [
    ({"test": (np.array([1.0, 2.0]), np.array([0, 1]))}, r"test data: a text student takes strings"),
    ({"test": (np.array(["a", "b"]), np.array([0.5, 1.0]))}, r"labels must be 2 integer class ids"),
    ({"test": (np.array(["a", "b"]), np.array([0, 7]))}, r"labels must lie in \[0, 2\)"),
    ({"test": np.array(["a", "b"])}, r"test data of a text student is a pair \(texts, labels\)"),
    ({"modes": ["uint8"]}, r"\['uint8'\] do not support text students"),
    ({"test": None}, r"names no GLUE dataset to read test examples"),
    ({"representative": None, "modes": ["int8"]}, r"read train examples from \(mode\(s\) \['int8'\] calibrate on them\)"),
])
def test_bad_text_data_is_one_line_before_any_conversion(sentiment, kwargs, message):
    model, texts, labels = sentiment
    arguments = {"modes": ["fp32"], "representative": texts[:4], "test": (texts[:4], labels[:4]), **kwargs}
    with pytest.raises(ValueError, match=message) as error:
        export_student(model, arguments.pop("modes"), data=ExportData(**arguments), options=NO_TIMING)
    assert "\n" not in str(error.value)
