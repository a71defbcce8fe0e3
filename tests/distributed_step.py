"""Runs one AnnealingKD training step per phase and one ContinuationKD step under a given number of logical CPU
replicas and writes the student's weights and the logged losses to an .npz file: small dense models (no
BatchNorm), then a ResNet-8 student with BatchNorm, synchronised (``sync_batchnorm=True``) and not; then an epoch of
every registered method as the run pipeline builds it.

Run as a script, at most one MirroredStrategy per process (several in one process can abort collectives); the
1-device run takes a OneDeviceStrategy, so it shares the process and its TensorFlow start:
``python tests/distributed_step.py --replicas 1,2 --out /tmp/dir`` writes ``replicas1.npz`` and ``replicas2.npz``.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

GLOBAL_BATCH = 16


def _model(name, units, l2):
    import keras

    reg = keras.regularizers.L2(l2) if l2 else None
    return keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8, activation="relu", kernel_regularizer=reg),
         keras.layers.Dense(units, kernel_regularizer=reg)],
        name=name,
    )


def _set_weights(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", required=True, help="comma-separated replica counts, e.g. 1,2")
    parser.add_argument("--out", required=True, help="directory for replicas<N>.npz")
    args = parser.parse_args()
    counts = [int(n) for n in args.replicas.split(",")]
    if sum(n > 1 for n in counts) > 1:
        parser.error(f"at most one count above 1 (one MirroredStrategy per process). Received: {args.replicas}")

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    for n in counts:
        strategy = tf.distribute.MirroredStrategy(devices[:n]) if n > 1 else tf.distribute.OneDeviceStrategy(devices[0])
        np.savez(os.path.join(args.out, f"replicas{n}.npz"), **_steps(strategy))


def _steps(strategy):
    import keras

    import akd_tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH, 6)).astype("float32")
    y = rng.integers(0, 3, size=GLOBAL_BATCH)
    results = {}
    for phase in (1, 2):
        with strategy.scope():
            teacher = _model("teacher", 3, 0.0)
            student = _model("student", 3, 1e-2)  # a regulariser, to check its scaling too
            _set_weights(teacher, 1)
            _set_weights(student, 2)
            akd = akd_tf.AnnealingKD(teacher=teacher, student=student, max_temperature=4)
            akd.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        akd.phase = phase
        akd.temperature = 3  # Φ = 0.5
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
        history = akd.fit(data, epochs=1, verbose=0)
        results[f"phase{phase}_loss"] = np.float64(history.history["loss"][0])
        for i, w in enumerate(student.get_weights()):
            results[f"phase{phase}_student_{i}"] = w
        results[f"phase{phase}_replicas"] = np.int64(strategy.num_replicas_in_sync)

    # Continuation-KD: both terms weighted (ψ = 0.4) and a margin that switches some examples' teacher term off.
    with strategy.scope():
        teacher = _model("teacher", 3, 0.0)
        student = _model("student", 3, 1e-2)
        _set_weights(teacher, 1)
        _set_weights(student, 2)
        ckd = akd_tf.ContinuationKD(teacher=teacher, student=student, max_temperature=4, margin=0.5)
        ckd.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    ckd.temperature, ckd.label_weight = 3, 0.4
    history = ckd.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH), epochs=1, verbose=0)
    results["ckd_loss"] = np.float64(history.history["loss"][0])
    for i, w in enumerate(student.get_weights()):
        results[f"ckd_student_{i}"] = w

    # BatchNorm nets: per-replica statistics differ from the global batch's unless synchronised.
    images = rng.normal(size=(GLOBAL_BATCH, 32, 32, 3)).astype("float32")
    keras.utils.set_random_seed(5)
    reference = {who: akd_tf.nets.build("resnet8").get_weights() for who in ("teacher", "student")}
    for sync in (True, False):
        with strategy.scope():
            teacher = akd_tf.nets.build("resnet8")
            student = akd_tf.nets.build("resnet8", weight_decay=1e-3, sync_batchnorm=sync)
            teacher.set_weights(reference["teacher"])
            student.set_weights(reference["student"])
            akd = akd_tf.AnnealingKD(teacher=teacher, student=student, max_temperature=4)
            akd.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        akd.temperature = 3
        data = tf.data.Dataset.from_tensor_slices((images, y)).batch(GLOBAL_BATCH)
        history = akd.fit(data, epochs=1, verbose=0)
        name = "resnet_sync" if sync else "resnet_local"
        results[f"{name}_loss"] = np.float64(history.history["loss"][0])
        for i, w in enumerate(student.get_weights()):  # kernels, BN scale/offset and moving statistics
            results[f"{name}_student_{i}"] = w
    results.update(_registered_methods(strategy, x, y))
    return results


def _registered_methods(strategy, x, y):
    """Every registered method as the run pipeline builds it (`akd_tf.methods.registry`), one epoch of two steps
    with its own callbacks: ``method_<name>_loss`` and ``method_<name>_student_<i>``."""
    import keras

    from akd_tf.config import Config
    from akd_tf.methods import registry

    config = Config(phase1_epochs=2, phase2_epochs=1, max_temperature=2, verbose=0)
    results = {}
    for name in registry.names():
        method = registry.get(name)
        with strategy.scope():
            teacher = _model("teacher", 3, 0.0)
            student = _model("student", 3, 1e-2)
            _set_weights(teacher, 1)
            _set_weights(student, 2)
            training = method.build(teacher, student, config, optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH // 2)
        history = training.model.fit(data, epochs=1, verbose=0,
                                     callbacks=[*training.first, *training.early, *training.stateful])
        results[f"method_{name}_loss"] = np.float64(history.history["loss"][0])
        for i, w in enumerate(student.get_weights()):
            results[f"method_{name}_student_{i}"] = w
    return results


if __name__ == "__main__":
    main()
