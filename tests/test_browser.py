"""The course in a real browser: JupyterLab started as a student starts it, driven in Chromium.

JupyterLab starts through `make lab` (the README's command) with JupyterLab options for a
headless run: loopback, a free port, a token. Playwright drives Debian's Chromium
(/usr/bin/chromium, or $CHROMIUM); no browser is downloaded. The notebooks are copies in a
temporary folder, never the repository's. Screenshots go to artifacts/browser/ for a person
to look at.
"""
import ast
import functools
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from unittest import mock

import nbformat
import pytest

from conftest import REPO, grader
from crafted import STAGE2
from grader import config
from grader.nbgrading import add_source
from sitecheck import hidden_only_lines

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# no background traffic: this machine's network is closed and Chromium would keep trying
CHROMIUM_FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]
ARTIFACTS = REPO / "artifacts" / "browser"
NOTEBOOK = f"{STAGE2}.ipynb"
RUN_TIMEOUT = 120_000   # ms: running or validating the whole notebook on a busy 2-core machine
# JupyterLab settings for the run: every cell in the page (no virtual scrolling), no news prompt
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nbgrader_cells(path):
    """[(index, nbgrader metadata, source)] of a notebook's nbgrader cells."""
    nb = nbformat.read(str(path), as_version=4)
    return [(i, c.metadata["nbgrader"], c.source) for i, c in enumerate(nb.cells)
            if "nbgrader" in c.metadata]


def answers_and_checks(path):
    """(answer cells, graded test cells) of a notebook, each as (index, grade id, source)."""
    cells = nbgrader_cells(path)
    answers = [(i, m["grade_id"], s) for i, m, s in cells if m.get("solution")]
    checks = [(i, m["grade_id"], s) for i, m, s in cells
              if m.get("grade") and not m.get("solution")]
    return answers, checks


def solution_code(grade_id):
    """The solution's code for an answer cell, as a student would type it (no delimiters)."""
    for _, meta, source in nbgrader_cells(config.SOLUTIONS / NOTEBOOK):
        if meta["grade_id"] == grade_id:
            return "\n".join(ln for ln in source.splitlines()
                             if not re.match(r"\s*### (BEGIN|END) SOLUTION", ln))
    raise KeyError(grade_id)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab from `make lab` on a copy of the course: release, solutions, a course folder."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "lab"
    (root / "solutions").mkdir(parents=True)
    for nb in config.NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(nb, root / nb.name)
    for nb in config.SOLUTIONS.glob("*.ipynb"):
        shutil.copy(nb, root / "solutions" / nb.name)
    course = root / "course"          # the instructor's nbgrader course, for the Formgrader
    bin_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    with mock.patch.dict(os.environ, {"PATH": bin_path}):   # nbgrader runs `alembic`
        add_source(course)
    (tmp / "exchange").mkdir()
    home = tmp / "jupyter"            # the server's own config, data and settings: none of yours
    for name, settings in LAB_SETTINGS.items():
        path = home / "config" / "lab" / "user-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    for var in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):   # a plain `make lab`, even under `make test`
        env.pop(var, None)
    port, token = free_port(), secrets.token_hex(16)
    options = ["--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--CourseDirectory.root={course}",
               f"--CourseDirectory.course_id={config.COURSE_ID}",
               f"--Exchange.root={tmp / 'exchange'}"]
    log = open(tmp / "lab.log", "w")
    server = subprocess.Popen(["make", "--no-print-directory", "lab", f"LAB_DIR={root}",
                               "LAB_ARGS=" + " ".join(options)],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"`make lab` exited with {server.returncode}:\n"
                            + (tmp / "lab.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("JupyterLab did not answer within 120 s:\n"
                            + (tmp / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
        yield {"url": url, "token": token, "root": root, "log": tmp / "lab.log"}
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)   # the server shuts its kernels down
            server.wait(timeout=30)
        except ProcessLookupError:   # `make lab` had already ended (its failure is reported)
            pass
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install chromium chromium-driver` "
                    "(.ci/run does) or set CHROMIUM to a Chromium executable")
    flags = CHROMIUM_FLAGS + (["--no-sandbox"] if os.geteuid() == 0 else [])
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module", autouse=True)
def artifacts():
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    failed = request.session.testsfailed
    yield page
    if request.session.testsfailed > failed:   # show how the page looked when the test failed
        page.screenshot(path=ARTIFACTS / f"FAILED_{request.node.name}.png")
    context.close()


def open_notebook(page, lab, path):
    """Open a notebook in JupyterLab (a fresh workspace) and wait for its kernel to be idle."""
    from playwright.sync_api import expect
    page.goto(f"{lab['url']}/lab/tree/{path}?token={lab['token']}&reset")
    panel = page.locator(".jp-NotebookPanel:visible")
    expect(panel.locator(".jp-Notebook .jp-Cell").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"ipykernel\) \| Idle$"))).to_be_visible(timeout=60_000)
    return panel


def menu(page, top, item):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


def outputs(cell):
    return "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts())


def validate(page, panel, shot):
    """Press the notebook's Validate button; (classes, text) of nbgrader's result dialog."""
    panel.locator(".validate-button").click()
    message = page.locator(".jp-Dialog #validation-message")
    message.wait_for(timeout=RUN_TIMEOUT)
    page.screenshot(path=ARTIFACTS / shot)
    result = message.get_attribute("class"), message.inner_text()
    page.locator(".jp-Dialog").get_by_role("button", name="Ok").click()
    return result


def type_answer(page, cells, index, code):
    editor = cells.nth(index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(code)
    assert "raise NotImplementedError" not in editor.inner_text()


def off_by_two(code):
    """An answer's code with the gradient it assigns first doubled: a wrong answer."""
    name = next(n.targets[0].id for n in ast.parse(code).body
                if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name))
    return f"{code}\n{name} = {name} * 2", name


def test_student_runs_the_release_and_validate_names_what_is_missing(lab, page):
    """A student answers the first question right and the second wrong: the second's check
    shows its one-line verdict (no frames), Run All stops there, and Validate lists that
    verdict and the unanswered third question, but not the right first answer."""
    answers, checks = answers_and_checks(lab["root"] / NOTEBOOK)
    panel = open_notebook(page, lab, NOTEBOOK)
    cells = panel.locator(".jp-Notebook .jp-Cell")
    first, second = answers[0], answers[1]
    type_answer(page, cells, first[0], solution_code(first[1]))
    wrong, name = off_by_two(solution_code(second[1]))
    type_answer(page, cells, second[0], wrong)
    menu(page, "Run", "Run All Cells")
    failed = cells.nth(checks[1][0])
    failed.locator(".jp-OutputArea-output", has_text="CheckFailed").wait_for(
        timeout=RUN_TIMEOUT)
    check = cells.nth(checks[0][0])
    assert re.search(r"\| exact: \w+ *\| approximate: True *\| maxdiff: \S+ *\| shape: ok",
                     outputs(check)), outputs(check)
    verdict = " ".join(outputs(failed).split())   # the verdict is wrapped for the dialog
    assert f"CheckFailed: {name}: " in verdict and "factor 2" in verdict, verdict
    assert "Traceback" not in verdict and "checks.py" not in verdict, verdict
    # Run All stopped at the failed check: nothing after it ran (cells queued behind it show
    # [*] until JupyterLab has taken the error in, then [ ])
    from playwright.sync_api import expect
    later = cells.nth(checks[2][0]).locator(".jp-InputPrompt")
    expect(later).to_have_text(re.compile(r"^\s*(\[ \]:)?\s*$"), timeout=30_000)
    failed.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "01_release_failing_check.png")

    classes, text = validate(page, panel, "02_release_validate.png")
    assert "validation-failed" in classes, text
    assert "The following cell failed" in text or "The following cells failed" in text
    assert f"{name}: " in text and "factor 2" in " ".join(text.split()), text   # the verdict
    assert checks[2][2].strip() in text          # the unanswered question's check fails
    assert checks[0][2].strip() not in text      # the answered one passes
    # the dialog opens with the count (grader/validate.py, from the repository's nbgrader_config.py)
    count = f"{len(checks) - 1} of {len(checks)} checks fail (listed below), 1 passes"
    assert count in text, text[:600]
    assert text.index(count) < text.index(f"{name}: "), text[:600]


def test_solution_runs_clean_and_validates(lab, page):
    path = f"solutions/{NOTEBOOK}"
    answers, checks = answers_and_checks(lab["root"] / path)
    panel = open_notebook(page, lab, path)
    cells = panel.locator(".jp-Notebook .jp-Cell")
    menu(page, "Edit", "Clear Outputs of All Cells")   # the stored outputs, so a fresh run shows
    assert outputs(cells.nth(checks[0][0])) == ""
    menu(page, "Run", "Run All Cells")
    code_cells = len([c for c in nbformat.read(str(lab["root"] / path), as_version=4).cells
                      if c.cell_type == "code"])
    page.wait_for_function(
        """n => { const prompts = [...document.querySelectorAll(
                    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
                  return prompts.length === n
                      && prompts.every(p => /\\[\\d+\\]/.test(p.textContent)); }""",
        arg=code_cells, timeout=RUN_TIMEOUT)
    assert panel.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0
    for index, grade_id, _ in checks:
        assert "approximate: True" in outputs(cells.nth(index)), grade_id
    cells.nth(checks[-1][0]).scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "03_solution_run_all.png")

    classes, text = validate(page, panel, "04_solution_validate.png")
    assert "validation-success" in classes, text
    assert "Success! Your notebook passes all the tests." in text


def test_formgrader_shows_the_course(lab, page):
    page.goto(f"{lab['url']}/formgrader?token={lab['token']}")
    page.wait_for_url(re.compile(r"/formgrader/manage_assignments"))
    row = page.locator("tr", has_text=config.ASSIGNMENT)
    row.first.wait_for()
    assert "draft" in row.first.inner_text()
    assert "does not exist" not in page.locator("body").inner_text()   # the exchange is set up
    page.screenshot(path=ARTIFACTS / "05_formgrader.png")
    page.goto(f"{lab['url']}/formgrader/gradebook/{config.ASSIGNMENT}?token={lab['token']}")
    for nb in config.SOLUTIONS.glob("*.ipynb"):
        page.locator("td", has_text=nb.stem).first.wait_for()
    page.screenshot(path=ARTIFACTS / "06_formgrader_notebooks.png")


@pytest.fixture(scope="module")
def served_site(tmp_path_factory):
    """The reading site, built by its command and served on loopback as `python -m http.server`."""
    out = tmp_path_factory.mktemp("served") / "site"
    run = grader("site", "--out", out)
    assert run.returncode == 0, run.stderr
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def wait_for_math(page):
    """Wait until MathJax (2, shipped with the site) has typeset the page; (sources, typeset)."""
    page.wait_for_function("""() => window.MathJax && MathJax.Hub && MathJax.Hub.queue
                               && MathJax.Hub.queue.pending === 0 && !MathJax.Hub.queue.running
                               && document.querySelectorAll('script[type^="math/tex"]')
                                  .length > 0""")
    return (page.locator("script[type^='math/tex']").count(),
            page.locator("span.MathJax").count())


def test_site_reads_searches_and_typesets_without_the_network(served_site, page):
    """The reading version as a reader uses it: the index and its sidebar, the engine's search
    for a word, a hit followed to its stage, the math typeset, no hidden test, nothing fetched
    but from the site; then the light and dark themes and the widest figures."""
    from playwright.sync_api import expect
    requests, failed = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failed.append(r.url))
    stages = sorted(config.SOLUTIONS.glob("*.ipynb"))
    page.goto(f"{served_site}/index.html")
    sidebar = page.locator(".bd-sidebar-primary")
    for path in stages:
        expect(sidebar.locator(f"a[href='{path.stem}.html']")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "07_site_index.png")

    sidebar.locator(".search-button-field").click()
    query = page.locator("input[name='q']:visible")
    query.fill("Bessel")
    query.press("Enter")
    page.wait_for_url(re.compile(r"/search\.html\?q=Bessel"))
    hits = page.locator("#search-results li a")
    hits.first.wait_for(timeout=30_000)
    found = [h.split("?")[0].split("#")[0] for h in hits.evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")]
    assert "04_fused_batchnorm.html" in found, found     # the stage that derives it
    # each hit's excerpt, cut from the page before MathJax runs: formulas as text, not TeX
    contexts = page.locator("#search-results p.context")
    contexts.first.wait_for(timeout=30_000)
    excerpts = " ".join(contexts.all_inner_texts())
    assert "Bessel" in excerpts, excerpts
    assert not re.search(r"\\[a-zA-Z(\[]|\$", excerpts), excerpts   # no \frac, \(, $...$
    page.screenshot(path=ARTIFACTS / "08_site_search.png")
    hits.first.click()
    page.wait_for_url(re.compile(r"/0\d_\w+\.html"))
    stem = re.search(r"/(0\d_\w+)\.html", page.url).group(1)
    sources, typeset = wait_for_math(page)
    article = page.locator("article").inner_text()
    assert "Bessel" in article
    assert typeset == sources > 0
    assert page.locator(".MathJax_Error, .merror").count() == 0
    assert "Math Processing Error" not in article
    prose = page.evaluate("""() => { const a = document.querySelector('article').cloneNode(true);
                                     a.querySelectorAll('pre, script').forEach(e => e.remove());
                                     return a.textContent; }""")
    assert "$$" not in prose and "\\(" not in prose and "\\[" not in prose   # all typeset
    nb = nbformat.read(str(config.SOLUTIONS / f"{stem}.ipynb"), as_version=4)
    text = re.sub(r"\s+", " ", article)
    assert [line for line in hidden_only_lines(nb) if re.sub(r"\s+", " ", line) in text] == []
    assert "BEGIN HIDDEN TESTS" not in page.content()
    outline = page.locator(".bd-sidebar-secondary nav.page-toc a")
    assert outline.count() >= 3
    download = page.locator("a.download-notebook")
    assert download.get_attribute("href") == f"_sources/{stem}.ipynb"
    assert page.request.get(f"{served_site}/_sources/{stem}.ipynb").ok
    page.locator("h2").nth(2).scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "09_site_stage_math.png")

    page.emulate_media(color_scheme="dark")
    page.reload()
    wait_for_math(page)
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.screenshot(path=ARTIFACTS / "10_site_dark.png")
    page.emulate_media(color_scheme="light")

    # the widest figures: stage 5's grid of six panels, shown column by column, and the
    # wide single plots across the page outline's column, none shown much smaller than made
    page.goto(f"{served_site}/{stages[-1].stem}.html")
    figures = page.locator("article img")
    figures.last.scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('article img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    scales = figures.evaluate_all(
        "imgs => imgs.map(i => i.getBoundingClientRect().width / i.naturalWidth)")
    assert scales and min(scales) >= 0.6, scales
    page.screenshot(path=ARTIFACTS / "11_site_wide_figures.png")
    web = [u for u in requests + failed if u.startswith(("http:", "https:"))]
    assert [u for u in web if not u.startswith(served_site)] == []   # nothing from the network
    assert [u for u in failed if u.startswith("http") and not u.endswith("favicon.ico")] == []
