"""compare, its hints, cmp, and the answer records the grader reads."""
import pytest
import torch

from makemore.checks import (HINT_TOPICS, check, compare, cmp, decode, encode, hint_to_open,
                           shape_hint)
from makemore.config import tolerance


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


def test_students_see_the_verdict_and_the_missing_answer_not_frames(tmp_path):
    """In a notebook a failed check shows its verdict line only, and an answer not yet
    computed says so; a NameError inside the student's own function keeps its traceback."""
    import nbformat
    from nbclient import NotebookClient
    cells = ["import torch\nfrom makemore.checks import check, cmp",
             "check('probs', torch.ones(3), torch.zeros(3))",
             "cmp('norm_logits', dnorm_logits, norm_logits)",
             "def f():\n    return undefined_thing\nf()",
             # a keepdim dropped upstream: dcounts_sum's own hint would say "sum over dim 1"
             "counts_sum = (torch.rand(32, 1) + 1).requires_grad_()\n"
             "counts_sum_inv = counts_sum**-1\n"
             "counts_sum_inv.retain_grad()\n"
             "(counts_sum_inv * torch.randn(32, 27)).sum().backward()\n"
             "dcounts_sum_inv = counts_sum_inv.grad.view(32)\n"
             "dcounts_sum = -counts_sum**-2 * dcounts_sum_inv\n"
             "cmp('counts_sum', dcounts_sum, counts_sum)"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, allow_errors=True, kernel_name="python3").execute(cwd=str(tmp_path))
    failed, missing, inner, downstream = (c.outputs[-1] for c in nb.cells[1:])
    assert downstream.evalue.startswith("dcounts_sum is computed from dcounts_sum_inv of shape "
                                        "[32], where counts_sum_inv is [32, 1]: fix that answer"
                                        " first"), downstream.evalue
    assert "was broadcast" not in downstream.evalue.split("(this check:")[0]
    assert failed.ename == "CheckFailed" and len(failed.traceback) == 1
    assert "checks.py" not in "".join(failed.traceback) and "probs: 3 of 3" in failed.evalue
    assert max(map(len, failed.traceback[0].splitlines())) <= 88   # Validate's dialog does not wrap
    assert missing.ename == "NameError" and "not answered yet" in missing.evalue
    assert "`dnorm_logits`" in missing.evalue and len(missing.traceback) == 1
    assert "not answered" not in inner.evalue and len(inner.traceback) > 2


def test_row_sums_without_keepdim_get_their_hint():
    """Stage 1's classic P / P.sum(1): each column divided by another row's sum."""
    N = torch.randint(1, 50, (27, 27), generator=torch.Generator().manual_seed(0)).float()
    right = N / N.sum(1, keepdim=True)
    assert "keepdim=True" in compare(N / N.sum(1), right).problem
    noisy = right + 0.01 * torch.randn(27, 27, generator=torch.Generator().manual_seed(1))
    assert "keepdim" not in compare(noisy, right).problem
    assert "keepdim" not in compare(right.T.contiguous(), right).problem


R = torch.randn(8, 5, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("answer, expected, number", [
    (torch.ones(32, 64), torch.ones(1, 64), 1),   # a broadcast dimension not summed over
    (torch.ones(64), torch.ones(1, 64), 1),       # the sum's keepdim dropped
    (torch.ones(40, 64), torch.ones(1, 64), 1),   # too many entries
    (-R, R, 2),                                   # a flipped sign
    (32 * R, R, 2),                               # a missing 1/n
    (R / 2, R, 2),                                # an extra 1/n (or Bessel with n = 2)
    (32 / 31 * R, R, 2),                          # Bessel's n/(n-1)
])
def test_a_recognised_mistake_names_the_hint_that_covers_it(answer, expected, number):
    problem = compare(answer, expected).problem
    assert hint_to_open(problem) == f"stuck? open hint {number} above: {HINT_TOPICS[number]}"


def test_other_problems_name_no_hint():
    wrong = R + torch.randn(8, 5, generator=torch.Generator().manual_seed(4))
    for answer, expected in [(wrong, R), (R.T.contiguous(), R.T.contiguous().T), (None, R),
                             (R.double(), R), (torch.ones(3), torch.ones(8))]:
        assert hint_to_open(compare(answer, expected).problem) is None
    assert hint_to_open(None) is None


def test_cmp_names_the_hint_to_open_and_check_does_not():
    x = torch.randn(8, 5, requires_grad=True)
    (x * R).sum().backward()
    with pytest.raises(AssertionError, match=r"^dbnvar: .*sign is flipped.*; stuck\? open "
                                             r"hint 2 above: the local derivative$"):
        cmp("bnvar", -R, x)
    with pytest.raises(AssertionError) as failed:   # stage 1: its hints are not numbered so
        check("P", -R, R)
    assert "hint" not in str(failed.value)
