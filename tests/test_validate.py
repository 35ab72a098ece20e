"""Validate's count of passing and failing checks (grader/validate.py)."""
import shutil

import pytest
from nbgrader.validator import Validator

from grader import config
from grader.validate import CountChecks, count_checks_in_validate, count_line


@pytest.fixture
def counting_validator():
    steps = Validator.class_traits()["preprocessors"]
    saved = steps.default_args
    count_checks_in_validate()
    count_checks_in_validate()   # a second call (the server reads its configuration per Validate)
    try:
        yield
    finally:
        steps.default_args = saved


def test_validate_counts_checks_once_in_front_of_the_first_failure(counting_validator, tmp_path):
    assert Validator().preprocessors.count(CountChecks) == 1
    path = tmp_path / "03_fused_cross_entropy.ipynb"
    shutil.copy(config.NOTEBOOKS / path.name, path)
    failed = Validator().validate(str(path))["failed"]
    line = count_line(0, len(failed))
    assert failed[0]["raw_error"].startswith(line), failed[0]["raw_error"][:300]
    assert all(line not in f["raw_error"] for f in failed[1:])


def test_the_count_reads_as_english():
    assert count_line(23, 3) == "3 of 26 checks fail (listed below), 23 pass\n"
    assert count_line(1, 1) == "1 of 2 checks fails (listed below), 1 passes\n"
    assert count_line(0, 1) == "1 of 1 check fails (listed below), 0 pass\n"
