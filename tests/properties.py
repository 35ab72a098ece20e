"""Run a notebook's hidden tests in this process, to see which graded cells a function passes.

A quick stand-in for autograding, for notebooks whose hidden tests call a student's function on
inputs of their own (stages 3 and 4): it runs the code cells before the first graded cell (with
the answer cells replaced as asked), then the hidden part of every graded cell, collecting what
each reports. Comparing with the solution's reports uses the grader's own `compare`. The
crafted submissions (cases_stage*.py) check the same through nbgrader, for fewer variants.
"""
import contextlib
from unittest import mock

import nbformat
import torch

from grader import config
from makemore.checks import compare
from grader.policy import HIDDEN_TESTS as HIDDEN
from grader.rules import stage3, stage4, stage5

RULES = (stage3, stage4, stage5)   # their hidden tests call these modules' `report`


def _cells(notebook):
    return nbformat.read(str(config.SOLUTIONS / f"{notebook}.ipynb"), as_version=4).cells


def _meta(cell):
    return cell.metadata.get("nbgrader", {})


def reports(notebook, answers=None):
    """{graded cell id: {name: value}} that the hidden tests report for these answers.

    answers: {answer cell id: source} replacing the solution's code of those cells. A hidden
    block that raises stops there, as in a notebook; its cell lacks the reports after that point.
    """
    answers = answers or {}
    namespace = {}
    results = {}

    def report(name, value, carry=False):
        if isinstance(value, torch.Tensor):
            value = value.detach().clone()
        results[list(results)[-1]].setdefault(name, value)   # the graded cell running now

    with contextlib.ExitStack() as patches:
        for rules in RULES:
            patches.enter_context(mock.patch.object(rules, "report", report))
        _run_cells(notebook, answers, namespace, results, report)
    return results


def _run_cells(notebook, answers, namespace, results, report):
    graded = False
    for cell in _cells(notebook):
        if cell.cell_type != "code":
            continue
        meta = _meta(cell)
        if meta.get("grade") and not meta.get("solution"):
            graded = True
            current = meta["grade_id"]
            results[current] = {}
            namespace["report"] = report   # the notebook's own name, for stages 1 and 2
            try:
                exec(compile(HIDDEN.search(cell.source).group(1), current, "exec"), namespace)
            except Exception as e:   # noqa: BLE001 - a failing answer is an outcome here
                results[current]["<error>"] = f"{type(e).__name__}: {e}"
        elif not graded:
            source = answers.get(meta.get("grade_id"), cell.source)
            exec(compile(source, meta.get("grade_id", "cell"), "exec"), namespace)


def lost_cells(reference, answer):
    """Graded cells whose reports do not all match the reference, with the first problem."""
    lost = {}
    for cell, expected in reference.items():
        for name, value in expected.items():
            if name not in answer[cell]:
                lost[cell] = f"{name}: missing ({answer[cell].get('<error>', 'not reported')})"
                break
            verdict = compare(answer[cell][name], value)
            if not verdict.passed:
                lost[cell] = f"{name}: {verdict.problem}"
                break
    return lost
