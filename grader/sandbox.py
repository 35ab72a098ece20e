"""The wall around every grading kernel: bubblewrap (bwrap), the sandbox Flatpak uses.

Each kernel runs in its own user, PID, network, IPC and mount namespaces as an unprivileged
user: it sees its own processes only, has no network but its own loopback, and its file
system holds the system's libraries, the Python environment, the course library and the
notebook's folder, all read-only, plus one private writable /tmp of bounded size. It talks to
the grader over jupyter_client's `ipc` transport: Unix sockets the kernel makes in its own
/tmp, which the grader reaches through /proc/PID/root of the sandbox, so no TCP port is opened
and no folder of the host is writable from inside. Its environment is built from an
allowlist; it may run only a few processes. With --die-with-parent it cannot outlive the
grading process that started it.
"""
import asyncio
import collections
import functools
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, default

from . import config

# variables a kernel inherits from the grader, by name; everything else is dropped
ENV_ALLOWED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "NBGRADER_EXECUTION",
               "MAKEMORE_CELL_TIMEOUT")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group",
                "/etc/nsswitch.conf", "/etc/fonts")
INSIDE_TMP = "/tmp"            # the kernel's private writable folder, inside the sandbox
INSIDE_LIBRARY = "/course"     # where the course library is mounted (first on PYTHONPATH)
INSIDE_CONNECTION = "/run/kernel/connection.json"   # the connection file, read-only


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot make namespaces here."""


PACKAGES = ("makemore", "grader")   # what a kernel imports of this checkout: the course
                                    # library and the grader's in-kernel part (guard, rules)


def library_folders() -> list[Path]:
    """The folders of the packages PACKAGES the grading process itself runs (this checkout)."""
    import importlib
    return [Path(importlib.import_module(p).__file__).resolve().parent for p in PACKAGES]


@functools.cache
def unavailable():
    """None where bubblewrap can start a sandbox here, else the one-line reason it cannot."""
    if not sys.platform.startswith("linux"):
        return f"the grading sandbox needs Linux with bubblewrap; this is {sys.platform}"
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return ("bubblewrap is not installed (Debian/Ubuntu: sudo apt-get install bubblewrap)")
    probe = [bwrap, *_namespaces(), *_system_binds(), "--", "/bin/true"]
    try:
        run = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bubblewrap cannot start: {e}"
    if run.returncode:
        why = (run.stderr.strip().splitlines() or ["no message"])[-1]
        return f"bubblewrap cannot make a sandbox here (user namespaces disabled?): {why}"
    return None


def _namespaces():
    return ["--unshare-all", "--uid", "65534", "--gid", "65534", "--die-with-parent",
            "--new-session", "--cap-drop", "ALL", "--proc", "/proc", "--dev", "/dev",
            # /dev is a tmpfs of unbounded size (memory): only its device nodes stay writable
            "--remount-ro", "/dev", "--hostname", "grading"]


def _system_binds():
    args = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for f in SYSTEM_FILES:
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    return args


def _python_binds():
    """The interpreter's installation and the virtual environment, read-only at their paths."""
    roots = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix,
                                                  sys.prefix, sys.exec_prefix)})
    roots = [r for r in roots if not any(r != o and r.startswith(o + "/") for o in roots)]
    args = []
    for r in roots:
        if not r.startswith(SYSTEM_DIRS):
            args += ["--ro-bind", r, r]
        if os.path.realpath(sys.prefix) == r and os.path.abspath(sys.prefix) != r:
            args += ["--symlink", r, os.path.abspath(sys.prefix)]
    return args


@functools.cache
def font_caches():
    """matplotlib's font lists: each kernel gets them, so that none rebuilds them."""
    try:
        import matplotlib
        return tuple(sorted(Path(matplotlib.get_cachedir()).glob("fontlist-*.json")))
    except Exception:
        return ()


def _font_cache_binds():
    return [a for c in font_caches()
            for a in ("--ro-bind", str(c), f"{INSIDE_TMP}/.matplotlib/{c.name}")]


def command(kernel_cmd, workdir, connection_file, env, tmp_size=None, info_fd=None):
    """The bwrap command line that runs kernel_cmd sandboxed.

    workdir          the notebook's folder: read-only, the working directory
    connection_file  the kernel's connection file: read-only at INSIDE_CONNECTION
    env              the kernel's whole environment (nothing else is inherited)
    info_fd          a file descriptor bwrap writes the sandbox's process id to (JSON)
    """
    names = config.names_path()
    kernel_cmd = [INSIDE_CONNECTION if a == str(connection_file) else a for a in kernel_cmd]
    info = ["--info-fd", str(info_fd)] if info_fd is not None else []
    # the private /tmp first: binds of folders that live under /tmp go on top of it
    args = ["bwrap", *info, *_namespaces(), *_system_binds(),
            "--size", str(tmp_size or config.KERNEL_DISK), "--tmpfs", INSIDE_TMP,
            *_python_binds(),
            *[a for folder in library_folders()
              for a in ("--ro-bind", str(folder), f"{INSIDE_LIBRARY}/{folder.name}")],
            "--ro-bind", str(names), str(names),
            *_font_cache_binds(),
            "--ro-bind", str(workdir), str(workdir),
            "--ro-bind", str(connection_file), INSIDE_CONNECTION,
            "--remount-ro", "/", "--chdir", str(workdir), "--clearenv"]
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    return args + ["--", *kernel_cmd]


def kernel_env(setup_json, extra=None):
    """The environment of a sandboxed kernel: allowlisted variables and the course's own."""
    threads = str(config.KERNEL_THREADS)
    env = {k: os.environ[k] for k in ENV_ALLOWED if k in os.environ}
    env.setdefault("PATH", "/usr/bin:/bin")
    env.update({"HOME": INSIDE_TMP, "TMPDIR": INSIDE_TMP, "PYTHONPATH": INSIDE_LIBRARY,
                "PYTHONDONTWRITEBYTECODE": "1", "IPYTHONDIR": f"{INSIDE_TMP}/.ipython",
                "MPLCONFIGDIR": f"{INSIDE_TMP}/.matplotlib", "MPLBACKEND": "agg",
                "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
                "OPENBLAS_NUM_THREADS": threads, "MAKEMORE_GUARD": setup_json,
                # started by a grader, not a terminal (1: bwrap's --die-with-parent ends it)
                "JPY_PARENT_PID": "1",
                config.NAMES_ENV: str(config.names_path()), **(extra or {})})
    return env


def _connect_once(context):
    """A ZeroMQ context whose sockets never reconnect: a kernel that replaced its socket files
    (with symbolic links to the grader's side of the wall) is not followed there."""
    context.setsockopt(zmq.RECONNECT_IVL, -1)
    return context


class SandboxKernelClient(AsyncKernelClient):
    """The grader's client of a sandboxed kernel: it connects once (no reconnects) and has no
    heartbeat channel, which would make new sockets (the manager watches the process)."""

    @default("context")
    def _context_default(self):
        self._created_context = True
        return _connect_once(zmq.asyncio.Context())

    def start_channels(self, shell=True, iopub=True, stdin=True, hb=False, control=True):
        super().start_channels(shell=shell, iopub=iopub, stdin=stdin, hb=False, control=control)


class BwrapKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel runs inside bubblewrap and listens on ipc sockets.

    The kernel makes its sockets under `inside_ip` in its own /tmp (a name unique to this
    kernel); once bwrap reports the sandbox's process id, the grader connects to them through
    /proc/PID/root. The grader sets `workdir` and `sandbox_env` before starting it."""

    workdir = None
    sandbox_env = None
    inside_ip = None
    stderr_tail = ()   # the kernel's last stderr lines, once it is launched
    sandbox_pid = None   # the sandbox's first process (bwrap's child-pid), once it is known
    client_class = DottedObjectName("grader.sandbox.SandboxKernelClient")
    client_factory = SandboxKernelClient

    @default("context")
    def _context_default(self):
        self._created_context = True
        return _connect_once(zmq.asyncio.Context())

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"

    @property
    def kernel_spec(self):
        """The kernel's spec, interrupted by a message: a signal to bwrap would not reach it
        (the kernel runs in a session of its own)."""
        spec = super().kernel_spec
        if spec is not None:
            spec.interrupt_mode = "message"
        return spec

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        # the interpreter by its absolute path: a path through `..` (python started as
        # ../.venv/bin/python) passes folders the sandbox does not have
        cmd = [os.path.abspath(a) if a == sys.executable else a for a in cmd]
        if "ipykernel_launcher" in cmd:   # our launcher: confine, then start ipykernel
            at = cmd.index("ipykernel_launcher")
            cmd[at] = "grader.kernel"
        return command(cmd, self.workdir, self.connection_file, self.sandbox_env,
                       info_fd=_INFO_FD_PLACEHOLDER)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        read, write = os.pipe()
        # what the kernel and bwrap write to stdout and stderr never reaches the grader's
        # terminal: stderr's last lines are kept to explain a kernel that does not start
        kw.update(stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            try:
                kernel_cmd = [str(write) if a == _INFO_FD_PLACEHOLDER else a for a in kernel_cmd]
                await super()._async_launch_kernel(kernel_cmd, pass_fds=(write,), **kw)
            finally:
                os.close(write)
            self.stderr_tail = collections.deque(maxlen=STDERR_LINES)
            threading.Thread(target=_keep_last_lines, daemon=True,
                             args=(self.provisioner.process.stderr, self.stderr_tail)).start()
            self.sandbox_pid = await asyncio.to_thread(_child_pid, read, 60)
            if self.sandbox_pid is None:
                status = self.provisioner.process.poll() if self.provisioner else None
                raise SandboxUnavailable("bubblewrap did not start the kernel"
                                         + (f" (exit status {status})" if status else "")
                                         + self._last_words()) from None
            self.ip = f"/proc/{self.sandbox_pid}/root{self.inside_ip}"
            await self._sockets_listening()
        except BaseException:   # a start that fails half-way leaves no sandbox behind
            self.end_sandbox(read)
            raise
        finally:
            os.close(read)

    def end_sandbox(self, info_fd=None):
        """Kill the sandbox this manager started, whatever state its start reached: the
        sandbox's first process (all in its PID namespace die with it) and bwrap itself.

        Killing bwrap alone is not enough: killed right after it started, before the
        sandbox's first process has asked to die with it, it leaves that process running.
        info_fd: bwrap's --info-fd pipe, read (briefly) for the sandbox's pid if not known."""
        if self.sandbox_pid is None and info_fd is not None:
            self.sandbox_pid = _child_pid(info_fd, within=5)
        process = getattr(self.provisioner, "process", None)
        if process is None or process.poll() is not None:
            return   # bwrap has ended, and its sandbox with it (a pid is not reused blindly)
        if self.sandbox_pid is not None and _parent_of(self.sandbox_pid) == process.pid:
            try:
                os.kill(self.sandbox_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.kill()

    async def _sockets_listening(self, timeout=60):
        """Wait until the kernel has made its sockets (before any cell runs): the grader
        connects once, to sockets, never to what a file there may later become."""
        ports = [self.shell_port, self.iopub_port, self.stdin_port, self.control_port]
        paths = [f"{self.ip}-{port}" for port in ports]
        deadline = time.monotonic() + timeout
        while not all(_is_socket(p) for p in paths):
            status = self.provisioner.process.poll() if self.provisioner else None
            if status is not None:
                raise SandboxUnavailable(f"the kernel exited with status {status} before "
                                         f"it listened{self._last_words()}")
            if time.monotonic() > deadline:
                raise SandboxUnavailable(f"the kernel made no sockets in {timeout} s")
            await asyncio.sleep(0.02)

    def _last_words(self, wait=1.0):
        """': LINE', the last thing the kernel (or bwrap) wrote to stderr, if anything."""
        deadline = time.monotonic() + wait   # the pipe may still hold it
        while time.monotonic() < deadline and not self.stderr_tail:
            time.sleep(0.05)
        lines = [line for line in self.stderr_tail if line.strip()]
        return f": {lines[-1].strip()[:300]}" if lines else ""

    def cleanup_ipc_files(self):
        """Nothing to remove: the sockets live in the sandbox's /tmp, gone with it."""


_INFO_FD_PLACEHOLDER = "{info_fd}"


STDERR_LINES = 20   # lines of a kernel's stderr kept


def _keep_last_lines(stream, tail):
    """Read stream to its end, keeping its last lines in tail (long lines cut)."""
    pending = b""
    while chunk := stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()[-1000:]
        tail.extend(line.decode(errors="replace")[:1000] for line in lines)
    if pending:
        tail.append(pending.decode(errors="replace"))


def _is_socket(path):
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


def _child_pid(fd, within):
    """The sandbox's pid from bwrap's --info-fd pipe, read for at most `within` seconds
    (None if bwrap ends or falls silent first)."""
    text, deadline = b"", time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0 and select.select([fd], [], [], left)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return None
        if not chunk:
            break
        text += chunk
        try:
            return int(json.loads(text)["child-pid"])
        except (ValueError, KeyError, TypeError):
            continue   # not all written yet
    return None


def _parent_of(pid):
    """The parent process id of pid (None if there is no such process)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("PPid:"))
    except (OSError, StopIteration, ValueError):
        return None
