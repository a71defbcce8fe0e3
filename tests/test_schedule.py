import pytest

from akd_tf import schedule


def test_temperature_table_official_cifar():
    # p1=200, τ=10: each T in 10..1 lasts 20 epochs.
    expected = [t for t in range(10, 0, -1) for _ in range(20)]
    assert [schedule.temperature_at(e, 200, 10) for e in range(200)] == expected


def test_temperature_table_official_glue():
    # p1=14, τ=7: each T in 7..1 lasts 2 epochs.
    assert [schedule.temperature_at(e, 14, 7) for e in range(14)] == [7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_factor_matches_official_counter():
    # Official code: t = 1 + epoch // (p1 // τ), teacher scaled by t / τ.
    for p1, tau in ((200, 10), (14, 7), (25, 10)):
        for epoch in range(p1):
            t = min(tau, 1 + epoch // (p1 // tau))
            phi = schedule.annealing_factor(schedule.temperature_at(epoch, p1, tau), tau)
            assert phi == pytest.approx(t / tau)


def test_remainder_epochs_stay_at_t1():
    temps = [schedule.temperature_at(e, 25, 10) for e in range(25)]
    assert temps[:2] == [10, 10] and temps[18:] == [1] * 7 and min(temps) == 1


def test_annealing_factor_values():
    assert schedule.annealing_factor(10, 10) == pytest.approx(0.1)
    assert schedule.annealing_factor(1, 10) == 1.0
    assert schedule.annealing_factor(4, 7) == pytest.approx(1 - 3 / 7)
    with pytest.raises(ValueError, match="temperature=11"):
        schedule.annealing_factor(11, 10)


def test_phase_at():
    assert [schedule.phase_at(e, 3) for e in range(5)] == [1, 1, 1, 2, 2]


@pytest.mark.parametrize("p1,tau", [(9, 10), (0, 1), (5, 0), (5, 2.5)])
def test_invalid_schedule_is_rejected(p1, tau):
    with pytest.raises(ValueError, match="Received"):
        schedule.validate_schedule(p1, tau)


def test_short_phase1_message_names_both_values():
    with pytest.raises(ValueError, match=r"phase1_epochs=9, max_temperature=10"):
        schedule.temperature_at(0, 9, 10)


def test_step_learning_rate_per_phase():
    # Phase 1 of 200 epochs, phase 2 of 100: each restarts at the base rate.
    lr = [schedule.learning_rate_at(e, (200, 100), 0.1) for e in range(300)]
    assert lr[0] == lr[99] == 0.1
    assert lr[100] == lr[149] == pytest.approx(0.01)
    assert lr[150] == lr[199] == pytest.approx(0.001)
    assert lr[200] == lr[249] == 0.1
    assert lr[250] == lr[274] == pytest.approx(0.01)
    assert lr[275] == lr[299] == pytest.approx(0.001)
    assert schedule.learning_rate_at(7, (4, 4), 0.5, "constant") == 0.5
    with pytest.raises(ValueError, match="Allowed"):
        schedule.learning_rate_at(0, (4,), 0.1, "cosine")
    with pytest.raises(ValueError, match="past the last phase"):
        schedule.learning_rate_at(8, (4, 4), 0.1)


def test_schedule_module_is_framework_free():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(schedule))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names} | {node.module.split(".")[0] for node in ast.walk(tree)
                                            if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"tensorflow", "keras", "numpy", "absl"}


def test_each_phase_restarts_at_its_own_base_rate():
    # --phase2_learning_rate=0.01 on the official 200 + 100 epochs: phase 2 restarts at 0.01, not 0.1.
    lr = [schedule.learning_rate_at(e, (200, 100), (0.1, 0.01)) for e in range(300)]
    assert lr[0] == lr[99] == 0.1 and lr[199] == pytest.approx(0.001)
    assert lr[200] == lr[249] == 0.01 and lr[250] == pytest.approx(0.001) and lr[299] == pytest.approx(0.0001)
    assert schedule.linear_learning_rate_at(0, (10, 4), (0.1, 0.01)) == 0.1
    assert schedule.linear_learning_rate_at(5, (10, 4), (0.1, 0.01)) == pytest.approx(0.05)
    assert schedule.linear_learning_rate_at(10, (10, 4), (0.1, 0.01)) == pytest.approx(0.01)
    assert schedule.linear_learning_rate_at(12, (10, 4), (0.1, 0.01)) == pytest.approx(0.005)
    with pytest.raises(ValueError, match=r"One base learning rate per phase is needed: 2 phases. Received: \(0.1,\)"):
        schedule.learning_rate_at(0, (4, 4), (0.1,))


def test_student_phases_give_every_method_the_same_restart_when_asked():
    from akd_tf.config import Config

    recipe = Config(phase1_epochs=30, phase2_epochs=15, learning_rate=0.1)
    assert recipe.student_phases("akd") == ((30, 15), (0.1, 0.1))  # the recipe: phase 2 restarts at 0.1
    for method in ("scratch", "kd", "takd"):
        assert recipe.student_phases(method) == ((45,), (0.1,))  # one phase
    ablation = Config(phase1_epochs=30, phase2_epochs=15, learning_rate=0.1, phase2_learning_rate=0.01)
    for method in ("akd", "scratch", "kd", "takd"):
        assert ablation.student_phases(method) == ((30, 15), (0.1, 0.01))
    # A TAKD assistant trained for fewer epochs than phase 1 has no second phase to restart.
    assert ablation.student_phases("kd", epochs=20) == ((20,), (0.1,))
    with pytest.raises(ValueError, match=r"`phase2_learning_rate` must be > 0. Received: phase2_learning_rate=0"):
        Config(phase2_learning_rate=0).validate()


def test_cli_restarts_the_learning_rate_of_a_single_phase_method(tmp_path):
    """--phase2_learning_rate reaches the training loop: a KD student of 2 + 1 epochs (step schedule, one
    epoch per segment) logs 0.01, 0.001 in the first segment, then restarts at 0.004."""
    import csv
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [sys.executable, "-m", "akd_tf.main", "--flagfile=configs/smoke.flags", f"--workdir={tmp_path}", "--method=kd",
         "--teacher_epochs=1", "--train_size=128", "--validation_size=64", "--test_size=64", "--phase2_learning_rate=0.004",
         "--verbose=0"], cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "history_student.csv") as f:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(f)]
    assert rates == pytest.approx([0.01, 0.001, 0.004])


def test_phi_is_one_formula_for_floats_and_the_checked_factor():
    assert schedule.phi(10, 10) == pytest.approx(0.1) == schedule.annealing_factor(10, 10)
    assert schedule.phi(1, 7) == 1.0
    assert schedule.phi(3.0, 4.0) == 0.5


def test_continuation_label_weight_ramps_to_one_and_stays():
    assert [schedule.label_weight_at(e, 4) for e in range(6)] == [0, 0.25, 0.5, 0.75, 1, 1]
    # The paper's CIFAR ramp: min(i/150, 1); 3/4 of a 15-epoch budget ends between epochs.
    assert schedule.label_weight_at(75, 150) == 0.5
    assert schedule.label_weight_at(11, 11.25) == pytest.approx(11 / 11.25)
    assert schedule.label_weight_at(12, 11.25) == 1.0
    assert schedule.teacher_epochs(11.25) == 12 and schedule.teacher_epochs(150) == 150


@pytest.mark.parametrize("ramp, epochs, message", [(0, None, "label_ramp_epochs=0"), (-2, None, "=-2"),
                                                   (True, None, "=True"), (16, 15, "label_ramp_epochs=16, epochs=15")])
def test_continuation_label_ramp_is_validated(ramp, epochs, message):
    with pytest.raises(ValueError, match=message):
        schedule.validate_label_ramp(ramp, epochs)
