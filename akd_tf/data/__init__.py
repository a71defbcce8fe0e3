"""Input pipelines over TFDS."""

from akd_tf.data import images
from akd_tf.data.images import DATASETS, ImageSplits, load

__all__ = ["DATASETS", "ImageSplits", "images", "load"]
