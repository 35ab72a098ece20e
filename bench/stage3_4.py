"""Stages 3 and 4 figures: the fused backward passes against what they replace; grading time.

    python bench/stage3_4.py

Targets (issue: stages 3 and 4):
* the fused batchnorm backward faster than stage 2's step-by-step chain, at n = 32 and
  n = 1024, median of >= 50 repeats each: the solution's readable formula at least 2x, the
  same formula written into one tensor in place (stage 4's optional answer_in_place) at least
  3x. All three compute batchnorm's three gradients (dhprebn, dbngain, dbnbias);
* the fused cross-entropy backward against F.cross_entropy's forward plus autograd's backward:
  the ratio, printed;
* each notebook autogrades in well under 30 s.
The functions timed are the solution notebooks' own answer cells. Each pair is timed side by
side on one thread: blocks of 20 calls of each function alternate, 100 blocks each, and the
figures are medians over the blocks of this thread's CPU time per call (wall time drifts more
on a shared machine; its ratio is printed too). The batchnorm pair is timed twice: with glibc's
malloc as it behaves by default, where from n ~ 1024 the chain's many temporaries can cost
page faults on every call (freed memory goes back to the system), and with freed memory kept,
which times the arithmetic alone.
"""
import ctypes
import functools

import nbformat
import torch
import torch.nn.functional as F

from measure import alternating_blocks, autograde_seconds

from grader import config
from makemore.mlp import batchnorm

STAGE3, STAGE4 = "03_fused_cross_entropy", "04_fused_batchnorm"
CALLS, BLOCKS = 20, 100   # each figure: the median over 100 blocks of 20 calls
# the solution's readable formula and the in-place variant: how much faster than stage 2's chain
BN_TARGETS = {"formula": 2, "in place": 3}


def solution_functions(notebook, answer_ids):
    """The functions the solution notebook's answer cells define, by name."""
    nb = nbformat.read(str(config.SOLUTIONS / f"{notebook}.ipynb"), as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    namespace = {"torch": torch, "F": F}
    for answer in answer_ids:
        exec(compile(cells[answer], f"{notebook}:{answer}", "exec"), namespace)
    return namespace


def calls(fn, k):
    for _ in range(k):
        fn()


def side_by_side(fns):
    """{name: (CPU s, wall s) per call} of the functions in fns, timed in alternating blocks."""
    for fn in fns.values():
        fn()   # warm-up
    return alternating_blocks({name: (functools.partial(calls, fn, CALLS), CALLS)
                               for name, fn in fns.items()}, BLOCKS)


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
    fns = solution_functions(STAGE4, ["answer_batchnorm", "answer_in_place", "answer_steps"])
    steps = fns["batchnorm_backward_steps"]
    variants = {"formula": fns["batchnorm_backward"],
                "in place": fns["batchnorm_backward_in_place"]}
    g = torch.Generator().manual_seed(config.SEED)
    gain = torch.randn(1, width, generator=g) * 0.1 + 1.0
    print(f"batchnorm backward, (dhprebn, dbngain, dbnbias) from dhpreact [n, {width}], "
          f"median of {BLOCKS} blocks of {CALLS} calls, one thread, {heap} (targets at n = 32 and "
          f"1024: {', '.join(f'{name} >= {x}x' for name, x in BN_TARGETS.items())} faster than "
          "the chain)")
    for n in sizes:
        x = torch.randn(n, width, generator=g) * 3 + 1
        dy = torch.randn(n, width, generator=g)
        bn = batchnorm(x, gain, torch.zeros_like(gain))
        fns = {"chain": lambda: steps(dy, gain, bn.bnraw, x, bn.bndiff, bn.bndiff2,  # noqa: E731
                                      bn.bnvar, bn.bnvar_inv)}
        for name, fn in variants.items():
            fns[name] = functools.partial(fn, dy, gain, bn.bnraw, bn.bnvar_inv)
            for a, b in zip(fns[name](), fns["chain"](), strict=True):
                assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
        t = side_by_side(fns)
        c_chain, w_chain = t["chain"]
        line = f"  n={n:5d}: step by step {c_chain * 1e6:8.1f} us"
        for name, target in BN_TARGETS.items():
            c, w = t[name]
            verdict = "" if n not in (32, 1024) else (
                f" meets {target}x" if c_chain >= target * c else f" BELOW {target}x")
            line += (f"; {name} {c * 1e6:7.1f} us, {c_chain / c:4.2f}x (wall {w_chain / w:4.2f}x)"
                     f"{verdict}")
        print(line)


def cross_entropy_figures(sizes=(32, 1024, 4096), classes=27):
    fused = solution_functions(STAGE3, ["answer_cross_entropy"])["cross_entropy_backward"]
    g = torch.Generator().manual_seed(config.SEED)
    print(f"cross-entropy backward, dlogits [n, {classes}], median of {BLOCKS} blocks of {CALLS} "
          "calls, one thread")
    for n in sizes:
        logits = torch.randn(n, classes, generator=g) * 2
        Y = torch.randint(0, classes, (n,), generator=g)
        leaf = logits.clone().requires_grad_()

        def autograd():
            leaf.grad = None
            F.cross_entropy(leaf, Y).backward()

        assert torch.allclose(fused(logits, Y), (autograd(), leaf.grad)[1], rtol=1e-4, atol=1e-7)
        t = side_by_side({"autograd": autograd, "fused": lambda: fused(logits, Y)})
        (c_auto, w_auto), (c_fused, w_fused) = t["autograd"], t["fused"]
        print(f"  n={n:5d}: F.cross_entropy + backward {c_auto * 1e6:7.1f} us, "
              f"fused {c_fused * 1e6:6.1f} us CPU, ratio (autograd / fused) "
              f"{c_auto / c_fused:4.2f} (wall {w_auto / w_fused:4.2f})")


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
