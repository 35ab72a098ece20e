import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crafted import write_all

REPO = Path(__file__).resolve().parent.parent


def grader(*args, **kwargs):
    """Run `python -m grader ARGS` as an instructor would; the CompletedProcess."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, **kwargs)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """Every crafted submission, autograded in one `python -m grader autograde` run."""
    root = tmp_path_factory.mktemp("autograde")
    write_all(root / "submissions")
    run = grader("autograde", root / "submissions", "--out", root / "out")
    assert run.returncode == 0, run.stderr
    return root / "out"
