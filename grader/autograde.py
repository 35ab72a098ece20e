"""python -m grader autograde: grade a class with nbgrader, write CSVs, feedback and a report.

SUBMISSIONS is a folder with one folder per student (SUBMISSIONS/STUDENT/NOTEBOOK.ipynb,
NOTEBOOK named as in notebooks/) or an LMS export zip of loose files named after nbgrader's
zip_collect conventions (see collect.py). Every notebook of every student is graded on its
own, in its own sandboxed kernel, so a missing, malformed or crashing notebook costs only
itself. Students are graded in parallel worker processes (--jobs); with the default SQLite
gradebook each worker writes a copy of its own, and the main process alone writes each
student's grades into the course gradebook through nbgrader's Gradebook API as the student
is done (nbgrader does not support concurrent writers to one SQLite file, its issue #174);
a PostgreSQL gradebook (--db-url) takes the workers' writes directly. The workers also
compute the reference answers, one solution notebook each, before they grade.

OUT/course is the nbgrader course folder (source, submissions, gradebook, reference cache);
keep it private: it holds the solutions.
"""
import contextlib
import csv
import html
import json
import multiprocessing
import os
import re
import shutil
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from . import GradingError, config
from .collect import STUDENT_ID, collect
from .judge import cached_reference_answers, reference_cache
from .nbgrading import (autograde_notebook, copy_source, course_config, generate_source,
                        nbgrader_api, sqlite_file, write_nbgrader_config)

STATUS_FILE = ".status.json"   # in the course folder: status and reason of every graded notebook


@dataclass
class Result:
    """How one student's notebook fared: graded, or why not."""
    student: str
    notebook: str
    status: str            # graded | missing | malformed | failed | error (the grader's fault)
    reason: str = ""


@dataclass
class Submission:
    """One student's folder to grade, and what was noticed about it before grading."""
    student: str
    folder: Path
    notes: list = field(default_factory=list)


def readable(path):
    """None if path is a notebook nbgrader can read, else the reason it is not."""
    try:
        nbformat.validate(nbformat.read(str(path), as_version=4))
    except Exception as e:
        return f"not a readable notebook: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return None


def inspect(submission, notebooks, read=True):
    """{notebook: path} of the notebooks to grade, and Results for those that cannot be.

    Symbolic links are never followed: a linked notebook is not graded, a linked folder is not
    looked into, and every link is listed in the notes. read=False: notebooks are not read
    (a cluster's worker tells a malformed one)."""
    folder, sid = submission.folder, submission.student
    notes = list(submission.notes)
    if folder.is_symlink():
        return {}, [Result(sid, nb, "missing", f"the folder {folder.name} is a symbolic link: "
                           "not graded") for nb in notebooks], notes
    files, links = [], []
    for root, dirs, names in os.walk(folder, followlinks=False):
        here = Path(root)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in sorted(dirs + names):
            path = here / name
            if name.startswith("."):
                continue
            if path.is_symlink():
                links.append(path.relative_to(folder).as_posix())
            elif name in names and path.is_file():
                files.append(path)
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]   # never walked
    files.sort()
    links.sort()
    expected = {f"{nb}.ipynb" for nb in notebooks}
    found = [p for p in files if p.parent == folder and p.name in expected]
    others = [p.relative_to(folder).as_posix() for p in files if p not in found]
    stray = [o for o in others if o.endswith(".ipynb")]
    if [o for o in others if not o.endswith(".ipynb")]:
        extra = ", ".join(o for o in others if not o.endswith(".ipynb"))
        notes.append("ignored extra files: " + extra)
    if links:
        notes.append("ignored symbolic links: " + ", ".join(links))
    present, results = {}, []
    for nb in notebooks:
        path = folder / f"{nb}.ipynb"
        if path.name in links:
            results.append(Result(sid, nb, "missing", f"{nb}.ipynb is a symbolic link: "
                                  "not graded"))
        elif path not in found:
            why = f"no {nb}.ipynb in the submission"
            if stray:
                why += f" (found instead: {', '.join(stray)})"
            results.append(Result(sid, nb, "missing", why))
        elif read and (problem := readable(path)):
            results.append(Result(sid, nb, "malformed", problem))
        else:
            present[nb] = path
    return present, results, notes


def _join(*parts):
    return "; ".join(p for p in parts if p)


def grade_student(api, course, submission, notebooks, feedback=None):
    """Grade each of one student's notebooks in its own nbgrader run; a Result for each.

    With feedback (a folder), also write feedback/STUDENT/NOTEBOOK.html for every notebook."""
    sid = submission.student
    if not STUDENT_ID.match(sid):
        return [Result(sid, nb, "failed", "folder name is not a usable student id "
                       "(letters, digits, _ . @ - only)") for nb in notebooks]
    present, results, notes = inspect(submission, notebooks)
    submitted = course / "submitted" / sid / config.ASSIGNMENT
    if submitted.exists():
        shutil.rmtree(submitted)
    submitted.mkdir(parents=True)
    for path in present.values():   # only the notebooks: extra files never reach the kernel
        shutil.copy(path, submitted / path.name)
    for nb in present:
        outcome, happened = autograde_notebook(api, sid, nb)
        if happened.fault:   # the grader's failure: not scored, graded again on a re-run
            results.append(Result(sid, nb, "error", _join(happened.fault, *happened.events)))
        elif outcome["success"]:
            results.append(Result(sid, nb, "graded", _join(*happened.events)))
        else:
            results.append(Result(sid, nb, "failed",
                                  _join(*happened.events, _last_error(outcome))))
    results.sort(key=lambda r: notebooks.index(r.notebook))
    if os.environ.get(config.NO_SANDBOX_ENV):
        notes.append("graded without the sandbox (--no-sandbox)")
    for r in results:
        r.reason = _join(r.reason, *notes)
    if feedback is not None:
        write_feedback(api, course, feedback, sid, results)
    return results


def _last_error(outcome):
    lines = [ln for ln in (outcome.get("error") or outcome.get("log") or "").splitlines()
             if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    return (errors or lines or ["nbgrader failed without a message"])[-1].strip()[:300]


MATHJAX_FOLDER = "_mathjax"   # in OUT/feedback: MathJax for every page, offline
CDN_MATHJAX = re.compile(r'<script src="(https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/[^"?]+)'
                         r'\?([^"]*)">\s*</script>')


def install_mathjax(feedback: Path) -> None:
    """MathJax next to the feedback pages (OUT/feedback/_mathjax), so math renders offline."""
    import jupyter_server_mathjax
    target = feedback / MATHJAX_FOLDER
    if not (target / "MathJax.js").exists():
        shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", target,
                        dirs_exist_ok=True)


def offline_math(page: str) -> str:
    """nbgrader's feedback page with MathJax loaded from OUT/feedback/_mathjax; a page sent on
    its own (no such folder next to it) falls back to the CDN."""
    def local(m):
        fallback = f"{m.group(1)}?{m.group(2)}"
        return (f'<script src="../{MATHJAX_FOLDER}/MathJax.js?{m.group(2)}" onerror="var s='
                f"document.createElement('script');s.src='{fallback}';"
                f'document.head.appendChild(s)"></script>')
    return CDN_MATHJAX.sub(local, page)


FEEDBACK_STYLE = ("body{font-family:sans-serif;max-width:50em;margin:2em auto;color:#222;"
                  "line-height:1.5}h1{font-size:1.5em}.reason{background:#fdf3f3;"
                  "border-left:4px solid #c44e52;padding:.5em 1em}")


def write_feedback(api, course, out, sid, results):
    """OUT/feedback/STUDENT/NOTEBOOK.html: nbgrader's feedback, or a page with the reason."""
    if any(r.status == "graded" for r in results):
        api.generate_feedback(config.ASSIGNMENT, sid)
    folder = out / "feedback" / sid
    folder.mkdir(parents=True, exist_ok=True)
    for r in results:
        made = course / "feedback" / sid / config.ASSIGNMENT / f"{r.notebook}.html"
        if r.status == "graded" and made.exists():
            (folder / made.name).write_text(offline_math(made.read_text()))
        else:
            reason = html.escape(r.reason or "no feedback was generated")
            most = _max_score(api, r.notebook)
            score = f"Score: 0 / {most:g}" if most is not None else "Score: 0"
            (folder / f"{r.notebook}.html").write_text(
                f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{r.notebook}</title>"
                f"<style>{FEEDBACK_STYLE}</style></head><body>"
                f"<h1>{r.notebook}: not graded</h1><p class='reason'>{reason}</p>"
                f"<p>{score}</p></body></html>\n")


def _max_score(api, notebook):
    try:
        with Gradebook(api.coursedir.db_url, config.COURSE_ID) as gb:
            return gb.find_notebook(notebook, config.ASSIGNMENT).max_score
    except Exception:   # the notebook is not in the gradebook yet
        return None


# ---------------------------------------------------------------------------- workers

WORKERS_DIR = ".workers"   # in the course folder: the workers' gradebook copies
WORKER_POOL_TRIES = 3      # pools started in all when grading processes die


@dataclass(frozen=True)
class GradingRun:
    """What every grading process of one run is told: the course folder, its gradebook, the
    folders kernels may not read, and whether feedback pages are written."""
    course: Path
    db_url: str
    protected: tuple[str, ...]
    feedback: bool = True


@dataclass
class Worker:
    """One grading process's state: its run, and its gradebook, opened on its first student
    (own_copy: a SQLite copy of its own, nbgrader #174)."""
    run: GradingRun
    own_copy: bool
    own_db: str | None = None
    api: object = None   # nbgrader's NbGraderAPI on own_db


_worker: Worker | None = None   # this process's, set by _worker_init


def _worker_init(run, own_copy):
    """Worker process start; its gradebook is opened on its first student."""
    global _worker
    _worker = Worker(run, own_copy)


def _worker_ready():
    """A task that does nothing: submitting it makes the pool start a process now."""
    return os.getpid()


def _worker_reference(source):
    """Compute a solution's reference answers into the course's cache (see judge.py)."""
    run = _worker.run
    cached_reference_answers(Path(source),
                             course_config(run.course, run.db_url, protected=run.protected))


def _claim_gradebook(course):
    """One of the gradebook copies grade_all made, renamed so no other worker takes it."""
    for copy in sorted((course / WORKERS_DIR).glob("copy-*.db")):
        mine = copy.with_name(f"worker-{os.getpid()}.db")
        try:
            os.rename(copy, mine)   # atomic: exactly one worker wins each copy
        except FileNotFoundError:
            continue
        return f"sqlite:///{mine}"
    raise RuntimeError("no gradebook copy left for this worker")


def _worker_grade(submission, notebooks, out):
    """Grade one student: Results, and their grades to import into the course gradebook
    (None when the worker wrote there itself)."""
    w, run = _worker, _worker.run
    if w.api is None:
        w.own_db = _claim_gradebook(run.course) if w.own_copy else run.db_url
        w.api = nbgrader_api(run.course, w.own_db, protected=run.protected)
    results = grade_student(w.api, run.course, submission, notebooks,
                            out if run.feedback else None)
    grades = export_grades(w.own_db, submission.student) if w.own_copy else None
    return results, grades


def start_workers(run: GradingRun, jobs: int) -> ProcessPoolExecutor:
    """A pool of `jobs` grading processes, started now so that they load while the course is
    set up. With a SQLite gradebook each writes its own copy (nbgrader #174)."""
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init,
                               initargs=(run, bool(sqlite_file(run.db_url))))
    for _ in range(jobs):
        pool.submit(_worker_ready)
    return pool


def start_references(pool, sources):
    """Futures of the workers computing the reference answers, one solution each, the slowest
    (largest) first; None without a pool."""
    if pool is None:
        return None
    return [pool.submit(_worker_reference, str(p))
            for p in sorted(sources, key=lambda p: -p.stat().st_size)]


def heaviest_first(submissions, sources):
    """Submissions ordered by the size of the solutions of the notebooks they hand in, largest
    first, so that no long notebook is left to run alone at the end."""
    size = {p.stem: p.stat().st_size for p in sources}
    return sorted(submissions, key=lambda sub: -sum(
        n for nb, n in size.items() if (sub.folder / f"{nb}.ipynb").is_file()))


def grade_all(pool, jobs: int, run: GradingRun, sources, references, submissions, notebooks,
              out, progress: bool = True) -> list[Result]:
    """Results of every submission. With a pool (start_workers), the workers have been given
    the reference answers to compute (start_references) and then grade students, heaviest
    first; the main process imports each student's grades into the course gradebook as they
    arrive. Without, all runs here."""
    from tqdm import tqdm
    results = []
    bar = tqdm(total=len(submissions), unit="student", desc="grading", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)

    def done(sub, res):
        results.extend(res)
        bar.update()
        bar.write(f"{sub.student}: " + ", ".join(f"{r.notebook} {r.status}" for r in res),
                  file=sys.stdout)

    course, db_url = run.course, run.db_url
    if pool is None:
        cfg = course_config(course, db_url, protected=run.protected)
        for source in sources:   # a solution failing its own tests stops the run here
            cached_reference_answers(source, cfg)
        _worker_init(run, own_copy=False)
        for sub in submissions:
            done(sub, _worker_grade(sub, notebooks, out)[0])
        bar.close()
        return results
    sqlite, copies = sqlite_file(db_url), Path(course) / WORKERS_DIR
    pending, pools = heaviest_first(submissions, sources), [pool]
    with contextlib.ExitStack() as stack:
        gb = stack.enter_context(Gradebook(db_url, config.COURSE_ID)) if sqlite else None
        for attempt in range(WORKER_POOL_TRIES):
            if attempt:   # a worker died: a fresh pool grades the students it had again
                pools.append(start_workers(run, jobs))
            if sqlite:   # a copy per worker (PostgreSQL: the workers write there themselves)
                shutil.rmtree(copies, ignore_errors=True)
                copies.mkdir()
                for i in range(jobs):
                    shutil.copy(sqlite[0], copies / f"copy-{i}.db")
            # a worker that needs a reference still being computed waits for it (judge.py)
            futures = {pools[-1].submit(_worker_grade, sub, notebooks, out): sub
                       for sub in pending}
            for ref in references if attempt == 0 else ():
                ref.result()   # a solution failing its own tests stops the run (GradingError)
            lost = []
            for future in as_completed(futures):
                sub = futures[future]
                try:
                    res, grades = future.result()
                except BrokenProcessPool:   # not this student's doing: graded again
                    lost.append(sub)
                    continue
                except Exception as e:   # the grader failed on this student only
                    res, grades = [Result(sub.student, nb, "error",
                                          f"grading process failed: {type(e).__name__}: {e}")
                                   for nb in notebooks], None
                if grades:
                    import_grades(gb, grades)
                done(sub, res)
            pools[-1].shutdown(wait=False, cancel_futures=True)
            pending = lost
            if not pending:
                break
            bar.write(f"a grading process died; grading {len(pending)} students again",
                      file=sys.stderr)
        for sub in pending:   # the pool kept dying: the grader's fault, listed for a re-run
            done(sub, [Result(sub.student, nb, "error", f"the grading process died "
                              f"{WORKER_POOL_TRIES} times while grading it (--only-errors "
                              "grades it again)") for nb in notebooks])
    shutil.rmtree(copies, ignore_errors=True)
    bar.close()
    return results


def export_grades(db_url, sid):
    """The autograder's scores and comments of one student in a gradebook, as plain data."""
    with Gradebook(db_url, config.COURSE_ID) as gb:
        try:
            submission = gb.find_submission(config.ASSIGNMENT, sid)
        except MissingEntry:
            return None
        student = gb.find_student(sid)
        return {"student": sid, "first_name": student.first_name,
                "last_name": student.last_name, "email": student.email,
                "timestamp": submission.timestamp,
                "notebooks": {nb.name: {"grades": {g.name: g.auto_score for g in nb.grades},
                                        "comments": {c.name: c.auto_comment
                                                     for c in nb.comments}}
                              for nb in submission.notebooks}}


def import_grades(gb, grades):
    """Write export_grades' data into the open Gradebook gb (manual scores there are kept)."""
    sid = grades["student"]
    gb.update_or_create_student(sid, first_name=grades["first_name"],
                                last_name=grades["last_name"], email=grades["email"])
    gb.update_or_create_submission(config.ASSIGNMENT, sid, timestamp=grades["timestamp"])
    for nb, data in grades["notebooks"].items():
        notebook = gb.find_submission_notebook(nb, config.ASSIGNMENT, sid)
        targets = {g.name: g for g in notebook.grades}
        for name, score in data["grades"].items():
            targets[name].auto_score = score
            targets[name].needs_manual_grade = targets[name].manual_score is not None \
                or score is None
        comments = {c.name: c for c in notebook.comments}
        for name, comment in data["comments"].items():
            comments[name].auto_comment = comment
    gb.db.commit()


# ---------------------------------------------------------------------------- outputs

def grade_cells(source):
    """Grade cell ids of a source notebook, in notebook order."""
    nb = nbformat.read(str(source), as_version=4)
    return [c.metadata.nbgrader["grade_id"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")]


def score_rows(db_url, results, cells):
    """One row per graded cell: student, notebook, cell, score, max_score."""
    rows = []
    with Gradebook(db_url, config.COURSE_ID) as gb:
        max_scores = {nb: {c.name: c.max_score
                           for c in gb.find_notebook(nb, config.ASSIGNMENT).grade_cells}
                      for nb in cells}
        for r in results:
            if r.notebook not in cells:
                continue
            grades = {}
            if r.status == "graded":
                try:
                    grades = {g.name: g for g in gb.find_submission_notebook(
                        r.notebook, config.ASSIGNMENT, r.student).grades}
                except MissingEntry:
                    pass
            for cell in cells[r.notebook]:
                grade, score = grades.get(cell), 0.0
                if grade is not None and (grade.auto_score, grade.manual_score) == (None, None):
                    score = ""   # waits for manual grading
                elif grade is not None:
                    score = grade.score
                rows.append({"student": r.student, "notebook": r.notebook, "cell": cell,
                             "score": score, "max_score": max_scores[r.notebook][cell]})
    return rows


def write_csv(path, rows, fields):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def summarise(results, rows):
    """One row per student and notebook: score, max_score, status, reason."""
    by_key = {}
    for x in rows:
        by_key.setdefault((x["student"], x["notebook"]), []).append(x)
    summary = []
    for r in results:
        mine = by_key.get((r.student, r.notebook), [])
        summary.append({"student": r.student, "notebook": r.notebook,
                        "score": sum(float(x["score"] or 0) for x in mine),
                        "max_score": sum(x["max_score"] for x in mine),
                        "status": r.status, "reason": r.reason})
    return summary


def _load_status(course):
    path = course / STATUS_FILE
    if not path.exists():
        return {}
    return {(d["student"], d["notebook"]): Result(**d) for d in json.loads(path.read_text())}


def _save_status(course, known):
    data = [asdict(known[k]) for k in sorted(known)]
    (course / STATUS_FILE).write_text(json.dumps(data, indent=1, sort_keys=True))


def run_summary(out: Path, results: list, feedback: bool = True) -> str:
    """What a run tells the instructor at its end: what was graded, where the files are, and
    what still waits for them (written answers to grade by hand, the grader's own faults)."""
    counts = Counter(r.status for r in results)
    with open(out / "grades.csv", newline="") as f:
        waiting = {(row["student"], row["notebook"]) for row in csv.DictReader(f)
                   if row["score"] == ""}
    lines = [f"graded {len({r.student for r in results})} students, {len(results)} notebooks: "
             + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
             f"  grades   {out / 'grades.csv'}", f"  summary  {out / 'summary.csv'}",
             f"  report   {out / 'report.html'}",
             f"  similar  {out / 'similarity.csv'} (pairs of students flagged for a look)"]
    if feedback:
        lines.append(f"  feedback {out / 'feedback'}/STUDENT/NOTEBOOK.html")
    if waiting:
        lines.append(f"{len(waiting)} notebooks wait for manual grading (written answers; "
                     "blank in grades.csv until then): grade them in the formgrader, see README")
    if counts.get("error"):
        lines.append(f"{counts['error']} notebooks met a fault of the grader (status error, "
                     "no score): grade them again with --only-errors")
    return "\n".join(lines)


def autograde(submissions, out, db_url=None, jobs=None, zip_regexp=None, progress=True,
              feedback=True, only_errors=False, cluster=None):
    """Grade every submission; write OUT/grades.csv, summary.csv, similarity.csv, feedback/
    and report.html.

    only_errors: grade only the students with a notebook of status `error` (a grader fault).
    The CSVs and the report cover every student graded into OUT so far: a second batch adds
    its students (a student graded again replaces their earlier result).
    cluster: a Dask scheduler's address (tcp://HOST:PORT) or local:N; the students are then
    graded there (grader/cluster.py) and this process alone writes OUT and the gradebook."""
    notebooks = [p.stem for p in sorted(config.SOLUTIONS.glob("*.ipynb"))]
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    course = out / "course"
    course.mkdir(exist_ok=True)
    students = collect(Path(submissions), out, notebooks, zip_regexp)
    if feedback:
        install_mathjax(out / "feedback")
    submissions = [Submission(s, folder, notes) for s, folder, notes in students]
    if only_errors:   # a re-run after grader faults: only the students they hit
        failed = {r.student for r in _load_status(course).values() if r.status == "error"}
        submissions = [s for s in submissions if s.student in failed]
        if not submissions:
            raise GradingError(f"no notebook in {out} has status error: nothing to re-run")
    protected = [str(out), str(reference_cache(course).resolve())]
    given_db = db_url
    db_url = db_url or nbgrader_api(course).coursedir.db_url
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(submissions)))
    run = GradingRun(course, db_url, tuple(protected), feedback)
    pool = start_workers(run, jobs) if jobs > 1 and not cluster else None
    try:
        if cluster:   # the work goes to a Dask cluster
            from .cluster import grade_on_cluster
            sources, results = grade_on_cluster(cluster, course, db_url, given_db, protected,
                                                submissions, notebooks, out, progress, feedback)
        else:
            sources = copy_source(course)
            references = start_references(pool, sources)   # while nbgrader generates the source
            generate_source(course, nbgrader_api(course, given_db, protected=protected))
            write_nbgrader_config(course, given_db, protected)
            results = grade_all(pool, jobs, run, sources, references, submissions, notebooks,
                                out, progress)
    finally:
        if pool is not None:   # idle workers exit while the outputs are written
            pool.shutdown(wait=False, cancel_futures=True)
    known = _load_status(course)
    known.update({(r.student, r.notebook): r for r in results})
    _save_status(course, known)
    everyone = [known[k] for k in sorted(known)]
    cells = {p.stem: grade_cells(p) for p in sources}
    rows = score_rows(db_url, everyone, cells)
    summary = summarise(everyone, rows)
    write_csv(out / "grades.csv", rows, ["student", "notebook", "cell", "score", "max_score"])
    write_csv(out / "summary.csv", summary,
              ["student", "notebook", "score", "max_score", "status", "reason"])
    from .report import write_report
    from .similarity import write_similarity   # flags for the instructor, never a score
    similar = write_similarity(out / "similarity.csv", course, everyone, notebooks)
    write_report(out / "report.html", rows, summary, cells, similar)
    return sorted(results, key=lambda r: (r.student, notebooks.index(r.notebook)))
