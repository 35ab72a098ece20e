"""What a submission may hold: symbolic links are never followed, odd student ids never make a
folder, and a zip mixing student folders and loose LMS files is graded as far as it can be.
Fast: inspect() and collect() on folders and zips built here, no grading run."""
import csv
import os
import stat
import zipfile

import nbformat
import pytest

from grader import GradingError
from grader.autograde import Submission, inspect
from grader.collect import collect, unusable_id

NB, OTHER = "02_backprop_step_by_step", "03_fused_cross_entropy"
NOTEBOOKS = [NB, OTHER]


def notebook(marker):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(f"# {marker}"))
    return nbformat.writes(nb)


def write_notebook(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(notebook(marker))
    return path


def rows(out):
    with open(out / "collected.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_symlinked_notebook_is_not_graded_and_listed(tmp_path):
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    write_notebook(alice / f"{NB}.ipynb", "alice's work")
    bob.mkdir()
    (bob / f"{NB}.ipynb").symlink_to(alice / f"{NB}.ipynb")   # a classmate's notebook
    (bob / "passwd").symlink_to("/etc/passwd")                 # a system file
    (bob / "gone.txt").symlink_to(tmp_path / "nowhere")         # a broken link
    write_notebook(bob / f"{OTHER}.ipynb", "bob's own work")

    present, results, notes = inspect(Submission("bob", bob), NOTEBOOKS)
    assert present == {OTHER: bob / f"{OTHER}.ipynb"}
    [linked] = results
    assert (linked.notebook, linked.status) == (NB, "missing")
    assert linked.reason == f"{NB}.ipynb is a symbolic link: not graded"
    assert notes == [f"ignored symbolic links: {NB}.ipynb, gone.txt, passwd"]

    present, results, notes = inspect(Submission("alice", alice), NOTEBOOKS)
    assert present == {NB: alice / f"{NB}.ipynb"} and notes == []   # the author's own is graded


def test_symlinked_folder_is_not_walked(tmp_path):
    alice, carol = tmp_path / "subs" / "alice", tmp_path / "subs" / "carol"
    write_notebook(alice / f"{NB}.ipynb", "alice's work")
    (alice / "notes.txt").write_text("alice's notes")
    write_notebook(carol / f"{NB}.ipynb", "carol's work")
    (carol / "data.csv").write_text("1,2")
    (carol / "work").symlink_to(alice, target_is_directory=True)
    (carol / "root").symlink_to("/", target_is_directory=True)

    present, results, notes = inspect(Submission("carol", carol), NOTEBOOKS)
    assert present == {NB: carol / f"{NB}.ipynb"}
    assert [(r.notebook, r.status, r.reason) for r in results] == \
        [(OTHER, "missing", f"no {OTHER}.ipynb in the submission")]   # no "found instead: work/"
    assert notes == ["ignored extra files: data.csv", "ignored symbolic links: root, work"]

    dave = tmp_path / "subs" / "dave"   # a whole student's folder that is a link
    dave.symlink_to(alice, target_is_directory=True)
    students = collect(tmp_path / "subs", tmp_path / "out", NOTEBOOKS)
    assert [s for s, _, _ in students] == ["alice", "carol", "dave"]
    present, results, notes = inspect(Submission("dave", dave), NOTEBOOKS)
    assert present == {}
    assert {r.status for r in results} == {"missing"}
    assert {r.reason for r in results} == {"the folder dave is a symbolic link: not graded"}


def test_only_symlinked_notebooks_is_no_class(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    write_notebook(tmp_path / "elsewhere" / f"{NB}.ipynb", "someone's")
    (tmp_path / "subs" / "bob").mkdir(parents=True)
    (tmp_path / "subs" / "bob" / f"{NB}.ipynb").symlink_to(tmp_path / "elsewhere" / f"{NB}.ipynb")
    with pytest.raises(GradingError, match="no notebooks found"):
        collect(tmp_path / "subs", tmp_path / "out", NOTEBOOKS)


@pytest.mark.parametrize("student, why", [
    ("", "empty"), (".", "'.'"), ("..", "'..'"), ("a/b", "path separator"),
    ("a\\b", "path separator"), ("x\x01y", "control character"), ("alice\n", "control"),
    ("-rf", "not usable"), ("al ice", "not usable")])
def test_unusable_ids(student, why):
    problem = unusable_id(student)
    assert problem and why in problem and "\n" not in problem


def test_usable_ids():
    assert [unusable_id(s) for s in ("alice", "a.b@uni.edu", "s-12_3")] == [None] * 3


def test_odd_ids_from_the_regexp_are_refused(tmp_path):
    archive = tmp_path / "export.zip"
    members = {f"{NB}.ipynb": "",                  # the student id is empty
               f"._{NB}.ipynb": ".", f".._{NB}.ipynb": "..",
               f"sub/a/b_{NB}.ipynb": "a/b", f"a\\b_{NB}.ipynb": "a\\b",
               f"x\x01y_{NB}.ipynb": "x\x01y", f"alice_{NB}.ipynb": "alice"}
    with zipfile.ZipFile(archive, "w") as z:
        for name in members:
            z.writestr(name, notebook(name))
    # a careless expression: whatever comes before the notebook's name is the student
    regexp = rf".*/downloaded/(?:sub/)?(?P<student_id>.*?)_?(?P<file_id>{NB}\.ipynb)$"
    out = tmp_path / "out"
    before = {p for p in tmp_path.rglob("*") if p != out and out not in p.parents}

    students = collect(archive, out, NOTEBOOKS, regexp)

    assert [s for s, _, _ in students] == ["alice"]
    collected = out / "course" / "collected"
    assert sorted(p.relative_to(collected).as_posix() for p in collected.rglob("*")) == \
        ["alice", f"alice/{NB}.ipynb"]
    assert nbformat.reads((collected / "alice" / f"{NB}.ipynb").read_text(), 4).cells[0].source \
        == f"# alice_{NB}.ipynb"
    # nothing written anywhere but the zip's staging folder, collected/ and collected.csv
    assert {p for p in tmp_path.rglob("*") if p != out and out not in p.parents} == before
    for p in out.rglob("*"):
        rel = p.resolve().relative_to(out.resolve())
        assert rel.as_posix() in ("collected.csv", "course") or \
            rel.parts[:2] in (("course", "collected"), ("course", "downloaded")), rel
    log = {r["file"]: r for r in rows(out)}
    assert len(log) == len(members)
    for name, student in members.items():
        shown = name if name.isprintable() else ascii(name)[1:-1]   # one line, escaped
        row = log[shown]
        if student == "alice":
            assert row["status"] == "collected"
            continue
        assert row["student"] == "" and row["status"].startswith("ignored: the student id"), row
        assert "\n" not in row["status"] and "\x01" not in row["status"]
    assert "path separator" in log[f"sub/a/b_{NB}.ipynb"]["status"]
    assert "control character" in log[f"x\\x01y_{NB}.ipynb"]["status"]
    assert "'..'" in log[f".._{NB}.ipynb"]["status"]


def test_mixed_zip_collects_both_kinds(tmp_path):
    archive = tmp_path / "export.zip"
    link = zipfile.ZipInfo(f"eve_{NB}.ipynb")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16     # a symbolic link stored in the zip
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"alice/{NB}.ipynb", notebook("alice's folder"))
        z.writestr("alice/notes.txt", "alice's notes")
        z.writestr(f"alice_{NB}.ipynb", notebook("alice's loose copy"))   # a second one
        z.writestr(f"bob_{NB}.ipynb", notebook("bob's loose file"))
        z.writestr(f"carol-{OTHER}.ipynb", notebook("carol's loose file"))
        z.writestr("README.txt", "exported by the LMS")
        z.writestr("dave_99_not_in_course.ipynb", notebook("dave"))
        z.writestr(f"frank/{NB}.ipynb/oops.txt", "not a notebook")
        z.writestr("grace", "a file ...")
        z.writestr(f"grace/{NB}.ipynb", notebook("... and a folder of the same name"))
        z.writestr("../evil.ipynb", notebook("outside"))
        z.writestr(link, "/etc/passwd")
    out = tmp_path / "out"

    students = collect(archive, out, NOTEBOOKS)

    collected = out / "course" / "collected"
    assert [s for s, _, _ in students] == ["alice", "bob", "carol"]
    files = sorted(p.relative_to(collected).as_posix() for p in collected.rglob("*") if p.is_file())
    assert files == [f"alice/{NB}.ipynb", "alice/notes.txt", f"bob/{NB}.ipynb",
                     f"carol/{OTHER}.ipynb"]
    assert "alice's folder" in (collected / "alice" / f"{NB}.ipynb").read_text()
    assert "bob's loose file" in (collected / "bob" / f"{NB}.ipynb").read_text()
    assert not (tmp_path / "evil.ipynb").exists() and not (out / "evil.ipynb").exists()
    assert not any(p.is_symlink() for p in out.rglob("*"))
    log = {r["file"]: r for r in rows(out)}
    assert len(log) == 12 and all("\n" not in r["status"] for r in log.values())
    status = {name: r["status"] for name, r in log.items()}
    assert [name for name, s in status.items() if s == "collected"] == \
        [f"alice/{NB}.ipynb", "alice/notes.txt", f"bob_{NB}.ipynb", f"carol-{OTHER}.ipynb"]
    assert status[f"alice_{NB}.ipynb"].startswith("ignored: a second file for this student")
    assert status["README.txt"] == "ignored: not a notebook and not in a student's folder"
    assert status["dave_99_not_in_course.ipynb"].startswith("ignored: the name matches no")
    assert status[f"frank/{NB}.ipynb/oops.txt"].startswith("ignored: not a notebook")
    assert status[f"grace/{NB}.ipynb"].startswith("ignored: could not be extracted")
    assert status["grace"].startswith("ignored: not a notebook")
    assert status["../evil.ipynb"].startswith("ignored: an unsafe path")
    assert status[f"eve_{NB}.ipynb"] == "ignored: a symbolic link"
    assert (log[f"bob_{NB}.ipynb"]["student"], log[f"bob_{NB}.ipynb"]["notebook"]) == ("bob", NB)
    assert os.path.getsize(out / "collected.csv") > 0


def test_folder_only_zip_is_unchanged(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"alice/{NB}.ipynb", notebook("alice"))
        z.writestr(f"alice/{OTHER} (1).ipynb", notebook("a misnamed copy"))
        z.writestr("index.html", "the LMS's index")
    out = tmp_path / "out"
    students = collect(archive, out, NOTEBOOKS)
    assert [s for s, _, _ in students] == ["alice"]
    present, results, _ = inspect(Submission(*students[0]), NOTEBOOKS)
    assert list(present) == [NB]
    assert results[0].reason == f"no {OTHER}.ipynb in the submission (found instead: " \
                                f"{OTHER} (1).ipynb)"


# ---- the instructor's --out: a one-line reason, exit 2, nothing left behind

def test_bad_out_folders_are_refused_in_one_line(tmp_path):
    from conftest import grader
    subs = tmp_path / "subs"
    write_notebook(subs / "alice" / f"{NB}.ipynb", "alice")
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    for out, why in [(a_file, "is a file, not a folder"),
                     (a_file / "out", "a_file is a file, not a folder")]:
        run = grader("autograde", subs, "--out", out)
        assert run.returncode == 2, run.stderr
        assert run.stderr.count("\n") == 1 and why in run.stderr, run.stderr
    if os.getuid() != 0:   # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
        run = grader("autograde", subs, "--out", locked / "out")
        assert run.returncode == 2 and "not writable" in run.stderr, run.stderr


def test_a_failed_call_leaves_no_out_folder(tmp_path):
    """An empty zip: the message names the zip and the naming it expects; OUT is not made."""
    from conftest import grader
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "nothing here")
    run = grader("autograde", archive, "--out", tmp_path / "out")
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    assert str(archive) in run.stderr and "STUDENT_NOTEBOOK.ipynb" in run.stderr, run.stderr
    assert not (tmp_path / "out").exists()
