"""Quantize the distilled student, convert it to TFLite, check it against the float student, benchmark it.

    python -m export.tflite --model <workdir>/student/
    python -m export.tflite --model runs/smoke/student --quantization=fp32,int8 --output=/tmp/tflite

Writes ``student_<mode>.tflite``, ``export_report.json``, ``export_report.md`` and ``export_report.png`` into
``--output`` (default: ``<workdir>/tflite``). The files are written to a temporary directory and renamed into
place at the end, so a failed run leaves an earlier ``--output`` untouched.
"""

import json
import os
import sys

from absl import app, flags, logging

from akd_tf import files as akd_files

from export.pipeline import ALL_MODES as _MODES

FLAGS = flags.FLAGS
TEXT_UNSUPPORTED = ("int16x8", "qat")

flags.DEFINE_string("model", None, "The student SavedModel directory (<workdir>/student/).", required=True)
flags.DEFINE_list("quantization", "fp32,dynamic,float16,int8,int16x8",
                  f"Comma-separated modes, any of: {', '.join(_MODES)}. Text students: all but int16x8 and qat "
                  "(the default drops those two for them).")
flags.DEFINE_string("output", None, "Output directory (default: <workdir>/tflite beside the student).")
flags.DEFINE_bool("int8_io", False, "int8 mode: int8 input/output tensors instead of float32.")
flags.DEFINE_integer("representative_examples", 300, "Training images that calibrate int8/int16x8.")
flags.DEFINE_integer("test_size", None, "Check on the first N test images (default: the whole test split).")
flags.DEFINE_bool("benchmark", True, "Measure batch-1 latency (1 thread and all cores).")
flags.DEFINE_integer("invokes", 200, "Timed invokes per latency measurement.")
flags.DEFINE_string("dataset", None, "The student's dataset, when the SavedModel has no akd_tf.json.")
flags.DEFINE_string("data_dir", None, "TFDS data directory (default: $TFDS_DATA_DIR).")
flags.DEFINE_integer("qat_epochs", 2, "qat: fine-tuning epochs with quantization-aware training.")
flags.DEFINE_integer("qat_train_size", 10000, "qat: training images used for fine-tuning.")
flags.DEFINE_float("qat_learning_rate", 1e-3, "qat: SGD learning rate of the fine-tuning.")


def _fail(message):
    print(f"export.tflite: error: {message}", file=sys.stderr)
    return 2


def write_atomically(output, files, report, markdown, plot):
    """Writes everything into a temporary sibling of ``output``, then swaps it in."""
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with akd_files.atomic_path(output) as staging:
        os.makedirs(staging)
        for name, content in files.items():
            with open(os.path.join(staging, name), "wb") as f:
                f.write(content)
        with open(os.path.join(staging, "export_report.json"), "w") as f:
            json.dump(report, f, indent=2)
        with open(os.path.join(staging, "export_report.md"), "w") as f:
            f.write(markdown)
        plot(report, os.path.join(staging, "export_report.png"))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    modes = [m.strip() for m in FLAGS.quantization if m.strip()]
    unknown = [m for m in modes if m not in _MODES]
    if unknown or not modes:
        return _fail(f"unknown quantization mode(s) {unknown or modes}. Allowed: {', '.join(_MODES)}")
    for name in ("representative_examples", "invokes", "qat_epochs", "qat_train_size"):
        if FLAGS[name].value < 1:
            return _fail(f"--{name} must be a positive integer. Received: {FLAGS[name].value}")

    from export import pipeline, report
    from export import student as student_lib

    try:
        student = student_lib.load(FLAGS.model, dataset=FLAGS.dataset)
        logging.info("Student %s: input %s, %d classes, dataset %s", FLAGS.model, student.input_shape,
                     student.num_classes, student.metadata["dataset"])
        if student.text:
            # int16x8 cannot calibrate the int32 token inputs (the converter fails on them); QAT rebuilds the
            # image nets only.
            unsupported = [m for m in modes if m in TEXT_UNSUPPORTED]
            if unsupported and FLAGS["quantization"].present:
                raise ValueError(f"mode(s) {unsupported} do not support text students. Allowed for text: "
                                 f"{', '.join(m for m in _MODES if m not in TEXT_UNSUPPORTED)}.")
            modes = [m for m in modes if m not in TEXT_UNSUPPORTED]
        if student.text and student.num_classes == 1:
            raise ValueError("the export checks compare class predictions; regression students (STS-B) are not "
                             "supported yet.")
        representative, _ = student_lib.examples(student, "train", FLAGS.representative_examples, FLAGS.data_dir)
        test_images, test_labels = student_lib.examples(student, "test", FLAGS.test_size, FLAGS.data_dir)
    except (ValueError, FileNotFoundError) as error:
        return _fail(error)
    output = FLAGS.output or os.path.join(os.path.dirname(os.path.normpath(FLAGS.model)), "tflite")
    qat_options = {"epochs": FLAGS.qat_epochs, "train_size": FLAGS.qat_train_size,
                   "learning_rate": FLAGS.qat_learning_rate, "data_dir": FLAGS.data_dir,
                   "representative": representative}
    files, result = pipeline.export_modes(
        student, modes, representative, test_images, test_labels, int8_io=FLAGS.int8_io,
        benchmark=FLAGS.benchmark, invokes=FLAGS.invokes, qat_options=qat_options)
    result["command"] = " ".join(["python -m export.tflite", *sys.argv[1:]])
    table = report.markdown(result)
    write_atomically(output, files, result, table, report.plot)
    print(table)
    print(f"Wrote {', '.join(sorted(files))} and export_report.{{json,md,png}} to {output}")


if __name__ == "__main__":
    app.run(main)
