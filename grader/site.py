"""The reading version: solutions stored with their outputs, and a static site built from them.

`python -m grader execute` runs each solution notebook as a reader would run it (no grading
settings), stores the outputs in place and records in the notebook's metadata a hash of its
code cells, so a test can tell whether the stored outputs belong to the current code.
`python -m grader site --out site` turns the stored notebooks into static pages without
running anything: an index of the stages, one page per stage with its outputs and figures,
hidden tests and solution delimiters removed, math typeset by a local copy of MathJax.
"""
import copy
import hashlib
import html
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import nbformat
from jinja2 import DictLoader

from . import GradingError, config

OUTPUTS_KEY = "outputs_of_code"   # in metadata["makemore"]: code_hash() of the executed code
SOLUTION_DELIMITER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")
GENERATOR = "python -m grader site"
MATHJAX_DIR = "mathjax"
MATHJAX_URL = f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
EXECUTE_TIMEOUT = 3600   # seconds per cell: the full training runs of the later stages


# --- solutions stored executed -----------------------------------------------------------

def code_hash(nb):
    """sha256 of the sources of a notebook's code cells, in order."""
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    return "sha256:" + hashlib.sha256(json.dumps(sources).encode()).hexdigest()


def execute(path, timeout=EXECUTE_TIMEOUT):
    """Run the notebook at path top to bottom as a reader would; store its outputs in place.

    The notebook's own metadata is kept as it was (nbclient would write the kernel's Python
    version into it), plus the hash of the code that made the outputs. Nothing is written
    when a cell fails.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = nbformat.read(str(path), as_version=4)
    metadata = copy.deepcopy(nb.metadata)
    client = NotebookClient(nb, timeout=timeout, record_timing=False,
                            kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
                            extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    interactive = {k: v for k, v in os.environ.items()
                   if k not in ("NBGRADER_EXECUTION", "MAKEMORE_GUARD")}
    try:
        with mock.patch.dict(os.environ, interactive, clear=True):
            client.execute()
    except CellExecutionError as e:
        raise GradingError(f"{path.name}: a cell failed, nothing written: "
                           f"{str(e).strip().splitlines()[-1][:300]}") from None
    nb.metadata = metadata
    nb.metadata.setdefault("makemore", {})[OUTPUTS_KEY] = code_hash(nb)
    nbformat.write(nb, str(path))
    return path


def outputs_problem(nb):
    """None if the stored outputs are a full run of the notebook's current code, else why not."""
    recorded = nb.metadata.get("makemore", {}).get(OUTPUTS_KEY)
    if recorded is None:
        return "not executed (no record of the code its outputs come from)"
    if recorded != code_hash(nb):
        return "the code changed since its outputs were stored"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.execution_count is None:
            return f"cell {i} was not run"
        if any(o.output_type == "error" for o in cell.outputs):
            return f"cell {i} stored an error"
    return None


def stale_outputs(paths):
    """'name: reason' for each notebook whose stored outputs do not belong to its code."""
    problems = []
    for path in paths:
        problem = outputs_problem(nbformat.read(str(path), as_version=4))
        if problem:
            problems.append(f"{Path(path).name}: {problem}")
    return problems


def without_outputs_record(nb):
    """The notebook without the record of its outputs' code (the release must not depend on it)."""
    nb = copy.deepcopy(nb)
    nb.metadata.get("makemore", {}).pop(OUTPUTS_KEY, None)
    return nb


# --- the static site ---------------------------------------------------------------------

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


def reading_copy(nb, stems):
    """The notebook as readers see it: no hidden tests, no solution delimiters, site links."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme

    nb = copy.deepcopy(nb)
    for cls in (ClearHiddenTests, ClearMarkScheme):
        nb, _ = cls(enforce_metadata=False).preprocess(nb, {})
    links = re.compile(r"\]\((?:\./)?(" + "|".join(map(re.escape, stems)) + r")\.ipynb")
    for cell in nb.cells:
        cell.source = "\n".join(line for line in cell.source.split("\n")
                                if not SOLUTION_DELIMITER.match(line))
        if cell.cell_type == "markdown" and stems:
            cell.source = links.sub(r"](\1.html", cell.source)
    return nb


MATHJAX_CONFIG = r"""<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: {inlineMath: [['$', '$'], ['\\(', '\\)']], displayMath: [['$$', '$$'], ['\\[', '\\]']],
            processEscapes: true, processEnvironments: true},
  TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null},
  displayAlign: "center", messageStyle: "none"
});
</script>
<script src="{url}"></script>"""

SITE_CSS = """
nav.course-nav { display: flex; justify-content: space-between; gap: 1em; max-width: 1100px;
  margin: 1em auto; padding: 0.6em 1em; font-family: sans-serif; font-size: 15px;
  border-top: 1px solid #ddd; border-bottom: 1px solid #ddd; }
nav.course-nav a { text-decoration: none; color: #1a5fb4; }
nav.course-nav a:hover { text-decoration: underline; }
nav.course-nav span { min-width: 30%; }
"""

PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block html_head_js %}<meta name="generator" content="GENERATOR">{% endblock html_head_js %}
{% block html_head_js_mathjax %}{{ resources.course_mathjax }}{% endblock html_head_js_mathjax %}
{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}
{% block extra_css %}<style type="text/css">SITE_CSS</style>{% endblock extra_css %}
{% block body_header %}{{ super() }}{{ resources.course_nav }}{% endblock body_header %}
{% block body_footer %}{{ resources.course_nav }}{{ super() }}{% endblock body_footer %}
""".replace("GENERATOR", GENERATOR).replace("SITE_CSS", SITE_CSS)

INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta name="generator" content="{generator}">
<title>Backprop by hand: the worked solutions</title>
{mathjax}
<style type="text/css">
body {{ font-family: sans-serif; max-width: 52em; margin: 2em auto; padding: 0 1em;
  line-height: 1.5; color: #222; }}
h1 {{ font-size: 1.8em; }}
ol.stages {{ list-style: none; padding-left: 0; }}
ol.stages > li {{ margin-bottom: 1.2em; }}
ol.stages a {{ font-size: 1.15em; font-weight: bold; text-decoration: none; color: #1a5fb4; }}
ol.stages a:hover {{ text-decoration: underline; }}
ol.stages p {{ margin: 0.3em 0; }}
code {{ background: #f3f3f3; padding: 0 0.2em; }}
</style>
</head>
<body>
<h1>Backprop by hand: the worked solutions</h1>
<p>A course in backpropagation after Andrej Karpathy's makemore lectures. Each page below is
one stage's solution notebook, run in full: the derivations, the code, its outputs and
figures. Read the stages in order; each builds on the one before. To work through them
yourself, with checks after every answer, open the notebooks in <code>notebooks/</code> in
JupyterLab (<code>make lab</code>, see the README).</p>
<ol class="stages">
{items}
</ol>
</body>
</html>
"""


def _inline_markdown(text):
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    rendered = markdown2html_mistune(text).strip()
    return re.sub(r"^<p>(.*)</p>$", r"\1", rendered, flags=re.S)


def _nav(stages, i):
    def link(rel, stage, label):
        return f'<a rel="{rel}" href="{stage.page}">{label}</a>'
    prev = link("prev", stages[i - 1], f"&larr; {html.escape(stages[i - 1].title)}") if i else ""
    nxt = (link("next", stages[i + 1], f"{html.escape(stages[i + 1].title)} &rarr;")
           if i + 1 < len(stages) else "")
    return (f'<nav class="course-nav"><span>{prev}</span>'
            f'<a rel="index" href="index.html">All stages</a>'
            f'<span style="text-align: right">{nxt}</span></nav>')


def _exporter():
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="lab",
                            extra_loaders=[DictLoader({"course_page.html.j2": PAGE_TEMPLATE})],
                            template_file="course_page.html.j2")
    exporter.embed_images = True        # markdown images inline too: every page stands alone
    return exporter


def _prepare(out):
    """Make out ready for a build: empty, or a site this command built (its pages removed)."""
    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.html"
    if index.exists() and GENERATOR in index.read_text(errors="replace"):
        for page in out.glob("*.html"):
            page.unlink()
    elif any(out.iterdir()):
        raise GradingError(f"{out} is not empty and holds no site built by `{GENERATOR}`: "
                           "choose an empty folder")


def build_site(out, source=config.SOLUTIONS):
    """Write the reading version of the solution notebooks in source to out; the pages written."""
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
    _prepare(out)
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", out / MATHJAX_DIR,
                    dirs_exist_ok=True)
    mathjax = MATHJAX_CONFIG.replace("{url}", MATHJAX_URL)
    exporter = _exporter()
    stems = [p.stem for p in paths]
    pages = []
    for i, stage in enumerate(stages):
        nb = reading_copy(nbformat.read(str(stage.path), as_version=4), stems)
        nb.metadata["title"] = stage.title
        body, _ = exporter.from_notebook_node(nb, resources={
            "course_nav": _nav(stages, i), "course_mathjax": mathjax,
            "metadata": {"name": stage.path.stem}})
        pages.append(out / stage.page)
        pages[-1].write_text(body, encoding="utf-8")
    items = "\n".join(f'<li><a href="{s.page}">{_inline_markdown(s.title)}</a>\n'
                      f'<p class="summary">{_inline_markdown(s.summary)}</p></li>' for s in stages)
    index = out / "index.html"
    index.write_text(INDEX_TEMPLATE.format(generator=GENERATOR, mathjax=mathjax, items=items),
                     encoding="utf-8")
    return [index, *pages]
