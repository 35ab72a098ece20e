"""How a class run spends its time: student order and feedback templates (grader.autograde)."""
from unittest import mock

import jinja2
import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from grader.autograde import Submission, heaviest_first
from grader.nbgrading import FeedbackExporter


def test_students_with_the_longest_notebooks_go_first(tmp_path):
    sources = []
    for name, size in (("01_long", 900), ("02_short", 50), ("05_longest", 1400)):
        sources.append(tmp_path / "source" / f"{name}.ipynb")
        sources[-1].parent.mkdir(exist_ok=True)
        sources[-1].write_text("x" * size)
    hands_in = {"ann": ["02_short"], "bob": ["01_long"], "cid": ["02_short", "05_longest"],
                "dee": [], "eve": ["01_long", "02_short"]}
    subs = []
    for student, notebooks in hands_in.items():
        (tmp_path / student).mkdir()
        for nb in notebooks:
            (tmp_path / student / f"{nb}.ipynb").write_text("{}")
        subs.append(Submission(student, tmp_path / student))
    order = [s.student for s in heaviest_first(subs, sources)]
    assert order == ["cid", "eve", "bob", "ann", "dee"], order


def test_feedback_templates_are_compiled_once_per_process(tmp_path):
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, str(path))
    first, _ = FeedbackExporter().from_filename(str(path))
    # a second exporter (nbgrader makes one per student) must not compile templates again
    with mock.patch.object(jinja2.Environment, "compile",
                           side_effect=AssertionError("templates compiled again")):
        second, _ = FeedbackExporter().from_filename(str(path))
    assert "x = 1" in second or "x</span>" in second
    assert len(first) == len(second)
