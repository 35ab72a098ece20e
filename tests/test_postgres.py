"""A course on a PostgreSQL gradebook, as several graders would share it."""
from nbgrader.api import Gradebook

from conftest import grader, read_csv
from crafted import STAGE2, Case, graded_cells, write_case
from postgres import postgres_server


def test_grades_into_postgresql(tmp_path):
    write_case(Case("ana", STAGE2, {}, set(), ""), tmp_path / "subs")
    write_case(Case("ben", STAGE2, {"answer_b2": "db2 = dlogits.sum(1)"}, {"check_b2"}, ""),
               tmp_path / "subs")
    cells = len(graded_cells(STAGE2))
    with postgres_server() as url:
        run = grader("autograde", tmp_path / "subs", "--out", tmp_path / "out", "--jobs", "2",
                     "--db-url", url, "--no-feedback")
        assert run.returncode == 0, run.stderr
        assert not (tmp_path / "out" / "course" / "gradebook.db").exists()
        assert not (tmp_path / "out" / "feedback").exists()   # --no-feedback: scores only
        with Gradebook(url, "makemore-backprop") as gb:
            scores = {s: gb.find_submission_notebook(STAGE2, "makemore", s).score
                      for s in ("ana", "ben")}
        assert scores == {"ana": cells, "ben": cells - 1}
    summary = {r["student"]: float(r["score"]) for r in read_csv(tmp_path / "out" / "summary.csv")
               if r["notebook"] == STAGE2}
    assert summary == {"ana": cells, "ben": cells - 1}
