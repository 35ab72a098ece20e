"""What a built reading site must satisfy, page by page (for test_site.py and test_browser.py)."""
import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
from PIL import Image

HIDDEN = re.compile(r"### (BEGIN|END) HIDDEN TESTS")
SOLUTION = re.compile(r"### (BEGIN|END) SOLUTION")
INLINE_MATH = re.compile(r"(?<![$\\])\$([^$\n]+)\$(?!\$)")
# what students are told and readers must not be: how to answer, validate, hand in, be graded
STUDENT_ONLY = re.compile(r"Press Validate|Validate in JupyterLab|NotImplementedError|"
                          r"How it is graded|graded by hand|before you submit|\(hidden:|"
                          r"the grader (reads|grades|compares|uses)|score 0|earns nothing")


class Page(HTMLParser):
    """One HTML file: its ids, references (tag, attribute, value), images, text, rel links
    (<a rel> and <link rel>) and download links."""

    def __init__(self, path):
        super().__init__(convert_charrefs=True)
        self.path = Path(path)
        self.raw = self.path.read_text(encoding="utf-8")
        self.ids, self.refs, self.images, self.rel, self._text = set(), [], [], {}, []
        self.downloads, self._prose, self._pre = [], [], 0
        self.feed(self.raw)
        self.text = "".join(self._text)
        self.prose = "".join(self._prose)    # the text but for code blocks and outputs (<pre>)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._pre += tag == "pre"
        for key in ("id", "name"):
            if a.get(key) and (key == "id" or tag == "a"):
                self.ids.add(a[key])
        for attr in ("href", "src"):
            if a.get(attr):
                self.refs.append((tag, attr, a[attr]))
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag in ("a", "link") and a.get("rel") and a.get("href"):
            self.rel[a["rel"]] = a["href"]
        if tag == "a" and "download" in a and a.get("href"):
            self.downloads.append(a["href"])

    def handle_endtag(self, tag):
        self._pre -= tag == "pre" and self._pre > 0

    def handle_data(self, data):
        self._text.append(data)
        if not self._pre:
            self._prose.append(data)


def pages(site):
    """{file name: Page} of the site's HTML pages (those at its top: not the theme's files)."""
    return {p.name: Page(p) for p in sorted(Path(site).glob("*.html"))}


def broken_references(site):
    """'page: reference (why)' for every reference that does not resolve inside the site.

    Links to other web sites are allowed in text (<a>); scripts, styles and images must be local.
    """
    site = Path(site)
    found = pages(site)
    broken = []
    for name, page in found.items():
        for tag, _attr, value in page.refs:
            parts = urlsplit(value)
            if parts.scheme in ("http", "https", "mailto"):
                if tag != "a":
                    broken.append(f"{name}: {value} (a {tag} from the network)")
                continue
            if parts.scheme == "data":
                continue
            if parts.scheme:
                broken.append(f"{name}: {value} (scheme {parts.scheme})")
                continue
            target = (page.path.parent / unquote(parts.path)).resolve() if parts.path else page.path
            if not target.is_file() or site.resolve() not in target.parents:
                broken.append(f"{name}: {value} (no such file in the site)")
                continue
            if parts.fragment:
                ids = found[target.name].ids if target.name in found else set()
                if not {parts.fragment, unquote(parts.fragment)} & ids:   # as browsers match
                    broken.append(f"{name}: {value} (no such anchor)")
    return broken


def image_data(page, src):
    """The bytes of an <img> src: embedded (data:) or a file of the site; None if neither."""
    m = re.match(r"data:image/(png|jpeg|gif|webp);base64,(.*)$", src, re.S)
    if m:
        try:
            return base64.b64decode(m.group(2), validate=True)
        except ValueError:
            return None
    parts = urlsplit(src)
    path = (page.path.parent / unquote(parts.path)).resolve()
    if parts.scheme or not path.is_file():
        return None
    return path.read_bytes()


def image_problem(data):
    """None if an image's bytes decode to a picture with content, else what is wrong."""
    if data is None:
        return "neither embedded nor a file of the site"
    try:
        Image.open(io.BytesIO(data)).verify()
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as e:
        return f"does not decode: {type(e).__name__}: {e}"
    if image.width < 10 or image.height < 10:
        return f"too small: {image.width}x{image.height}"
    if all(lo == hi for lo, hi in image.getextrema()):
        return "a blank image (one colour)"
    return None


def image_outputs(nb):
    """How many figures (PNG/JPEG outputs) the stored notebook holds."""
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if {"image/png", "image/jpeg"} & set(o.get("data", {})))


def region_lines(nb, delimiter):
    """Code lines inside the regions a delimiter pattern marks (BEGIN ... END), but for short
    lines (a lone `raise` or closing bracket would be found anywhere on a page)."""
    lines, inside = [], False
    for cell in nb.cells:
        for line in cell.source.splitlines():
            if delimiter.search(line):
                inside = "BEGIN" in line
            elif inside and len(line.strip()) >= 12 and not line.strip().startswith("#"):
                lines.append(line.strip())
    return lines


def hidden_only_lines(nb):
    """The lines of a notebook's hidden tests that none of its visible code has too."""
    visible, inside = set(), False
    for cell in nb.cells:
        for line in cell.source.splitlines():
            if HIDDEN.search(line):
                inside = "BEGIN" in line
            elif not inside:
                visible.add(line.strip())
    return [line for line in region_lines(nb, HIDDEN) if line not in visible]


def stream_lines(nb):
    """Non-empty lines of every stdout/stderr output the notebook stores."""
    return [line.strip() for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type == "stream" for line in o.text.splitlines() if line.strip()]


def page_problems(page, nb):
    """What is wrong with a stage page, given the executed solution notebook it shows."""
    from grader.site import reading_copy
    problems = []
    text = re.sub(r"\s+", " ", page.text)
    for pattern in (HIDDEN, SOLUTION):
        if pattern.search(page.raw):
            problems.append(f"holds the delimiter {pattern.pattern}")
    for line in hidden_only_lines(nb):
        if re.sub(r"\s+", " ", line) in text:
            problems.append(f"shows hidden test code: {line}")
    for line in region_lines(nb, SOLUTION):
        if re.sub(r"\s+", " ", line) not in text:
            problems.append(f"lacks solution code: {line}")
    for line in stream_lines(nb):
        if re.sub(r"\s+", " ", line) not in text:
            problems.append(f"lacks the output line: {line}")
    if len(page.images) < image_outputs(nb):
        problems.append(f"{len(page.images)} images for {image_outputs(nb)} figures")
    for i, src in enumerate(page.images):
        problem = image_problem(image_data(page, src))
        if problem:
            problems.append(f"image {i} ({src[:60]}): {problem}")
    prose = re.sub(r"\s+", " ", page.prose)
    for m in STUDENT_ONLY.finditer(prose):
        problems.append(f"tells students what readers need not: ...{prose[m.start() - 40:m.end()]}")
    shown = reading_copy(nb)    # the math of the text readers get (no student-only passages)
    math = [m for c in shown.cells if c.cell_type == "markdown"
            for m in INLINE_MATH.findall(c.source)]
    for formula in math:
        if formula not in page.text:
            problems.append(f"lacks the math source ${formula}$")
    if math and "text/x-mathjax-config" not in page.raw:
        problems.append("has math but no MathJax configuration")
    scripts = [v for tag, attr, v in page.refs if tag == "script"]
    if math and not any("MathJax.js" in s for s in scripts):
        problems.append("has math but loads no MathJax.js")
    return problems


def read(path):
    return nbformat.read(str(path), as_version=4)
