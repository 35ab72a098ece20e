"""The code follows one style (pyproject.toml's ruff settings)."""
import subprocess
import sys

from grader import config


def test_ruff_finds_nothing():
    folders = ["makemore", "grader", "tests", "bench", "data"]
    run = subprocess.run([sys.executable, "-m", "ruff", "check", *folders],
                         cwd=config.REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
