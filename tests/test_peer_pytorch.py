"""benchmarks.peer_pytorch: the ratios against the goals, the nets it refuses, and (where PyTorch is installed, an
optional benchmark dependency) the official code's ResNets and steps."""

import numpy as np
import pytest

from benchmarks import peer_pytorch


def test_ratios_are_per_round_medians_against_the_goals():
    rates = {"student_train": [1000, 1200, 1100], "teacher_inference": [400, 400, 400],
             "akd_phase1": [300, 280, 290], "akd_phase1_views": [900, 1000, 950],
             "torch_student_train": [1000, 1000, 1000], "torch_student_train_cl": [1250, 1200, 1100],
             "torch_teacher_inference": [500, 400, 400], "torch_akd_phase1": [300, 300, 300],
             "torch_akd_phase1_official": [150, 140, 145]}
    r = peer_pytorch.ratios(rates)
    assert r["student_train"]["per_round"] == pytest.approx([0.8, 1.0, 1.0])
    assert r["student_train"]["median"] == pytest.approx(1.0) and r["student_train"]["met"] is None
    assert r["akd_phase1"]["median"] == pytest.approx(290 / 300) and r["akd_phase1"]["met"] is True  # >= 0.95
    assert r["akd_phase1_official"]["median"] == pytest.approx(2.0)
    assert r["akd_phase1_views"]["median"] == pytest.approx(950 / 300) and r["akd_phase1_views"]["met"] is True
    rates["akd_phase1_views"] = [800, 850, 870]
    assert peer_pytorch.ratios(rates)["akd_phase1_views"]["met"] is False  # 2.83 < 3


def test_the_teacher_step_is_set_against_the_faster_pytorch_layout_in_each_round():
    rates = {"teacher_train_resnet56": [90, 95, 100], "torch_teacher_train_resnet56": [100, 80, 120],
             "torch_teacher_train_resnet56_cl": [80, 100, 100]}
    r = peer_pytorch.ratios(rates, peer_pytorch.teacher_ratios(["resnet56"]))["teacher_train_resnet56"]
    assert r["per_round"] == pytest.approx([0.9, 0.95, 100 / 120])
    assert r["median"] == pytest.approx(0.9) and r["goal"] == 0.9 and r["met"] is True


@pytest.mark.parametrize("net", ["plane2", "resnet", "resnet9"])
def test_nets_without_a_pytorch_twin_are_refused_by_name(net):
    with pytest.raises(ValueError, match=f"{net!r}"):
        peer_pytorch._depth(net)


def test_depths_of_the_official_resnets():
    assert [peer_pytorch._depth(f"resnet{d}") for d in (8, 20, 56, 110)] == [8, 20, 56, 110]


def test_the_official_resnets_match_this_projects_in_parameters():
    pytest.importorskip("torch", reason="PyTorch is an optional benchmark dependency (pip install -e '.[peer]')")
    from akd_tf import nets

    for depth in (8, 56):
        torch_params = sum(p.numel() for p in peer_pytorch.resnet_cifar(depth).parameters())
        model = nets.build(f"resnet{depth}")
        # PyTorch keeps BatchNorm's moving statistics as buffers, not parameters: compare the trainable weights
        assert torch_params == sum(int(np.prod(w.shape)) for w in model.trainable_weights), depth


def test_every_pytorch_step_runs_an_epoch():
    torch = pytest.importorskip("torch", reason="PyTorch is an optional benchmark dependency")
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(4, 32, 32, 3)).astype(np.float32), rng.integers(0, 10, 4)) for _ in range(2)]
    steps = peer_pytorch.peer_steps(batches, "resnet8", "resnet8")
    assert list(steps) == list(peer_pytorch.PEER_STEPS)
    torch.manual_seed(0)
    for name, epoch in steps.items():
        epoch()  # a shape or layout mismatch between the batches and a model raises here
