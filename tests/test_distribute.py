"""One AnnealingKD step on 2 logical CPU replicas equals the step on 1 device with the same global batch, for
BN-free models and, with synchronised BatchNorm, for a BatchNorm ResNet-8.

Each strategy runs in its own process (several MirroredStrategy objects in one process can abort
collectives); `distributed_step.py` does the work and saves weights and logged losses.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _run(replicas, tmp_path):
    out = tmp_path / f"replicas{replicas}.npz"

    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "distributed_step.py"), "--replicas", str(replicas), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(1 device, 2 replicas): one process each, shared by the tests of this module."""
    directory = tmp_path_factory.mktemp("distributed")
    return _run(1, directory), _run(2, directory)


def test_two_replicas_match_one_device(runs):
    one, two = runs
    assert int(one["phase1_replicas"]) == 1 and int(two["phase1_replicas"]) == 2
    for phase in (1, 2):
        assert float(two[f"phase{phase}_loss"]) == pytest.approx(float(one[f"phase{phase}_loss"]), rel=1e-6)
        keys = sorted(k for k in one.files if k.startswith(f"phase{phase}_student_"))
        assert keys
        for key in keys:
            np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_sync_batchnorm_resnet_two_replicas_match_one_device(runs):
    one, two = runs
    keys = sorted(k for k in one.files if k.startswith("resnet_sync_student_"))
    assert len(keys) == len([k for k in one.files if k.startswith("resnet_local_student_")]) > 20
    assert float(two["resnet_sync_loss"]) == pytest.approx(float(one["resnet_sync_loss"]), rel=1e-5)
    for key in keys:
        np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-5, err_msg=key)
    # Without synchronisation each replica normalises by its own 8 images: the step differs, so the check above
    # can fail.
    largest = max(float(np.max(np.abs(two[k.replace("sync", "local")] - one[k.replace("sync", "local")])))
                  for k in keys)
    assert largest > 1e-3
