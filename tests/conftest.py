import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crafted import write_all

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def shared_reference_cache(tmp_path_factory):
    """One reference run per session: every grading run of the tests shares the cache."""
    os.environ["MAKEMORE_REFERENCE_CACHE"] = str(tmp_path_factory.mktemp("references"))
    yield
    del os.environ["MAKEMORE_REFERENCE_CACHE"]


def grader(*args, env_extra=None, **kwargs):
    """Run `python -m grader ARGS` as an instructor would; the CompletedProcess."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, **kwargs)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


CRAFTED_TIMEOUT = "10"   # seconds per cell in the crafted run: the infinite loops cost 10 s


def grader_files():
    """sha256 of every file of the course library and the grader (a kernel must not change
    them)."""
    return {str(p.relative_to(REPO)): hashlib.sha256(p.read_bytes()).hexdigest()
            for package in ("makemore", "grader") for p in sorted((REPO / package).rglob("*.py"))}


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """Every crafted submission, autograded in one `python -m grader autograde --jobs 2` run."""
    root = tmp_path_factory.mktemp("autograde")
    write_all(root / "submissions")
    before = grader_files()
    run = grader("autograde", root / "submissions", "--out", root / "out", "--jobs", "2",
                 env_extra={"MAKEMORE_CELL_TIMEOUT": CRAFTED_TIMEOUT})
    assert run.returncode == 0, run.stderr
    assert grader_files() == before, "a kernel changed the grader's files"
    (root / "out" / "stdout.txt").write_text(run.stdout)
    (root / "out" / "stderr.txt").write_text(run.stderr)
    return root / "out"


# `pytest -m stage4`: the tests of one stage. A test belongs to stage N when its id names the
# stage's notebook (a crafted case's parameter) or `stageN`, or its module lists N in STAGES.
STAGE_NOTEBOOKS = {int(p.name[:2]): p.stem for p in sorted((REPO / "solutions").glob("0*.ipynb"))}


def pytest_collection_modifyitems(items):
    for item in items:
        stages = set(getattr(item.module, "STAGES", ()))
        stages |= {n for n, stem in STAGE_NOTEBOOKS.items()
                   if stem in item.nodeid or f"stage{n}" in item.nodeid.lower()}
        for n in sorted(stages):
            item.add_marker(getattr(pytest.mark, f"stage{n}"))
