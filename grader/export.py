"""python -m grader export: a graded class's scores as the CSV an LMS imports.

The scores come from the course gradebook, the one OUT/course/nbgrader_config.py names (the
--db-url given to autograde, else the SQLite OUT/course/gradebook.db): the formgrader writes
hand-graded scores there, while OUT/grades.csv and OUT/summary.csv are copies made when grading
ran. Which notebooks were graded, missing or not gradable comes from autograde's record beside
the gradebook (OUT/course/.status.json). The gradebook is opened read-only.

One row per student, one column per notebook, in points out of the notebook's maximum, laid
out as each LMS's gradebook import reads it (see LAYOUTS). A notebook with an answer still
waiting for manual grading, or not graded through the grader's fault (status error), is left
blank and named in the report, never counted as 0. The file is written whole or not at all.
"""
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import GradingError, config
from .autograde import STATUS_FILE

FORMATS = ("canvas", "moodle", "gradescope", "csv")
MISSING = ("zero", "blank")

# Each format's identity columns: {header: field of the student's identity}. The fields are
# those a roster may give (ROSTER_FIELDS), plus name, sortable_name ("Last, First") and
# student_id, the grader's id.
LAYOUTS = {
    # Canvas gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, then one column
    # per assignment; a "Points Possible" row gives each new assignment's points.
    "canvas": {"Student": "sortable_name", "ID": "id", "SIS User ID": "sis_user_id",
               "SIS Login ID": "sis_login_id", "Section": "section"},
    # Moodle's CSV grade import: any identifier column, mapped at import to the user's email
    # address, username or ID number; each grade column mapped to a grade item.
    "moodle": {"First name": "first_name", "Last name": "last_name", "ID number": "idnumber",
               "Username": "username", "Email address": "email"},
    # Gradescope: its roster's columns (name, email, SID), and per assignment a score column
    # and NAME - Max Points, as in its own grades CSV.
    "gradescope": {"Name": "name", "SID": "sid", "Email": "email"},
    "csv": {"student": "student_id", "name": "name", "email": "email"},
}
CANVAS_POINTS_POSSIBLE = "    Points Possible"   # as Canvas's own export writes it
NO_GRADE = {"moodle": "-"}   # Moodle reads "-" as no grade; the others read an empty cell

# Roster columns, spelled as below or as the LMS's own export spells them (SIS User ID,
# Email address, ID number, ...). student_id is the grader's student id; the others say who
# the student is in the LMS.
ROSTER_FIELDS = ("name", "first_name", "last_name", "email", "section", "id", "sis_user_id",
                 "sis_login_id", "username", "idnumber", "sid")
ROSTER_ALIASES = {"student": "name", "full_name": "name", "email_address": "email",
                  "id_number": "idnumber"}
# The roster columns each LMS can match a student by: a roster needs one of them.
MATCHED_BY = {"canvas": ("id", "sis_user_id", "sis_login_id"),
              "moodle": ("email", "username", "idnumber"),
              "gradescope": ("email", "sid"),
              "csv": ()}
# Without a roster, the grader's student id goes in this column (the LMS's login).
LOGIN = {"canvas": "sis_login_id", "moodle": "username", "gradescope": "sid"}


@dataclass
class NotebookResult:
    """One student's notebook as the gradebook has it."""
    status: str                 # graded | missing | malformed | failed | error
    points: float = 0.0         # the gradebook's score (manual scores included)
    pending: list = field(default_factory=list)   # graded cells waiting for manual grading


@dataclass
class GradedClass:
    """What export needs of a graded OUT."""
    notebooks: dict             # notebook name: maximum points, in notebook order
    students: dict              # student id: {first_name, last_name, email} in the gradebook
    results: dict               # (student, notebook): NotebookResult


@dataclass
class Exported:
    """What export wrote, and what the instructor should know about it."""
    path: Path
    students: int
    blanks: list                # one line per notebook left blank for a reason to act on
    notes: list                 # what to do on the LMS's side


def gradebook_url(course: Path) -> str:
    """The gradebook URL of the course folder, as its nbgrader_config.py sets it up."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader
    try:
        cfg = PyFileConfigLoader("nbgrader_config.py", str(course)).load_config()
    except Exception as e:
        raise GradingError(f"cannot read {course / 'nbgrader_config.py'}: "
                           f"{type(e).__name__}: {e}") from e
    cfg.CourseDirectory.root = str(course)   # the folder where it is now, if OUT was moved
    return CourseDirectory(config=cfg).db_url


def _read_only(url):
    """url itself, or for a SQLite gradebook its read-only form; GradingError if absent."""
    if not url.startswith("sqlite:///"):
        return url
    path = Path(url[len("sqlite:///"):])
    if not path.is_file():
        raise GradingError(f"no gradebook at {path}: grade the class first "
                           "(python -m grader autograde SUBMISSIONS --out OUT)")
    return f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"


def _statuses(course):
    try:
        return {(d["student"], d["notebook"]): d["status"]
                for d in json.loads((course / STATUS_FILE).read_text())}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GradingError(f"cannot read {course / STATUS_FILE}: {e}") from e


def read_class(out: Path) -> GradedClass:
    """The scores of every student graded into OUT, from the course gradebook."""
    from nbgrader.api import Gradebook
    out, course = Path(out), Path(out).resolve() / "course"
    if not out.is_dir():
        raise GradingError(f"no such folder: {out}")
    if not (course / "nbgrader_config.py").is_file() or not (course / STATUS_FILE).is_file():
        raise GradingError(f"{out} is not a graded output folder (no course/nbgrader_config.py "
                           f"and course/{STATUS_FILE}): grade it first with "
                           f"`python -m grader autograde SUBMISSIONS --out {out}`")
    statuses = _statuses(course)
    url = _read_only(gradebook_url(course))
    # nbgrader logs every database error with a traceback; the one-line error says it all
    logging.getLogger("tornado.application").setLevel(logging.CRITICAL + 1)
    try:
        with Gradebook(url, config.COURSE_ID) as gb:
            return _read_gradebook(gb, statuses)
    except GradingError:
        raise
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GradingError(f"cannot read the gradebook of {out}: {reason}") from e


def _read_gradebook(gb, statuses):
    from nbgrader.api import MissingEntry
    try:
        assignment = gb.find_assignment(config.ASSIGNMENT)
    except MissingEntry:
        raise GradingError(f"the gradebook has no assignment {config.ASSIGNMENT}: "
                           "nothing was graded into it") from None
    notebooks = {nb.name: nb.max_score for nb in sorted(assignment.notebooks,
                                                        key=lambda nb: nb.name)}
    students = {sid: {} for sid, _ in statuses}
    results = {}
    for submission in assignment.submissions:
        student = submission.student
        students[student.id] = {"first_name": student.first_name or "",
                                "last_name": student.last_name or "",
                                "email": student.email or ""}
        for nb in submission.notebooks:
            scored = [g for g in nb.grades if (g.auto_score, g.manual_score) != (None, None)]
            # a notebook autograde has no record of (graded another way) counts if scored
            status = statuses.get((student.id, nb.name), "graded" if scored else "missing")
            pending = sorted(g.name for g in nb.grades
                             if (g.auto_score, g.manual_score) == (None, None))
            results[student.id, nb.name] = NotebookResult(
                status, nb.score if status == "graded" else 0.0,
                pending if status == "graded" else [])
    for (sid, nb), status in statuses.items():
        results.setdefault((sid, nb), NotebookResult(status))
    return GradedClass(notebooks, dict(sorted(students.items())), results)


def _field(name):
    key = re.sub(r"[\s-]+", "_", name.strip().lower())
    return ROSTER_ALIASES.get(key, key)


def read_roster(path: Path, fmt: str) -> pd.DataFrame:
    """The roster, one row per student indexed by student_id, columns as in ROSTER_FIELDS."""
    try:
        roster = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise GradingError(f"roster not found: {path}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GradingError(f"cannot read the roster {path}: {reason}") from None
    fields = [_field(c) for c in roster.columns]
    doubled = sorted({f for f in fields if fields.count(f) > 1
                      and f in ("student_id", *ROSTER_FIELDS)})
    if doubled:
        raise GradingError(f"the roster {path} has more than one column for "
                           f"{', '.join(doubled)}")
    roster.columns = fields
    if "student_id" not in fields:
        raise GradingError(f"the roster {path} has no student_id column (the grader's "
                           "student id, as in summary.csv)")
    needs = MATCHED_BY[fmt]
    if needs and not set(needs) & set(fields):
        raise GradingError(f"the roster {path} has none of the columns {fmt} can match a "
                           f"student by: {', '.join(needs)}")
    roster = roster[["student_id"] + [f for f in ROSTER_FIELDS if f in fields]]
    roster = roster.apply(lambda column: column.str.strip())
    if (roster["student_id"] == "").any():
        row = int((roster["student_id"] == "").to_numpy().argmax()) + 2   # 1 is the header
        raise GradingError(f"the roster {path} has no student_id on line {row}")
    doubled = roster["student_id"][roster["student_id"].duplicated()].unique()
    if len(doubled):
        raise GradingError(f"the roster {path} lists {', '.join(doubled)} more than once")
    return roster.set_index("student_id")


def _identity(sid, gradebook, given, fmt):
    """Every identity field of one student: the roster's, else what the gradebook knows."""
    who = {f: "" for f in ROSTER_FIELDS}
    who.update({k: v for k, v in gradebook.items() if v})
    if given is not None:
        who.update({k: v for k, v in given.items() if v})
    elif fmt in LOGIN:   # no roster: the grader's id stands in the LMS's login column
        who[LOGIN[fmt]] = sid
    if not (who["first_name"] or who["last_name"]) and ", " in who["name"]:
        who["last_name"], who["first_name"] = who["name"].split(", ", 1)   # Canvas's "Last, First"
    first, last = who["first_name"], who["last_name"]
    who["student_id"] = sid
    who["sortable_name"] = who["name"] or (f"{last}, {first}" if first and last else sid)
    who["name"] = who["name"] or " ".join(p for p in (first, last) if p) or sid
    return who


def _points(x):
    text = repr(round(float(x), 6))
    return text[:-2] if text.endswith(".0") else text


def _score(result, missing):
    """(points or None for a blank cell, why it is blank if the instructor must act)."""
    if result is None or result.status == "missing":
        return (0.0 if missing == "zero" else None), None
    if result.status == "error":
        return None, ("not graded, the grader's fault (status error; "
                      "`python -m grader autograde SUBMISSIONS --out OUT --only-errors` "
                      "grades it again)")
    if result.pending:
        return None, f"{', '.join(result.pending)} waits for manual grading"
    return (result.points if result.status == "graded" else 0.0), None


def table(graded: GradedClass, fmt: str, roster: pd.DataFrame | None = None,
          missing: str = "zero") -> tuple[pd.DataFrame, list[str]]:
    """The import table of fmt (every cell a string), and a line per notebook left blank
    for a reason to act on (an answer to grade by hand, a grader error)."""
    if roster is not None:
        unknown = [s for s in graded.students if s not in roster.index]
        if unknown:
            spare = [s for s in roster.index if s not in graded.students]
            hint = f" (roster ids not in the grades: {', '.join(spare)})" if spare else ""
            raise GradingError(f"graded students missing from the roster: "
                               f"{', '.join(unknown)}{hint}")
    layout, no_grade = LAYOUTS[fmt], NO_GRADE.get(fmt, "")
    extra = [f for f in ROSTER_FIELDS if fmt == "csv" and roster is not None
             and f in roster.columns and f not in ("name", "email")]
    scores = []
    for nb in graded.notebooks:
        scores.append(nb)
        if fmt == "gradescope":   # the maximum beside each score, as Gradescope writes it
            scores.append(f"{nb} - Max Points")
        elif fmt == "csv":
            scores.append(f"{nb} max")
    if fmt == "csv":
        scores += ["total", "total max"]
    rows, blanks = [], []
    if fmt == "canvas":
        rows.append({**{h: "" for h in layout}, "Student": CANVAS_POINTS_POSSIBLE,
                     **{nb: _points(most) for nb, most in graded.notebooks.items()}})
    for sid in (list(roster.index) if roster is not None else list(graded.students)):
        given = roster.loc[sid].to_dict() if roster is not None else None
        who = _identity(sid, graded.students.get(sid, {}), given, fmt)
        row = {h: who[f] for h, f in layout.items()} | {f: who[f] for f in extra}
        total, complete = 0.0, True
        for nb, most in graded.notebooks.items():
            result = graded.results.get((sid, nb)) if sid in graded.students else None
            points, why = _score(result, missing)
            if why:
                blanks.append(f"{sid} {nb}: left blank, {why}")
            row[nb] = no_grade if points is None else _points(points)
            row[f"{nb} - Max Points"] = row[f"{nb} max"] = _points(most)
            complete = complete and points is not None
            total += points or 0.0
        # a total with a blank in it would pass for a final one
        row["total"] = _points(total) if complete else ""
        row["total max"] = _points(sum(graded.notebooks.values()))
        rows.append(row)
    columns = list(layout) + extra + scores
    return pd.DataFrame([[row[c] for c in columns] for row in rows], columns=columns,
                        dtype=str), blanks


def write_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write frame to path as CSV: the whole file, or (on any error) nothing at all."""
    path = Path(path)
    if path.is_dir():
        raise GradingError(f"cannot write {path}: it is a folder")
    if not path.parent.is_dir():
        raise GradingError(f"cannot write {path}: no folder {path.parent}")
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part",
                                         dir=path.parent)
    except OSError as e:
        raise GradingError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            frame.to_csv(f, index=False, lineterminator="\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except OSError as e:
        Path(temporary).unlink(missing_ok=True)
        raise GradingError(f"cannot write {path}: {e.strerror or e}") from None


def lms_notes(graded: GradedClass, fmt: str, roster: pd.DataFrame | None) -> list[str]:
    """What the instructor must do on the LMS's side for this file."""
    maxima = ", ".join(f"{nb} {_points(m)}" for nb, m in graded.notebooks.items())
    notes = []
    if fmt == "moodle":
        notes.append(f"Moodle takes no maximum from the file: give each notebook's grade item "
                     f"its maximum grade ({maxima}) and map each column to it; '-' is no grade")
    if roster is None and fmt in LOGIN:
        column = next(h for h, f in LAYOUTS[fmt].items() if f == LOGIN[fmt])
        notes.append(f"no --roster: each row has the grader's student id as {column}")
    return notes


def export(out: Path, fmt: str, output: Path | None = None, roster: Path | None = None,
           missing: str = "zero") -> Exported:
    """Write OUT's scores as fmt's import CSV to output (default OUT/export-FORMAT.csv)."""
    if fmt not in FORMATS:
        raise GradingError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    if missing not in MISSING:
        raise GradingError(f"--missing must be zero or blank, not {missing!r}")
    given = read_roster(Path(roster), fmt) if roster is not None else None
    graded = read_class(Path(out))
    frame, blanks = table(graded, fmt, given, missing)
    path = Path(output) if output is not None else Path(out) / f"export-{fmt}.csv"
    write_atomically(frame, path)
    notes = lms_notes(graded, fmt, given)
    if given is not None:
        absent = [s for s in given.index if s not in graded.students]
        if absent:
            notes.append(f"{len(absent)} students of the roster handed in nothing "
                         f"({'0' if missing == 'zero' else 'left blank'}): {', '.join(absent)}")
    students = len(frame) - (fmt == "canvas")
    return Exported(path, students, blanks, notes)
