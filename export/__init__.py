"""Edge export of a student: TFLite files in several quantization modes, each checked against the float student
on labelled examples and benchmarked with LiteRT.

    from export import ExportData, export_student

    files, report = export_student(model, ["fp32", "dynamic", "int8"], output="tflite/",
                                   data=ExportData(representative=x_train[:300], test=(x_test, y_test)))

``python -m export.tflite --model <workdir>/student/`` is the same call from the command line.
"""

from export.library import (DEFAULT_MODES, NEEDS_CALIBRATION, TEXT_UNSUPPORTED, ExportData, ExportOptions,
                            export_student)
from export.pipeline import ALL_MODES, QAT

__all__ = ["ALL_MODES", "DEFAULT_MODES", "NEEDS_CALIBRATION", "QAT", "TEXT_UNSUPPORTED", "ExportData", "ExportOptions",
           "export_student"]
