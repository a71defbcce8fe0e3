"""`Distiller`: what every distillation method here shares (`akd_tf.methods.annealing`, `.hinton`, `.continuation`);
`AnnealedDistiller`: the annealed teacher (T, Φ(T)) that Annealing-KD and Continuation-KD add to it.

Each method owns its training step (TensorFlow backend) through this base:

* the teacher is frozen (``trainable = False``), runs with ``training=False`` *before* the gradient tape
  and is never in the optimizer's variables; ``fit`` runs it as its `akd_tf.nets.fold.inference_copy` (BatchNorms
  folded into the convolutions: the same logits to float rounding, faster), refreshed from the teacher's
  weights at the start of every ``fit``; the student's BatchNorms train on TensorFlow's fused kernel
  (`akd_tf.nets.fused_batchnorm`: the same step to float rounding, faster; its saved files are plain Keras);
* ``call(x)`` is the student, so ``evaluate``/``predict``/``save`` of the distiller measure the student;
* losses are reduced per replica and divided by the replica count, because the optimizer all-reduces
  gradients with a SUM: the step on N replicas equals the step on one device with the same global batch;
* under a mixed-precision policy both models compute in the low dtype while logits and losses are float32, and
  with ``mixed_float16`` the loss goes through the `keras.optimizers.LossScaleOptimizer` that ``compile`` wraps
  the optimizer in (scaled loss, unscaled gradients, a skipped step when they overflow).

Inputs are either one structure that both models take, or a dict that says who gets what (`akd_tf.batch_keys`).

With ``TEACHER_LOGITS`` the teacher is never run in ``fit``: the loss is the same, the cost is the
student's alone. Exact for inputs without random augmentation (text) and for stored augmented views
(`akd_tf.data.images.ImageSplits.with_teacher_logits`).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from akd_tf import keras_internals, losses
from akd_tf import logits as logits_lib
from akd_tf import schedule
from akd_tf.nets import fold, fused_batchnorm
from akd_tf.batch_keys import INPUT_KEYS, STUDENT_INPUTS, TEACHER_INPUTS, TEACHER_LOGITS  # noqa: F401 (re-exported)


def per_example_loss_of(loss):
    """``loss`` (a `keras.losses.Loss`, a Keras loss name, or a function) as a function of (labels, logits) that
    returns one value per example."""
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if isinstance(loss, keras.losses.Loss):
        return loss.call  # unreduced: the distiller weighs and reduces it with its teacher term
    if callable(loss):
        return loss
    raise ValueError(f"`loss` must be a keras.losses.Loss, a Keras loss name or a function (labels, logits) -> "
                     f"per-example loss. Received: loss={loss!r}")


def split_inputs(x):
    """``(student inputs, teacher inputs, cached teacher logits or None)`` of a batch's inputs."""
    if isinstance(x, dict) and STUDENT_INPUTS in x:
        unknown = sorted(set(x) - set(INPUT_KEYS))
        if unknown:
            raise ValueError(f"Unknown distillation input key(s) {unknown}. Allowed: {', '.join(INPUT_KEYS)}")
        student_x = x[STUDENT_INPUTS]
        return student_x, x.get(TEACHER_INPUTS, student_x), x.get(TEACHER_LOGITS)
    return x, x, None


def known_shape(model, which):
    tensors = getattr(model, which, None)
    if not tensors or len(tensors) != 1 or not hasattr(tensors[0], "shape"):
        return None
    return tuple(tensors[0].shape[1:])


def check_compatible(teacher, student):
    """Raises `ValueError` when teacher and student disagree on class count or input shape."""
    for name, model in (("teacher", teacher), ("student", student)):
        if not isinstance(model, keras.Model):
            raise TypeError(f"`{name}` must be a keras.Model. Received: {name}={model!r}")
    t_out, s_out = known_shape(teacher, "outputs"), known_shape(student, "outputs")
    if t_out is not None and s_out is not None and t_out[-1:] != s_out[-1:]:
        raise ValueError(
            "Teacher and student must predict the same number of classes. "
            f"Received: teacher outputs {t_out[-1]}, student outputs {s_out[-1]}"
        )
    t_in, s_in = known_shape(teacher, "inputs"), known_shape(student, "inputs")
    if t_in is not None and s_in is not None and t_in != s_in:
        raise ValueError(
            f"Teacher and student must take the same input shape. Received: teacher {t_in}, student {s_in}"
        )


class Distiller(keras.Model):
    """A frozen teacher, a trainable student, and a per-example loss defined by the subclass.

    Both models must return logits. A student or teacher whose output layer applies softmax/sigmoid is refused
    (`akd_tf.logits.check_logits`), unless ``teacher_outputs="probabilities"`` says the teacher returns
    probabilities: they are then turned into logits (`akd_tf.logits.probabilities_to_logits`) before any loss.
    Cached ``TEACHER_LOGITS`` are logits in either case (`akd_tf.logits.outputs_as_logits` makes them).
    """

    def __init__(self, teacher, student, teacher_outputs="logits", **kwargs):
        # Before 0.2 a constructor flag; now what the student says. Files saved then still carry it: accepted when
        # it agrees with the student.
        regression = kwargs.pop("regression", None)
        if teacher_outputs not in logits_lib.OUTPUTS:
            raise ValueError(f"`teacher_outputs` must be one of {', '.join(logits_lib.OUTPUTS)}. "
                             f"Received: teacher_outputs={teacher_outputs!r}")
        super().__init__(**kwargs)
        check_compatible(teacher, student)
        logits_lib.check_logits(student, "student")
        if teacher_outputs == "logits":
            logits_lib.check_logits(teacher, "teacher")
        self.teacher_outputs = teacher_outputs
        # Read once: the function the teacher applies decides how its probabilities become logits.
        self._teacher_function = (logits_lib.probability_function(teacher) if teacher_outputs == "probabilities"
                                  else None)
        # Without this, Keras would count the teacher's weights as trainable and update them.
        teacher.trainable = False
        self.teacher = teacher
        self.student = student
        self._teacher_output_tail = None
        self._inference = _Unsaved()  # the teacher's inference copy, made by the first fit
        # fit() calls the student, never this model, so mark it built when both parts are.
        if teacher.built and student.built:
            self.built = True
        if regression is not None and bool(regression) != self.regression:
            raise ValueError(f"`regression` is no longer an argument: a student with one output is a regression "
                             f"student (squared error on a score), one with several a classifier. Received: "
                             f"regression={regression!r} and a student with outputs {known_shape(student, 'outputs')}")

    @property
    def regression(self) -> bool:
        """A regression student: one output, a score (STS-B), fitted with squared error by default; a student with
        several outputs is a classifier (cross-entropy on logits). ``compile(loss=)`` overrides either default."""
        shape = known_shape(self.student, "outputs")
        return shape is not None and shape[-1:] == (1,)

    def build(self, input_shape):
        for model in (self.teacher, self.student):
            if not model.built:
                model.build(input_shape)
        self.built = True

    def call(self, inputs, training=False):
        return self.student(split_inputs(inputs)[0], training=training)

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Like `keras.Model.compile`; ``loss`` is the *label* loss, the term on the hard labels that each method
        weighs against its teacher term (the teacher term is the method's own).

        ``loss``: a `keras.losses.Loss` (e.g. ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``:
        the student gives logits), a Keras loss name, or a function ``(labels, student_logits) -> per-example
        loss``. Default: cross-entropy from logits, or squared error for a regression student (one output).
        ``metrics`` are computed on the labels against the student's logits; by default the top-1 accuracy
        (``"accuracy"``), or the squared error for regression.
        """
        self._label_loss_argument = loss
        self._labelled_loss = per_example_loss_of(loss) if loss is not None else None
        if metrics is None:
            metrics = [keras.metrics.MeanSquaredError(name="mse") if self.regression
                       else keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)
        # Built now rather than by the first traced step: variables created while tf.function traces make it trace
        # the whole step twice. (A loaded model needs it too, for its saved optimizer state.)
        if self.built and self.optimizer is not None:
            self.optimizer.build(self.trainable_variables)

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, with the teacher run as its inference copy (made once, then refreshed here: a traced
        step keeps the copy it was traced with, and the teacher's weights may have been set since) and the student's
        BatchNorms on the fused kernel (`akd_tf.nets.fused_batchnorm`)."""
        fused_batchnorm.enable(self.student)
        if self._inference.model is None:
            self._inference.model = fold.inference_copy(self.teacher)
        else:
            fold.refresh(self.teacher, self._inference.model)
        return super().fit(*args, **kwargs)

    def compile_from_config(self, config):
        # Keras skips this for models with a custom compile(); ours takes the same arguments.
        self.compile(**keras.saving.deserialize_keras_object(config))

    def get_compile_config(self):
        # The label loss is ours, not Keras' compiled loss (which would add its own term): saved beside the rest.
        config = super().get_compile_config()
        if config is not None and getattr(self, "_label_loss_argument", None) is not None:
            config = {**config, "loss": keras.saving.serialize_keras_object(self._label_loss_argument)}
        return config

    def labelled_loss(self, labels, student_logits):
        """The label term per example: ``compile``'s ``loss`` (default cross-entropy from logits, or squared
        error for regression)."""
        labelled = getattr(self, "_labelled_loss", None)  # None: compiled without `loss`, or not compiled yet
        if labelled is None:
            labelled = losses.regression_loss if self.regression else losses.label_loss
        return labelled(labels, student_logits)

    def retrace_steps(self):
        """Rebuilds the traced training and test steps, for a subclass whose `uses_teacher` has changed: `fit` calls
        ``self.train_function`` at every step, so the new step runs from the next batch, also within one fit."""
        if self.train_function is not None:
            self.make_train_function(force=True)
        if self.test_function is not None:
            self.make_test_function(force=True)

    # -- what subclasses define -------------------------------------------------------------------
    def uses_teacher(self) -> bool:
        """Does the step being traced need the teacher's logits? Read when the step is traced."""
        return True

    def per_example_loss(self, labels, student_logits, teacher_logits):
        raise NotImplementedError

    # -- the step ---------------------------------------------------------------------------------
    def _teacher_output_shape(self, x):
        if self._teacher_output_tail is None:
            spec = tf.nest.map_structure(
                lambda t: keras.KerasTensor(t.shape, keras.backend.standardize_dtype(t.dtype)), x
            )
            self._teacher_output_tail = tuple(self.teacher.compute_output_spec(spec).shape[1:])
        batch = tf.shape(tf.nest.flatten(x)[0])[0]
        return tf.stack([batch, *self._teacher_output_tail])

    def teacher_logits(self, x):
        """The teacher's logits in inference mode (the cached ones when ``x`` carries them), or zeros
        when the traced step does not need them (phase 2 of AKD never runs the teacher)."""
        _, x, cached = split_inputs(x)
        if cached is not None:
            return tf.stop_gradient(ops.cast(cached, "float32"))
        if not self.uses_teacher():
            return tf.zeros(self._teacher_output_shape(x), "float32")
        outputs = (self._inference.model or self.teacher)(x, training=False)
        if self._teacher_function is not None:
            outputs = logits_lib.probabilities_to_logits(outputs, self._teacher_function)
        return tf.stop_gradient(ops.cast(outputs, "float32"))

    def _replica_loss(self, y, student_logits, teacher_logits, sample_weight):
        per_example = ops.cast(self.per_example_loss(y, student_logits, teacher_logits), "float32")
        if sample_weight is not None:
            per_example = per_example * ops.cast(sample_weight, "float32")
        loss = ops.mean(per_example)
        # Regularisation of the student only: the frozen teacher's terms are constants.
        if self.student.losses:
            loss = loss + ops.cast(ops.sum(self.student.losses), "float32")
        return loss

    @staticmethod
    def _unpack(data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(
                "Distillation needs (inputs, labels) batches: the label phase and the accuracy metric use "
                "the labels. Received batches with inputs only."
            )
        return x, y, sample_weight

    def _log(self, x, y, student_logits, loss, sample_weight):
        # `loss` is this replica's mean over its own examples; weighting it by the replica's batch size
        # makes the (SUM-synchronised) tracker report the mean over the global batch.
        x = split_inputs(x)[0]
        keras_internals.loss_tracker(self).update_state(loss, sample_weight=tf.shape(tf.nest.flatten(x)[0])[0])
        return self.compute_metrics(x, y, student_logits, sample_weight=sample_weight)

    def train_step(self, data):
        x, y, sample_weight = self._unpack(data)
        teacher_logits = self.teacher_logits(x)  # outside the tape: nothing of the teacher is recorded
        with tf.GradientTape() as tape:
            student_logits = ops.cast(self.student(split_inputs(x)[0], training=True), "float32")
            loss = self._replica_loss(y, student_logits, teacher_logits, sample_weight)
            # The optimizer SUMs gradients over replicas, so each contributes 1/N of its mean.
            scaled_loss = loss / tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = self.optimizer.scale_loss(scaled_loss)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._log(x, y, student_logits, loss, sample_weight)

    def test_step(self, data):
        x, y, sample_weight = self._unpack(data)
        student_logits = ops.cast(self.student(split_inputs(x)[0], training=False), "float32")
        loss = self._replica_loss(y, student_logits, self.teacher_logits(x), sample_weight)
        return self._log(x, y, student_logits, loss, sample_weight)

    # -- serialisation ----------------------------------------------------------------------------
    def get_config(self):
        def serialize(model):
            config = keras.saving.serialize_keras_object(model)
            # Their own compile state (e.g. the optimizer the teacher was trained with) is not ours.
            config.pop("compile_config", None)
            return config

        return {"name": self.name, "teacher": serialize(self.teacher), "student": serialize(self.student),
                "teacher_outputs": self.teacher_outputs}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("teacher", "student"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


class _Unsaved:
    """Holds a model out of Keras's and TensorFlow's tracking: not a weight of the distiller, not in its checkpoints
    or ``.keras`` file."""

    model = None


class AnnealedDistiller(Distiller):
    """A `Distiller` whose teacher is annealed: τ_max, the temperature T as a variable that the traced step reads
    (assigning it takes effect at the next step, without retracing), and Φ(T) (`akd_tf.schedule.phi`). What
    Annealing-KD and Continuation-KD share."""

    def __init__(self, teacher, student, max_temperature=10, **kwargs):
        if isinstance(max_temperature, bool) or not isinstance(max_temperature, int) or max_temperature < 1:
            raise ValueError(f"`max_temperature` must be a positive integer. Received: max_temperature={max_temperature!r}")
        super().__init__(teacher, student, **kwargs)
        self.max_temperature = max_temperature
        self._temperature = self.add_weight(
            name="temperature", shape=(), dtype="float32", trainable=False,
            initializer=keras.initializers.Constant(max_temperature),
        )

    @property
    def temperature(self) -> int:
        """The current T in [1, τ_max]; assigning it takes effect at the next step."""
        return int(round(float(ops.convert_to_numpy(self._temperature))))

    @temperature.setter
    def temperature(self, value):
        schedule.annealing_factor(value, self.max_temperature)  # validates the range
        self._temperature.assign(float(value))

    @property
    def phi(self) -> float:
        """Φ(T) for the current temperature."""
        return schedule.annealing_factor(self.temperature, self.max_temperature)

    def annealed_phi(self):
        """Φ(T) as the traced step computes it, from the temperature variable."""
        return schedule.phi(self._temperature, float(self.max_temperature))

    def get_config(self):
        return {**super().get_config(), "max_temperature": self.max_temperature}
