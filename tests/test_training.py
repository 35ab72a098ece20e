"""makemore.training.steps: the lecture's length interactively, the short one under nbgrader."""
import pytest

from makemore.training import steps


@pytest.mark.parametrize("mode", ["autograde", "validate", ""])
def test_steps_is_short_whenever_nbgrader_runs_the_notebook(monkeypatch, mode):
    monkeypatch.setenv("NBGRADER_EXECUTION", mode)
    assert steps(200_000, 2_000) == 2_000


def test_steps_is_the_lecture_length_interactively(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert steps(200_000, 2_000) == 200_000


@pytest.mark.parametrize("args", [(100.0, 5), (100, -1), ("100", 5), (True, 5)])
def test_steps_refuses_what_is_not_a_step_count(args):
    with pytest.raises(ValueError, match="whole number"):
        steps(*args)
