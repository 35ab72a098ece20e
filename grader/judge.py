"""nbgrader preprocessors that run and judge a submission outside the student's reach.

In a graded cell, `report(name, value)` hands an answer to the grader as display data. The
grader runs the solution notebook the same way to get the reference answers, and
`JudgeAnswers` compares the two here, in the grading process, where nothing the student's
code does can change the verdict. The cell then passes or fails by its outputs, as nbgrader
scores it. `CarryAnswers` gives later cells the reference value of an answer marked carry=True,
so one mistake costs one answer. `GuardedExecute` runs each notebook in a sandboxed kernel
(grader.guard) and survives its death; `RestoreLayout` puts a submission's cells back in the
course's order. What happened to a notebook on the way (a timeout, a dead kernel, moved or
edited cells) is logged and collected in `EVENTS` for the summary's reason column.
"""
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from unittest import mock

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat.v4 import new_code_cell, new_output
from nbgrader import utils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool, Dict, Integer, List, Unicode

from . import GradingError, config
from .checks import ANSWER_MIME, compare, decode
from .guard import GUARD_ENV, START, sandbox_setup

CARRY_KEY = "makemore_carry"
NOT_RUN_KEY = "makemore_not_run"
EVENTS = {}   # (student, notebook) -> [what happened], filled while grading in this process
# environment variables a grading kernel does not inherit (a gradebook URL, passwords)
SECRET_WORDS = ("PASS", "SECRET", "TOKEN", "KEY", "DB_URL", "DATABASE", "CREDENTIAL")


def _secret(name):
    name = name.upper()
    return name.startswith("PG") or any(w in name for w in SECRET_WORDS)


def _record(resources, text, log=None):
    nbg = (resources or {}).get("nbgrader", {})
    EVENTS.setdefault((nbg.get("student"), nbg.get("notebook")), []).append(text)
    if log:
        log.warning(text)


def _label(cell, index):
    gid = cell.metadata.get("nbgrader", {}).get("grade_id")
    return gid or f"cell {index + 1} (added)"


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel as `python -m grader.kernel` (sandboxed) instead of ipykernel_launcher."""

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
                               "metadata makemore.block_autograd says").tag(config=True)
    sandbox = Bool(True, help="Run the kernel in grader.guard's sandbox").tag(config=True)
    protected = List(Unicode(), help="Folders and files the kernel must not read").tag(config=True)
    private_root = Unicode("", help="Where each kernel's private folder is made "
                                    "(default: the system's temporary folder)").tag(config=True)
    output_limit = Integer(config.CELL_OUTPUT_LIMIT,
                           help="Bytes of output kept per cell").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        block = self.block_autograd
        if block is None:
            block = bool(nb.metadata.get("makemore", {}).get("block_autograd"))
        args = [f"--IPKernelApp.exec_lines={START}", "--IPKernelApp.log_level=ERROR",
                "--HistoryManager.enabled=False"]
        self.extra_arguments += [a for a in args if a not in self.extra_arguments]
        self._resources, self._dead, self._sizes, self._timeouts = resources, None, {}, 0
        self._iopub = self.iopub_timeout
        workdir = ((resources or {}).get("metadata") or {}).get("path") or os.getcwd()
        if self.private_root:
            os.makedirs(self.private_root, exist_ok=True)
        private = self._private = tempfile.mkdtemp(prefix="kernel-", dir=self.private_root or None)
        try:
            setup = {"block_autograd": block}
            if self.sandbox:
                setup["sandbox"] = sandbox_setup(
                    Path(workdir).resolve(), private, self.protected,
                    allowed=[Path(__file__).resolve().parent, config.names_path()])
            self._env = {k: v for k, v in os.environ.items() if not _secret(k)}
            self._env.update(self._kernel_env(private, setup))
            return super().preprocess(nb, resources, km)
        finally:
            shutil.rmtree(private, ignore_errors=True)

    def create_kernel_manager(self):
        """The kernel's connection file (its ports and key) goes in its private folder, where
        no other kernel can read it."""
        km = super().create_kernel_manager()
        km.connection_file = os.path.join(self._private, "connection.json")
        return km

    async def async_start_new_kernel(self, **kwargs):
        kwargs.setdefault("env", self._env)
        return await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)

    @staticmethod
    def _kernel_env(private, setup):
        """A fresh HOME, TMPDIR, IPYTHONDIR and matplotlib folder per kernel: one kernel
        cannot leave start-up files or caches that change another."""
        threads = str(config.KERNEL_THREADS)
        env = {GUARD_ENV: json.dumps(setup), "HOME": private, "TMPDIR": private,
               "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               "OPENBLAS_NUM_THREADS": threads,
               "IPYTHONDIR": os.path.join(private, ".ipython"),
               "MPLCONFIGDIR": os.path.join(private, ".matplotlib"),
               config.NAMES_ENV: str(config.names_path())}
        os.makedirs(env["MPLCONFIGDIR"])
        try:   # matplotlib's font list, so each kernel need not rebuild it
            import matplotlib
            for cache in Path(matplotlib.get_cachedir()).glob("fontlist-*.json"):
                shutil.copy(cache, env["MPLCONFIGDIR"])
        except Exception:
            pass
        return env

    def preprocess_cell(self, cell, resources, index):
        if self._dead:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
                cell.metadata[NOT_RUN_KEY] = self._dead
            return cell, resources
        self._index = index
        self.iopub_timeout = self._iopub
        before = self._timeouts
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            if self._timeouts == before:
                self._timeouts = 0
            elif self._timeouts < 2:
                return cell, resources
            else:   # its second cell in a row without a reply: the kernel no longer answers
                self._dead = (f"the kernel stopped answering (no reply to {_label(cell, index)} "
                              "nor to the cell before it); it was stopped")
                self._stop_kernel()
            if not self._dead:
                return cell, resources
        except DeadKernelError:
            self._dead = f"the kernel died in {_label(cell, index)}{self._exit_status()}"
        except CellTimeoutError:
            self._dead = (f"{_label(cell, index)} ran past the {self.timeout} s limit and did "
                          "not stop when interrupted; the kernel was stopped")
            self._stop_kernel()
        cell.outputs.append(new_output("error", ename="KernelDied", evalue=self._dead,
                                       traceback=[f"KernelDied: {self._dead}"]))
        _record(resources, self._dead + "; the cells after it were not run", self.log)
        return cell, resources

    def _exit_status(self):
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        code = process.poll() if process is not None else None
        if code is None:
            return ""
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
            self.km.provisioner.process.kill()
        except Exception:
            pass

    async def _async_handle_timeout(self, timeout, cell=None):
        self._timeouts += 1
        self.iopub_timeout = min(5, self._iopub)   # interrupted: idle comes now or never
        if cell is not None:
            _record(self._resources, f"{_label(cell, self._index)} ran past the {timeout} s limit "
                                     "and was interrupted", self.log)
        return await super()._async_handle_timeout(timeout, cell)

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        cell, index = kwargs["cell"], kwargs.get("cell_index", 0)
        for o in cell.outputs:
            if o.output_type == "error" and o.ename in ("SystemExit", "MemoryError"):
                what = "called sys.exit()" if o.ename == "SystemExit" else "ran out of memory"
                _record(self._resources, f"{_label(cell, index)} {what}", self.log)
            elif o.output_type == "error" and "can't allocate memory" in str(o.evalue):
                _record(self._resources, f"{_label(cell, index)} ran out of memory "
                                         f"(limit {config.KERNEL_MEMORY // 2**30} GiB)", self.log)

    def _update_display_id(self, display_id, msg):
        """Outputs of cells already run are never changed afterwards (a display update could
        rewrite an earlier cell's reported answer once a carried reference is known)."""

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in
                                                       (content.get("data") or {}).values())
        used = self._sizes.get(cell_index, 0)
        self._sizes[cell_index] = used + size
        if used + size > self.output_limit:
            if used <= self.output_limit:
                _record(self._resources, f"{_label(self.nb.cells[cell_index], cell_index)} "
                                         f"printed more than {self.output_limit} bytes; the "
                                         "rest was dropped", self.log)
                cut = f"\n[output cut: more than {self.output_limit} bytes]\n"
                outs.append(new_output("stream", name="stdout", text=cut))
            return None
        return super().output(outs, msg, None, cell_index)


class RestoreLayout(NbGraderPreprocessor):
    """Before nbgrader's OverwriteCells: the submission's cells in the course's order.

    Cells are matched with the release by grade id; moved cells go back to their place (cells
    the student added travel with the cell before them), deleted locked cells are restored,
    a deleted answer cell comes back as the release's unanswered stub, and edited locked
    cells are noted (OverwriteCells restores their source)."""

    def preprocess(self, nb, resources):
        nbg = resources["nbgrader"]
        release = Path(self.config.CourseDirectory.root or ".") / "release" / nbg["assignment"] \
            / f"{nbg['notebook']}.ipynb"
        if not release.exists():
            return nb, resources
        course = nbformat.read(str(release), as_version=4)
        order = [_any_id(c) for c in course.cells]
        known = {gid: c for gid, c in zip(order, course.cells, strict=True) if gid}
        groups, current, seen = {None: []}, None, []
        for cell in nb.cells:
            gid = _any_id(cell)
            if gid in known and gid not in groups:
                current = gid
                groups[gid] = [cell]
                seen.append(gid)
            else:
                groups[current].append(cell)
        cells, restored, stubs, edited = list(groups[None]), [], [], []
        for gid in (g for g in order if g):
            if gid in groups:
                mine, theirs = groups[gid][0], known[gid]
                if utils.is_locked(theirs) and mine.source != theirs.source:
                    edited.append(gid)
                cells += groups[gid]
            else:
                cells.append(nbformat.from_dict(json.loads(json.dumps(known[gid]))))
                (restored if utils.is_locked(known[gid]) else stubs).append(gid)
        if seen != [g for g in order if g in groups]:
            _record(resources, "cells were moved: graded in the course's order", self.log)
        for what, ids in [("deleted cells restored", restored),
                          ("answer cells deleted (graded as unanswered)", stubs),
                          ("locked cells edited (the course's version was run)", edited)]:
            if ids:
                _record(resources, f"{what}: {', '.join(ids)}", self.log)
        nb.cells = cells
        return nb, resources


def _any_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


class ReferenceAnswers(NbGraderPreprocessor):
    """Holds the reference answers: {notebook: {grade_id: [answer record, ...]}}.

    Not given (as under plain `nbgrader autograde` in the course folder), they are read from
    the course's reference cache, or computed by running the source notebook and cached."""
    references = Dict().tag(config=True)

    def expected(self, resources):
        nbg = resources["nbgrader"]
        if nbg["notebook"] not in self.references:
            source = Path(self.config.CourseDirectory.root or ".") / "source" / nbg["assignment"] \
                / f"{nbg['notebook']}.ipynb"
            self.references[nbg["notebook"]] = cached_reference_answers(source, self.config)
        return self.references[nbg["notebook"]]


def _grade_id(cell):
    return cell.metadata.nbgrader["grade_id"] if utils.is_grade(cell) else None


class CarryAnswers(ReferenceAnswers):
    """After each graded cell, a cell setting its carried answers to their reference values."""

    def preprocess(self, nb, resources):
        expected = self.expected(resources)
        cells = []
        for cell in nb.cells:
            cells.append(cell)
            carried = [r for r in expected.get(_grade_id(cell), []) if r.get("carry")]
            if carried:
                source = "\n".join(
                    f"{r['name']} = __import__('grader.checks').checks.decode({dict(r)!r})"
                    for r in carried if r["name"].isidentifier())
                cells.append(new_code_cell(source, metadata={CARRY_KEY: True}))
        nb.cells = cells
        return nb, resources


class JudgeAnswers(ReferenceAnswers):
    """Judge every graded cell's reported answers against the reference answers.

    Only this judgement decides a graded cell: a cell's value is never read as partial credit
    (an execute_result becomes plain display data), and a graded cell that did not run fails."""

    def preprocess(self, nb, resources):
        expected = self.expected(resources)
        nb.cells = [c for c in nb.cells if not c.metadata.get(CARRY_KEY)]
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            not_run = cell.metadata.pop(NOT_RUN_KEY, None)
            reported = [o["data"][ANSWER_MIME] for o in cell.outputs
                        if ANSWER_MIME in o.get("data", {})]
            cell.outputs = [o for o in cell.outputs if ANSWER_MIME not in o.get("data", {})]
            if not _grade_id(cell):
                continue
            for o in cell.outputs:
                if o.output_type == "execute_result":
                    o.output_type = "display_data"
                    o.pop("execution_count", None)
            if not_run:
                cell.outputs.append(new_output("error", ename="NotRun", evalue=not_run,
                                               traceback=[f"NotRun: not run because {not_run}"]))
            elif _grade_id(cell) in expected:
                judge_cell(cell, expected[_grade_id(cell)], reported)
            for o in cell.outputs:   # a traceback would quote the hidden test code
                if o.output_type == "error":
                    o.traceback = [f"{o.ename}: {o.evalue}"]
        hide_hidden_tests(nb)
        return nb, resources


HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def hide_hidden_tests(nb):
    """Outputs that quote hidden test code (a student's code can print the cells it runs,
    e.g. `print(In)`) are replaced by a note, so the feedback never shows it (nbgrader #917)."""
    lines = {line.strip() for cell in nb.cells if cell.cell_type == "code"
             for block in HIDDEN.findall(cell.source) for line in block.splitlines()
             if len(line.strip()) >= 8 and not line.strip().startswith("#")}
    lines.add("### BEGIN HIDDEN TESTS")
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for i, o in enumerate(cell.outputs):
            text = json.dumps(o)
            if not any(line in text or json.dumps(line)[1:-1] in text for line in lines):
                continue
            note = "[output hidden by the grader: it quotes the hidden tests]"
            if o.output_type == "error":   # still an error: hiding never turns a cell green
                cell.outputs[i] = new_output("error", ename=o.ename, evalue=note,
                                             traceback=[f"{o.ename}: {note}"])
            else:
                cell.outputs[i] = new_output("stream", name="stdout", text=note + "\n")


def judge_cell(cell, expected, reported):
    """Append the verdict to a graded cell's outputs: pass, or an error saying what is wrong."""
    answers, repeated = {}, set()
    for record in reported:
        if isinstance(record, dict):
            name = record.get("name")
            if name in answers and answers[name] != record:
                repeated.add(name)
            answers.setdefault(name, record)
    lines, problems = [], []
    for reference in expected:
        name = reference["name"]
        if name in repeated:
            problems.append(f"{name}: reported more than once with different values "
                            "(only the test's own report counts)")
            continue
        if name not in answers:
            problems.append(f"{name}: no answer reached the grader (the cell stopped before it)")
            continue
        try:
            verdict = compare(decode(answers[name]), decode(reference))
        except Exception as e:   # a malformed record is a wrong answer, never a crash
            problems.append(f"{name}: unreadable answer ({e})")
            continue
        lines.append(verdict.line(name))
        if not verdict.passed:
            problems.append(f"{name}: {verdict.problem}")
    if not problems:   # warnings or errors elsewhere in the cell do not undo a right answer
        cell.outputs = [o for o in cell.outputs if o.output_type != "error"
                        and not (o.output_type == "stream" and o.name == "stderr")]
    if lines:
        text = "\n".join(lines) + "\n(compared with the reference solution)\n"
        cell.outputs.append(new_output("stream", name="stdout", text=text))
    if problems:
        cell.outputs.append(new_output("error", ename="WrongAnswer", evalue="; ".join(problems),
                                       traceback=["WrongAnswer: " + p for p in problems]))


def reference_answers(path, cfg):
    """{grade_id: [answer records]} from running the solution notebook at path as nbgrader would."""
    nb = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    with tempfile.TemporaryDirectory() as work, \
            mock.patch.dict(os.environ, {"NBGRADER_EXECUTION": "autograde"}):
        run = GuardedExecute(config=cfg, block_autograd=False)
        run.preprocess(nb, {"metadata": {"path": work}})
    answers = {}
    for cell in nb.cells:
        gid = _grade_id(cell) if cell.cell_type == "code" else None
        if gid is None:
            continue
        failed = [o for o in cell.outputs if o.output_type == "error"]
        if failed:
            raise GradingError(f"{path.name}: the solution fails its own test {gid}: "
                               f"{failed[0].ename}: {failed[0].evalue}")
        records = [o["data"][ANSWER_MIME] for o in cell.outputs if ANSWER_MIME in o.get("data", {})]
        if records:
            answers[gid] = records
    return answers


REFERENCE_CACHE = ".references"   # in the course folder, out of the kernels' reach


def reference_key(path):
    """What the reference answers of a solution notebook depend on, hashed."""
    import torch
    h = hashlib.sha256()
    checks = Path(__file__).parent / "checks.py"
    for part in [Path(path).read_bytes(), torch.__version__.encode(),
                 config.names_path().read_bytes(), checks.read_bytes()]:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:24]


def reference_cache(root):
    """The folder of cached reference answers of the course at root (see config)."""
    return Path(os.environ.get(config.REFERENCE_CACHE_ENV) or Path(root) / REFERENCE_CACHE)


def cached_reference_answers(path, cfg):
    """reference_answers(path), kept in the reference cache keyed by reference_key(path).

    Processes asking at once (parallel graders, two instructors) compute it once: the first
    holds a lock on the entry while it runs the solution, the others wait and read."""
    path = Path(path)
    root = Path(cfg.CourseDirectory.root or path.parents[2])
    cache = reference_cache(root) / f"{path.stem}-{reference_key(path)}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.exists():
            return json.loads(cache.read_text())
        answers = reference_answers(path, cfg)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(answers, sort_keys=True))
        os.replace(tmp, cache)
    return answers
