"""Crafted submissions: what each changes in a correct submission, and which graded cells it loses.

A correct submission is the release with every answer cell holding the solution's code, as a
student who solved everything would hand it in. Each Case edits some cells (by grade id; an
edit DELETE removes the cell) of one notebook for one student; `lost` names the graded cells
that must score 0 — every other autograded cell of that notebook must get full marks. A case
may also add cells of its own (`added`: (after grade id, source) pairs), change the notebook
in other ways (`transform`: a function of the notebook), save it under another `filename`,
or put `extra_files` beside it. A student may have one Case per notebook, so one grading run
covers them all. Each stage lists its own cases in cases_*.py; faults and exploits of the
grading itself are in cases_faults.py and cases_exploits.py.
"""
import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader import config

NOTEBOOKS = [p.stem for p in sorted(config.SOLUTIONS.glob("*.ipynb"))]
STAGE2 = "02_backprop_step_by_step"
RELEASE = "release"        # edits: the untouched release
MALFORMED = "malformed"    # edits: a file that is not JSON
ALL = "all"                # lost: every graded cell
DELETE = None              # an edit that deletes the cell


@dataclass(frozen=True)
class Case:
    student: str
    notebook: str
    edits: object          # {answer grade_id: new source}, RELEASE or MALFORMED
    lost: object           # set of grade ids, or ALL
    why: str
    added: tuple = ()      # ((grade id the new cell follows, its source), ...)
    transform: object = None   # function(notebook) -> None, applied last
    filename: str = None   # the file's name in the submission (default: NOTEBOOK.ipynb)
    extra_files: tuple = ()    # ((relative path, text), ...) beside the notebook
    reason: str = None     # words summary.csv's reason for this notebook must contain
    status: str = "graded"     # its status in summary.csv


CASES = [Case("solution", nb, {}, set(), "the solution submitted as is gets full marks")
         for nb in NOTEBOOKS]
CASES += [Case("release", nb, RELEASE, ALL, "the untouched release gets 0") for nb in NOTEBOOKS]


def _solution_code(cell):
    """The code of a solution cell without nbgrader's solution delimiters."""
    return "\n".join(line for line in cell.source.splitlines()
                     if not re.match(r"\s*### (BEGIN|END) SOLUTION", line))


def correct_submission(notebook):
    """The release of notebook with each answer cell holding the solution's code."""
    solution = nbformat.read(str(config.SOLUTIONS / f"{notebook}.ipynb"), as_version=4)
    answers = {c.metadata.nbgrader["grade_id"]: _solution_code(c) for c in solution.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.read(str(config.NOTEBOOKS / f"{notebook}.ipynb"), as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def write_case(case, root):
    """Write the submission of one case under root/STUDENT/NOTEBOOK.ipynb."""
    path = Path(root) / case.student / (case.filename or f"{case.notebook}.ipynb")
    path.parent.mkdir(parents=True, exist_ok=True)
    for name, text in case.extra_files:
        (path.parent / name).parent.mkdir(parents=True, exist_ok=True)
        (path.parent / name).write_text(text)
    if case.edits == MALFORMED:
        path.write_text('{"cells": [ this is not json')
        return path
    if case.edits == RELEASE:
        nb = nbformat.read(str(config.NOTEBOOKS / f"{case.notebook}.ipynb"), as_version=4)
    else:
        nb = correct_submission(case.notebook)
        ids = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
        for gid, source in case.edits.items():
            if source is DELETE:
                nb.cells.remove(ids[gid])
            else:
                ids[gid].source = source   # KeyError: the case names a cell the notebook lacks
        for after, source in case.added:
            at = nb.cells.index(ids[after]) + 1 if after else 0
            nb.cells.insert(at, nbformat.v4.new_code_cell(source))
        if case.transform:
            case.transform(nb)
    nbformat.write(nb, str(path))
    return path


def write_all(root, cases=CASES):
    seen = set()
    for case in cases:
        key = (case.student, case.notebook)
        assert key not in seen, f"two cases for {key}"
        seen.add(key)
        write_case(case, root)


def graded_cells(notebook):
    """Autograded cells (test cells) of a notebook, in order."""
    nb = json.loads((config.SOLUTIONS / f"{notebook}.ipynb").read_text())
    return [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("grade")
            and not c["metadata"]["nbgrader"].get("solution")]


for module in sorted(Path(__file__).parent.glob("cases_*.py")):   # one file per stage
    CASES += importlib.import_module(module.stem).CASES
