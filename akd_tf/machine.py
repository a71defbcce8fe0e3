"""The machine a figure was measured on, as data: CPU model, the vector/matrix units that change TensorFlow's
speed, cores, platform, versions and date. Every result file and export report carries it."""

import datetime
import os
import platform


def cpu() -> dict:
    """The processor a figure was measured on, as data (no TensorFlow import): its model, the vector/matrix units that
    change TensorFlow's speed, and the cores this process may use."""
    model, cpu_flags = platform.processor() or "", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("", "x86_64", "aarch64"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not cpu_flags:
                    cpu_flags = line.split(":", 1)[1].split()
    except OSError:  # not Linux: the model from platform alone
        pass
    units = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {"cpu": model or "unknown", "cpu_units": [u for u in units if u in cpu_flags], "cores": cores}


def machine() -> dict:
    """`cpu` with the platform, the versions that set the speed, and the date."""
    import importlib.metadata

    import keras
    import tensorflow as tf

    versions = {}
    for package in ("ai-edge-litert", "mediapipe"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {**cpu(), "platform": platform.platform(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__, **versions,
            "date": datetime.date.today().isoformat()}


def describe(m: dict) -> str:
    """The processor part of a result file's machine line: ``AMD EPYC (avx2, avx512f), 2 cores``."""
    return f"{m['cpu']} ({', '.join(m['cpu_units']) or 'no AVX2'}), {m['cores']} cores"
