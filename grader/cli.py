"""python -m grader: release the notebooks, autograde submissions, build the reading version."""
import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from . import GradingError, config


def _release(args):
    from .release import generate, stale
    if args.check:
        names = stale()
        if names:
            print(f"notebooks/ is stale: {', '.join(names)} "
                  "(run `python -m grader release`)", file=sys.stderr)
            return 1
        print("notebooks/ matches a fresh release of solutions/")
        return 0
    for path in generate(config.NOTEBOOKS):
        print(f"released {path.relative_to(config.REPO)}")
    return 0


def _autograde(args):
    from .autograde import autograde
    from .sandbox import unavailable
    if args.jobs is not None and args.jobs < 1:
        raise GradingError("--jobs must be at least 1")
    remote = False
    if args.cluster is not None:
        from .cluster import parse_cluster
        if args.jobs is not None:
            raise GradingError("give --jobs or --cluster, not both (local:N grades with N "
                               "worker processes here)")
        remote = parse_cluster(args.cluster)[0] == "remote"
    if args.no_sandbox:
        os.environ[config.NO_SANDBOX_ENV] = "1"   # the workers and OUT/course's config too
    elif not remote and (why := unavailable()):   # a cluster's workers check for themselves
        raise GradingError(f"{why}; grading needs the sandbox around every kernel "
                           "(--no-sandbox grades without it, with weaker isolation)")
    from .autograde import run_summary
    out = _writable_folder(Path(args.out), "--out")
    existed = out.exists()
    try:
        results = autograde(Path(args.submissions), out, db_url=args.db_url, jobs=args.jobs,
                            zip_regexp=args.zip_regexp, progress=not args.quiet,
                            feedback=not args.no_feedback, only_errors=args.only_errors,
                            cluster=args.cluster)
    except GradingError:
        if not existed:   # a call that fails leaves nothing behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    print(run_summary(out, results, feedback=not args.no_feedback))
    return 0


def _writable_folder(path, option):
    """path, if it is or can be made a folder this user writes in; else GradingError."""
    if path.exists() and not path.is_dir():
        raise GradingError(f"{option} {path}: is a file, not a folder")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise GradingError(f"{option} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GradingError(f"{option} {path}: {parent} is not writable by this user")
    return path


def _export(args):
    from .export import export
    done = export(Path(args.out), args.format, output=args.output, roster=args.roster,
                  missing=args.missing)
    for line in done.blanks:
        print(line, file=sys.stderr)
    for line in done.notes:
        print(line)
    print(f"wrote {done.path}: {done.students} students ({args.format})")
    return 0


def _solution(name):
    """A solution notebook named by path, file name or stem (02_backprop_step_by_step)."""
    for path in (Path(name), config.SOLUTIONS / name, config.SOLUTIONS / f"{name}.ipynb"):
        if path.is_file():
            return path
    raise GradingError(f"no such solution notebook: {name}")


def _execute(args):
    from .outputs import execute, stale_outputs
    paths = [_solution(p) for p in args.notebooks] or sorted(config.SOLUTIONS.glob("*.ipynb"))
    if args.check:
        problems = stale_outputs(paths)
        for problem in problems:
            print(f"stale outputs: {problem} (run `python -m grader execute`)", file=sys.stderr)
        if not problems:
            print("every notebook's stored outputs come from its current code")
        return 1 if problems else 0
    for path in paths:
        start = time.monotonic()
        execute(path)
        print(f"executed {os.path.relpath(path)} in {time.monotonic() - start:.0f} s")
    return 0


def _site(args):
    from .site import build_site
    pages = build_site(Path(args.out), Path(args.source))
    print(f"wrote {len(pages)} pages to {args.out}: open {pages[0]}")
    return 0


def _index(args):
    from .index import INDEX, write_index
    if args.check:
        if not write_index(check=True):
            print(f"{INDEX.name} is stale (run `python -m grader index`)", file=sys.stderr)
            return 1
        print(f"{INDEX.name} matches the solutions and the rules")
        return 0
    write_index()
    print(f"wrote {INDEX.relative_to(config.REPO)}")
    return 0


def main(argv=None):
    prog = "grader" if Path(sys.argv[0]).name == "grader" else "python -m grader"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="regenerate notebooks/ from solutions/")
    release.add_argument("--check", action="store_true",
                         help="change nothing; exit 1 naming the files if notebooks/ is stale")
    release.set_defaults(run=_release)
    grade = commands.add_parser("autograde", help="grade a class: one folder per student, or an "
                                                   "LMS export zip")
    grade.add_argument("submissions", help="folder with one folder per student, or a zip file")
    grade.add_argument("--out", required=True, help="output folder: grades.csv, summary.csv, "
                                                    "report.html, feedback/, course/")
    grade.add_argument("--db-url", help="gradebook database URL, e.g. postgresql://user@host/db "
                                        "for a course shared by several graders "
                                        "(default: SQLite in OUT/course)")
    grade.add_argument("--jobs", "-j", type=int,
                       help=f"students graded in parallel (default: the cores, {os.cpu_count()})")
    grade.add_argument("--cluster", help="grade on a Dask cluster: the address of its "
                                         "scheduler (tcp://HOST:8786), or local:N for a local "
                                         "cluster of N worker processes; this machine alone "
                                         "reads the submissions and writes OUT")
    grade.add_argument("--zip-regexp", help="for a zip of loose files: the regular expression "
                                            "with named groups student_id and file_id (as "
                                            "nbgrader zip_collect's named_regexp) that maps "
                                            "each file's path to a student and notebook")
    grade.add_argument("--no-feedback", action="store_true",
                       help="scores only: no OUT/feedback/ (nbgrader generate_feedback can "
                            "make it later in OUT/course)")
    grade.add_argument("--quiet", action="store_true", help="no progress bar")
    grade.add_argument("--only-errors", action="store_true",
                       help="grade again only the students with a notebook of status error "
                            "in OUT (the grader's faults, never the student's)")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="grade where bubblewrap cannot run (macOS, containers without "
                            "user namespaces): kernels run unsandboxed but for the in-kernel "
                            "guard; the summary says so")
    grade.set_defaults(run=_autograde)
    lms = commands.add_parser("export", help="a graded class's scores as the CSV Canvas, Moodle "
                                             "or Gradescope imports, or a plain CSV")
    lms.add_argument("out", help="an output folder autograde graded (its course gradebook)")
    lms.add_argument("--format", required=True, help="canvas, moodle, gradescope or csv")
    lms.add_argument("--roster", help="CSV mapping the grader's student_id to the LMS's ids, "
                                      "names and emails; it may list students who handed in "
                                      "nothing")
    lms.add_argument("--missing", default="zero",
                     help="a notebook not handed in scores zero (default) or is left blank")
    lms.add_argument("--output", help="the CSV to write (default: OUT/export-FORMAT.csv)")
    lms.set_defaults(run=_export)
    run = commands.add_parser("execute", help="run solution notebooks, storing their outputs")
    run.add_argument("notebooks", nargs="*", help="notebooks to run (default: solutions/*.ipynb)")
    run.add_argument("--check", action="store_true",
                     help="run nothing; exit 1 naming the notebooks whose stored outputs are stale")
    run.set_defaults(run=_execute)
    index = commands.add_parser("index", help="write EXERCISES.md: every graded answer, its "
                                              "check, points, rule and tests")
    index.add_argument("--check", action="store_true",
                       help="change nothing; exit 1 if EXERCISES.md is stale")
    index.set_defaults(run=_index)
    site = commands.add_parser("site", help="build the reading version: static pages of the "
                                            "solutions with their stored outputs")
    site.add_argument("--out", default="site", help="output folder (default: site)")
    site.add_argument("--source", default=str(config.SOLUTIONS),
                      help="folder of executed solution notebooks (default: solutions/)")
    site.set_defaults(run=_site)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except GradingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
