"""The checks of a run that need no training, before anything long starts: configuration, workdir, prepared dataset,
and the teacher, assistant and initial-student files. Each failure is `BadInput` in one line."""

from __future__ import annotations

from akd_tf import data as data_lib
from akd_tf import model_files, nets, workdir
from akd_tf.config import BadInput, Config
from akd_tf.data import glue, own, own_text


def validate_config(config):
    try:
        config.validate()
    except (ValueError, OSError) as error:
        raise BadInput(str(error)) from None


def preflight(config: Config, run_dir: str, overwrite: bool = False):
    """Every check that needs no training: configuration, workdir, prepared dataset, teacher file.

    Raises `BadInput` with a one-line message naming what was received and what is allowed.
    """
    validate_config(config)
    model_files.forget_checked()  # what an earlier run of this process kept and did not use
    workdir.prepare_workdir(config, run_dir, overwrite)
    try:
        if own.is_own(config.dataset):
            names = own.label_names(config.dataset, config.data_dir)  # checks the folder or TFDS dataset
            size = image_size(config)
            spec = {"num_classes": len(names), "input_shape": (size, size, 3)}
        elif own_text.is_csv(config.dataset):
            spec = {"num_classes": len(own_text.label_names(config.dataset))}  # checks the file
        else:
            data_lib.images.builder(config.dataset, config.data_dir, config.download)
            spec = {**data_lib.DATASETS, **glue.DATASETS}[config.dataset]
    except (FileNotFoundError, ValueError) as error:
        raise BadInput(str(error)) from None
    for role, path in (("teacher", config.teacher_path), ("assistant", config.assistant_path)):
        if path:
            model = model_files.load_model(path, model_files.FIELDS[role], keep=True)
            model_files.check_fits_data(model, path, spec, role,
                                        config.teacher_outputs if role == "teacher" else "logits")
    if config.student_init_file:  # truncate:K is checked when the student is built from the teacher
        init = model_files.load_model(config.student_init_file, model_files.FIELDS["student_init"], keep=True)
        model_files.check_fits_data(init, config.student_init_file, spec, "student_init")
        net = nets.build(config.student_net, spec["num_classes"], spec["input_shape"])
        model_files.check_same_network(init, net, config.student_init_file, config.student_net)
    if overwrite:  # last: a bad flag must not cost the user the run it would replace
        workdir.clear_outputs(run_dir)


def image_size(config: Config) -> int:
    """The side your own images are resized to: ``image_size``, else the ``--teacher`` file's (square) input,
    else `akd_tf.data.images.OWN_IMAGE_SIZE`. `BadInput` when the two disagree or the teacher's input is not
    square RGB."""
    shape = None
    if config.teacher_path:
        model = model_files.load_model(config.teacher_path, model_files.FIELDS["teacher"], keep=True)
        shape = model_files.known_shape(model, "inputs")
    if shape is not None and (len(shape) != 3 or shape[0] != shape[1] or shape[2] != 3):
        raise BadInput(f"{model_files.FIELDS['teacher']} {config.teacher_path!r} takes inputs of shape {tuple(shape)}; "
                       "image teachers here take square RGB images, (size, size, 3).")
    if config.image_size is not None:
        if shape is not None and shape[0] not in (None, config.image_size):
            raise BadInput(f"{model_files.FIELDS['teacher']} {config.teacher_path!r} takes {shape[0]}×{shape[1]} images; "
                           f"image_size={config.image_size} would resize yours to another size. Leave image_size "
                           "out (the teacher's size is the default), or pass a teacher of that size.")
        return config.image_size
    if shape is not None and shape[0] is not None:
        return int(shape[0])
    return data_lib.images.OWN_IMAGE_SIZE
