"""python -m grader index: EXERCISES.md, every graded answer of the course in one table per stage.

For each test cell: the answer cell it grades, its points, what the grader compares, the
hidden inputs, and where to look: the solution cell, the rule's code (grader/rules/) and the
tests that name it. Built from the solutions and the rules' source alone (nothing runs), so
`--check` (part of the tests) keeps the file current.
"""
import inspect
import re
from pathlib import Path

import nbformat

from . import config
from .policy import HIDDEN_TESTS
from .rules import stage2

INDEX = config.REPO / "EXERCISES.md"
# a hidden test that calls its rule: `from grader.rules import stage4 as _rules` then
# `_rules.check_bessel(globals())`
RULE_CALL = re.compile(r"from grader\.rules import (stage\d) as _rules\n"
                       r"_rules\.(\w+)\(globals\(\)\)")


def _rule(module_name, function):
    """(path relative to the repository, first line, docstring, source) of a rule function."""
    import importlib
    module = importlib.import_module(f"grader.rules.{module_name}")
    fn = getattr(module, function)
    lines, first = inspect.getsourcelines(fn)
    path = Path(inspect.getsourcefile(fn)).resolve().relative_to(config.REPO)
    return path, first, inspect.getdoc(fn) or "", "".join(lines)


def _compared(code, answer_id):
    """What a hidden test written in the notebook compares (stages 1 and 2), read off its code;
    a rule in grader/rules/ says it in its docstring instead."""
    what = "direction (scaled to length 1)" if "direction(" in code else "raw values"
    if "carry=True" in code:
        what += ", carried to later cells"
    if answer_id in stage2.UPSTREAM:
        what += "; again as a formula, with random upstream gradients (same forward tensors)"
    return what


def _inputs(code):
    """The seeds of the hidden inputs (SEED + k) or the lecture's batch."""
    seeds = sorted({int(k) for k in re.findall(r"(?:SEED \+ |seeded\(|_cases\()(\d+)", code)})
    return f"drawn from SEED + {', '.join(map(str, seeds))}" if seeds else "the lecture's batch"


def _tests_naming(names):
    found = []
    for path in sorted((config.REPO / "tests").glob("*.py")):
        if path.name == "test_index.py":   # this index's own test names examples only
            continue
        text = path.read_text()
        if any(re.search(rf"\b{re.escape(n)}\b", text) for n in names):
            found.append(path.relative_to(config.REPO))
    return found


def exercises(solutions: Path = config.SOLUTIONS) -> list[dict]:
    """One row per test cell of the solutions, in course order."""
    rows = []
    for path in sorted(solutions.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        answer, answer_at = None, None
        for index, cell in enumerate(nb.cells):
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") and not meta.get("grade"):
                answer, answer_at = meta.get("grade_id"), index
            if not meta.get("grade"):
                continue
            check = meta["grade_id"]
            hidden = "".join(HIDDEN_TESTS.findall(cell.source))
            row = {"notebook": path.stem, "check": check, "points": meta.get("points", 0),
                   "answer": answer if not meta.get("solution") else check,
                   "answer_cell": answer_at if not meta.get("solution") else index,
                   "solution": path.relative_to(config.REPO), "rule": None}
            if meta.get("solution"):   # graded by hand
                row.update(compared="written answer, graded by hand", inputs="")
            elif call := RULE_CALL.search(hidden):
                rule_path, line, doc, code = _rule(*call.groups())
                row.update(rule=f"{rule_path}#L{line}", compared=" ".join(doc.split()),
                           inputs=_inputs(code))
            else:
                if row["answer"] in stage2.UPSTREAM:
                    rule_path = Path(inspect.getsourcefile(stage2)).resolve()
                    row["rule"] = str(rule_path.relative_to(config.REPO))
                row.update(compared=_compared(hidden, row["answer"]), inputs=_inputs(hidden))
            row["tests"] = _tests_naming([check, row["answer"]])
            rows.append(row)
    return rows


def render(rows: list[dict]) -> str:
    """EXERCISES.md's text."""
    out = ["# Exercises", "",
           "Every graded answer of the course: the answer cell, the test cell that grades it, its",
           "points, what the grader compares (outside the student's kernel) and on which hidden",
           "inputs, and where its rule and tests live. Written by `python -m grader index`;",
           "`python -m grader index --check` (part of the tests) fails when it is stale.", ""]
    for notebook in dict.fromkeys(r["notebook"] for r in rows):
        mine = [r for r in rows if r["notebook"] == notebook]
        total = sum(r["points"] for r in mine)
        out += [f"## {notebook} ({total:g} points)", "",
                "| answer | check | points | compared | hidden inputs | rule | tests |",
                "|---|---|---|---|---|---|---|"]
        for r in mine:
            answer = f"[`{r['answer']}`]({r['solution']}) (cell {r['answer_cell']})"
            rule = f"[{Path(r['rule'].split('#')[0]).name}]({r['rule']})" if r["rule"] else \
                "hidden test in the solution cell"
            tests = ", ".join(f"[{Path(t).stem}]({t})" for t in r["tests"]) or "—"
            out.append(f"| {answer} | `{r['check']}` | {r['points']:g} | {r['compared']} | "
                       f"{r['inputs']} | {rule} | {tests} |")
        out.append("")
    return "\n".join(out)


def write_index(check: bool = False) -> bool:
    """Write EXERCISES.md; with check, change nothing and return whether it is current."""
    text = render(exercises())
    if check:
        return INDEX.exists() and INDEX.read_text() == text
    INDEX.write_text(text)
    return True


