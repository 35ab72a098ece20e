"""EXERCISES.md, the course's index of graded answers: current, complete, and unambiguous."""
import collections

from conftest import grader
from grader import config
from grader.autograde import grade_cells
from grader.index import exercises, render


def test_exercises_index_is_current():
    run = grader("index", "--check")
    assert run.returncode == 0, run.stderr


def test_index_lists_every_graded_cell_with_its_points_and_rule():
    rows = exercises()
    cells = [c for p in sorted(config.SOLUTIONS.glob("*.ipynb")) for c in grade_cells(p)]
    assert [r["check"] for r in rows] == cells
    by_notebook = collections.Counter()
    for r in rows:
        by_notebook[r["notebook"]] += r["points"]
    assert by_notebook["02_backprop_step_by_step"] == 26
    for r in rows:
        if r["notebook"] != "02_backprop_step_by_step" \
                and r["compared"] != "written answer, graded by hand":
            # stages 1, 3-5: a rule in grader/rules/ whose docstring says what it compares
            assert r["rule"].startswith("grader/rules/stage") and r["compared"].endswith("."), r
    assert "| `check_bessel` | 1 |" in render(rows)


def test_grade_ids_are_unique_across_the_course():
    """A graded or answer cell's id names it in the gradebook, the CSVs and the report alone."""
    import nbformat
    metadata = [c.metadata.get("nbgrader", {}) for p in sorted(config.SOLUTIONS.glob("*.ipynb"))
                for c in nbformat.read(p, 4).cells]
    ids = collections.Counter(m["grade_id"] for m in metadata
                              if m.get("grade") or m.get("solution"))
    assert [i for i, n in ids.items() if n > 1] == []


def test_a_stale_index_is_named(tmp_path, monkeypatch):
    from grader import index
    monkeypatch.setattr(index, "INDEX", tmp_path / "EXERCISES.md")
    (tmp_path / "EXERCISES.md").write_text("old")
    assert not index.write_index(check=True)
    index.write_index()
    assert index.write_index(check=True)
