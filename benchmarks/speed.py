"""What the speed benchmarks (`benchmarks.throughput`, `benchmarks.precision`) share: their common flags, the
CIFAR-10 images they time on, and the timer."""

import math
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


def timed(run):
    """Seconds that ``run()`` took."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


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


cpu, machine = machine_lib.cpu, machine_lib.machine  # the reading of the machine lives in akd_tf.machine
