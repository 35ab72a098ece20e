"""Grading a class in parallel: `python -m grader autograde --jobs 2` against plain,
sequential `nbgrader autograde` on the same 40 crafted submissions.

    python bench/class_grading.py [--students 40] [--jobs 2]

Target (issue: grading a whole class): at least 1.8x faster on a 2-core machine, with
identical per-cell scores. Every run starts from a fresh course folder set up the same way
(the grader's nbgrader_config.py, so nbgrader judges as the grader does; reference answers
computed in each run). Like is compared with like: the grader with --no-feedback against
`nbgrader autograde`, and the grader's full output (feedback, report) against `nbgrader
autograde` followed by `nbgrader generate_feedback`. The runs are interleaved and the load
average printed: on a shared machine other work slows whichever run it meets, so the
ratio means most when the load stays near the grader's own (about 2 with --jobs 2).
"""
import argparse
import os
import resource
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


def cpu():
    """CPU seconds used so far by this script's finished child processes (all of them)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CGROUPS = Path("/sys/fs/cgroup/cpuacct")   # cgroup v1's CPU accounting, where there is one


def measured(command, **kwargs):
    """(wall seconds, CPU seconds, the CompletedProcess) of a command's whole process tree.

    Where a cpuacct cgroup can be made (root, cgroup v1), the command runs in one of its own,
    which counts every descendant: a sandboxed kernel's processes too, whose parent (bwrap)
    is killed before it waits for them, so that getrusage never sees their CPU. Elsewhere the
    CPU is this script's finished children's (rusage), kernels not included."""
    group = CGROUPS / f"bench-{os.getpid()}-{time.monotonic_ns()}"
    try:
        group.mkdir()
    except OSError:
        group = None
    c0, start = cpu(), time.perf_counter()
    if group is not None:
        kwargs["preexec_fn"] = lambda: (group / "cgroup.procs").write_text(str(os.getpid()))
    run = subprocess.run(command, capture_output=True, text=True, **kwargs)
    wall = time.perf_counter() - start
    if group is None:
        return wall, cpu() - c0, run
    used = int((group / "cpuacct.usage").read_text()) / 1e9
    for _ in range(50):   # empty once the last sandboxed process has died
        try:
            group.rmdir()
            break
        except OSError:
            time.sleep(0.1)
    return wall, used, run


def whole_tree():
    """How the CPU seconds below are counted."""
    probe = CGROUPS / f"bench-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
        return "CPU of whole process trees, sandboxed kernels included (a cpuacct cgroup per run)"
    except OSError:
        return ("CPU of finished child processes (getrusage; no cgroup here: the sandboxed "
                "kernels' CPU is NOT included)")


def run_grader(subs, out, jobs, feedback, sandbox=True):
    """(wall seconds, CPU seconds) of one `python -m grader autograde` run."""
    wall, used, run = measured([sys.executable, "-m", "grader", "autograde", str(subs), "--out",
                                str(out), "--jobs", str(jobs), "--quiet",
                                *([] if feedback else ["--no-feedback"]),
                                *([] if sandbox else ["--no-sandbox"])], cwd=REPO, env=ENV)
    assert run.returncode == 0, run.stderr[-2000:]
    return wall, used


def nbgrader_course(subs, out):
    """OUT/course set up as the grader sets it up, with every student's notebooks submitted
    for a plain `nbgrader autograde`; its path."""
    course = out / "course"
    course.mkdir(parents=True)
    add_source(course, nbgrader_api(course, protected=[out]))
    write_nbgrader_config(course, protected=[out])
    for student in sorted(subs.iterdir()):
        dest = course / "submitted" / student.name / config.ASSIGNMENT
        dest.mkdir(parents=True)
        for nb in student.glob("*.ipynb"):
            shutil.copy(nb, dest / nb.name)
    return course


def run_nbgrader(subs, out):
    """The baseline: one `nbgrader autograde` over the whole class, one notebook at a time,
    then `nbgrader generate_feedback`: (wall, CPU) seconds after each."""
    start = time.perf_counter()
    course = nbgrader_course(subs, out)
    setup = time.perf_counter() - start
    # exits 1 because of the malformed submissions (the grader sets them aside beforehand)
    wall, used, _ = measured([str(BIN / "nbgrader"), "autograde", config.ASSIGNMENT, "--force"],
                             cwd=course, env=ENV)
    more_wall, more_used, _ = measured([str(BIN / "nbgrader"), "generate_feedback",
                                        config.ASSIGNMENT, "--force"], cwd=course, env=ENV)
    return (setup + wall, used), (setup + wall + more_wall, used + more_used)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for case in class_of(args.students):
            write_case(case, tmp / "subs")
        # a first, untimed run of one student: the first grading process of a run reads
        # torch, nbgrader and the course from disk, which would count against whichever
        # variant came first
        write_case(class_of(1)[0], tmp / "warm-up")
        run_grader(tmp / "warm-up", tmp / "warm-up-out", 1, feedback=False)
        # interleaved, so that other load on a shared machine hits both sides alike
        scores_only, scores_cpu = run_grader(tmp / "subs", tmp / "parallel", args.jobs,
                                             feedback=False)
        loads.append(os.getloadavg()[0])
        (sequential, sequential_cpu), (with_feedback, feedback_cpu) = run_nbgrader(
            tmp / "subs", tmp / "sequential")
        loads.append(os.getloadavg()[0])
        full, full_cpu = run_grader(tmp / "subs", tmp / "parallel_feedback", args.jobs,
                                    feedback=True)
        loads.append(os.getloadavg()[0])
        unsandboxed, _ = run_grader(tmp / "subs", tmp / "unsandboxed", args.jobs,
                                    feedback=False, sandbox=False)
        loads.append(os.getloadavg()[0])
        a = scores(f"sqlite:///{tmp / 'parallel' / 'course' / 'gradebook.db'}")
        b = scores(f"sqlite:///{tmp / 'sequential' / 'course' / 'gradebook.db'}")
        c = scores(f"sqlite:///{tmp / 'parallel_feedback' / 'course' / 'gradebook.db'}")
        reasons = (tmp / "parallel" / "summary.csv").read_text().splitlines()
    # a notebook nbgrader cannot read has no grades in one gradebook and zeros in the other
    keys = a.keys() | b.keys() | c.keys()
    diff = sorted(k for k in keys if not a.get(k, 0) == b.get(k, 0) == c.get(k, 0))
    print(f"class of {args.students} crafted submissions ({len(keys)} graded cells), "
          f"{os.cpu_count()} cores; 1-min load average before/between/after runs: "
          + "/".join(f"{x:.1f}" for x in loads))
    print(f"python -m grader autograde --jobs {args.jobs} --no-feedback:  {scores_only:6.1f} s")
    print(f"nbgrader autograde, sequential:                   {sequential:6.1f} s   "
          f"speed-up {sequential / scores_only:.2f}x (target >= 1.8x)")
    print(f"the same without the sandbox (--no-sandbox):     {unsandboxed:6.1f} s   "
          f"the sandbox costs {scores_only / unsandboxed - 1:+.1%} (target <= +10%)")
    print(f"python -m grader autograde --jobs {args.jobs} (+ feedback, report): {full:6.1f} s")
    print(f"nbgrader autograde + generate_feedback:           {with_feedback:6.1f} s   "
          f"speed-up {with_feedback / full:.2f}x")
    print(f"CPU seconds ({whole_tree()}; cores busy on average): grader "
          f"{scores_cpu:.0f} ({scores_cpu / scores_only:.2f}), nbgrader {sequential_cpu:.0f} "
          f"({sequential_cpu / sequential:.2f}), {scores_cpu / sequential_cpu:.2f}x; with "
          f"feedback: grader {full_cpu:.0f}, nbgrader {feedback_cpu:.0f}, "
          f"{full_cpu / feedback_cpu:.2f}x")
    print(f"per-cell scores identical in the three gradebooks: {not diff}")
    for student in sorted({k[0] for k in diff}):
        cells = sorted((k[1], k[2]) for k in diff if k[0] == student)
        print(f"  {student} differs in {', '.join(f'{nb} {cell}' for nb, cell in cells)}: "
              "parallel / sequential / parallel with feedback: "
              + " / ".join(str([g.get((student, nb, cell)) for nb, cell in cells])
                           for g in (a, b, c)) + "; "
              + " ".join(r for r in reasons if r.startswith(student + ",")))


if __name__ == "__main__":
    main()
