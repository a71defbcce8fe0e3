"""What the speed benchmarks (`benchmarks.throughput`, `.precision`, `.peer_pytorch`, `.pipeline_steady`) share:
their common flags, the CIFAR-10 images they time on, this project's timed steps, the interleaved timer, the
two-speeds check, and the writer of their result files."""

import json
import math
import os
import time

from absl import flags

from akd_tf import machine as machine_lib

FLAGS = flags.FLAGS


def define_flags(images, repeats, output):
    """The flags of a speed benchmark, with its own defaults for the epoch size, the rounds and the output."""
    flags.DEFINE_integer("images", images, "Training images per timed epoch.")
    flags.DEFINE_integer("batch_size", 128, "Global batch size.")
    flags.DEFINE_integer("repeats", repeats, "Timed rounds (after one warm-up round).")
    flags.DEFINE_string("teacher_net", "resnet110", "Teacher network.")
    flags.DEFINE_string("student_net", "resnet8", "Student network.")
    flags.DEFINE_string("data_dir", None, "TFDS data directory (default: $TFDS_DATA_DIR).")
    flags.DEFINE_string("output", output, "Output path prefix.")


def load_images():
    """``--images`` real CIFAR-10 training images in batches of ``--batch_size``, no validation split."""
    from akd_tf import data as data_lib

    return data_lib.load("cifar10", batch_size=FLAGS.batch_size, data_dir=FLAGS.data_dir, validation_size=0,
                         train_size=FLAGS.images, test_size=FLAGS.batch_size)


def sgd():
    """The optimizer of every timed training step: SGD at 0.1 with momentum 0.9, the CIFAR recipe's."""
    import keras

    return keras.optimizers.SGD(0.1, momentum=0.9)


def compiled_student(student_net, jit_compile=False):
    """The student as the timed steps train it: weight decay 1e-4, SGD with momentum 0.9 at 0.1, cross-entropy on
    logits, top-1 accuracy; its BatchNorms as Keras has them (`akd_tf.nets.fused_batchnorm.enable` switches them)."""
    import keras

    from akd_tf import nets

    student = nets.build(student_net, weight_decay=1e-4)
    student.compile(sgd(), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                    jit_compile=jit_compile)
    return student


def training_step(splits, net, jit_compile=False):
    """One epoch of ``net``'s cross-entropy training on ``splits`` as `akd_tf.run` trains a teacher or a student
    from labels (`compiled_student`, its BatchNorms on the fused kernel), a callable."""
    from akd_tf.nets import fused_batchnorm

    model = compiled_student(net, jit_compile)
    fused_batchnorm.enable(model)
    return lambda: model.fit(splits.train, epochs=1, verbose=0)


def project_steps(splits, teacher_net, student_net, jit_compile=False):
    """This project's four timed steps on ``splits``, each a callable that runs one epoch: (a) ``student_train``,
    the student's cross-entropy step (BatchNorms on the fused kernel, as `akd_tf.run` trains it);
    (b) ``teacher_inference``, as the teacher views run it (its `akd_tf.nets.fold.inference_copy`); (c) ``akd_phase1``,
    AnnealingKD's phase-1 step with the teacher in the loop; (d) ``akd_phase1_views``, the same step on cached teacher
    logits. Models are built in the global dtype policy and compiled with ``jit_compile``. Returns the steps and the
    (random-weight) teacher they share: speed does not depend on the weights."""
    import keras

    import akd_tf
    from akd_tf import nets
    from akd_tf.nets import fold

    keras.utils.set_random_seed(0)
    student_train = training_step(splits, student_net, jit_compile)
    teacher = nets.build(teacher_net, weight_decay=1e-4)
    inference = fold.inference_copy(teacher)
    inference.compile(jit_compile=jit_compile)  # for predict
    akd, akd_views = (akd_tf.AnnealingKD(teacher=teacher, student=nets.build(student_net, weight_decay=1e-4),
                                         max_temperature=10) for _ in range(2))
    for model in (akd, akd_views):
        model.compile(optimizer=sgd(), jit_compile=jit_compile)
    n = splits.num_examples["train"]
    # One view is enough for speed: every cached epoch reads images + stored logits the same way.
    print(f"computing the teacher's logits of one augmented view of {n} images (not timed)", flush=True)
    views = splits.with_teacher_logits(inference.predict(splits.teacher_views(1), verbose=0)[None])
    views_epoch = views.train_epochs(0, 1)  # built once, like `splits.train`: each fit re-iterates it
    steps = {
        "student_train": student_train,
        "teacher_inference": lambda: inference.predict(splits.train, verbose=0),
        "akd_phase1": lambda: akd.fit(splits.train, epochs=1, verbose=0),
        "akd_phase1_views": lambda: akd_views.fit(views_epoch, epochs=1, verbose=0),
    }
    return steps, teacher


def interleaved(steps, repeats, images):
    """Seconds per epoch of every step in ``steps`` (name: callable running one epoch of ``images``), over
    ``repeats`` rounds after one warm-up round. Within a round the steps run back to back, so ratios taken within
    a round see the same machine: a change of its speed during the benchmark moves numerator and denominator alike."""
    seconds = {name: [] for name in steps}
    for round_ in range(repeats + 1):
        for name, run in steps.items():
            elapsed = timed(run)
            if round_:  # round 0 traces the functions and fills the caches
                seconds[name].append(elapsed)
        print(f"round {round_}/{repeats}: " + ", ".join(_progress(name, seconds[name][-1], images) for name in steps)
              if round_ else "warm-up done", flush=True)
    return seconds


def _progress(name, seconds, images):
    """A step's round as the progress line shows it: the host reference in seconds (it has no images), steps in
    images/s."""
    return f"{name} {seconds:.2f} s" if name == REFERENCE else f"{name} {images / seconds:.0f} img/s"


def timed(run):
    """Seconds that ``run()`` took."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


# Matmuls per call of `host_reference`: about one second on 2 AVX2 cores, as long as the shortest timed epochs.
REFERENCE_MATMULS = 64
REFERENCE = "host reference"


def host_reference():
    """A step that runs no TensorFlow: ``REFERENCE_MATMULS`` float32 1024x1024 NumPy matmuls (its BLAS on all
    cores). Timed in the same rounds as the steps, its spread is the host's own (neighbours on the machine, clock
    changes): a step no less steady than it has nothing left for this project's code to fix."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    out = np.empty_like(a)

    def run():
        for _ in range(REFERENCE_MATMULS):
            np.matmul(a, a, out=out)

    return run


# A step counts as steady when its median / fastest is at most this much under the host reference's, same rounds.
STEADY_MARGIN = 0.05


def steadiness(seconds):
    """Median over fastest, in rate: the fastest round's seconds over the median round's (1.0 = every round alike)."""
    import numpy as np

    return float(np.min(seconds) / np.median(seconds))


def reference_line(seconds):
    """The result files' line on `host_reference`'s rounds."""
    return (f"Host reference (fixed NumPy matmuls, no TensorFlow, timed in the same rounds): epoch seconds "
            f"{', '.join(f'{t:.2f}' for t in seconds)}; median / fastest {steadiness(seconds):.2f}.")


# A step whose slowest round took over this multiple of its fastest, with the rounds in two groups, ran at two speeds.
TWO_SPEEDS_RATIO = 1.3


def two_speeds(seconds, ratio=TWO_SPEEDS_RATIO):
    """Whether the rounds of one step split into a fast and a slow cluster: slowest / fastest > ``ratio`` and the
    widest gap between neighbouring sorted rounds spans at least half of that spread (on a log scale), so a
    steady drift across the rounds is not flagged, while tf.data's autotuner quantum (some rounds 3.5 s, the
    others exactly 5.1 s: `akd_tf.data.pipeline`) is."""
    times = sorted(float(t) for t in seconds)
    if len(times) < 2 or times[0] <= 0 or times[-1] / times[0] <= ratio:
        return False
    widest = max(b / a for a, b in zip(times, times[1:]))
    return math.log(widest) >= 0.5 * math.log(times[-1] / times[0])


def write(output, report, lines, extra=""):
    """``report`` as ``output``.json; ``lines``, then the machine (``extra`` after its versions) and the command, as
    ``output``.md, printed too."""
    m = report["machine"]
    lines = [*lines, "", f"Machine: {machine_lib.describe(m)}, "
             f"TensorFlow {m['tensorflow']}, Keras {m['keras']}{extra}, {m['date']}.", "",
             f"Command: `{report['command']}`"]
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    with open(output + ".json", "w") as f:
        json.dump(report, f, indent=2)
    with open(output + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


cpu, machine = machine_lib.cpu, machine_lib.machine  # the reading of the machine lives in akd_tf.machine
