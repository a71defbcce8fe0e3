"""Every bad input of the CLI: exit status 2 and one line on stderr naming what was received and what is
allowed, before any training starts. The cases run in one interpreter through the CLI's parser and main
(tests/cli_cases.py); one of them runs as a real `python -m akd_tf.main` process instead."""

import concurrent.futures
import json
import os
import subprocess
import sys
import types

import keras
import pytest
import tensorflow as tf

import cli_cases

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = "--flagfile=configs/smoke.flags"
GLUE = "--flagfile=configs/glue_tiny_smoke.flags"


def _teacher(path, input_shape=(32, 32, 3), classes=10, unsafe=False, activation=None):
    layers = [keras.Input(input_shape)]
    if unsafe:  # a Lambda layer stores Python bytecode: exactly what safe_mode refuses to run
        layers.append(keras.layers.Lambda(lambda x: x * 2.0))
    layers += [keras.layers.Flatten(), keras.layers.Dense(classes, activation=activation, name="head")]
    keras.Sequential(layers).save(path)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_input")
    (d / "not_a_model.keras").write_text("this is not a Keras model\n")
    good = _teacher(d / "good.keras")
    (d / "corrupt.keras").write_bytes(open(good, "rb").read()[:700])
    (d / "unknown_flag.flags").write_text("--flagfile=configs/smoke.flags\n--temprature=3\n")
    (d / "a_file").write_text("")
    (d / "other_run").mkdir()
    (d / "other_run" / "config.json").write_text(json.dumps({"batch_size": 32}))
    (d / "empty_tfds").mkdir()
    for name in ("cat", "dog", "owl"):  # your own images: 3 classes of 4 small PNGs, and a folder of one class
        for i in range(4):
            for folder in ("folder", "one_class") if name == "cat" else ("folder",):
                (d / folder / name).mkdir(parents=True, exist_ok=True)
                (d / folder / name / f"{i}.png").write_bytes(tf.io.encode_png(tf.fill((8, 8, 3), tf.constant(40 * i, tf.uint8))).numpy())
    return {
        "dir": d, "not_a_model": str(d / "not_a_model.keras"), "corrupt": str(d / "corrupt.keras"),
        "cifar100": _teacher(d / "cifar100.keras", classes=100), "mnist": _teacher(d / "mnist.keras", (28, 28, 1)),
        "unsafe": _teacher(d / "unsafe.keras", unsafe=True), "good": good,
        "softmax": _teacher(d / "softmax.keras", activation="softmax"),
    }


# (id, arguments (with {placeholders} from `files`), fragments the one error line must contain)
CASES = [
    ("unknown_dataset", [SMOKE, "--dataset=mnist"], ["--dataset 'mnist'", "cifar10, cifar100", "folder:DIR, tfds:NAME"]),
    ("folder_missing", [SMOKE, "--dataset=folder:/no/such/folder"], ["--dataset folder not found",
                                                                     "folder:'/no/such/folder'"]),
    ("folder_of_one_class", [SMOKE, "--dataset=folder:{dir}/one_class"], ["has 1 class folder(s) (cat)",
                                                                          "at least 2"]),
    ("teacher_other_classes_than_folder", [SMOKE, "--dataset=folder:{dir}/folder", "--teacher={good}"],
     ["good.keras", "predicts 10 classes", "the dataset has 3"]),
    ("teacher_other_size_than_image_size", [SMOKE, "--dataset=folder:{dir}/folder", "--teacher={good}",
                                            "--image_size=48"], ["takes 32×32 images", "--image_size=48"]),
    ("image_size_for_cifar", [SMOKE, "--image_size=48"], ["--image_size resizes your own images", "cifar10"]),
    ("unknown_student_net", [SMOKE, "--student_net=resnet9"], ["--student_net=resnet9", "resnet8|"]),
    ("unknown_teacher_net", [SMOKE, "--teacher_net=vgg16"], ["--teacher_net=vgg16", "resnet110"]),
    ("phase1_shorter_than_tau", [SMOKE, "--phase1_epochs=3", "--max_temperature=10"],
     ["phase1_epochs=3", "max_temperature=10"]),
    ("zero_phase1_epochs", [SMOKE, "--phase1_epochs=0"], ["phase1_epochs", "Received: --phase1_epochs=0"]),
    ("negative_phase2_epochs", [SMOKE, "--phase2_epochs=-1"], ["positive integer", "phase2_epochs=-1"]),
    ("zero_teacher_epochs", [SMOKE, "--teacher_epochs=0"], ["positive integer", "teacher_epochs=0"]),
    ("zero_batch_size", [SMOKE, "--batch_size=0"], ["positive integer", "batch_size=0"]),
    ("zero_max_temperature", [SMOKE, "--max_temperature=0"], ["max_temperature", "0"]),
    ("negative_kd_temperature", [SMOKE, "--method=kd", "--kd_temperature=-1"], ["> 0", "kd_temperature=-1.0"]),
    ("teacher_not_keras_format", [SMOKE, "--teacher={dir}/a_file"], ["expected a .keras file"]),
    ("teacher_missing", [SMOKE, "--teacher=/no/such/teacher.keras"],
     ["--teacher file not found", "--teacher='/no/such/teacher.keras'"]),
    ("teacher_not_a_model", [SMOKE, "--teacher={not_a_model}"], ["not a loadable Keras model", "not_a_model.keras", "not a .keras zip"]),
    ("teacher_corrupt", [SMOKE, "--teacher={corrupt}"], ["not a loadable Keras model", "corrupt.keras", "truncated/corrupt"]),
    ("teacher_unsafe_lambda", [SMOKE, "--teacher={unsafe}"], ["not a loadable Keras model", "safe_mode=True", "Lambda"]),
    ("teacher_other_classes", [SMOKE, "--teacher={cifar100}"], ["predicts 100 classes", "the dataset has 10"]),
    ("teacher_other_input", [SMOKE, "--teacher={mnist}"], ["(28, 28, 1)", "(32, 32, 3)"]),
    ("flagfile_missing", ["--flagfile=configs/no_such.flags"], ["Unable to open flagfile", "configs/no_such.flags"]),
    ("flagfile_unknown_flag", ["--flagfile={dir}/unknown_flag.flags"], ["Unknown command line flag 'temprature'"]),
    ("renamed_kd_alpha", [SMOKE, "--method=kd", "--kd_alpha=0.9"],
     ["--kd_alpha is now --kd_student_loss_weight (here: --kd_student_loss_weight=0.1)"]),
    ("renamed_kd_alpha_not_a_number", [SMOKE, "--method=kd", "--kd_alpha=abc"],
     ["--kd_alpha is now --kd_student_loss_weight; see --helpfull."]),
    ("workdir_unwritable", [SMOKE, "--workdir={dir}/a_file/run"], ["--workdir", "a_file/run", "not writable"]),
    ("workdir_other_settings", [SMOKE, "--workdir={dir}/other_run"], ["unfinished run with other settings",
                                                                      "batch_size (saved 32, now 64)", "--overwrite"]),
    ("dataset_missing_offline", [SMOKE, "--data_dir={dir}/empty_tfds"], ["'cifar10' is not prepared under",
                                                                         "empty_tfds"]),
    ("image_net_for_text", [GLUE, "--student_net=resnet8"], ["Unknown --student_net 'resnet8'", "bert_l1_h64"]),
    ("preset_for_images", [SMOKE, "--student_preset=bert_tiny_en_uncased"], ["need a text dataset", "cifar10"]),
    ("kd_on_regression", [GLUE, "--dataset=glue/stsb", "--method=kd"], ["regression task", "akd, ckd, scratch, finetune"]),
    ("zero_sequence_length", [GLUE, "--sequence_length=0"], ["positive integer", "sequence_length=0"]),
    ("assistant_without_takd", [SMOKE, "--method=akd", "--assistant={good}"],
     ["--assistant is read by --method='takd' only", "--method='akd'"]),
    ("assistant_missing", [SMOKE, "--method=takd", "--assistant=/no/such/assistant.keras"],
     ["--assistant file not found", "'/no/such/assistant.keras'"]),
    ("assistant_other_classes", [SMOKE, "--method=takd", "--assistant={cifar100}"],
     ["--assistant", "predicts 100 classes", "the dataset has 10"]),
    ("unknown_assistant_net", [SMOKE, "--method=takd", "--assistant_net=resnet9"], ["--assistant_net=resnet9"]),
    ("takd_on_text", [GLUE, "--method=takd"], ["'takd' is implemented for image datasets", "glue/"]),
    ("teacher_views_for_scratch", [SMOKE, "--method=scratch", "--teacher_views=2"],
     ["teacher_views", "akd, ckd, kd", "method='scratch'"]),
    ("negative_teacher_views", [SMOKE, "--teacher_views=-1"], ["integer >= 0", "teacher_views=-1"]),
    ("teacher_softmax", [SMOKE, "--teacher={softmax}"],
     ["--teacher", "softmax.keras", "returns probabilities", "'head' applies softmax", "--teacher_outputs='probabilities'"]),
    ("assistant_softmax", [SMOKE, "--method=takd", "--assistant={softmax}"],
     ["--assistant", "'head' applies softmax", "activation=None"]),
    ("teacher_outputs_without_teacher", [SMOKE, "--teacher_outputs=probabilities"],
     ["--teacher_outputs", "a teacher trained here", "--teacher=None"]),
    ("unknown_teacher_outputs", [SMOKE, "--teacher_outputs=scores"], ["--teacher_outputs=scores", "logits|probabilities"]),
    ("unknown_mixed_precision", [SMOKE, "--mixed_precision=fp8"], ["--mixed_precision=fp8", "none|bfloat16|float16"]),
    ("sync_batchnorm_on_text", [GLUE, "--sync_batchnorm"], ["--sync_batchnorm", "have none", "--dataset='glue/"]),
    ("group_by_length_on_images", [SMOKE, "--group_by_length"], ["--group_by_length", "image datasets have none",
                                                          "--dataset='cifar10'"]),
    ("teacher_logits_cache_on_images", [SMOKE, "--teacher_logits_cache=/tmp/x"], ["--teacher_logits_cache",
                                                                                   "--teacher_views_cache"]),
    ("truncate_on_images", [SMOKE, "--student_init=truncate:2"], ["copies transformer layers of a text teacher"]),
    ("student_init_missing", [SMOKE, "--student_init=/no/such/student.keras"],
     ["--student_init file not found", "'/no/such/student.keras'"]),
    ("student_init_other_network", [SMOKE, "--student_init={good}"],
     ["--student_init", "good.keras", "is not a plane2", "13,082", "Pass a model of --student_net"]),
    ("student_init_on_text", [GLUE, "--student_init={good}"], ["--student_init", "--student_preset"]),
]


# Run as a real `python -m akd_tf.main` process (absl's app.run included, the same for every case); the others run
# in one interpreter through the same parser and main (tests/cli_cases.py): one TensorFlow start for all of them.
IN_SUBPROCESSES = ("unknown_dataset",)


def _config_json(workdir):
    path = os.path.join(workdir, "config.json")
    return open(path).read() if os.path.isfile(path) else None


@pytest.fixture(scope="module")
def results(files, tmp_path_factory):
    argvs = {}
    for name, args, _ in CASES:
        argv = [a.format(**files) for a in args]
        if not any(a.startswith("--workdir") for a in argv):
            argv.append(f"--workdir={tmp_path_factory.mktemp(name)}")
        argvs[name] = argv
    # The workdir of each case, and its config.json before the run (None: there was none).
    workdirs = {name: next(a.split("=", 1)[1] for a in argv if a.startswith("--workdir=")) for name, argv in argvs.items()}
    before = {name: _config_json(workdir) for name, workdir in workdirs.items()}

    def in_subprocess(name):
        proc = subprocess.run([sys.executable, "-m", "akd_tf.main", *argvs[name]], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)
        return name, proc

    def in_one_process():
        batch = {name: argv for name, argv in argvs.items() if name not in IN_SUBPROCESSES}
        results = cli_cases.run_in_subprocess("akd_tf.main", batch, str(files["dir"]), ROOT)
        return {name: types.SimpleNamespace(**result) for name, result in results.items()}

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        batch = pool.submit(in_one_process)
        separate = dict(pool.map(in_subprocess, IN_SUBPROCESSES))
        ran = {**batch.result(), **separate}
    return {name: (proc, workdirs[name], before[name]) for name, proc in ran.items()}


@pytest.mark.parametrize("name,args,fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_before_any_training(results, name, args, fragments):
    proc, workdir, config_before = results[name]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("akd_tf.main: error: ")]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(errors) == 1, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert "Traceback" not in proc.stderr
    assert "Epoch 1/" not in proc.stdout  # nothing was trained
    assert _config_json(workdir) == config_before  # the workdir was not prepared for a run
