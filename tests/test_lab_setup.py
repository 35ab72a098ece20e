"""`make lab` for students shows the student tools only; authors and instructors keep theirs."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INSTRUCTOR_TOOLS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                    "@jupyter/nbgrader:menu"]


def lab_command(*args):
    run = subprocess.run(["make", "--no-print-directory", "-n", "lab", *args], cwd=REPO,
                         capture_output=True, text=True, check=True)
    return run.stdout.strip().splitlines()[-1]


def disabled_extensions(config_path):
    env = {**os.environ, "JUPYTER_CONFIG_PATH": config_path}
    run = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"], env=env,
                         capture_output=True, text=True, check=True)
    listing = run.stdout + run.stderr
    return listing.split("Disabled extensions:")[1] if "Disabled extensions:" in listing else ""


def test_students_lab_hides_the_instructor_tools_and_the_news_prompt():
    assert f'JUPYTER_CONFIG_PATH="{REPO}/lab/student"' in lab_command()
    disabled = disabled_extensions(str(REPO / "lab" / "student"))
    for plugin in INSTRUCTOR_TOOLS + ["@jupyterlab/apputils-extension:announcements"]:
        assert plugin in disabled, plugin
    assert "validate-assignment" not in disabled   # Validate stays


def test_authors_and_instructors_keep_their_tools():
    assert "JUPYTER_CONFIG_PATH" not in lab_command("LAB_DIR=solutions")
    assert not any(p in disabled_extensions("") for p in INSTRUCTOR_TOOLS)
