"""One worker of a `MultiWorkerMirroredStrategy` AnnealingKD run (both phases) on 127.0.0.1.

Run as a script, one process per worker: ``python tests/multi_worker_fit.py --ports 5001,5002 --index 0
--out /tmp/w0.npz``. Each worker writes the student's weights and the logged losses. The first models have no
BatchNorm (its statistics are per replica), so the result must equal that of one device with the same
global batch; then one AKD step of a ResNet-8 student with synchronised BatchNorm (``sync_batchnorm=True``),
which must too. Worker 0 also writes that reference (keys ``one_*``): the same fits on its own device, outside
the cluster's strategy.
"""

import argparse
import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

GLOBAL_BATCH = 16
EXAMPLES = 64


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", required=True, help="comma-separated, one per worker")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    workers = [f"127.0.0.1:{port}" for port in args.ports.split(",")]
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": args.index}})

    from akd_tf import run  # noqa: E402

    strategy = run.make_strategy("multi_worker")  # before any other TensorFlow call

    import keras
    import numpy as np
    import tensorflow as tf

    import akd_tf

    def model(name, seed):
        net = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu",
                                kernel_regularizer=keras.regularizers.L2(1e-2)), keras.layers.Dense(3)], name=name)
        rng = np.random.default_rng(seed)
        net.set_weights([rng.normal(size=w.shape).astype("float32") for w in net.get_weights()])
        return net

    rng = np.random.default_rng(0)
    x = rng.normal(size=(EXAMPLES, 6)).astype("float32")
    y = rng.integers(0, 3, size=EXAMPLES)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH).with_options(options)
    val_ds = tf.data.Dataset.from_tensor_slices((x[:32], y[:32])).batch(GLOBAL_BATCH).with_options(options)
    images = rng.normal(size=(GLOBAL_BATCH, 32, 32, 3)).astype("float32")
    bn_data = tf.data.Dataset.from_tensor_slices((images, y[:GLOBAL_BATCH])).batch(GLOBAL_BATCH).with_options(options)

    def fit(strategy):
        """Both fits under ``strategy``: the losses and the students' weights."""
        with strategy.scope():
            akd = akd_tf.AnnealingKD(teacher=model("teacher", 1), student=model("student", 2), max_temperature=2)
            akd.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
        history = akd.fit(train_ds, validation_data=val_ds, epochs=3, verbose=0,
                          callbacks=[akd_tf.AnnealingSchedule(2, 2, verbose=0)])
        keras.utils.set_random_seed(5)
        reference = [akd_tf.nets.build("resnet8").get_weights() for _ in range(2)]
        with strategy.scope():
            teacher, student = akd_tf.nets.build("resnet8"), akd_tf.nets.build("resnet8", sync_batchnorm=True)
            teacher.set_weights(reference[0])
            student.set_weights(reference[1])
            bn_akd = akd_tf.AnnealingKD(teacher=teacher, student=student, max_temperature=2)
            bn_akd.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
        bn_history = bn_akd.fit(bn_data, epochs=1, verbose=0)
        return dict(replicas=strategy.num_replicas_in_sync, loss=np.array(history.history["loss"]),
                    val_loss=np.array(history.history["val_loss"]),
                    **{f"student_{i}": w for i, w in enumerate(akd.student.get_weights())},
                    sync_bn_loss=np.array(bn_history.history["loss"]),
                    **{f"sync_bn_student_{i}": w for i, w in enumerate(student.get_weights())})

    results = fit(strategy)
    if args.index == 0:
        # The reference: the same fits on this worker's one device, outside the cluster's strategy (a process of
        # its own would cost a TensorFlow start).
        results.update({f"one_{k}": v for k, v in fit(tf.distribute.get_strategy()).items()})
    np.savez(args.out, workers=len(workers), **results)


if __name__ == "__main__":
    main()
