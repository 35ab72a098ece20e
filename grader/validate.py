"""Validate's dialog opens with how many checks pass and how many fail.

nbgrader's Validate dialog lists each failing cell but never says how many there are, or how
many pass, and its Validator has no setting to add a step. `count_checks_in_validate` (which
the repository's nbgrader_config.py calls, so JupyterLab started with `make lab` has it)
appends CountChecks to the Validator's steps: after the notebook has run, it counts the checks
(test cells) and puts one line in front of the first failing one, the first thing the
dialog shows.
"""
from nbformat import NotebookNode
from nbformat.v4 import new_output
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.validator import Validator


def is_check(cell: NotebookNode) -> bool:
    """A test cell: graded code that is not the student's to write."""
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


def fails(cell: NotebookNode, log=None) -> bool:
    """A check that earns less than its points, as nbgrader's Validator scores it (an error
    or stderr output scores 0)."""
    score, points = utils.determine_grade(cell, log)
    return score < points


def count_line(passed: int, failed: int) -> str:
    """E.g. '3 of 26 checks fail (listed below), 23 pass'."""
    checks = passed + failed
    verb = "fails" if failed == 1 else "fail"
    return (f"{failed} of {checks} check{'' if checks == 1 else 's'} {verb} (listed below), "
            f"{passed} pass{'es' if passed == 1 else ''}\n")


class CountChecks(NbGraderPreprocessor):
    """After Execute: the count line, on the first failing check (if any fails)."""

    def preprocess(self, nb, resources):
        checks = [c for c in nb.cells if is_check(c)]
        failed = [c for c in checks if fails(c, self.log)]
        if failed:
            line = count_line(len(checks) - len(failed), len(failed))
            failed[0].outputs.insert(0, new_output("stream", name="stderr", text=line))
        return nb, resources


def count_checks_in_validate() -> None:
    """Make every Validator of this process run CountChecks after its own steps (once)."""
    steps = Validator.class_traits()["preprocessors"]
    nbgrader_steps = [s for s in steps.default_args[0] if s is not CountChecks]
    steps.default_args = ([*nbgrader_steps, CountChecks],)
