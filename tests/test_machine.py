"""akd_tf.machine: the machine a figure was measured on, as data and as the line result files print."""

import os

from akd_tf import machine


def test_cpu_is_read_without_tensorflow_and_counts_the_usable_cores():
    found = machine.cpu()
    assert set(found) == {"cpu", "cpu_units", "cores"} and found["cpu"]
    assert found["cores"] == len(os.sched_getaffinity(0))
    assert set(found["cpu_units"]) <= {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
                                       "amx_int8"}


def test_describe_names_the_units_or_their_absence():
    assert machine.describe({"cpu": "AMD EPYC", "cpu_units": ["avx2", "avx512f"], "cores": 2}) == (
        "AMD EPYC (avx2, avx512f), 2 cores")
    assert machine.describe({"cpu": "Cortex-A76", "cpu_units": [], "cores": 4}) == "Cortex-A76 (no AVX2), 4 cores"
