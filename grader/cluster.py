"""autograde --cluster: grade a class on a Dask cluster (`tcp://HOST:8786`, or `local:N`).

What travels where. The client (the instructor's `python -m grader autograde`) alone reads
SUBMISSIONS and writes OUT, the course gradebook (SQLite in OUT/course, or --db-url) included.
Workers need no shared file system and no database:

* the course reaches each worker once. A worker plugin, which the scheduler keeps and gives
  to every worker that joins (one restarted after a crash too), carries the run's settings
  (the fingerprint of the grader and its libraries, the time limits, --no-sandbox), the
  source notebooks (solutions and hidden tests) and the names file. The release, the
  gradebook's assignment (an SQLite copy without any student) and the reference answers are
  the result of one small task that every grading task depends on: each worker fetches it
  once, from a peer, and keeps it while the run lasts.
* each student is one task whose arguments are their notebooks, as bytes (only the notebooks
  of the course: extra files never leave the client). Back come the Results, the scores and
  comments (the client imports them into the course gradebook), the feedback pages and the
  autograded notebooks. Reference answers the client's cache lacks are computed by tasks too,
  once each, and kept in the client's cache.

A worker grades one student at a time, in the same bubblewrap sandbox as local grading
(grader.sandbox); a worker where bubblewrap cannot run, or whose grader or libraries differ
from the client's, refuses to grade (unless the client was given --no-sandbox, which the
workers then follow). A worker lost mid-run (killed, machine gone): the scheduler gives its
students to other workers. The client takes one result per student, from a finished task
only, so nobody is lost, graded twice or scored from a half-finished run; a student whose
task was on more workers that died than Dask allows (`allowed-failures`, 3) gets status
error, graded again with --only-errors. OUT/course/.cluster-run.csv lists which worker graded
each student, in how many seconds, and the CPU seconds of the worker process itself (the
nbgrader pipeline; the sandboxed kernels' CPU is not seen from there).
"""
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
import zlib
from concurrent.futures import CancelledError, ThreadPoolExecutor
from pathlib import Path
from unittest import mock

from distributed import Client, WorkerPlugin

from . import GradingError, config

LOCAL = re.compile(r"local:(\d+)")
REMOTE = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?")
DEFAULT_PORT = 8786        # the port `dask scheduler` listens on unless told otherwise
CONNECT_TIMEOUT = 15       # seconds to reach a scheduler before giving up
STUDENT_TABLES = {"student", "submitted_assignment", "submitted_notebook", "grade", "comment"}
REFUSALS = 3               # workers a student's task may meet that refuse to grade
RUN_LOG = ".cluster-run.csv"   # in the course folder: who graded each student, and its cost
NO_SANDBOX_NOTE = "graded without the sandbox (--no-sandbox)"


class WorkerRefused(GradingError):
    """A worker that cannot grade as the client would: no sandbox, or another grader."""

    def __init__(self, address, why):
        super().__init__(f"the Dask worker at {address} refuses to grade: {why}")
        self.address, self.why = address, why

    def __reduce__(self):
        return WorkerRefused, (self.address, self.why)


def parse_cluster(value: str) -> tuple[str, object]:
    """("local", N) for `local:N`, ("remote", "tcp://HOST:PORT") for a scheduler's address;
    GradingError for anything else."""
    if m := LOCAL.fullmatch(value):
        if int(m.group(1)) < 1:
            raise GradingError(f"--cluster {value}: local:N needs at least 1 worker")
        return "local", int(m.group(1))
    if m := REMOTE.fullmatch(value):
        if m.group(3) is None:
            return "remote", f"{value}:{DEFAULT_PORT}"
        if not 0 < int(m.group(3)) < 65536:
            raise GradingError(f"--cluster {value}: {m.group(3)} is not a port number")
        return "remote", value
    raise GradingError(f"--cluster {value!r}: give the address of a running Dask scheduler "
                       "(tcp://HOST:PORT) or local:N (N worker processes on this machine)")


def _first_line(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def open_client(spec: tuple[str, object]) -> Client:
    """A distributed.Client on the cluster parse_cluster described (for `local`, on a
    LocalCluster started here; close_client shuts both down). GradingError if the scheduler
    cannot be reached."""
    import dask
    from distributed import LocalCluster
    kind, where = spec
    cluster = None
    try:
        if kind == "local":
            # each worker takes the next student only when it is free (no student waits on
            # a busy worker while another is idle)
            with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
                cluster = LocalCluster(n_workers=where, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", scheduler_port=0,
                                       dashboard_address=None, silence_logs=logging.ERROR,
                                       # its HTTP routes on a free port, not 8787
                                       scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
            return Client(cluster)
        return Client(where, timeout=CONNECT_TIMEOUT)
    except Exception as e:
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
        what = "start a local Dask cluster" if kind == "local" else \
            f"reach the Dask scheduler at {where}"
        raise GradingError(f"cannot {what}: {_first_line(e)}") from None


def close_client(client: Client) -> None:
    """Close a client of open_client, and the LocalCluster it started."""
    cluster = getattr(client, "cluster", None)
    with contextlib.suppress(Exception):
        client.close()
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close()


# ---------------------------------------------------------------------------- the worker side

_RUNS = {}                  # run id -> the course of that run on this worker
_LOCK = threading.Lock()    # one student at a time per process (nbgrader is not thread-safe)


def fingerprint() -> dict:
    """What decides a score besides the submission: the code of the course library and the
    grader, and the versions of the libraries it grades with. The client and every worker must
    agree on all of it."""
    from importlib.metadata import version

    from .sandbox import library_folders
    code = hashlib.sha256()
    for here in library_folders():
        for path in sorted(here.rglob("*.py")):
            code.update(f"{here.name}/{path.relative_to(here).as_posix()}".encode() + b"\0")
            code.update(hashlib.sha256(path.read_bytes()).digest())
    return {"grader": code.hexdigest()[:16],
            "python": ".".join(platform.python_version_tuple()[:2]),
            **{name: version(name) for name in ("torch", "numpy", "nbgrader", "nbclient",
                                                "ipykernel")}}


def refusal(settings: dict) -> str | None:
    """None if this process may grade with the run's settings, else why not (one line)."""
    from .sandbox import unavailable
    mine, theirs = fingerprint(), settings["fingerprint"]
    differ = [f"{k} {mine.get(k)} here, {v} on the client" for k, v in theirs.items()
              if mine.get(k) != v]
    if differ:
        return ("its grader or libraries are not the client's (" + "; ".join(differ) +
                "): install the same requirements and grader on the workers")
    if not settings["no_sandbox"] and (why := unavailable()):
        return (f"{why}; grading needs the sandbox around every kernel (the client's "
                "--no-sandbox grades without it, with weaker isolation)")
    return None


class CoursePlugin(WorkerPlugin):
    """The course of one run, installed on every worker of the cluster, present and future."""

    def __init__(self, run: str, settings: dict, files: dict):
        self.run, self.settings, self.files = run, settings, files
        self.name = f"makemore-{run}"

    async def setup(self, worker):
        """Check that this worker may grade, then write the course into its local folder."""
        await asyncio.to_thread(self._install, worker.address, worker.local_directory)

    def _install(self, address, local_directory):
        _RUNS.pop(self.run, None)
        if why := refusal(self.settings):
            _RUNS[self.run] = {"refused": why}
            logging.getLogger("distributed.worker").error("makemore grading: this worker "
                                                          "refuses to grade: %s", why)
            raise WorkerRefused(address, why)
        root = Path(tempfile.mkdtemp(prefix=f"makemore-{self.run}-", dir=local_directory))
        for name, data in self.files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(zlib.decompress(data))
        _RUNS[self.run] = {"root": root, "settings": self.settings}
        from . import autograde, nbgrading  # noqa: F401  (loaded now, not by the first student)

    def teardown(self, worker):
        """The run is over: its course leaves the worker."""
        state = _RUNS.pop(self.run, None)
        if state and "root" in state:
            shutil.rmtree(state["root"], ignore_errors=True)


def _state(run):
    from distributed import get_worker
    state = _RUNS.get(run)
    if state is None:
        raise WorkerRefused(get_worker().address, "the course was not installed on it (its "
                                                  "worker plugin did not run)")
    if "refused" in state:
        raise WorkerRefused(get_worker().address, state["refused"])
    return state


@contextlib.contextmanager
def _environment(state):
    """The run's settings as the grader reads them (environment variables), for one task."""
    s = state["settings"]
    values = {config.NAMES_ENV: str(state["root"] / "data" / s["names"]),
              "MAKEMORE_CELL_TIMEOUT": str(s["cell_timeout"]),
              "MAKEMORE_NOTEBOOK_TIMEOUT": str(s["notebook_timeout"]),
              config.NO_SANDBOX_ENV: "1" if s["no_sandbox"] else None,
              config.REFERENCE_CACHE_ENV: None}   # the references come with the course
    with mock.patch.dict(os.environ):   # restored as it was afterwards
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield


def _course_config(state, db_url=None, references=None):
    from .nbgrading import course_config
    s = state["settings"]
    cfg = course_config(state["root"] / "course", db_url, references=references,
                        protected=[str(state["root"])])
    cfg.Execute.timeout = s["cell_timeout"]
    cfg.GuardedExecute.notebook_timeout = s["notebook_timeout"]
    return cfg




def reference_task(run: str, notebook: str) -> dict:
    """The reference answers of one solution notebook of the run, computed on this worker."""
    from .judge import reference_answers
    state = _state(run)
    with _LOCK, _environment(state):
        source = state["root"] / "course" / "source" / config.ASSIGNMENT / f"{notebook}.ipynb"
        return reference_answers(source, _course_config(state))


def course_task(release: dict, cached: dict, computed: dict) -> dict:
    """What every grading task needs besides the plugin: the release and the gradebook's
    assignment (files, compressed) and every notebook's reference answers."""
    return {"release": release, "references": {**cached, **computed}}


def _install_course(state, course):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    root = state["root"] / "course"
    for name, data in course["release"].items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(zlib.decompress(data))
    state["db_url"] = f"sqlite:///{root / 'gradebook.db'}"
    bin_dir = str(Path(sys.executable).parent)   # nbgrader runs `alembic` from beside Python
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    cfg = _course_config(state, state["db_url"], course["references"])
    state["api"] = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)


def grade_task(run: str, payload: dict, course: dict) -> dict:
    """Grade one student on this worker: their notebooks arrive as bytes, and everything the
    client writes goes back (Results, gradebook entries, feedback, autograded notebooks)."""
    from distributed import get_worker
    from .autograde import Submission, export_grades, grade_student
    state = _state(run)
    with _LOCK, _environment(state):
        if "api" not in state:
            _install_course(state, course)
        start, began = time.process_time(), time.perf_counter()
        sid, root = payload["student"], state["root"]
        incoming, out, course_dir = root / "incoming" / sid, root / "out", root / "course"
        made = [course_dir / d / sid for d in ("submitted", "autograded", "feedback")]
        for folder in (incoming, out / "feedback" / sid, *made):
            shutil.rmtree(folder, ignore_errors=True)
        incoming.mkdir(parents=True)
        for name, data in payload["files"].items():
            (incoming / name).write_bytes(data)
        try:
            results = grade_student(state["api"], course_dir,
                                    Submission(sid, incoming, list(payload["notes"])),
                                    payload["notebooks"],
                                    out if payload["feedback"] else None)
            graded = course_dir / "autograded" / sid / config.ASSIGNMENT
            generated = course_dir / "feedback" / sid / config.ASSIGNMENT
            return {"results": results, "grades": export_grades(state["db_url"], sid),
                    "feedback": _files(out / "feedback" / sid),
                    "generated": _files(generated), "autograded": _files(graded),
                    "worker": get_worker().address, "seconds": time.perf_counter() - began,
                    "cpu": time.process_time() - start}
        finally:
            for folder in (incoming, out / "feedback" / sid, *made):
                shutil.rmtree(folder, ignore_errors=True)


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()} if folder.is_dir() else {}


# ---------------------------------------------------------------------------- the client side

def gradebook_template(db_url: str) -> bytes:
    """An SQLite gradebook holding the course's assignment (notebooks, cells) and no student,
    copied from the course gradebook at db_url (SQLite or PostgreSQL)."""
    from nbgrader.api import Base
    from sqlalchemy import create_engine, text
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gradebook.db"
        source, target = create_engine(db_url), create_engine(f"sqlite:///{path}")
        try:
            Base.metadata.create_all(target)
            with source.connect() as src, target.begin() as dst:
                for table in Base.metadata.sorted_tables:
                    if table.name not in STUDENT_TABLES:
                        rows = [dict(r) for r in src.execute(table.select()).mappings()]
                        if rows:
                            dst.execute(table.insert(), rows)
                version = src.execute(text("SELECT version_num FROM alembic_version")).scalar()
                dst.execute(text("CREATE TABLE alembic_version "
                                 "(version_num VARCHAR(32) NOT NULL)"))
                dst.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": version})
        finally:
            source.dispose()
            target.dispose()
        return path.read_bytes()


def _packed(root, folders):
    return {p.relative_to(root).as_posix(): zlib.compress(p.read_bytes(), 6)
            for folder in folders for p in sorted((root / folder).rglob("*")) if p.is_file()}


class ClusterGrading:
    """One autograde run on a cluster, from the client: install the course on the workers
    (install), then grade the students there (grade)."""

    def __init__(self, client, course: Path):
        self.client, self.course = client, Path(course)
        self.run = uuid.uuid4().hex[:12]
        self.plugin = None
        self.computed = {}   # notebook -> future of its reference answers

    def install(self, sources: list, needed: set):
        """Give every worker the course's sources and settings, and start computing the
        reference answers of the notebooks in `needed` that the client's cache lacks."""
        from .judge import reference_cache
        names = config.names_path()
        settings = {"fingerprint": fingerprint(), "no_sandbox": bool(os.environ.get(
                    config.NO_SANDBOX_ENV)), "cell_timeout": config.CELL_TIMEOUT,
                    "notebook_timeout": config.NOTEBOOK_TIMEOUT, "names": names.name}
        files = {f"course/{k}": v for k, v in _packed(self.course, ["source"]).items()}
        files[f"data/{names.name}"] = zlib.compress(names.read_bytes(), 6)
        self.plugin = CoursePlugin(self.run, settings, files)
        try:
            self.client.register_plugin(self.plugin, name=self.plugin.name)
        except GradingError:
            raise
        except Exception as e:   # e.g. a worker without the grader package
            raise GradingError(f"the Dask workers cannot take the course: {type(e).__name__}: "
                               f"{_first_line(e)}") from None
        self.cached, cache = {}, reference_cache(self.course)
        for source in sorted(sources, key=lambda p: -p.stat().st_size):   # the longest first
            if source.stem not in needed:
                continue
            path = cache / f"{source.stem}-{_reference_key(source)}.json"
            if path.exists():
                self.cached[source.stem] = json.loads(path.read_text())
            else:
                self.computed[source.stem] = self.client.submit(
                    reference_task, self.run, source.stem, pure=False, priority=100,
                    key=f"makemore-reference-{source.stem}-{self.run}")

    def _keep_references(self, references, sources):
        """Write the reference answers computed on the cluster into the client's cache."""
        from .judge import reference_cache
        cache = reference_cache(self.course)
        cache.mkdir(parents=True, exist_ok=True)
        for source in sources:
            if source.stem in self.computed:
                path = cache / f"{source.stem}-{_reference_key(source)}.json"
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(references[source.stem], sort_keys=True))
                os.replace(tmp, path)

    def grade(self, db_url: str, sources: list, submissions: list, notebooks: list, out: Path,
              progress: bool = True, feedback: bool = True) -> list:
        """Results of every submission, graded on the cluster; the client imports each
        student's grades into the gradebook at db_url and writes their files as they come."""
        from nbgrader.api import Gradebook
        from tqdm import tqdm
        from .autograde import heaviest_first
        from .nbgrading import nbgrader_api
        self.api = nbgrader_api(self.course, db_url)   # the reason pages' maximum scores
        release = _packed(self.course, ["release"])
        release["gradebook.db"] = zlib.compress(gradebook_template(db_url), 6)
        course = self.client.submit(course_task, release, self.cached, self.computed,
                                    pure=False, key=f"makemore-course-{self.run}")
        results, log = [], []
        bar = tqdm(total=len(submissions), unit="student", desc="grading", file=sys.stderr,
                   disable=not progress, dynamic_ncols=True)

        def done(sub, res):
            res.sort(key=lambda r: notebooks.index(r.notebook))
            results.extend(res)
            bar.update()
            bar.write(f"{sub.student}: " + ", ".join(f"{r.notebook} {r.status}" for r in res),
                      file=sys.stdout)

        if not self.client.scheduler_info().get("workers"):
            bar.write("no Dask worker is connected yet: grading starts when one joins",
                      file=sys.stderr)
        with Gradebook(db_url, config.COURSE_ID) as gb, _Watch(self, bar) as watch:
            queue = heaviest_first(submissions, sources)[::-1]   # pop() takes the heaviest
            flying = {}

            def submit(sub, present, own, refusals=0):
                payload = self._payload(sub, present, feedback)
                future = self.client.submit(grade_task, self.run, payload, course, pure=False,
                                            key=f"makemore-grade-{sub.student}-{self.run}-"
                                                f"{refusals}", priority=len(queue))
                flying[future] = (sub, present, own, refusals)
                watch.add(future)

            def top_up():   # a few students per worker thread in flight, prepared as sent
                while queue and len(flying) < max(4, 2 * watch.threads):
                    sub = queue.pop()
                    present, own = self._prepare(sub, notebooks, out, feedback)
                    if present:
                        submit(sub, present, own)
                    else:   # nothing to grade: no task
                        done(sub, own)

            top_up()
            try:
                references = course.result()["references"]   # a failing solution stops here
            except GradingError:
                raise
            except Exception as e:
                raise GradingError(f"the course could not be set up on the cluster: "
                                   f"{_first_line(e)}") from None
            self._keep_references(references, sources)
            while flying:
                future = watch.next()
                sub, present, own, refusals = flying.pop(future)
                try:
                    reply = future.result()
                except WorkerRefused as e:
                    bar.write(f"{e}; it is retired and its students go to other workers",
                              file=sys.stderr)
                    with contextlib.suppress(Exception):
                        self.client.retire_workers(workers=[e.address], close_workers=True)
                    if refusals + 1 < REFUSALS:
                        submit(sub, present, own, refusals + 1)
                        continue
                    reply = _failed(sub.student, present,
                                    f"{REFUSALS} Dask workers refused to grade it (last: "
                                    f"{e.why}; --only-errors grades it again)")
                except GradingError:
                    raise
                except Exception as e:
                    reply = _failed(sub.student, present, _why_failed(e))
                done(sub, self._store(gb, sub, reply, own, out, feedback))
                log.append({"student": sub.student, "notebooks": len(present),
                            "worker": reply.get("worker", ""),
                            "seconds": round(reply.get("seconds", 0), 3),
                            "worker_cpu_seconds": round(reply.get("cpu", 0), 3)})
                top_up()
        bar.close()
        from .autograde import write_csv
        write_csv(self.course / RUN_LOG, log, ["student", "notebooks", "worker", "seconds",
                                               "worker_cpu_seconds"])
        return results

    def _prepare(self, sub, notebooks, out, feedback):
        """The student's notebooks to send ({notebook: path}), and Results for the rest (a
        missing notebook, a bad student id), noted as grade_student notes them; the notebooks
        are copied into OUT/course/submitted as local grading does."""
        from .autograde import Result, _join, inspect, write_feedback
        from .collect import STUDENT_ID
        sid = sub.student
        if not STUDENT_ID.match(sid):
            return {}, [Result(sid, nb, "failed", "folder name is not a usable student id "
                               "(letters, digits, _ . @ - only)") for nb in notebooks]
        present, own, notes = inspect(sub, notebooks, read=False)   # the worker reads them
        submitted = self.course / "submitted" / sid / config.ASSIGNMENT
        if submitted.exists():
            shutil.rmtree(submitted)
        submitted.mkdir(parents=True)
        for path in present.values():
            shutil.copy(path, submitted / path.name)
        sub.notes = notes   # the worker adds them to its Results
        if os.environ.get(config.NO_SANDBOX_ENV):
            notes = [*notes, NO_SANDBOX_NOTE]
        for r in own:
            r.reason = _join(r.reason, *notes)
        if feedback:
            write_feedback(self.api, self.course, out, sid, own)
        return {nb: present[nb] for nb in notebooks if nb in present}, own

    def _payload(self, sub, present, feedback):
        submitted = self.course / "submitted" / sub.student / config.ASSIGNMENT
        return {"student": sub.student, "notes": list(sub.notes), "notebooks": list(present),
                "feedback": feedback,
                "files": {p.name: (submitted / p.name).read_bytes() for p in present.values()}}

    def _store(self, gb, sub, reply, own, out, feedback):
        """Write what a worker sent back for one student; the student's Results."""
        from .autograde import import_grades
        sid = sub.student
        for folder, files in ((self.course / "autograded" / sid / config.ASSIGNMENT,
                               reply.get("autograded")),
                              (self.course / "feedback" / sid / config.ASSIGNMENT,
                               reply.get("generated")),
                              (out / "feedback" / sid, reply.get("feedback") if feedback else {})):
            for name, data in (files or {}).items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
        for r in reply["results"]:   # as locally, an unreadable notebook is not kept
            if r.status == "malformed":
                (self.course / "submitted" / sid / config.ASSIGNMENT /
                 f"{r.notebook}.ipynb").unlink(missing_ok=True)
        if grades := reply.get("grades"):   # as locally: missing and unreadable notebooks
            import_grades(gb, grades)        # included (nbgrader scores them 0, no manual grade)
        if feedback and not reply.get("feedback"):   # the grader failed: say so
            from .autograde import write_feedback
            write_feedback(self.api, self.course, out, sid, reply["results"])
        return [*reply["results"], *own]

    def close(self):
        """The course leaves the workers."""
        if self.plugin is not None:
            with contextlib.suppress(Exception):
                self.client.unregister_worker_plugin(self.plugin.name)


def _reference_key(source):
    from .judge import reference_key
    return reference_key(source)


def _failed(sid, present, why):
    from .autograde import Result
    return {"results": [Result(sid, nb, "error", why) for nb in present], "grades": None}


def _why_failed(e):
    from distributed import KilledWorker
    if isinstance(e, KilledWorker):
        return ("the grading process died on every worker that took it (Dask's "
                "allowed-failures; --only-errors grades it again)")
    if isinstance(e, CancelledError):
        return "the cluster lost the task (--only-errors grades it again)"
    return f"grading process failed: {type(e).__name__}: {_first_line(e)}"


class _Watch:
    """The run's futures as they finish, and the cluster as the client sees it: how many
    worker threads it has (how many students to keep in flight), and which workers left
    while grading students (graded again elsewhere, as Dask reschedules them)."""

    def __init__(self, grading, bar):
        from distributed import as_completed
        self.grading, self.bar = grading, bar
        self.finished = as_completed()
        self.workers = grading.client.nthreads()   # known before any student is sent
        self.threads = max(1, sum(self.workers.values()))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)

    def add(self, future):
        self.finished.add(future)

    def next(self):
        return next(self.finished)

    def _lost(self, worker):
        """The run's students the scheduler took back from a worker it removed."""
        mark = f"-{self.grading.run}-"
        for _, event in reversed(self.grading.client.get_events(worker)):
            if isinstance(event, dict) and event.get("action") == "remove-worker":
                return [k for k in event.get("processing-tasks", ())
                        if str(k).startswith("makemore-grade-") and mark in str(k)]
        return []

    def _watch(self):
        client = self.grading.client
        while not self.stop.wait(0.5):
            try:
                now = client.nthreads()
                for worker in self.workers.keys() - now.keys():
                    if lost := self._lost(worker):
                        self.bar.write(f"a grading process died or left (Dask worker "
                                       f"{worker}): grading {len(lost)} students again",
                                       file=sys.stderr)
            except Exception:
                continue
            self.workers, self.threads = now, max(1, sum(now.values()))


def grade_on_cluster(cluster, course: Path, db_url: str, given_db, protected: list,
                     submissions: list, notebooks: list, out: Path, progress: bool = True,
                     feedback: bool = True) -> tuple[list, list]:
    """autograde's course set-up and grading with the work on a Dask cluster: (the course's
    source notebooks, the Results of every submission). cluster: a --cluster value, or a
    distributed.Client already connected (e.g. to a Dask Gateway cluster; left open)."""
    from .nbgrading import copy_source, generate_source, nbgrader_api, write_nbgrader_config
    given = not isinstance(cluster, str)
    with ThreadPoolExecutor(1) as starting:   # the cluster starts while the course is set up
        connecting = starting.submit(lambda: cluster if given else
                                     open_client(parse_cluster(cluster)))
        try:
            sources = copy_source(course)
        finally:
            client = connecting.result()
    try:
        grading = ClusterGrading(client, course)
        try:
            needed = {nb for sub in submissions for nb in notebooks
                      if (sub.folder / f"{nb}.ipynb").is_file()}
            grading.install(sources, needed)   # the workers compute references meanwhile
            generate_source(course, nbgrader_api(course, given_db, protected=protected))
            write_nbgrader_config(course, given_db, protected)
            results = grading.grade(db_url, sources, submissions, notebooks, out, progress,
                                    feedback)
        finally:
            grading.close()
    finally:
        if not given:
            close_client(client)
    return sources, results
