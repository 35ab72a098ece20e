"""Stage 1 figures: autograding one submission, Validate, and the solution run with the
lecture's step counts beside the same run with nbgrader's.

    python bench/stage1.py            # everything (the lecture's step counts train for minutes)
    python bench/stage1.py --quick    # autograde and Validate only

Targets: the whole notebook autogrades in <= 30 s on this 2-core machine, and a student's
run of it (the lecture's step counts) takes <= 3 minutes. Times drift on a shared machine;
the load average is printed beside them.
"""
import argparse
import os
import time

from nbgrader.validator import Validator

from measure import autograde_seconds, cell_seconds, run_solution

from crafted import CASES  # noqa: E402  (measure puts tests/ on the path)

from grader import config

NOTEBOOK = "01_bigram_mlp"
TARGET = 30.0   # seconds to autograde the whole notebook
RUN_TARGET = 180.0   # seconds for a student's run of the whole notebook


def load():
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def autograde(students=("solution", "variants")):
    """Seconds to autograde each student's stage 1 notebook (crafted submissions, one grading
    run), and the seconds of course setup and reference run before them."""
    cases = {c.student: c for c in CASES if c.notebook == NOTEBOOK}
    setup, seconds = autograde_seconds(NOTEBOOK, [cases[s] for s in students])
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
    nb, wall = run_solution(NOTEBOOK, mode)
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
          f"kernel start-up), {wall / RUN_TARGET:.2f} of the {RUN_TARGET:.0f} s target; "
          f"{kernel / graded:.0f}x the {graded:.1f} s with nbgrader's ({load()})")
    print("  slowest cells, lecture's counts: "
          + ", ".join(f"{cid} {t:.1f} s" for cid, t in slowest))

if __name__ == "__main__":
    main()
