"""compare, its hints, cmp, and the answer records the grader reads."""
import pytest
import torch

from grader.checks import compare, cmp, decode, encode, shape_hint
from grader.config import tolerance


def test_rounding_differences_pass_and_are_reported_approximate():
    r = torch.randn(32, 64)
    a = r + 1e-9 * torch.randn(32, 64)
    v = compare(a, r)
    assert v.passed and v.approximate and v.maxdiff > 0
    assert compare(r.clone(), r).exact


def test_tolerance_is_the_documented_rule():
    rtol, atol = tolerance(torch.float32)
    assert rtol == pytest.approx(100 * 1.1920929e-07) and atol == pytest.approx(1.1920929e-07)
    r = torch.tensor([1.0, 0.0])
    assert compare(r + torch.tensor([0.9 * rtol, 0.9 * atol]), r).passed
    assert not compare(r + torch.tensor([3 * rtol, 0.0]), r).passed
    assert not compare(torch.tensor([1.0, 3 * atol]), r).passed


def test_broadcast_shape_is_named_with_the_dimension_to_sum():
    v = compare(torch.zeros(32, 64), torch.zeros(1, 64))
    assert not v.passed and "dimension 0" in v.problem and "keepdim=True" in v.problem
    assert "WRONG" in v.line("bngain")


def test_dropped_keepdim_fails_although_it_broadcasts():
    v = compare(torch.ones(64), torch.ones(1, 64))
    assert not v.passed and v.problem.startswith("shape [64] but [1, 64] expected")


def test_transposed_and_wrong_dtype_answers_are_named():
    assert "transposed" in shape_hint((27, 64), (64, 27))
    v = compare(torch.zeros(3, dtype=torch.float64), torch.zeros(3))
    assert not v.passed and "dtype float64" in v.problem


@pytest.mark.parametrize("factor, words", [(-1.0, "sign is flipped"), (32.0, "factor 32"),
                                           (32 / 31, "Bessel"), (2.0, "missing or extra 1/n")])
def test_value_hints_name_the_likely_mistake(factor, words):
    r = torch.randn(8, 5)
    v = compare(factor * r, r)
    assert not v.passed and words in v.problem


def test_nan_and_non_tensor_answers_fail_with_a_reason():
    r = torch.ones(4)
    assert "NaN" in compare(torch.tensor([1.0, float("nan"), 1.0, 1.0]), r).problem
    assert "got NoneType" in compare(None, r).problem
    assert not compare(torch.ones(4, dtype=torch.long), torch.ones(4, dtype=torch.long) * 2).passed


def test_numbers_compare_with_float32_tolerance_and_ints_exactly():
    assert compare(2.4544, 2.4544 * (1 + 1e-7)).passed
    assert not compare(2.45, 2.46).passed
    assert compare(torch.tensor(7), 7).passed and not compare(8, 7).passed


@pytest.mark.parametrize("value", [torch.randn(3, 4), torch.arange(6).view(2, 3),
                                   torch.randn(2, dtype=torch.float64), torch.tensor(True),
                                   1.5, 3, "emma"])
def test_records_round_trip_bit_for_bit(value):
    back = decode(encode(value))
    if isinstance(value, torch.Tensor):
        assert back.dtype == value.dtype and torch.equal(back, value)
    else:
        assert back == value


def test_invalid_answers_become_invalid_records():
    with pytest.raises(ValueError, match="not a tensor"):
        decode(encode(object()))


def test_cmp_passes_prints_and_fails_with_a_hint(capsys):
    x = torch.randn(1, 64, requires_grad=True)
    (x * torch.arange(64.0)).sum().backward()
    cmp("bngain", torch.arange(64.0).view(1, 64), x)
    assert "bngain" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="dbngain: shape"):
        cmp("bngain", torch.arange(64.0), x)


def test_cmp_without_autograd_says_what_to_run(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    with pytest.raises(RuntimeError, match="run the forward pass cell"):
        cmp("h", torch.zeros(2), torch.zeros(2))
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    cmp("h", torch.zeros(2), torch.zeros(2))   # while grading: a note, the grader judges
