"""`export_student`: the library call of the export (``python -m export.tflite`` is the same call from the command
line), with its two groups of settings: `ExportData` (which examples, class names and normalisation) and
`ExportOptions` (what the files return and carry, and what is checked and timed)."""

from __future__ import annotations

import dataclasses
import os
import re

from absl import logging

from export.pipeline import ALL_MODES, QAT

DEFAULT_MODES = ("fp32", "dynamic", "float16", "int8", "int16x8", "uint8")
NEEDS_CALIBRATION = ("int8", "int16x8", "uint8", "int4", QAT)  # int4: a text student's embedding tables
# int16x8 cannot calibrate the int32 token inputs (the converter fails on them); QAT rebuilds the image nets only;
# uint8 is an image's pixels.
TEXT_UNSUPPORTED = ("int16x8", "uint8", QAT)


@dataclasses.dataclass(frozen=True)
class ExportData:
    """The examples and names an export reads; each left None comes from the student's run (its ``akd_tf.json``)
    or its TFDS dataset.

    Attributes:
        representative: examples that calibrate int8/int16x8 (and QAT's conversion): an array of inputs, an
            ``(x, y)`` pair, or a `tf.data.Dataset`; at most ``representative_examples`` are used. Default: the
            training split of the student's TFDS dataset. Text students: strings (a tuple of two for pairs).
        test: labelled examples the files are checked on: ``(x, y)`` or a `tf.data.Dataset` of ``(x, y)``; at
            most ``test_size``. Default: the test split of the student's TFDS dataset. Text: ``(texts, labels)``.
        dataset: the TFDS dataset for the defaults, when the student's ``akd_tf.json`` names none.
        data_dir: the TFDS data directory.
        labels: the class names, in class-id order: a list, or a text file with one per line. Default: the names
            the run wrote into the student's ``akd_tf.json``, else those of the TFDS dataset's ``label`` feature,
            else the class ids.
        normalization: ``{"mean": [...], "std": [...], "scale": s}``: how the student's inputs were made from RGB
            pixels ``p`` (``(p * s - mean) / std``); the TFDS examples are prepared with it too. Default: its
            ``akd_tf.json``'s; without one, `akd_tf.data.images`' standardisation when a TFDS dataset is named,
            else none (the inputs are taken as pixels).
    """

    representative: object = None
    test: object = None
    dataset: str | None = None
    data_dir: str | None = None
    representative_examples: int = 300
    test_size: int | None = None
    labels: object = None
    normalization: dict | None = None


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What the files return and carry, and what the export checks and times.

    Attributes:
        outputs: what a classifier's files return: ``"probabilities"`` (softmax, what apps threshold and MediaPipe
            reports as scores) or ``"logits"``. A regression student's files return its score.
        info: an `export.metadata.ModelInfo` (name, description, version, author, licence) for the metadata, or a
            dict that overrides some of the defaults (e.g. ``{"license": "CC-BY-4.0"}``).
        mediapipe: also run every file with MediaPipe Tasks (``ImageClassifier``; ``TextClassifier`` for
            single-sentence text tasks) on the test examples.
        benchmark: time every file with the LiteRT interpreter (``invokes`` runs per setting).
        int8_io: int8 files take and give int8 tensors instead of float.
        qat_options: the QAT fine-tuning's settings (``epochs``, ``train_size``, ``learning_rate``).
        command: the command line recorded in the report.
    """

    outputs: str = "probabilities"
    info: object = None
    mediapipe: bool = True
    benchmark: bool = True
    invokes: int = 200
    int8_io: bool = False
    qat_options: dict | None = None
    command: str | None = None


_DATA_FIELDS = tuple(f.name for f in dataclasses.fields(ExportData))
_OPTION_FIELDS = tuple(f.name for f in dataclasses.fields(ExportOptions))


def _moved(removed):
    """The one-line error for keyword arguments of the former 19-parameter signature."""
    unknown = [k for k in removed if k not in _DATA_FIELDS + _OPTION_FIELDS]
    if unknown:
        return f"export_student() got unexpected keyword argument(s) {', '.join(unknown)}"
    data = [f"{k}=..." for k in removed if k in _DATA_FIELDS]
    opts = [f"{k}=..." for k in removed if k in _OPTION_FIELDS]
    where = ([f"data=ExportData({', '.join(data)})"] if data else []) + (
        [f"options=ExportOptions({', '.join(opts)})"] if opts else [])
    return (f"export_student's {', '.join(removed)} moved into its settings objects: pass {', '.join(where)} "
            "(from export import ExportData, ExportOptions)")


def export_student(model_or_path, modes=None, *, data=None, options=None, output=None, **removed):
    """Converts the student to TFLite in each of ``modes``, checks every file against the float student, times it.

    Args:
        model_or_path: a `keras.Model` (an `akd_tf` distiller gives its student), a ``.keras`` file (loaded with
            ``safe_mode=True``), or a SavedModel directory such as ``<workdir>/student/``.
        modes: any of `ALL_MODES`; default `DEFAULT_MODES` (for text students, those they support).
        data: an `ExportData`: the calibration and test examples, the class names, the normalisation. Default:
            all from the student's run (its ``akd_tf.json``) and its TFDS dataset.
        options: an `ExportOptions`: what the files return, their metadata, MediaPipe, benchmarking, QAT.
        output: a directory to write the files and ``export_report.{json,md,png}`` into (atomically).

    Image files take RGB pixels, the normalisation inside (`export.image_input`); text files token features
    (`export.text_input`). Every file carries metadata (name, labels, input or tokenizer) that MediaPipe Tasks and
    the TFLite Support library read (`export.metadata`).

    Inputs are used as given: prepare them as the model was trained on them. Raises `ValueError` or
    `FileNotFoundError` (one line) for unusable input before anything is converted or written.

    Returns:
        ``(files, report)``: file name -> TFLite bytes, and the report that ``export_report.json`` holds.
    """
    if removed:
        raise TypeError(_moved(removed))
    data = ExportData() if data is None else data
    options = ExportOptions() if options is None else options
    if not isinstance(data, ExportData) or not isinstance(options, ExportOptions):
        raise TypeError(f"`data` must be an ExportData and `options` an ExportOptions. Received: "
                        f"data={type(data).__name__}, options={type(options).__name__}")
    from export import image_input, metadata, pipeline, report as report_lib
    from export import student as student_lib
    from export import user_data

    from export import convert

    convert.check_outputs(options.outputs)  # before the student is loaded
    explicit = modes is not None
    modes = list(DEFAULT_MODES if modes is None else modes)
    unknown = [m for m in modes if m not in ALL_MODES]
    if unknown or not modes:
        raise ValueError(f"unknown quantization mode(s) {unknown or modes}. Allowed: {', '.join(ALL_MODES)}")
    student = student_lib.load(model_or_path, dataset=data.dataset)
    if student.text:
        unsupported = [m for m in modes if m in TEXT_UNSUPPORTED]
        if unsupported and explicit:
            raise ValueError(f"mode(s) {unsupported} do not support text students. Allowed for text: "
                             f"{', '.join(m for m in ALL_MODES if m not in TEXT_UNSUPPORTED)}.")
        modes = [m for m in modes if m not in TEXT_UNSUPPORTED]
    normalization = data.normalization if student.text else image_input.Normalization.of(
        data.normalization or student_lib.preprocessing(student), student.input_shape[-1])
    labels = None if student.num_classes == 1 else _labels(data.labels, student, data.data_dir)
    info = options.info if isinstance(options.info, metadata.ModelInfo) else dataclasses.replace(
        _model_info(student), **(options.info or {}))
    if QAT in modes:
        from akd_tf import nets

        from akd_tf.data import images as image_data

        rebuilt = [name for name in nets.NETS if name not in nets.PIXEL_INPUT]
        if student.metadata.get("net") not in rebuilt or student.metadata.get("dataset") not in image_data.DATASETS:
            raise ValueError(f"mode 'qat' rebuilds a CIFAR net ({', '.join(rebuilt)}) and fine-tunes it on its TFDS "
                             f"dataset ({', '.join(image_data.DATASETS)}); model {student.source} names net "
                             f"{student.metadata.get('net')!r} and dataset {student.metadata.get('dataset')!r}.")
        import importlib.util

        if importlib.util.find_spec("tensorflow_model_optimization") is None:
            raise ValueError("mode 'qat' needs tensorflow-model-optimization, which is not installed: pip install "
                             "--no-deps tensorflow-model-optimization==0.8.1 (without its absl-py pin; see setup.py)")
    test_texts = None
    if student.text:
        representative, (test_inputs, test_labels, test_texts) = _text_examples(
            student, data.representative, data.test, modes, data.representative_examples, data.test_size,
            data.data_dir)
    else:
        representative = None
        if data.representative is not None:
            representative, _ = user_data.examples(data.representative, student.input_shape, "representative data",
                                                   labels=False, limit=data.representative_examples)
        elif any(m in NEEDS_CALIBRATION for m in modes):
            representative, _ = student_lib.examples(student, "train", data.representative_examples, data.data_dir,
                                                     normalization)
        if data.test is not None:
            test_inputs, test_labels = user_data.examples(data.test, student.input_shape, "test data",
                                                          num_classes=student.num_classes, limit=data.test_size)
        else:
            test_inputs, test_labels = student_lib.examples(student, "test", data.test_size, data.data_dir,
                                                            normalization)
    if "uint8" in modes and image_input.uint8_images(normalization.to_pixels(test_inputs)) is None:
        if explicit:
            raise ValueError("mode 'uint8' takes 8-bit pixels, and this student's test inputs are not 0-255 whole "
                             "numbers once un-normalised: give the normalisation its inputs were made with "
                             "(ExportData(normalization=...)), or leave out uint8.")
        modes.remove("uint8")
        logging.warning("uint8 left out: the inputs are not 8-bit pixels once un-normalised (no normalisation known)")
    qat_options = {"data_dir": data.data_dir, **(options.qat_options or {})}  # its calibration: the pipeline's (pixels)
    files, report = pipeline.export_modes(student, modes, representative, test_inputs, test_labels,
                                          int8_io=options.int8_io, benchmark=options.benchmark,
                                          invokes=options.invokes, qat_options=qat_options, labels=labels, info=info,
                                          normalization=normalization, mediapipe=options.mediapipe,
                                          test_texts=test_texts, outputs=options.outputs)
    if options.command:
        report["command"] = options.command
    if output:
        report_lib.write(output, files, report)
    return files, report


def _text_examples(student, representative, test, modes, representative_examples, test_size, data_dir):
    """A text student's calibration features, and its test ``(features, labels, texts)``: from the given strings
    (``test``: ``(texts, labels)``; texts an array of strings, or a tuple of two for sentence pairs), else from its
    GLUE task (the dev split for test), tokenized by the tokenizer saved with it."""
    from export import student as student_lib
    from export import text_input, user_data

    if representative is not None:
        texts = text_input.as_texts(representative, "representative data")
        representative = text_input.tokenize(student, tuple(t[:representative_examples] for t in texts))
    elif any(m in NEEDS_CALIBRATION for m in modes):
        _need_dataset(student, "train", [m for m in modes if m in NEEDS_CALIBRATION])
        texts, _ = student_lib.text_examples(student, "train", representative_examples, data_dir)
        representative = text_input.tokenize(student, texts)
    if test is not None:
        if not (isinstance(test, (tuple, list)) and len(test) == 2):
            raise ValueError("test data of a text student is a pair (texts, labels): texts an array of strings (or a "
                             "tuple of two for sentence pairs), labels their class ids (scores for regression).")
        texts = text_input.as_texts(test[0], "test data")
        labels = user_data.labels_of(test[1], len(texts[0]), "test data", student.num_classes)
        if test_size is not None:
            texts, labels = tuple(t[:test_size] for t in texts), labels[:test_size]
    else:
        _need_dataset(student, "test")
        texts, labels = student_lib.text_examples(student, "test", test_size, data_dir)
    return representative, (text_input.tokenize(student, texts), labels, texts)


def _need_dataset(student, split, modes=None):
    if not student.metadata.get("dataset"):
        why = f" (mode(s) {modes} calibrate on them)" if modes else ""
        raise ValueError(f"{student.source} names no GLUE dataset to read {split} examples from{why}: pass "
                         "dataset= (e.g. 'glue/sst2'), or your own texts (test=(texts, labels), representative=texts).")


def _labels(labels, student, data_dir):
    """The class names: ``labels`` (a list or a file), else the TFDS dataset's, else the class ids."""
    from export import metadata

    if isinstance(labels, (str, os.PathLike)):
        return metadata.read_labels(os.fspath(labels), student.num_classes)
    if labels is not None:
        labels = [str(name) for name in labels]
        if len(labels) != student.num_classes or not all(labels):
            raise ValueError(f"labels: {len(labels)} name(s) for a {student.num_classes}-class student; expected one "
                             "non-empty name per class, in class-id order.")
        return labels
    if student.metadata.get("labels") and len(student.metadata["labels"]) == student.num_classes:
        return [str(name) for name in student.metadata["labels"]]  # the run's, from its akd_tf.json
    dataset = student.metadata.get("dataset")
    names = metadata.dataset_labels(dataset, data_dir) if dataset else None
    if names is not None and len(names) == student.num_classes:
        return names
    return [str(i) for i in range(student.num_classes)]


def _model_info(student):
    import akd_tf
    from akd_tf.methods import registry
    from export import metadata

    meta = student.metadata
    net = next((n for n in (meta.get("net"), meta.get("model_name")) if n and not _AUTO_NAME.fullmatch(n)), None)
    dataset, method = meta.get("dataset"), meta.get("method")
    how = registry.title(method) if method else None
    what = "text classifier" if student.text else "image classifier"
    given = "text (WordPiece tokens)" if student.text else "RGB pixels 0-255"
    task = f"{student.num_classes}-class {dataset + ' ' if dataset else ''}{what}"
    return metadata.ModelInfo(
        name=f"{net} {dataset} classifier" if net and dataset else f"{net}: {task}" if net else task,
        description=task + (f" ({net})" if net else "") + (f", trained by {how}" if how else "")
        + f" with akd_tf; input: {given}.",
        version=f"akd_tf {akd_tf.__version__}")


# The names Keras gives a model nobody named ("functional_3", "sequential", keras-hub's "bert_text_classifier_1"):
# they say nothing in a model card.
_AUTO_NAME = re.compile(r"(functional|sequential|model|\w+_(text|image)_classifier)(_\d+)?")
