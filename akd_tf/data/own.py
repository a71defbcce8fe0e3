"""Your own images: a folder of class folders (``folder:DIR``) or any image-classification dataset prepared under
the TFDS data directory (``tfds:NAME``, features ``image`` and ``label``), read into memory as uint8 RGB images of
one size, with their class names and a seeded, stratified split where the source has none.

``folder:DIR`` has Keras' ``image_dataset_from_directory`` layout, ``DIR/<class>/<image>`` (jpg, jpeg, png, bmp,
gif; a GIF's first frame). When ``DIR`` holds ``train/`` and ``test/`` (and optionally ``validation/``), each
with the same class folders, those are the splits; otherwise every image is split by class. Class names are the
folder names, sorted (the class ids follow that order, as in Keras). ``tfds:NAME`` takes the dataset's ``train``
and ``test`` splits (``validation`` too, when it has one) and its ``label`` feature's names.

Images are resized to ``image_size`` × ``image_size`` (bilinear, antialiased); their pixels stay 0-255, the input
convention of models from outside the tool (`keras.applications` models carry their preprocessing as layers).
Everything wrong with the input is a `ValueError` in one line that names the file or folder and the fix.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

FOLDER, TFDS = "folder:", "tfds:"
PREFIXES = (FOLDER, TFDS)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
SPLIT_DIRS = ("train", "validation", "test")
# Held out of the training images for model selection and for the test report when the source has no such split.
HELD_OUT_SHARE = 0.1
# What a run on your own images gets for the settings it does not give, where that differs from `akd_tf.config`'s
# defaults (the paper's CIFAR recipe, 300 student epochs after a 200-epoch ResNet-110 teacher: days on a CPU).
# Sized for a few thousand photos and minutes of CPU, for a phone: the minimalistic MobileNetV3-Small student,
# whose uint8 file agrees with it on 99 of 100 test photos where the full MobileNetV3-Small's agrees on 85
# (benchmarks/results/own_data.md, own_data_mobilenet_v3_small.md); 40 + 20 epochs (8 per temperature). The
# teacher's, when none is given, is a guess that no benchmark has checked.
RECIPE = {"teacher_net": "mobilenet_v3_large", "student_net": "mobilenet_v3_small_minimalistic",
          "teacher_epochs": 60, "phase1_epochs": 40, "phase2_epochs": 20, "max_temperature": 5, "batch_size": 32,
          "learning_rate": 0.05}


def is_own(name: str) -> bool:
    return isinstance(name, str) and name.startswith(PREFIXES)


@dataclasses.dataclass(frozen=True)
class Images:
    """uint8 images ``[N, size, size, 3]`` and int64 labels ``[N]`` of every split, and the class names."""

    name: str
    splits: dict  # split -> (images, labels)
    label_names: list
    image_size: int
    notes: tuple = ()  # what was done to the input that a user should know (e.g. images resized)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


def fingerprint(name: str, data_dir: str | None = None) -> str:
    """A digest of what ``name`` holds, for caches of what was computed from it: a folder's image files (paths,
    sizes, modification times), a TFDS dataset's name and version."""
    import hashlib

    digest = hashlib.sha1(name.encode())
    if name.startswith(FOLDER):
        root = name[len(FOLDER):]
        for directory, _, files in sorted(os.walk(root)):
            for file in sorted(files):
                if file.lower().endswith(IMAGE_EXTENSIONS):
                    stat = os.stat(os.path.join(directory, file))
                    digest.update(f"{os.path.relpath(os.path.join(directory, file), root)}:{stat.st_size}:"
                                  f"{stat.st_mtime_ns}".encode())
    else:
        digest.update(str(_tfds_builder(name[len(TFDS):], data_dir).info.version).encode())
    return digest.hexdigest()


def label_names(name: str, data_dir: str | None = None) -> list:
    """The class names of ``name``, in class-id order, without reading an image: the checks that need none (the
    folder exists and has at least two classes; the TFDS dataset is prepared and has ``image`` and ``label``).
    `ValueError` (`FileNotFoundError` for a missing path) in one line."""
    if name.startswith(FOLDER):
        return _folder_layout(name[len(FOLDER):])[1]
    return _tfds_label_names(_tfds_builder(name[len(TFDS):], data_dir), name)


def read(name: str, image_size: int, *, validation_size: int | None = None, test_size: int | None = None,
         train_size: int | None = None, seed: int = 0, data_dir: str | None = None, progress=None) -> Images:
    """Every split of ``name`` as `Images`. Where the source has no validation (or test) split, ``validation_size``
    (``test_size``) images are held out of the training images by class, drawn with ``seed`` (default: a tenth
    each, at least one image per class where there are enough); a given test split is cut to its first
    ``test_size`` images. ``train_size`` keeps the first N training images (quick runs)."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"`image_size` must be an integer >= 8. Received: image_size={image_size!r}")
    say = progress or (lambda message: None)
    if name.startswith(FOLDER):
        splits, names, notes = _read_folder(name[len(FOLDER):], image_size, say)
    elif name.startswith(TFDS):
        splits, names, notes = _read_tfds(name[len(TFDS):], image_size, data_dir, say)
    else:
        raise ValueError(f"`dataset` {name!r} is not your own data: {FOLDER}DIR or {TFDS}NAME")
    splits = held_out(splits, len(names), validation_size, test_size, seed, name)
    if train_size is not None:
        splits["train"] = tuple(a[:train_size] for a in splits["train"])
    return Images(name, splits, names, image_size, tuple(notes))


# -- folders ------------------------------------------------------------------------------------------------------
def _folder_layout(root):
    """``(split -> directory, class names)`` of a folder dataset; `ValueError` for a layout that cannot work."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"`dataset` folder not found. Received: {FOLDER}{root!r}; expected a directory of "
                                "class folders, DIR/<class>/<image>.")
    present = {split: os.path.join(root, split) for split in SPLIT_DIRS if os.path.isdir(os.path.join(root, split))}
    if "train" in present and "test" in present:
        layouts = present
    elif present.keys() & {"train", "test"}:
        missing = "test" if "train" in present else "train"
        raise ValueError(f"`dataset` folder {root!r} has {'/'.join(sorted(present))}/ but no {missing}/: give both "
                         "train/ and test/ (validation/ optional), or put the class folders in it directly.")
    else:
        layouts = {"all": root}
    names = None
    for split, directory in layouts.items():
        classes = sorted(entry for entry in os.listdir(directory)
                         if os.path.isdir(os.path.join(directory, entry)) and not entry.startswith("."))
        where = directory if split == "all" else f"{directory}/"
        if len(classes) < 2:
            raise ValueError(f"`dataset` folder {where!r} has {len(classes)} class folder(s) "
                             f"({', '.join(classes) or 'none'}); a classifier needs at least 2, as DIR/<class>/<image>.")
        if names is None:
            names = classes
        elif classes != names:
            raise ValueError(f"`dataset` folder {where!r} has the classes {classes}; train/ has {names}. Every split "
                             "needs the same class folders.")
    return layouts, names


def _read_folder(root, size, say):
    import tensorflow as tf

    layouts, names = _folder_layout(root)
    splits, shapes = {}, set()
    for split, directory in layouts.items():
        images, labels = [], []
        for label, name in enumerate(names):
            folder = os.path.join(directory, name)
            files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
            if not files:
                raise ValueError(f"class folder {folder!r} has no image ({', '.join(IMAGE_EXTENSIONS)}); remove it or "
                                 "add images.")
            say(f"Reading {len(files)} images of class {name!r} ({split if split != 'all' else folder})")
            for file in files:
                path = os.path.join(folder, file)
                try:
                    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
                except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
                    raise ValueError(f"image file {path!r} cannot be decoded (corrupt, or not a "
                                     f"{'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} image): remove or replace it.") from None
                shapes.add(tuple(image.shape[:2]))
                images.append(_resized(image, size))
                labels.append(label)
        splits[split] = (np.stack(images), np.asarray(labels, np.int64))
    return splits, names, _size_note(shapes, size)


# -- TFDS ---------------------------------------------------------------------------------------------------------
def _tfds_builder(name, data_dir):
    from akd_tf.data.prepared import builder as prepared

    builder = prepared(name, data_dir)
    features = builder.info.features
    missing = [key for key in ("image", "label") if key not in features]
    if missing:
        raise ValueError(f"`dataset` {TFDS}{name} has no {' or '.join(missing)} feature (it has "
                         f"{', '.join(features)}); {TFDS}NAME reads image-classification datasets.")
    if "train" not in builder.info.splits:
        raise ValueError(f"`dataset` {TFDS}{name} has no train split (it has {', '.join(builder.info.splits)}).")
    return builder


def _tfds_label_names(builder, name):
    label = builder.info.features["label"]
    if getattr(label, "names", None):
        return list(label.names)
    num_classes = getattr(label, "num_classes", None)
    if not num_classes:
        raise ValueError(f"`dataset` {name}: its label feature declares no classes.")
    return [str(i) for i in range(num_classes)]


def _read_tfds(name, size, data_dir, say):
    import tensorflow as tf

    builder = _tfds_builder(name, data_dir)
    names = _tfds_label_names(builder, f"{TFDS}{name}")
    splits, shapes = {}, set()
    available = [s for s in ("train", "validation", "test") if s in builder.info.splits]
    for split in available:
        say(f"Reading {TFDS}{name} {split} ({builder.info.splits[split].num_examples:,} images)")
        images, labels = [], []
        for example in builder.as_dataset(split=split, shuffle_files=False):
            image = example["image"]
            if image.shape[-1] == 1:
                image = tf.image.grayscale_to_rgb(image)
            shapes.add(tuple(image.shape[:2]))
            images.append(_resized(image, size))
            labels.append(int(example["label"]))
        splits[split] = (np.stack(images), np.asarray(labels, np.int64))
    if "test" not in splits:
        splits = {"all" if split == "train" else split: arrays for split, arrays in splits.items()}
    return splits, names, _size_note(shapes, size)


# -- shared -------------------------------------------------------------------------------------------------------
def _resized(image, size):
    import tensorflow as tf

    if tuple(image.shape[:2]) == (size, size):
        return image.numpy().astype(np.uint8)
    resized = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)


def _size_note(shapes, size):
    if shapes == {(size, size)}:
        return []
    listed = ", ".join(f"{h}×{w}" for h, w in sorted(shapes)[:4]) + (", …" if len(shapes) > 4 else "")
    return [f"images of {len(shapes)} size(s) ({listed}) resized to {size}×{size}"]


def held_out(splits, num_classes, validation_size, test_size, seed, name, unit="images"):
    """The train/validation/test splits: a source's own, or held out of its examples (``unit``) by class."""
    for what, value in (("validation_size", validation_size), ("test_size", test_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"`{what}` must be an integer >= 0. Received: {what}={value!r}")
    rng = np.random.default_rng(seed)
    pool = splits.pop("all", None)
    if pool is not None:  # no test split: test first, then validation, from all the images
        test_count = _default_count(len(pool[1]), num_classes) if test_size is None else test_size
        if not test_count:
            raise ValueError(f"`dataset` {name} has {len(pool[1])} {unit} in {num_classes} classes, too few to hold out "
                             f"test {unit} by default: give `test_size`" + (", or a test/ folder beside train/."
                                                                             if unit == "images" else "."))
        splits["train"], splits["test"] = _stratified(pool, test_count, rng, "test_size", name, unit)
    elif test_size is not None:
        splits["test"] = tuple(a[:test_size] for a in splits["test"])
    if "validation" not in splits:
        train = splits["train"]
        count = _default_count(len(train[1]), num_classes) if validation_size is None else validation_size
        if count:
            splits["train"], splits["validation"] = _stratified(train, count, rng, "validation_size", name, unit)
    present = set(np.unique(splits["train"][1]))
    if len(present) < num_classes:
        raise ValueError(f"`dataset` {name}: the training {unit} cover {len(present)} of its {num_classes} classes; "
                         f"every class needs training {unit} (fewer held out, or more {unit}).")
    return splits


def _default_count(total, num_classes):
    return max(num_classes, int(round(HELD_OUT_SHARE * total))) if total >= 4 * num_classes else 0


def _stratified(arrays, count, rng, what, name, unit="images"):
    """``(rest, held out)``: ``count`` examples held out, each class in proportion to its size (largest remainders),
    drawn with ``rng``; every class keeps at least one image in the rest."""
    images, labels = arrays
    total = len(labels)
    if count >= total:
        raise ValueError(f"`{what}` must be smaller than the {total} {unit} it is held out of ({name}). "
                         f"Received: {what}={count}")
    classes, sizes = np.unique(labels, return_counts=True)
    exact = count * sizes / total
    shares = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - shares))[: count - shares.sum()]:
        shares[i] += 1
    shares = np.minimum(shares, sizes - 1)
    held = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, shares)])
    held.sort()
    keep = np.setdiff1d(np.arange(total), held)
    return (images[keep], labels[keep]), (images[held], labels[held])
