"""Annealing-KD from plain Keras code: your own Sequential teacher and student, one `fit` for both phases.

    TFDS_DATA_DIR=../shared/tensorflow_datasets python examples/keras_api.py --train_size=1024 --teacher_epochs=1 --phase1_epochs=2 --phase2_epochs=1

Uses a slice of the real CIFAR-10 (`akd_tf.data.load`); any (images, labels) `tf.data.Dataset` works the same.
Prints the teacher's and the student's test top-1; with a thousand images and a few epochs both stay far below
what the full dataset gives (docs/results.md). The defaults: 4,096 images, teacher 4 epochs, AKD 4 + 2.
"""

import argparse

import keras

import akd_tf
from akd_tf import data


def convnet(widths, name):
    layers = [keras.Input((32, 32, 3))]
    for width in widths:
        layers += [keras.layers.Conv2D(width, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D()]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)]  # logits
    return keras.Sequential(layers, name=name)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_size", type=int, default=4096)
    parser.add_argument("--teacher_epochs", type=int, default=4)
    parser.add_argument("--phase1_epochs", type=int, default=4)
    parser.add_argument("--phase2_epochs", type=int, default=2)
    parser.add_argument("--max_temperature", type=int, default=2)
    parser.add_argument("--validation_size", type=int, default=1000)
    parser.add_argument("--test_size", type=int, default=2000)
    args = parser.parse_args()

    splits = data.load("cifar10", batch_size=128, train_size=args.train_size, validation_size=args.validation_size,
                       test_size=args.test_size)
    keras.utils.set_random_seed(0)

    teacher = convnet((64, 128, 256), "teacher")
    teacher.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
    teacher.fit(splits.train, validation_data=splits.validation, epochs=args.teacher_epochs, verbose=2)

    student = convnet((16, 32), "student")
    akd = akd_tf.AnnealingKD(teacher=teacher, student=student, max_temperature=args.max_temperature)
    akd.compile(optimizer=keras.optimizers.Adam(1e-3))
    akd.fit(splits.train, validation_data=splits.validation, epochs=args.phase1_epochs + args.phase2_epochs,
            callbacks=[akd_tf.AnnealingSchedule(args.phase1_epochs)], verbose=2)

    teacher_acc = teacher.evaluate(splits.test, verbose=0, return_dict=True)["accuracy"]
    student_acc = akd.evaluate(splits.test, verbose=0, return_dict=True)["accuracy"]  # evaluates the student
    print(f"test top-1: teacher {teacher_acc:.4f} ({teacher.count_params():,} params), "
          f"AKD student {student_acc:.4f} ({student.count_params():,} params)")


if __name__ == "__main__":
    main()
