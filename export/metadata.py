"""TFLite metadata that apps read: what the model is, how its input is made, what its outputs mean.

Written with MediaPipe's metadata writers (the format of MediaPipe Tasks and of the TFLite Support library on
Android, iOS and the web): general information (name, description, version, author, licence), the image input
(RGB pixels: the normalisation is inside the model, `export.image_input`), or the BERT WordPiece tokenizer (vocabulary file) bound to a text student's id, mask and
segment inputs, and the class scores with their label file. `export.mediapipe_compat` makes the writers importable
from the current wheels.
"""

from __future__ import annotations

import dataclasses
import os

LICENSE = "Apache-2.0"


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """The general part of the metadata."""
    name: str
    description: str
    version: str = "1"
    author: str = "akd_tf"
    license: str = LICENSE


def read_labels(path: str, num_classes: int) -> list[str]:
    """Class names from a text file, one per line in class-id order; raises `ValueError` unless there are exactly
    ``num_classes`` non-empty lines."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"labels file not found. Received: {path!r}; expected a text file with one class "
                                "name per line.")
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f.read().splitlines()]
    while names and not names[-1]:
        names.pop()
    if len(names) != num_classes or not all(names):
        blank = sum(1 for n in names if not n)
        raise ValueError(f"labels file {path!r} has {len(names)} line(s){f' ({blank} blank)' if blank else ''}; "
                         f"the student has {num_classes} classes: one non-empty name per line, in class-id order.")
    return names


def dataset_labels(dataset: str, data_dir: str | None = None) -> list[str] | None:
    """The class names a TFDS dataset's ``label`` feature declares (None when it has no names)."""
    from akd_tf.data import images as image_data

    features = image_data.builder(dataset, data_dir=data_dir).info.features
    label = features["label"] if "label" in features else None
    names = getattr(label, "names", None)
    return list(names) if names else None


def _labels(names):
    labels = _writer().Labels()
    labels.add(list(names))
    return labels


def _writer():
    from export import mediapipe_compat

    return mediapipe_compat.writers()


def image_classifier(model: bytes, info: ModelInfo, labels: list[str]) -> bytes:
    """``model`` (a file of `export.image_input`: RGB pixels in, normalisation inside) with image-classifier
    metadata: general information, the image input (mean 0, std 1: MediaPipe passes the pixels as they are) and
    the class scores with their labels."""
    from mediapipe.tasks.metadata import schema_py_generated as schema
    from mediapipe.tasks.python.metadata.metadata_writers import writer_utils

    dtype = writer_utils.get_input_tensor_types(bytearray(model))[0]
    kind = {schema.TensorType.FLOAT32: "float32", schema.TensorType.UINT8: "uint8"}.get(dtype, "quantized")
    return _populate(model, info, labels, lambda writer: writer.add_image_input(
        [0.0], [1.0], description=f"RGB image, pixel values 0-255 as {kind}; the training normalisation is inside "
        "the model."))


def text_classifier(model: bytes, info: ModelInfo, labels: list[str] | None, vocabulary: str,
                    tensor_names: dict) -> bytes:
    """``model`` (a file of `export.text_input`) with text-classifier metadata: general information, the BERT
    WordPiece tokenizer (``vocabulary``, a file of one WordPiece per line, packed into the model) bound to its id,
    mask and segment inputs (``tensor_names``: the file's tensor name of ``token_ids``, ``padding_mask`` and
    ``segment_ids``), and the class scores with their labels (or, for a regression student, ``labels=None``, the
    score)."""
    tokenizer = _writer().BertTokenizer(vocabulary)
    return _populate(model, info, labels, lambda writer: writer.add_bert_text_input(
        tokenizer, ids_name=tensor_names["token_ids"], mask_name=tensor_names["padding_mask"],
        segment_name=tensor_names["segment_ids"]))


def _populate(model, info, labels, add_input) -> bytes:
    """``model`` with metadata: ``info``, the input ``add_input(writer)`` describes, and the output: class scores
    with ``labels``, or (``labels=None``) a regression score."""
    writer = _writer().MetadataWriter.create(bytearray(model))
    # add_general_info takes a name and a description only; the GeneralMd it stores also holds version, author, licence
    writer._general_md = _general(info)
    add_input(writer)
    if labels is None:
        writer.add_feature_output(name="score", description="The predicted score (regression).")
    else:
        scores = "probabilities (softmax)" if _output_name(model) == "probabilities" else "logits"
        writer.add_classification_output(_labels(labels), description=f"Class scores ({scores}): the highest names "
                                         "the class.")
    content, _ = writer.populate()
    del writer  # its temporary folder goes now, not at interpreter exit (where its __del__ fails)
    return bytes(content)


def _general(info: ModelInfo):
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_info

    return metadata_info.GeneralMd(name=info.name, version=info.version, description=info.description,
                                   author=info.author, licenses=info.license)


def read(model: bytes) -> dict:
    """The metadata of ``model`` as JSON-like data (MediaPipe's displayer), with the packed files' text under
    ``associated_files``; ``{}`` when it has none."""
    import json

    from export import mediapipe_compat

    mediapipe_compat.install()
    from mediapipe.tasks.python.metadata import metadata

    try:
        displayer = metadata.MetadataDisplayer.with_model_buffer(bytearray(model))
    except ValueError:  # "The model does not have metadata."
        return {}
    files = {name: displayer.get_associated_file_buffer(name).decode("utf-8", errors="replace")
             for name in displayer.get_packed_associated_file_list()}
    return {**json.loads(displayer.get_metadata_json()), "associated_files": files}


def _output_name(model: bytes) -> str:
    """The name of the file's output tensor (`export.convert.name_io_tensors` names it after what it holds)."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=model).get_output_details()[0]["name"]
