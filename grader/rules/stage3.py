"""Stage 3's hidden tests: cross_entropy_backward on inputs the student never saw.

Each check below is one test cell of 03_fused_cross_entropy (its grade id, without `check_`
in front of the notebook's name): it calls the student's function on logits drawn from a seed
and hands the results to the grader with `report`; the grader compares them with the
solution's, outside the kernel. `direction` grades the shape of an answer apart from its
scale, so a missing 1/n costs only check_mean.
"""
from collections.abc import Iterator

import torch

from makemore.checks import direction, report
from makemore.config import SEED


def logits_cases(seed: int, shapes, dtype=torch.float32, spread: float = 2.0,
                 offset: float = 0.0) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
    """(label, logits, Y) for each (n, C) in shapes: spread * N(0, 1) logits, each row
    shifted by +-offset (offset 1000: exp overflows), and random targets."""
    gen = torch.Generator().manual_seed(SEED + seed)
    for rows, classes in shapes:
        logits = torch.randn(rows, classes, generator=gen, dtype=torch.float64) * spread
        logits += offset * torch.randn(rows, 1, generator=gen, dtype=torch.float64).sign()
        Y = torch.randint(0, classes, (rows,), generator=gen)
        yield f"n={rows}, C={classes}", logits.to(dtype), Y


def all_finite(answer) -> bool:
    return isinstance(answer, torch.Tensor) and bool(torch.isfinite(answer).all())


def check_ce_lecture(nb: dict) -> None:
    """Raw values on the lecture's batch; carried, so later cells build on the right dlogits."""
    report("dlogits", nb["cross_entropy_backward"](nb["logits"].detach(), nb["Yb"]), carry=True)


def check_mean(nb: dict) -> None:
    """Raw values (the 1/n of the mean included) on batches of 3, 7 and 300."""
    for label, logits, Y in logits_cases(1, [(3, 27), (7, 27), (300, 27)]):
        report(f"dlogits {label}", nb["cross_entropy_backward"](logits, Y))


def check_ce_batch_sizes(nb: dict) -> None:
    """Direction (scaled to length 1) on batches of 1, 3 and 4096: the scale is check_mean's."""
    for label, logits, Y in logits_cases(2, [(1, 27), (3, 27), (4096, 27)]):
        report(f"dlogits {label} (length 1)", direction(nb["cross_entropy_backward"](logits, Y)))


def check_classes(nb: dict) -> None:
    """Direction on 2, 10 and 1000 classes."""
    for label, logits, Y in logits_cases(3, [(16, 2), (16, 10), (16, 1000)]):
        report(f"dlogits {label} (length 1)", direction(nb["cross_entropy_backward"](logits, Y)))


def check_ce_float64(nb: dict) -> None:
    """Direction in float64: the answer keeps its input's dtype."""
    for label, logits, Y in logits_cases(4, [(32, 27), (5, 3)], dtype=torch.float64):
        report(f"dlogits {label}, float64 (length 1)",
               direction(nb["cross_entropy_backward"](logits, Y)))


def check_large_logits(nb: dict) -> None:
    """All finite, and the direction, where exp overflows (rows shifted by +-1000, logits
    spread over +-3000): the max is subtracted before exp."""
    for what, cases in [
            ("shifted by +-1000", logits_cases(5, [(64, 27)], spread=4.0, offset=1000.0)),
            ("spread over +-3000", logits_cases(6, [(64, 27)], spread=1000.0))]:
        for label, logits, Y in cases:
            answer = nb["cross_entropy_backward"](logits, Y)
            report(f"all finite, {label} {what}", all_finite(answer))
            report(f"dlogits {label} {what} (length 1)", direction(answer))
