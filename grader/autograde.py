"""python -m grader autograde: grade a folder of submissions with nbgrader, write CSVs and feedback.

SUBMISSIONS/STUDENT/NOTEBOOK.ipynb, NOTEBOOK named as in notebooks/. Every notebook of every
student is graded on its own, so a missing, malformed or crashing notebook costs only itself.
OUT/course is the nbgrader course folder (source, submissions, gradebook); keep it private:
it holds the solutions.
"""
import csv
import html
import re
import shutil
from dataclasses import dataclass

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from . import GradingError, config
from .judge import reference_answers
from .nbgrading import add_source, course_config, nbgrader_api

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


@dataclass
class Result:
    """How one student's notebook fared: graded, or why not."""
    student: str
    notebook: str
    status: str            # graded | missing | malformed | failed
    reason: str = ""


def find_students(submissions, notebooks):
    """Student folders under submissions; GradingError when there is nothing to grade."""
    if not submissions.is_dir():
        raise GradingError(f"submissions folder not found: {submissions}")
    students = sorted(d for d in submissions.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not any((d / f"{nb}.ipynb").exists() for d in students for nb in notebooks):
        raise GradingError(f"no notebooks found in {submissions}: expected STUDENT/NOTEBOOK.ipynb "
                           f"with NOTEBOOK one of {', '.join(notebooks)}")
    return students


def readable(path):
    """None if path is a notebook nbgrader can read, else the reason it is not."""
    try:
        nbformat.validate(nbformat.read(str(path), as_version=4))
    except Exception as e:
        return f"not a readable notebook: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return None


def grade_student(api, course, folder, notebooks):
    """Grade each of one student's notebooks in its own nbgrader run; a Result for each."""
    sid = folder.name
    if not STUDENT_ID.match(sid):
        return [Result(sid, nb, "failed", "folder name is not a usable student id "
                       "(letters, digits, _ . @ - only)") for nb in notebooks]
    submitted = course / "submitted" / sid / config.ASSIGNMENT
    if submitted.exists():
        shutil.rmtree(submitted)
    submitted.mkdir(parents=True)
    results = []
    for nb in notebooks:
        path = folder / f"{nb}.ipynb"
        if not path.exists():
            results.append(Result(sid, nb, "missing", f"no {nb}.ipynb in the submission"))
            continue
        problem = readable(path)
        if problem:
            results.append(Result(sid, nb, "malformed", problem))
            continue
        shutil.copy(path, submitted / path.name)
        results.append(Result(sid, nb, "graded"))
    for r in results:
        if r.status == "graded":
            api.coursedir.notebook_id = r.notebook
            try:
                outcome = api.autograde(config.ASSIGNMENT, sid)
            finally:
                api.coursedir.notebook_id = "*"
            if not outcome["success"]:
                r.status, r.reason = "failed", _last_error(outcome)
    return results


def _last_error(outcome):
    lines = [ln for ln in (outcome.get("error") or outcome.get("log") or "").splitlines()
             if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    return (errors or lines or ["nbgrader failed without a message"])[-1].strip()[:300]


def grade_cells(source):
    """Grade cell ids of a source notebook, in notebook order."""
    nb = nbformat.read(str(source), as_version=4)
    return [c.metadata.nbgrader["grade_id"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")]


def score_rows(db_url, results, cells):
    """One row per graded cell: student, notebook, cell, score, max_score."""
    rows = []
    with Gradebook(db_url) as gb:
        for r in results:
            for cell in cells[r.notebook]:
                max_score = gb.find_grade_cell(cell, r.notebook, config.ASSIGNMENT).max_score
                score = 0.0
                if r.status == "graded":
                    try:
                        grade = gb.find_grade(cell, r.notebook, config.ASSIGNMENT, r.student)
                    except MissingEntry:
                        grade = None
                    if grade is not None and (grade.auto_score, grade.manual_score) == (None, None):
                        score = ""   # waits for manual grading
                    elif grade is not None:
                        score = grade.score
                rows.append({"student": r.student, "notebook": r.notebook, "cell": cell,
                             "score": score, "max_score": max_score})
    return rows


def write_csv(path, rows, fields):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def summarise(results, rows):
    """One row per student and notebook: score, max_score, status, reason."""
    summary = []
    for r in results:
        mine = [x for x in rows if (x["student"], x["notebook"]) == (r.student, r.notebook)]
        summary.append({"student": r.student, "notebook": r.notebook,
                        "score": sum(float(x["score"] or 0) for x in mine),
                        "max_score": sum(x["max_score"] for x in mine),
                        "status": r.status, "reason": r.reason})
    return summary


def write_feedback(api, course, out, results):
    """OUT/feedback/STUDENT/NOTEBOOK.html: nbgrader's feedback, or a page with the reason."""
    for sid in sorted({r.student for r in results}):
        if any(r.student == sid and r.status == "graded" for r in results):
            api.generate_feedback(config.ASSIGNMENT, sid)
        folder = out / "feedback" / sid
        folder.mkdir(parents=True, exist_ok=True)
        for r in (r for r in results if r.student == sid):
            made = course / "feedback" / sid / config.ASSIGNMENT / f"{r.notebook}.html"
            if r.status == "graded" and made.exists():
                shutil.copy(made, folder / made.name)
            else:
                reason = html.escape(r.reason or "no feedback was generated")
                (folder / f"{r.notebook}.html").write_text(
                    f"<!DOCTYPE html><meta charset='utf-8'><title>{r.notebook}</title>"
                    f"<h1>{r.notebook}: not graded</h1><p>{reason}</p><p>Score: 0</p>\n")


def autograde(submissions, out, db_url=None):
    """Grade every student folder in submissions; write OUT/grades.csv, summary.csv, feedback/."""
    notebooks = [p.stem for p in sorted(config.SOLUTIONS.glob("*.ipynb"))]
    students = find_students(submissions, notebooks)
    out.mkdir(parents=True, exist_ok=True)
    course = (out / "course").resolve()
    course.mkdir(exist_ok=True)
    sources = add_source(course, nbgrader_api(course, db_url))
    cfg = course_config(course, db_url)
    references = {p.stem: reference_answers(p, cfg) for p in sources}
    api = nbgrader_api(course, db_url, references)
    results = []
    for folder in students:
        results += grade_student(api, course, folder, notebooks)
        done = [r for r in results if r.student == folder.name]
        print(f"{folder.name}: " + ", ".join(f"{r.notebook} {r.status}" for r in done))
    cells = {p.stem: grade_cells(p) for p in sources}
    rows = score_rows(api.coursedir.db_url, results, cells)
    write_csv(out / "grades.csv", rows, ["student", "notebook", "cell", "score", "max_score"])
    write_csv(out / "summary.csv", summarise(results, rows),
              ["student", "notebook", "score", "max_score", "status", "reason"])
    write_feedback(api, course, out, results)
    return results
