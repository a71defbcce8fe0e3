"""What the speed benchmarks (`benchmarks.throughput`, `benchmarks.precision`) share: their common flags, the
CIFAR-10 images they time on, and the timer."""

import time

from absl import flags

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
