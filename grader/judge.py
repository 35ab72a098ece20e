"""nbgrader preprocessors that run and judge a submission outside the student's reach.

In a graded cell, `report(name, value)` hands an answer to the grader as display data. The
grader runs the solution notebook the same way to get the reference answers, and
`JudgeAnswers` compares the two here, in the grading process, where nothing the student's
code does can change the verdict. The cell then passes or fails by its outputs, as nbgrader
scores it. `CarryAnswers` gives later cells the reference value of an answer marked carry=True,
so one mistake costs one answer. `GuardedExecute` runs each notebook in a sandboxed kernel
(grader.guard) and survives its death; `RestoreLayout` puts a submission's cells back in the
course's order. What happened to a notebook on the way (a timeout, a dead kernel, moved or
edited cells) is logged and noted in the notebook's GradingNotes
(grader.preprocessors.events) for the summary's reason column.
"""
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from unittest import mock

import nbformat
from nbformat.v4 import new_code_cell, new_output
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict

from . import GradingError, config, policy
from makemore import checks
from makemore.checks import ANSWER_MIME, compare, decode
from .preprocessors.enforce_policy import FAILED_KEY, REFUSED_KEY
from .preprocessors.events import record as note
from .preprocessors.execute import GRADER_CELL_KEY, NOT_RUN_KEY, QUIET_KEY, GuardedExecute
from .preprocessors.formula_checks import add_formula_cells, fold_formula_cells

CARRY_KEY = "makemore_carry"


class RestoreLayout(NbGraderPreprocessor):
    """Before nbgrader's OverwriteCells: the submission's cells in the course's order.

    Cells are matched with the release by grade id; moved cells go back to their place (cells
    the student added travel with the cell before them), deleted locked cells are restored,
    a deleted answer cell comes back as the release's unanswered stub, and edited locked
    cells are noted (OverwriteCells restores their source)."""

    def preprocess(self, nb, resources):
        nbg = resources["nbgrader"]
        release = Path(self.config.CourseDirectory.root or ".") / "release" / nbg["assignment"] \
            / f"{nbg['notebook']}.ipynb"
        if not release.exists():
            return nb, resources
        course = nbformat.read(str(release), as_version=4)
        order = [_any_id(c) for c in course.cells]
        known = {gid: c for gid, c in zip(order, course.cells, strict=True) if gid}
        groups, current, seen = {None: []}, None, []
        for cell in nb.cells:
            gid = _any_id(cell)
            if gid in known and gid not in groups:
                current = gid
                groups[gid] = [cell]
                seen.append(gid)
            else:
                groups[current].append(cell)
        cells, restored, stubs, edited = list(groups[None]), [], [], []
        for gid in (g for g in order if g):
            if gid in groups:
                mine, theirs = groups[gid][0], known[gid]
                if utils.is_locked(theirs) and mine.source != theirs.source:
                    edited.append(gid)
                cells += groups[gid]
            else:
                cells.append(nbformat.from_dict(json.loads(json.dumps(known[gid]))))
                (restored if utils.is_locked(known[gid]) else stubs).append(gid)
        if seen != [g for g in order if g in groups]:
            note(resources, "cells were moved: graded in the course's order", self.log)
        for what, ids in [("deleted cells restored", restored),
                          ("answer cells deleted (graded as unanswered)", stubs),
                          ("locked cells edited (the course's version was run)", edited)]:
            if ids:
                note(resources, f"{what}: {', '.join(ids)}", self.log)
        nb.cells = cells
        return nb, resources


def _any_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


class ReferenceAnswers(NbGraderPreprocessor):
    """Holds the reference answers: {notebook: {grade_id: [answer record, ...]}}.

    Not given (as under plain `nbgrader autograde` in the course folder), they are read from
    the course's reference cache, or computed by running the source notebook and cached."""
    references = Dict().tag(config=True)

    def expected(self, resources):
        nbg = resources["nbgrader"]
        if nbg["notebook"] not in self.references:
            source = Path(self.config.CourseDirectory.root or ".") / "source" / nbg["assignment"] \
                / f"{nbg['notebook']}.ipynb"
            self.references[nbg["notebook"]] = cached_reference_answers(source, self.config)
        return self.references[nbg["notebook"]]


def _grade_id(cell):
    return cell.metadata.nbgrader["grade_id"] if utils.is_grade(cell) else None


class CarryAnswers(ReferenceAnswers):
    """After each graded cell, a cell setting its carried answers to their reference values."""

    def preprocess(self, nb, resources):
        expected = self.expected(resources)
        cells = []
        for cell in nb.cells:
            cells.append(cell)
            if cell.cell_type == "code" and "### BEGIN HIDDEN TESTS" in cell.source:
                cell.metadata[QUIET_KEY] = True   # kept out of the history the student reads
            carried = [r for r in expected.get(_grade_id(cell), []) if r.get("carry")]
            if carried:
                source = "\n".join(
                    f"{r['name']} = __import__('makemore.checks').checks.decode({dict(r)!r})"
                    for r in carried if r["name"].isidentifier())
                cells.append(new_code_cell(source, metadata={CARRY_KEY: True, QUIET_KEY: True,
                                                               GRADER_CELL_KEY: True}))
        nb.cells = cells
        return nb, resources


class JudgeAnswers(ReferenceAnswers):
    """Judge every graded cell's reported answers against the reference answers.

    Only this judgement decides a graded cell: a cell's value is never read as partial credit
    (an execute_result becomes plain display data), and a graded cell that did not run fails."""

    def preprocess(self, nb, resources):
        expected = self.expected(resources)
        nb = fold_formula_cells(nb)
        nb.cells = [c for c in nb.cells if not c.metadata.get(CARRY_KEY)]
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.metadata.pop(QUIET_KEY, None)
            cell.metadata.pop(REFUSED_KEY, None)
            not_run = cell.metadata.pop(NOT_RUN_KEY, None)
            reported = [o["data"][ANSWER_MIME] for o in cell.outputs
                        if ANSWER_MIME in o.get("data", {})]
            cell.outputs = [o for o in cell.outputs if ANSWER_MIME not in o.get("data", {})]
            if not _grade_id(cell):
                continue
            for o in cell.outputs:
                if o.output_type == "execute_result":
                    o.output_type = "display_data"
                    o.pop("execution_count", None)
            refused = cell.metadata.pop(FAILED_KEY, None)
            if not_run:
                cell.outputs.append(new_output("error", ename="NotRun", evalue=not_run,
                                               traceback=[f"NotRun: not run because {not_run}"]))
            elif refused:   # the answer it tests was not run: its reported values do not count
                cell.outputs = [o for o in cell.outputs if o.output_type != "error"]
                cell.outputs.append(new_output("error", ename="CodePolicy", evalue=refused,
                                               traceback=[f"CodePolicy: {refused}"]))
            elif _grade_id(cell) in expected:
                judge_cell(cell, expected[_grade_id(cell)], reported)
            for o in cell.outputs:   # a traceback would quote the hidden test code
                if o.output_type == "error":
                    o.traceback = [f"{o.ename}: {o.evalue}"]
        hide_hidden_tests(nb)
        return nb, resources


def hide_hidden_tests(nb):
    """Outputs that quote hidden test code (a student's code can print the cells it runs,
    e.g. `print(In)`) are replaced by a note, so the feedback never shows it (nbgrader #917)."""
    lines = {line.strip() for cell in nb.cells if cell.cell_type == "code"
             for block in policy.HIDDEN_TESTS.findall(cell.source) for line in block.splitlines()
             if len(line.strip()) >= 8 and not line.strip().startswith("#")}
    lines.add("### BEGIN HIDDEN TESTS")
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for i, o in enumerate(cell.outputs):
            text = json.dumps(o)
            if not any(line in text or json.dumps(line)[1:-1] in text for line in lines):
                continue
            note = "[output hidden by the grader: it quotes the hidden tests]"
            if o.output_type == "error":   # still an error: hiding never turns a cell green
                cell.outputs[i] = new_output("error", ename=o.ename, evalue=note,
                                             traceback=[f"{o.ename}: {note}"])
            else:
                cell.outputs[i] = new_output("stream", name="stdout", text=note + "\n")


def judge_cell(cell, expected, reported):
    """Append the verdict to a graded cell's outputs: pass, or an error saying what is wrong."""
    answers, repeated = {}, set()
    for record in reported:
        if isinstance(record, dict):
            name = record.get("name")
            if name in answers and answers[name] != record:
                repeated.add(name)
            answers.setdefault(name, record)
    lines, problems = [], []
    for reference in expected:
        name = reference["name"]
        if name in repeated:
            problems.append(f"{name}: reported more than once with different values "
                            "(only the test's own report counts)")
            continue
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
        nb = add_formula_cells(nb, Path(path).stem)
        run = GuardedExecute(config=cfg, block_autograd=False)
        run.preprocess(nb, {"metadata": {"path": work}})
        nb = fold_formula_cells(nb)
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


REFERENCE_CACHE = ".references"   # in the course folder, out of the kernels' reach


def reference_key(path):
    """What the reference answers of a solution notebook depend on, hashed."""
    import torch
    h = hashlib.sha256()
    here = Path(__file__).parent
    code = [Path(checks.__file__), here / "preprocessors" / "formula_checks.py",
            *sorted((here / "rules").glob("*.py"))]
    for part in [Path(path).read_bytes(), torch.__version__.encode(),
                 config.names_path().read_bytes(), *(c.read_bytes() for c in code)]:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:24]


def reference_cache(root):
    """The folder of cached reference answers of the course at root (see config)."""
    return Path(os.environ.get(config.REFERENCE_CACHE_ENV) or Path(root) / REFERENCE_CACHE)


def cached_reference_answers(path, cfg):
    """reference_answers(path), kept in the reference cache keyed by reference_key(path).

    Processes asking at once (parallel graders, two instructors) compute it once: the first
    holds a lock on the entry while it runs the solution, the others wait and read."""
    path = Path(path)
    root = Path(cfg.CourseDirectory.root or path.parents[2])
    cache = reference_cache(root) / f"{path.stem}-{reference_key(path)}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.exists():
            return json.loads(cache.read_text())
        answers = reference_answers(path, cfg)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(answers, sort_keys=True))
        os.replace(tmp, cache)
    return answers
