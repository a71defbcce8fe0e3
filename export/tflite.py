"""Quantize the distilled student, convert it to TFLite, check it against the float student, benchmark it.

    python -m export.tflite --model <workdir>/student/
    python -m export.tflite --model runs/smoke/student --quantization=fp32,int8 --output=/tmp/tflite
    python -m export.tflite --model my_model.keras --representative_data=calib.npz --test_data=test.npz

Writes ``student_<mode>.tflite``, ``export_report.json``, ``export_report.md`` and ``export_report.png`` into
``--output`` (default: ``tflite/`` beside the model). The files are written to a temporary directory and renamed
into place at the end, so a failed run leaves an earlier ``--output`` untouched. The work is
`export.export_student`; this module only reads flags. Exit status 2 and one line on stderr for bad input.
"""

import os
import sys

from absl import app, flags

from akd_tf.command import command_line
from export import ALL_MODES, DEFAULT_MODES

FLAGS = flags.FLAGS

flags.DEFINE_string("model", None, "The student: the SavedModel directory akd_tf.main writes (<workdir>/student/), or "
                    "a .keras file (loaded with safe_mode=True).", required=True)
flags.DEFINE_list("quantization", ",".join(DEFAULT_MODES),
                  f"Comma-separated modes, any of: {', '.join(ALL_MODES)}. Default: all but int4 and qat. Text "
                  "students: all but int16x8, uint8 and qat (the default drops those for them).")
flags.DEFINE_string("output", None, "Output directory (default: tflite/ beside the model).")
flags.DEFINE_enum("outputs", "probabilities", ["probabilities", "logits"],
                  "What a classifier's files return: class probabilities (softmax; what apps threshold and MediaPipe "
                  "reports as scores) or logits. A regression student's files return its score.")
flags.DEFINE_bool("int8_io", False, "int8 mode: int8 input/output tensors instead of float32.")
flags.DEFINE_string("representative_data", None, "An .npz file whose array x holds calibration inputs for "
                    "int8/int16x8, prepared as the model was trained on them (default: the dataset's training split).")
flags.DEFINE_string("test_data", None, "An .npz file with arrays x (inputs, prepared as in training) and y (integer "
                    "labels) to check the files on (default: the dataset's test split).")
flags.DEFINE_integer("representative_examples", 300, "Examples that calibrate int8/int16x8.")
flags.DEFINE_integer("test_size", None, "Check on the first N test examples (default: all of them).")
flags.DEFINE_bool("benchmark", True, "Measure batch-1 latency (1 thread and all cores).")
flags.DEFINE_integer("invokes", 200, "Timed invokes per latency measurement.")
flags.DEFINE_string("dataset", None, "The student's TFDS dataset, when the model has no akd_tf.json naming it.")
flags.DEFINE_string("data_dir", None, "TFDS data directory (default: $TFDS_DATA_DIR).")
flags.DEFINE_string("labels", None, "A text file of class names, one per line in class-id order, for the files' "
                    "metadata (default: the TFDS dataset's label names, else the class ids).")
flags.DEFINE_list("input_mean", None, "Image students without an akd_tf.json: the per-channel mean of their input "
                  "normalisation, (pixel * input_scale - mean) / std (default: inputs are pixels).")
flags.DEFINE_list("input_std", None, "With --input_mean: the per-channel standard deviation.")
flags.DEFINE_float("input_scale", 1 / 255.0, "With --input_mean: the factor pixels (0-255) are multiplied by first.")
flags.DEFINE_string("model_name", None, "Metadata: the model's name (default: '<net> <dataset> classifier').")
flags.DEFINE_string("model_description", None, "Metadata: what the model does (default: from its akd_tf.json).")
flags.DEFINE_string("model_version", None, "Metadata: the model's version (default: the akd_tf version).")
flags.DEFINE_string("model_license", None, "Metadata: the model's licence (default: Apache-2.0).")
flags.DEFINE_bool("mediapipe", True, "Also run every file with MediaPipe Tasks on the test examples (ImageClassifier; "
                  "TextClassifier for single-sentence text tasks).")
flags.DEFINE_integer("qat_epochs", 2, "qat: fine-tuning epochs with quantization-aware training.")
flags.DEFINE_integer("qat_train_size", 10000, "qat: training images used for fine-tuning.")
flags.DEFINE_float("qat_learning_rate", 1e-3, "qat: SGD learning rate of the fine-tuning.")


# The library's errors name its arguments; from the command line they are flags.
_AS_FLAGS = (("ExportData(dataset=...)", "--dataset"),
             ("ExportData(representative=..., test=...)", "--representative_data / --test_data"),
             ("ExportData(normalization=...)", "--input_mean/--input_std"), ("dataset=", "--dataset="),
             ("; model ", "; --model "))


def _fail(message):
    message = str(message)
    if message.startswith(("model ", "labels:", "dataset ")):
        message = "--" + message
    for argument, flag in _AS_FLAGS:
        message = message.replace(argument, flag)
    print(f"export.tflite: error: {message}", file=sys.stderr)
    return 2


def _info():
    """The --model_* flags given, as overrides of the metadata's defaults."""
    return {key: FLAGS[f"model_{key}"].value for key in ("name", "description", "version", "license")
            if FLAGS[f"model_{key}"].value is not None}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    for name in ("representative_examples", "invokes", "qat_epochs", "qat_train_size"):
        if FLAGS[name].value < 1:
            return _fail(f"--{name} must be a positive integer. Received: {FLAGS[name].value}")

    if (FLAGS.input_mean is None) != (FLAGS.input_std is None):
        return _fail("--input_mean and --input_std go together. Received: "
                     f"--input_mean={FLAGS.input_mean}, --input_std={FLAGS.input_std}")
    try:
        normalization = None if FLAGS.input_mean is None else {
            "mean": [float(v) for v in FLAGS.input_mean], "std": [float(v) for v in FLAGS.input_std],
            "scale": FLAGS.input_scale}
    except ValueError:
        return _fail(f"--input_mean and --input_std take numbers. Received: {FLAGS.input_mean}, {FLAGS.input_std}")

    from export import ExportData, ExportOptions, export_student, report
    from export import user_data

    output = FLAGS.output or os.path.join(os.path.dirname(os.path.normpath(FLAGS.model)), "tflite")
    try:
        representative = test = None
        if FLAGS.representative_data:
            representative, _ = user_data.read_npz(FLAGS.representative_data, "--representative_data", labels=False)
        if FLAGS.test_data:
            test = user_data.read_npz(FLAGS.test_data, "--test_data")
        data = ExportData(representative=representative, test=test, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
                          representative_examples=FLAGS.representative_examples, test_size=FLAGS.test_size,
                          labels=FLAGS.labels, normalization=normalization)
        options = ExportOptions(outputs=FLAGS.outputs, info=_info(), mediapipe=FLAGS.mediapipe,
                                benchmark=FLAGS.benchmark, invokes=FLAGS.invokes, int8_io=FLAGS.int8_io,
                                command=command_line("export.tflite"),
                                qat_options={"epochs": FLAGS.qat_epochs, "train_size": FLAGS.qat_train_size,
                                             "learning_rate": FLAGS.qat_learning_rate})
        files, result = export_student(
            FLAGS.model, [m.strip() for m in FLAGS.quantization if m.strip()] if FLAGS["quantization"].present else None,
            data=data, options=options, output=output)
    except (ValueError, FileNotFoundError) as error:  # one line: BadInput from .keras loading is a ValueError
        return _fail(error)
    print(report.markdown(result))
    print(f"Wrote {', '.join(sorted(files))} and export_report.{{json,md,png}} to {output}")


if __name__ == "__main__":
    app.run(main)
