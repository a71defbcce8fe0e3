"""The configuration of a run (`Config`), its allowed values, and `BadInput`: what the CLI's flags build and
every stage reads. Validation only; nothing here touches data, models or files."""

from __future__ import annotations

import dataclasses
import os

from akd_tf import data as data_lib
from akd_tf import logits, nets, precision, schedule
from akd_tf.data import glue
from akd_tf.nets import text as text_nets

# "finetune" is "scratch" (labels only) under the name that reads right for a pre-trained student.
METHODS = ("akd", "scratch", "kd", "takd", "finetune", "ckd")
LABELS_ONLY = ("scratch", "finetune")
OPTIMIZERS = ("sgd", "adamw")
STRATEGIES = ("auto", "mirrored", "one_device", "default", "multi_worker")


class BadInput(ValueError):
    """A configuration, path or file that cannot work; raised before any training starts."""



@dataclasses.dataclass
class Config:
    """Everything a run needs; the defaults are the paper's CIFAR-10 recipe (``configs/cifar10.flags``)."""

    dataset: str = "cifar10"
    data_dir: str | None = None
    download: bool = False
    validation_size: int = 5000
    train_size: int | None = None
    test_size: int | None = None
    method: str = "akd"
    teacher_net: str = "resnet110"
    student_net: str = "resnet8"
    # Images: a .keras model of the student's network whose weights the student starts from (e.g. a second LR
    # cycle). Text: "truncate:K", the teacher's embeddings and first K transformer layers (--teacher, else
    # --teacher_preset, before this run fine-tunes it).
    student_init: str | None = None
    teacher_path: str | None = None
    # What the --teacher file returns: logits, or probabilities (converted to logits before distillation).
    teacher_outputs: str = "logits"
    teacher_epochs: int = 200
    # TAKD: teacher -> assistant -> student; the assistant is loaded, or trained here by KD from the teacher.
    assistant_path: str | None = None
    assistant_net: str = "resnet20"
    assistant_epochs: int | None = None  # None: as many as the student
    # Images: K augmented views of every training image, teacher run once over them (0: teacher in the loop).
    teacher_views: int = 0
    # A directory that keeps teacher views across runs: the same teacher, data, seed and K are computed once.
    teacher_views_cache: str | None = None
    phase1_epochs: int = 200
    phase2_epochs: int = 100
    max_temperature: int = 10
    kd_alpha: float = 0.9
    kd_temperature: float = 4.0
    # Continuation-KD: T anneals over phase1_epochs; ψ rises to 1 over ckd_label_ramp_epochs (None: 3/4 of the
    # student's epochs, the paper's 150 of 200); the hinge margin m of its teacher term (not given in the paper).
    ckd_label_ramp_epochs: float | None = None
    ckd_margin: float = 0.0
    batch_size: int = 128
    learning_rate: float = 0.1
    # The rate every method's schedule restarts at, at epoch phase1_epochs (None: the recipe, see student_phases).
    phase2_learning_rate: float | None = None
    teacher_learning_rate: float | None = None  # None: same as learning_rate
    lr_schedule: str = "step"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    seed: int = 20
    deterministic: bool = False
    strategy: str = "auto"
    verbose: int = 1
    # Keras dtype policy (akd_tf.precision): none (float32), bfloat16 or float16 (with loss scaling).
    mixed_precision: str = "none"
    jit_compile: bool = False  # XLA; off by default: on this CPU it was slower
    sync_batchnorm: bool = False  # BatchNorm statistics over the global batch under a multi-replica strategy
    # Text (GLUE) runs only.
    teacher_preset: str | None = None
    student_preset: str | None = None
    sequence_length: int = 128
    teacher_vocabulary_size: int = 8000
    student_vocabulary_size: int = 8000
    cache_teacher_logits: bool = True
    # A directory that keeps the teacher's logits across runs (same teacher and data: computed once).
    teacher_logits_cache: str | None = None
    group_by_length: bool = False  # training batches of similar lengths (every batch is trimmed of padding)
    optimizer: str = "sgd"
    clipnorm: float | None = None

    @property
    def text(self) -> bool:
        return glue.is_glue(self.dataset)

    def validate(self):
        """Raises `ValueError` naming the first bad field, before any data or model is touched."""
        def one_of(name, allowed):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"Unknown {name} {value!r}. Allowed: {', '.join(allowed)}")

        one_of("dataset", tuple(data_lib.DATASETS) + tuple(glue.DATASETS))
        one_of("method", METHODS)
        architectures = tuple(text_nets.ARCHITECTURES if self.text else nets.NETS)
        truncate = text_nets.truncate_layers(self.student_init)  # validates K
        if self.student_init is not None:
            self._validate_student_init(truncate)
        if not (self.text and (self.student_preset or truncate)):
            one_of("student_net", architectures)
        if self.method == "takd":
            if self.text:
                raise ValueError("`method` 'takd' is implemented for image datasets. Received: "
                                 f"dataset={self.dataset!r}. Allowed there: akd, ckd, scratch, kd, finetune")
            if self.assistant_path is None:
                one_of("assistant_net", architectures)
        elif self.assistant_path is not None:
            raise ValueError(f"`assistant` is read by --method=takd only. Received: method={self.method!r}, "
                             f"assistant={self.assistant_path!r}")
        if self.teacher_path is None and self.needs_teacher and not (self.text and self.teacher_preset):
            one_of("teacher_net", architectures)
        if isinstance(self.teacher_views, bool) or not isinstance(self.teacher_views, int) or self.teacher_views < 0:
            raise ValueError(f"`teacher_views` must be an integer >= 0. Received: teacher_views={self.teacher_views!r}")
        if self.teacher_views and (self.text or self.method in LABELS_ONLY):
            raise ValueError(
                "`teacher_views` caches the teacher's logits of augmented images for akd, ckd, kd and takd on image "
                f"datasets. Received: teacher_views={self.teacher_views}, method={self.method!r}, "
                f"dataset={self.dataset!r}" + (" (text runs cache logits with --cache_teacher_logits)" if self.text
                                                else ""))
        if self.assistant_epochs is not None and (isinstance(self.assistant_epochs, bool)
                                                  or not isinstance(self.assistant_epochs, int)
                                                  or self.assistant_epochs < 1):
            raise ValueError(f"`assistant_epochs` must be a positive integer. Received: "
                             f"assistant_epochs={self.assistant_epochs!r}")
        if not self.text and (self.teacher_preset or self.student_preset):
            raise ValueError("`teacher_preset`/`student_preset` name keras-nlp text models; they need a GLUE dataset "
                             f"(glue/<task>). Received: dataset={self.dataset!r}")
        if self.text and self.method == "kd" and glue.DATASETS[self.dataset]["num_classes"] == 1:
            raise ValueError(f"`method` 'kd' needs class probabilities; {self.dataset} is a regression task. "
                             "Allowed there: akd, ckd, scratch, finetune")
        one_of("lr_schedule", tuple(schedule.LR_SCHEDULES) + (schedule.LINEAR,))
        one_of("teacher_outputs", logits.OUTPUTS)
        if self.teacher_outputs == "probabilities":
            if self.teacher_path is None:
                raise ValueError("`teacher_outputs` 'probabilities' describes a --teacher file; a teacher trained here "
                                 "(or built from a preset) returns logits. Received: teacher_outputs='probabilities' "
                                 "and no --teacher")
            if self.text and glue.DATASETS[self.dataset]["num_classes"] == 1:
                raise ValueError(f"`teacher_outputs` 'probabilities' needs a classification task; {self.dataset} is a "
                                 "regression task, whose teacher returns a score. Allowed there: logits")
        one_of("optimizer", OPTIMIZERS)
        one_of("mixed_precision", tuple(precision.POLICIES))
        if self.teacher_logits_cache and not (self.text and self.cache_teacher_logits):
            raise ValueError("`teacher_logits_cache` keeps the cached teacher logits of GLUE runs (image runs: "
                             f"--teacher_views_cache). Received: teacher_logits_cache={self.teacher_logits_cache!r}, "
                             f"dataset={self.dataset!r}, cache_teacher_logits={self.cache_teacher_logits}")
        if self.group_by_length and not self.text:
            raise ValueError("`group_by_length` batches text by token count; image datasets have none. Received: "
                             f"group_by_length=True, dataset={self.dataset!r}")
        if self.sync_batchnorm and self.text:
            raise ValueError("`sync_batchnorm` synchronises BatchNorm layers; the BERT models of GLUE runs have none "
                             f"(they use LayerNorm). Received: sync_batchnorm=True, dataset={self.dataset!r}")
        one_of("strategy", STRATEGIES)
        for name in ("phase1_epochs", "phase2_epochs", "batch_size", "max_temperature", "teacher_epochs",
                     "sequence_length", "teacher_vocabulary_size", "student_vocabulary_size"):
            value = getattr(self, name)
            # Only Annealing-KD has a second phase; the others train phase1_epochs + phase2_epochs, and may say all
            # of them in phase1_epochs (Continuation-KD anneals T over phase1_epochs: the paper's whole run).
            if name == "phase2_epochs" and self.method != "akd" and value == 0:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        for name in ("learning_rate", "kd_temperature", "teacher_learning_rate", "clipnorm", "phase2_learning_rate"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be > 0. Received: {name}={getattr(self, name)!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"`momentum` must lie in [0, 1). Received: momentum={self.momentum!r}")
        if not 0 <= self.kd_alpha <= 1:
            raise ValueError(f"`kd_alpha` must lie in [0, 1]. Received: kd_alpha={self.kd_alpha!r}")
        if self.weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0. Received: weight_decay={self.weight_decay!r}")
        if self.method in ("akd", "ckd"):
            schedule.validate_schedule(self.phase1_epochs, self.max_temperature)
        if self.method == "ckd":
            if isinstance(self.ckd_margin, bool) or not isinstance(self.ckd_margin, (int, float)) \
                    or not self.ckd_margin >= 0:
                raise ValueError(f"`ckd_margin` must be a number >= 0. Received: ckd_margin={self.ckd_margin!r}")
            try:
                schedule.validate_label_ramp(self.label_ramp_epochs, self.student_epochs)
            except ValueError:
                raise ValueError("`ckd_label_ramp_epochs` must be a number > 0 and at most the student's epochs "
                                 f"(phase1_epochs + phase2_epochs = {self.student_epochs}), so that the run ends on "
                                 f"labels alone. Received: ckd_label_ramp_epochs={self.ckd_label_ramp_epochs!r}"
                                 ) from None
        elif self.ckd_label_ramp_epochs is not None or self.ckd_margin:
            raise ValueError(f"`ckd_label_ramp_epochs` and `ckd_margin` are read by --method=ckd only. Received: "
                             f"method={self.method!r}, ckd_label_ramp_epochs={self.ckd_label_ramp_epochs!r}, "
                             f"ckd_margin={self.ckd_margin!r}")
        for flag, path in (("--teacher", self.teacher_path), ("--assistant", self.assistant_path),
                           ("--student_init", self.student_init_file)):
            if path is not None and not os.path.isfile(path):
                raise FileNotFoundError(f"{flag} file not found. Received: {path!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"`seed` must be an integer >= 0. Received: seed={self.seed!r}")

    def _validate_student_init(self, truncate):
        received = f"Received: student_init={self.student_init!r}, dataset={self.dataset!r}"
        if not self.text:
            if truncate:
                raise ValueError(f"`student_init` {text_nets.TRUNCATE}K copies transformer layers of a text teacher "
                                 f"(GLUE); an image student starts from a .keras file of --student_net. {received}")
            return
        if not truncate:
            raise ValueError(f"`student_init` for a text student is {text_nets.TRUNCATE}K (the first K layers of the "
                             f"teacher); or start it from --student_preset. {received}")
        if self.student_preset:
            raise ValueError(f"`student_init` and `student_preset` both give the student's weights; pass one. "
                             f"{received}, student_preset={self.student_preset!r}")
        if not (self.teacher_path or self.teacher_preset):
            raise ValueError(f"`student_init` {self.student_init} copies the teacher's first layers: it needs "
                             f"--teacher (a .keras text classifier) or --teacher_preset. {received}")

    @property
    def student_init_file(self):
        """``student_init`` when it names a .keras file (image students), else None (unset, or ``truncate:K``)."""
        return None if text_nets.truncate_layers(self.student_init) else self.student_init

    @property
    def label_ramp_epochs(self):
        """Continuation-KD's ψ ramp: ``ckd_label_ramp_epochs``, or three quarters of the student's epochs."""
        if self.ckd_label_ramp_epochs is not None:
            return self.ckd_label_ramp_epochs
        return 0.75 * self.student_epochs

    @property
    def student_epochs(self):
        """Every method trains the student for as many epochs as AKD's two phases together."""
        return self.phase1_epochs + self.phase2_epochs

    def student_phases(self, method=None, epochs=None):
        """``(epochs of each phase, base learning rate of each phase)`` of a stage trained by ``method`` for
        ``epochs`` (default: the student's). AKD has its two phases, the second restarting at
        ``phase2_learning_rate`` (default: ``learning_rate``, the recipe). The other methods train one phase, or,
        when ``phase2_learning_rate`` is set, the same two learning-rate phases (the rate restarts at epoch
        ``phase1_epochs``; the loss stays theirs): an ablation of the restart changes the same thing for all."""
        method, epochs = method or self.method, epochs or self.student_epochs
        rates = (self.learning_rate, self.phase2_learning_rate or self.learning_rate)
        if method == "akd":
            return (self.phase1_epochs, self.phase2_epochs), rates
        if self.phase2_learning_rate is not None and epochs > self.phase1_epochs:
            return (self.phase1_epochs, epochs - self.phase1_epochs), rates
        return (epochs,), (self.learning_rate,)

    @property
    def needs_teacher(self):
        """Is the teacher loaded (or trained)? Not for TAKD with a given assistant; for labels-only methods
        only when ``--teacher`` is given (its test accuracy is then reported beside the student's)."""
        if self.method == "takd" and self.assistant_path:
            return False
        return self.method not in LABELS_ONLY or self.teacher_path is not None

