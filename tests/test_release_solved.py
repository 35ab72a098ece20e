"""The release with every answer filled in validates as a student would run it.

Solutions validate with their hidden tests in place; this runs the student's view instead: the
released notebook, no hidden tests, answers from the solution, every visible check passing.
"""
import nbformat
import pytest
from nbgrader.validator import Validator

from crafted import NOTEBOOKS, correct_submission


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_release_with_the_solutions_answers_validates(tmp_path, notebook):
    path = tmp_path / f"{notebook}.ipynb"
    nbformat.write(correct_submission(notebook), str(path))
    result = Validator().validate(str(path))
    assert result == {}, [f["raw_error"][-500:] for f in result.get("failed", [])] or result
