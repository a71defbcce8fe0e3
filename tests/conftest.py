import os
import pathlib
import subprocess
import sys

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The prepared TFDS datasets shared beside the repository (CI sets the same path).
os.environ.setdefault("TFDS_DATA_DIR", str(ROOT.parent / "shared" / "tensorflow_datasets"))


@pytest.fixture(scope="session")
def smoke_workdir(tmp_path_factory):
    """One run of the smoke config on the real CIFAR-10, shared by the CLI and export tests."""
    workdir = str(tmp_path_factory.mktemp("smoke"))
    proc = subprocess.run([sys.executable, "-m", "akd_tf.main", "--flagfile=configs/smoke.flags", f"--workdir={workdir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir
