"""Grading a class: LMS zips, batches, re-grading, the class report, clear errors."""
import re
import zipfile

import pandas as pd
import pytest
from nbgrader.api import Gradebook

from conftest import grader, read_csv
from crafted import STAGE2, Case, graded_cells, write_case

CORRECT = Case("x", STAGE2, {}, set(), "")
ONE_WRONG = Case("x", STAGE2, {"answer_h": "dh = dlogits @ W2.T * 0.5"}, {"check_h"}, "")


def notebook_bytes(tmp_path, case):
    return write_case(case, tmp_path / "build" / case.student).read_bytes()


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """An LMS zip graded, a second batch (a folder) added, then the zip graded again."""
    root = tmp_path_factory.mktemp("batches")
    correct, wrong = notebook_bytes(root, CORRECT), notebook_bytes(root, ONE_WRONG)
    lms = root / "export.zip"
    with zipfile.ZipFile(lms, "w") as z:
        z.writestr(f"alice_{STAGE2}.ipynb", correct)
        z.writestr(f"bob-{STAGE2}.ipynb", wrong)
        z.writestr("README.txt", "exported by the LMS")
        z.writestr("carol_99_not_in_course.ipynb", correct)
    second = root / "second"
    (second / "dave").mkdir(parents=True)
    (second / "dave" / f"{STAGE2}.ipynb").write_bytes(correct)
    out = root / "out"
    runs, snapshots = [], []
    for submissions in (lms, second, lms):
        runs.append(grader("autograde", submissions, "--out", out, "--jobs", "2"))
        assert runs[-1].returncode == 0, runs[-1].stderr
        snapshots.append({name: (out / name).read_text()
                          for name in ("grades.csv", "summary.csv", "collected.csv")})
    return out, runs, snapshots


def test_lms_zip_maps_files_to_students(batches):
    out, _, snapshots = batches
    summary = {(r["student"], r["notebook"]): r for r in read_csv(out / "summary.csv")}
    cells = graded_cells(STAGE2)
    assert float(summary[("alice", STAGE2)]["score"]) == len(cells)
    assert float(summary[("bob", STAGE2)]["score"]) == len(cells) - 1
    collected = {r["file"]: r for r in read_csv(out / "collected.csv")}
    assert collected[f"alice_{STAGE2}.ipynb"]["status"] == "collected"
    assert collected[f"bob-{STAGE2}.ipynb"]["student"] == "bob"
    assert collected["README.txt"]["status"].startswith("ignored")
    assert collected["carol_99_not_in_course.ipynb"]["status"].startswith("ignored")


def test_second_batch_adds_to_the_gradebook(batches):
    out, _, snapshots = batches
    after_first = {r["student"] for r in read_csv_text(snapshots[0]["summary.csv"])}
    after_second = {r["student"] for r in read_csv_text(snapshots[1]["summary.csv"])}
    assert after_first == {"alice", "bob"} and after_second == {"alice", "bob", "dave"}
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}", "makemore-backprop") as gb:
        assert {s.id for s in gb.students} == {"alice", "bob", "dave"}
        assert gb.find_submission_notebook(STAGE2, "makemore", "alice").score == \
            len(graded_cells(STAGE2))


def test_regrading_gives_the_same_csvs(batches):
    _, _, snapshots = batches
    assert snapshots[2]["grades.csv"] == snapshots[1]["grades.csv"]
    assert snapshots[2]["summary.csv"] == snapshots[1]["summary.csv"]
    assert snapshots[2]["collected.csv"] == snapshots[0]["collected.csv"]


def test_progress_bar_and_plain_nbgrader_config(batches):
    out, runs, _ = batches
    assert "student" in runs[0].stderr and "100%" in runs[0].stderr   # tqdm: students done
    config = (out / "course" / "nbgrader_config.py").read_text()
    assert "course_config(" in config


def test_plain_nbgrader_grades_the_same_way(batches):
    """`nbgrader autograde` in the course folder (the formgrader's button) uses the grader's
    configuration: the same judge, the same sandbox, the cached reference answers."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    out, _, _ = batches
    db = f"sqlite:///{out / 'course' / 'gradebook.db'}"
    with Gradebook(db, "makemore-backprop") as gb:
        before = {s: gb.find_submission_notebook(STAGE2, "makemore", s).score
                  for s in ("alice", "bob")}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "autograde", "makemore",
                          "--student", "bob", "--force"], cwd=out / "course", env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    with Gradebook(db, "makemore-backprop") as gb:
        after = {s: gb.find_submission_notebook(STAGE2, "makemore", s).score
                 for s in ("alice", "bob")}
    full = len(graded_cells(STAGE2))
    assert after == before == {"alice": full, "bob": full - 1}


def read_csv_text(text):
    import csv
    import io
    return list(csv.DictReader(io.StringIO(text)))


def test_class_report_shows_distribution_and_shares(graded):
    report = (graded / "report.html").read_text()
    summary = read_csv(graded / "summary.csv")
    with_graded = {s["notebook"] for s in summary if s["status"] == "graded"}
    assert report.count("data:image/png;base64,") == 2 * len(with_graded)   # two per notebook
    rows = [r for r in read_csv(graded / "grades.csv") if r["notebook"] == STAGE2]
    graded_students = {s["student"] for s in summary
                       if s["notebook"] == STAGE2 and s["status"] == "graded"}
    for cell in graded_cells(STAGE2):
        mine = [r for r in rows if r["cell"] == cell and r["student"] in graded_students]
        share = sum(float(r["score"]) >= float(r["max_score"]) for r in mine) / len(mine)
        shown = re.search(rf"<td>{cell}</td>\s*<td>(?:<span class='low'>)?(\d+)%", report)
        assert shown and shown[1] == f"{100 * share:.0f}", cell


def test_answer_table_counts_full_credit_mean_share_and_pending(tmp_path):
    """Per answer in notebook order: a blank score is pending (not missed), a 0-point answer
    counts as all of its points, an answer nobody has a score for yet shows a dash."""
    from grader.report import answer_table, write_report
    rows = [{"student": s, "notebook": "nb", "cell": c, "score": v, "max_score": m}
            for s, c, v, m in [("a", "first", "2", "2"), ("b", "first", "1", "2"),
                               ("c", "first", "0", "2"), ("a", "free", "0", "0"),
                               ("b", "free", "0", "0"), ("c", "free", "0", "0"),
                               ("a", "essay", "", "3"), ("b", "essay", "", "3"),
                               ("c", "essay", "3", "3"), ("a", "later", "", "1"),
                               ("b", "later", "", "1"), ("c", "later", "", "1")]]
    cells = ["first", "free", "essay", "later"]
    grades = pd.DataFrame(rows)
    grades["score"] = pd.to_numeric(grades["score"], errors="coerce")
    grades["max_score"] = pd.to_numeric(grades["max_score"])
    table = answer_table(grades, cells)
    assert list(table.index) == cells
    assert table.loc["first", "full credit"] == pytest.approx(1 / 3)
    assert table.loc["first", "mean score"] == pytest.approx(0.5)
    assert table.loc["free", "full credit"] == 1.0 and table.loc["free", "mean score"] == 1.0
    assert table.loc["essay", "full credit"] == 1.0 and table.loc["essay", "pending"] == 2
    assert pd.isna(table.loc["later", "full credit"]) and table.loc["later", "pending"] == 3
    summary = [{"student": s, "notebook": "nb", "status": "graded", "reason": ""}
               for s in "abc"] + [{"student": "d<", "notebook": "nb", "status": "failed",
                                   "reason": "not <valid> JSON"}]
    write_report(tmp_path / "report.html", rows, summary, {"nb": cells})
    page = (tmp_path / "report.html").read_text()
    assert re.search(r"<td>first</td>\s*<td><span class='low'>33%</span></td>\s*<td>50%</td>",
                     page)
    assert re.search(r"<td>later</td>\s*<td>—</td>\s*<td>—</td>\s*<td>3</td>", page)
    assert "Most missed: <b>first</b> (33%), <b>free</b> (100%), <b>essay</b> (100%)" in page
    assert "3 notebooks wait for manual grading" in page
    assert "<td>d&lt;</td>" in page and "not &lt;valid&gt; JSON" in page


def test_unreadable_zip_is_a_clear_error(tmp_path):
    bad = tmp_path / "export.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr(f"alice_{STAGE2}.ipynb", "x" * 1000)
    bad.write_bytes(bad.read_bytes()[:-30])   # cut off the end: no central directory
    run = grader("autograde", bad, "--out", tmp_path / "out")
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0 and "zip" in run.stderr
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    run = grader("autograde", text, "--out", tmp_path / "out")
    assert run.returncode != 0 and "neither a folder nor a zip" in run.stderr


def test_bad_jobs_is_a_clear_error(tmp_path):
    run = grader("autograde", tmp_path, "--out", tmp_path / "out", "--jobs", "0")
    assert run.returncode != 0 and "--jobs" in run.stderr


def test_the_run_ends_with_what_was_graded_and_what_waits(graded):
    """The last lines name the files, count the notebooks per status and those left to grade
    by hand (stage 5's written answer: blank in grades.csv)."""
    printed = (graded / "stdout.txt").read_text()
    summary = read_csv(graded / "summary.csv")
    assert f"graded {len({s['student'] for s in summary})} students" in printed
    assert f"  grades   {graded / 'grades.csv'}" in printed
    assert f"  report   {graded / 'report.html'}" in printed
    waiting = {(r["student"], r["notebook"]) for r in read_csv(graded / "grades.csv")
               if r["score"] == ""}
    assert waiting and f"{len(waiting)} notebooks wait for manual grading" in printed
    report = (graded / "report.html").read_text()
    assert "wait for manual grading (pending below; not counted as missed)" in report
