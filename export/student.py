"""The student to export: the SavedModel that `akd_tf.main` writes (`<workdir>/student/`), a ``.keras`` file,
or a Keras model in memory. Load it, validate it, and read the examples of its dataset the way it was trained on
them: normalised images, or, for a GLUE text student, token features made by the preprocessor saved beside it
(``student/preset/``, a keras-nlp preset). A ``.keras`` file or in-memory model is exported to a temporary
SavedModel first: the converter reads SavedModels (`export.convert`)."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile

import numpy as np
import tensorflow as tf

METADATA = "akd_tf.json"


@dataclasses.dataclass
class Student:
    directory: str
    serve: object  # the SavedModel's serving function: float32 images (or a dict of int32 tokens) -> logits
    input_shape: tuple  # without the batch dimension
    num_classes: int
    metadata: dict
    loaded: object = None  # keeps the SavedModel's variables alive for `serve`
    source: str = ""  # what the user gave: a path, or a description of an in-memory model
    temporary: object = None  # the temporary SavedModel of a .keras file or in-memory model, while this lives

    @property
    def text(self) -> bool:
        return self.metadata.get("modality") == "text"

    def predict(self, inputs, batch_size: int = 256) -> np.ndarray:
        """Logits for images, or for a dict of token feature arrays."""
        from export import runtime

        return np.concatenate([self.serve(tf.nest.map_structure(tf.constant, runtime.take(inputs, i, i + batch_size))
                                          ).numpy() for i in range(0, runtime.count(inputs), batch_size)])


EXPECTED = ("a TF SavedModel directory such as <workdir>/student/ written by `python -m akd_tf.main`, or a .keras "
            "file")


def load(source, dataset: str | None = None) -> Student:
    """Loads and validates a student: a SavedModel directory, a ``.keras`` file (``safe_mode=True``: no code from
    the file runs), or a `keras.Model` (an `akd_tf` distiller gives its student). Errors are one line naming what
    was received and what is expected. ``dataset`` (a TFDS name) overrides the one its ``akd_tf.json`` names.

    A ``.keras`` file takes its ``akd_tf.json`` from the directory of the same name beside it, when there is one
    (``<workdir>/student.keras`` and ``<workdir>/student/``)."""
    return _checked_dataset(_load(source, dataset), dataset)


def _checked_dataset(student, dataset):
    """``student``, unless ``dataset`` is of the other kind (text for an image student): TFDS's own error for it
    names neither the model nor the fix."""
    from akd_tf.data import glue, own_text

    if dataset and not student.text and (glue.is_glue(dataset) or own_text.is_csv(dataset)):
        raise ValueError(f"dataset {dataset!r} is text and {student.source} is an image student: give an image "
                         "dataset (cifar10, cifar100, folder:DIR, tfds:NAME), or none to use the one its akd_tf.json "
                         "names, or your own images (ExportData(representative=..., test=...)).")
    return student


def _load(source, dataset):
    from akd_tf.methods.base import Distiller

    import keras

    if isinstance(source, keras.Model):
        model = source.student if isinstance(source, Distiller) else source
        return _from_keras(model, f"<in-memory model {model.name!r}>", {}, dataset)
    path = os.fspath(source)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model path does not exist. Received: {path!r}; expected {EXPECTED}.")
    if os.path.isfile(path):
        from akd_tf.model_files import load_model

        model = load_model(path, "model")  # one-line errors for wrong formats, corrupt or unsafe files
        sibling = os.path.splitext(path)[0]
        metadata = _metadata(sibling, None) if os.path.isfile(os.path.join(sibling, METADATA)) else {}
        return _from_keras(model, path, metadata, dataset)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ValueError(f"model is not a SavedModel (no saved_model.pb). Received: {path!r}; expected {EXPECTED}.")
    return _from_saved_model(path, _metadata(path, dataset), path)


def _from_keras(model, source, metadata, dataset):
    from akd_tf.methods.base import Distiller

    if isinstance(model, Distiller):  # e.g. a saved AnnealingKD: its call() is the student
        model = model.student
    metadata = {**metadata, "model_name": model.name}  # names the model in the model card (`export.library._model_info`)
    if getattr(model, "preprocessor", None) is not None:
        return _text_from_keras(model, source, metadata, dataset)
    from akd_tf import nets, precision

    if "net" not in metadata and model.name in nets.NETS:
        # akd_tf.nets names each model after its architecture, so a bare .keras student can still take the qat
        # mode, which rebuilds it by that name (and refuses a copy whose weights or logits differ).
        metadata = {**metadata, "net": model.name}

    temporary = tempfile.TemporaryDirectory(prefix="akd_tf_export_")
    directory = os.path.join(temporary.name, "saved_model")
    try:
        # A mixed-precision student is exported computing in float32: TFLite has no bfloat16 kernels.
        with precision.computing_in(model, "float32"):
            model.export(directory, format="tf_saved_model", verbose=False)
    except Exception as error:  # noqa: BLE001 - Keras raises many types for models it cannot trace
        reason = " ".join(str(error).split())[:200]
        raise ValueError(f"model {source} could not be exported as a SavedModel: {type(error).__name__}: "
                         f"{reason}") from None
    student = _from_saved_model(directory, {**metadata, **({"dataset": dataset} if dataset else {})}, source)
    student.temporary = temporary
    return student


def _text_from_keras(model, source, metadata, dataset):
    """A keras-hub text classifier with its preprocessor: written as `akd_tf.main` writes a text student (a
    SavedModel over token features, the preset with the tokenizer, ``akd_tf.json``) into a temporary directory."""
    from akd_tf.data import glue, own_text
    from akd_tf.tasks.text import write_serving_model

    dataset = dataset or metadata.get("dataset")
    if dataset is not None and dataset not in glue.DATASETS and not own_text.is_csv(dataset):
        raise ValueError(f"dataset {dataset!r} is not a GLUE task; a text student's dataset is one of "
                         f"{', '.join(glue.DATASETS)}, your own {own_text.CSV}FILE (or none, with texts in "
                         "ExportData(representative=..., test=...)).")
    length = getattr(model.preprocessor, "sequence_length", None)
    if not length:
        raise ValueError(f"{source}: its preprocessor has no fixed sequence_length; the exported file needs one.")
    temporary = tempfile.TemporaryDirectory(prefix="akd_tf_export_")
    directory = os.path.join(temporary.name, "student")
    num_classes = int(model.output.shape[-1]) if hasattr(model, "output") else int(model.num_classes)
    try:
        write_serving_model(model, model.preprocessor, directory, int(length), {
            "dataset": dataset,
            "task": glue.task_of(dataset) if glue.is_glue(dataset) else own_text.TASK if dataset else None,
            "num_classes": num_classes, "labels": metadata.get("labels"), "split": metadata.get("split"),
            "net": model.name, "method": metadata.get("method")})
    except Exception as error:  # noqa: BLE001 - Keras raises many types for models it cannot trace
        reason = " ".join(str(error).split())[:200]
        raise ValueError(f"{source} could not be exported as a SavedModel: {type(error).__name__}: {reason}") from None
    student = _from_saved_model(directory, _metadata(directory, None), source)
    student.temporary = temporary
    return student


def _from_saved_model(path, metadata, source):
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise ValueError(f"model has no serving_default signature. Received: {source!r}; expected {EXPECTED}.")
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    out_spec = next(iter(outputs.values())) if len(outputs) == 1 else None
    if metadata.get("modality") == "text":
        return _load_text(path, loaded, inputs, out_spec, metadata, source)
    spec = next(iter(inputs.values())) if len(inputs) == 1 else None
    if (spec is None or spec.dtype != tf.float32 or spec.shape.rank != 4 or out_spec is None
            or out_spec.shape.rank != 2):
        received = {name: f"{s.dtype.name}{s.shape}" for name, s in inputs.items()}
        raise ValueError(
            "model has an unexpected signature: expected one float32 image input [batch, height, width, "
            f"channels] and one logits output [batch, classes]. Received inputs: {received}"
        )
    input_shape = tuple(spec.shape[1:])
    if "input_shape" in metadata and tuple(metadata["input_shape"]) != input_shape:
        raise ValueError(f"model input shape {input_shape} differs from its {METADATA}: {metadata['input_shape']}")
    serve = getattr(loaded, "serve", None) or (lambda x: next(iter(signature(x).values())))
    return Student(path, serve, input_shape, int(out_spec.shape[-1]), metadata, loaded, source)


def _metadata(path, dataset):
    """The ``akd_tf.json`` in ``path`` (``{}`` without one), with ``dataset`` when given."""
    metadata = {}
    if os.path.isfile(os.path.join(path, METADATA)):
        with open(os.path.join(path, METADATA)) as f:
            metadata = json.load(f)
    if dataset:
        metadata["dataset"] = dataset
    return metadata


def _load_text(path, loaded, inputs, out_spec, metadata, source):
    length = metadata.get("sequence_length")
    bad = {name: f"{s.dtype.name}{s.shape}" for name, s in inputs.items()
           if s.dtype != tf.int32 or s.shape.rank != 2 or s.shape[1] != length}
    if bad or out_spec is None or out_spec.shape.rank != 2:
        raise ValueError(f"model is a text student whose signature is not int32 [batch, {length}] token features "
                         f"-> [batch, classes]. Received inputs: {bad or list(inputs)}")
    if not os.path.isfile(os.path.join(path, metadata.get("preset", "preset"), "config.json")):
        raise ValueError(f"model is a text student without its keras-nlp preset directory "
                         f"({metadata.get('preset')!r}), which holds its tokenizer. Received: {path!r}")
    return Student(path, loaded.serve, (length,), int(out_spec.shape[-1]), metadata, loaded, source)


def examples(student: Student, split: str, count: int | None, data_dir: str | None = None, normalization=None):
    """``(inputs, labels)`` of the first ``count`` examples of ``split`` ("train" or "test"), prepared as the
    student was trained: normalised images, or token features. For GLUE "test" is the dev split (GLUE's
    test labels are hidden). Raises `ValueError` when the student names no dataset."""
    if not student.metadata.get("dataset"):
        raise ValueError(f"model {student.source} names no dataset (no {METADATA}) to read {split} examples from: "
                         "pass ExportData(dataset=...) (a TFDS dataset), or your own examples "
                         "(ExportData(representative=..., test=...)).")
    if not student.text:
        return images(student, split, count, data_dir, normalization)
    texts, labels = text_examples(student, split, count, data_dir)
    from export import text_input

    return text_input.tokenize(student, texts), labels


def text_examples(student: Student, split: str, count: int | None, data_dir: str | None = None):
    """``(texts, labels)`` of a text student's split ("test": a GLUE task's dev split; the test rows your own file's
    run drew, from its ``akd_tf.json``): a tuple of string arrays, one per text field, and the labels (float scores
    for STS-B)."""
    from akd_tf.data import glue, own_text
    from akd_tf.data import images as image_data

    dataset = student.metadata["dataset"]
    if own_text.is_csv(dataset):
        drawn = student.metadata.get("split") or {}
        splits, _, _ = own_text.read(dataset, seed=drawn.get("seed", 0), validation_size=drawn.get("validation_size"),
                                     test_size=drawn.get("test_size"))
        texts, labels = splits[split]
        return tuple(t[:count] for t in texts), labels[:count]
    if split == "test":
        split = next(iter(glue.DATASETS[dataset]["eval"].values()))
    builder = image_data.builder(dataset, data_dir=data_dir)
    return glue.read_split(builder, split if count is None else f"{split}[:{count}]", glue.task_of(dataset))


def preprocessing(student: Student) -> dict | None:
    """How the student's image inputs are made from pixels: its ``akd_tf.json``'s, else, when it names a TFDS
    dataset, the `akd_tf.data.images` standardisation (what `images` applies); None for neither."""
    from akd_tf.data import images as image_data

    if student.metadata.get("preprocessing"):
        return student.metadata["preprocessing"]
    if student.metadata.get("dataset"):
        return {"scale": 1 / 255.0, "mean": list(image_data.MEAN), "std": list(image_data.STD)}
    return None


def spread(total: int, count: int | None, seed: int) -> np.ndarray:
    """Indices of ``count`` of ``total`` examples drawn with ``seed``, in their order (all of them when ``count`` is
    None or more). Your images are in class order: the first 300 of 809 training photos would calibrate the uint8
    file on 269 airplanes, 31 cats and no ship."""
    if count is None or count >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).permutation(total)[:count])


def images(student: Student, split: str, count: int | None, data_dir: str | None = None, normalization=None):
    """(float32 images normalised as in training, int labels) of ``count`` examples of ``split`` (the first ones; of
    your own images, a seeded draw over the split); ``normalization`` (an `export.image_input.Normalization`)
    overrides `preprocessing`."""
    from akd_tf.data import images as image_data
    from akd_tf.data import own, pipeline

    prep = normalization.as_dict() if normalization is not None else preprocessing(student)
    if own.is_own(student.metadata["dataset"]):  # the very split the run drew, from its akd_tf.json
        drawn = student.metadata.get("split") or {}
        read = own.read(student.metadata["dataset"], int(student.input_shape[0]), seed=drawn.get("seed", 0),
                        validation_size=drawn.get("validation_size"), test_size=drawn.get("test_size"),
                        data_dir=data_dir)
        x, y = read.splits[split]
        chosen = spread(len(y), count, drawn.get("seed", 0))
        x, y = x[chosen], y[chosen]
        x = image_data.normalize(x, prep["mean"], prep["std"], prep["scale"]).numpy()
        return x, y.astype(np.int64)
    builder = image_data.builder(student.metadata["dataset"], data_dir=data_dir)
    tfds_split = split if count is None else f"{split}[:{count}]"
    ds = builder.as_dataset(split=tfds_split, as_supervised=True, shuffle_files=False)
    ds = ds.batch(1000).map(lambda x, y: (image_data.normalize(x, prep["mean"], prep["std"], prep["scale"]), y))
    ds = ds.with_options(pipeline.options())  # a pass that ends when its data does (akd_tf.data.pipeline)
    xs, ys = [], []
    for x, y in ds.as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)
