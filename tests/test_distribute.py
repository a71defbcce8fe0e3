"""One AnnealingKD (and one ContinuationKD) step on 2 logical CPU replicas equals the step on 1 device with the same
global batch, for BN-free models and, with synchronised BatchNorm, for a BatchNorm ResNet-8.

`distributed_step.py` does the work in a process of its own (at most one MirroredStrategy per process: several
can abort collectives; the 1-device run's OneDeviceStrategy shares it) and saves weights and logged losses.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from akd_tf.methods import registry

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(1 device, 2 replicas), from one process, shared by the tests of this module."""
    directory = tmp_path_factory.mktemp("distributed")
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "distributed_step.py"), "--replicas", "1,2", "--out", str(directory)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(directory / "replicas1.npz"), np.load(directory / "replicas2.npz")


def test_two_replicas_match_one_device(runs):
    one, two = runs
    assert int(one["phase1_replicas"]) == 1 and int(two["phase1_replicas"]) == 2
    for phase in (1, 2):
        assert float(two[f"phase{phase}_loss"]) == pytest.approx(float(one[f"phase{phase}_loss"]), rel=1e-6)
        keys = sorted(k for k in one.files if k.startswith(f"phase{phase}_student_"))
        assert keys
        for key in keys:
            np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_continuation_kd_two_replicas_match_one_device(runs):
    one, two = runs
    assert float(two["ckd_loss"]) == pytest.approx(float(one["ckd_loss"]), rel=1e-6)
    keys = sorted(k for k in one.files if k.startswith("ckd_student_"))
    assert len(keys) == 4
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


@pytest.mark.parametrize("name", registry.names())
def test_every_registered_method_two_replicas_match_one_device(runs, name):
    one, two = runs
    assert float(two[f"method_{name}_loss"]) == pytest.approx(float(one[f"method_{name}_loss"]), rel=1e-5)
    keys = sorted(k for k in one.files if k.startswith(f"method_{name}_student_"))
    assert keys
    for key in keys:  # float rounding of reductions in another order, amplified by a method's loss weights
        np.testing.assert_allclose(two[key], one[key], rtol=1e-4, atol=1e-5, err_msg=key)
