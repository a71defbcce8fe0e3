import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The prepared TFDS datasets shared beside the repository (CI sets the same path).
os.environ.setdefault("TFDS_DATA_DIR", str(ROOT.parent / "shared" / "tensorflow_datasets"))
