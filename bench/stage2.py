"""Stage 2 figures: solution run time, autograde time for one submission, dC variants.

    python bench/stage2.py

Targets (issue: stage 2 foundation): the solution executes in <= 20 s of kernel time on a
2-core machine; autograding one submission <= 15 s. Times drift on a shared machine; the
dC figures are ratios measured side by side.
"""
import timeit

import torch

from measure import autograde_seconds, kernel_seconds, run_solution

from grader import config

NOTEBOOK = "02_backprop_step_by_step"


def solution_run():
    nb, wall = run_solution(NOTEBOOK)
    return kernel_seconds(nb), wall


def dC_variants(repeats=200):
    """The three ways to scatter demb back into dC, timed on the stage 2 batch shape."""
    g = torch.Generator().manual_seed(config.SEED)
    Xb = torch.randint(0, 27, (32, 3), generator=g)
    demb = torch.randn(32, 3, 10, generator=g)

    def loop():
        dC = torch.zeros(27, 10)
        for k in range(Xb.shape[0]):
            for j in range(Xb.shape[1]):
                dC[Xb[k, j]] += demb[k, j]
        return dC

    def index_add():
        return torch.zeros(27, 10).index_add_(0, Xb.view(-1), demb.view(-1, 10))

    def one_hot():
        return torch.nn.functional.one_hot(Xb.view(-1), 27).float().T @ demb.view(-1, 10)

    assert torch.allclose(loop(), index_add(), atol=1e-6)
    assert torch.allclose(loop(), one_hot(), atol=1e-6)
    return {f.__name__: min(timeit.repeat(f, number=repeats, repeat=5)) / repeats
            for f in (loop, index_add, one_hot)}


def main():
    torch.set_num_threads(1)
    kernel, wall = solution_run()
    print(f"stage 2 solution: {kernel:.1f} s kernel time ({wall:.1f} s with kernel start-up); "
          f"target <= 20 s")
    setup, seconds = autograde_seconds(NOTEBOOK)
    one = seconds["solution"]
    print(f"autograde one submission: {one:.1f} s (course setup and reference run, once per "
          f"grading run: {setup:.1f} s); target <= 15 s")
    times = dC_variants()
    base = times["index_add"]
    print("dC from demb, per call: " + ", ".join(
        f"{k} {v * 1e6:.1f} us ({v / base:.1f}x index_add_)" for k, v in times.items()))


if __name__ == "__main__":
    main()
