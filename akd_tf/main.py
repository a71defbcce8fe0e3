"""Annealing-KD from the command line: teacher, distillation, evaluation, saved student.

    python -m akd_tf.main --flagfile=configs/cifar10.flags
    python -m akd_tf.main --flagfile=configs/smoke.flags --workdir=/tmp/akd_smoke

Flags only build an `akd_tf.config.Config`; the work is `akd_tf.train.train_and_evaluate`.
Flagfile paths, including ``--flagfile`` lines inside a flagfile, are relative to the current directory.

Killed at any moment, the same command resumes the run in ``--workdir``. Exit status: 0 done; 2 bad
input (one line on stderr, before any training); 3 the training diverged (NaN or infinite loss).
"""

import copy
import dataclasses
import os
import re
import signal
import sys
import typing

from absl import app, flags, logging

from akd_tf import checkpoint as checkpoint_lib
from akd_tf import config as config_lib
from akd_tf import files, train
from akd_tf import workdir as workdir_lib
from akd_tf.data import own
from akd_tf.callbacks import TrainingDiverged

FLAGS = flags.FLAGS

flags.DEFINE_string("workdir", None, "Directory for models, metrics, logs and plots.", required=True)
flags.DEFINE_bool("overwrite", False, "Replace a finished (or differently configured) run in --workdir.")


def define_config_flags(flag_values=FLAGS):
    """One flag per `Config` field, with the field's default, help and allowed values: each setting is written once,
    in `akd_tf.config` (your own images' recipe, `akd_tf.config.recipe`, is added to the help)."""
    types = typing.get_type_hints(config_lib.Config)
    own_images = config_lib.recipe(own.FOLDER)
    for field in dataclasses.fields(config_lib.Config):
        meta = field.metadata
        name, kind = meta["flag"] or field.name, types[field.name]
        base = next((t for t in typing.get_args(kind) if t is not type(None)), kind)  # int | None -> int
        help_text = meta["help"] + (f" Your own images (folder:, tfds:): {own_images[field.name]} unless given."
                                    if field.name in own_images else "")
        if meta["choices"] is not None:
            flags.DEFINE_enum(name, field.default, list(meta["choices"]), help_text, flag_values=flag_values)
        elif base is bool:
            flags.DEFINE_bool(name, field.default, help_text, flag_values=flag_values)
        elif base is int:
            flags.DEFINE_integer(name, field.default, help_text, flag_values=flag_values)
        elif base is float:
            flags.DEFINE_float(name, field.default, help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(name, field.default, help_text, flag_values=flag_values)


define_config_flags()


PROG = "akd_tf.main"


def _flag_names():
    """Every setting the library's errors can name (`Config` fields and the arguments of `train_and_evaluate`) ->
    its flag."""
    names = {field.name: field.metadata["flag"] or field.name for field in dataclasses.fields(config_lib.Config)}
    return {**names, "workdir": "workdir", "overwrite": "overwrite"}


def in_flag_terms(message: str) -> str:
    """A library error in this CLI's terms: the library names settings as the Python API does (`teacher_path`,
    ``method='takd'``); here each becomes its flag (--teacher, --method='takd')."""
    for name, flag in _flag_names().items():
        message = message.replace(f"`{name}`", f"--{flag}")
        message = re.sub(rf"(?<![\w.-]){name}=", f"--{flag}=", message)
    return message


def _error(message, status):
    print(f"{PROG}: error: {in_flag_terms(str(message))}", file=sys.stderr)
    sys.exit(status)


def _leave_now(line, status):
    """``line`` on stderr, then exit at once: not sys.exit, whose interpreter shutdown runs the finalizers of what the
    interruption left half-done (h5py's files on a full disk crashed it, exit 139, after the message)."""
    print(f"{PROG}: {line}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(status)


def parse_flags(argv):
    """absl's parser, with its errors (unknown flag, missing flagfile, bad value) in one line, exit 2."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        message = " ".join(str(error).split())
        for old, (new, convert) in config_lib.RENAMED.items():
            if re.search(rf"Unknown command line flag '{old}'", message):
                value = next((a.split("=", 1)[1] for a in argv if a.startswith(f"--{old}=")), None)
                try:
                    hint = f" (here: --{new}={convert(float(value)):g})" if value is not None else ""
                except ValueError:  # not a number: the new flag's own check will say so
                    hint = ""
                _error(f"--{old} is now --{new}{hint}; see --helpfull.", 2)
        _error(message.removeprefix("ERROR:: "), 2)


def config_from_flags(flag_values=FLAGS) -> config_lib.Config:
    """The `Config` of the flags given (on the command line or in a flagfile); the others take the dataset's recipe
    (`akd_tf.config.recipe`), else their defaults."""
    fields = {field.name: field.metadata["flag"] or field.name for field in dataclasses.fields(config_lib.Config)}
    given = {name: flag_values[flag].value for name, flag in fields.items() if flag_values[flag].present}
    if flag_values["verbose"].value == 1 and not sys.stdout.isatty():
        # Keras draws its progress bars with terminal colour codes whatever stdout is; a log file gets lines.
        given["verbose"] = 2
    # An empty value unsets an optional flag that a flagfile set (e.g. --student_init= for the teacher's own run).
    optional = {field.name for field in dataclasses.fields(config_lib.Config) if field.default is None}
    given.update({name: None for name in optional if given.get(name) == ""})
    return config_lib.Config.with_recipe(**given)


def resolved_flags(config, flag_values=FLAGS) -> str:
    """The run's settings as a flagfile that reproduces it (``flags.txt``): every flag of this tool (not absl's or
    TensorFlow's), with the value the run took, its dataset's recipe included."""
    lines = [flag_values["workdir"].serialize()]
    for field in dataclasses.fields(config_lib.Config):
        value = getattr(config, field.name)
        if value is not None:
            flag = copy.deepcopy(flag_values[field.metadata["flag"] or field.name])
            flag.value = value
            lines.append(flag.serialize())
    return "".join(f"{line}\n" for line in sorted(lines))


def summary_line(metrics: dict, method: str, workdir: str) -> str:
    """The run's last line: the student's figures, and a warning when a GLUE student is no better than the
    majority class."""
    student = metrics["student"]
    if "dev" in student:  # GLUE: the task's metrics on its dev split(s)
        figures = "; ".join(f"{split} " + ", ".join(f"{k} {v:.4f}" for k, v in values.items())
                            for split, values in student["dev"].items())
    else:
        figures = f"test accuracy {student['test_accuracy']:.4f}"
    floor = metrics.get("majority_class")
    if student.get("at_or_below_majority_class"):
        metric = metrics["metric"]
        figures += (f" — at or below the majority-class floor ({metric} {floor[metric]:.4f}, every example given "
                    f"class {floor['class']}): the student has not learnt the task")
    return f"student {student['net']} ({method}): {figures}; files in {workdir}"


def quiet_libraries():
    """Keeps the INFO lines of TFDS (dataset info, readers) and of TensorFlow's Python (SavedModel writing) out of
    the run's output: they are the libraries' bookkeeping, not the run's. Their warnings and errors stay, and so do
    this tool's own INFO lines."""
    import logging as python_logging

    python_logging.getLogger("tensorflow").setLevel(python_logging.WARNING)
    library = (f"{os.sep}tensorflow_datasets{os.sep}", f"{os.sep}tensorflow{os.sep}")
    logging.get_absl_handler().addFilter(
        lambda record: record.levelno >= python_logging.WARNING or not any(p in record.pathname for p in library))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    quiet_libraries()
    config = config_from_flags()
    flags_txt = resolved_flags(config)
    received = []

    def stop(signum, frame):
        # In training, the first signal lets the step finish and a checkpoint be written (the training loop then
        # raises KeyboardInterrupt); elsewhere, or on a second signal, it stops at once.
        received.append(signum)
        if len(received) == 1 and checkpoint_lib.request_stop():
            print(f"{PROG}: stopping after this training step, with a checkpoint "
                  f"({'Ctrl-C' if signum == signal.SIGINT else 'the signal'} again: stop now)", file=sys.stderr,
                  flush=True)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a shell's background job ignores Ctrl-C: so do we
        signal.signal(signal.SIGINT, stop)
    try:
        metrics = train.train_and_evaluate(config, FLAGS.workdir, overwrite=FLAGS.overwrite,
                                           notes={"flags.txt": flags_txt})
    except KeyboardInterrupt:
        # Raised after a training step's checkpoint, or between two Python lines elsewhere: every file written so
        # far is whole (each is written under a temporary name and renamed).
        name = "SIGTERM" if received and received[0] == signal.SIGTERM else "Ctrl-C"
        _leave_now(f"stopped by {name}; the same command goes on: {workdir_lib.kept_progress(FLAGS.workdir)}.",
                   128 + (received[0] if received else signal.SIGINT))  # as a shell reports a process the signal ended
    except config_lib.BadInput as error:
        _error(error, 2)  # one line, before any training
    except TrainingDiverged as error:
        _error(error, 3)
    except OSError as error:
        if not files.no_space(error):
            raise
        _leave_now(f"error: {files.no_space_message(FLAGS.workdir)}", 4)
    logging.info("Done. Results in %s", FLAGS.workdir)
    print(summary_line(metrics, config.method, FLAGS.workdir))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
