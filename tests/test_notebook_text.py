"""The notebooks' text: a short front matter, hints above every answer of stages 2 to 5, and
hint blocks (<details>) that render, markdown and math inside them included, in JupyterLab,
on code hosts and in the reading version."""
import re

import nbformat
import pytest
from markdown_it import MarkdownIt

from grader import config
from makemore.checks import HINT_TOPICS

FRONT_MATTER_WORDS = 150       # words of markdown before a notebook's first code cell
HINTED_STAGES = ("02", "03", "04", "05")   # every answer has hints; in stage 1 the harder ones
NOTEBOOKS = sorted(config.SOLUTIONS.glob("*.ipynb")) + sorted(config.NOTEBOOKS.glob("*.ipynb"))
OPEN = re.compile(r"<details><summary>Hint (\d+): ([^<>]+)</summary>")
TAG = re.compile(r"</?(details|summary)\b", re.I)


def read(path):
    return nbformat.read(str(path), as_version=4)


def label(path):
    return f"{path.parent.name}/{path.name}"


def front_matter_words(nb):
    """How many words the markdown cells before the first code cell hold."""
    words = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            break
        words += len(cell.source.split())
    return words


def details_problems(source):
    """What is wrong with the hint blocks of one markdown cell: each is
    `<details><summary>Hint N: topic</summary>` on a line of its own, a blank line, markdown,
    a blank line, `</details>` on a line of its own; none inside another; numbered 1, 2, ...
    With the blank lines, CommonMark (JupyterLab, code hosts, MyST) ends the HTML at the tag
    and renders what is between as markdown, math included."""
    problems, lines, inside, numbers = [], source.split("\n"), None, []
    for i, line in enumerate(lines):
        before = lines[i - 1] if i > 0 else ""
        after = lines[i + 1] if i + 1 < len(lines) else ""
        opened = OPEN.fullmatch(line)
        if opened:
            if inside is not None:
                problems.append(f"line {i + 1}: a hint inside the hint opened on line {inside + 1}")
            if before.strip():
                problems.append(f"line {i + 1}: no blank line before <details>")
            if after.strip():
                problems.append(f"line {i + 1}: no blank line after </summary>")
            inside, numbers = i, numbers + [int(opened.group(1))]
        elif line == "</details>":
            if inside is None:
                problems.append(f"line {i + 1}: </details> without <details>")
            elif not "".join(lines[inside + 1:i]).strip():
                problems.append(f"line {i + 1}: an empty hint")
            if before.strip():
                problems.append(f"line {i + 1}: no blank line before </details>")
            inside = None
        elif TAG.search(line):
            problems.append(f"line {i + 1}: <details>, <summary> or their end tag not on a line "
                            f"of its own, as `<details><summary>Hint N: ...</summary>` and "
                            f"`</details>`: {line.strip()[:60]!r}")
    if inside is not None:
        problems.append(f"line {inside + 1}: <details> never closed")
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"hints numbered {numbers}, not 1, 2, ...")
    for token in MarkdownIt("commonmark").parse(source):   # nothing else is raw HTML
        if token.type in ("html_block", "html_inline") and TAG.search(token.content):
            for line in token.content.strip().split("\n"):
                if not (OPEN.fullmatch(line) or line == "</details>"):
                    problems.append(f"shown as raw HTML, not as markdown: {line[:60]!r}")
    return problems


def answers(nb):
    """(index, grade id) of every answer cell, code or written."""
    return [(i, c.metadata["nbgrader"]["grade_id"]) for i, c in enumerate(nb.cells)
            if c.metadata.get("nbgrader", {}).get("solution")]


def hints_above(nb, index):
    """[(number, topic)] of the hints in the markdown cells right above cell `index`."""
    found = []
    for cell in reversed(nb.cells[:index]):
        if cell.cell_type != "markdown":
            break
        found = [(int(n), t) for n, t in OPEN.findall(cell.source)] + found
    return found


def checked_with_cmp(nb, index):
    """Whether `cmp` checks the answer at `index`: a code cell between it and the next answer
    calls it (its verdicts name hints by HINT_TOPICS)."""
    for cell in nb.cells[index + 1:]:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            return False
        if cell.cell_type == "code" and re.search(r"\bcmp\(", cell.source):
            return True
    return False


@pytest.mark.parametrize("path", NOTEBOOKS, ids=label)
def test_front_matter_is_short(path):
    words = front_matter_words(read(path))
    assert words <= FRONT_MATTER_WORDS, (
        f"{label(path)}: {words} words before the first code cell, at most "
        f"{FRONT_MATTER_WORDS}; move the rest to where it applies")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=label)
def test_hint_blocks_are_well_formed(path):
    nb = read(path)
    problems = [f"cell {i}: {p}" for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                for p in details_problems(c.source)]
    assert problems == [], f"{label(path)}: {problems}"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] in HINTED_STAGES], ids=label)
def test_every_answer_of_stages_2_to_5_has_hints_above_it(path):
    nb = read(path)
    for index, grade_id in answers(nb):
        numbers = [n for n, _ in hints_above(nb, index)]
        assert numbers in ([1, 2], [1, 2, 3]), (
            f"{label(path)}: {grade_id} needs two or three hints right above it, not {numbers}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=label)
def test_hints_of_answers_checked_with_cmp_follow_the_numbering(path):
    """A failed `cmp` names a hint by number (makemore.checks.hint_to_open): hint N of every
    answer it checks must be about HINT_TOPICS[N]."""
    nb = read(path)
    for index, grade_id in answers(nb):
        if not checked_with_cmp(nb, index):
            continue
        for number, topic in hints_above(nb, index):
            assert topic.startswith(HINT_TOPICS[number]), (
                f"{label(path)}: {grade_id}'s hint {number} is {topic!r}, but a failed check "
                f"sends students to hint {number} for {HINT_TOPICS[number]!r}")


def test_stage_2_answers_are_all_checked_with_cmp():
    """The numbering test above reaches every gradient of stage 2."""
    nb = read(config.SOLUTIONS / "02_backprop_step_by_step.ipynb")
    assert len(answers(nb)) == 26 and all(checked_with_cmp(nb, i) for i, _ in answers(nb))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=label)
def test_grading_and_tolerance_are_explained_once_in_the_readme(path):
    """Each notebook points to the README's account in one sentence and restates no rule."""
    markdown = "\n".join(c.source for c in read(path).cells if c.cell_type == "markdown")
    assert markdown.count("../README.md#for-students") == 1, label(path)
    assert not re.search(r"100\s*\\?,?\s*\\varepsilon|\*\*How it is graded", markdown), label(path)


@pytest.mark.parametrize("source, words", [
    ("<details><summary>Hint 1: a</summary>\ntext\n\n</details>", "after </summary>"),
    ("<details><summary>Hint 1: a</summary>\n\ntext\n</details>", "before </details>"),
    ("<details><summary>Hint 1: a</summary>\n\ntext", "never closed"),
    ("text\n\n</details>", "without <details>"),
    ("<details><summary>Hint 1: a</summary> text\n\n</details>", "line of its own"),
    ("<details>\n<summary>Hint 1: a</summary>\n\ntext\n\n</details>", "line of its own"),
    ("<details><summary>Hint 1: a</summary>\n\n<details><summary>Hint 2: b</summary>\n\nx\n\n"
     "</details>\n\n</details>", "inside the hint"),
    ("<details><summary>Hint 2: a</summary>\n\ntext\n\n</details>", "numbered [2]"),
    ("<details><summary>Hint 1: a</summary>\n\n\n\n</details>", "empty hint"),
    ("Some text\n<details><summary>Hint 1: a</summary>\n\ntext\n\n</details>", "blank line before"),
])
def test_malformed_hint_blocks_are_named(source, words):
    problems = details_problems(source)
    assert any(words in p for p in problems), problems


def test_a_well_formed_hint_renders_its_markdown_and_math():
    source = ("A question.\n\n<details><summary>Hint 1: where it is used</summary>\n\n"
              "`x` is used **once**: $\\frac{d}{dx} e^x = e^x$.\n\n</details>")
    assert details_problems(source) == []
    html = MarkdownIt("commonmark").render(source)
    assert "<strong>once</strong>" in html and "<code>x</code>" in html
    assert html.count("<details>") == 1 and html.rstrip().endswith("</details>")
