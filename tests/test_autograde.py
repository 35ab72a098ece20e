"""Grading crafted submissions: credit where it is due, nothing where it is not."""
import re

import pytest

from conftest import grader, read_csv
from crafted import ALL, CASES, graded_cells


def scores(out, student, notebook):
    return {r["cell"]: r for r in read_csv(out / "grades.csv")
            if (r["student"], r["notebook"]) == (student, notebook)}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.student}-{c.notebook}")
def test_case_loses_exactly_its_cells(graded, case):
    rows = scores(graded, case.student, case.notebook)
    auto = graded_cells(case.notebook)
    assert set(auto) <= set(rows), "grades.csv lacks graded cells"
    lost = set(auto) if case.lost == ALL else set(case.lost)
    zero = {c for c in auto if float(rows[c]["score"]) == 0}
    full = {c for c in auto if float(rows[c]["score"]) == float(rows[c]["max_score"]) > 0}
    assert zero == lost, case.why
    assert full == set(auto) - lost, case.why


@pytest.mark.parametrize("case", [c for c in CASES if c.reason or c.status != "graded"],
                         ids=lambda c: f"{c.student}-{c.notebook}")
def test_case_records_its_reason(graded, case):
    summary = {(r["student"], r["notebook"]): r for r in read_csv(graded / "summary.csv")}
    row = summary[(case.student, case.notebook)]
    assert row["status"] == case.status, row
    assert case.reason in row["reason"], row


def test_summary_records_status_and_reason(graded):
    summary = {(r["student"], r["notebook"]): r for r in read_csv(graded / "summary.csv")}
    broken = summary[("broken_json", "02_backprop_step_by_step")]
    assert broken["status"] == "malformed" and "not a readable notebook" in broken["reason"]
    assert float(broken["score"]) == 0
    solution = summary[("solution", "02_backprop_step_by_step")]
    assert (solution["status"], float(solution["score"])) == ("graded", 26.0)
    # a student who left out notebooks has them recorded as missing
    missing = summary[("one_wrong", "02_backprop_step_by_step")]
    assert missing["status"] == "graded"
    others = [r for (s, nb), r in summary.items() if s == "one_wrong" and nb != missing["notebook"]]
    assert all(r["status"] == "missing" for r in others)


def test_feedback_shows_results_not_hidden_tests(graded):
    for case in CASES:
        page = graded / "feedback" / case.student / f"{case.notebook}.html"
        text = page.read_text()
        # the hidden tests' code, e.g. report('dh', dh, carry=True), never shows
        assert "BEGIN HIDDEN TESTS" not in text and "carry=True)" not in text, page
    wrong = (graded / "feedback" / "shape_64" / "02_backprop_step_by_step.html").read_text()
    assert "shape [64] but [1, 64] expected" in wrong
    assert re.search(r"Score: 0\.0 / 1\.0", wrong), "not nbgrader's feedback template (scores)"


def test_feedback_renders_math_offline_and_says_why_a_notebook_was_not_graded(graded):
    assert (graded / "feedback" / "_mathjax" / "MathJax.js").is_file()
    page = (graded / "feedback" / "solution" / "02_backprop_step_by_step.html").read_text()
    sources = re.findall(r'<script src="([^"]+)"', page)
    assert "../_mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe" in sources
    assert not [s for s in sources if s.startswith("http")], sources   # the CDN only as fallback
    summary = read_csv(graded / "summary.csv")
    not_graded = next(r for r in summary if r["status"] in ("malformed", "missing"))
    page = graded / "feedback" / not_graded["student"] / f"{not_graded['notebook']}.html"
    text = page.read_text()
    assert "<style>" in text and re.search(r"Score: 0 / \d+", text), text


def test_missing_submissions_folder_is_a_clear_error(tmp_path):
    run = grader("autograde", tmp_path / "nowhere", "--out", tmp_path / "out")
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0 and "not found" in run.stderr


def test_folder_without_notebooks_is_a_clear_error(tmp_path):
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    (tmp_path / "subs" / "alice" / "notes.txt").write_text("hello")
    run = grader("autograde", tmp_path / "subs", "--out", tmp_path / "out")
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0 and "no notebooks found" in run.stderr


def test_every_graded_cell_reports_its_answers(graded):
    """Each test cell hands its answers to the grader, so the judge outside the kernel (not
    nbgrader's no-error rule) decides it (see README: what grading defends)."""
    import json
    import os
    from pathlib import Path
    cache = Path(os.environ["MAKEMORE_REFERENCE_CACHE"])
    for notebook in {c.notebook for c in CASES}:
        files = sorted(cache.glob(f"{notebook}-*.json"))
        assert files, f"no reference answers cached for {notebook}"
        assert set(json.loads(files[0].read_text())) == set(graded_cells(notebook)), notebook
