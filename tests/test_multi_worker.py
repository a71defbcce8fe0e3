"""Two workers on 127.0.0.1 under MultiWorkerMirroredStrategy: the same student as one device (library),
and the CLI's `--strategy=multi_worker` end to end (one set of outputs, written by the chief)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TIMEOUT_S = 300


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _workers(command, num_workers):
    """Starts ``command(index, ports)`` once per worker; returns their outputs. Bounded in time: a worker
    still running at the deadline (e.g. waiting for a dead peer) is killed, never left behind."""
    ports = _free_ports(num_workers)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = [subprocess.Popen(command(i, ports), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                                          "task": {"type": "worker", "index": i}})})
             for i in range(num_workers)]
    try:
        logs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    return logs


def test_two_workers_match_one_device(tmp_path):
    outs = [tmp_path / f"worker{i}.npz" for i in range(2)]
    _workers(lambda i, ports: [sys.executable, os.path.join(HERE, "multi_worker_fit.py"),
                               "--ports", ",".join(map(str, ports)), "--index", str(i), "--out", str(outs[i])], 2)
    two = [dict(np.load(out)) for out in outs]
    one = {k[len("one_"):]: v for k, v in two[0].items() if k.startswith("one_")}  # worker 0's own device
    assert int(one["replicas"]) == 1 and int(two[0]["replicas"]) == 2
    np.testing.assert_allclose(two[0]["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_allclose(two[0]["val_loss"], one["val_loss"], rtol=1e-5)
    keys = sorted(k for k in one if k.startswith("student_"))
    assert keys
    for key in keys:
        np.testing.assert_allclose(two[0][key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)
        np.testing.assert_array_equal(two[1][key], two[0][key], err_msg=key)  # the workers agree exactly
    # A BatchNorm ResNet-8 with --sync_batchnorm: each worker normalises with the global batch's statistics.
    np.testing.assert_allclose(two[0]["sync_bn_loss"], one["sync_bn_loss"], rtol=1e-5)
    keys = sorted(k for k in one if k.startswith("sync_bn_student_"))
    assert len(keys) > 20
    for key in keys:
        np.testing.assert_allclose(two[0][key], one[key], rtol=0, atol=1e-5, err_msg=key)


# `pytest -m slow`: two smoke runs of the CLI in a cluster (~1 min of both cores). The default run keeps the
# equality of two workers with one device (above), which is what the shim (akd_tf/multi_worker.py) must give.
@pytest.mark.slow
def test_cli_on_two_workers_writes_one_run(tmp_path, smoke_workdir):
    workdir = tmp_path / "run"
    logs = _workers(lambda i, ports: [
        sys.executable, "-m", "akd_tf.main", "--flagfile=configs/smoke.flags", f"--workdir={workdir}",
        "--strategy=multi_worker", f"--teacher={os.path.join(smoke_workdir, 'teacher.keras')}"], 2)
    finals = [[line for line in log.splitlines() if line.startswith("student plane2 (akd): test accuracy")]
              for log in logs]
    assert all(len(f) == 1 for f in finals) and finals[0] == finals[1], finals  # both workers evaluated alike
    metrics = json.load(open(workdir / "metrics.json"))
    assert metrics["num_examples"]["train"] == 512 and metrics["phases"]["phase2"]["epochs"] == 1
    assert not [n for n in os.listdir(workdir) if n.startswith(".")] and not (workdir / "checkpoints").exists()
    assert "--strategy=multi_worker" in open(workdir / "flags.txt").read()
