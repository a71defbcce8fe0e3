"""One AnnealingKD step on 2 logical CPU replicas equals the step on 1 device with the same global batch.

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


def test_two_replicas_match_one_device(tmp_path):
    one, two = _run(1, tmp_path), _run(2, tmp_path)
    assert int(one["phase1_replicas"]) == 1 and int(two["phase1_replicas"]) == 2
    for phase in (1, 2):
        assert float(two[f"phase{phase}_loss"]) == pytest.approx(float(one[f"phase{phase}_loss"]), rel=1e-6)
        keys = sorted(k for k in one.files if k.startswith(f"phase{phase}_student_"))
        assert keys
        for key in keys:
            np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)
