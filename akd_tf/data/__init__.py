"""Input pipelines: TFDS datasets (CIFAR, GLUE) and your own images (`own`)."""

from akd_tf.data import images, own
from akd_tf.data.images import DATASETS, ImageSplits, load

__all__ = ["DATASETS", "ImageSplits", "images", "load", "own"]
