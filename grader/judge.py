"""nbgrader preprocessors that judge answers outside the student's kernel.

In a graded cell, `report(name, value)` hands an answer to the grader as display data. The
grader runs the solution notebook the same way to get the reference answers, and
`JudgeAnswers` compares the two here, in the grading process, where nothing the student's
code does can change the verdict. The cell then passes or fails by its outputs, as nbgrader
scores it. `CarryAnswers` gives later cells the reference value of an answer marked carry=True,
so one mistake costs one answer. `GuardedExecute` starts each kernel through grader.guard.
"""
import json
import os
import tempfile
from unittest import mock

import nbformat
from nbformat.v4 import new_code_cell, new_output
from nbgrader import utils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool, Dict

from . import GradingError
from .checks import ANSWER_MIME, compare, decode
from .guard import GUARD_ENV, START

CARRY_KEY = "makemore_carry"


class GuardedExecute(Execute):
    """nbgrader's Execute, with each kernel started through grader.guard.start()."""

    block_autograd = Bool(None, allow_none=True,
                          help="Switch autograd off in the kernel; None: as the notebook's "
                               "metadata makemore.block_autograd says").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        block = self.block_autograd
        if block is None:
            block = bool(nb.metadata.get("makemore", {}).get("block_autograd"))
        args = [f"--IPKernelApp.exec_lines={START}", "--IPKernelApp.log_level=ERROR"]
        self.extra_arguments += [a for a in args if a not in self.extra_arguments]
        with mock.patch.dict(os.environ, {GUARD_ENV: json.dumps({"block_autograd": block})}):
            return super().preprocess(nb, resources, km)


class ReferenceAnswers(NbGraderPreprocessor):
    """Holds the reference answers: {notebook: {grade_id: [answer record, ...]}}."""
    references = Dict().tag(config=True)

    def expected(self, resources):
        return self.references.get(resources["nbgrader"]["notebook"], {})


def _grade_id(cell):
    return cell.metadata.nbgrader["grade_id"] if utils.is_grade(cell) else None


class CarryAnswers(ReferenceAnswers):
    """After each graded cell, a cell setting its carried answers to their reference values."""

    def preprocess(self, nb, resources):
        expected = self.expected(resources)
        cells = []
        for cell in nb.cells:
            cells.append(cell)
            carried = [r for r in expected.get(_grade_id(cell), []) if r.get("carry")]
            if carried:
                source = "\n".join(
                    f"{r['name']} = __import__('grader.checks').checks.decode({dict(r)!r})"
                    for r in carried if r["name"].isidentifier())
                cells.append(new_code_cell(source, metadata={CARRY_KEY: True}))
        nb.cells = cells
        return nb, resources


class JudgeAnswers(ReferenceAnswers):
    """Judge every graded cell's reported answers against the reference answers."""

    def preprocess(self, nb, resources):
        expected = self.expected(resources)
        nb.cells = [c for c in nb.cells if not c.metadata.get(CARRY_KEY)]
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            reported = [o["data"][ANSWER_MIME] for o in cell.outputs
                        if ANSWER_MIME in o.get("data", {})]
            cell.outputs = [o for o in cell.outputs if ANSWER_MIME not in o.get("data", {})]
            if _grade_id(cell) in expected:
                judge_cell(cell, expected[_grade_id(cell)], reported)
            if _grade_id(cell):   # a traceback would quote the hidden test code
                for o in cell.outputs:
                    if o.output_type == "error":
                        o.traceback = [f"{o.ename}: {o.evalue}"]
        return nb, resources


def judge_cell(cell, expected, reported):
    """Append the verdict to a graded cell's outputs: pass, or an error saying what is wrong."""
    answers = {}
    for record in reported:
        if isinstance(record, dict):
            answers.setdefault(record.get("name"), record)
    lines, problems = [], []
    for reference in expected:
        name = reference["name"]
        if name not in answers:
            problems.append(f"{name}: no answer reached the grader (the cell stopped before it)")
            continue
        try:
            verdict = compare(decode(answers[name]), decode(reference))
        except Exception as e:   # a malformed record is a wrong answer, never a crash
            problems.append(f"{name}: unreadable answer ({e})")
            continue
        lines.append(verdict.line(name))
        if not verdict.passed:
            problems.append(f"{name}: {verdict.problem}")
    if not problems:   # warnings or errors elsewhere in the cell do not undo a right answer
        cell.outputs = [o for o in cell.outputs if o.output_type != "error"
                        and not (o.output_type == "stream" and o.name == "stderr")]
    if lines:
        text = "\n".join(lines) + "\n(compared with the reference solution)\n"
        cell.outputs.append(new_output("stream", name="stdout", text=text))
    if problems:
        cell.outputs.append(new_output("error", ename="WrongAnswer", evalue="; ".join(problems),
                                       traceback=["WrongAnswer: " + p for p in problems]))


def reference_answers(path, cfg):
    """{grade_id: [answer records]} from running the solution notebook at path as nbgrader would."""
    nb = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    with tempfile.TemporaryDirectory() as work, \
            mock.patch.dict(os.environ, {"NBGRADER_EXECUTION": "autograde"}):
        run = GuardedExecute(config=cfg, block_autograd=False)
        run.preprocess(nb, {"metadata": {"path": work}})
    answers = {}
    for cell in nb.cells:
        gid = _grade_id(cell) if cell.cell_type == "code" else None
        if gid is None:
            continue
        failed = [o for o in cell.outputs if o.output_type == "error"]
        if failed:
            raise GradingError(f"{path.name}: the solution fails its own test {gid}: "
                               f"{failed[0].ename}: {failed[0].evalue}")
        records = [o["data"][ANSWER_MIME] for o in cell.outputs if ANSWER_MIME in o.get("data", {})]
        if records:
            answers[gid] = records
    return answers
