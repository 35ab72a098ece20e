"""OUT/similarity.csv and the report's similarity section: pairs of students whose own code is
alike far beyond the class's usual, flagged for the instructor to read. Never a score change.

Only code a student wrote counts: their answer cells (found by grade id in the course's release,
as grading finds them: grader.preprocessors.restore_metadata) and the code cells they added.
Each such cell is parsed with `ast` and read as a sequence of tokens (node types, attribute and
keyword names, constants), with docstrings, comments, layout and strings dropped, and with every
name the student chose (a function's arguments and locals, any name the release never uses)
written as `v`, so renaming variables or rewording comments changes nothing (a written answer,
in markdown, is read as its words; a line that is not Python, as words too). A fragment is a run
of FRAGMENT tokens; fragments that also occur anywhere in the release (locked cells, the answer
stubs, `raise NotImplementedError`) are dropped, so the release submitted unchanged has none.

For each notebook and each pair of students:

* similarity: the share of the smaller of the two's fragments that the other has too;
* rare_shared: their shared fragments, each counted 1/(k - 1) when k students of the class have
  it: a fragment only these two wrote counts 1, one that ten students wrote counts 1/9, so the
  same correct one-liners many students write weigh almost nothing;
* flagged when rare_shared is at least MIN_RARE_SHARED (about five lines of code that nobody
  else in the class wrote) and OUTLIER robust standard deviations (1.4826 median absolute
  deviations) above the notebook's median pair (strictly: where every pair is alike, none stands
  out), in a notebook of MIN_CLASS students or more.

Cost: reading and tokenising are linear in the class's code (each distinct cell is read once);
pairs are quadratic: one matrix product per notebook over the fragments that two or more
students share (N x N x shared, in blocks of BLOCK columns), and one CSV row per pair, written
as it is made. Measured in CPU time on a synthetic class, every notebook answered by every
student: 300 students (224,250 rows, 14 MB) in about 5 s (reading 1.3, tokens 1.0, pairs 1.1,
the CSV about 1) and 60 MB of memory; 1,000 students (2.5 million rows, 160 MB) in about 30 s
and 250 MB, most of it the pairs and the CSV.
"""
import ast
import builtins
import csv
import html
import json
import keyword
import re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
from traitlets.config import Config

from . import config
from .preprocessors.restore_metadata import course_notebook, grade_id

FRAGMENT = 6             # tokens per fragment
MIN_RARE_SHARED = 40.0   # never flagged below: about 5 lines nobody else wrote (6-8 per line)
OUTLIER = 4.0            # robust standard deviations above the notebook's median pair
MIN_CLASS = 5            # students of a notebook below which no pair is typical: no flags
MAX_REPAIRS = 20         # lines of a cell left out to read the rest as Python
MAX_CELL = 100_000       # characters of a cell read (a huge cell cannot stall the report)
BLOCK = 4096             # fragment columns per matrix product (memory: N x BLOCK floats)
FIELDS = ["notebook", "student_a", "student_b", "similarity", "shared", "rare_shared",
          "own_a", "own_b", "typical", "flagged"]
STATEMENT = ("These flags only point at pairs worth reading side by side: they never change a "
             "score, and the instructor decides.")
_BUILTINS = frozenset(dir(builtins))
# an IPython magic and its options (`%timeit -n1 -r 2 `), or a shell command, at a line's start
_MAGIC = re.compile(r"^([ \t]*)(?:%%?\w+(?:[ \t]+-\w+(?:[ \t]+\d+\b)?)*[ \t]*|!.*)", re.M)
_WORD = re.compile(r"[^\W\d]\w*|\d[\w.]*|\S")


def course_names(release: nbformat.NotebookNode) -> frozenset[str]:
    """Every name the release's code uses: kept as written in a student's code."""
    names = set()
    for cell in release.cells:
        tree = _parse(cell.source)[0] if cell.cell_type == "code" else None
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[0])
    return frozenset(names)


def _parse(source):
    """(tree, lines left out) of a cell: its magics made Python (`%time x`: x), each line that
    still is not Python left out (up to MAX_REPAIRS); (None, every line) if that fails."""
    lines, dropped = source.splitlines(), []
    for attempt in range(MAX_REPAIRS):
        try:
            return ast.parse("\n".join(lines)), dropped
        except SyntaxError as e:
            if attempt == 0:
                lines = _MAGIC.sub(r"\1", source).splitlines()
                continue
            at = (e.lineno or 0) - 1
            if not 0 <= at < len(lines) or lines[at].strip() in ("", "pass"):
                break
            dropped.append(lines[at])   # a misplaced line goes; another is a statement still
            indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
            lines[at] = "" if isinstance(e, IndentationError) else indent + "pass"
        except (ValueError, RecursionError, MemoryError):   # a null byte, nested too deep
            break
    return None, source.splitlines()


def _bound(fn):
    """Names local to a function or lambda: its arguments and what its body assigns."""
    found = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.arg) or (isinstance(node, ast.Name)
                                         and isinstance(node.ctx, ast.Store)):
            found.add(getattr(node, "arg", None) or getattr(node, "id", None))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and node is not fn:
            found.add(node.name)
    return found


def _name(name, names, local):
    """A name as written if the course or Python gives it (and it is not a local), else v."""
    return name if name not in local and (name in names or name in _BUILTINS) else "v"


def _walk(tree, names):
    """The tokens of an ast tree, in source order (pre-order)."""
    tokens, stack = [], [(tree, frozenset())]
    while stack:
        node, local = stack.pop()
        if isinstance(node, (ast.expr_context, ast.Pass)) or (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):   # docstrings and bare strings
            continue
        if isinstance(node, ast.Name):   # a leaf: its name alone
            tokens.append(_name(node.id, names, local))
        elif isinstance(node, ast.Constant):
            tokens.append("S" if isinstance(node.value, (str, bytes)) else repr(node.value))
        elif isinstance(node, ast.arg):
            tokens.append("arg")
        elif isinstance(node, ast.Attribute):
            tokens.append("." + node.attr)
        elif isinstance(node, ast.keyword):
            tokens.append(f"{node.arg}=")
        else:
            tokens.append(type(node).__name__)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            tokens.append(_name(node.name, names, local))
        elif isinstance(node, ast.alias):
            tokens += [node.name, _name(node.asname, names, local)] if node.asname \
                else [node.name]
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            tokens += [_name(n, names, local) for n in node.names]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            local = local | _bound(node)
        stack += [(child, local) for child in reversed(list(ast.iter_child_nodes(node)))]
    return tokens


def code_tokens(source: str, names: frozenset[str]) -> list[str]:
    """A code cell's tokens, names the student chose as `v`; what is not Python, as words."""
    tree, dropped = _parse(source[:MAX_CELL])
    tokens = _walk(tree, names) if tree else []
    words = _WORD.findall("\n".join(line.split("#", 1)[0] for line in dropped))
    return tokens + [w if not (w[0].isalpha() or w[0] == "_") or keyword.iskeyword(w)
                     or w in names or w in _BUILTINS else "v" for w in words]


def _fragments(cell_type, source, names):
    """The set of runs of FRAGMENT tokens of a cell (a written answer: of its words)."""
    tokens = code_tokens(source, names) if cell_type == "code" else \
        re.findall(r"\w+", source[:MAX_CELL].lower())
    if not tokens:
        return set()
    return {tuple(tokens[i:i + FRAGMENT]) for i in range(max(1, len(tokens) - FRAGMENT + 1))}


def own_cells(nb: nbformat.NotebookNode, release: nbformat.NotebookNode) -> list[tuple]:
    """(cell type, source) of the cells a student wrote: answer cells, matched with the
    release by grade id, and added code cells. Cells that are the course's are left out."""
    course = {grade_id(c): c for c in release.cells if grade_id(c)}
    seen, cells = set(), []
    for cell in nb.cells:
        gid = grade_id(cell)
        theirs = course.get(gid) if gid not in seen else None   # a duplicate id: an added cell
        seen.add(gid)
        if theirs is not None:
            if theirs.metadata["nbgrader"].get("solution"):
                cells.append((theirs.cell_type, cell.source))
        elif cell.cell_type == "code":
            cells.append(("code", cell.source))
    return cells


def own_fragments(nb: nbformat.NotebookNode, release: nbformat.NotebookNode,
                  names: frozenset[str] | None = None, base: set | None = None,
                  cache: dict | None = None) -> set:
    """The fragments of a student's own code that are not in the release (cache: the
    fragments of each cell already read, shared by the students of one notebook)."""
    names = course_names(release) if names is None else names
    base = release_fragments(release, names) if base is None else base
    cache = {} if cache is None else cache
    found = set()
    for cell in own_cells(nb, release):
        if cell not in cache:
            cache[cell] = _fragments(*cell, names)
        found |= cache[cell]
    return found - base


def release_fragments(release: nbformat.NotebookNode, names: frozenset[str]) -> set:
    """Every fragment of the release: code cells and markdown alike."""
    found = set()
    for cell in release.cells:
        if cell.cell_type in ("code", "markdown"):
            found |= _fragments(cell.cell_type, cell.source, names)
    return found


def compare(submissions: dict, release: nbformat.NotebookNode, notebook: str = "") -> list[dict]:
    """Rows of similarity.csv for one notebook: {student: notebook node} against each other,
    flagged pairs first, then by rare_shared, largest first."""
    return list(_rows(submissions, release, notebook))


def _rows(submissions, release, notebook):
    """compare's rows, made one at a time (N students make N(N - 1)/2 of them)."""
    names = course_names(release)
    base = release_fragments(release, names)
    students = sorted(submissions)
    cache = {}   # many students write the same cells: each is read once
    own = [own_fragments(submissions[s], release, names, base, cache) for s in students]
    n = len(students)
    holders = {}
    for i, fragments in enumerate(own):
        for f in fragments:
            holders.setdefault(f, []).append(i)
    # in an order of their own (not the sets' hash order), so sums are the same on every run
    shared_by = sorted(h for h in holders.values() if len(h) > 1)
    shared, rare = np.zeros((n, n)), np.zeros((n, n))
    for start in range(0, len(shared_by), BLOCK):
        block = shared_by[start:start + BLOCK]
        x = np.zeros((n, len(block)))
        x[np.concatenate(block), np.repeat(np.arange(len(block)), [len(h) for h in block])] = 1
        shared += x @ x.T
        rare += (x / np.array([len(h) - 1.0 for h in block])) @ x.T
    sizes = np.array([len(f) for f in own], dtype=float)
    a, b = np.triu_indices(n, 1)
    smaller = np.minimum(sizes[a], sizes[b])
    similarity = np.divide(shared[a, b], smaller, out=np.zeros(len(a)), where=smaller > 0)
    values = np.round(rare[a, b], 2)
    typical = float(np.median(values)) if len(a) else 0.0
    spread = 1.4826 * float(np.median(np.abs(values - typical))) if len(a) else 0.0
    flags = (values >= MIN_RARE_SHARED) & (values > typical + OUTLIER * spread) & (n >= MIN_CLASS)
    for k in np.lexsort((b, a, -values, ~flags)):   # the last key sorts first
        i, j = a[k], b[k]
        yield {"notebook": notebook, "student_a": students[i], "student_b": students[j],
               "similarity": round(float(similarity[k]), 3), "shared": int(shared[i, j]),
               "rare_shared": float(values[k]), "own_a": int(sizes[i]), "own_b": int(sizes[j]),
               "typical": round(typical, 2), "flagged": bool(flags[k])}


def _cells(path):
    """A submitted notebook's cells (type, source, metadata), read as nbformat would but
    without its schema validation (grading validated the notebook): several times faster."""
    data = json.loads(Path(path).read_text())
    if data.get("nbformat") != 4:
        return nbformat.read(str(path), as_version=4)
    return SimpleNamespace(cells=[SimpleNamespace(
        cell_type=c["cell_type"], metadata=c.get("metadata") or {},
        source="".join(c["source"]) if isinstance(c["source"], list) else c["source"])
        for c in data["cells"]])


def write_similarity(path: Path, course: Path, results: list, notebooks: list[str]) -> list[dict]:
    """Write OUT/similarity.csv for every student graded into course (OUT/course; results:
    their Results), one row per pair and notebook, read from the release and the submitted
    notebooks there. For the report: per notebook, its pairs, typical and flagged rows."""
    cfg = Config()
    cfg.CourseDirectory.root = str(course)   # all course_notebook reads
    summary = []
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for notebook in notebooks:
            release = course_notebook(cfg, {"nbgrader": {"assignment": config.ASSIGNMENT,
                                                         "notebook": notebook}})
            submissions = {}
            for sid in sorted({r.student for r in results if r.notebook == notebook
                               and r.status not in ("missing", "malformed")}):
                try:
                    submissions[sid] = _cells(Path(course) / "submitted" / sid
                                              / config.ASSIGNMENT / f"{notebook}.ipynb")
                except Exception:   # not submitted, or not a notebook: nothing to compare
                    continue
            if release is None or len(submissions) < 2:
                continue
            mine = {"notebook": notebook, "pairs": 0, "typical": 0.0, "flagged": []}
            for row in _rows(submissions, release, notebook):   # never all in memory
                writer.writerow(row)
                mine["pairs"] += 1
                mine["typical"] = row["typical"]
                if row["flagged"]:
                    mine["flagged"].append(row)
            summary.append(mine)
    return summary


def report_section(summary: list[dict], notebooks: list[str]) -> str:
    """The report's similarity section (HTML) from write_similarity's summary."""
    import pandas as pd
    parts = ["<h2 id='similarity'>Similar submissions</h2>",
             f"<p>{html.escape(STATEMENT)}</p>",
             "<p>Per notebook, each pair of students is compared on the code they wrote "
             "themselves (answer cells and added cells; release code, comments, layout and the "
             "names they chose do not count). <i>similarity</i> is the share of the smaller "
             "one's code the other has too; <i>rare shared</i> counts their common code "
             "fragments, each weighted by how few students of the class wrote it, so the same "
             "correct short answers that many write weigh little. A pair is flagged when its "
             f"rare shared code is at least {MIN_RARE_SHARED:g} fragments and far above the "
             "notebook's typical pair. All pairs are in similarity.csv.</p>"]
    for mine in sorted(summary, key=lambda m: notebooks.index(m["notebook"])):
        few = f" (fewer than {MIN_CLASS} students: no pair is typical, none is flagged)" \
            if mine["pairs"] < MIN_CLASS * (MIN_CLASS - 1) // 2 else ""
        parts.append(f"<h3>{html.escape(mine['notebook'])}</h3><p>{mine['pairs']} pairs; "
                     f"typical rare shared: {mine['typical']:g}; flagged: "
                     f"{len(mine['flagged'])}{few}.</p>")
        if mine["flagged"]:
            table = pd.DataFrame(mine["flagged"])[["student_a", "student_b", "similarity",
                                                   "rare_shared", "own_a", "own_b"]]
            table["similarity"] = [f"{100 * x:.0f}%" for x in table["similarity"]]
            parts.append(table.rename(columns=lambda c: c.replace("_", " "))
                         .to_html(index=False, border=0, classes="similar"))
    return "\n".join(parts)
