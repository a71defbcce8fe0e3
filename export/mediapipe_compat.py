"""MediaPipe's metadata writers, importable from the mediapipe 1.2.x wheels.

The wheels' ``mediapipe.tasks.python.metadata.metadata`` imports the compiled module
``mediapipe.tasks.cc.metadata.python._pywrap_metadata_version``, which they do not ship (``ModuleNotFoundError:
No module named 'mediapipe.tasks.cc'``); its one function, ``GetMinimumMetadataParserVersion``, stamps the oldest
metadata parser that understands a metadata buffer. `install` puts a pure-Python stand-in for that module in
``sys.modules``; it follows the rules of MediaPipe's C++ original (``mediapipe/tasks/cc/metadata/
metadata_version.cc``): 1.0.0, raised by each schema member added later that the buffer uses. Everything else
the writers do is MediaPipe's own code. When a wheel ships the module, `install` leaves it alone.
"""

from __future__ import annotations

import importlib
import sys
import types

_MISSING = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"

# The schema version that introduced each member used after 1.0.0 (metadata_schema.fbs' history).
_VOCABULARY_FILE = (1, 0, 1)
_PROCESS_UNITS = (1, 1, 0)  # subgraph input/output process units; BERT and SentencePiece tokenizer options
_TENSOR_GROUPS = (1, 2, 0)
_REGEX_TOKENIZER = (1, 2, 1)
_AUDIO_PROPERTIES = (1, 3, 0)
_SCANN_INDEX_FILE = (1, 4, 0)
_FILE_VERSION = (1, 4, 1)
_CUSTOM_METADATA = (1, 5, 0)


def minimum_parser_version(metadata_buffer: bytes) -> str:
    """The oldest metadata parser version that reads every field ``metadata_buffer`` (a ModelMetadata
    flatbuffer) uses, e.g. ``"1.1.0"`` for a model with a BERT tokenizer."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    root = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(bytes(metadata_buffer), 0))
    needed = [(1, 0, 0)]

    def files(entries):
        for entry in entries or ():
            needed.extend(version for present, version in (
                (entry.type == fb.AssociatedFileType.VOCABULARY, _VOCABULARY_FILE),
                (entry.type == fb.AssociatedFileType.SCANN_INDEX_FILE, _SCANN_INDEX_FILE),
                (entry.version is not None, _FILE_VERSION)) if present)

    def units(entries):
        options = fb.ProcessUnitOptions
        for entry in entries or ():
            if entry.optionsType in (options.BertTokenizerOptions, options.SentencePieceTokenizerOptions):
                needed.append(_PROCESS_UNITS)
            elif entry.optionsType == options.RegexTokenizerOptions:
                needed.append(_REGEX_TOKENIZER)

    for subgraph in root.subgraphMetadata or ():
        for tensor in (subgraph.inputTensorMetadata or []) + (subgraph.outputTensorMetadata or []):
            files(tensor.associatedFiles)
            units(tensor.processUnits)
            if tensor.content is not None and (
                    tensor.content.contentPropertiesType == fb.ContentProperties.AudioProperties):
                needed.append(_AUDIO_PROPERTIES)
        files(subgraph.associatedFiles)
        for process_units in (subgraph.inputProcessUnits, subgraph.outputProcessUnits):
            if process_units is not None:
                needed.append(_PROCESS_UNITS)
                units(process_units)
        if subgraph.inputTensorGroups is not None or subgraph.outputTensorGroups is not None:
            needed.append(_TENSOR_GROUPS)
        if subgraph.customMetadata is not None:
            needed.append(_CUSTOM_METADATA)
    files(root.associatedFiles)
    return ".".join(map(str, max(needed)))


def install() -> None:
    """Makes ``import mediapipe.tasks.python.metadata`` work on wheels that lack the compiled module."""
    try:
        importlib.import_module(_MISSING)
        return
    except ImportError:
        pass
    parts = _MISSING.split(".")
    for depth in range(len(parts) - 1, 2, -1):  # mediapipe.tasks exists; create cc, cc.metadata, ... as needed
        name = ".".join(parts[:depth])
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = []
            sys.modules[name] = package
    stand_in = types.ModuleType(_MISSING)
    stand_in.__doc__ = "Pure-Python stand-in installed by export.mediapipe_compat (absent from the wheels)."
    stand_in.GetMinimumMetadataParserVersion = minimum_parser_version
    sys.modules[_MISSING] = stand_in


def writers():
    """``mediapipe.tasks.python.metadata.metadata_writers.metadata_writer``, importable."""
    install()
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    return metadata_writer
