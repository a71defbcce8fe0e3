"""Edge export of a student: TFLite files in several quantization modes, each checked against the float student
on labelled examples and benchmarked with LiteRT.

    from export import export_student

    files, report = export_student(model, ["fp32", "dynamic", "int8"], representative=x_train[:300],
                                   test=(x_test, y_test), output="tflite/")

``python -m export.tflite --model <workdir>/student/`` is the same call from the command line.
"""

from __future__ import annotations

from export.pipeline import ALL_MODES, QAT

DEFAULT_MODES = ("fp32", "dynamic", "float16", "int8", "int16x8")
NEEDS_CALIBRATION = ("int8", "int16x8", QAT)
# int16x8 cannot calibrate the int32 token inputs (the converter fails on them); QAT rebuilds the image nets only.
TEXT_UNSUPPORTED = ("int16x8", QAT)


def export_student(model_or_path, modes=None, *, representative=None, test=None, dataset=None, data_dir=None,
                   representative_examples=300, test_size=None, int8_io=False, benchmark=True, invokes=200,
                   qat_options=None, output=None, command=None):
    """Converts the student to TFLite in each of ``modes``, checks every file against the float student, times it.

    Args:
        model_or_path: a `keras.Model` (an `akd_tf` distiller gives its student), a ``.keras`` file (loaded with
            ``safe_mode=True``), or a SavedModel directory such as ``<workdir>/student/``.
        modes: any of `ALL_MODES`; default `DEFAULT_MODES` (for text students, those they support).
        representative: examples that calibrate int8/int16x8 (and QAT's conversion): an array of inputs, an
            ``(x, y)`` pair, or a `tf.data.Dataset`; at most ``representative_examples`` are used. Default: the
            training split of the student's TFDS dataset.
        test: labelled examples the files are checked on: ``(x, y)`` or a `tf.data.Dataset` of ``(x, y)``; at
            most ``test_size``. Default: the test split of the student's TFDS dataset.
        dataset: the TFDS dataset for the defaults, when the student's ``akd_tf.json`` names none.
        output: a directory to write the files and ``export_report.{json,md,png}`` into (atomically).

    Inputs are used as given: prepare them as the model was trained on them. Raises `ValueError` or
    `FileNotFoundError` (one line) for unusable input before anything is converted or written.

    Returns:
        ``(files, report)``: file name -> TFLite bytes, and the report that ``export_report.json`` holds.
    """
    from export import pipeline, report as report_lib
    from export import student as student_lib
    from export import user_data

    explicit = modes is not None
    modes = list(DEFAULT_MODES if modes is None else modes)
    unknown = [m for m in modes if m not in ALL_MODES]
    if unknown or not modes:
        raise ValueError(f"unknown quantization mode(s) {unknown or modes}. Allowed: {', '.join(ALL_MODES)}")
    student = student_lib.load(model_or_path, dataset=dataset)
    if student.text:
        unsupported = [m for m in modes if m in TEXT_UNSUPPORTED]
        if unsupported and explicit:
            raise ValueError(f"mode(s) {unsupported} do not support text students. Allowed for text: "
                             f"{', '.join(m for m in ALL_MODES if m not in TEXT_UNSUPPORTED)}.")
        modes = [m for m in modes if m not in TEXT_UNSUPPORTED]
        if student.num_classes == 1:
            raise ValueError("the export checks compare class predictions; regression students (STS-B) are not "
                             "supported yet.")
        if representative is not None or test is not None:
            raise ValueError("text students read their examples from their GLUE dataset through the tokenizer saved "
                             "with them; representative/test data is for image-like students.")
    if QAT in modes:
        from akd_tf import nets

        if student.metadata.get("net") not in nets.NETS or not student.metadata.get("dataset"):
            raise ValueError(f"mode 'qat' rebuilds an akd_tf.nets student ({', '.join(nets.NETS)}) and fine-tunes it "
                             f"on its TFDS dataset; --model {student.source} names net "
                             f"{student.metadata.get('net')!r} and dataset {student.metadata.get('dataset')!r}.")
    if representative is not None:
        representative, _ = user_data.examples(representative, student.input_shape, "representative data",
                                               labels=False, limit=representative_examples)
    elif any(m in NEEDS_CALIBRATION for m in modes):
        representative, _ = student_lib.examples(student, "train", representative_examples, data_dir)
    if test is not None:
        test_inputs, test_labels = user_data.examples(test, student.input_shape, "test data",
                                                      num_classes=student.num_classes, limit=test_size)
    else:
        test_inputs, test_labels = student_lib.examples(student, "test", test_size, data_dir)
    qat_options = {"data_dir": data_dir, **(qat_options or {}), "representative": representative}
    files, report = pipeline.export_modes(student, modes, representative, test_inputs, test_labels, int8_io=int8_io,
                                          benchmark=benchmark, invokes=invokes, qat_options=qat_options)
    if command:
        report["command"] = command
    if output:
        report_lib.write(output, files, report)
    return files, report
