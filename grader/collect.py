"""Where the submissions come from: a folder per student, or an LMS export zip.

A zip holds either one folder per student (as a submissions folder does) or loose files
named as LMS exports name them, which nbgrader's zip_collect conventions map to students:
nbgrader's FileNameCollectorPlugin matches each file's path with a regular expression whose
named groups `student_id` and `file_id` (optionally `timestamp`) say whose file it is and
which notebook. The default expression takes everything before the notebook's name as the
student (`alice_02_backprop_step_by_step.ipynb`, `alice-02_backprop_step_by_step.ipynb`);
LMS prefixes such as `alice_12345_67890_02_...` work with --zip-regexp. Every file of the zip
is listed in OUT/collected.csv with the student and notebook it went to, or why it was not
used; a file that maps to no student or notebook is recorded there, and the others are graded.
"""
import csv
import re
import shutil
import zipfile
from pathlib import Path

from . import GradingError

MAX_UNZIPPED = 2 * 2**30    # bytes: a larger archive is refused (a zip bomb)


def default_regexp(notebooks):
    names = "|".join(re.escape(nb) for nb in notebooks)
    return (r".*/(?P<student_id>[A-Za-z0-9][A-Za-z0-9_.@-]*?)[_-]+"
            rf"(?P<file_id>(?:{names})\.ipynb)$")


def collect(submissions, out, notebooks, zip_regexp=None):
    """[(student, folder, notes)] to grade, sorted by student; GradingError if there is none."""
    if not submissions.exists():
        raise GradingError(f"submissions folder not found: {submissions}")
    if submissions.is_file():
        if not zipfile.is_zipfile(submissions):
            raise GradingError(f"{submissions} is neither a folder nor a zip file")
        submissions = unpack(submissions, out, notebooks, zip_regexp)
    students = sorted(d for d in submissions.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not any((d / f"{nb}.ipynb").exists() for d in students for nb in notebooks) and \
            not any(p.suffix == ".ipynb" for d in students for p in d.iterdir()):
        raise GradingError(f"no notebooks found in {submissions}: expected STUDENT/NOTEBOOK.ipynb "
                           f"with NOTEBOOK one of {', '.join(notebooks)}")
    return [(d.name, d, []) for d in students]


def unpack(archive, out, notebooks, zip_regexp=None):
    """Extract an LMS zip into OUT/course/collected/STUDENT/NOTEBOOK.ipynb; that folder."""
    from nbgrader.plugins import FileNameCollectorPlugin
    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > MAX_UNZIPPED:
                raise GradingError(f"{archive}: more than {MAX_UNZIPPED >> 30} GiB unpacked")
            extracted = out / "course" / "downloaded"
            if extracted.exists():
                shutil.rmtree(extracted)
            files = []
            for m in members:
                name = Path(m.filename)
                if name.is_absolute() or ".." in name.parts or name.parts[0] == "__MACOSX":
                    continue
                target = extracted / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(m) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                files.append(target)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise GradingError(f"{archive} is not a readable zip file: {e}") from None
    collected = out / "course" / "collected"
    if collected.exists():
        shutil.rmtree(collected)
    collected.mkdir(parents=True)
    foldered = [f for f in files if len(f.relative_to(extracted).parts) == 2
                and f.suffix == ".ipynb"]
    log = []
    if foldered and len(foldered) == len([f for f in files if f.suffix == ".ipynb"]):
        for f in files:   # one folder per student, as a submissions folder
            rel = f.relative_to(extracted)
            if len(rel.parts) >= 2:
                dest = collected / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, dest)
                log.append((rel.as_posix(), rel.parts[0], rel.name, "collected"))
            else:
                log.append((rel.as_posix(), "", "", "ignored: not in a student's folder"))
    else:
        plugin = FileNameCollectorPlugin(named_regexp=zip_regexp or default_regexp(notebooks))
        chosen = {}
        for f in sorted(files):
            rel = f.relative_to(extracted).as_posix()
            info = plugin.collect(str(f)) if f.suffix == ".ipynb" else None
            if f.suffix != ".ipynb":
                log.append((rel, "", "", "ignored: not a notebook"))
                continue
            if not info or "student_id" not in info or "file_id" not in info:
                log.append((rel, "", "", "ignored: the name matches no student and notebook "
                                         "(see --zip-regexp)"))
                continue
            student, notebook = info["student_id"], Path(info["file_id"]).stem
            if notebook not in notebooks:
                log.append((rel, student, notebook, "ignored: no such notebook in the course"))
                continue
            key, stamp = (student, notebook), info.get("timestamp") or ""
            if key in chosen:
                old_rel, old_stamp = chosen[key][1], chosen[key][2]
                keep_new = stamp > old_stamp if (stamp or old_stamp) else False
                loser = old_rel if keep_new else rel
                log.append((loser, student, notebook, "ignored: a second file for this student "
                            "and notebook" + (" with an older timestamp" if stamp or old_stamp
                                              else " (the first in name order is graded)")))
                if keep_new:
                    log = [e for e in log if e[0] != old_rel or not e[3] == "collected"]
                    chosen[key] = (f, rel, stamp)
                continue
            chosen[key] = (f, rel, stamp)
        for (student, notebook), (f, rel, _) in sorted(chosen.items()):
            dest = collected / student / f"{notebook}.ipynb"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dest)
            log.append((rel, student, notebook, "collected"))
    with open(out / "collected.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["file", "student", "notebook", "status"])
        writer.writerows(sorted(log))
    return collected
