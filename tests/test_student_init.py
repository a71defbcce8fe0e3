"""``--student_init``: the student starts from the weights of a .keras model of its network."""

import os
import subprocess
import sys

import keras
import numpy as np

import akd_tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_student_starts_from_the_given_weights(tmp_path):
    keras.utils.set_random_seed(123)
    init = akd_tf.nets.build("plane2")
    init.save(tmp_path / "init.keras")
    workdir = tmp_path / "run"
    # A step so small that the trained weights stay the initial ones to float32 precision.
    proc = subprocess.run([sys.executable, "-m", "akd_tf.main", "--flagfile=configs/smoke.flags", "--method=scratch",
                           "--phase1_epochs=1", "--phase2_epochs=1", "--learning_rate=1e-12", "--momentum=0",
                           "--weight_decay=0", f"--student_init={tmp_path / 'init.keras'}", f"--workdir={workdir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Read once: the preflight checks the file, the student stage takes the model it checked.
    assert proc.stderr.count(f"Read student_init {tmp_path / 'init.keras'} in ") == 1, proc.stderr[-3000:]
    student = keras.models.load_model(workdir / "student.keras")
    kernels = [(w.path, keras.ops.convert_to_numpy(w)) for w in student.trainable_weights]
    expected = {w.path: keras.ops.convert_to_numpy(w) for w in init.trainable_weights}
    assert len(kernels) == len(expected) == 10  # conv kernels and biases, BN scale and offset, dense
    for path, value in kernels:
        np.testing.assert_allclose(value, expected[path], rtol=0, atol=1e-6, err_msg=path)
