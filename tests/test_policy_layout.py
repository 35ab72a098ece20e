"""The code policy reads one cell at a time, under the policy of the answer it stands after in
the course's order: a cell cannot carry a looser policy to where a stricter one holds.

Stage 5's diagnostics answers may use autograd; every answer and check that must not comes
before them. A student who moves a diagnostics answer (holding autograd and a `backward` that
returns its stash) in front of `check_backward`, or adds an autograd cell right after
`answer_backward`, gets neither: RestoreLayout puts the moved cell back after the backward
checks, and the added cell stands under answer_backward's no-autograd policy. Checked on the
nbgrader preprocessors themselves, no kernel needed.
"""
import shutil

import nbformat
from nbformat.v4 import new_code_cell
from traitlets.config import Config

from grader import config
from grader.judge import RestoreLayout
from grader.preprocessors.enforce_policy import REFUSED_KEY, EnforcePolicy

STAGE5 = "05_training_and_diagnostics"
STASH = ("stash = {}\n"
         "def backward(parameters, cache, Xb, Yb):\n"
         "    return stash['grads']\n"
         "loss = torch.nn.functional.cross_entropy(forward(parameters, Xb)[0], Yb)\n"
         "loss.backward()\n"
         "stash['grads'] = [p.grad for p in parameters]\n")


def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def sanitized(tmp_path, nb):
    """nb after RestoreLayout and EnforcePolicy, as autograde runs them."""
    for folder in ("release", "source"):
        target = tmp_path / folder / config.ASSIGNMENT
        target.mkdir(parents=True)
        shutil.copy((config.NOTEBOOKS if folder == "release" else config.SOLUTIONS)
                    / f"{STAGE5}.ipynb", target)
    c = Config()
    c.CourseDirectory.root = str(tmp_path)
    resources = {"nbgrader": {"assignment": config.ASSIGNMENT, "notebook": STAGE5,
                              "student": "mover"}}
    for step in (RestoreLayout(config=c), EnforcePolicy(config=c)):
        nb, resources = step.preprocess(nb, resources)
    return nb


def test_a_diagnostics_cell_moved_before_the_backward_checks_goes_back_after_them(tmp_path):
    nb = nbformat.read(str(config.NOTEBOOKS / f"{STAGE5}.ipynb"), as_version=4)
    cells = {grade_id(c): c for c in nb.cells if grade_id(c)}
    moved = cells["answer_make_layers"]
    moved.source += "\n" + STASH
    nb.cells.remove(moved)
    nb.cells.insert(nb.cells.index(cells["check_backward"]), moved)
    added = new_code_cell(STASH)
    nb.cells.insert(nb.cells.index(cells["answer_backward"]) + 1, added)

    graded = sanitized(tmp_path, nb)
    order = [grade_id(c) for c in graded.cells]
    assert order.index("answer_make_layers") > order.index("check_backward_any_batch") \
        > order.index("check_backward")
    assert REFUSED_KEY not in moved.metadata, "a diagnostics answer may use autograd"
    assert graded.cells.index(added) == order.index("answer_backward") + 1
    assert "no-autograd" in added.metadata[REFUSED_KEY] \
        and "`.backward`" in added.metadata[REFUSED_KEY], added.metadata


def test_a_module_renamed_in_one_added_cell_cannot_be_changed_in_the_next(tmp_path):
    """The policy reads one cell at a time, but what the cells before bound to a module it
    keeps: `import torch as t` in one added cell, `t.is_grad_enabled = ...` in the next."""
    nb = nbformat.read(str(config.NOTEBOOKS / f"{STAGE5}.ipynb"), as_version=4)
    cells = {grade_id(c): c for c in nb.cells if grade_id(c)}
    at = nb.cells.index(cells["answer_backward"]) + 1
    rename, change = new_code_cell("import torch as t"), \
        new_code_cell("t.is_grad_enabled = lambda: True")
    nb.cells[at:at] = [rename, change]
    sanitized(tmp_path, nb)
    assert REFUSED_KEY not in rename.metadata
    assert "not the answer's to change" in change.metadata[REFUSED_KEY], change.metadata
