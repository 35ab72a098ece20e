"""Stage 4's hidden tests: batchnorm_backward on batches the student never saw.

Each check below is one test cell of 04_fused_batchnorm: it calls the student's function on
batches drawn from a seed and hands the results to the grader with `report`; the grader
compares them with the solution's, outside the kernel. Where a check grades one part of the
formula, its inputs make the other parts vanish: `orthogonal` batches have no component of
dhpreact along bnraw, so Bessel's correction does not change the answer (check_scale and the
size checks do not depend on it; check_bessel does), and `direction` grades an answer's shape
apart from its scale.
"""
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from makemore.checks import direction, report
from makemore.config import SEED
from makemore.mlp import batchnorm


def dhprebn_of(gradients):
    """dhprebn from batchnorm_backward's (dhprebn, dbngain, dbnbias); a lone tensor as it is."""
    return gradients[0] if isinstance(gradients, (tuple, list)) else gradients


def bn_cases(seed: int, shapes, dtype=torch.float32, spread: float = 10.0,
             orthogonal: bool = False) -> Iterator[tuple]:
    """(label, dhpreact, bngain, bnraw, bnvar_inv) for each (n, width): hprebn is
    spread * (N(0, 1) + 0.5); orthogonal: dhpreact has no component along bnraw."""
    gen = torch.Generator().manual_seed(SEED + seed)
    for rows, width in shapes:
        x = (torch.randn(rows, width, generator=gen, dtype=torch.float64) + 0.5) * spread
        gain = torch.randn(1, width, generator=gen, dtype=torch.float64) * 0.1 + 1.0
        dy = torch.randn(rows, width, generator=gen, dtype=torch.float64)
        x, gain, dy = x.to(dtype), gain.to(dtype), dy.to(dtype)
        steps = batchnorm(x, gain, torch.zeros_like(gain))
        raw = steps.bnraw
        if orthogonal:
            dy = dy - raw * (dy * raw).sum(0, keepdim=True) / (raw**2).sum(0, keepdim=True)
        yield f"n={rows}, width={width}", dy, gain, raw, steps.bnvar_inv


def check_bn_lecture(nb: dict) -> None:
    """Raw values of dhprebn (carried), dbngain and dbnbias on the lecture's batch."""
    f, W2, Yb = nb["f"], nb["W2"], nb["Yb"]
    with torch.no_grad():   # the lecture's dhpreact, the same in every run
        dlogits = (F.softmax(f.logits, 1) - F.one_hot(Yb, nb["vocab_size"])) / nb["n"]
        dhpreact = (1 - f.h**2) * (dlogits @ W2.T)
    nb["dhpreact"] = dhpreact   # the later cells' too: while grading, hpreact.grad is None
    gradients = nb["batchnorm_backward"](dhpreact, nb["bngain"].detach(), nb["bnraw"].detach(),
                                         nb["bnvar_inv"].detach())
    report("dhprebn", dhprebn_of(gradients), carry=True)
    if not (isinstance(gradients, (tuple, list)) and len(gradients) == 3):
        raise TypeError("batchnorm_backward must return three gradients: dhprebn, dbngain, dbnbias")
    report("dbngain", gradients[1])
    report("dbnbias", gradients[2])


def _report_cases(nb, cases, suffix="", unit=True):
    for label, *inputs in cases:
        answer = dhprebn_of(nb["batchnorm_backward"](*inputs))
        report(f"dhprebn {label}{suffix}{' (length 1)' if unit else ''}",
               direction(answer) if unit else answer)


def check_scale(nb: dict) -> None:
    """Raw values where Bessel's correction does not matter (orthogonal batches): the scale,
    gamma / s and 1/n."""
    _report_cases(nb, bn_cases(11, [(4, 64), (50, 10)], orthogonal=True), unit=False)


def check_bessel(nb: dict) -> None:
    """Direction on small batches (n = 2, 5, 8, one with a tiny spread), where n / (n - 1)
    changes it."""
    _report_cases(nb, [*bn_cases(12, [(2, 64)], spread=3e-3), *bn_cases(13, [(5, 64), (8, 64)])])


def check_bn_batch_sizes(nb: dict) -> None:
    """Direction on orthogonal batches of 5x7, 100x1 and 300x64."""
    _report_cases(nb, bn_cases(14, [(5, 7), (100, 1), (300, 64)], orthogonal=True))


def check_large_batch(nb: dict) -> None:
    """Direction on an orthogonal batch of 4096."""
    _report_cases(nb, bn_cases(15, [(4096, 64)], orthogonal=True))


def check_bn_float64(nb: dict) -> None:
    """Direction in float64: the answer keeps its input's dtype."""
    _report_cases(nb, bn_cases(16, [(32, 64), (5, 7)], dtype=torch.float64, orthogonal=True),
                  suffix=", float64")
