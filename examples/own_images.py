"""Your own images and teacher, for trying the own-data pipeline (docs/own-data.md) without a photo collection:

    TFDS_DATA_DIR=../shared/tensorflow_datasets python examples/own_images.py --output=runs/photos --per_class=100 --teacher=runs/my_teacher.keras

writes a folder of real photos in Keras' class-folder layout, ``<output>/<class>/<n>.png`` for airplane, cat and
ship (CIFAR-10 test images upscaled to 64×64), and trains a small teacher of "your own" on it: a CNN that takes
pixels 0-255, carries its rescaling as a layer and returns logits, saved as a .keras file (a few seconds of
training: expect a weak teacher, 50-60 % on its own images). ``make_folder`` and ``train_teacher`` do each part.
"""

import argparse
import os

import numpy as np

CLASSES = {0: "airplane", 3: "cat", 8: "ship"}


def make_folder(root, per_class=100, size=64, data_dir=None):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    data = tfds.load("cifar10", split="test", data_dir=data_dir or os.environ.get("TFDS_DATA_DIR"), batch_size=-1)
    images, labels = data["image"].numpy(), data["label"].numpy()
    for label, name in CLASSES.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        chosen = np.flatnonzero(labels == label)[:per_class]
        big = tf.image.resize(images[chosen], (size, size), method="bicubic").numpy()
        for i, image in zip(chosen, np.clip(np.round(big), 0, 255).astype(np.uint8)):
            tf.io.write_file(os.path.join(root, name, f"{i}.png"), tf.io.encode_png(image))
    return root


def train_teacher(root, path, epochs=8, size=64, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    train = keras.utils.image_dataset_from_directory(root, image_size=(size, size), batch_size=32, seed=seed,
                                                     label_mode="int")
    layers = keras.layers
    teacher = keras.Sequential([
        keras.Input((size, size, 3)), layers.Rescaling(1 / 255.0),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu"), layers.GlobalAveragePooling2D(),
        layers.Dense(len(CLASSES)),
    ], name="my_teacher")
    teacher.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    teacher.fit(train, epochs=epochs, verbose=0)
    teacher.save(path)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="the folder to write, <output>/<class>/<n>.png")
    parser.add_argument("--per_class", type=int, default=100, help="images per class (at most 1,000)")
    parser.add_argument("--teacher", required=True, help="the .keras file of the teacher trained on them")
    parser.add_argument("--teacher_epochs", type=int, default=15)
    args = parser.parse_args()
    make_folder(args.output, args.per_class)
    print(f"Wrote {args.per_class} images of each of {', '.join(CLASSES.values())} to {args.output}/")
    train_teacher(args.output, args.teacher, epochs=args.teacher_epochs)
    print(f"Teacher (pixels 0-255 in, logits out) saved to {args.teacher}")


if __name__ == "__main__":
    main()
