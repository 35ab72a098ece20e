"""Every solution notebook runs top to bottom with every check passing, as Validate runs it."""
import pytest
from nbgrader.validator import Validator

from grader import config


@pytest.mark.parametrize("path", sorted(config.SOLUTIONS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_solution_validates(path):
    result = Validator().validate(str(path))
    assert result == {}, [f["raw_error"][-500:] for f in result.get("failed", [])] or result
