"""notebooks/ is exactly nbgrader's release of solutions/, and gives nothing away."""
import json
import re

import nbformat
from nbgrader.validator import Validator

from conftest import grader
from grader import config
from grader.release import stale


def test_notebooks_is_a_fresh_release_of_solutions():
    assert stale() == []


def test_release_check_names_stale_files(tmp_path):
    copy = tmp_path / "notebooks"
    copy.mkdir()
    for nb in config.NOTEBOOKS.glob("*.ipynb"):
        (copy / nb.name).write_bytes(nb.read_bytes())
    victim = sorted(copy.glob("*.ipynb"))[0]
    victim.write_text(victim.read_text().replace("import torch", "import  torch", 1))
    (copy / "99_extra.ipynb").write_text("{}")
    assert stale(copy) == sorted([victim.name, "99_extra.ipynb"])


def test_release_check_command_passes_on_the_committed_release():
    run = grader("release", "--check")
    assert run.returncode == 0, run.stderr


def test_release_mirrors_solutions_file_for_file():
    assert ({p.name for p in config.NOTEBOOKS.glob("*.ipynb")}
            == {p.name for p in config.SOLUTIONS.glob("*.ipynb")})


def solution_lines(nb):
    """Code lines inside solution regions and hidden-test regions of a source notebook."""
    lines, inside = set(), False
    for cell in nb.cells:
        for line in cell.source.splitlines():
            if re.match(r"\s*### BEGIN (SOLUTION|HIDDEN TESTS)", line):
                inside = True
            elif re.match(r"\s*### END (SOLUTION|HIDDEN TESTS)", line):
                inside = False
            elif inside and line.strip() and not line.strip().startswith("#"):
                lines.add(line.strip())
    return lines


def test_release_holds_no_solution_or_hidden_test_code():
    for source in config.SOLUTIONS.glob("*.ipynb"):
        released = (config.NOTEBOOKS / source.name).read_text()
        release_lines = {ln.strip() for c in json.loads(released)["cells"]
                         for ln in "".join(c["source"]).splitlines()}
        assert "BEGIN SOLUTION" not in released and "HIDDEN TESTS" not in released
        leaked = solution_lines(nbformat.read(str(source), as_version=4)) & release_lines
        assert not leaked, f"{source.name} releases solution code: {sorted(leaked)[:3]}"


def test_untouched_release_fails_validation_with_the_stub_message():
    for nb in config.NOTEBOOKS.glob("*.ipynb"):
        result = Validator().validate(str(nb))
        assert result.get("failed"), f"{nb.name} validates without answers"
