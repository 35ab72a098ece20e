"""python -m grader export: a graded class's scores as the CSV each LMS imports.

The layouts the files must have, as each LMS documents or implements its import:

* Canvas (instructure/canvas-lms, lib/gradebook_importer.rb and lib/gradebook_exporter.rb;
  Canvas's guide "How do I import grades in the Gradebook?", as restated in Ohio State's
  "Import a CSV File to Carmen Grades"): the header starts Student, ID; the student columns are
  Student, ID, SIS User ID, SIS Login ID and end with Section; then one column per assignment,
  matched to an existing assignment by title (or "Title (id)"), else created. A row whose first
  cell contains "Points Possible" (Canvas writes "    Points Possible", second row) gives each
  assignment's points possible. A row is matched to a student by ID, then SIS User ID, then
  SIS Login ID, then name. An empty cell is no grade.
* Moodle (moodle/moodle, grade/import/csv/classes/load_data.php and grade/import/lib.php):
  the teacher maps one column to the user's id, ID number, email address or username, and each
  other column to a grade item or a new one; "-" is no grade (an empty cell in a new item's
  column is not). The maximum is the grade item's setting, never the file's: new items get
  the default bounds. Column names as Moodle's own export writes them: First name, Last name,
  ID number, Email address (and Username).
* Gradescope ("Adding Students and Staff", help.gradescope.com: a roster needs a name and a
  unique email, SID optional; its grades CSV, as eldridgejm/gradelib src/gradelib/io/
  gradescope.py reads it: name, SID, Email, then per assignment NAME and NAME - Max Points on
  every row).
* csv: this course's own: student, name, email, then per notebook NOTEBOOK and NOTEBOOK max,
  then total (blank unless every notebook has a score) and total max.

Every test but the last runs on a small output folder built here (a gradebook made with
nbgrader's API, autograde's status record and nbgrader_config.py); the last exports the
crafted class that `graded` grades.
"""
import csv
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from nbgrader.api import Gradebook

from conftest import grader, read_csv
from grader import config
from grader.autograde import STATUS_FILE
from grader.cli import main
from grader.nbgrading import write_nbgrader_config

NB1, NB5 = "01_bigram_mlp", "05_training_and_diagnostics"
CELLS = {NB1: {"check_counts": 4.0, "check_sample": 6.0},                  # max 10
         NB5: {"check_train": 9.0, "answer_gain": 2.0}}                    # max 11, one by hand
# (auto scores, manual scores) each student's graded notebooks have in the gradebook
SCORES = {"alice": {NB1: ({"check_counts": 4, "check_sample": 6}, {}),
                    NB5: ({"check_train": 7}, {"answer_gain": 1.5})},    # graded by hand
          "bob": {NB1: ({"check_counts": 4, "check_sample": 0}, {}),
                  NB5: ({"check_train": 9}, {})},                         # answer_gain pending
          "carol": {NB1: ({"check_counts": 4, "check_sample": 6}, {})},
          "erin": {}}
STATUS = {("alice", NB1): "graded", ("alice", NB5): "graded",
          ("bob", NB1): "graded", ("bob", NB5): "graded",
          ("carol", NB1): "graded", ("carol", NB5): "missing",
          ("dave", NB1): "missing", ("dave", NB5): "missing",      # an empty folder
          ("erin", NB1): "error", ("erin", NB5): "malformed"}
ROSTER = [  # Canvas's own export columns, and the grader's id beside them
    {"student_id": "alice", "Student": "Liddell, Alice", "ID": "101", "SIS User ID": "S1",
     "SIS Login ID": "aliddell", "Section": "A", "Email address": "alice@uni.example",
     "Username": "aliddell"},
    {"student_id": "bob", "Student": "Dylan, Bob", "ID": "102", "SIS User ID": "S2",
     "SIS Login ID": "bdylan", "Section": "A", "Email address": "bob@uni.example",
     "Username": "bdylan"},
    {"student_id": "carol", "Student": "King, Carol", "ID": "103", "SIS User ID": "S3",
     "SIS Login ID": "cking", "Section": "B", "Email address": "carol@uni.example",
     "Username": "cking"},
    {"student_id": "dave", "Student": "Brubeck, Dave", "ID": "104", "SIS User ID": "S4",
     "SIS Login ID": "dbrubeck", "Section": "B", "Email address": "dave@uni.example",
     "Username": "dbrubeck"},
    {"student_id": "erin", "Student": "Brockovich, Erin", "ID": "105", "SIS User ID": "S5",
     "SIS Login ID": "ebrock", "Section": "B", "Email address": "erin@uni.example",
     "Username": "ebrock"},
    {"student_id": "frank", "Student": "Zappa, Frank", "ID": "106", "SIS User ID": "S6",
     "SIS Login ID": "fzappa", "Section": "B", "Email address": "frank@uni.example",
     "Username": "fzappa"},   # handed in nothing: not in OUT at all
]


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    """A gradebook file as autograde leaves it for the class above (nbgrader's API)."""
    path = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")   # SQLAlchemy's notices on nbgrader's add_submission
        mp.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        with Gradebook(f"sqlite:///{path}", config.COURSE_ID) as gb:
            gb.add_assignment(config.ASSIGNMENT)
            for nb, cells in CELLS.items():
                gb.add_notebook(nb, config.ASSIGNMENT)
                for cell, points in cells.items():
                    gb.add_grade_cell(cell, nb, config.ASSIGNMENT, max_score=points,
                                      cell_type="markdown" if "answer" in cell else "code")
            for sid, notebooks in SCORES.items():
                gb.add_student(sid)
                gb.add_submission(config.ASSIGNMENT, sid)
                for nb, (auto, manual) in notebooks.items():
                    for cell in CELLS[nb]:
                        grade = gb.find_grade(cell, nb, config.ASSIGNMENT, sid)
                        grade.auto_score = auto.get(cell)
                        grade.manual_score = manual.get(cell)
            gb.db.commit()
    return path


@pytest.fixture
def out(tmp_path, gradebook):
    """A graded output folder: the gradebook, autograde's status record and nbgrader config,
    and CSV copies that disagree with the gradebook (made before alice's hand grading)."""
    out = tmp_path / "out"
    course = out / "course"
    course.mkdir(parents=True)
    shutil.copy(gradebook, course / "gradebook.db")
    (course / STATUS_FILE).write_text(json.dumps(
        [{"student": s, "notebook": nb, "status": status, "reason": ""}
         for (s, nb), status in STATUS.items()]))
    # written where the class was graded, since moved: the gradebook is the one in OUT/course
    (tmp_path / "graded-elsewhere" / "course").mkdir(parents=True)
    write_nbgrader_config(tmp_path / "graded-elsewhere" / "course")
    shutil.move(tmp_path / "graded-elsewhere" / "course" / "nbgrader_config.py", course)
    (out / "summary.csv").write_text("student,notebook,score,max_score,status,reason\n"
                                     f"alice,{NB5},7.0,11.0,graded,\n")
    return out


def export(capsys, *args):
    """`python -m grader export ARGS` run here: (exit status, stdout, stderr)."""
    status = main(["export", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def write_roster(path, records, drop=()):
    columns = [c for c in records[0] if c not in drop]
    pd.DataFrame(records)[columns].to_csv(path, index=False)
    return path


def test_canvas_file_has_canvas_columns_and_points_possible(out, tmp_path, capsys):
    roster = write_roster(tmp_path / "roster.csv", ROSTER)
    status, stdout, _ = export(capsys, out, "--format", "canvas", "--roster", roster)
    assert status == 0
    table = rows(out / "export-canvas.csv")
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", NB1, NB5]
    assert table[1] == ["    Points Possible", "", "", "", "", "10", "11"]
    assert table[2] == ["Liddell, Alice", "101", "S1", "aliddell", "A", "10", "8.5"]
    assert table[3] == ["Dylan, Bob", "102", "S2", "bdylan", "A", "4", ""]   # pending
    assert [r[0] for r in table[2:]] == [r["Student"] for r in ROSTER]      # roster order
    assert f"wrote {out / 'export-canvas.csv'}: 6 students (canvas)" in stdout


def test_moodle_file_has_an_identifier_per_row_and_dash_for_no_grade(out, tmp_path, capsys):
    roster = write_roster(tmp_path / "roster.csv", ROSTER)
    status, stdout, _ = export(capsys, out, "--format", "moodle", "--roster", roster,
                               "--output", tmp_path / "moodle.csv")
    assert status == 0
    table = rows(tmp_path / "moodle.csv")
    assert table[0] == ["First name", "Last name", "ID number", "Username", "Email address",
                        NB1, NB5]
    by_email = {r[4]: r[5:] for r in table[1:]}
    assert by_email["alice@uni.example"] == ["10", "8.5"]
    assert by_email["bob@uni.example"] == ["4", "-"]            # pending: no grade, not 0
    assert table[1][:4] == ["Alice", "Liddell", "", "aliddell"]   # split from "Liddell, Alice"
    # the maximum is the grade item's in Moodle: the instructor is told what to set
    assert f"maximum grade ({NB1} 10, {NB5} 11)" in stdout


def test_gradescope_file_has_roster_columns_and_max_points(out, tmp_path, capsys):
    roster = write_roster(tmp_path / "roster.csv", ROSTER)
    status, _, _ = export(capsys, out, "--format", "gradescope", "--roster", roster)
    assert status == 0
    table = rows(out / "export-gradescope.csv")
    assert table[0] == ["Name", "SID", "Email", NB1, f"{NB1} - Max Points",
                        NB5, f"{NB5} - Max Points"]
    assert table[1] == ["Liddell, Alice", "", "alice@uni.example", "10", "10", "8.5", "11"]
    assert all(r[4] == "10" and r[6] == "11" for r in table[1:])   # the maximum on every row


def test_csv_file_has_scores_maxima_and_totals(out, capsys):
    status, stdout, _ = export(capsys, out, "--format", "csv")
    assert status == 0
    frame = pd.read_csv(out / "export-csv.csv", dtype={"student": str})
    assert list(frame.columns) == ["student", "name", "email", NB1, f"{NB1} max", NB5,
                                   f"{NB5} max", "total", "total max"]
    frame = frame.set_index("student")
    assert list(frame.index) == ["alice", "bob", "carol", "dave", "erin"]   # everyone in OUT
    assert frame.loc["alice", "total"] == 18.5 and frame.loc["alice", "total max"] == 21
    assert pd.isna(frame.loc["bob", "total"])          # a blank notebook: no total
    assert frame.loc["carol", "total"] == 10            # missing notebook: 0 by default
    assert (frame.loc["erin", NB5], frame.loc["dave", NB1]) == (0, 0)   # malformed, missing
    assert "no --roster" not in stdout   # the plain CSV has no LMS login column to fill


def test_without_roster_the_grader_id_is_the_login(out, capsys):
    status, stdout, _ = export(capsys, out, "--format", "canvas")
    assert status == 0
    table = rows(out / "export-canvas.csv")
    assert table[2] == ["alice", "", "", "alice", "", "10", "8.5"]
    assert "each row has the grader's student id as SIS Login ID" in stdout


def test_roster_maps_ids_names_and_emails(out, tmp_path, capsys):
    """Roster columns spelled the plain way or as the LMS spells them; order is the roster's."""
    plain = [{"student_id": r["student_id"], "name": r["Student"], "email": r["Email address"],
              "sis_user_id": r["SIS User ID"]} for r in reversed(ROSTER)]
    roster = write_roster(tmp_path / "plain.csv", plain)
    assert export(capsys, out, "--format", "csv", "--roster", roster)[0] == 0
    frame = pd.read_csv(out / "export-csv.csv", dtype=str, keep_default_na=False)
    assert list(frame["student"]) == [r["student_id"] for r in plain]
    alice = frame.set_index("student").loc["alice"]
    assert (alice["name"], alice["email"], alice["sis_user_id"]) == (
        "Liddell, Alice", "alice@uni.example", "S1")
    assert export(capsys, out, "--format", "gradescope", "--roster", roster)[0] == 0
    frame = pd.read_csv(out / "export-gradescope.csv", dtype=str, keep_default_na=False)
    assert frame.set_index("Email").loc["bob@uni.example", "Name"] == "Dylan, Bob"


@pytest.mark.parametrize("missing, expected", [("zero", "0"), ("blank", "")])
def test_missing_students_and_notebooks(out, tmp_path, capsys, missing, expected):
    roster = write_roster(tmp_path / "roster.csv", ROSTER)
    status, stdout, _ = export(capsys, out, "--format", "canvas", "--roster", roster,
                               "--missing", missing)
    assert status == 0
    by_id = {r[1]: r[5:] for r in rows(out / "export-canvas.csv")[2:]}
    assert by_id["106"] == [expected, expected]     # frank: in the roster only
    assert by_id["104"] == [expected, expected]     # dave: an empty folder, all missing
    assert by_id["103"] == ["10", expected]         # carol: one notebook missing
    assert by_id["105"][1] == "0"                   # erin's malformed notebook scores 0
    assert "students of the roster handed in nothing" in stdout and "frank" in stdout
    moodle = tmp_path / "moodle.csv"
    export(capsys, out, "--format", "moodle", "--roster", roster, "--missing", missing,
           "--output", moodle)
    assert rows(moodle)[-1][5:] == ([expected] * 2 if expected else ["-", "-"])


def test_pending_manual_grades_and_grader_errors_are_reported_not_zero(out, capsys):
    status, _, stderr = export(capsys, out, "--format", "csv")
    assert status == 0
    assert f"bob {NB5}: left blank, answer_gain waits for manual grading" in stderr
    assert f"erin {NB1}: left blank, not graded, the grader's fault" in stderr
    assert len(stderr.splitlines()) == 2    # alice's hand-graded answer is not pending
    frame = pd.read_csv(out / "export-csv.csv", dtype=str, keep_default_na=False)
    frame = frame.set_index("student")
    assert (frame.loc["bob", NB5], frame.loc["erin", NB1]) == ("", "")


def test_scores_come_from_the_gradebook_not_its_csv_copies(out, capsys):
    """summary.csv was written before alice's answer was graded by hand (7 of 11); the
    gradebook the formgrader writes has 8.5, and nbgrader_config.py names a moved course."""
    assert export(capsys, out, "--format", "csv")[0] == 0
    frame = pd.read_csv(out / "export-csv.csv", dtype={"student": str}).set_index("student")
    assert frame.loc["alice", NB5] == 8.5
    assert read_csv(out / "summary.csv")[0]["score"] == "7.0"


BAD = {
    "not graded": (lambda t, o: (t / "empty", "--format", "csv"), "is not a graded output"),
    "no such folder": (lambda t, o: (t / "nowhere", "--format", "csv"), "no such folder"),
    "unknown format": (lambda t, o: (o, "--format", "blackboard"), "unknown format"),
    "bad --missing": (lambda t, o: (o, "--format", "csv", "--missing", "nan"), "--missing"),
    "roster not found": (lambda t, o: (o, "--format", "csv", "--roster", t / "no.csv"),
                         "roster not found"),
    "roster without student_id": (
        lambda t, o: (o, "--format", "csv",
                      "--roster", write_roster(t / "r.csv", ROSTER, drop=("student_id",))),
        "no student_id column"),
    "roster without canvas ids": (
        lambda t, o: (o, "--format", "canvas", "--roster", write_roster(
            t / "r.csv", ROSTER, drop=("ID", "SIS User ID", "SIS Login ID"))),
        "none of the columns canvas can match a student by: id, sis_user_id, sis_login_id"),
    "roster without moodle identifier": (
        lambda t, o: (o, "--format", "moodle", "--roster", write_roster(
            t / "r.csv", ROSTER, drop=("Email address", "Username"))),
        "none of the columns moodle can match a student by"),
    "roster listing a student twice": (
        lambda t, o: (o, "--format", "csv",
                      "--roster", write_roster(t / "r.csv", ROSTER + ROSTER[:1])),
        "lists alice more than once"),
    "graded student not in roster": (
        lambda t, o: (o, "--format", "csv", "--roster", write_roster(
            t / "r.csv", [{**ROSTER[0], "student_id": "alcie"}] + ROSTER[1:])),
        "graded students missing from the roster: alice (roster ids not in the grades: "
        "alcie, frank)"),
    "output in no folder": (lambda t, o: (o, "--format", "csv", "--output", t / "no" / "x.csv"),
                            "cannot write"),
    "output is a folder": (lambda t, o: (o, "--format", "csv", "--output", t),
                           "it is a folder"),
    "output under a file": (lambda t, o: (o, "--format", "csv", "--output",
                                          o / "summary.csv" / "x.csv"), "cannot write"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_one_line_error_and_writes_nothing(out, tmp_path, capsys, case):
    make_args, message = BAD[case]
    (tmp_path / "empty").mkdir()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    status, stdout, stderr = export(capsys, *make_args(tmp_path, out))
    assert status == 2
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert message in stderr
    assert stdout == ""
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before, "an export that failed changed OUT"
    assert not list(tmp_path.rglob("*.part")) and not list(tmp_path.rglob("export-*"))


def test_failed_write_keeps_the_previous_file(out, capsys, monkeypatch):
    assert export(capsys, out, "--format", "csv")[0] == 0
    previous = (out / "export-csv.csv").read_bytes()

    def disk_full(self, f, **kwargs):
        f.write("student,name\nalice,")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    status, _, stderr = export(capsys, out, "--format", "csv")
    assert status == 2 and "No space left on device" in stderr
    assert (out / "export-csv.csv").read_bytes() == previous
    assert sorted(p.name for p in out.iterdir()) == ["course", "export-csv.csv", "summary.csv"]


def test_command_line_exit_status(out, tmp_path):
    ok = grader("export", out, "--format", "gradescope", "--output", tmp_path / "g.csv")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "g.csv").is_file()
    bad = grader("export", out, "--format", "sakai")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: unknown format 'sakai'") and bad.stderr.count("\n") == 1


def test_round_trip_totals_equal_the_gradebook(graded, tmp_path, capsys):
    """Grade (the crafted class), export, read the files back with pandas: every score is the
    gradebook's, a hand-graded answer counts once graded, and what waits is left blank."""
    with Gradebook(f"sqlite:///{graded / 'course' / 'gradebook.db'}", config.COURSE_ID) as gb:
        notebooks = {nb.name: nb.max_score
                     for nb in gb.find_assignment(config.ASSIGNMENT).notebooks}
        scores = {(s.student.id, nb.name): (nb.score, any(
                      (g.auto_score, g.manual_score) == (None, None) for g in nb.grades))
                  for s in gb.find_assignment(config.ASSIGNMENT).submissions
                  for nb in s.notebooks}
    status = {(r["student"], r["notebook"]): r["status"]
              for r in read_csv(graded / "summary.csv")}
    students = sorted({s for s, _ in status})

    def expected(sid, nb):
        """The export's score: the gradebook's, 0 for what was not graded, None if blank."""
        if status[sid, nb] == "error" or (status[sid, nb] == "graded" and scores[sid, nb][1]):
            return None
        return scores[sid, nb][0] if status[sid, nb] == "graded" else 0.0

    result, stdout, stderr = export(capsys, graded, "--format", "csv",
                                    "--output", tmp_path / "class.csv")
    assert result == 0, stderr
    frame = pd.read_csv(tmp_path / "class.csv", dtype={"student": str}).set_index("student")
    assert sorted(frame.index) == students
    pending = 0
    for sid in students:
        want = [expected(sid, nb) for nb in sorted(notebooks)]
        got = [None if pd.isna(frame.loc[sid, nb]) else frame.loc[sid, nb]
               for nb in sorted(notebooks)]
        assert got == pytest.approx(want, abs=1e-6), sid
        assert frame.loc[sid, "total max"] == pytest.approx(sum(notebooks.values()))
        if None in want:
            assert pd.isna(frame.loc[sid, "total"]), sid
            pending += want.count(None)
        else:
            assert frame.loc[sid, "total"] == pytest.approx(sum(want)), sid
    assert pending == len(stderr.splitlines()) > 0   # each blank named on stderr
    assert f"solution {NB5}: left blank, answer_gain waits for manual grading" in stderr

    # the written answer graded by hand, as the formgrader does, in a copy of the gradebook
    copy = tmp_path / "copy"
    (copy / "course").mkdir(parents=True)
    for name in ("gradebook.db", STATUS_FILE, "nbgrader_config.py"):
        shutil.copy(graded / "course" / name, copy / "course" / name)
    with Gradebook(f"sqlite:///{copy / 'course' / 'gradebook.db'}", config.COURSE_ID) as gb:
        grade = gb.find_grade("answer_gain", NB5, config.ASSIGNMENT, "solution")
        grade.manual_score, grade.needs_manual_grade = 2.0, False
        gb.db.commit()
        full = gb.find_submission_notebook(NB5, config.ASSIGNMENT, "solution").score
    assert export(capsys, copy, "--format", "canvas")[0] == 0
    canvas = pd.read_csv(copy / "export-canvas.csv", dtype=str, keep_default_na=False)
    assert canvas.iloc[0]["Student"] == "    Points Possible"
    assert float(canvas.iloc[0][NB5]) == notebooks[NB5]
    solution = canvas.set_index("SIS Login ID").loc["solution"]
    assert float(solution[NB5]) == full == notebooks[NB5]
    summary = {(r["student"], r["notebook"]): float(r["score"])
               for r in read_csv(graded / "summary.csv")}
    assert summary["solution", NB5] == notebooks[NB5] - 2   # the copy made when grading ran
