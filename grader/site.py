"""The reading version: the solution notebooks as a book, built by Sphinx.

`python -m grader site --out site` runs nothing: it checks that the stored outputs of the
solutions belong to their code (grader/outputs.py), writes a reading copy of each notebook
into a temporary source folder (hidden tests, solution delimiters and student-only
instructions removed, wide figures fit to the page) with an index page, and builds it with
Sphinx, sphinx-book-theme and MyST-NB (configuration, templates and stylesheet: grader/book/).
MathJax comes from jupyter-server-mathjax. Before the site replaces `out`, every file of it is
checked for hidden-test code and for anything that would be fetched from the network.
"""
import base64
import copy
import io
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import GradingError, config
from .outputs import stale_outputs

GENERATOR = "python -m grader site"
BOOK = Path(__file__).parent / "book"          # conf.py and the course's stylesheet
MATHJAX_DIR = "_static/mathjax"                # conf.py's mathjax_path is relative to _static
SOLUTION_DELIMITER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")
HIDDEN_DELIMITER = re.compile(r"### (BEGIN|END) HIDDEN TESTS")
WIDE_FIGURE = 900    # px: a figure wider than this is shown across the full content width
SPLIT_FIGURE = 1400  # px: a grid of panels wider than this is shown one column at a time
TITLE = "Backprop by hand: the worked solutions"
INTRO = """A course in backpropagation after Andrej Karpathy's makemore lectures. Each page is
one stage's solution notebook, run in full: the derivations, the code, its outputs and
figures. Read the stages in order; each builds on the one before. To work through them
yourself, with checks after every answer, open the notebooks in `notebooks/` in JupyterLab
(`make lab`, see the README). The notebook of each page, with its outputs, is linked
beside its title below and at the top of the page."""


# --- what students are told and readers are not --------------------------------------------
# The solutions address students too: how to answer, how to validate, how each cell is graded.
# The reading copy drops those passages, found in the markdown by the patterns below (a
# space in a pattern matches any white space: the markdown is wrapped). Whatever such words
# are left afterwards stop the build, naming the cell, so that a new instruction gets its
# pattern here.

STUDENT_ONLY_BLOCKS = (      # (a paragraph's opening label, whether the list after it goes too)
    (r"\*\*How it works\*\*", True),
)
STUDENT_ONLY = (             # sentences and clauses, removed in this order
    r"Nothing graded depends on [^.]*\.",
    r", and is graded on logits large enough to overflow",
    r"\(After the few steps of an nbgrader run, [^)]*\)",
    r"; the grader uses other inputs [^.]*",
    r"This cell grades [^.]*\.",
    r"Its upstream gradients have no component [^:]*: Bessel's correction is graded on its own, "
    r"next\.",
    r"From here on the grader compares [^.]*\.",
    r": the hidden \$n = 2\$ batch has such columns",
    r"The grader grades [^.]*\.",
    r" \(hidden: [^)]*\), again with upstream gradients that have no component along `bnraw`",
    r" \(hidden: [^)]*\)",
    r" \([^()]*while (nbgrader runs the notebook|the notebook is graded)\)",
    r"(It is not|None of this is) graded\.",
    r" \(and graded\)",
    r"The grader reads your code before it runs it: .*? even where they would work\.",
    r" \(graded by hand\)",
    r"Answer in a few sentences\.",
)
STUDENT_MARKERS = re.compile(      # what must not be left after them
    r"Press \*\*Validate|NotImplementedError|\bgraded\b|\bgrades\b|\bthe grader\b|\(hidden:|"
    r"\bsubmit\b|\bscores? 0\b|\bearns nothing", re.I)


def _pattern(text):
    return re.compile(text.replace(" ", r"\s+"), re.S)


_BLOCKS = [(_pattern(label), with_list) for label, with_list in STUDENT_ONLY_BLOCKS]
_RULES = [_pattern(p) for p in STUDENT_ONLY]
_LIST = re.compile(r"\s*([*+-]|\d+\.)\s")


def reader_markdown(source, used=None):
    """A markdown cell's source without its student-only passages.

    used, a set, collects which patterns matched: ('block', i) and ('text', i).
    """
    used = set() if used is None else used
    kept, skip_list = [], False
    for block in re.split(r"\n[ \t]*\n", source):
        if skip_list and _LIST.match(block):
            continue
        skip_list = False
        for i, (label, with_list) in enumerate(_BLOCKS):
            if label.match(block.strip()):
                used.add(("block", i))
                skip_list = with_list
                break
        else:
            kept.append(block)
    text, removed = "\n\n".join(kept), False
    for i, rule in enumerate(_RULES):
        text, n = rule.subn("", text)
        if n:
            used.add(("text", i))
            removed = True
    if removed:   # no spaces left at the end of a line (two would make a line break)
        text = re.sub(r"[ \t]+\n", "\n", text)
    return text.strip()


# --- the stages and their reading copies ----------------------------------------------------

@dataclass
class Stage:
    path: Path
    title: str      # the notebook's first '# ' heading
    summary: str    # the paragraph after it

    @property
    def page(self):
        return f"{self.path.stem}.html"


def read_stage(path):
    """A solution notebook's title and one-paragraph summary, from its first markdown cell."""
    nb = nbformat.read(str(path), as_version=4)
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    lines = first.source.strip().splitlines() if first else []
    if not lines or not lines[0].startswith("# "):
        raise GradingError(f"{Path(path).name}: the first markdown cell must open with a "
                           "'# ' title and a paragraph saying what the stage is about")
    paragraph = []
    for line in lines[1:]:
        if line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            break
    if not paragraph:
        raise GradingError(f"{Path(path).name}: no paragraph follows the title in the first "
                           "markdown cell (the site's index shows it as the stage's summary)")
    return Stage(Path(path), lines[0][2:].strip(), " ".join(paragraph))


def _figure_width(cell):
    """The width in pixels of a code cell's widest PNG output (0 if it has none)."""
    from PIL import Image
    widest = 0
    for output in cell.get("outputs", []):
        png = output.get("data", {}).get("image/png")
        if png:
            with Image.open(io.BytesIO(base64.b64decode(png))) as image:
                widest = max(widest, image.width)
    return widest


def grid_columns(png, most=4, slack=0.08):
    """A figure of k equal columns of panels (matplotlib's subplots), cut into its columns at
    the blank gutters between them: [png bytes of each column], or [] if it is no such grid."""
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
    blank = (np.asarray(rgb.convert("L")) >= 250).all(axis=0)   # columns with nothing drawn
    width = len(blank)
    for k in range(most, 1, -1):
        cuts = []
        for j in range(1, k):
            near = [x for x in range(int(width * (j / k - slack)), int(width * (j / k + slack)))
                    if blank[x]]
            if not near:
                break
            cuts.append(min(near, key=lambda x: abs(x - width * j / k)))
        else:
            pieces = []
            for left, right in zip([0, *cuts], [*cuts, width], strict=True):
                buffer = io.BytesIO()
                rgb.crop((left, 0, right, rgb.height)).save(buffer, "PNG", optimize=True)
                pieces.append(buffer.getvalue())
            return pieces
    return []


def fit_figures(cell):
    """Make a code cell's figures readable at page width: a grid wider than SPLIT_FIGURE is
    shown column by column, one under the other; a cell whose figures are still wider than
    WIDE_FIGURE is tagged `full-width`: its figures span the page outline's column too
    (grader/book/static/course.css)."""
    outputs = []
    for output in cell.get("outputs", []):
        wide = _figure_width({"outputs": [output]}) > SPLIT_FIGURE
        pieces = grid_columns(base64.b64decode(output.data["image/png"])) if wide else []
        if not pieces:
            outputs.append(output)
            continue
        for piece in pieces:
            part = copy.deepcopy(output)
            part.data = {"image/png": base64.b64encode(piece).decode(),
                         "text/plain": output.data.get("text/plain", "<Figure>")}
            part.setdefault("metadata", {}).pop("image/png", None)
            outputs.append(part)
    cell.outputs = outputs
    if _figure_width(cell) > WIDE_FIGURE:
        tags = cell.metadata.setdefault("tags", [])
        if "full-width" not in tags:
            tags.append("full-width")


def _drop_unused_imports(nb):
    """Names imported `from makemore.checks` that no code of the reading copy uses any more
    (`report`, which hidden tests call) are dropped from the import."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    everything = "\n".join(c.source for c in code)
    line = re.compile(r"^from grader\.checks import ([\w, ]+)$", re.M)

    def keep(match):
        names = [n.strip() for n in match.group(1).split(",")]
        used = [n for n in names if len(re.findall(rf"\b{n}\b", everything)) > 1]
        return f"from makemore.checks import {', '.join(used)}" if used else ""
    for cell in code:
        cell.source = line.sub(keep, cell.source)


def reading_copy(nb, name="notebook", used=None):
    """The notebook as readers see it: no hidden tests, no solution delimiters, no student-only
    instructions, unused imports of the grader's checks dropped, figures fit to the page."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme

    nb = copy.deepcopy(nb)
    for cls in (ClearHiddenTests, ClearMarkScheme):
        nb, _ = cls(enforce_metadata=False).preprocess(nb, {})
    for i, cell in enumerate(nb.cells):
        cell.source = "\n".join(line for line in cell.source.split("\n")
                                if not SOLUTION_DELIMITER.match(line))
        if cell.cell_type == "markdown":
            cell.source = reader_markdown(cell.source, used)
            left = STUDENT_MARKERS.search(cell.source)
            if left:
                context = cell.source[max(0, left.start() - 60):left.end() + 60]
                raise GradingError(
                    f"{name}, cell {i}: a student-only instruction would reach the reading "
                    f"version ({' '.join(context.split())!r}); add a pattern for it to "
                    "STUDENT_ONLY in grader/site.py")
        elif cell.cell_type == "code":
            fit_figures(cell)
    _drop_unused_imports(nb)
    nb.cells = [c for c in nb.cells if c.source.strip() or c.get("outputs")]
    nb.metadata.pop("makemore", None)
    return nb


def index_page(stages):
    """The book's first page (MyST markdown): what the course is, the stages with summaries."""
    items = "\n".join(
        f"{i}. **[{s.title}]({s.path.name})** "
        f'(<a class="download-notebook" href="_sources/{s.path.name}" download>notebook</a>)'
        f"\\\n   {s.summary}\n" for i, s in enumerate(stages, 1))
    toctree = "\n".join(s.path.name for s in stages)
    return (f"# {TITLE}\n\n{INTRO}\n\n{items}\n"
            f"```{{toctree}}\n:hidden:\n:maxdepth: 2\n\n{toctree}\n```\n")


def write_source(stages, folder):
    """Fill folder with the book's sources: index.md and the reading copies."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.md").write_text(index_page(stages), encoding="utf-8")
    for stage in stages:
        nb = reading_copy(nbformat.read(str(stage.path), as_version=4), stage.path.name)
        nbformat.write(nb, str(folder / stage.path.name))
    return folder


# --- the build -----------------------------------------------------------------------------

def sphinx_build(source, html, doctrees):
    """Sphinx's HTML build of source into html; GradingError with its warnings if any."""
    from sphinx.application import Sphinx
    from sphinx.util.console import nocolor
    from sphinx.util.docutils import docutils_namespace

    nocolor()
    warnings = io.StringIO()
    with docutils_namespace():
        app = Sphinx(str(source), str(BOOK), str(html), str(doctrees), "html",
                     status=None, warning=warnings, freshenv=True)
        app.build()
    problems = [line for line in warnings.getvalue().splitlines() if line.strip()]
    if app.statuscode or problems:
        raise GradingError("Sphinx could not build the reading version:\n" + "\n".join(problems))


def _text_files(site):
    return [p for p in sorted(Path(site).rglob("*")) if p.is_file()
            and p.suffix in (".html", ".js", ".css", ".ipynb", ".md", ".txt", ".json")
            and MATHJAX_DIR not in p.relative_to(site).as_posix()]


def code_lines(nb):
    """(hidden, visible): the code lines of a notebook's hidden tests that its visible code
    does not have too, but for short ones (a lone `raise` would be found anywhere), and the
    lines of its visible code."""
    hidden, visible, inside = [], set(), False
    for cell in nb.cells:
        for line in cell.source.splitlines():
            if HIDDEN_DELIMITER.search(line):
                inside = "BEGIN" in line
            elif inside:
                if len(line.strip()) >= 12 and not line.strip().startswith("#"):
                    hidden.append(line.strip())
            else:
                visible.add(line.strip())
    return [line for line in hidden if line not in visible], visible


NETWORK = re.compile(r"""(?:<(?:script|link|img|source|iframe)\b[^>]*?\b(?:src|href)\s*=\s*["']?
                         |url\(\s*["']?|@import\s+["']?)(?:https?:)?//""", re.X | re.I)


def leaks(site, notebooks):
    """What is wrong with a built site, given {stem: solution notebook}: hidden-test code or a
    delimiter in any of its files (pages, sources, search index), or a script, style, font or
    image from the network. A stage's page and source are searched for the lines of its own
    hidden tests; every other file for those no notebook shows."""
    from html import unescape
    lines = {stem: code_lines(nb) for stem, nb in notebooks.items()}
    shown = set().union(*(visible for _, visible in lines.values()))
    anywhere = {line for hidden, _ in lines.values() for line in hidden} - shown
    problems = []
    for path in _text_files(site):
        text = path.read_text(encoding="utf-8", errors="replace")
        name = path.relative_to(site).as_posix()
        if HIDDEN_DELIMITER.search(text) or re.search(r"### (BEGIN|END) SOLUTION", text):
            problems.append(f"{name}: holds a hidden-test or solution delimiter")
        if path.suffix == ".html":      # the text as shown, without the highlighting's tags
            plain = unescape(re.sub(r"<[^>]+>", "", text))
        elif path.suffix == ".ipynb":   # the cells' sources, not their JSON strings
            plain = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
        else:
            plain = text
        hidden = lines[path.stem][0] if path.stem in lines else anywhere
        for line in hidden:
            if line in text or line in plain:
                problems.append(f"{name}: shows hidden test code: {line}")
                break
        if path.suffix in (".html", ".css"):
            for match in NETWORK.finditer(text):
                problems.append(f"{name}: loads from the network: {text[match.start():][:80]}")
    return problems


def _prepare(out, empty=True):
    """Make out ready for a build: an empty folder, or a site this command built (emptied)."""
    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.html"
    if index.exists() and GENERATOR in index.read_text(errors="replace"):
        for child in out.iterdir() if empty else ():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    elif any(out.iterdir()):
        raise GradingError(f"{out} is not empty and holds no site built by `{GENERATOR}`: "
                           "choose an empty folder")


def build_site(out, source=config.SOLUTIONS):
    """Write the reading version of the solution notebooks in source to out; the pages written
    (the index first)."""
    import jupyter_server_mathjax

    out, source = Path(out), Path(source)
    paths = sorted(source.glob("*.ipynb"))
    if not paths:
        raise GradingError(f"no notebooks in {source}")
    stale = stale_outputs(paths)
    if stale:
        raise GradingError("stored outputs do not match the code (run `python -m grader "
                           "execute`): " + "; ".join(stale))
    stages = [read_stage(p) for p in paths]
    _prepare(out, empty=False)      # refuses a foreign folder before anything is built
    with tempfile.TemporaryDirectory(prefix="reading-") as tmp:
        tmp = Path(tmp)
        write_source(stages, tmp / "source")
        html = tmp / "html"
        sphinx_build(tmp / "source", html, tmp / "doctrees")
        shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static",
                        html / MATHJAX_DIR, dirs_exist_ok=True)
        problems = leaks(html, {p.stem: nbformat.read(str(p), as_version=4) for p in paths})
        if problems:
            raise GradingError("the built site would leak or reach the network, not written:\n"
                               + "\n".join(problems[:20]))
        (html / ".buildinfo").unlink(missing_ok=True)
        _prepare(out)
        for child in html.iterdir():
            target = out / child.name
            shutil.move(str(child), str(target))
    return [out / "index.html", *(out / s.page for s in stages)]
