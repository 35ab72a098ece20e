"""The grading kernel's guard: autograd off, and a sandbox around the student's code.

The grader sets the MAKEMORE_GUARD environment variable (JSON) for every grading kernel:
    block_autograd  PyTorch's autograd is switched off, so answers cannot come from `.grad`,
                    `backward()`, torch.autograd.grad, torch.func, forward-mode AD or by
                    calling the autograd graph's nodes (`grad_fn`) by hand.
    sandbox         what the kernel may touch (see `sandbox_setup`).
Warnings go to stdout in every grading kernel: nbgrader scores any test cell with stderr
output 0, and a PyTorch warning is not a wrong answer.

The sandbox has two layers, set up in two steps:
1. `confine_process`, run by `python -m grader.kernel` before the kernel starts (so it binds
   every thread): resource limits (address space, file size, no core dumps) and, where the
   Linux kernel offers it, Landlock: the process may read only the Python installation,
   system folders, the grader package, the names file and its notebook's folder; write only
   its private folder; bind only its own ports, connect to no TCP port and signal no process
   outside itself. Landlock is enforced by the operating system, for C code too.
2. `start`, run by the kernel before the first cell: an audit hook (sys.addaudithook, which
   cannot be removed) that refuses opening protected files (the course folder but for the
   notebook's own folder, the repository but for the grader package and the virtualenv, the
   gradebook, the reference cache), writing outside the private folder, starting processes,
   ctypes, network sockets and signals to other processes.
What neither layer can stop is listed in README.md ("What grading defends, and what it cannot").
"""
import json
import os
import resource
import sys
import warnings
from contextlib import contextmanager

GUARD_ENV = "MAKEMORE_GUARD"
START = "__import__('grader.guard').guard.start()"   # what the kernel runs at start-up
PRELOAD = ("numpy", "torch", "torch.nn.functional", "makemore.checks",
           "makemore.data")   # imported before the audit hook, which refuses ctypes


class AutogradOff(RuntimeError):
    """Raised by autograd's entry points while grading."""


def _setup():
    return json.loads(os.environ.get(GUARD_ENV) or "{}")


def start():
    """Apply the setup the grader asked for; a no-op outside grading kernels."""
    setup = _setup()
    warnings.showwarning = _warning_to_stdout
    sandbox = setup.get("sandbox")
    if sandbox:
        cwd = os.getcwd()   # the notebook's folder holds nothing to import
        sys.path[:] = [p for p in sys.path if p not in ("", ".", cwd)]
        for module in PRELOAD:
            __import__(module)
    if setup.get("block_autograd"):
        block_autograd()
    if setup:
        watch_modules()
    if sandbox:
        install_audit_hook(sandbox)


def _warning_to_stdout(message, category, filename, lineno, file=None, line=None):
    sys.stdout.write(warnings.formatwarning(message, category, filename, lineno, line))


# ---------------------------------------------------------------------------- autograd

def _refuse(*args, **kwargs):
    raise AutogradOff("autograd is switched off while grading: compute this gradient yourself")


def _backward(self, *args, **kwargs):
    print("(autograd is switched off while grading: backward() did nothing)")


def _retain_grad(self):
    """retain_grad() does nothing while autograd is off."""


def _grad_mode_stays_off(mode):
    """torch._C._set_grad_enabled while grading: autograd's graph is never recorded."""
    _ORIGINAL_SET_GRAD_ENABLED(False)


class _NoEngine:
    """Stands in for PyTorch's backward engine."""
    def __getattr__(self, name):
        return _refuse


_ORIGINAL_SET_GRAD_ENABLED = None
_NO_GRAD_FN = property(lambda self: None, doc="None while grading: autograd is off")


def _autograd_entry_points():
    """(owner, attribute) of every public way into PyTorch's autograd engines and graph."""
    import torch
    import torch.autograd.forward_ad as fwad
    import torch.autograd.functional as functional
    import torch.autograd.variable as variable
    import torch.func

    points = [(torch.Tensor, "backward"), (variable.Variable, "_execution_engine"),
              (torch.Tensor, "retain_grad"), (torch.Tensor, "grad_fn"),
              (torch._C, "_set_grad_enabled")]
    for owner, names in [
        (torch.autograd, ["backward", "grad"]),
        (functional, ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]),
        (torch.func, ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd",
                      "hessian", "linearize"]),
        (fwad, ["make_dual", "enter_dual_level"]),
        (torch._C, ["_make_dual", "_enter_dual_level", "_ImperativeEngine"]),
    ]:
        points += [(owner, name) for name in names if hasattr(owner, name)]
    return points


def _replacement(owner, name):
    special = {"backward": _backward, "_execution_engine": _NoEngine(),
               "retain_grad": _retain_grad, "grad_fn": _NO_GRAD_FN,
               "_set_grad_enabled": _grad_mode_stays_off}
    return special.get(name, _refuse)


def _switch_off_entry_points():
    global _ORIGINAL_SET_GRAD_ENABLED
    import torch
    if _ORIGINAL_SET_GRAD_ENABLED is None:
        _ORIGINAL_SET_GRAD_ENABLED = torch._C._set_grad_enabled
    for owner, name in _autograd_entry_points():
        setattr(owner, name, _replacement(owner, name))
    _ORIGINAL_SET_GRAD_ENABLED(False)


def _refuse_kernel(*args, **kwargs):
    raise AutogradOff("PyTorch's backward kernels are switched off while grading: "
                      "write the formula yourself")


def _block_backward_kernels():
    """Make PyTorch's own backward kernels (aten::*backward*, e.g. tanh_backward,
    _log_softmax_backward_data, native_batch_norm_backward) raise, however they are called.
    Returns the torch.library.Library holding the override; destroying it restores them."""
    import torch
    library = torch.library.Library("aten", "IMPL")
    names = [n.split("::", 1)[1] for n in torch._C._dispatch_get_all_op_names()
             if n.startswith("aten::") and "backward" in n]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "overriding a previously registered kernel"
        for name in names:
            library.impl(name, _refuse_kernel, "CPU")
    return library


_BACKWARD_KERNELS = None   # the override block_autograd keeps for the life of the process


def block_autograd():
    """Switch off every public way into PyTorch's autograd, for this process.

    Beyond the engine's entry points, grad mode is switched off (and stays off), so no
    graph is recorded whose nodes could be called by hand, and `grad_fn` reads None;
    PyTorch's backward kernels raise, so they cannot stand in for a formula either.
    """
    global _BACKWARD_KERNELS
    _switch_off_entry_points()
    if _BACKWARD_KERNELS is None:
        _BACKWARD_KERNELS = _block_backward_kernels()


@contextmanager
def autograd_blocked():
    """Autograd switched off inside the block only (e.g. around a call to a student's function)."""
    import torch
    enabled = torch.is_grad_enabled()
    saved = [(owner, name, vars(owner)[name] if name in vars(owner) else None)
             for owner, name in _autograd_entry_points()]
    _switch_off_entry_points()
    kernels = _block_backward_kernels() if _BACKWARD_KERNELS is None else None
    try:
        yield
    finally:
        if kernels is not None:
            kernels._destroy()
        for owner, name, value in saved:
            if value is None:
                delattr(owner, name)   # it was inherited (torch.Tensor.grad_fn)
            else:
                setattr(owner, name, value)
        torch._C._set_grad_enabled(enabled)
        put_back_modules()   # what the code in the block changed, e.g. a student's function


# ---------------------------------------------------------------------------- modules

WATCHED = ("math", "random", "numpy", "numpy.random", "numpy.linalg", "numpy.fft", "torch",
           "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.special", "torch.linalg",
           "torch.fft", "torch.random", "torch.Tensor", "torch.nn.Module", "makemore", "grader")
"""What a cell may not change: these modules and classes, and every module of the course
library and the grader, are put back as they were after every cell (see `watch_modules`);
so are the modules the notebook's names hold (np.random, plt, time, ...) and the modules
those hand out as attributes, if they belong to one of the PACKAGES."""
PACKAGES = frozenset({"torch", "numpy", "math", "random", "time", "collections", "functools",
                      "itertools", "statistics", "matplotlib", "pandas", "tqdm", "copy",
                      "string", "makemore", "grader"})


def _watched_class(name):
    """(module, class name) of a WATCHED class ("torch.Tensor"); None for a module."""
    module, _, last = name.rpartition(".")
    return (module, last) if last[:1].isupper() else None


class ModuleWatch:
    """What the watched modules and classes hold, to put back after a cell changed it.

    Names starting with `_` are left out: the code policy refuses them in every student cell,
    and IPython and PyTorch keep their own state there.
    """

    def __init__(self):
        self.saved = {}   # id(owner) -> [owner, its public names and values, its names]
        self.settings = self._settings()
        self.modules_seen = 0   # len(sys.modules) when the watched modules were last looked up

    @staticmethod
    def _settings():
        """Process-wide settings a call changes (no attribute does): {label: (value, setter)}."""
        import numpy as np
        import torch
        printing = torch._tensor_str.PRINT_OPTS
        return {"torch.set_default_dtype": (torch.get_default_dtype(), torch.set_default_dtype),
                "torch.set_printoptions": (dict(vars(printing)),
                                           lambda options: torch.set_printoptions(**options)),
                "np.seterr": (np.geterr(), lambda errors: np.seterr(**errors)),
                "np.set_printoptions": (np.get_printoptions(),
                                        lambda options: np.set_printoptions(**options))}

    def take(self):
        """Remember every watched owner loaded by now that is not remembered yet."""
        for owner in self._owners():
            if id(owner) not in self.saved:
                self.saved[id(owner)] = [owner, self._public(owner), set(vars(owner))]

    def put_back(self) -> list[str]:
        """Undo every change to a remembered owner; the changed names, e.g. `torch.tanh`."""
        changed, current = [], self._settings()
        for label, (value, setter) in self.settings.items():   # first: they rebind attributes
            if current[label][0] != value:
                changed.append(label)
                setter(value)
        for entry in self.saved.values():
            owner, before, names = entry
            now = vars(owner)
            for name, value in before.items():
                if now.get(name, _ABSENT) is not value:
                    changed.append(f"{_label(owner)}.{name}")
                    setattr(owner, name, value)
            if now.keys() != names:   # names added (or private ones dropped) since
                for name in [n for n in now.keys() - names if not n.startswith("_")]:
                    if isinstance(now[name], type(sys)):   # a submodule imported since
                        before[name] = now[name]
                    else:
                        changed.append(f"{_label(owner)}.{name}")
                        delattr(owner, name)
                entry[2] = set(now)
        self.take()
        return changed

    @staticmethod
    def _public(owner):
        return {k: v for k, v in vars(owner).items() if not k.startswith("_")}

    def _owners(self):
        if len(sys.modules) != self.modules_seen:   # something was imported since
            self.modules_seen = len(sys.modules)
            for name in WATCHED:
                if cls := _watched_class(name):
                    if cls[0] in sys.modules:
                        yield getattr(sys.modules[cls[0]], cls[1])
                else:
                    yield from (m for n, m in list(sys.modules.items()) if m is not None and (
                        n == name or (name in ("makemore", "grader")
                                      and n.startswith(name + "."))))
        from IPython import get_ipython
        shell = get_ipython()
        held = [v for v in (shell.user_ns.values() if shell is not None else ())
                if isinstance(v, type(sys))]
        for module in held + [v for m in held for k, v in vars(m).items()
                              if not k.startswith("_") and isinstance(v, type(sys))]:
            if getattr(module, "__name__", "").split(".")[0] in PACKAGES:
                yield module


_ABSENT = object()


def _label(owner):
    return getattr(owner, "__name__", "?").replace("torch.nn.functional", "F")


def watch_modules() -> ModuleWatch:
    """After every cell, put back what it changed in the watched modules and say so.

    The code policy refuses changing a module it can see (`torch.tanh = ...`); this catches a
    module reached some other way (a function's parameter, an object's attribute), so no
    change reaches the course's cells and hidden tests after it.
    """
    global _WATCH
    import importlib

    from IPython import get_ipython
    for name in WATCHED:   # numpy loads its submodules when first used: load them now
        if not _watched_class(name):
            importlib.import_module(name)
    _WATCH = ModuleWatch()
    _WATCH.take()
    shell = get_ipython()
    if shell is not None:
        shell.events.register("post_run_cell", lambda result=None: put_back_modules())
    return _WATCH


_WATCH = None


def put_back_modules():
    """Put back what code run since the last call changed in the watched modules, and say
    what (nothing outside grading kernels)."""
    changed = _WATCH.put_back() if _WATCH is not None else []
    if changed:
        print(f"(grading put back {', '.join(sorted(changed))}: a cell may not change "
              "what a module holds)")


# ---------------------------------------------------------------------------- sandbox

SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys",
               "/dev", "/opt", "/run")


def sandbox_setup(workdir, private, protected, allowed=(), memory=None, file_size=None,
                  writable=(), processes=None):
    """The MAKEMORE_GUARD "sandbox" entry for a kernel.

    workdir    the notebook's folder (the kernel's working directory): readable
    private    the kernel's own folder (HOME, TMPDIR, IPYTHONDIR): readable and writable
    protected  folders and files the kernel must not read (their subfolders too), except
               what lies in workdir, private or allowed
    allowed    further readable folders and files (the grader package, the names file)
    writable   further folders it writes in, for Landlock only
    processes  most processes and threads it may run (RLIMIT_NPROC): only inside bubblewrap,
               where the count is the sandbox's own (its user namespace), not the host user's
    """
    from . import config
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    readable = [str(p) for p in [workdir, private, *allowed, *sorted(prefixes)]]
    return {"workdir": str(workdir), "private": str(private),
            "protected": sorted({str(p) for p in protected}),
            "readable": readable, "writable": [str(p) for p in writable],
            "memory": memory or config.KERNEL_MEMORY,
            "file_size": file_size or config.KERNEL_FILE_SIZE, "processes": processes}


def confine_process(sandbox, ports=()):
    """Resource limits and Landlock for this process and everything it starts; returns the
    Landlock ABI version in force (0: Landlock is not available, only the audit hook guards)."""
    limits = [(resource.RLIMIT_AS, sandbox["memory"]),
              (resource.RLIMIT_FSIZE, sandbox["file_size"]), (resource.RLIMIT_CORE, 0)]
    if sandbox.get("processes"):
        limits.append((resource.RLIMIT_NPROC, sandbox["processes"]))
    for limit, value in limits:
        soft, hard = resource.getrlimit(limit)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (value, hard))
    read = [*SYSTEM_READ, *sandbox["readable"]]
    return landlock(read=[p for p in read if not _contains_protected(p, sandbox)],
                    write=[sandbox["private"], "/dev/null", *sandbox.get("writable", [])],
                    bind_ports=ports)


def _contains_protected(path, sandbox):
    """True if granting path would grant a protected folder (then only the audit hook guards)."""
    path = os.path.realpath(path)
    return any(os.path.realpath(p) == path or os.path.realpath(p).startswith(path.rstrip("/") + "/")
               for p in sandbox["protected"])


# Landlock (linux/landlock.h): syscall numbers are the same on x86_64 and aarch64
_LL_CREATE, _LL_ADD_RULE, _LL_RESTRICT = 444, 445, 446
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1, 2, 4, 8
_FS_ALL_V1 = (1 << 13) - 1            # execute .. make_sym
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2


def landlock(read, write, bind_ports=()):
    """Restrict this process (and its future threads and children) with Landlock: read and
    execute only under `read`, write only under `write`, bind only `bind_ports`, connect to
    no TCP port, signal no outside process. Returns the ABI in force, 0 if unavailable."""
    if not sys.platform.startswith("linux"):
        return 0
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    abi = syscall(_LL_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return 0
    fs = _FS_ALL_V1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]

    class NetPort(ctypes.Structure):
        _fields_ = [("allowed", ctypes.c_uint64), ("port", ctypes.c_uint64)]

    attr = RulesetAttr(fs, net, scoped)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    ruleset = syscall(_LL_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return 0
    file_rights = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | (_FS_TRUNCATE if abi >= 3 else 0)
    try:
        for paths, rights in [(read, _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR), (write, fs)]:
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    allowed = rights if os.path.isdir(path) else rights & file_rights
                    rule = PathBeneath(allowed, fd)
                    if syscall(_LL_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) < 0:
                        raise OSError(ctypes.get_errno(), f"landlock rule for {path}")
                finally:
                    os.close(fd)
        if net:
            for port in bind_ports:
                rule = NetPort(_NET_BIND_TCP, int(port))
                if syscall(_LL_ADD_RULE, ruleset, 2, ctypes.byref(rule), 0) < 0:
                    raise OSError(ctypes.get_errno(), f"landlock rule for port {port}")
        if libc.prctl(38, 1, 0, 0, 0) != 0:    # PR_SET_NO_NEW_PRIVS, required by Landlock
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if syscall(_LL_RESTRICT, ruleset, 0) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


# Events the audit hook refuses outright once the sandbox is on.
_REFUSED = frozenset({
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
    "os.forkpty", "pty.spawn", "os.startfile", "os.link", "os.symlink",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function",
    "ctypes.cdata", "ctypes.cdata/buffer", "ctypes.string_at", "ctypes.wstring_at",
    "ctypes.addressof",
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
    "sys._current_frames", "sys.setprofile",
})
# Events whose first argument is a path to read; then those whose path arguments are written.
_READS = frozenset({"os.listdir", "os.scandir", "glob.glob", "os.chdir", "shutil.copyfile",
                    "shutil.copytree", "shutil.unpack_archive", "sqlite3.connect"})
_WRITES = (("os.remove", (0,)), ("os.rmdir", (0,)), ("os.mkdir", (0,)), ("os.rename", (0, 1)),
           ("os.replace", (0, 1)), ("os.chmod", (0,)), ("os.chown", (0,)), ("os.truncate", (0,)),
           ("os.utime", (0,)), ("os.chflags", (0,)), ("os.setxattr", (0,)),
           ("os.removexattr", (0,)), ("shutil.copyfile", (1,)), ("shutil.copymode", (1,)),
           ("shutil.copystat", (1,)), ("shutil.copytree", (1,)), ("shutil.move", (0, 1)),
           ("shutil.rmtree", (0,)), ("shutil.unpack_archive", (1,)), ("shutil.make_archive", (0,)))
_WRITE_EVENTS = frozenset(name for name, _ in _WRITES)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _plain_path(path, _type=type, _str=str, _bytes=bytes, _isinstance=isinstance,
                _join="".join, _decode=bytes.decode, _paths=None):
    """path as an exact str, read the way the operating system will see it, or None if it is
    an object whose path could change between this check and its use (a custom __fspath__)."""
    if _type(path) is _str:
        return path
    if _isinstance(path, _str):
        return _join((path,))          # the characters themselves, whatever the subclass says
    if _isinstance(path, _bytes):
        return _decode(path, "utf-8", "surrogateescape")
    if _paths is not None and _type(path) in _paths[0] and _type(path).__fspath__ is _paths[1] \
            and _type(path).__str__ is _paths[2]:
        return _join((path.__fspath__(),))
    return None


def _resolve(path, cwd, _getcwd=os.getcwd, _readlink=os.readlink, _lstat=os.lstat,
             _reversed=reversed, _list=list, _oserror=OSError):
    """The absolute, symlink-free form of an exact str path, built from C functions only so
    that monkeypatching os.path or posixpath cannot fool the audit hook."""
    if not path.startswith("/"):
        path = (cwd or _getcwd()) + "/" + path
    todo = _list(_reversed(path.split("/")))
    out = []
    hops = 0
    while todo:
        part = todo.pop()
        if part == "" or part == ".":
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        candidate = "/" + "/".join(out + [part])
        try:
            link = (_lstat(candidate).st_mode & 0o170000) == 0o120000
        except _oserror:
            link = False
        if link and hops < 64:
            hops += 1
            target = _readlink(candidate)
            if target.startswith("/"):
                out = []
            todo.extend(_reversed(target.split("/")))
        else:
            out.append(part)
    return "/" + "/".join(out)


_FROZEN_ATTRIBUTES = frozenset({"__code__", "__defaults__", "__kwdefaults__"})


def install_audit_hook(sandbox):
    """Install the audit hook described in the module docstring (for good: hooks stay).

    The hook uses no global names and no closure: everything it needs is bound as a default
    argument, and replacing a function's code or defaults is refused while grading.
    """
    import pathlib
    paths = ((pathlib.PosixPath, pathlib.PurePosixPath), pathlib.PurePath.__fspath__,
             pathlib.PurePath.__str__)

    def norm(p):
        return _resolve(str(p), None).rstrip("/") + "/"
    writable = (norm(sandbox["private"]), "/dev/null/")
    protected = tuple(norm(p) for p in sandbox["protected"])
    exempt = tuple(e for e in (norm(p) for p in sandbox["readable"])
                   if not any(p.startswith(e) for p in protected))
    pid = os.getpid()
    own_proc = (f"/proc/{pid}/", "/proc/self/", "/proc/thread-self/")

    def hook(event, args, _refused=_REFUSED, _reads=_READS, _writes=_WRITES,
             _write_events=_WRITE_EVENTS, _guarded=_GUARDED_CODE, _function=type(start),  # noqa: B008
             _type=type, _bool=bool, _tuple=tuple,
             _write_flags=_WRITE_FLAGS, _resolve=_resolve, _plain=_plain_path, _paths=paths,
             _protected=protected, _exempt=exempt, _writable=writable, _own_proc=own_proc,
             _pid=pid, _frozen=_FROZEN_ATTRIBUTES, _isinstance=isinstance, _int=int,
             _str=str, _len=len, _error=PermissionError, _getcwd=os.getcwd):
        if event in _refused:
            raise _error(f"{event} is not allowed while grading")
        if event == "object.__setattr__":
            if _len(args) > 1 and _isinstance(args[1], _str) and args[1] in _frozen \
                    and _type(args[0]) is _function and args[0].__code__ in _guarded:
                raise _error("the grading sandbox cannot be changed")
            return
        if event == "os.kill" or event == "os.killpg":
            if args[0] != _pid:
                raise _error("signals to other processes are not allowed while grading")
            return
        write = False
        if event == "open":
            path, mode, flags = args
            if path is None or _isinstance(path, _int):
                return
            write = _isinstance(flags, _int) and _bool(flags & _write_flags)
            if _isinstance(mode, _str) and ("w" in mode or "a" in mode or "x" in mode
                                            or "+" in mode):
                write = True
            reads, writes = (path,), ((path,) if write else ())
        elif event in _write_events:
            writes = ()
            for name, where in _writes:
                if name == event:
                    writes = _tuple(args[i] for i in where if i < _len(args))
            reads = args[:1] if event in _reads else ()
        elif event in _reads:
            reads, writes = args[:1], ()
        else:
            return
        cwd = _getcwd()
        for p, write in [(p, False) for p in reads] + [(p, True) for p in writes]:
            if p is None or _isinstance(p, _int):
                continue
            plain = _plain(p, _paths=_paths)
            if plain is None:
                raise _error(f"{event}: give paths as str, bytes or pathlib.Path while grading")
            full = _resolve(plain, cwd) + "/"
            if write and not full.startswith(_writable):
                raise _error(f"writing {plain} is not allowed while grading "
                             "(write only under $TMPDIR)")
            other_process = (full.startswith("/proc/") and full[6:7].isdigit()
                             and not full.startswith(_own_proc))
            if other_process and not (full.endswith("/stat/") and full.count("/") == 4):  # psutil
                raise _error(f"{plain}: other processes are off limits while grading")
            for root in _protected:
                if full.startswith(root) and not full.startswith(_exempt):
                    raise _error(f"{plain} is off limits while grading")

    sys.addaudithook(hook)
    return hook


# the code of the functions the audit hook runs: nobody may replace it or its defaults
_GUARDED_CODE = frozenset([_resolve.__code__, _plain_path.__code__] + [
    c for c in install_audit_hook.__code__.co_consts if getattr(c, "co_name", "") == "hook"])
