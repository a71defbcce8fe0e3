"""Your own images and teacher, for trying the own-data pipeline (docs/own-data.md) without a photo collection:

    TFDS_DATA_DIR=../shared/tensorflow_datasets python examples/own_images.py --output=runs/photos --per_class=100 --teacher=runs/my_teacher.keras --teacher_per_class=200 --teacher_epochs=3

writes a folder of real photos in Keras' class-folder layout, ``<output>/<class>/<n>.png`` for airplane, cat and
ship (CIFAR-10 *test* images upscaled to 64×64), and trains a small teacher of "your own" for the same classes: a
CNN that takes pixels 0-255, carries its rescaling as a layer and returns logits, saved as a .keras file. As a
user's teacher usually has, it learnt from more photos than the folder holds: ``--teacher_per_class`` CIFAR-10
*training* images of each class, so it has seen none of the folder's. The command above is a quick try (a weak
teacher in seconds); the defaults, 1,500 photos a class for 15 epochs (about 2 minutes on 2 cores), give a teacher
of about 80 % on the folder's photos (benchmarks/results/own_data.md). ``make_folder`` and ``train_teacher`` do
each part.
"""

import argparse
import os

import numpy as np

CLASSES = {0: "airplane", 3: "cat", 8: "ship"}


def _photos(split, per_class, size, data_dir):
    """``per_class`` CIFAR-10 ``split`` images of each of `CLASSES`, upscaled to ``size``: (uint8 images, class
    index in `CLASSES` order, CIFAR-10 index)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    data = tfds.load("cifar10", split=split, data_dir=data_dir or os.environ.get("TFDS_DATA_DIR"), batch_size=-1)
    images, labels = data["image"].numpy(), data["label"].numpy()
    chosen = np.concatenate([np.flatnonzero(labels == label)[:per_class] for label in CLASSES])
    big = tf.image.resize(images[chosen], (size, size), method="bicubic").numpy()
    classes = np.searchsorted(sorted(CLASSES), labels[chosen])  # folder names sort as the CIFAR ids do
    return np.clip(np.round(big), 0, 255).astype(np.uint8), classes, chosen


def make_folder(root, per_class=100, size=64, data_dir=None):
    import tensorflow as tf

    images, classes, indices = _photos("test", per_class, size, data_dir)
    for name in CLASSES.values():
        os.makedirs(os.path.join(root, name), exist_ok=True)
    for image, k, i in zip(images, classes, indices):
        tf.io.write_file(os.path.join(root, CLASSES[sorted(CLASSES)[k]], f"{i}.png"), tf.io.encode_png(image))
    return root


def train_teacher(path, per_class=1500, epochs=15, size=64, seed=0, data_dir=None):
    import keras

    keras.utils.set_random_seed(seed)
    images, classes, _ = _photos("train", per_class, size, data_dir)
    layers = keras.layers
    teacher = keras.Sequential([
        keras.Input((size, size, 3)), layers.Rescaling(1 / 255.0), layers.RandomFlip("horizontal", seed=seed),
        layers.Conv2D(16, 3, padding="same", use_bias=False), layers.BatchNormalization(), layers.ReLU(),
        layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding="same", use_bias=False), layers.BatchNormalization(), layers.ReLU(),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", use_bias=False), layers.BatchNormalization(), layers.ReLU(),
        layers.MaxPooling2D(),
        layers.Conv2D(128, 3, padding="same", use_bias=False), layers.BatchNormalization(), layers.ReLU(),
        layers.GlobalAveragePooling2D(), layers.Dense(len(CLASSES)),
    ], name="my_teacher")
    teacher.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
                        2e-3, epochs * -(-len(images) // 64))),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    teacher.fit(images.astype("float32"), classes, batch_size=64, epochs=epochs, shuffle=True, verbose=2)
    teacher.save(path)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="the folder to write, <output>/<class>/<n>.png")
    parser.add_argument("--per_class", type=int, default=100, help="images per class (at most 1,000)")
    parser.add_argument("--teacher", required=True, help="the .keras file of the teacher trained on them")
    parser.add_argument("--teacher_per_class", type=int, default=1500,
                        help="CIFAR-10 training images of each class the teacher learns from (at most 5,000)")
    parser.add_argument("--teacher_epochs", type=int, default=15)
    args = parser.parse_args()
    make_folder(args.output, args.per_class)
    print(f"Wrote {args.per_class} images of each of {', '.join(CLASSES.values())} to {args.output}/")
    train_teacher(args.teacher, per_class=args.teacher_per_class, epochs=args.teacher_epochs)
    print(f"Teacher (pixels 0-255 in, logits out) saved to {args.teacher}")


if __name__ == "__main__":
    main()
