"""Stage 1 figures: autograding one submission, Validate, and the solution run with the
lecture's step counts beside the same run with nbgrader's.

    python bench/stage1.py            # everything (the lecture's step counts train for minutes)
    python bench/stage1.py --quick    # autograde and Validate only

Target (issue: stage 1 notebook): the whole notebook autogrades in <= 30 s on this 2-core
machine. Times drift on a shared machine; the load average is printed beside them.
"""
import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbgrader.validator import Validator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from crafted import CASES, write_case  # noqa: E402

from grader import config  # noqa: E402
from grader.autograde import grade_student  # noqa: E402
from grader.judge import reference_answers  # noqa: E402
from grader.nbgrading import add_source, course_config, nbgrader_api  # noqa: E402
from grader.training import NBGRADER_ENV  # noqa: E402

NOTEBOOK = "01_bigram_mlp"
TARGET = 30.0   # seconds to autograde the whole notebook
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


def load():
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def cell_seconds(cell):
    t = cell.get("metadata", {}).get("execution", {})
    if "iopub.execute_input" not in t or "shell.execute_reply" not in t:
        return 0.0
    start, end = (datetime.fromisoformat(t[k].replace("Z", "+00:00"))
                  for k in ("iopub.execute_input", "shell.execute_reply"))
    return (end - start).total_seconds()


def autograde(students=("solution", "variants")):
    """Seconds to autograde each student's stage 1 notebook (crafted submissions, one grading
    run), and the seconds of course setup and reference run before them."""
    cases = {c.student: c for c in CASES if c.notebook == NOTEBOOK}
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        start = time.perf_counter()
        sources = add_source(course)
        references = {p.stem: reference_answers(p, course_config(course)) for p in sources
                      if p.stem == NOTEBOOK}
        setup = time.perf_counter() - start
        api = nbgrader_api(course, references=references)
        seconds = {}
        for student in students:
            write_case(cases[student], Path(tmp) / "subs")
            start = time.perf_counter()
            result, = grade_student(api, course, Path(tmp) / "subs" / student, [NOTEBOOK])
            assert result.status == "graded", result
            seconds[student] = time.perf_counter() - start
        return seconds, setup


def validate():
    """Seconds for nbgrader's Validate on the solution, as a student's Validate button runs it."""
    start = time.perf_counter()
    result = Validator().validate(str(config.SOLUTIONS / f"{NOTEBOOK}.ipynb"))
    assert result == {}, result
    return time.perf_counter() - start


def run(mode):
    """Execute the solution with NBGRADER_EXECUTION=mode (None: as a person runs it): kernel
    seconds, wall seconds and the five slowest cells as [(cell id, seconds)]."""
    saved = os.environ.pop(NBGRADER_ENV, None)
    if mode:
        os.environ[NBGRADER_ENV] = mode
    try:
        nb = nbformat.read(str(config.SOLUTIONS / f"{NOTEBOOK}.ipynb"), as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, record_timing=True, timeout=3600,
                       resources={"metadata": {"path": str(config.SOLUTIONS)}}).execute()
        wall = time.perf_counter() - start
    finally:
        os.environ.pop(NBGRADER_ENV, None)
        if saved is not None:
            os.environ[NBGRADER_ENV] = saved
    times = sorted(((c.id, cell_seconds(c)) for c in nb.cells if c.cell_type == "code"),
                   key=lambda x: -x[1])
    return sum(t for _, t in times), wall, times[:5]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="skip the runs with the lecture's step counts")
    args = parser.parse_args()
    seconds, setup = autograde()
    one, lecture_style = seconds["solution"], seconds["variants"]
    print(f"stage 1 autograde, one submission (the solution handed in): {one:.1f} s, "
          f"{one / TARGET:.2f} of the {TARGET:.0f} s target ({load()})")
    print(f"  with lecture-style loops in the answers (crafted 'variants'): "
          f"{lecture_style:.1f} s, {lecture_style / one:.2f}x the solution's, "
          f"{lecture_style / TARGET:.2f} of the target")
    print(f"  once per grading run: course setup and reference run {setup:.1f} s")
    print(f"stage 1 Validate (the student's button): {validate():.1f} s ({load()})")
    if args.quick:
        return
    graded, _, _ = run("autograde")
    kernel, wall, slowest = run(None)
    print(f"stage 1 kernel time with the lecture's step counts: {kernel:.1f} s ({wall:.1f} s with "
          f"kernel start-up), {kernel / graded:.0f}x the {graded:.1f} s with nbgrader's "
          f"({load()})")
    print("  slowest cells, lecture's counts: "
          + ", ".join(f"{cid} {t:.1f} s" for cid, t in slowest))

if __name__ == "__main__":
    main()
