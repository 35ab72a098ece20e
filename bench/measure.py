"""What several bench scripts measure the same way: how long a notebook's cells ran, how long
nbgrader takes to autograde crafted submissions of one notebook, and the cost of pieces of code
timed side by side."""
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from unittest import mock

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from crafted import Case, write_case  # noqa: E402

from grader import config  # noqa: E402
from grader.autograde import Submission, grade_student  # noqa: E402
from grader.judge import reference_answers  # noqa: E402
from makemore.training import NBGRADER_ENV  # noqa: E402
from grader.nbgrading import add_source, course_config, nbgrader_api  # noqa: E402


def alternating_blocks(blocks, rounds):
    """{name: (CPU s, wall s) per unit of work}, medians over `rounds` blocks of each name.

    blocks: {name: (run, units)}, where run() does `units` units of work (calls, steps). The
    blocks of all names alternate, so that other work on this shared machine affects them
    alike; each block runs its own code many times in a row, so each is timed in its own steady
    state (caches, allocator), as timeit would. CPU time is this thread's: time the machine
    gave to other processes does not count.
    """
    cpu = {name: [] for name in blocks}
    wall = {name: [] for name in blocks}
    for _ in range(rounds):
        for name, (run, units) in blocks.items():
            c0, w0 = time.thread_time(), time.perf_counter()
            run()
            cpu[name].append((time.thread_time() - c0) / units)
            wall[name].append((time.perf_counter() - w0) / units)
    return {name: (statistics.median(cpu[name]), statistics.median(wall[name])) for name in blocks}


def cell_seconds(cell):
    """Seconds a code cell ran, from nbclient's timing metadata (record_timing=True); 0 if none."""
    t = cell.get("metadata", {}).get("execution", {})
    if "iopub.execute_input" not in t or "shell.execute_reply" not in t:
        return 0.0
    start, end = (datetime.fromisoformat(t[k].replace("Z", "+00:00"))
                  for k in ("iopub.execute_input", "shell.execute_reply"))
    return (end - start).total_seconds()


def kernel_seconds(nb):
    """Seconds the kernel spent executing the notebook's cells."""
    return sum(cell_seconds(c) for c in nb.cells if c.cell_type == "code")


def run_solution(notebook, mode=None, timeout=3600):
    """(the solution notebook executed with timings, wall seconds). mode: NBGRADER_EXECUTION
    while it runs ("autograde" runs the training cells short), None as a person runs it."""
    nb = nbformat.read(str(config.SOLUTIONS / f"{notebook}.ipynb"), as_version=4)
    with mock.patch.dict(os.environ, {NBGRADER_ENV: mode} if mode else {}):
        if not mode:
            os.environ.pop(NBGRADER_ENV, None)   # put back, if set, when the block ends
        start = time.perf_counter()
        NotebookClient(nb, record_timing=True, timeout=timeout,
                       extra_arguments=["--IPKernelApp.log_level=ERROR"],
                       resources={"metadata": {"path": str(config.SOLUTIONS)}}).execute()
        return nb, time.perf_counter() - start


def autograde_seconds(notebook, cases=None):
    """(seconds of course setup and reference run, {student: seconds to autograde}) for crafted
    submissions of one notebook (default: the solution), graded one after another."""
    cases = cases or [Case("solution", notebook, {}, set(), "")]
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        start = time.perf_counter()
        sources = add_source(course)
        references = {p.stem: reference_answers(p, course_config(course))
                      for p in sources if p.stem == notebook}
        setup = time.perf_counter() - start
        api = nbgrader_api(course, references=references)
        seconds = {}
        for case in cases:
            write_case(case, Path(tmp) / "subs")
            submission = Submission(case.student, Path(tmp) / "subs" / case.student)
            start = time.perf_counter()
            result, = [r for r in grade_student(api, course, submission, [notebook])
                       if r.notebook == notebook]
            assert result.status == "graded", result
            seconds[case.student] = time.perf_counter() - start
        return setup, seconds
