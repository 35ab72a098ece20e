"""RestoreMetadata: the metadata that steers grading comes from the course, never the submission.

A submission can edit its notebook's and its cells' metadata. Before grading, the notebook's
`makemore` settings (whether autograd is off) and every known cell's `nbgrader` metadata
(grade, solution, locked, points) are replaced by the course's copy; `nbgrader` metadata on a
cell the course does not know (a cell the student added) is dropped, so it stays ungraded
student code. What was restored is noted for the summary.
"""
import copy
from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor

from .events import record


def course_notebook(config, resources, folder="release"):
    """The course's copy (release or source) of the notebook being graded, or None."""
    nbg = resources["nbgrader"]
    path = Path(config.CourseDirectory.root or ".") / folder / nbg["assignment"] \
        / f"{nbg['notebook']}.ipynb"
    return nbformat.read(str(path), as_version=4) if path.exists() else None


NOTEBOOK_KEYS = ("block_autograd",)                                  # what steers grading
CELL_KEYS = ("grade", "solution", "locked", "points", "task", "cell_type")


def _steering(metadata, keys):
    return {k: (metadata or {}).get(k) for k in keys}


def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


class RestoreMetadata(NbGraderPreprocessor):
    """Before nbgrader's OverwriteCells: grading metadata as the course has it."""

    def preprocess(self, nb, resources):
        course = course_notebook(self.config, resources)
        if course is None:
            return nb, resources
        restored = []
        if _steering(nb.metadata.get("makemore"), NOTEBOOK_KEYS) != \
                _steering(course.metadata.get("makemore"), NOTEBOOK_KEYS):
            restored.append("the notebook's grading settings")
        nb.metadata["makemore"] = copy.deepcopy(course.metadata.get("makemore", {}))
        known = {grade_id(c): c for c in course.cells if grade_id(c)}
        cells, dropped = [], []
        for cell in nb.cells:
            gid = grade_id(cell)
            if gid in known:
                theirs = known[gid]
                if _steering(cell.metadata.get("nbgrader"), CELL_KEYS) != \
                        _steering(theirs.metadata.get("nbgrader"), CELL_KEYS):
                    restored.append(gid)
                cell.metadata["nbgrader"] = copy.deepcopy(theirs.metadata["nbgrader"])
                if cell.cell_type != theirs.cell_type:
                    cell = nbformat.from_dict(copy.deepcopy(theirs))
            elif "nbgrader" in cell.metadata:
                dropped.append(gid or "a cell without grade id")
                del cell.metadata["nbgrader"]
            cells.append(cell)
        nb.cells = cells
        if restored:
            record(resources, "grading metadata restored from the course: " + ", ".join(restored),
                   self.log)
        if dropped:
            record(resources, "grading metadata removed from added cells: " + ", ".join(dropped),
                   self.log)
        return nb, resources
