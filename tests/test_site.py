"""The reading version: solutions stored with current outputs, and the book built from them."""
import base64
import io
import json
import re
import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import grader
from grader import GradingError, config
from grader.outputs import code_hash, outputs_problem
from grader.site import (SPLIT_FIGURE, STUDENT_ONLY, STUDENT_ONLY_BLOCKS, grid_columns, leaks,
                         reader_markdown, reading_copy)
from sitecheck import (STUDENT_ONLY as STUDENT_WORDS, Page, broken_references, image_data,
                       image_outputs, page_problems, pages, read, region_lines, HIDDEN)

SOLUTIONS = sorted(config.SOLUTIONS.glob("*.ipynb"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site of solutions/, built by the command the README gives."""
    out = tmp_path_factory.mktemp("reading") / "site"
    run = grader("site", "--out", out)
    assert run.returncode == 0, run.stderr
    return out


def test_solutions_are_stored_with_the_outputs_of_their_current_code():
    for path in SOLUTIONS:
        assert outputs_problem(read(path)) is None, (
            f"{path.name}: {outputs_problem(read(path))}; run `python -m grader execute`")
    run = grader("execute", "--check")
    assert run.returncode == 0, run.stderr


def test_stale_outputs_are_named(tmp_path):
    nb = read(SOLUTIONS[0])
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.source += "\n# changed"
    assert outputs_problem(nb) == "the code changed since its outputs were stored"
    nbformat.write(nb, str(tmp_path / SOLUTIONS[0].name))
    run = grader("execute", "--check", tmp_path / SOLUTIONS[0].name)
    assert run.returncode == 1 and SOLUTIONS[0].name in run.stderr
    run = grader("site", "--source", tmp_path, "--out", tmp_path / "site")
    assert run.returncode == 2 and "code changed" in run.stderr
    assert not (tmp_path / "site" / "index.html").exists()


def test_release_does_not_carry_the_outputs_record():
    for nb in config.NOTEBOOKS.glob("*.ipynb"):
        assert "outputs_of_code" not in nb.read_text(), nb.name


def test_index_lists_every_stage_with_its_title_and_summary(site):
    index = Page(site / "index.html")
    for path in SOLUTIONS:
        intro = next(c for c in read(path).cells if c.cell_type == "markdown").source
        title = intro.splitlines()[0].removeprefix("# ").strip()
        first_words = re.sub(r"[`*_]", "", intro.split("\n\n")[1]).split()[:6]
        assert ("a", "href", f"{path.stem}.html") in index.refs
        assert f"_sources/{path.name}" in index.downloads
        assert title in index.text
        assert " ".join(first_words) in re.sub(r"\s+", " ", index.text), path.name
    # the engine's own pages besides: the search page and the (empty) general index
    assert set(pages(site)) == {"index.html", "search.html", "genindex.html",
                                *(f"{p.stem}.html" for p in SOLUTIONS)}


def test_every_link_script_and_anchor_resolves(site):
    assert broken_references(site) == []


def test_prev_and_next_walk_the_stages_in_order(site):
    found = pages(site)
    order, page = [], found["index.html"]
    assert "prev" not in page.rel
    while "next" in page.rel:
        following = found[page.rel["next"]]
        assert following.rel["prev"] == page.path.name
        page = following
        order.append(page.path.stem)
    assert order == [p.stem for p in SOLUTIONS]


def test_every_stage_page_lists_every_stage_and_outlines_itself(site):
    for path in SOLUTIONS:
        page = Page(site / f"{path.stem}.html")
        links = {v for tag, _, v in page.refs if tag == "a"}
        assert {f"{p.stem}.html" for p in SOLUTIONS if p != path} <= links, path.name
        headings = [line.lstrip("#").strip() for c in read(path).cells
                    if c.cell_type == "markdown" for line in c.source.splitlines()
                    if re.match(r"#{2,3} ", line)]
        outline = page.raw[page.raw.index('<nav id="pst-page-toc-nav"'):]
        outline = outline[:outline.index("</nav>")]
        for heading in headings:
            words = re.sub(r"[`*_$\\]", "", heading).split()[:3]
            assert " ".join(words) in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", outline)), (
                f"{path.name}: {heading} is not in the page outline")


def test_pages_show_code_outputs_figures_and_math_but_no_hidden_tests(site):
    for path in SOLUTIONS:
        page = Page(site / f"{path.stem}.html")
        assert page_problems(page, read(path)) == [], path.name


def test_each_notebook_downloads_as_it_is_shown_without_hidden_tests(site):
    for path in SOLUTIONS:
        page = Page(site / f"{path.stem}.html")
        assert page.downloads == [f"_sources/{path.name}"], path.name
        text = (site / "_sources" / path.name).read_text()
        shown = nbformat.reads(text, as_version=4)
        assert not HIDDEN.search(text) and "### BEGIN SOLUTION" not in text
        sources = "\n".join(c.source for c in shown.cells)
        for line in region_lines(read(path), re.compile(r"### (BEGIN|END) SOLUTION")):
            assert line in sources, f"{path.name}: lacks {line}"
        assert image_outputs(shown) >= image_outputs(read(path))
        text_cells = "\n".join(c.source for c in shown.cells if c.cell_type == "markdown")
        assert not STUDENT_WORDS.search(text_cells), path.name
        assert "outputs_of_code" not in text


def test_search_index_holds_the_text_of_the_stages(site):
    text = (site / "searchindex.js").read_text()
    index = json.loads(text[text.index("(") + 1:text.rindex(")")])
    assert {"bessel", "batchnorm", "bigram"} <= set(index["terms"])
    assert set(index["docnames"]) == {"index", *(p.stem for p in SOLUTIONS)}
    assert (site / "search.html").is_file()


def test_math_renderer_ships_with_the_site(site):
    scripts = {v for p in pages(site).values() for tag, _, v in p.refs if tag == "script"}
    mathjax = [s for s in scripts if "MathJax.js" in s]
    assert mathjax and all(not s.startswith(("http:", "https:", "//")) for s in mathjax)
    script = site / mathjax[0].split("?")[0]
    assert "MathJax.Hub" in script.read_text()
    config_file = re.search(r"config=([^,&]+)", mathjax[0]).group(1)
    assert (script.parent / "config" / f"{config_file}.js").is_file()


def test_nothing_comes_from_the_network(site):
    for path in [*site.glob("*.html"), *site.glob("_static/**/*.css")]:
        text = path.read_text(errors="replace")
        for tag in re.findall(r"<(?:script|link|img)\b[^>]*>", text):
            assert not re.search(r"""(src|href)=["']?(https?:)?//""", tag), (path.name, tag)
        assert not re.search(r"""url\(["']?(https?:)?//|@import\s+["']?(https?:)?//""", text), (
            path.name)


def test_wide_figures_fit_the_page(site):
    """Stage 5's grid of six panels is shown column by column, every other wide figure across
    the full width; nothing is shown smaller than the width of the text allows."""
    for path in SOLUTIONS:
        page = Page(site / f"{path.stem}.html")
        split = sum(len(grid_columns(data)) - 1 for data in figures(read(path))
                    if width(data) > SPLIT_FIGURE and grid_columns(data))
        assert len(page.images) == image_outputs(read(path)) + split, path.name
        for src in page.images:
            assert width(image_data(page, src)) <= 1700, (path.name, src)
    five = Page(site / "05_training_and_diagnostics.html")
    assert max(width(image_data(five, src)) for src in five.images[-3:]) < 700
    assert 'class="cell tag_full-width' in five.raw


def figures(nb):
    return [base64.b64decode(o.data["image/png"]) for c in nb.cells if c.cell_type == "code"
            for o in c.outputs if "image/png" in o.get("data", {})]


def width(data):
    from PIL import Image
    with Image.open(io.BytesIO(data)) as image:
        return image.width


def test_a_grid_of_panels_is_cut_into_its_columns_and_one_plot_is_not():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def png(rows, columns):
        fig, axes = plt.subplots(rows, columns, figsize=(20, 4 * rows), squeeze=False)
        for ax in axes.flat:
            ax.plot([0, 1, 2], [2, 0, 1], label="a curve")
            ax.set_title("a panel")
            ax.legend()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
        return buffer.getvalue()
    grid = png(2, 3)
    pieces = grid_columns(grid)
    assert len(pieces) == 3 and sum(width(p) for p in pieces) == width(grid)
    assert grid_columns(png(1, 1)) == []
    assert len(grid_columns(png(1, 2))) == 2


def test_student_only_instructions_are_left_out():
    used = set()
    for path in SOLUTIONS:
        nb = read(path)
        said = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        shown = reading_copy(nb, path.name, used)
        kept = "\n".join(c.source for c in shown.cells if c.cell_type == "markdown")
        assert not STUDENT_WORDS.search(kept), path.name
        assert STUDENT_WORDS.search(said), path.name   # the solutions do tell students
    # every pattern still finds its passage: none is left over from text since rewritten
    assert used == {*(("block", i) for i in range(len(STUDENT_ONLY_BLOCKS))),
                    *(("text", i) for i in range(len(STUDENT_ONLY)))}
    source = ("**How it works**\n\n* Replace `raise NotImplementedError()`.\n* Press "
              "**Validate**.\n\nThe loss is a mean (hidden: 3 to 300\nexamples). It is not "
              "graded.\nNext line.")
    assert reader_markdown(source) == "The loss is a mean.\nNext line."


def test_an_instruction_without_a_pattern_stops_the_build(tmp_path):
    nb = demo_notebook()
    nb.cells[0].source += "\n\nPress **Validate** when you are done."
    with pytest.raises(GradingError, match="student-only instruction"):
        reading_copy(nb, "99_demo.ipynb")


def test_the_leak_check_finds_hidden_tests_and_the_network(tmp_path):
    nb = demo_notebook()
    (tmp_path / "_static").mkdir()
    (tmp_path / "99_demo.html").write_text(
        "<html><head><script src='https://cdn.example/x.js'></script></head>"
        "<body><pre>secret_check <span>=</span> answer == 9</pre></body></html>")
    (tmp_path / "_static" / "a.css").write_text("@font-face { src: url(//fonts.example/f.woff) }")
    (tmp_path / "other.html").write_text("<p>### BEGIN HIDDEN TESTS</p>")
    problems = leaks(tmp_path, {"99_demo": nb})
    assert any("99_demo.html: shows hidden test code" in p for p in problems), problems
    assert any("99_demo.html: loads from the network" in p for p in problems), problems
    assert any("a.css: loads from the network" in p for p in problems), problems
    assert any("other.html: holds a hidden-test" in p for p in problems), problems
    (tmp_path / "clean.html").write_text('<a href="https://example.org">a link</a>')
    assert not [p for p in leaks(tmp_path, {"99_demo": nb}) if "clean.html" in p]


def test_building_into_a_foreign_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    run = grader("site", "--out", tmp_path)
    assert run.returncode == 2 and "not empty" in run.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


def demo_notebook():
    """A small stage with a figure, math, a solution region and a hidden test."""
    return new_notebook(cells=[
        new_markdown_cell("# Stage 9 · A demo stage\n\nA *figure*, a formula $y = x^2$ and a "
                          "hidden test.\n\nMore text."),
        new_code_cell("import matplotlib.pyplot as plt\n"
                      "fig, ax = plt.subplots(figsize=(3, 2))\n"
                      "ax.plot([0, 1, 2], [0, 1, 4])\nax.set_title('y = x^2')\nplt.show()"),
        new_code_cell("# answer: y at x = 3\n### BEGIN SOLUTION\nanswer = 3**2\n### END SOLUTION"),
        new_code_cell("### BEGIN HIDDEN TESTS\nsecret_check = answer == 9\n### END HIDDEN TESTS\n"
                      "print('answer', answer)"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                "language": "python"}, "language_info": {"name": "python"}})


def test_execute_stores_outputs_and_the_site_shows_the_figure(tmp_path):
    source = tmp_path / "solutions"
    source.mkdir()
    shutil.copy(SOLUTIONS[0], source / SOLUTIONS[0].name)
    demo = source / "99_demo.ipynb"
    nbformat.write(demo_notebook(), str(demo))
    run = grader("execute", demo)
    assert run.returncode == 0, run.stderr
    nb = read(demo)
    assert outputs_problem(nb) is None
    assert nb.metadata["makemore"]["outputs_of_code"] == code_hash(nb)
    assert nb.metadata["language_info"] == {"name": "python"}   # kept as authored
    assert [o.text for o in nb.cells[3].outputs] == ["answer 9\n"]
    run = grader("site", "--source", source, "--out", tmp_path / "site")
    assert run.returncode == 0, run.stderr
    page = Page(tmp_path / "site" / "99_demo.html")
    assert page_problems(page, nb) == []
    assert len(page.images) == 1 and "secret_check" not in page.text
    assert "answer = 3**2" in page.text and "y = x^2" in page.text
    assert page.rel["prev"] == f"{SOLUTIONS[0].stem}.html"
    assert broken_references(tmp_path / "site") == []
    # built again into the same folder: the old site is replaced, nothing else is touched
    (tmp_path / "site" / "stale.html").write_text("from an earlier build")
    run = grader("site", "--source", source, "--out", tmp_path / "site")
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "site" / "stale.html").exists()
    assert (tmp_path / "site" / "99_demo.html").is_file()


def test_a_cell_that_fails_writes_nothing(tmp_path):
    nb = demo_notebook()
    nb.cells[2].source = "raise ValueError('broken on purpose')"
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, str(path))
    before = path.read_bytes()
    run = grader("execute", path)
    assert run.returncode == 2 and "broken on purpose" in run.stderr
    assert path.read_bytes() == before


def test_a_regular_install_ships_the_book_and_the_course_library(tmp_path):
    """`pip install .` (not only the editable install the Makefile makes) carries what `grader
    site` and the notebooks need: grader/book's configuration, stylesheet and templates, the
    grading rules and the makemore library."""
    import subprocess
    import sys
    import zipfile
    source = tmp_path / "source"   # setuptools builds in place: a copy, not the repository
    for part in ("makemore", "grader"):
        shutil.copytree(config.REPO / part, source / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(config.REPO / "pyproject.toml", source)
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                          "--quiet", "-w", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "would be ignored" not in run.stderr, run.stderr[-2000:]
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    shipped = {str(p.relative_to(config.REPO))
               for p in (config.REPO / "grader" / "book").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert shipped and shipped <= set(names), shipped - set(names)
    for module in ("makemore/checks.py", "makemore/config.py", "grader/rules/stage1.py",
                   "grader/preprocessors/execute.py", "grader/cli.py"):
        assert module in names, module
