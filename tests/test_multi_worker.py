"""Two workers on 127.0.0.1 under MultiWorkerMirroredStrategy train the same student as one worker."""

import os
import socket
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT_S = 240


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _cluster(num_workers, tmp_path):
    ports = ",".join(map(str, _free_ports(num_workers)))
    outs = [tmp_path / f"w{num_workers}_{i}.npz" for i in range(num_workers)]
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "multi_worker_fit.py"), "--ports", ports,
                               "--index", str(i), "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i, out in enumerate(outs)]
    try:
        logs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:  # bounded: a worker waiting for a dead peer is stopped, never left behind
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    return [np.load(out) for out in outs]


def test_two_workers_match_one_worker(tmp_path):
    (one,) = _cluster(1, tmp_path)
    two = _cluster(2, tmp_path)
    assert int(one["replicas"]) == 1 and int(two[0]["replicas"]) == 2
    np.testing.assert_allclose(two[0]["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_allclose(two[0]["val_loss"], one["val_loss"], rtol=1e-5)
    keys = sorted(k for k in one.files if k.startswith("student_"))
    assert keys
    for key in keys:
        np.testing.assert_allclose(two[0][key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)
        np.testing.assert_array_equal(two[1][key], two[0][key], err_msg=key)  # the workers agree exactly
