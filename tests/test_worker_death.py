"""A grading process that dies mid-run (killed, out of memory) costs no student anything: a
fresh pool grades the students it had again, and each student is graded exactly once."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import CRAFTED_TIMEOUT, REPO, read_csv
from crafted import STAGE2, Case, write_case


def children(pid):
    """Pids of the processes whose parent is pid."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def command(pid):
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_a_killed_worker_costs_nobody_anything(tmp_path):
    students = [f"s{i}" for i in range(4)]
    for sid in students:
        write_case(Case(sid, STAGE2, {}, set(), "correct"), tmp_path / "subs")
    env = {**os.environ, "MAKEMORE_CELL_TIMEOUT": CRAFTED_TIMEOUT,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.Popen([sys.executable, "-m", "grader", "autograde", str(tmp_path / "subs"),
                            "--out", str(tmp_path / "out"), "--jobs", "2", "--quiet",
                            "--no-feedback"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    killed, deadline = None, time.monotonic() + 300
    while killed is None and run.poll() is None and time.monotonic() < deadline:
        for worker in children(run.pid):
            # a worker running a student's kernel (the reference runs come first)
            if any("bwrap" in command(k) and "autograded" in command(k)
                   for k in children(worker)):
                os.kill(worker, signal.SIGKILL)
                killed = worker
                break
        time.sleep(0.2)
    out, err = run.communicate(timeout=600)
    assert killed, "no worker was seen grading"
    assert run.returncode == 0, err
    assert "a grading process died" in err
    summary = read_csv(tmp_path / "out" / "summary.csv")
    rows = [r for r in summary if r["notebook"] == STAGE2]
    assert sorted(r["student"] for r in rows) == students      # each exactly once
    assert all(r["status"] == "graded" and float(r["score"]) == float(r["max_score"])
               for r in rows), rows
