"""Stage 2 figures: solution run time, autograde time for one submission, dC variants.

    python bench/stage2.py

Targets (issue: stage 2 foundation): the solution executes in <= 20 s of kernel time on a
2-core machine; autograding one submission <= 15 s. Times drift on a shared machine; the
dC figures are ratios measured side by side.
"""
import os
import sys
import tempfile
import time
import timeit
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from crafted import Case, write_case  # noqa: E402

from grader import config  # noqa: E402
from grader.autograde import Submission, grade_student  # noqa: E402
from grader.judge import reference_answers  # noqa: E402
from grader.nbgrading import add_source, course_config, nbgrader_api  # noqa: E402

NOTEBOOK = "02_backprop_step_by_step"
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


def kernel_seconds(nb):
    """Seconds the kernel spent executing cells, from nbclient's per-cell timing."""
    from datetime import datetime
    total = 0.0
    for cell in nb.cells:
        t = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in t and "shell.execute_reply" in t:
            start, end = (datetime.fromisoformat(t[k].replace("Z", "+00:00"))
                          for k in ("iopub.execute_input", "shell.execute_reply"))
            total += (end - start).total_seconds()
    return total


def solution_run():
    nb = nbformat.read(str(config.SOLUTIONS / f"{NOTEBOOK}.ipynb"), as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, record_timing=True, extra_arguments=["--IPKernelApp.log_level=ERROR"],
                   resources={"metadata": {"path": str(config.SOLUTIONS)}}).execute()
    return kernel_seconds(nb), time.perf_counter() - start


def autograde_one():
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        start = time.perf_counter()
        sources = add_source(course)
        references = {p.stem: reference_answers(p, course_config(course))
                      for p in sources if p.stem == NOTEBOOK}
        setup = time.perf_counter() - start
        write_case(Case("solution", NOTEBOOK, {}, set(), ""), Path(tmp) / "subs")
        api = nbgrader_api(course, references=references)
        start = time.perf_counter()
        submission = Submission("solution", Path(tmp) / "subs" / "solution")
        result, = [r for r in grade_student(api, course, submission, [NOTEBOOK])
                   if r.notebook == NOTEBOOK]
        assert result.status == "graded", result
        return setup, time.perf_counter() - start


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
    setup, one = autograde_one()
    print(f"autograde one submission: {one:.1f} s (course setup and reference run, once per "
          f"grading run: {setup:.1f} s); target <= 15 s")
    times = dC_variants()
    base = times["index_add"]
    print("dC from demb, per call: " + ", ".join(
        f"{k} {v * 1e6:.1f} us ({v / base:.1f}x index_add_)" for k, v in times.items()))


if __name__ == "__main__":
    main()
