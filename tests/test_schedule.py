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
