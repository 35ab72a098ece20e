"""FormulaChecks: after each stage 2 check cell, a grader cell that checks the answer as a formula.

See grader.rules.stage2: the answer cell's code runs again with random upstream gradients and
its result is graded with the check cell (the point needs both). Answer cells that broke the
code policy get none (their test already fails). JudgeAnswers folds these cells' reports into
the check cell before judging and removes them from the graded notebook.
"""
from nbformat.v4 import new_code_cell
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor

from ..rules import stage2
from .enforce_policy import REFUSED_KEY
from .execute import GRADER_CELL_KEY, QUIET_KEY
from .restore_metadata import grade_id

FORMULA_KEY = "makemore_formula"   # cell metadata of the grader's formula cells


def add_formula_cells(nb, notebook):
    """Insert the formula cells into nb (a stage 2 notebook; others are left as they are)."""
    if not str(notebook).startswith("02"):
        return nb
    cells, answer = [], None
    for cell in nb.cells:
        cells.append(cell)
        if cell.cell_type != "code":
            continue
        gid = grade_id(cell)
        if utils.is_solution(cell) and gid in stage2.UPSTREAM:
            answer = None if cell.metadata.get(REFUSED_KEY) else (gid, cell.source)
        elif utils.is_grade(cell) and answer is not None:
            index = list(stage2.UPSTREAM).index(answer[0])
            cells.append(new_code_cell(stage2.formula_call(answer[0], answer[1], index),
                                       metadata={FORMULA_KEY: True, QUIET_KEY: True,
                                                 GRADER_CELL_KEY: True}))
            answer = None
    nb.cells = cells
    return nb


def fold_formula_cells(nb):
    """Move each formula cell's outputs into the graded cell before it; drop the formula cells."""
    cells = []
    for cell in nb.cells:
        if cell.metadata.get(FORMULA_KEY):
            graded = next((c for c in reversed(cells) if c.cell_type == "code"
                           and utils.is_grade(c)), None)
            if graded is not None:
                graded.outputs.extend(cell.outputs)
            continue
        cells.append(cell)
    nb.cells = cells
    return nb


class FormulaChecks(NbGraderPreprocessor):
    """Before CarryAnswers and GuardedExecute: the formula cells of a stage 2 notebook."""

    def preprocess(self, nb, resources):
        return add_formula_cells(nb, resources["nbgrader"]["notebook"]), resources
