"""The reading version: solutions stored with current outputs, and the site built from them."""
import re
import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import grader
from grader import config
from grader.site import code_hash, outputs_problem
from sitecheck import Page, broken_references, page_problems, pages, read

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
        assert title in index.text
        assert " ".join(first_words) in re.sub(r"\s+", " ", index.text), path.name
    assert set(pages(site)) == {"index.html", *(f"{p.stem}.html" for p in SOLUTIONS)}


def test_every_link_script_and_anchor_resolves(site):
    assert broken_references(site) == []


def test_prev_and_next_walk_the_stages_in_order(site):
    found = pages(site)
    order, page = [], found[f"{SOLUTIONS[0].stem}.html"]
    assert "prev" not in page.rel
    while True:
        order.append(page.path.stem)
        assert page.rel["index"] == "index.html"
        if "next" not in page.rel:
            break
        following = found[page.rel["next"]]
        assert following.rel["prev"] == page.path.name
        page = following
    assert order == [p.stem for p in SOLUTIONS]


def test_pages_show_code_outputs_figures_and_math_but_no_hidden_tests(site):
    for path in SOLUTIONS:
        page = Page(site / f"{path.stem}.html")
        assert page_problems(page, read(path)) == [], path.name


def test_math_renderer_ships_with_the_site(site):
    scripts = {v for p in pages(site).values() for tag, _, v in p.refs if tag == "script"}
    mathjax = [s for s in scripts if "MathJax.js" in s]
    assert mathjax and all(not s.startswith("http") for s in mathjax)
    source = (site / mathjax[0].split("?")[0]).read_text()
    assert "MathJax.Hub" in source or "MathJax" in source[:2000]
    config_file = re.search(r"config=([^,&]+)", mathjax[0]).group(1)
    assert (site / "mathjax" / "config" / f"{config_file}.js").is_file()


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


def test_a_cell_that_fails_writes_nothing(tmp_path):
    nb = demo_notebook()
    nb.cells[2].source = "raise ValueError('broken on purpose')"
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, str(path))
    before = path.read_bytes()
    run = grader("execute", path)
    assert run.returncode == 2 and "broken on purpose" in run.stderr
    assert path.read_bytes() == before
