"""Grading on a Dask cluster (`autograde --cluster`): the same scores as local grading, on a
local cluster and on a scheduler and workers started by hand that cannot see the submissions,
the output folder or the repository; a worker lost mid-run costs nobody anything; every bad
--cluster value is a one-line error."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nbgrader.api import Gradebook, MissingEntry

from conftest import CRAFTED_TIMEOUT, REPO, grader, read_csv
from crafted import CASES, STAGE2, Case, graded_cells, write_case
from postgres import postgres_server
from test_worker_death import children, command

ENV = {"MAKEMORE_CELL_TIMEOUT": CRAFTED_TIMEOUT}
# a right answer, a wrong one, the untouched release, a malformed file: each graded, or not,
# as locally
CLASS = [c for c in CASES if c.notebook == STAGE2
         and c.student in ("solution", "one_wrong", "release", "broken_json")]
VENV = Path(sys.prefix).resolve()


def write_class(root, cases):
    for case in cases:
        write_case(case, root)
    return root


def text(page):
    """What a feedback page says, without its markup."""
    return " ".join(re.sub(r"<[^>]*>", " ", page.read_text()).split())


def rows(out, students=None):
    return [r for r in read_csv(out / "grades.csv") if students is None or r["student"] in students]


@pytest.fixture(scope="module")
def local_and_cluster(tmp_path_factory):
    """The crafted class graded by the local worker pool and by `--cluster local:2`."""
    root = tmp_path_factory.mktemp("cluster")
    subs = write_class(root / "subs", CLASS)
    runs = {}
    for name, how in (("local", ["--jobs", "2"]), ("cluster", ["--cluster", "local:2"])):
        runs[name] = grader("autograde", subs, "--out", root / name, *how, env_extra=ENV)
        assert runs[name].returncode == 0, runs[name].stderr[-3000:]
    return root, runs


def test_local_cluster_grades_as_local_grading(local_and_cluster):
    root, runs = local_and_cluster
    local, cluster = root / "local", root / "cluster"
    assert (cluster / "grades.csv").read_text() == (local / "grades.csv").read_text()
    assert (cluster / "summary.csv").read_text() == (local / "summary.csv").read_text()
    statuses = {r["student"]: r["status"] for r in read_csv(cluster / "summary.csv")
                if r["notebook"] == STAGE2}
    assert statuses == {"solution": "graded", "one_wrong": "graded", "release": "graded",
                        "broken_json": "malformed"}
    pages = sorted(p.relative_to(local / "feedback") for p in (local / "feedback").rglob("*.html"))
    assert pages == sorted(p.relative_to(cluster / "feedback")
                           for p in (cluster / "feedback").rglob("*.html"))
    for page in pages:   # the same text (how a kernel's prints split into outputs may vary)
        assert text(cluster / "feedback" / page) == text(local / "feedback" / page), page
    for sid in ("solution", "one_wrong", "release"):   # for the formgrader, as locally
        assert (cluster / "course" / "autograded" / sid / "makemore" / f"{STAGE2}.ipynb").is_file()
        assert (cluster / "course" / "submitted" / sid / "makemore" / f"{STAGE2}.ipynb").is_file()
    # the progress bar and the closing summary, as locally
    assert "100%" in runs["cluster"].stderr and "student" in runs["cluster"].stderr
    assert sorted(runs["cluster"].stdout.replace(str(cluster), "OUT").splitlines()) == \
        sorted(runs["local"].stdout.replace(str(local), "OUT").splitlines())
    log = read_csv(cluster / "course" / ".cluster-run.csv")   # a worker found broken_json's
    assert sorted(r["student"] for r in log) == ["broken_json", "one_wrong", "release",
                                                 "solution"]
    # the course gradebook the formgrader opens: the same scores and the same flags (a grade
    # waiting for a person, a missing notebook) as local grading writes
    assert gradebook_state(cluster) == gradebook_state(local)


def gradebook_state(out):
    """{(student, notebook, grade): (auto score, manual score, needs manual grade)} of the
    course gradebook in OUT, and each student's notebooks."""
    state = {}
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}", "makemore-backprop") as gb:
        for student in gb.students:
            try:
                submission = gb.find_submission("makemore", student.id)
            except MissingEntry:
                continue
            state[student.id] = sorted(nb.name for nb in submission.notebooks)
            for nb in submission.notebooks:
                for g in nb.grades:
                    state[student.id, nb.name, g.name] = (g.auto_score, g.manual_score,
                                                          g.needs_manual_grade)
    return state


# ------------------------------------------------------------------ scheduler and workers by hand

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_command(cwd, hidden, site, address, name):
    """`dask worker` in a mount namespace where the folders in `hidden` are empty: it sees the
    system, the virtual environment and a copy of the grader package (site), nothing else of
    the repository, and not the client's submissions or output folder."""
    args = ["bwrap", "--dev-bind", "/", "/", "--die-with-parent"]
    for folder in hidden:
        args += ["--tmpfs", str(folder)]
    args += ["--ro-bind", str(VENV), str(VENV), "--bind", str(cwd), str(cwd),
             "--ro-bind", str(site), str(site), "--chdir", str(cwd)]
    return args + ["--", str(VENV / "bin" / "dask"), "worker", address, "--nthreads", "1",
                   "--nworkers", "1", "--no-dashboard", "--name", name,
                   "--local-directory", str(cwd)]


class ByHand:
    """A `dask scheduler` and two `dask worker` processes on localhost, each in its own folder
    and process group."""

    def __init__(self, root, hidden):
        self.root, self.address = root, f"tcp://127.0.0.1:{free_port()}"
        site = root / "site"
        for package in ("makemore", "grader"):
            shutil.copytree(REPO / package, site / package,
                            ignore=shutil.ignore_patterns("__pycache__"))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("MAKEMORE_") and k != "PYTHONPATH"}
        env["PYTHONPATH"] = str(site)   # the packages, not the checkout
        (root / "scheduler").mkdir()
        self.processes = [subprocess.Popen(
            [str(VENV / "bin" / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
             self.address.rsplit(":", 1)[1], "--no-dashboard"], cwd=root / "scheduler",
            env=env, start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=open(root / "scheduler.log", "w"))]
        for i in range(2):
            cwd = root / f"worker{i}"
            cwd.mkdir()
            self.processes.append(subprocess.Popen(
                worker_command(cwd, hidden, site, self.address, f"w{i}"), cwd=cwd, env=env,
                start_new_session=True, stdout=subprocess.DEVNULL,
                stderr=open(root / f"worker{i}.log", "w")))
        from distributed import Client
        self.client = Client(self.address, timeout=60)
        self.client.wait_for_workers(2, timeout=180)
        self.workers = {info["name"]: addr
                        for addr, info in self.client.scheduler_info()["workers"].items()}

    def kill(self, i):
        """The machine of worker i is gone: its nanny, worker and kernels die at once."""
        os.killpg(self.processes[1 + i].pid, signal.SIGKILL)

    def close(self):
        self.client.close()
        for p in reversed(self.processes):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def _hidden(client_dir):
    """What the workers must not see: the client's folder, the repository, the checkout the
    virtual environment was installed from, and the tests' shared reference cache."""
    hidden = {client_dir.resolve(), REPO.resolve()}
    if (VENV.parent / "makemore").is_dir():
        hidden.add(VENV.parent)
    if os.environ.get("MAKEMORE_REFERENCE_CACHE"):
        hidden.add(Path(os.environ["MAKEMORE_REFERENCE_CACHE"]).resolve())
    return sorted(hidden)


@pytest.fixture(scope="module")
def by_hand(tmp_path_factory):
    root = tmp_path_factory.mktemp("byhand")
    (root / "client").mkdir()
    cluster = ByHand(root, _hidden(root / "client"))
    yield root, cluster
    cluster.close()


def _looks(paths):
    import grader
    import makemore
    return {"exists": [os.path.exists(p) for p in paths], "grader": grader.__file__,
            "makemore": makemore.__file__,
            "cwd": os.getcwd()}


def test_by_hand_cluster_grades_without_seeing_the_files(by_hand, local_and_cluster):
    """Two `dask worker` processes that see neither the submissions, the output folder nor the
    repository grade as local grading does, into a PostgreSQL gradebook only the client
    writes."""
    root, cluster = by_hand
    subs = write_class(root / "client" / "subs",
                       [c for c in CLASS if c.student in ("solution", "one_wrong")])
    # what the workers see: neither the submissions nor the repository; their own grader copy
    import cloudpickle
    cloudpickle.register_pickle_by_value(sys.modules[__name__])   # _looks, sent as code
    seen = cluster.client.run(_looks, [str(subs), str(REPO / "solutions"),
                                       str(REPO / "grader")])
    assert len(seen) == 2
    for worker, look in seen.items():
        assert look["exists"] == [False, False, False], (worker, look)
        assert look["grader"].startswith(str(root / "site")), look
        assert look["makemore"].startswith(str(root / "site")), look
        assert look["cwd"].startswith(str(root / "worker")), look
    out = root / "client" / "out"
    local = local_and_cluster[0] / "local"
    with postgres_server() as url:   # the client alone writes the gradebook; workers lack its URL
        run = grader("autograde", subs, "--out", out, "--cluster", cluster.address,
                     "--db-url", url, env_extra=ENV)
        assert run.returncode == 0, run.stderr[-3000:]
        with Gradebook(url, "makemore-backprop") as gb:
            scores = {s: gb.find_submission_notebook(STAGE2, "makemore", s).score
                      for s in ("solution", "one_wrong")}
        # the LMS export reads the same PostgreSQL gradebook, through OUT's nbgrader_config.py
        export = grader("export", out, "--format", "csv", "--output", root / "lms.csv")
        assert export.returncode == 0, export.stderr[-3000:]
        exported = {r["student"]: float(r[STAGE2]) for r in read_csv(root / "lms.csv")}
    assert scores == {s: sum(float(r["score"]) for r in rows(local, {s})) for s in scores}
    assert exported == scores
    assert not (out / "course" / "gradebook.db").exists()
    assert rows(out) == rows(local, {"solution", "one_wrong"})
    log = read_csv(out / "course" / ".cluster-run.csv")
    assert sorted(r["student"] for r in log) == ["one_wrong", "solution"]
    assert {r["worker"] for r in log} <= set(cluster.workers.values())


def descendants(pid):
    found, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        found += kids
        todo += kids
    return found


def start_grading(client_dir, name, students, address):
    """`grader autograde --cluster ADDRESS` started on a class of correct stage 2 notebooks;
    (the running process, its output folder)."""
    subs, out = client_dir / name, client_dir / f"{name}-out"
    for sid in students:
        write_case(Case(sid, STAGE2, {}, set(), "correct"), subs)
    env = {**os.environ, **ENV,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.Popen([sys.executable, "-m", "grader", "autograde", str(subs), "--out",
                            str(out), "--cluster", address, "--no-feedback"],
                           cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    return run, out


def test_a_lost_worker_costs_nobody_anything(by_hand):
    """Kill one worker's whole process group (its machine is gone) while it grades a student:
    the other worker grades the rest, every student once, from finished runs only."""
    root, cluster = by_hand
    students = [f"s{i}" for i in range(4)]
    run, out = start_grading(root / "client", "lost", students, cluster.address)
    victim, deadline = cluster.processes[1].pid, time.monotonic() + 600
    killed = False
    while not killed and run.poll() is None and time.monotonic() < deadline:
        # worker 0 grading a student's notebook (a kernel in course/autograded)
        if any("bwrap" in command(k) and "autograded" in command(k)
               for k in descendants(victim)):
            cluster.kill(0)
            killed = True
        time.sleep(0.2)
    stdout, stderr = run.communicate(timeout=900)
    assert killed, "worker 0 was never seen grading"
    assert run.returncode == 0, stderr[-3000:]
    assert "a grading process died" in stderr
    summary = [r for r in read_csv(out / "summary.csv") if r["notebook"] == STAGE2]
    assert sorted(r["student"] for r in summary) == students   # each exactly once
    assert all(r["status"] == "graded" and float(r["score"]) == float(r["max_score"])
               for r in summary), summary
    cells = graded_cells(STAGE2)
    got = sorted((r["student"], r["cell"]) for r in rows(out) if r["notebook"] == STAGE2)
    assert got == sorted((s, c) for s in students for c in cells)
    log = read_csv(out / "course" / ".cluster-run.csv")
    assert sorted(r["student"] for r in log) == students
    assert stdout.count(f"{STAGE2} graded") == len(students)


def test_a_late_worker_that_cannot_grade_is_retired_and_costs_nobody_anything(by_hand):
    """A worker without bubblewrap joins while a run grades: the course's plugin refuses on
    it, the students sent there go back to a worker that can grade, it is retired, and every
    student is graded once, in full."""
    root, cluster = by_hand
    students = [f"late{i}" for i in range(3)]
    run, out = start_grading(root / "client", "late", students, cluster.address)
    graders = [p.pid for p in cluster.processes[1:] if p.poll() is None]
    deadline = time.monotonic() + 600
    while run.poll() is None and time.monotonic() < deadline and not any(
            "bwrap" in command(k) and "autograded" in command(k)
            for pid in graders for k in descendants(pid)):
        time.sleep(0.2)   # until the run grades its first student
    (root / "late-worker").mkdir()
    late_env = {k: v for k, v in os.environ.items() if not k.startswith("MAKEMORE_")}
    late_env.update(PATH=str(VENV / "bin"), PYTHONPATH=str(root / "site"))   # no bwrap
    late = subprocess.Popen([str(VENV / "bin" / "dask"), "worker", cluster.address,
                             "--nthreads", "1", "--no-dashboard", "--name", "late",
                             "--local-directory", str(root / "late-worker")],
                            cwd=root / "late-worker", env=late_env, start_new_session=True,
                            stdout=subprocess.DEVNULL,
                            stderr=open(root / "late-worker.log", "w"))
    cluster.processes.append(late)   # killed with the cluster if it outlives the test
    stdout, stderr = run.communicate(timeout=900)
    assert run.returncode == 0, stderr[-3000:]
    assert "refuses to grade: bubblewrap is not installed" in stderr, stderr[-3000:]
    assert "it is retired and its students go to other workers" in stderr
    summary = [r for r in read_csv(out / "summary.csv") if r["notebook"] == STAGE2]
    assert sorted(r["student"] for r in summary) == students   # each exactly once
    assert all(r["status"] == "graded" and float(r["score"]) == float(r["max_score"])
               for r in summary), summary
    log = read_csv(out / "course" / ".cluster-run.csv")
    assert sorted(r["student"] for r in log) == students
    late.wait(timeout=60)   # retired: the scheduler closed it


# ------------------------------------------------------------------ refusals and bad calls

@pytest.mark.parametrize("value, words", [
    ("local:0", "at least 1 worker"),
    ("local:two", "tcp://HOST:PORT"),
    ("8786", "tcp://HOST:PORT"),
    ("tcp://127.0.0.1:99999", "not a port number"),
])
def test_malformed_cluster_is_a_one_line_error(tmp_path, capsys, value, words):
    from grader.cli import main
    assert main(["autograde", str(tmp_path), "--out", str(tmp_path / "out"),
                 "--cluster", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.strip().count("\n") == 0 and words in err, err
    assert not (tmp_path / "out").exists()


def test_cluster_and_jobs_exclude_each_other(tmp_path, capsys):
    from grader.cli import main
    assert main(["autograde", str(tmp_path), "--out", str(tmp_path / "out"), "--jobs", "2",
                 "--cluster", "local:2"]) == 2
    assert "not both" in capsys.readouterr().err


def test_unreachable_scheduler_is_a_one_line_error(tmp_path):
    write_class(tmp_path / "subs", CLASS[:1])
    address = f"tcp://127.0.0.1:{free_port()}"   # nobody listens there
    run = grader("autograde", tmp_path / "subs", "--out", tmp_path / "out", "--cluster", address)
    assert run.returncode == 2
    assert run.stderr.startswith(f"error: cannot reach the Dask scheduler at {address}")
    assert run.stderr.strip().count("\n") == 0, run.stderr
    assert not (tmp_path / "out").exists()


def test_a_worker_without_the_sandbox_refuses(monkeypatch, tmp_path):
    """A worker where bubblewrap cannot run (here: not on its PATH) refuses to take the
    course, saying why; the client stops with that reason (exit status 2 in the command)."""
    from grader import cluster
    from grader.cluster import ClusterGrading, WorkerRefused, close_client, open_client
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))   # no bwrap there
    client = open_client(("local", 1))
    try:
        course = tmp_path / "course"
        (course / "source" / "makemore").mkdir(parents=True)
        grading = ClusterGrading(client, course)
        with pytest.raises(WorkerRefused, match="refuses to grade: bubblewrap is not installed"):
            grading.install([], set())
        grading.close()
    finally:
        close_client(client)
    settings = {"fingerprint": {**cluster.fingerprint(), "grader": "0" * 16},
                "no_sandbox": True}
    assert "0000000000000000 on the client" in cluster.refusal(settings)
