"""GuardedExecute: nbgrader's Execute with every kernel in the sandbox, and every cap named.

The kernel runs inside bubblewrap (grader.sandbox) and talks to the grader over ipc sockets;
inside it, `python -m grader.kernel` adds resource limits, Landlock and an audit hook
(grader.guard). A kernel that dies, hangs, floods its output or uses up the notebook's time
costs only the cells from there on; a kernel that cannot start is retried, and if it still
cannot, the notebook is the grader's fault (status `error`), never the student's 0.
"""
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer, List, Unicode

from .. import config, sandbox
from makemore.checks import ANSWER_MIME
from ..guard import START, sandbox_setup
from .enforce_policy import REFUSED_KEY, refusal_output
from .events import fault, label, record

NOT_RUN_KEY = "makemore_not_run"       # cell metadata: why this cell was not run
QUIET_KEY = "makemore_quiet"           # cell metadata: run without entering IPython's history
GRADER_CELL_KEY = "makemore_grader_cell"   # cell metadata: a cell the grader inserted


class KernelStartFailed(RuntimeError):
    """The kernel did not start, however often it was tried: the grader's fault."""


class LocalKernelManager(AsyncKernelManager):
    """Without bubblewrap (--no-sandbox): the kernel runs as `grader.kernel` on this machine."""

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if "ipykernel_launcher" in cmd:
            at = cmd.index("ipykernel_launcher")
            if at > 0 and cmd[at - 1] == "-m":   # -c: the notebook folder is not on sys.path
                cmd[at - 1:at + 1] = ["-c", "import sys; del sys.path[0]; "
                                            "from grader.kernel import main; main()"]
        return cmd


class GuardedExecute(Execute):
    """nbgrader's Execute in a sandboxed kernel that may die or hang without costing the
    cells before it: the failing cell gets an error output saying why, the cells after it
    stay unexecuted (their tests score 0), and grading goes on."""

    block_autograd = Bool(None, allow_none=True,
                          help="Switch autograd off in the kernel; None: as the notebook's "
                               "makemore.block_autograd says, which RestoreMetadata has taken "
                               "from the course's copy").tag(config=True)
    sandbox = Bool(True, help="Run each kernel in bubblewrap (grader.sandbox); without it only "
                              "the in-kernel layers guard (grader.guard)").tag(config=True)
    protected = List(Unicode(), help="Without bubblewrap: folders the kernel must not "
                                     "read").tag(config=True)
    private_root = Unicode("", help="Where each kernel's private folder is made "
                                    "(default: the system's temporary folder)").tag(config=True)
    output_limit = Integer(config.CELL_OUTPUT_LIMIT,
                           help="Bytes of output of every kind kept per cell").tag(config=True)
    notebook_output_limit = Integer(config.NOTEBOOK_OUTPUT_LIMIT,
                                    help="Bytes of output kept per notebook").tag(config=True)
    notebook_timeout = Integer(config.NOTEBOOK_TIMEOUT,
                               help="Seconds one notebook may run in all").tag(config=True)
    start_tries = Integer(config.KERNEL_START_TRIES,
                          help="How often a kernel that fails to start is tried").tag(config=True)

    def __init__(self, *args, **kwargs):
        sandboxed = kwargs.get("sandbox", True)
        kwargs.setdefault("kernel_manager_class",
                          sandbox.BwrapKernelManager if sandboxed else LocalKernelManager)
        super().__init__(*args, **kwargs)
        if not self.sandbox:
            self.kernel_manager_class = LocalKernelManager

    # ------------------------------------------------------------------ the kernel

    def preprocess(self, nb, resources=None, km=None):
        args = [f"--IPKernelApp.exec_lines={START}", "--IPKernelApp.log_level=ERROR",
                "--HistoryManager.enabled=False"]
        self.extra_arguments += [a for a in args if a not in self.extra_arguments]
        self._resources, self._dead, self._sizes, self._timeouts = resources, None, {}, 0
        self._total, self._flooded = 0, False
        self._iopub, self._cell_timeout = self.iopub_timeout, self.timeout
        self._deadline = time.monotonic() + self.notebook_timeout
        workdir = Path(((resources or {}).get("metadata") or {}).get("path") or os.getcwd())
        if self.private_root:
            os.makedirs(self.private_root, exist_ok=True)
        private = self._private = tempfile.mkdtemp(prefix="kernel-", dir=self.private_root or None)
        try:
            self._workdir = workdir.resolve()
            self._block = self.block_autograd
            if self._block is None:
                self._block = bool(nb.metadata.get("makemore", {}).get("block_autograd"))
            self._env = self._kernel_env(private)
            return super().preprocess(nb, resources, km)
        finally:
            self.timeout = self._cell_timeout
            shutil.rmtree(private, ignore_errors=True)

    def _kernel_env(self, private):
        if self.sandbox:
            guard = sandbox_setup(self._workdir, sandbox.INSIDE_TMP, [],
                                  processes=config.KERNEL_PROCESSES,
                                  allowed=[*(f"{sandbox.INSIDE_LIBRARY}/{p}"
                                             for p in sandbox.PACKAGES),
                                           config.names_path()])
            setup = json.dumps({"block_autograd": self._block, "sandbox": guard})
            env = sandbox.kernel_env(setup)
            if "NBGRADER_EXECUTION" in os.environ:
                env["NBGRADER_EXECUTION"] = os.environ["NBGRADER_EXECUTION"]
            return env
        home = os.path.join(private, "home")
        os.makedirs(home)
        guard = sandbox_setup(self._workdir, home, self.protected,
                              allowed=[*sandbox.library_folders(), config.names_path()])
        setup = json.dumps({"block_autograd": self._block, "sandbox": guard})
        env = sandbox.kernel_env(setup, {"HOME": home, "TMPDIR": home, "PYTHONPATH": "",
                                         "IPYTHONDIR": os.path.join(home, ".ipython"),
                                         "MPLCONFIGDIR": os.path.join(home, ".matplotlib")})
        os.makedirs(env["MPLCONFIGDIR"])
        for cache in sandbox.font_caches():
            shutil.copy(cache, env["MPLCONFIGDIR"])
        return env

    def create_kernel_manager(self):
        """The kernel's connection file goes in its private folder; a sandboxed kernel's
        sockets in its own /tmp, under a name no other kernel uses."""
        km = super().create_kernel_manager()
        km.connection_file = os.path.join(self._private, "connection.json")
        if self.sandbox:
            km.ip = km.inside_ip = f"{sandbox.INSIDE_TMP}/{os.path.basename(self._private)}/kernel"
            km.workdir, km.sandbox_env = self._workdir, self._env
        return km

    async def async_start_new_kernel(self, **kwargs):
        kwargs.setdefault("env", self._env)
        self._start_kwargs, self._start_errors = kwargs, []
        try:
            return await super().async_start_new_kernel(**kwargs)
        except Exception as e:   # tried again with the client (below)
            self._start_failed(e)

    start_new_kernel = run_sync(async_start_new_kernel)

    async def async_start_new_kernel_client(self):
        """Start the client; a kernel that does not come up is started again (bounded)."""
        while len(self._start_errors) < self.start_tries:
            try:
                if self._start_errors:
                    self.km = self.create_kernel_manager()
                    await super().async_start_new_kernel(**self._start_kwargs)
                return await super().async_start_new_kernel_client()
            except Exception as e:   # nbclient has shut the failed kernel down
                self._start_failed(e)
        why = (f"the grading kernel did not start ({self.start_tries} tries; last: "
               f"{self._start_errors[-1]})")
        fault(self._resources, why)
        raise KernelStartFailed(why)

    def _start_failed(self, e):
        self._stop_kernel()
        self._start_errors.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        self.log.warning("kernel start %d failed: %s", len(self._start_errors),
                         self._start_errors[-1])

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    # ------------------------------------------------------------------ cells

    def preprocess_cell(self, cell, resources, index):
        if not self._dead and cell.cell_type == "code" and self._out_of_time():
            self._dead = (f"the notebook used up its {self.notebook_timeout} s of grading time "
                          f"before {label(cell, index)}")
            record(resources, self._dead + "; the cells after it were not run", self.log)
            self._stop_kernel()
        if cell.metadata.get(REFUSED_KEY):   # broke the code policy: never run
            cell.outputs = [refusal_output(cell.metadata[REFUSED_KEY])]
            cell.execution_count = None
            return cell, resources
        if self._dead:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
                cell.metadata[NOT_RUN_KEY] = self._dead
            return cell, resources
        self._index = index
        self.iopub_timeout = self._iopub
        self.timeout = max(1, min(self._cell_timeout, int(self._deadline - time.monotonic())))
        before = self._timeouts
        try:
            self._check_assign_resources(resources)
            cell = self.execute_cell(cell, index,
                                     store_history=not cell.metadata.get(QUIET_KEY))
            if self._timeouts == before:
                self._timeouts = 0
            elif self._timeouts < 2:
                return cell, self.resources
            else:   # its second cell in a row without a reply: the kernel no longer answers
                self._dead = (f"the kernel stopped answering (no reply to {label(cell, index)} "
                              "nor to the cell before it); it was stopped")
                self._stop_kernel()
            if not self._dead:
                return cell, self.resources
        except DeadKernelError:
            self._dead = f"the kernel died in {label(cell, index)}{self._exit_status()}"
        except CellTimeoutError:
            self._dead = (f"{label(cell, index)} ran past the {self.timeout} s limit and did "
                          "not stop when interrupted; the kernel was stopped")
            self._stop_kernel()
        cell.outputs.append(new_output("error", ename="KernelDied", evalue=self._dead,
                                       traceback=[f"KernelDied: {self._dead}"]))
        record(resources, self._dead + "; the cells after it were not run", self.log)
        return cell, resources

    def _out_of_time(self):
        return time.monotonic() >= self._deadline - 1

    def _exit_status(self):
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        code = process.poll() if process is not None else None
        if code is None:
            return ""
        if self.sandbox and code > 128:   # bwrap exits 128 + N when its child died of signal N
            code = 128 - code
        if code < 0:
            import signal
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f" ({name}{': a crash in native code' if name == 'SIGSEGV' else ''})"
        return f" (it exited with status {code})"

    def _stop_kernel(self):
        try:
            if hasattr(self.km, "end_sandbox"):
                self.km.end_sandbox()
            else:
                self.km.provisioner.process.kill()
        except Exception:
            pass

    async def _async_handle_timeout(self, timeout, cell=None):
        self._timeouts += 1
        self.iopub_timeout = min(5, self._iopub)   # interrupted: idle comes now or never
        if cell is not None:
            what = (f"the notebook's {self.notebook_timeout} s of grading time"
                    if self._out_of_time() else f"the {timeout} s limit")
            record(self._resources, f"{label(cell, self._index)} ran past {what} "
                                    "and was interrupted", self.log)
        return await super()._async_handle_timeout(timeout, cell)

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        cell, index = kwargs["cell"], kwargs.get("cell_index", 0)
        if cell.metadata.get(GRADER_CELL_KEY):
            return   # the grader's own cells: what they meet is reported with their test
        for o in cell.outputs:
            if o.output_type == "error" and o.ename in ("SystemExit", "MemoryError"):
                what = "called sys.exit()" if o.ename == "SystemExit" else "ran out of memory"
                record(self._resources, f"{label(cell, index)} {what}", self.log)
            elif o.output_type == "error" and "can't allocate memory" in str(o.evalue):
                record(self._resources, f"{label(cell, index)} ran out of memory "
                                        f"(limit {config.KERNEL_MEMORY // 2**30} GiB)", self.log)

    def _update_display_id(self, display_id, msg):
        """Outputs of cells already run are never changed afterwards (a display update could
        rewrite an earlier cell's reported answer once a carried reference is known)."""

    def output(self, outs, msg, display_id, cell_index):
        """Keep output of every kind (streams, data, errors and their tracebacks) up to the
        cell's and the notebook's caps; name the cap that fired."""
        content = msg.get("content", {})
        size = len(json.dumps(content, default=str))
        used = self._sizes.get(cell_index, 0)
        self._sizes[cell_index] = used + size
        self._total += size
        cell = self.nb.cells[cell_index]
        over = (used + size > self.output_limit or self._total > self.notebook_output_limit)
        if over and msg["msg_type"] == "error":   # an error is kept, cut short: it still fails
            evalue = str(content.get("evalue", ""))[:300]
            ename = str(content.get("ename", "Error"))[:100]
            outs.append(new_output("error", ename=ename, evalue=evalue,
                                   traceback=[f"{ename}: {evalue} [traceback cut]"]))
            return None
        if over and ANSWER_MIME in (content.get("data") or {}) and size <= self.output_limit:
            return super().output(outs, msg, None, cell_index)   # a test's own report
        if self._total > self.notebook_output_limit:
            if not self._flooded:
                self._flooded = True
                record(self._resources, f"the notebook printed more than "
                                        f"{self.notebook_output_limit} bytes (by "
                                        f"{label(cell, cell_index)}); the rest was dropped",
                       self.log)
                outs.append(_cut(self.notebook_output_limit, "in this notebook"))
            return None
        if used + size > self.output_limit:
            if used <= self.output_limit:
                record(self._resources, f"{label(cell, cell_index)} printed more than "
                                        f"{self.output_limit} bytes; the rest was dropped",
                       self.log)
                outs.append(_cut(self.output_limit, "in this cell"))
            return None
        return super().output(outs, msg, None, cell_index)


def _cut(limit, where):
    return new_output("stream", name="stdout",
                      text=f"\n[output cut: more than {limit} bytes {where}]\n")
