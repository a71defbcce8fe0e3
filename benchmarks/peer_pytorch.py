"""This project beside the official code's framework, timed in one run on the same images: the ResNet steps of the
official Annealing-KD code (huawei-noah/Efficient-NLP, ``Annealing_KD/computer_vision_tasks``: its PyTorch
``ResNet_Cifar`` and its phase-1 loop), interleaved round by round with this project's steps (a) student
training, (b) teacher inference, (c) phase 1 with the teacher in the loop, (d) phase 1 on cached teacher views,
(e) the teacher's own training (``--teacher_train_nets``, ResNet-56 and ResNet-110: the main job's largest cost),
and a fixed NumPy workload that measures the host's own steadiness in the same rounds.

    pip install -e ".[peer]"       # PyTorch, CPU wheel: an optional benchmark dependency, never the package's
    python -m benchmarks.peer_pytorch --images=2048 --repeats=5

PyTorch's steps, each one epoch over the same ``--images`` CIFAR-10 images in batches of ``--batch_size``:
(a) the ResNet-8 cross-entropy step, in PyTorch's default NCHW layout and in channels-last; (b) ResNet-110 inference
(``eval`` + ``no_grad``); (c) phase 1 as the official code writes it (``loss = mse(student(x), teacher(x) * T /
tau_max)``, the teacher in eval mode but outside ``no_grad``, so autograd also records the teacher and
back-propagates into it), and (c') the same step with the teacher under ``no_grad``, which is what the loop needs and
the fastest phase 1 PyTorch offers; the goals are set against (c'). PyTorch reads batches already in memory (one
augmented pass, converted to tensors before timing) while this project's steps include its ``tf.data`` pipeline
(augmentation, shuffling): the comparison favours PyTorch. Both frameworks use every core of the process
(``torch.set_num_threads``). Weights are random: speed does not depend on them. (e) is set against the faster of
PyTorch's two layouts in each round.

Writes ``--output``.json/.md: images/s per step, per-round ratios and their medians against the goals, every epoch's
seconds, the two-speeds check (`benchmarks.speed.two_speeds`), the command and the machine with both versions.
"""

import numpy as np
from absl import app, flags

from akd_tf.command import command_line
from benchmarks import speed

FLAGS = flags.FLAGS

PROJECT_STEPS = {
    "student_train": "(a) {student} training, cross-entropy",
    "teacher_inference": "(b) {teacher} inference",
    "akd_phase1": "(c) AKD phase 1, teacher in the loop",
    "akd_phase1_views": "(d) AKD phase 1, cached teacher views",
}
TEACHER_TRAIN = "(e) {net} training, cross-entropy"
TORCH_TEACHER_TRAIN = {"": "PyTorch (e) {net} training, NCHW", "_cl": "PyTorch (e) {net} training, channels-last"}
PEER_STEPS = {
    "torch_student_train": "PyTorch (a) {student} training, NCHW",
    "torch_student_train_cl": "PyTorch (a) {student} training, channels-last",
    "torch_teacher_inference": "PyTorch (b) {teacher} inference, channels-last",
    "torch_akd_phase1_official": "PyTorch (c) phase 1 as the official code runs it (teacher under autograd), NCHW",
    "torch_akd_phase1": "PyTorch (c') phase 1, teacher under no_grad, channels-last",
}
# key: (this project's step, PyTorch's step, or steps (the faster in each round), goal or None, label). Goals from the
# issue that asked for this benchmark.
RATIOS = {
    "student_train": ("student_train", "torch_student_train_cl", None, "(a) / PyTorch (a) channels-last"),
    "student_train_nchw": ("student_train", "torch_student_train", None, "(a) / PyTorch (a) NCHW"),
    "teacher_inference": ("teacher_inference", "torch_teacher_inference", None, "(b) / PyTorch (b)"),
    "akd_phase1": ("akd_phase1", "torch_akd_phase1", 0.95, "(c) / PyTorch (c')"),
    "akd_phase1_official": ("akd_phase1", "torch_akd_phase1_official", None, "(c) / PyTorch (c) as written"),
    "akd_phase1_views": ("akd_phase1_views", "torch_akd_phase1", 3.0, "(d) / PyTorch (c')"),
}


def _torch():
    try:
        import torch
    except ImportError as e:
        raise SystemExit('benchmarks.peer_pytorch needs PyTorch, an optional benchmark dependency: pip install -e '
                         '".[peer]" (or the CPU wheel: pip install torch --index-url '
                         'https://download.pytorch.org/whl/cpu)') from e
    return torch


def resnet_cifar(depth, num_classes=10):
    """The official code's ``ResNet_Cifar`` with ``BasicBlock`` (``resnet_cifar.py``, MIT licence, Iman Mirzadeh
    2019): a 16-channel 3x3 stem, three stages of (depth - 2) / 6 blocks at 16, 32, 64 channels, 1x1-conv+BN
    shortcuts where the shape changes, 8x8 average pooling, a linear layer; He-normal convolutions as there."""
    import math

    torch = _torch()
    nn = torch.nn
    if (depth - 2) % 6:
        raise ValueError(f"depth={depth}: a CIFAR ResNet has depth 6n + 2 (8, 20, 56, 110, ...)")

    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            residual = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += residual
            return self.relu(out)

    class ResNetCifar(nn.Module):
        def __init__(self, blocks):
            super().__init__()
            self.inplanes = 16
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = self._make_layer(16, blocks)
            self.layer2 = self._make_layer(32, blocks, stride=2)
            self.layer3 = self._make_layer(64, blocks, stride=2)
            self.avgpool = nn.AvgPool2d(8, stride=1)
            self.fc = nn.Linear(64, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    m.weight.data.normal_(0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
                elif isinstance(m, nn.BatchNorm2d):
                    m.weight.data.fill_(1)
                    m.bias.data.zero_()

        def _make_layer(self, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes:
                downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                           nn.BatchNorm2d(planes))
            layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes
            layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNetCifar((depth - 2) // 6)


def _depth(net):
    if not net.startswith("resnet") or not net[6:].isdigit() or (int(net[6:]) - 2) % 6:
        raise ValueError(f"--teacher_net/--student_net={net!r}: the peer benchmark has the official code's CIFAR "
                         "ResNets only, depth 6n + 2 (resnet8, resnet20, resnet56, resnet110, ...)")
    return int(net[6:])


def peer_steps(batches, teacher_net, student_net, max_temperature=10, teacher_train_nets=()):
    """PyTorch's timed steps (`PEER_STEPS`, and the training of each of ``teacher_train_nets`` in both layouts),
    each a callable running one epoch over ``batches``, a list of (NHWC float32 images, int labels) numpy pairs."""
    torch = _torch()
    F = torch.nn.functional
    torch.manual_seed(0)
    cl = torch.channels_last
    nchw = [(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.from_numpy(y.astype(np.int64)))
            for x, y in batches]
    channels_last = [(x.contiguous(memory_format=cl), y) for x, y in nchw]

    def sgd(model):  # the official code's optimiser
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

    def train(student, data, loss_of):
        optimizer = sgd(student)

        def epoch():
            student.train()
            for x, y in data:
                optimizer.zero_grad()
                loss_of(student(x), x, y).backward()
                optimizer.step()
        return epoch

    def teacher_in(memory_format):
        teacher = resnet_cifar(_depth(teacher_net)).to(memory_format=memory_format)
        teacher.eval()  # as the official code: eval mode, parameters still requiring grad
        return teacher

    teacher_nchw, teacher_cl = teacher_in(torch.contiguous_format), teacher_in(cl)
    T = 1  # the first temperature; the cost of a step does not depend on it

    def official_loss(out, x, y):  # annealing_kd_train.py, phase 1: the teacher called inside autograd
        return F.mse_loss(out, teacher_nchw(x) * T / max_temperature)

    def no_grad_loss(out, x, y):
        with torch.no_grad():
            target = teacher_cl(x) * T / max_temperature
        return F.mse_loss(out, target)

    def inference():
        with torch.no_grad():
            for x, _ in channels_last:
                teacher_cl(x)

    def student(memory_format):
        return resnet_cifar(_depth(student_net)).to(memory_format=memory_format)

    def ce(out, x, y):
        return F.cross_entropy(out, y)

    teachers = {}
    for net in teacher_train_nets:
        teachers[f"torch_teacher_train_{net}"] = train(resnet_cifar(_depth(net)), nchw, ce)
        teachers[f"torch_teacher_train_{net}_cl"] = train(resnet_cifar(_depth(net)).to(memory_format=cl),
                                                         channels_last, ce)
    return {
        **teachers,
        "torch_student_train": train(student(torch.contiguous_format), nchw, ce),
        "torch_student_train_cl": train(student(cl), channels_last, ce),
        "torch_teacher_inference": inference,
        "torch_akd_phase1_official": train(student(torch.contiguous_format), nchw, official_loss),
        "torch_akd_phase1": train(student(cl), channels_last, no_grad_loss),
    }


# (e) against the faster of PyTorch's layouts: the teacher's step ≥ 0.9 × it.
TEACHER_TRAIN_GOAL = 0.9


def teacher_ratios(nets):
    """`RATIOS` entries of the teacher training steps of ``nets``."""
    return {f"teacher_train_{net}": (f"teacher_train_{net}", tuple(f"torch_teacher_train_{net}{suffix}"
                                                                     for suffix in TORCH_TEACHER_TRAIN),
                                     TEACHER_TRAIN_GOAL, f"(e) {net} / PyTorch (e), its faster layout")
            for net in nets}


def ratios(rates, table=None):
    """``table`` (default `RATIOS`) from ``rates`` (step name: images/s per round): per-round ratios, their median,
    the goal and whether the median meets it."""
    out = {}
    for key, (ours, peer, goal, label) in (RATIOS if table is None else table).items():
        peers = np.asarray([rates[p] for p in ((peer,) if isinstance(peer, str) else peer)])
        per_round = np.asarray(rates[ours]) / peers.max(axis=0)
        median = float(np.median(per_round))
        out[key] = {"label": label, "median": median, "per_round": [float(v) for v in per_round], "goal": goal,
                    "met": None if goal is None else median >= goal}
    return out


def main(argv):
    del argv
    torch = _torch()
    torch.set_num_threads(speed.cpu()["cores"])
    teacher_train_nets = [net for net in FLAGS.teacher_train_nets.split(",") if net]
    for net in (FLAGS.teacher_net, FLAGS.student_net, *teacher_train_nets):
        _depth(net)  # refuse a net PyTorch has no twin of before anything slow
    splits = speed.load_images()
    n = splits.num_examples["train"]
    batches = [(x.numpy(), y.numpy()) for x, y in splits.train]  # one augmented pass, as PyTorch's inputs
    steps, _ = speed.project_steps(splits, FLAGS.teacher_net, FLAGS.student_net)
    for net in teacher_train_nets:  # as `akd_tf.run` trains a teacher: BatchNorms on the fused kernel
        steps[f"teacher_train_{net}"] = speed.training_step(splits, net)
    steps.update(peer_steps(batches, FLAGS.teacher_net, FLAGS.student_net, teacher_train_nets=teacher_train_nets))
    steps[speed.REFERENCE] = speed.host_reference()
    seconds = speed.interleaved(steps, FLAGS.repeats, n)
    reference = seconds.pop(speed.REFERENCE)
    rates = {name: n / np.array(t) for name, t in seconds.items()}
    names = {k: v.format(student=FLAGS.student_net, teacher=FLAGS.teacher_net)
             for k, v in {**PROJECT_STEPS, **PEER_STEPS}.items()}
    for net in teacher_train_nets:
        names[f"teacher_train_{net}"] = TEACHER_TRAIN.format(net=net)
        names.update({f"torch_teacher_train_{net}{suffix}": label.format(net=net)
                      for suffix, label in TORCH_TEACHER_TRAIN.items()})
    steadiness = {k: speed.steadiness(v) for k, v in seconds.items()}
    host = speed.steadiness(reference)
    report = {
        "command": command_line("benchmarks.peer_pytorch", [FLAGS[k].serialize() for k in (
            "images", "batch_size", "repeats", "teacher_net", "student_net", "teacher_train_nets")]),
        "machine": {**speed.machine(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "steps": names,
        "images_per_second": {k: float(np.median(r)) for k, r in rates.items()},
        "epoch_seconds": {k: [float(t) for t in v] for k, v in seconds.items()},
        "two_speeds": {k: speed.two_speeds(v) for k, v in seconds.items()},
        "steadiness": {"median_over_fastest": steadiness, "host_reference": host,
                       "host_reference_seconds": [float(t) for t in reference],
                       "goal": f"each step's >= the host reference's - {speed.STEADY_MARGIN}",
                       "met": {k: v >= host - speed.STEADY_MARGIN for k, v in steadiness.items()}},
        "ratios": {**ratios(rates), **ratios(rates, teacher_ratios(teacher_train_nets))},
    }
    m = report["machine"]
    lines = [
        f"This project (TensorFlow {m['tensorflow']}, Keras {m['keras']}) beside the official code's PyTorch "
        f"({m['torch']}), CIFAR-10, batch {FLAGS.batch_size}, {n} images, median of {FLAGS.repeats} interleaved rounds",
        "",
        "| step | images/s, median | epoch seconds | median / fastest | two speeds |",
        "|---|---|---|---|---|",
        *(f"| {names[k]} | {report['images_per_second'][k]:.0f} | {', '.join(f'{t:.2f}' for t in seconds[k])} | "
          f"{steadiness[k]:.2f}{'' if report['steadiness']['met'][k] else ' (**below the host**)'} | "
          f"{'**yes**' if report['two_speeds'][k] else 'no'} |" for k in names),
        "",
        "| ratio | median of rounds | per round | goal | met |",
        "|---|---|---|---|---|",
        *(f"| {r['label']} | {r['median']:.2f} | {', '.join(f'{v:.2f}' for v in r['per_round'])} | "
          + (f">= {r['goal']:.2f} | {'yes' if r['met'] else 'no'} |" if r["goal"] else "| |")
          for r in report["ratios"].values()),
        "",
        speed.reference_line(reference) + " A step is flagged below the host when its fastest / median is more than "
        f"{speed.STEADY_MARGIN} under the reference's.",
        "",
        "PyTorch reads batches already in memory; this project's steps include its tf.data pipeline. (c) as written",
        "back-propagates into the teacher too; (c') is the same loop with the teacher under torch.no_grad.",
    ]
    speed.write(FLAGS.output, report, lines, extra=f", PyTorch {m['torch']} on {m['torch_threads']} threads")


if __name__ == "__main__":
    # Defined here, not on import: the tests import the pure parts beside akd_tf.main, whose flags share names.
    speed.define_flags(images=2048, repeats=5, output="benchmarks/results/peer_pytorch")  # .json and .md
    flags.DEFINE_string("teacher_train_nets", "resnet56,resnet110", "Teachers whose training step is timed (e), "
                        "comma-separated; empty: none.")
    app.run(main)
