"""A throwaway PostgreSQL server on loopback for the tests (Debian's postgresql package).

initdb refuses to run as root, so as root the server runs as the `postgres` user (runuser).
No Unix socket: clients connect over TCP to 127.0.0.1 on a free port, with trust auth.
"""
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


def _bin(name):
    found = shutil.which(name) or max(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), default=None)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found: install Debian's postgresql package "
                           "(.ci/run does)")
    return found


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server():
    """Yield the URL of an empty database on a fresh server; stop and remove it afterwards."""
    as_user = []
    base = Path(tempfile.mkdtemp(prefix="makemore-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run(_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(_bin("pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories=''", "start")
        for _ in range(50):
            if subprocess.run([_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        subprocess.run([_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        "gradebook"], check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/gradebook"
    finally:
        subprocess.run([*as_user, _bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
