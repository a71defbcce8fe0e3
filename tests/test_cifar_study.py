"""benchmarks.cifar_study's table parts that need no run (the study end to end: tests/test_views_takd.py)."""

from benchmarks.cifar_study import runs_cpus

AVX2 = {"cpu": "AMD EPYC", "cpu_units": ["avx2"], "cores": 2}
AVX512 = {"cpu": "AMD EPYC", "cpu_units": ["avx2", "avx512f"], "cores": 2}


def test_runs_cpus_groups_runs_by_cpu_in_study_order_and_names_unrecorded_ones():
    methods = {"kd": {"seeds": [0, 1], "machine": [AVX512, AVX2]},
               "akd": {"seeds": [0, 1], "machine": [None, AVX2]},
               "takd": {"seeds": [0], "machine": [None]}}  # records written before runs' CPUs were kept
    assert runs_cpus(methods) == ("CPU of each run (the attempt that finished it): "
                                  "AMD EPYC (avx2, avx512f), 2 cores: kd_seed0; "
                                  "AMD EPYC (avx2), 2 cores: kd_seed1, akd_seed1; "
                                  "not recorded: akd_seed0, takd_seed0.")
