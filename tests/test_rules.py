"""The grading rules of stages 3-5 (grader/rules/): their reference functions, hidden inputs
and the context they call a student's function in, checked on their own."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from grader import policy
from grader.rules import stage3, stage4, stage5

STAGES = (3, 4, 5)   # pytest -m stageN (tests/conftest.py)


def test_reference_pieces_match_autograd():
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(20, 27, generator=g, dtype=torch.float64, requires_grad=True)
    Y = torch.randint(0, 27, (20,), generator=g)
    F.cross_entropy(logits, Y).backward()
    assert torch.allclose(stage5.cross_entropy_backward(logits.detach(), Y), logits.grad)

    x = torch.randn(16, 5, generator=g, dtype=torch.float64, requires_grad=True)
    gain = torch.randn(1, 5, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(1, 5, dtype=torch.float64, requires_grad=True)
    var_inv = (x.var(0, keepdim=True) + 1e-5)**-0.5
    raw = (x - x.mean(0, keepdim=True)) * var_inv
    out = gain * raw + bias
    dout = torch.randn(16, 5, generator=g, dtype=torch.float64)
    out.backward(dout)
    dx, dgain, dbias = stage5.batchnorm_backward(dout, gain.detach(), raw.detach(),
                                                 var_inv.detach())
    for mine, theirs in [(dx, x.grad), (dgain, gain.grad), (dbias, bias.grad)]:
        assert torch.allclose(mine, theirs)


def test_graded_swaps_names_hides_grads_blocks_autograd_and_restores_everything():
    p = torch.ones(3, requires_grad=True)
    p.grad = torch.full((3,), 5.0)
    mine = object()
    nb = {"parameters": [p], "cross_entropy_backward": mine}
    seen = {}

    def answer():
        seen["swapped"] = nb["cross_entropy_backward"] is stage5.cross_entropy_backward
        seen["grad"] = p.grad
        (p * 2).sum().backward()   # does nothing: autograd is off
        seen["after backward"] = p.grad
        raise ValueError("the answer fails")

    with pytest.raises(ValueError):
        with stage5.graded(nb, stage5.REFERENCE_PIECES):
            answer()
    assert seen == {"swapped": True, "grad": None, "after backward": None}
    assert nb["cross_entropy_backward"] is mine
    assert torch.equal(p.grad, torch.full((3,), 5.0))
    (p * 2).sum().backward()   # autograd works again after the block
    assert torch.equal(p.grad, torch.full((3,), 7.0))


def test_stage4_orthogonal_cases_make_bessel_irrelevant():
    for _, dy, _, raw, _ in stage4.bn_cases(11, [(4, 64), (50, 10)], orthogonal=True):
        assert (dy * raw).sum(0).abs().max() < 1e-4
    assert stage4.dhprebn_of((1, 2, 3)) == 1 and stage4.dhprebn_of("lone") == "lone"


def test_stage3_cases_are_fixed_by_their_seed_and_extreme_where_asked():
    first = [L for _, L, _ in stage3.logits_cases(5, [(64, 27)], spread=4.0, offset=1000.0)]
    again = [L for _, L, _ in stage3.logits_cases(5, [(64, 27)], spread=4.0, offset=1000.0)]
    assert torch.equal(first[0], again[0])
    assert first[0].abs().min() > 900   # every row shifted by +-1000: exp overflows
    assert stage3.all_finite(torch.ones(2)) and not stage3.all_finite(torch.tensor([float("inf")]))


def test_check_cells_call_the_students_function_with_the_reference_in_place(monkeypatch):
    """check_backward grades backward with the reference pieces, whatever the student's are,
    at parameters of its own (not the notebook's, whose autograd gradients are in the kernel)."""
    reported = {}
    monkeypatch.setattr(stage5, "report", lambda name, value: reported.setdefault(name, value))
    logits = torch.randn(4, 27)
    Y = torch.tensor([1, 2, 3, 4])
    drawn = []

    def make_parameters(g):
        drawn.append(torch.randn(1, generator=g).item())
        return ["fresh"]

    def students_backward(parameters, cache, Xb, Yb):
        assert parameters == ["fresh"]
        return [nb["cross_entropy_backward"](cache.logits, Yb)] * 7

    nb = {"parameters": [torch.zeros(1)], "Xb": None, "Yb": Y,
          "make_parameters": make_parameters,
          "forward": lambda params, X, Y: (None, SimpleNamespace(logits=logits)),
          "backward": students_backward, "cross_entropy_backward": lambda *a: "wrong piece"}
    stage5.check_backward(nb)
    assert torch.equal(reported["dC"], stage5.cross_entropy_backward(logits, Y))
    assert sorted(reported) == sorted("d" + n for n in stage5.PARAM_NAMES)
    assert drawn == [torch.randn(1, generator=stage5.seeded(10)).item()]


def test_the_rules_are_not_importable_from_answers():
    """Hidden tests import grader.rules; students receive no such import, so answers may not."""
    hidden = ("### BEGIN HIDDEN TESTS\nfrom grader.rules import stage5 as _rules\n"
              "_rules.check_backward(globals())\n### END HIDDEN TESTS\n"
              "from makemore.checks import cmp\n")
    imports = policy.course_imports_of([hidden])
    assert imports == {("makemore.checks", "cmp")}
    found = policy.check_source("from grader.rules import stage5\n", policy.NO_AUTOGRAD, imports)
    assert found, "importing the grading rules must be refused"
