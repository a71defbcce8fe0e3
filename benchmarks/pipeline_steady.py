"""Epoch times of a ResNet-8 on the real CIFAR-10 pipeline as the CLI runs it (45,000 training images, a 5,000-image
validation pass every epoch), with tf.data's autotuner on (how every pipeline ran before `akd_tf.data.pipeline`)
and off (how they run now), in alternating blocks of epochs, each block a fresh ``fit``.

    python -m benchmarks.pipeline_steady --epochs=4 --blocks=2

Writes ``--output``.json/.md: every epoch's seconds per setting, medians, whether a setting's epochs split into
two speeds (`benchmarks.speed.two_speeds`), the command and the machine.
"""

import time

import numpy as np
from absl import app, flags

from akd_tf.command import command_line
from benchmarks import speed

FLAGS = flags.FLAGS


def define_flags():
    """Defined when run as a program only: tests import this module beside others that define the same flags."""
    flags.DEFINE_integer("epochs", 4, "Timed epochs per block (after one untimed epoch that traces).")
    flags.DEFINE_integer("blocks", 2, "Blocks per setting, alternating between the settings.")
    flags.DEFINE_integer("train_size", None, "Training images (default: all 45,000).")
    flags.DEFINE_string("data_dir", None, "TFDS data directory (default: $TFDS_DATA_DIR).")
    flags.DEFINE_string("output", "benchmarks/results/pipeline_steady", "Output path prefix.")


SETTINGS = {"autotune": "tf.data autotuner on (before)", "steady": "autotuner off, fixed parallelism (now)"}


def _epochs(autotune):
    import keras

    from akd_tf import data as data_lib
    from akd_tf.data import pipeline
    from akd_tf.nets import fused_batchnorm

    shipped = pipeline.options
    if autotune:
        def options():  # the pipelines as they were: AUTOTUNE parallelism and prefetch, autotuner on
            opts = shipped()
            opts.autotune.enabled = True
            return opts
        pipeline.options = options
    try:
        splits = data_lib.load("cifar10", batch_size=128, data_dir=FLAGS.data_dir, validation_size=5000,
                               train_size=FLAGS.train_size, shuffle_seed=0)
        keras.utils.set_random_seed(0)
        model = speed.compiled_student("resnet8")
        fused_batchnorm.enable(model)  # as the CLI trains it
        seconds = []

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                seconds.append(time.perf_counter() - self.start)
                print(f"  epoch {epoch + 1}: {seconds[-1]:.1f} s", flush=True)

        epochs = FLAGS.epochs + 1
        model.fit(splits.train_epochs(0, epochs), steps_per_epoch=splits.steps_per_epoch, epochs=epochs,
                  validation_data=splits.validation, verbose=0, callbacks=[Timer()])
        return seconds[1:], splits.num_examples["train"]
    finally:
        pipeline.options = shipped


def main(argv):
    del argv
    seconds = {name: [] for name in SETTINGS}
    for block in range(FLAGS.blocks):
        for name in SETTINGS:
            print(f"block {block + 1}/{FLAGS.blocks}: {SETTINGS[name]}", flush=True)
            times, n = _epochs(autotune=name == "autotune")
            seconds[name] += times
    report = {
        "command": command_line("benchmarks.pipeline_steady", [FLAGS[k].serialize() for k in (
            "epochs", "blocks", "train_size") if FLAGS[k].value is not None]),
        "machine": speed.machine(),
        "train_images": n, "validation_images": 5000,
        "epoch_seconds": seconds,
        "median_seconds": {k: float(np.median(v)) for k, v in seconds.items()},
        "two_speeds": {k: speed.two_speeds(v) for k, v in seconds.items()},
    }
    lines = [
        f"ResNet-8 epochs on the real CIFAR-10 pipeline ({n:,} training images, a 5,000-image validation pass each "
        f"epoch), batch 128, {FLAGS.blocks} blocks of {FLAGS.epochs} epochs per setting",
        "",
        "| pipeline | epoch seconds | median | slowest / fastest | two speeds |",
        "|---|---|---|---|---|",
        *(f"| {SETTINGS[k]} | {', '.join(f'{t:.1f}' for t in v)} | {np.median(v):.1f} | {max(v) / min(v):.2f} | "
          f"{'yes' if report['two_speeds'][k] else 'no'} |" for k, v in seconds.items()),
    ]
    speed.write(FLAGS.output, report, lines)


if __name__ == "__main__":
    define_flags()
    app.run(main)
