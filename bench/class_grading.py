"""Grading a class in parallel: `python -m grader autograde --jobs 2` against plain,
sequential `nbgrader autograde` on the same 40 crafted submissions.

    python bench/class_grading.py [--students 40] [--jobs 2]

Target (issue: grading a whole class): at least 1.8x faster on a 2-core machine, with
identical per-cell scores. Both runs start from a fresh course folder set up the same way
(the grader's nbgrader_config.py, so nbgrader judges as the grader does, reference answers
computed in the run); times drift on a shared machine, so the ratio is what counts. The
grader also writes feedback and the class report, so the baseline is timed twice: nbgrader
autograde alone (the issue's comparison) and followed by nbgrader generate_feedback.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from crafted import CASES, NOTEBOOKS, Case, write_case  # noqa: E402

from grader import config  # noqa: E402
from grader.nbgrading import add_source, nbgrader_api, write_nbgrader_config  # noqa: E402

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def class_of(n):
    """n submissions: correct, partly wrong and broken ones, for every notebook present."""
    waits = ("fault_loop", "fault_stubborn_loop")   # they only wait for the cell timeout
    kinds = [c for c in CASES if c.student not in waits and c.filename is None]
    cases = []
    for i in range(n):
        base = kinds[i % len(kinds)]
        cases.append(Case(f"s{i:02d}", base.notebook, base.edits, base.lost, base.why,
                          added=base.added, transform=base.transform))
    return cases


def scores(db_url):
    from nbgrader.api import Gradebook
    with Gradebook(db_url, config.COURSE_ID) as gb:
        out = {}
        for student in gb.students:
            for nb in NOTEBOOKS:
                try:
                    sub = gb.find_submission_notebook(nb, config.ASSIGNMENT, student.id)
                except Exception:
                    continue
                for g in sub.grades:
                    out[(student.id, nb, g.name)] = g.score
        return out


def run_grader(subs, out, jobs):
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "grader", "autograde", str(subs), "--out",
                          str(out), "--jobs", str(jobs), "--quiet"], cwd=REPO, env=ENV,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    return time.perf_counter() - start


def run_nbgrader(subs, out):
    """The baseline: one `nbgrader autograde` over the whole class, one notebook at a time."""
    course = out / "course"
    course.mkdir(parents=True)
    start = time.perf_counter()
    add_source(course, nbgrader_api(course, protected=[out]))
    write_nbgrader_config(course, protected=[out])
    for student in sorted(subs.iterdir()):
        dest = course / "submitted" / student.name / config.ASSIGNMENT
        dest.mkdir(parents=True)
        for nb in student.glob("*.ipynb"):
            shutil.copy(nb, dest / nb.name)
    # exits 1 because of the malformed submissions (our grader skips them before nbgrader)
    subprocess.run([str(BIN / "nbgrader"), "autograde", config.ASSIGNMENT, "--force"],
                   cwd=course, env=ENV, capture_output=True, text=True)
    graded = time.perf_counter() - start
    subprocess.run([str(BIN / "nbgrader"), "generate_feedback", config.ASSIGNMENT, "--force"],
                   cwd=course, env=ENV, capture_output=True, text=True)
    return graded, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for case in class_of(args.students):
            write_case(case, tmp / "subs")
        parallel = run_grader(tmp / "subs", tmp / "parallel", args.jobs)
        sequential, with_feedback = run_nbgrader(tmp / "subs", tmp / "sequential")
        a = scores(f"sqlite:///{tmp / 'parallel' / 'course' / 'gradebook.db'}")
        b = scores(f"sqlite:///{tmp / 'sequential' / 'course' / 'gradebook.db'}")
        reasons = (tmp / "parallel" / "summary.csv").read_text().splitlines()
    same = a == b and len(a) > 0
    print(f"class of {args.students} crafted submissions ({len(a)} graded cells), "
          f"{os.cpu_count()} cores; load average before/after: {load[0]:.1f}/{os.getloadavg()[0]:.1f}")
    print(f"python -m grader autograde --jobs {args.jobs} (grades, feedback, report): "
          f"{parallel:.1f} s")
    print(f"nbgrader autograde, sequential (grades only):              {sequential:.1f} s")
    print(f"nbgrader autograde + generate_feedback, sequential:        {with_feedback:.1f} s")
    print(f"speed-up: {sequential / parallel:.2f}x over autograde alone (target >= 1.8x), "
          f"{with_feedback / parallel:.2f}x over autograde + feedback; "
          f"per-cell scores identical: {same}")
    if not same:
        diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        print(f"  {len(diff)} cells differ, e.g. {diff[:5]}")
        for student in sorted({k[0] for k in diff}):
            print(f"  {student}: parallel {sum(v for k, v in a.items() if k[0] == student)}, "
                  f"sequential {sum(v for k, v in b.items() if k[0] == student)}; "
                  + " ".join(r for r in reasons if r.startswith(student + ",")))


if __name__ == "__main__":
    main()
