"""makemore.checks.direction and nbgrader_running: what hidden tests and long cells rely on."""
import math

import torch

from makemore.checks import compare, direction, nbgrader_running


def test_direction_ignores_positive_scale_but_not_sign_or_shape():
    g = torch.Generator().manual_seed(0)
    answer = torch.randn(7, 5, generator=g)
    for k in (1.0, 1 / 7, 7.0, 1e4):
        assert compare(direction(k * answer), direction(answer)).passed
    assert not compare(direction(-answer), direction(answer)).passed
    assert not compare(direction(answer.T.contiguous()), direction(answer)).passed
    assert math.isclose(float(direction(answer).norm()), 1.0, rel_tol=1e-6)


def test_direction_keeps_dtype_and_shape():
    t = torch.randn(3, 1, dtype=torch.float64)
    d = direction(t)
    assert d.dtype == torch.float64 and d.shape == (3, 1)


def test_direction_leaves_zeros_non_tensors_and_integers_as_they_are():
    zeros = torch.zeros(4, 3)
    assert direction(zeros) is zeros
    assert direction(None) is None and direction(2.5) == 2.5
    ints = torch.arange(4)
    assert direction(ints) is ints
    problem = compare(direction(zeros), direction(torch.ones(4, 3))).problem
    assert problem.startswith("all zeros")


def test_direction_of_an_answer_with_nan_or_inf_fails_with_that_reason():
    for bad in (float("nan"), float("inf")):
        answer = torch.ones(2, 3)
        answer[0, 1] = bad
        verdict = compare(direction(answer), direction(torch.ones(2, 3)))
        assert not verdict.passed and "NaN or infinite" in verdict.problem


def test_nbgrader_running_follows_nbgrader_execution(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not nbgrader_running()
    for value in ("validate", "autograde"):
        monkeypatch.setenv("NBGRADER_EXECUTION", value)
        assert nbgrader_running()
