"""EnforcePolicy: every cell the student wrote is checked against the code policy before it runs.

A student cell (an answer cell, or a cell the student added, which stands under the policy of
the answer before it) that breaks its policy (grader.policy) is not run: it shows why, and
the tests from it up to the next answer cell fail with the same reason. Course cells (locked
in the course's copy) are the course's own and are not checked.
"""
from nbformat.v4 import new_output
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor

from .. import policy
from .events import label, record
from .restore_metadata import course_notebook, grade_id

REFUSED_KEY = "makemore_refused"       # cell metadata: the violation that kept it from running
FAILED_KEY = "makemore_policy_failed"  # grade cell metadata: fails for this reason


def is_course_cell(cell):
    """True for cells the course wrote (locked, or tests): their source is the course's."""
    return bool(grade_id(cell)) and (utils.is_locked(cell) or
                                     (utils.is_grade(cell) and not utils.is_solution(cell)))


def refusal_output(text):
    return new_output("error", ename="CodePolicy", evalue=text,
                      traceback=[f"CodePolicy: not run: {text}"])


class EnforcePolicy(NbGraderPreprocessor):
    """Check student cells with grader.policy; mark refused cells and the tests they cost."""

    def preprocess(self, nb, resources):
        source = course_notebook(self.config, resources, "source") or nb
        course = [c.source for c in source.cells if c.cell_type == "code" and is_course_cell(c)]
        course_imports = policy.course_imports_of(course)
        course_autograd = policy.course_autograd_of(course)
        course_definitions = policy.course_definitions_of(course)
        default, answers = policy.policies_of(resources["nbgrader"]["notebook"])
        current, failing, modules = default, None, set()
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if utils.is_solution(cell) and grade_id(cell):
                current, failing = answers.get(grade_id(cell), default), None
            before, modules = frozenset(modules), modules | policy.modules_bound_in(cell.source,
                                                                                    modules)
            if is_course_cell(cell):
                if failing and utils.is_grade(cell):
                    cell.metadata[FAILED_KEY] = failing
                continue
            violations = policy.check_source(cell.source, current, course_imports,
                                             course_autograd, before, course_definitions)
            if violations:
                text = (f"{label(cell, index)} breaks the code policy ({current.name}): "
                        f"{policy.describe(violations)}")
                cell.metadata[REFUSED_KEY] = text
                failing = text
                record(resources, text, self.log)
        return nb, resources
