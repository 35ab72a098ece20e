"""Stages 3 and 4 figures: the fused backward passes against what they replace; grading time.

    python bench/stage3_4.py

Targets (issue: stages 3 and 4):
* the fused batchnorm backward at least 3x faster than stage 2's step-by-step chain, at n = 32
  and n = 1024, median of >= 50 repeats each;
* the fused cross-entropy backward against F.cross_entropy's forward plus autograd's backward:
  the ratio, printed;
* each notebook autogrades in well under 30 s.
The functions timed are the solution notebooks' own answer cells. Each pair is timed side by
side (calls interleaved) on one thread; absolute times drift on a shared machine, ratios less.
The batchnorm pair is timed twice: with glibc's malloc as it behaves by default, where from
n ~ 1024 the chain's many temporaries can cost page faults on every call (freed memory goes
back to the system), and with freed memory kept, which times the arithmetic alone.
"""
import ctypes
import statistics
import time

import nbformat
import torch
import torch.nn.functional as F

from measure import autograde_seconds

from grader import config
from grader.mlp import batchnorm

STAGE3, STAGE4 = "03_fused_cross_entropy", "04_fused_batchnorm"
REPEATS = 200


def solution_functions(notebook, answer_ids):
    """The functions the solution notebook's answer cells define, by name."""
    nb = nbformat.read(str(config.SOLUTIONS / f"{notebook}.ipynb"), as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    namespace = {"torch": torch, "F": F}
    for answer in answer_ids:
        exec(compile(cells[answer], f"{notebook}:{answer}", "exec"), namespace)
    return namespace


def side_by_side(a, b, repeats=REPEATS):
    """Median seconds of a() and of b(), calls interleaved so both see the same machine load."""
    a(), b()   # warm-up
    ta, tb = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        a()
        ta.append(time.perf_counter() - start)
        start = time.perf_counter()
        b()
        tb.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb)


def keep_freed_memory():
    """Make glibc keep freed memory (no trimming, no mmap per large block) in this process;
    False where that is not possible (not glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3   # mallopt parameters, <malloc.h>
    return bool(libc.mallopt(m_trim_threshold, 2**30) and libc.mallopt(m_mmap_threshold, 2**25))


def batchnorm_figures(sizes=(32, 128, 1024, 4096), width=64, heap="default allocator"):
    fns = solution_functions(STAGE4, ["answer_batchnorm", "answer_steps"])
    fused, steps = fns["batchnorm_backward"], fns["batchnorm_backward_steps"]
    g = torch.Generator().manual_seed(config.SEED)
    gain = torch.randn(1, width, generator=g) * 0.1 + 1.0
    print(f"batchnorm backward, dhprebn from dhpreact [n, {width}], median of {REPEATS} calls, "
          f"one thread, {heap} (target: fused >= 3x faster at n = 32 and 1024)")
    for n in sizes:
        x = torch.randn(n, width, generator=g) * 3 + 1
        dy = torch.randn(n, width, generator=g)
        bn = batchnorm(x, gain, torch.zeros_like(gain))
        chain = lambda: steps(dy, gain, x, bn.bndiff, bn.bndiff2, bn.bnvar, bn.bnvar_inv)  # noqa: E731
        one = lambda: fused(dy, gain, bn.bnraw, bn.bnvar_inv)  # noqa: E731
        assert torch.allclose(one(), chain(), rtol=1e-4, atol=1e-6)
        t_chain, t_fused = side_by_side(chain, one)
        verdict = "" if n not in (32, 1024) else ("  meets 3x" if t_chain >= 3 * t_fused
                                                 else "  BELOW 3x")
        print(f"  n={n:5d}: step by step {t_chain * 1e6:8.1f} us, fused {t_fused * 1e6:7.1f} us, "
              f"fused {t_chain / t_fused:4.2f}x faster{verdict}")


def cross_entropy_figures(sizes=(32, 1024, 4096), classes=27):
    fused = solution_functions(STAGE3, ["answer_cross_entropy"])["cross_entropy_backward"]
    g = torch.Generator().manual_seed(config.SEED)
    print(f"cross-entropy backward, dlogits [n, {classes}], median of {REPEATS} calls, one thread")
    for n in sizes:
        logits = torch.randn(n, classes, generator=g) * 2
        Y = torch.randint(0, classes, (n,), generator=g)
        leaf = logits.clone().requires_grad_()

        def autograd():
            leaf.grad = None
            F.cross_entropy(leaf, Y).backward()

        assert torch.allclose(fused(logits, Y), (autograd(), leaf.grad)[1], rtol=1e-4, atol=1e-7)
        t_auto, t_fused = side_by_side(autograd, lambda: fused(logits, Y))
        print(f"  n={n:5d}: F.cross_entropy + backward {t_auto * 1e6:7.1f} us, "
              f"fused {t_fused * 1e6:6.1f} us, ratio (autograd / fused) {t_auto / t_fused:4.2f}")


def autograde_times():
    """Seconds to autograde one correct submission of each notebook (after the course set-up)."""
    for notebook in (STAGE3, STAGE4):
        setup, seconds = autograde_seconds(notebook)
        print(f"autograde one submission of {notebook}: {seconds['solution']:.1f} s "
              f"(target: well under 30 s; course set-up and reference run {setup:.1f} s)")


def main():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    batchnorm_figures()
    cross_entropy_figures()
    if keep_freed_memory():
        batchnorm_figures(heap="freed memory kept")
    torch.set_num_threads(threads)
    autograde_times()


if __name__ == "__main__":
    main()
