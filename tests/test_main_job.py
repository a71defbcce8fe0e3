"""benchmarks.main_job: a stage's figure from its epochs (the first, which traces the step, left out), the phases of
a student's history, and the recipe's hours from the figures."""

import pytest

from benchmarks import main_job


def test_a_stage_is_the_median_of_its_epochs_after_the_first_or_its_only_epoch_as_a_bound():
    assert main_job.stage_figure([130.0, 100.0, 104.0, 101.0]) == {
        "epoch_seconds": [130.0, 100.0, 104.0, 101.0], "seconds_per_epoch": 101.0, "upper_bound": False}
    assert main_job.stage_figure([370.0])["seconds_per_epoch"] == 370.0
    assert main_job.stage_figure([370.0])["upper_bound"] is True
    with pytest.raises(ValueError, match="no timed epoch"):
        main_job.stage_figure([])


def test_student_history_splits_by_phase_and_the_recipe_multiplies_each_stage():
    history = {"phase": [1.0, 1.0, 2.0, 2.0], "epoch_time_s": [110.0, 100.0, 35.0, 30.0]}
    assert main_job.student_phases(history) == {"phase1": [110.0, 100.0], "phase2": [35.0, 30.0]}
    stages = {"teacher": {"seconds_per_epoch": 360.0}, "phase1": {"seconds_per_epoch": 100.0},
              "phase2": {"seconds_per_epoch": 30.0}, "phase1_cached": {"seconds_per_epoch": 36.0}}
    hours = main_job.total_hours(stages, views_seconds=90.0)
    assert hours == pytest.approx({"teacher": 20.0, "phase1": 200 * 100 / 3600, "phase2": 100 * 30 / 3600,
                                   "phase1_cached": 2.0, "views": 8 * 90 / 3600})
