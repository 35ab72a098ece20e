"""Where the submissions come from: a folder per student, or an LMS export zip.

A zip holds one folder per student (as a submissions folder does), loose files named as LMS
exports name them, or both (a top-level folder with a notebook directly in it is a student's
folder; every other notebook is mapped by its name), which nbgrader's zip_collect conventions
map to students:
nbgrader's FileNameCollectorPlugin matches each file's path with a regular expression whose
named groups `student_id` and `file_id` (optionally `timestamp`) say whose file it is and
which notebook. The default expression takes everything before the notebook's name as the
student (`alice_02_backprop_step_by_step.ipynb`, `alice-02_backprop_step_by_step.ipynb`);
LMS prefixes such as `alice_12345_67890_02_...` work with --zip-regexp. Every file of the zip
is listed in OUT/collected.csv with the student and notebook it went to, or why it was not
used; a file that maps to no student or notebook is recorded there, and the others are graded.
A student id the expression gives is used only if it is one plain folder name (STUDENT_ID), and
nothing is ever written outside OUT/course/collected. Symbolic links are never followed nor
copied: a link stored in the zip is not extracted, and a student's folder that is a link is
graded as missing (autograde.inspect).
"""
import csv
import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from . import GradingError

MAX_UNZIPPED = 2 * 2**30    # bytes: a larger archive is refused (a zip bomb)
# a usable student id: one plain folder name (\Z, not $: "alice\n" is refused too)
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*\Z")


def shown(text):
    """text as one printable line (a name with control characters is shown escaped)."""
    return text if text.isprintable() else ascii(text)[1:-1]


def unusable_id(student):
    """None if student (from --zip-regexp) can name a folder in collected/, else why not."""
    if not student:
        return "the student id is empty"
    if student in (".", ".."):
        return f"the student id is {student!r}"
    if "/" in student or "\\" in student:
        return f"the student id '{shown(student)}' contains a path separator"
    if not student.isprintable():
        return f"the student id '{shown(student)}' contains a control character"
    if not STUDENT_ID.match(student):
        return (f"the student id '{shown(student)}' is not usable (letters, digits, _ . @ - "
                "only, starting with a letter or digit)")
    return None


def inside(path, folder):
    """Whether path, resolved, lies inside folder (resolved)."""
    return path.resolve().is_relative_to(folder.resolve())


def default_regexp(notebooks):
    names = "|".join(re.escape(nb) for nb in notebooks)
    return (r".*/(?P<student_id>[A-Za-z0-9][A-Za-z0-9_.@-]*?)[_-]+"
            rf"(?P<file_id>(?:{names})\.ipynb)$")


def collect(submissions, out, notebooks, zip_regexp=None):
    """[(student, folder, notes)] to grade, sorted by student; GradingError if there is none."""
    given = submissions
    if not submissions.exists():
        raise GradingError(f"submissions folder not found: {submissions}")
    if submissions.is_file():
        if not zipfile.is_zipfile(submissions):
            raise GradingError(f"{submissions} is neither a folder nor a zip file")
        submissions = unpack(submissions, out, notebooks, zip_regexp)
    # a student's folder that is a symbolic link is listed (inspect grades it as missing)
    # but never looked into
    students = sorted(d for d in submissions.iterdir() if d.is_dir() and not d.name.startswith("."))
    real = [d for d in students if not d.is_symlink()]
    if not any(p.suffix == ".ipynb" and p.is_file() and not p.is_symlink()
               for d in real for p in d.iterdir()):
        if given.is_file():
            with zipfile.ZipFile(given) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
            found = sum(n.endswith(".ipynb") for n in names)
            raise GradingError(f"no notebook of the course in {given} ({len(names)} files, "
                               f"{found} of them notebooks): expected folders "
                               "STUDENT/NOTEBOOK.ipynb or files named STUDENT_NOTEBOOK.ipynb "
                               f"(or --zip-regexp), with NOTEBOOK one of {', '.join(notebooks)}")
        raise GradingError(f"no notebooks found in {submissions}: expected STUDENT/NOTEBOOK.ipynb "
                           f"with NOTEBOOK one of {', '.join(notebooks)}")
    return [(d.name, d, []) for d in students]


def unpack(archive, out, notebooks, zip_regexp=None):
    """Extract an LMS zip into OUT/course/collected/STUDENT/NOTEBOOK.ipynb; that folder.

    Folders and loose files may be mixed: each member goes where its own layout says, and a
    member that fits neither (or is unsafe) is skipped with its reason in OUT/collected.csv."""
    from nbgrader.plugins import FileNameCollectorPlugin
    extracted, collected = out / "course" / "downloaded", out / "course" / "collected"
    log = []   # (member, student, notebook, status), one line each
    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > MAX_UNZIPPED:
                raise GradingError(f"{archive}: more than {MAX_UNZIPPED >> 30} GiB unpacked")
            if extracted.exists():
                shutil.rmtree(extracted)
            extracted.mkdir(parents=True)
            files = {}   # extracted path: member name
            for m in members:
                name, member = PurePosixPath(m.filename), shown(m.filename)
                if name.is_absolute() or ".." in name.parts or not name.parts:
                    log.append((member, "", "", "ignored: an unsafe path (absolute or with ..)"))
                    continue
                if name.parts[0] == "__MACOSX":
                    log.append((member, "", "", "ignored: macOS metadata"))
                    continue
                if stat.S_ISLNK(m.external_attr >> 16):
                    log.append((member, "", "", "ignored: a symbolic link"))
                    continue
                target = extracted.joinpath(*name.parts)
                if not inside(target, extracted):
                    log.append((member, "", "", "ignored: would be written outside the zip's "
                                                "folder"))
                    continue
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(m) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                except OSError as e:   # e.g. a file and a folder of the same name
                    log.append((member, "", "", f"ignored: could not be extracted: "
                                                f"{shown(e.strerror or str(e))}"))
                    continue
                files[target] = member
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise GradingError(f"{archive} is not a readable zip file: {e}") from None
    if collected.exists():
        shutil.rmtree(collected)
    collected.mkdir(parents=True)

    def copy(f, dest, student, notebook):
        if not inside(dest, collected):   # never, with a usable id; checked all the same
            log.append((files[f], "", "", "ignored: would be written outside collected/"))
            return
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
        except OSError as e:
            log.append((files[f], student, notebook,
                        f"ignored: could not be collected: {shown(e.strerror or str(e))}"))
            return
        log.append((files[f], student, notebook, "collected"))

    # a student's folder: a top-level folder with a notebook directly in it; all it holds is
    # collected as it is (inspect grades its notebooks and lists the rest)
    folders = {f.relative_to(extracted).parts[0] for f in files
               if len(f.relative_to(extracted).parts) == 2 and f.suffix == ".ipynb"}
    loose = []
    for f in sorted(files):
        rel = f.relative_to(extracted)
        if len(rel.parts) >= 2 and rel.parts[0] in folders:
            copy(f, collected.joinpath(*rel.parts), shown(rel.parts[0]),
                 f.stem if len(rel.parts) == 2 and f.suffix == ".ipynb" else "")
        elif f.suffix != ".ipynb":
            log.append((files[f], "", "", "ignored: not a notebook and not in a student's folder"))
        else:
            loose.append(f)
    # every other notebook: whose it is comes from its name (--zip-regexp)
    plugin = FileNameCollectorPlugin(named_regexp=zip_regexp or default_regexp(notebooks))
    chosen = {}
    for f in loose:
        rel = files[f]
        info = plugin.collect(str(f))
        if not info or "student_id" not in info or "file_id" not in info:
            log.append((rel, "", "", "ignored: the name matches no student and notebook "
                                     "(see --zip-regexp)"))
            continue
        student, notebook = info["student_id"] or "", Path(info["file_id"] or "").stem
        if problem := unusable_id(student):
            log.append((rel, "", shown(notebook), f"ignored: {problem} (see --zip-regexp)"))
            continue
        if notebook not in notebooks:
            log.append((rel, student, shown(notebook), "ignored: no such notebook in the course"))
            continue
        if student in folders and (collected / student / f"{notebook}.ipynb").exists():
            log.append((rel, student, notebook, "ignored: a second file for this student and "
                                                "notebook (the one in the student's folder is "
                                                "graded)"))
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
                chosen[key] = (f, rel, stamp)
            continue
        chosen[key] = (f, rel, stamp)
    for (student, notebook), (f, _, _) in sorted(chosen.items()):
        copy(f, collected / student / f"{notebook}.ipynb", student, notebook)
    with open(out / "collected.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["file", "student", "notebook", "status"])
        writer.writerows(sorted(log))
    return collected
