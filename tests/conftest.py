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


# Test files, heaviest first (their time in a --durations run, most to least): pytest-xdist hands whole files
# (--dist loadfile) to the workers in collection order, so a heavy file collected last ran alone at the end
# while the other worker idled. Files not named keep their order, after these.
HEAVY_FIRST = ("test_docs.py", "test_tasks_text.py", "test_teacher_views.py", "test_takd.py", "test_cifar_study.py",
               "test_precision_cli.py", "test_resume.py",
               "test_multi_worker.py", "test_distribute.py", "test_export.py", "test_main.py", "test_continuation.py",
               "test_export_user.py", "test_precision.py", "test_recheck.py", "test_text_input.py", "test_logits.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests keep their order


@pytest.fixture(scope="session")
def smoke_workdir(tmp_path_factory, worker_id):
    """One run of the smoke config on the real CIFAR-10, shared by the CLI and export tests (read only), made
    once per test session: under pytest-xdist the first worker to want it makes it and the other waits."""
    from akd_tf import files

    if worker_id == "master":  # no xdist: this session's own directory
        root = tmp_path_factory.getbasetemp()
    else:  # the directory the workers of this session share
        root = tmp_path_factory.getbasetemp().parent
    workdir = root / "smoke_shared"
    with files.one_maker(str(workdir), say=lambda message, **_: None):
        if not (workdir / "metrics.json").exists():
            proc = subprocess.run([sys.executable, "-m", "akd_tf.main", "--flagfile=configs/smoke.flags",
                                   f"--workdir={workdir}", "--overwrite"],
                                  cwd=ROOT, capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, proc.stderr[-4000:]
    return str(workdir)
