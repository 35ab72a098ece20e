"""The wall around every grading kernel: bubblewrap (bwrap), the sandbox Flatpak uses.

Each kernel runs in its own user, PID, network, IPC and mount namespaces as an unprivileged
user: it sees its own processes only, has no network but its own loopback, and its file
system holds the system's libraries, the Python environment, the course library and the
notebook's folder, all read-only, plus one private writable /tmp of bounded size. It talks to
the grader over jupyter_client's `ipc` transport (Unix sockets in a folder bound into the
sandbox), so no TCP port is opened. Its environment is built from an allowlist. With
--die-with-parent it cannot outlive the grading process that started it.
"""
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from . import config

# variables a kernel inherits from the grader, by name; everything else is dropped
ENV_ALLOWED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "NBGRADER_EXECUTION",
               "MAKEMORE_CELL_TIMEOUT")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group",
                "/etc/nsswitch.conf", "/etc/fonts")
INSIDE_TMP = "/tmp"            # the kernel's private writable folder, inside the sandbox
INSIDE_LIBRARY = "/course"     # where the course library is mounted (first on PYTHONPATH)


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot make namespaces here."""


def library_folder():
    """The folder of the course library the grading process itself runs (this checkout)."""
    return Path(__file__).resolve().parent


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
            "--hostname", "grading"]


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


def command(kernel_cmd, workdir, sockets, env, tmp_size=None):
    """The bwrap command line that runs kernel_cmd sandboxed.

    workdir  the notebook's folder: read-only, the working directory
    sockets  the folder of the connection file and the ipc sockets: read-write, same path
    env      the kernel's whole environment (nothing else is inherited)
    """
    names = config.names_path()
    # the private /tmp first: binds of folders that live under /tmp go on top of it
    args = ["bwrap", *_namespaces(), *_system_binds(),
            "--size", str(tmp_size or config.KERNEL_DISK), "--tmpfs", INSIDE_TMP,
            *_python_binds(),
            "--ro-bind", str(library_folder()), f"{INSIDE_LIBRARY}/grader",
            "--ro-bind", str(names), str(names),
            *_font_cache_binds(),
            "--ro-bind", str(workdir), str(workdir),
            "--bind", str(sockets), str(sockets),
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


class BwrapKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel runs inside bubblewrap and listens on ipc sockets.

    The grader sets `sockets` (a folder of its own) and `workdir` before starting it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"

    sockets = None
    workdir = None
    sandbox_env = None

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
        if "ipykernel_launcher" in cmd:   # our launcher: confine, then start ipykernel
            at = cmd.index("ipykernel_launcher")
            cmd[at] = "grader.kernel"
        return command(cmd, self.workdir, self.sockets, self.sandbox_env)
