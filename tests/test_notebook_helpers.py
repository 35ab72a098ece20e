"""Helpers the notebooks call: visible checks, the softmax switched off, and answer records."""
import json
import math
import re

import pytest
import torch
import torch.nn.functional as F

from makemore.checks import ByHandOnly, by_hand, check, decode, encode


def test_check_prints_the_verdict_and_passes_within_tolerance(capsys):
    check("P", torch.tensor([0.25, 0.75]) * (1 + 1e-6), torch.tensor([0.25, 0.75]))
    assert capsys.readouterr().out.startswith("P ")


@pytest.mark.parametrize("answer, expected, hint", [
    (torch.zeros(27), torch.zeros(27, 1), "shape [27] but [27, 1] expected"),
    (torch.tensor([1.0, 2.0]), torch.tensor([-1.0, -2.0]), "a sign is flipped"),
    (29.66, 3.2958, "29.66 but 3.2958 expected"),
    (float("nan"), 1.72, "nan but 1.72 expected"),
])
def test_check_raises_with_a_hint_when_wrong(answer, expected, hint):
    with pytest.raises(AssertionError, match=re.escape(hint)):
        check("x", answer, expected)


def ready_made_calls(logits, y):
    return {
        "F.cross_entropy": lambda: F.cross_entropy(logits, y),
        "F.softmax": lambda: F.softmax(logits, dim=1),
        "F.log_softmax": lambda: F.log_softmax(logits, dim=1),
        "F.nll_loss": lambda: F.nll_loss(logits, y),
        "Tensor.softmax": lambda: logits.softmax(1),
        "Tensor.log_softmax": lambda: logits.log_softmax(1),
        "torch.softmax": lambda: torch.softmax(logits, 1),
        "torch.special.log_softmax": lambda: torch.special.log_softmax(logits, 1),
        "nn.CrossEntropyLoss": lambda: torch.nn.CrossEntropyLoss()(logits, y),
        # log-sum-exp takes the maximum out for the answer: a stable softmax done for it
        "torch.logsumexp": lambda: torch.logsumexp(logits, 1),
        "Tensor.logsumexp": lambda: logits.logsumexp(1, keepdim=True),
        "torch.special.logsumexp": lambda: torch.special.logsumexp(logits, 1),
        "Tensor.logcumsumexp": lambda: logits.logcumsumexp(1),
        "torch.logaddexp": lambda: torch.logaddexp(logits[:, 0], logits[:, 1]),
    }


def test_by_hand_switches_off_softmax_and_cross_entropy_inside_only():
    logits, y = torch.randn(5, 27), torch.randint(0, 27, (5,))
    before = {k: f() for k, f in ready_made_calls(logits, y).items()}
    with by_hand():
        for name, call in ready_made_calls(logits, y).items():
            with pytest.raises(ByHandOnly, match="compute it by hand"):
                call()
                pytest.fail(f"{name} still works inside by_hand")
        counts = logits.exp()   # the pieces of a softmax by hand still work
        assert torch.isfinite(counts / counts.sum(1, keepdim=True)).all()
    for name, call in ready_made_calls(logits, y).items():
        assert torch.equal(call(), before[name]), f"{name} not restored"
    assert "softmax" not in vars(torch.Tensor), "Tensor.softmax left shadowed"


def test_by_hand_restores_everything_when_the_answer_raises():
    original = F.cross_entropy
    with pytest.raises(ZeroDivisionError):
        with by_hand():
            raise ZeroDivisionError("an answer that fails")
    assert F.cross_entropy is original


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 2.5, 3, True])
def test_numbers_survive_the_trip_to_the_grader_as_strict_json(value):
    record = json.loads(json.dumps(encode(value), allow_nan=False))
    got = decode(record)
    assert (math.isnan(got) and math.isnan(value)) or (got == value and type(got) is type(value))
