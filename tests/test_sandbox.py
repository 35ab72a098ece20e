"""The OS wall on its own: a grading kernel in bubblewrap, with no code policy in front of it.

The code policy refuses the attacks below before they run; these tests run them anyway, in
GuardedExecute's sandboxed kernel inside a course-like folder, and check that each one is
stopped by the sandbox (or costs only its own kernel), that caps of every kind fire and are
named, and that a kernel that will not start is retried and then reported as the grader's fault.
"""
import os
import subprocess
import sys
import time

import pytest
from nbformat.v4 import new_code_cell, new_notebook
from traitlets.config import Config

from cases_exploits import BREAK_OUT, READ_REFERENCES
from grader import sandbox
from grader.preprocessors.events import NOTES_KEY, GradingNotes
from grader.preprocessors.execute import GuardedExecute, KernelStartFailed

pytestmark = pytest.mark.skipif(sandbox.unavailable() is not None,
                                reason=f"bubblewrap: {sandbox.unavailable()}")

PRELUDE = ("import torch\nh = torch.zeros(32, 64)\ndlogits = torch.zeros(32, 27)\n"
           "W2 = torch.zeros(64, 27)\n")

# issue: one student's kernel reaching the grader or classmates' kernels
REACH_OTHERS = r'''
import os, resource, signal
attempts = {}
for who, pid in [("the grader", GRADER_PID), ("a classmate's kernel", OTHER_PID)]:
    attempts[f"prlimit {who}"] = lambda: resource.prlimit(pid, resource.RLIMIT_CPU, (1, 1))
    attempts[f"renice {who}"] = lambda: os.setpriority(os.PRIO_PROCESS, pid, 19)
    attempts[f"pin {who}"] = lambda: os.sched_setaffinity(pid, {0})
    attempts[f"signal {who}"] = lambda: os.kill(pid, signal.SIGSTOP)
for what, attempt in attempts.items():
    try:
        attempt()
    except Exception as e:
        print(f"blocked: {what}: {type(e).__name__}")
    else:
        print(f"ESCAPED: {what}")
pids = [p for p in os.listdir("/proc") if p.isdigit()]
print("processes seen:", len(pids))
print("environment:", sorted(os.environ))
resource.prlimit(os.getppid(), resource.RLIMIT_CPU, (1, 1))   # its own sandbox: costs only itself
'''


def course(tmp_path):
    """A course folder as autograde makes it; returns (config, the kernel's working folder)."""
    root = tmp_path / "course"
    work = root / "autograded" / "alice" / "makemore"
    work.mkdir(parents=True, exist_ok=True)
    (root / "gradebook.db").write_text("secret gradebook")
    (root / "source" / "makemore").mkdir(parents=True, exist_ok=True)
    (root / ".references").mkdir(exist_ok=True)
    (root / "autograded" / "bob").mkdir(exist_ok=True)
    c = Config()
    c.CourseDirectory.root = str(root)
    return c, work


def run(tmp_path, *sources, timeout=30, notes=None, **traits):
    """Run the cells in a grading kernel: (notebook, the events noted, the kernel's folder);
    what the grader noted lands in notes (a GradingNotes), if given."""
    cfg, work = course(tmp_path)
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    notes = GradingNotes() if notes is None else notes
    resources = {"metadata": {"path": str(work)}, NOTES_KEY: notes,
                 "nbgrader": {"student": "alice", "notebook": tmp_path.name}}
    ex = GuardedExecute(config=cfg, timeout=timeout, **traits)
    ex.preprocess(nb, resources)
    return nb, notes.events, work


def printed(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_files_of_the_course_are_not_there(tmp_path):
    nb, _, work = run(tmp_path, PRELUDE + READ_REFERENCES)
    text = printed(nb.cells[0])
    assert "ESCAPED" not in text, text
    assert text.count("blocked:") == READ_REFERENCES.count('\n    "'), text


def test_breaking_out_is_blocked(tmp_path):
    nb, _, work = run(tmp_path, BREAK_OUT)
    text = printed(nb.cells[0])
    assert "ESCAPED" not in text, text
    assert "private folder writable: ok" in text
    assert not list(tmp_path.rglob("EXPLOITED"))


def test_other_processes_are_out_of_reach(tmp_path, monkeypatch):
    monkeypatch.setenv("MYSQL_PWD", "hunter2")
    monkeypatch.setenv("GRADEBOOK_URL", "postgresql://grader:pw@db/course")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    code = REACH_OTHERS.replace("GRADER_PID", str(os.getpid())).replace("OTHER_PID",
                                                                        str(other.pid))
    try:
        nb, _, _ = run(tmp_path, code, "print('next cell')")
        assert other.poll() is None   # untouched
    finally:
        other.kill()
    text = printed(nb.cells[0])
    assert "ESCAPED" not in text, text
    assert text.count("blocked:") == 8, text
    assert int(text.split("processes seen: ")[1].split()[0]) <= 3, text   # init, kernel, child
    env = text.split("environment: ")[1]
    assert "MYSQL_PWD" not in env and "GRADEBOOK_URL" not in env


def test_the_kernel_cannot_outlive_or_hurt_the_grader(tmp_path):
    """os._exit, a segfault and a fork bomb cost the kernel; the grader process goes on."""
    nb, events, _ = run(tmp_path, "x = 1", "import os\nos._exit(3)", "print('not reached')")
    assert "exited with status 3" in nb.cells[1].outputs[-1]["evalue"]
    assert nb.cells[2].outputs == []
    assert any("the kernel died in cell 2" in e for e in events), events
    nb, events, _ = run(tmp_path, "import faulthandler\nfaulthandler._sigsegv()")
    assert "SIGSEGV" in nb.cells[0].outputs[-1]["evalue"]


def test_disk_is_capped(tmp_path):
    code = ("import os\nf = open(os.environ['TMPDIR'] + '/fill', 'wb')\n"
            "try:\n    [f.write(b'x' * 2**20) for _ in range(2048)]\n"
            "except OSError as e:\n    print('stopped:', e.errno)\n")
    nb, _, _ = run(tmp_path, code, timeout=60)
    assert "stopped:" in printed(nb.cells[0])


def test_output_of_every_kind_is_capped(tmp_path):
    flood = "raise ValueError('x' * 3_000_000)"
    stream = "for _ in range(30):\n    print('y' * 400_000)"
    nb, events, _ = run(tmp_path, flood, stream, stream, stream, "print('after')",
                        notebook_output_limit=6 * 2**20)
    error = nb.cells[0].outputs[-1]
    assert error.output_type == "error" and len(error.evalue) <= 300   # still an error
    assert sum(len(str(o)) for c in nb.cells for o in c.outputs) < 7 * 2**20
    assert any("printed more than" in e for e in events), events
    assert any("the notebook printed more than" in e for e in events), events


def test_the_notebook_has_a_time_budget(tmp_path):
    cells = ["import time\ntime.sleep(2)"] * 6
    nb, events, _ = run(tmp_path, *cells, notebook_timeout=5)
    assert any("grading time" in e for e in events), events
    assert nb.cells[-1].outputs == [] or "KernelDied" in str(nb.cells[-1].outputs)


def test_a_kernel_that_will_not_start_is_the_graders_fault(tmp_path, monkeypatch):
    starts = []

    def broken(self, extra_arguments=None):
        starts.append(1)
        return ["/bin/false"]
    monkeypatch.setattr(sandbox.BwrapKernelManager, "format_kernel_cmd", broken)
    notes = GradingNotes()
    with pytest.raises(KernelStartFailed):
        run(tmp_path, "x = 1", startup_timeout=5, notes=notes)
    assert len(starts) == 3
    assert "did not start (3 tries" in notes.fault


def sandboxes_of(tmp_path):
    """The live processes whose command line names a folder under tmp_path."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if str(tmp_path).encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_a_start_that_fails_half_way_leaves_no_sandbox_behind(tmp_path, monkeypatch):
    """bwrap started, then the start failed (a launch step raised at once, as when the
    grader's working folder vanished): each try's sandbox is killed, its first process
    included, however early bwrap itself was stopped."""
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner
    real, launched = LocalProvisioner.launch_kernel, []

    async def launch_then_fail(self, cmd, **kwargs):
        await real(self, cmd, **kwargs)
        launched.append(self.process.pid)
        raise FileNotFoundError(2, "No such file or directory")
    monkeypatch.setattr(LocalProvisioner, "launch_kernel", launch_then_fail)
    with pytest.raises(KernelStartFailed):
        run(tmp_path, "x = 1", startup_timeout=5)
    assert len(launched) == 3
    time.sleep(1)   # a SIGKILLed process is gone at once; give the reaper a moment
    assert sandboxes_of(tmp_path) == [], "a failed start left its sandbox running"


def test_a_flaky_start_is_retried(tmp_path, monkeypatch):
    real, starts = sandbox.BwrapKernelManager.format_kernel_cmd, []

    def flaky(self, extra_arguments=None):
        starts.append(1)
        return ["/bin/false"] if len(starts) == 1 else real(self, extra_arguments)
    monkeypatch.setattr(sandbox.BwrapKernelManager, "format_kernel_cmd", flaky)
    nb, _, _ = run(tmp_path, "print(6 * 7)", startup_timeout=5)
    assert printed(nb.cells[0]).strip() == "42"
    assert len(starts) == 2


def test_grading_refuses_without_bubblewrap(tmp_path):
    """Where bwrap cannot run, autograde stops with a one-line reason naming --no-sandbox."""
    env = {**os.environ, "PATH": "/nonexistent"}
    run_ = subprocess.run([sys.executable, "-m", "grader", "autograde", str(tmp_path),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          env=env, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert run_.returncode == 2
    assert run_.stderr.count("\n") == 1 and "bubblewrap" in run_.stderr
    assert "--no-sandbox" in run_.stderr
    assert not (tmp_path / "out").exists()


def test_a_long_cell_is_interrupted_and_the_kernel_goes_on(tmp_path):
    nb, events, _ = run(tmp_path, "while True:\n    pass", "print('next')", timeout=3)
    assert nb.cells[0].outputs[-1]["ename"] in ("KeyboardInterrupt", "CellTimeoutError")
    assert printed(nb.cells[1]).strip() == "next"
    assert any("was interrupted" in e for e in events), events


WRITABLE_MOUNTS = r'''
for line in open("/proc/self/mountinfo"):
    fields = line.split()
    point, options, kind = fields[4], fields[5].split(","), fields[fields.index("-") + 1]
    if "rw" in options and kind not in ("proc", "devpts", "devtmpfs"):   # devtmpfs: /dev/null...
        print("writable:", point, kind)
for path in ("/dev/fill", "/dev/shm/fill", "/run/kernel/fill", os.getcwd() + "/fill"):
    try:
        open(path, "w").write("x")
        print("ESCAPED: wrote", path)
    except OSError as e:
        print("blocked:", path, e.errno)
'''


def test_only_its_own_tmp_is_writable(tmp_path):
    """No folder of the host and no unbounded tmpfs (/dev, /dev/shm) takes a kernel's writes:
    only its capped /tmp, which also holds its sockets."""
    nb, _, work = run(tmp_path, "import os\n" + WRITABLE_MOUNTS)
    text = printed(nb.cells[0])
    assert "ESCAPED" not in text, text
    assert [line for line in text.splitlines() if line.startswith("writable:")] == \
        ["writable: /tmp tmpfs"], text
    assert text.count("blocked:") == 4, text
    assert not list(work.iterdir())


@pytest.mark.skipif(os.getuid() == 0, reason="Linux exempts root's processes from RLIMIT_NPROC")
def test_processes_are_capped(tmp_path):
    code = ("import threading, time\nstarted = []\ntry:\n    for _ in range(1000):\n"
            "        t = threading.Thread(target=time.sleep, args=(2,))\n        t.start()\n"
            "        started.append(t)\nexcept RuntimeError:\n    pass\nprint(len(started))")
    nb, _, _ = run(tmp_path, code, "print('next')")
    from grader import config
    assert int(printed(nb.cells[0])) < config.KERNEL_PROCESSES
    assert printed(nb.cells[1]).strip() == "next"


def test_a_grader_started_through_a_relative_path_still_starts_kernels(tmp_path):
    """python started as ../.venv/bin/python (a path through `..`): its kernels still start."""
    bench = tmp_path / "elsewhere"
    bench.mkdir()
    relative = os.path.relpath(sys.executable, bench)
    code = ("import sys; sys.path.insert(0, 'TESTS'); import crafted\n"
            "from test_sandbox import run, printed\nfrom pathlib import Path\n"
            "nb, _, _ = run(Path('TMP'), 'print(6 * 7)')\nprint(printed(nb.cells[0]).strip())")
    code = code.replace("TESTS", os.path.dirname(__file__)).replace("TMP", str(tmp_path / "t"))
    (tmp_path / "t").mkdir()
    run_ = subprocess.run([relative, "-c", code], cwd=bench, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.path.dirname(
                              os.path.dirname(os.path.abspath(__file__)))})
    assert run_.stdout.strip().endswith("42"), run_.stderr[-2000:]


def test_the_grader_connects_once_and_has_no_heartbeat(tmp_path, monkeypatch):
    """The kernel's sockets are reached through its /proc/PID/root: a kernel that replaced
    them with symbolic links could only lead a new connection astray, and there is none."""
    import zmq
    seen = []

    def record(self, **kwargs):
        seen.append((self.km.context.getsockopt(zmq.RECONNECT_IVL),
                     self.kc.context.getsockopt(zmq.RECONNECT_IVL),
                     self.kc._hb_channel, self.km.ip))
    monkeypatch.setattr(GuardedExecute, "on_cell_executed", record)
    nb, _, _ = run(tmp_path, "print('hi')")
    assert printed(nb.cells[0]).strip() == "hi"
    (km_reconnect, kc_reconnect, heartbeat, ip), = seen
    assert km_reconnect == kc_reconnect == -1 and heartbeat is None
    assert ip.startswith("/proc/") and "/root/tmp/" in ip


def test_bubblewraps_own_words_explain_a_failed_start(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox.BwrapKernelManager, "format_kernel_cmd",
                        lambda self, extra_arguments=None: ["bwrap", "--no-such-option"])
    notes = GradingNotes()
    with pytest.raises(KernelStartFailed):
        run(tmp_path, "x = 1", startup_timeout=5, notes=notes)
    reason = notes.fault
    assert "bubblewrap did not start the kernel" in reason and "no-such-option" in reason, reason


def test_what_a_kernel_writes_to_its_stderr_stays_out_of_the_graders_terminal(tmp_path, capfd):
    """ipykernel turns the cell's own writes to file descriptor 2 into its output; what
    escapes that (the process's stderr) is kept from the terminal, ANSI escapes and all."""
    code = ("import os, sys\nos.write(2, b'\\x1b[2J RAW STDERR')\n"
            "os.write(sys.stderr._original_stdstream_copy, b'\\x1b[2J RAW STDERR')\nprint('ok')")
    nb, _, _ = run(tmp_path, code)
    assert "ok" in printed(nb.cells[0])
    assert "RAW STDERR" not in capfd.readouterr().err


NEVER_STARTS = '''
from grader import sandbox
_format = sandbox.BwrapKernelManager.format_kernel_cmd
def _format_for_alice_only(self, extra_arguments=None):   # the references still run
    if "/autograded/alice/" in str(getattr(self, "workdir", "")) + "/":
        return ["/bin/false"]
    return _format(self, extra_arguments)
sandbox.BwrapKernelManager.format_kernel_cmd = _format_for_alice_only
'''


def test_a_kernel_that_never_starts_makes_an_error_that_only_errors_grades_again(tmp_path):
    """Through a whole grading run: the notebook whose kernel never starts is status `error`
    with the reason (not a 0), a classmate's is graded as ever, and `--only-errors` grades
    the first again, in full."""
    from conftest import grader, read_csv
    from crafted import Case, write_case
    notebook = "03_fused_cross_entropy"
    for student in ("alice", "bob"):
        write_case(Case(student, notebook, {}, set(), "correct"), tmp_path / "subs")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "sitecustomize.py").write_text(NEVER_STARTS)
    args = ("autograde", tmp_path / "subs", "--out", tmp_path / "out", "--no-feedback")
    broken = grader(*args, env_extra={"PYTHONPATH": f"{tmp_path / 'broken'}{os.pathsep}"
                                                    f"{os.environ.get('PYTHONPATH', '')}"})

    def summary():
        return {r["student"]: r for r in read_csv(tmp_path / "out" / "summary.csv")
                if r["notebook"] == notebook}
    alice, bob = summary()["alice"], summary()["bob"]
    assert alice["status"] == "error", (alice, broken.stderr[-2000:])
    assert "the grading kernel did not start (3 tries" in alice["reason"], alice
    assert bob["status"] == "graded" and float(bob["score"]) == float(bob["max_score"]), bob
    again = grader(*args, "--only-errors")
    assert again.returncode == 0, again.stderr[-2000:]
    alice = summary()["alice"]
    assert alice["status"] == "graded" and float(alice["score"]) == float(alice["max_score"])
    assert summary()["bob"] == bob   # not graded again
