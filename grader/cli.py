"""python -m grader: release the notebooks, autograde submissions."""
import argparse
import os
import sys
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
    autograde(Path(args.submissions), Path(args.out), db_url=args.db_url)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="regenerate notebooks/ from solutions/")
    release.add_argument("--check", action="store_true",
                         help="change nothing; exit 1 naming the files if notebooks/ is stale")
    release.set_defaults(run=_release)
    grade = commands.add_parser("autograde", help="grade one folder of notebooks per student")
    grade.add_argument("submissions", help="folder with one folder per student")
    grade.add_argument("--out", required=True,
                       help="output folder: grades.csv, summary.csv, feedback/, course/")
    grade.add_argument("--db-url", help="gradebook database URL (default: SQLite in OUT/course)")
    grade.set_defaults(run=_autograde)
    args = parser.parse_args(argv)
    # nbgrader runs the `alembic` executable that sits beside this Python
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    try:
        return args.run(args)
    except GradingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
