"""The stand-in for the compiled module the mediapipe wheels lack: the versions MediaPipe's C++ rules give, and the
metadata writers importable through it."""

import flatbuffers
import pytest

from export import mediapipe_compat


def _buffer(subgraph=None, files=None):
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    model = fb.ModelMetadataT()
    model.name = "m"
    model.subgraphMetadata = [subgraph or fb.SubGraphMetadataT()]
    model.associatedFiles = files
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), b"M001")
    return bytes(builder.Output())


def _file(kind, version=None):
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    entry = fb.AssociatedFileT()
    entry.name, entry.type, entry.version = "f.txt", getattr(fb.AssociatedFileType, kind), version
    return entry


def _subgraph(**fields):
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    subgraph = fb.SubGraphMetadataT()
    tensor = fb.TensorMetadataT()
    tensor.associatedFiles = fields.pop("tensor_files", None)
    subgraph.inputTensorMetadata = [tensor]
    for name, value in fields.items():
        setattr(subgraph, name, value)
    return subgraph


def _unit(option):
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    unit = fb.ProcessUnitT()
    unit.optionsType = getattr(fb.ProcessUnitOptions, option)
    unit.options = getattr(fb, f"{option}T")()
    return unit


@pytest.mark.parametrize("build, version", [
    (lambda: _buffer(), "1.0.0"),
    (lambda: _buffer(files=[_file("TENSOR_AXIS_LABELS")]), "1.0.0"),
    (lambda: _buffer(_subgraph(tensor_files=[_file("VOCABULARY")])), "1.0.1"),
    (lambda: _buffer(_subgraph(inputProcessUnits=[_unit("BertTokenizerOptions")])), "1.1.0"),
    (lambda: _buffer(_subgraph(inputProcessUnits=[_unit("RegexTokenizerOptions")])), "1.2.1"),
    (lambda: _buffer(_subgraph(outputTensorGroups=[])), "1.2.0"),
    (lambda: _buffer(files=[_file("SCANN_INDEX_FILE")]), "1.4.0"),
    (lambda: _buffer(files=[_file("TENSOR_AXIS_LABELS", version="2")]), "1.4.1"),
    (lambda: _buffer(_subgraph(customMetadata=[], tensor_files=[_file("VOCABULARY")])), "1.5.0"),
])
def test_minimum_parser_version_follows_mediapipes_rules(build, version):
    assert mediapipe_compat.minimum_parser_version(build()) == version


def test_the_metadata_writers_import_with_the_stand_in():
    writer = mediapipe_compat.writers()
    assert hasattr(writer, "MetadataWriter")
    import sys

    module = sys.modules[mediapipe_compat._MISSING]
    assert module.GetMinimumMetadataParserVersion(_buffer()) == "1.0.0"
