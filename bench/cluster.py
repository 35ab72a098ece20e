"""Grading on a Dask cluster: scaling from 1 to 2 workers, the scheduler's cost per task, CPU
per graded notebook against sequential nbgrader, and the wall time projected for 10,000
students.

    python bench/cluster.py [--students 10]

Every run grades crafted submissions (bench/class_grading.py's class_of: the first five
students hand in each notebook's solution, the next five its untouched release, ...) from a
fresh output folder, with the reference answers already cached (the first run computes them
and is shown apart): `autograde --cluster local:1` and `local:2`, the home-made process pool
(`--jobs 2`) for comparison, and plain sequential `nbgrader autograde` with the course's
configuration (the same judge and sandbox), each on the class and on a class of one, whose
difference is the marginal cost of a notebook (the fixed cost of a run cancels out). CPU
seconds are those of each command's whole process tree, sandboxed kernels included, counted in
a cpuacct cgroup (where one can be made; elsewhere getrusage, which misses the kernels: the
output says which). The tiny tasks time the scheduler; the client's cost per student is its
gradebook import, timed on the run's own grades. On a machine shared with other work the wall
times move with its load (printed); CPU seconds much less.

Aim (issue: grade a MOOC-size class on a cluster): CPU per notebook at or below 0.7x
sequential nbgrader's, at equal scores.
"""
import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from class_grading import (BIN, ENV, REPO, class_of, measured, nbgrader_course,  # noqa: E402
                           scores, whole_tree)
from crafted import NOTEBOOKS, write_case  # noqa: E402

from grader import config  # noqa: E402

STUDENTS_PROJECTED = 10_000
CORES = (10, 100, 1000)
TINY_TASKS = 3000


def run_grader(subs, out, *how):
    """(wall seconds, CPU seconds) of one `python -m grader autograde` run."""
    wall, used, run = measured([sys.executable, "-m", "grader", "autograde", str(subs),
                                "--out", str(out), "--quiet", "--no-feedback", *how],
                               cwd=REPO, env=ENV)
    assert run.returncode == 0, run.stderr[-3000:]
    return wall, used


def run_nbgrader(subs, out):
    """(wall seconds, CPU seconds) of `nbgrader autograde` over the whole class, one notebook
    after another, in a course folder set up as the grader sets it up (not timed)."""
    course = nbgrader_course(subs, out)
    # exits 1 because of the malformed submissions (the grader sets them aside beforehand)
    wall, used, _ = measured([str(BIN / "nbgrader"), "autograde", config.ASSIGNMENT, "--force"],
                             cwd=course, env=ENV)
    return wall, used


def _tiny(i):
    return i + 1


def scheduler_overhead(tasks=TINY_TASKS, rounds=3):
    """Seconds of wall time per task, and CPU seconds per task of the client and scheduler
    (this process), for `tasks` tiny tasks on a local cluster of 2 workers (best of rounds)."""
    from distributed import Client, LocalCluster, wait
    import logging
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.ERROR,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, \
            Client(cluster) as client:
        client.submit(_tiny, 0).result()
        walls, cpus = [], []
        for r in range(rounds):
            c0, start = time.process_time(), time.perf_counter()
            wait(client.map(_tiny, range(r * tasks, (r + 1) * tasks)))
            walls.append((time.perf_counter() - start) / tasks)
            cpus.append((time.process_time() - c0) / tasks)
    return min(walls), min(cpus)


def client_seconds_per_student(out, students):
    """Seconds the client spends importing one student's grades into the course gradebook
    (its serial work per student besides writing a few files), measured on the run's own
    gradebook entries imported into a copy of the gradebook."""
    from nbgrader.api import Gradebook
    from grader.autograde import export_grades, import_grades
    source = f"sqlite:///{out / 'course' / 'gradebook.db'}"
    grades = [g for g in (export_grades(source, s) for s in students) if g]
    copy = out / "course" / "import-bench.db"
    shutil.copy(out / "course" / "gradebook.db", copy)
    with Gradebook(f"sqlite:///{copy}", config.COURSE_ID) as gb:
        start = time.perf_counter()
        for _ in range(5):
            for g in grades:
                import_grades(gb, g)
        seconds = (time.perf_counter() - start) / (5 * len(grades))
    copy.unlink()
    return seconds


def read_log(out):
    with open(out / "course" / ".cluster-run.csv", newline="") as f:
        return list(csv.DictReader(f))


def graded_notebooks(out):
    with open(out / "summary.csv", newline="") as f:
        return sum(r["status"] == "graded" for r in csv.DictReader(f))


def fmt(seconds):
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=10)
    args = parser.parse_args()
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ENV[config.REFERENCE_CACHE_ENV] = str(tmp / "references")   # shared by every run
        cases = class_of(args.students)
        for case in cases:
            write_case(case, tmp / "subs")
        write_case(cases[0], tmp / "subs1")   # a class of one: the fixed cost of a run
        notebook_of = {c.student: c.notebook for c in cases}
        runs = {}
        for name, how in [("cold", ("subs", "--cluster", "local:2")),
                          ("one", ("subs", "--cluster", "local:1")),
                          ("two", ("subs", "--cluster", "local:2")),
                          ("pool", ("subs", "--jobs", "2")),
                          ("one_1", ("subs1", "--cluster", "local:1"))]:
            runs[name] = run_grader(tmp / how[0], tmp / name, *how[1:])
            loads.append(os.getloadavg()[0])
        runs["seq"] = run_nbgrader(tmp / "subs", tmp / "seq")
        runs["seq_1"] = run_nbgrader(tmp / "subs1", tmp / "seq_1")
        loads.append(os.getloadavg()[0])
        per_task_wall, per_task_cpu = scheduler_overhead()
        loads.append(os.getloadavg()[0])
        n, n1 = graded_notebooks(tmp / "one"), graded_notebooks(tmp / "one_1")
        log = read_log(tmp / "one")
        task_wall = {r["student"]: float(r["seconds"]) for r in log}
        pipeline = sum(float(r["worker_cpu_seconds"]) for r in log) / n
        # class_of's first five students hand in each notebook's solution
        solutions = {notebook_of[s]: w for s, w in task_wall.items()
                     if int(s[1:]) < len(NOTEBOOKS)}
        client_per_student = client_seconds_per_student(tmp / "two", [r["student"]
                                                                      for r in log])
        gradebooks = [scores(f"sqlite:///{tmp / name / 'course' / 'gradebook.db'}")
                      for name in ("one", "two", "pool", "seq")]
    keys = set().union(*gradebooks)
    same = all(len({g.get(k, 0) for g in gradebooks}) == 1 for k in keys)
    wall, used = ({k: v[i] for k, v in runs.items()} for i in (0, 1))
    efficiency = wall["one"] / (2 * wall["two"])
    print(f"class of {args.students} crafted submissions ({n} notebooks graded, {len(keys)} "
          f"graded cells), {os.cpu_count()} cores; 1-min load average before/between/after "
          "runs: " + "/".join(f"{x:.1f}" for x in loads))
    print(whole_tree())
    for name, what in [("cold", "--cluster local:2, computing the reference answers"),
                       ("one", "--cluster local:1"), ("two", "--cluster local:2"),
                       ("pool", "--jobs 2 (the process pool, no Dask)"),
                       ("seq", "nbgrader autograde, sequential (course set up untimed)"),
                       ("one_1", "--cluster local:1, a class of one"),
                       ("seq_1", "nbgrader autograde, a class of one")]:
        print(f"  {what + ':':56} {wall[name]:6.1f} s wall {used[name]:7.1f} CPU-s")
    print(f"scaling 1 -> 2 workers: {wall['one'] / wall['two']:.2f}x faster, efficiency "
          f"{efficiency:.0%}; --cluster local:2 against the pool (--jobs 2): "
          f"{wall['two'] / wall['pool']:.2f}x the wall time, {used['two'] / used['pool']:.2f}x "
          "the CPU")
    print(f"scheduler: {per_task_wall * 1e3:.2f} ms wall and {per_task_cpu * 1e3:.2f} ms CPU "
          f"(client and scheduler) per task, {TINY_TASKS} tiny tasks on 2 workers")
    ours = (used["one"] - used["one_1"]) / (n - n1)
    theirs = (used["seq"] - used["seq_1"]) / (n - n1)
    print(f"CPU-s per graded notebook, marginal (class of {args.students} minus class of one): "
          f"--cluster {ours:.2f}, sequential nbgrader {theirs:.2f}: {ours / theirs:.2f}x "
          "(aim <= 0.7x)")
    print(f"CPU-s per graded notebook, whole runs: --cluster local:1 {used['one'] / n:.2f}, "
          f"local:2 {used['two'] / n:.2f}, --jobs 2 {used['pool'] / n:.2f}, sequential "
          f"nbgrader {used['seq'] / n:.2f}")
    print(f"  of a notebook's CPU, the worker's nbgrader pipeline (its own process) takes "
          f"{pipeline:.2f} s; the rest is the sandboxed kernel")
    print(f"fixed CPU of a --cluster local:1 run (start-up, course set-up, outputs): "
          f"{used['one_1'] - ours * n1:.0f} CPU-s; of sequential nbgrader's: "
          f"{used['seq_1'] - theirs * n1:.0f} CPU-s")
    print(f"per-cell scores identical in the four gradebooks: {same}")
    print("seconds a worker spent on each solution (local:1): " + ", ".join(
        f"{nb[:2]} {w:.1f}" for nb, w in sorted(solutions.items())))
    per_student = sum(solutions.values()) if len(solutions) == len(NOTEBOOKS) \
        else len(NOTEBOOKS) * ours
    fixed = wall["one_1"]
    print(f"projected wall time for {STUDENTS_PROJECTED:,} students handing in all five "
          f"notebooks right: {per_student:.0f} core-seconds each (the five solutions' tasks "
          f"above), {efficiency:.0%} efficiency, the client importing a student's grades in "
          f"{client_per_student * 1e3:.0f} ms, {per_task_wall * 1e3:.2f} ms of scheduler per "
          f"task, plus a run's start ({fixed:.0f} s):")
    for cores in CORES:
        grading = STUDENTS_PROJECTED * per_student / (cores * min(1.0, efficiency))
        client = STUDENTS_PROJECTED * client_per_student
        scheduler = STUDENTS_PROJECTED * per_task_wall
        bound = max((grading, "the workers"), (client, "the client's gradebook imports"),
                    (scheduler, "the scheduler"))
        print(f"  {cores:5d} worker cores: {fmt(bound[0] + fixed):>8}   (bound by {bound[1]})")


if __name__ == "__main__":
    main()
