"""The code policy: what a student's cell may contain, checked by reading it, never by running it.

The grader parses every cell the student wrote (answer cells and cells they added) with `ast`
before the notebook runs; a cell that breaks its policy is not run and its answer fails with a
message naming the line, the construct and the rule. `cmp` and `check` apply the same policy
while the student works, so nobody first learns a rule from a 0.

Each rule is a named unit below. A policy is a set of rules:
    BASE         every student cell of every stage (no private names, no dynamic code or
                 attribute access, imports from an allowlist, no modules the course does not
                 hand out, no frames or code objects)
    NO_AUTOGRAD  BASE + no autograd: stages 2-4 and stage 5's backward pass
    BY_HAND      stage 1's softmax answers: no ready-made softmax or cross-entropy at all
The in-kernel guard (grader.guard) and the sandbox (grader.sandbox) stay behind this wall.
"""
import ast
import functools
import keyword
import re
import sys
import types
import warnings
from dataclasses import dataclass

# ------------------------------------------------------------------ the rules' vocabulary

AUTOGRAD_NAMES = frozenset({
    "grad", "backward", "autograd", "grad_fn", "inference_mode", "enable_grad",
    "set_grad_enabled", "register_hook", "retain_grad", "retains_grad", "func", "functorch",
    "ops", "vjp", "jvp", "jacobian", "hessian", "jacrev", "jacfwd", "vmap", "grad_and_value",
    "forward_ad", "make_dual", "unpack_dual", "next_functions", "saved_tensors",
    "register_post_accumulate_grad_hook", "is_inference_mode_enabled", "_backward_hooks",
    # a deep copy of a tensor copies its .grad too, into the memo dict it is given
    "deepcopy"})
# defining a function with one of these names is the course's own API (stage 5's backward)
AUTOGRAD_DEFINABLE = frozenset({"backward"})
# ...and as attributes: torch.no_grad().prev (the grad mode its `with` block restores), and
# anything named *backward* (PyTorch's backward kernels: torch.batch_norm_backward_elemt)
AUTOGRAD_ATTRIBUTES = frozenset({"prev"})
AUTOGRAD_INFIX = "backward"

DYNAMIC_NAMES = frozenset({
    "getattr", "setattr", "delattr", "vars", "globals", "locals", "eval", "exec", "compile",
    "__import__", "open", "breakpoint", "memoryview", "In", "Out", "get_ipython",
    "display", "help", "type", "timeit"})
# ...and these under any name: they look up attributes or globals by a string (string.Formatter,
# typing.get_type_hints, singledispatch's annotations, functools.wraps(assigned=...), np.bmat,
# np.r_["name"]), build classes or functions from a namespace dict or code (metaclasses,
# dataclasses.FunctionType), reach internals (.mro()) or run code in a thread (tqdm.TMonitor)
DYNAMIC_ATTRIBUTES = frozenset({
    "Formatter", "get_field", "vformat", "get_type_hints", "ForwardRef", "singledispatch",
    "singledispatchmethod", "update_wrapper", "wraps", "make_dataclass", "bmat", "r_", "c_",
    "mro", "ABCMeta", "EnumMeta", "EnumType", "NamedTupleMeta", "FunctionType",
    "MethodDescriptorType", "MethodWrapperType", "WrapperDescriptorType", "TMonitor",
    "attrgetter", "methodcaller",
    # torch.compile hands a backend the traced graph, whose nodes call methods named by
    # strings and whose code is re-executed; tqdm's format_meter formats any object it is given
    "compile", "call_method", "call_function", "call_module", "recompile", "format_meter",
    # the same builtins reached as attributes (of a module in hand: builtins.exec); pandas'
    # eval and query evaluate a string; timeit runs code given as a string; an AttributeError's
    # .obj is the object the lookup failed on (torch.set_default_tensor_type("builtins.x")
    # raises one holding the builtins module: it imports modules named by a string)
    "exec", "eval", "getattr", "setattr", "delattr", "vars", "globals", "locals",
    "breakpoint", "get_ipython", "query", "obj", "timeit", "set_default_tensor_type",
    "read_pickle", "meta_path", "path_hooks",
    # matplotlib's formatters made from a string run its .format() on whatever they are
    # called with, and the string can be built at run time ("{x.gr" + "ad}")
    "set_major_formatter", "set_minor_formatter", "get_major_formatter", "get_minor_formatter",
    "formatter", "StrMethodFormatter",
    # tqdm's bar template, set on a bar (its keyword may only be a literal: visit_keyword)
    "bar_format"})
# what to write instead, where a refused name has an everyday use
DYNAMIC_INSTEAD = {"type": " (to see what x is: x.shape, x.dtype, isinstance(x, torch.Tensor))",
                   "help": " (the docs: torch's and numpy's websites, or Shift+Tab in the lab)",
                   "display": " (print it, or make it the cell's last line)"}
DUNDER = re.compile(r"^__\w+__$")
# a str.format-style field that reaches an attribute or an item: "{0.grad}", "{postfix[0].x}"
FORMAT_REACH = re.compile(r"\{[^{}:!]*[.\[]")
# enum's classes, but as a class's bases: their functional API, Enum("E", {name: value}),
# builds a class from a namespace dict, dunder methods (__torch_function__, __eq__) included
NAMESPACE_CLASSES = frozenset({"Enum", "IntEnum", "Flag", "IntFlag", "StrEnum", "ReprEnum"})

FRAME_ATTRIBUTE = re.compile(r"^(gi|cr|ag|f|tb|co)_[a-z]+$")
FILE_ATTRIBUTES = frozenset({"load", "loadtxt", "fromfile", "genfromtxt", "memmap", "from_file",
                             "save", "savetxt", "savez", "tofile", "format_map", "fromregex",
                             "savez_compressed", "dump", "imread", "imsave", "rc_file",
                             "rc_params_from_file", "rc_context", "PyTorchFileReader",
                             "PyTorchFileWriter", "import_ir_module",
                             "import_ir_module_from_buffer", "names_path", "open", "read_text",
                             "read_bytes", "write_text", "write_bytes", "Path"})
# course functions that read a file a student names: called only as the course calls them, bare
COURSE_FILE_READERS = frozenset({"load_words"})

ALLOWED_MODULES = frozenset({
    "torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.linalg",
    "torch.special", "torch.fft", "torch.random", "torch.cuda",
    "torch.backends", "math", "cmath", "numpy", "numpy.random", "numpy.linalg", "numpy.fft",
    "random", "itertools", "collections", "functools", "dataclasses", "string", "statistics",
    "time", "typing", "matplotlib", "matplotlib.pyplot", "tqdm", "tqdm.auto", "heapq",
    "bisect", "fractions", "decimal", "numbers", "copy", "pprint", "textwrap", "re", "enum"})
# modules a notebook hands out: students may import from them what the course's cells import
COURSE_PACKAGES = ("grader", "makemore")

# PyTorch's ready-made softmax and cross-entropy (what stage 1's by-hand answers must not use)
# (attention is a softmax of its scores, gumbel_softmax one of noisy logits, and kl_div and
# ctc_loss are the NLL of log-probabilities against one-hot targets)
READY_MADE = frozenset({"softmax", "log_softmax", "softmin", "cross_entropy", "nll_loss",
                        "Softmax", "LogSoftmax", "Softmin", "CrossEntropyLoss", "NLLLoss",
                        "Softmax2d", "AdaptiveLogSoftmaxWithLoss", "gumbel_softmax",
                        "scaled_dot_product_attention", "multi_head_attention_forward",
                        "MultiheadAttention", "Transformer", "TransformerEncoder",
                        "TransformerDecoder", "TransformerEncoderLayer", "TransformerDecoderLayer",
                        "kl_div", "KLDivLoss", "ctc_loss", "CTCLoss"})
READY_MADE_CLASSES = frozenset(n for n in READY_MADE if n[0].isupper())
# what a by-hand answer must not reach either, under any name of that family, now or in a
# later torch: log-sum-exp in all its forms (it takes each row's maximum out for the answer),
# every softmax, cross-entropy and NLL (linear_cross_entropy, NLLLoss2d, poisson_nll_loss, ...)
BY_HAND_FAMILY = re.compile(r"(?i)soft_?m(ax|in)|cross_?entropy|nll|log_?(cum_?)?(sum|add)_?exp"
                            r"|bce|kl_?div")
# the names under which the course's notebooks hold modules: an answer may not change what is
# on them (torch.is_grad_enabled = ..., F.softmax = ...), which the course's cells run after
# it. Other modules count where a cell imports them (modules_bound_in), so that a student's
# own variable called `copy` or `time` stays theirs.
MODULE_NAMES = frozenset({"torch", "F", "nn", "np", "plt", "math"})
# grad mode's own context managers: a subclass can change what their `with` block restores
GRAD_MODE_CLASSES = frozenset({"no_grad", "enable_grad", "set_grad_enabled", "inference_mode"})
# what names an answer's own variables may carry although autograd has a function of that
# name: torch's can only be bound through an import or an attribute, both checked
BARE_NAMES_OK = frozenset({"grad", "func", "ops", "vjp", "jvp", "jacobian", "hessian", "jacrev",
                           "jacfwd", "vmap", "grad_and_value"})


@functools.cache
def refused_module_attributes():
    """Names under which the allowed modules hand out a module that is not allowed (torch.utils,
    torch.autograd, numpy.lib, enum.bltns, matplotlib.cbook, ...), unless the same name is also
    something else a student uses (torch.multinomial, Tensor.std, plt.figure). A module handed
    out under such a name (matplotlib.figure) is scanned in turn, so nothing is reached in two
    steps (matplotlib.figure.mimage, torch.cuda.tunable.mp) that is refused in one."""
    import importlib
    import pkgutil

    import torch
    allowed = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # deprecated module attributes warn when read
        for name in sorted(ALLOWED_MODULES):
            try:
                allowed.append(importlib.import_module(name))
            except Exception:   # not installed here: nothing to reach through it either
                continue
        other = set(dir(torch.Tensor)) | {
            attr for module in allowed for attr in dir(module)
            if not isinstance(getattr(module, attr, None), types.ModuleType)}
        passable = ({m.rsplit(".", 1)[-1] for m in ALLOWED_MODULES} | other) \
            - ALWAYS_REFUSED_MODULES
        names, seen, queue = set(), {id(m) for m in allowed}, list(allowed)
        while queue:
            module = queue.pop()
            # its submodules not loaded yet (`from numpy import distutils` loads one): refused
            # by name, or loaded now and scanned in turn where the name is passable
            for sub in pkgutil.iter_modules(getattr(module, "__path__", None) or []):
                full = f"{module.__name__}.{sub.name}"
                if sub.name.startswith("_") or full in sys.modules or full in ALLOWED_MODULES:
                    continue
                if sub.name not in passable:
                    names.add(sub.name)
                    continue
                try:
                    importlib.import_module(full)
                except Exception:   # cannot be loaded here: cannot be reached either
                    continue
            for attr in dir(module):
                value = getattr(module, attr, None)
                if attr.startswith("_") or not isinstance(value, types.ModuleType) \
                        or value.__name__ in ALLOWED_MODULES:
                    continue
                if attr not in passable or value.__name__.split(".")[0] in ALWAYS_REFUSED_MODULES:
                    names.add(attr)
                elif id(value) not in seen:
                    seen.add(id(value))
                    queue.append(value)
    return frozenset(names | ALWAYS_REFUSED_MODULES)


# modules an answer never reaches, under whatever object hands them out
ALWAYS_REFUSED_MODULES = frozenset({
    "os", "sys", "gc", "inspect", "builtins", "importlib", "linecache", "threading", "ctypes",
    "IPython", "pickle", "subprocess", "types", "traceback", "socket", "resource", "signal",
    "weakref", "marshal", "shutil", "tempfile", "io", "pathlib", "asyncio", "concurrent",
    "multiprocessing", "operator", "dis", "codeop", "runpy", "site", "grader", "makemore",
    "xpu"})   # torch.xpu hands out ctypes' cast, pointer and c_void_p
# ...nor by name where a course cell imported one (stage 5's `sys`); the course packages are
# checked by what the notebook imports from them
REFUSED_BARE_MODULES = ALWAYS_REFUSED_MODULES - set(COURSE_PACKAGES)


# ------------------------------------------------------------------ verdicts

@dataclass(frozen=True)
class Violation:
    """One construct that breaks a rule: where, what, and which rule."""
    line: int
    construct: str
    rule: str

    def __str__(self):
        return f"line {self.line}: `{self.construct}`: {self.rule}"


@dataclass(frozen=True)
class Policy:
    """What a cell may contain. course_imports: {(module, name)} the course's cells import."""
    name: str
    autograd: bool = True        # False: no autograd
    by_hand: bool = False        # True: no ready-made softmax / cross-entropy at all
    guard_ready_made: bool = False   # True: ready-made softmax only as a direct call (stage 1)
    definable_dunders: frozenset = frozenset()


BASE = Policy("base")
NO_AUTOGRAD = Policy("no-autograd", autograd=False)
DIAGNOSTICS = Policy("diagnostics", definable_dunders=frozenset({"__init__", "__call__"}))
STAGE1 = Policy("stage-1", guard_ready_made=True)
BY_HAND = Policy("by-hand", guard_ready_made=True, by_hand=True)

# Which policy each cell of each stage stands under: the notebook's default, then answers
# whose policy differs (cells a student adds follow the answer cell before them).
NOTEBOOK_POLICIES = {
    "01": (STAGE1, {"answer_bigram_loss": BY_HAND, "answer_softmax_nll": BY_HAND}),
    "02": (NO_AUTOGRAD, {}),
    "03": (NO_AUTOGRAD, {}),
    "04": (NO_AUTOGRAD, {}),
    "05": (NO_AUTOGRAD, {"answer_make_layers": DIAGNOSTICS, "answer_saturation": DIAGNOSTICS,
                         "answer_update_to_data": DIAGNOSTICS}),
}


def policies_of(notebook):
    """(default policy, {answer grade id: policy}) of a notebook, by its name (01_... to 05_...)."""
    return NOTEBOOK_POLICIES.get(str(notebook)[:2], (BASE, {}))


# ------------------------------------------------------------------ the check

def check_source(source, policy, course_imports=frozenset(), course_autograd=frozenset(),
                 known_modules=frozenset(), course_definitions=None):
    """The violations of policy in a cell's source ([] if it keeps every rule).

    course_imports: the (module, name) pairs the course's own cells import from the course
    packages (grader, makemore); a student may import those and nothing else from them.
    course_autograd: names the course's own cells define that hand on autograd's gradients
    (course_autograd_of); an answer under a no-autograd policy may not use them.
    known_modules: names the cells before this one bound to a module (modules_bound_in), whose
    attributes this cell may not change either.
    course_definitions: what the course's own cells define (course_definitions_of), which
    this cell may not bind to anything else."""
    code, magics = _without_magics(source)
    deep = [Violation(1, "...", "this cell is nested too deeply to be checked")]
    try:
        tree = _tree(code, source)
        found = [] if tree is None else _Checker(policy, course_imports, course_autograd,
                                                 known_modules).run(tree)
        if tree is not None and course_definitions:
            found += [Violation(line, name, "the course's own, which its later cells and the "
                                            "hidden tests call: an answer may not redefine it "
                                            "(give yours another name)")
                      for name, how, line in _bindings(tree) if name in course_definitions
                      and (how != course_definitions[name] or how[0] == "def")]
    except RecursionError:   # too deep to check (and to compile: nothing of it would run)
        found = deep
    return sorted(magics + found, key=lambda v: v.line)


def _tree(code, source):
    """The tree to check: that of code (the cell, its magics made Python) or, where code is
    not Python, of what IPython makes of the cell (`x = !ls`, `/f x`, `?x`, `>>> x`, an
    indented cell); None if IPython cannot run the cell either (a SyntaxError: nothing runs)."""
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        pass
    for text in (_ipython_static(code), _ipython_static(source)):
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        blank = len(source.splitlines()) - len(source.lstrip().splitlines())   # IPython drops
        ast.increment_lineno(tree, blank if text not in (code, source) else 0)   # leading blanks
        return tree
    return None


# IPython magics whose argument is Python code, checked as such; %matplotlib only sets a backend
CODE_MAGICS = ("time", "timeit", "prun")
HELP_LINE = re.compile(r"^\s*\?{0,2}([\w.]+)\?{0,2}\s*$")   # `name?`, `name??`, `?name`
NAME_PATH = re.compile(r"[^\W\d]\w*(\.[^\W\d]\w*)*")      # x, torch.zeros_like
TIMEIT_OPTION = re.compile(r"^-(?:[tcqo]*[nrp]\s*\d+|[tcqo]+)(?:\s+|$)")   # -n1 -r 3 -q -o
# IPython runs a cell of one line that starts with one of these names as that line magic
# (automagic), e.g. `history`, `ls -la`, `pycat notes.txt`, `reset -f`, `xmode`, `env`
LINE_MAGICS = frozenset({
    "alias", "alias_magic", "autoawait", "autocall", "automagic", "autosave", "bookmark", "cat",
    "cd", "clear", "code_wrap", "colors", "conda", "config", "connect_info", "cp", "debug",
    "dhist", "dirs", "doctest_mode", "ed", "edit", "env", "gui", "hist", "history",
    "killbgscripts", "ldir", "less", "lf", "lk", "ll", "load", "load_ext", "loadpy", "logoff",
    "logon", "logstart", "logstate", "logstop", "ls", "lsmagic", "lx", "macro", "magic", "mamba",
    "man", "matplotlib", "micromamba", "mkdir", "more", "mv", "notebook", "page", "pastebin",
    "pdb", "pdef", "pdoc", "pfile", "pinfo", "pinfo2", "pip", "popd", "pprint", "precision",
    "prun", "psearch", "psource", "pushd", "pwd", "pycat", "pylab", "qtconsole", "quickref",
    "recall", "rehashx", "reload_ext", "rep", "rerun", "reset", "reset_selective", "rm",
    "rmdir", "run", "save", "sc", "set_env", "store", "subshell", "sx", "system", "tb", "time",
    "timeit", "unalias", "unload_ext", "uv", "who", "who_ls", "whos", "xdel", "xmode"})
MAGIC_RULE = "IPython magics and shell commands are not run in graded notebooks"


def _ipython_static(code):
    """code as IPython rewrites it before running it (its static transforms), or code itself
    where IPython is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # its tokenizer's, about odd line endings
            return _transformer().transform_cell(code)
    except Exception:   # no IPython here, or a cell its tokenizer gives up on
        return code


@functools.cache
def _transformer():
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager()


def _as_magic(unit, number):
    """The violation if IPython would run unit (a cell, or a code magic's code) as a magic:
    it is one line, starting with a magic's name (IPython's automagic)."""
    if sum(1 for line in unit.splitlines() if line.strip()) != 1:
        return []   # IPython's transforms keep a cell's lines (but for blank ones)
    line = next(line for line in _ipython_static(unit).splitlines() if line.strip())
    word, after = re.match(r"\s*([\w.*]*)\s*(.?)", line).groups()
    return [Violation(number, word, f"IPython would run this one-line cell as %{word}: "
                      f"{MAGIC_RULE}")] if word in LINE_MAGICS and after not in ("=", ",") else []


def _magic_code(word, rest):
    """The Python code a code magic runs (its argument without timeit's options), or None if
    it is not Python (other options: %prun -T writes files)."""
    rest = rest.strip()
    while word == "timeit" and TIMEIT_OPTION.match(rest):
        rest = rest[TIMEIT_OPTION.match(rest).end():]
    try:
        ast.parse(rest)
    except (SyntaxError, ValueError):
        return None
    return None if rest.startswith("-") else rest


def _without_magics(source):
    """The cell as Python: a code magic (`%time x`, `%%timeit`) becomes its code, `%matplotlib`
    nothing and `name?` the name (IPython shows what it holds); any other magic, `!shell`
    line or line IPython runs as a magic is a violation. Lines keep their own endings (a
    U+2028 inside a string is no line break to Python)."""
    lines, refused = [], []
    raw_lines = source.splitlines(keepends=True)
    first_code = next((n for n, line in enumerate(raw_lines, 1) if line.strip()), 1)
    for number, raw in enumerate(raw_lines, 1):
        line = (raw.splitlines() or [""])[0]
        end = raw[len(line):]
        stripped = line.lstrip()
        indent = line[:len(line) - len(stripped)]
        help_line = HELP_LINE.match(line)
        if help_line and "?" in line:   # the name, if it is one (`x.?`, `if?`: nothing)
            name = help_line.group(1)
            lines.append(indent + (name if NAME_PATH.fullmatch(name) and not any(
                keyword.iskeyword(part) for part in name.split(".")) else "pass") + end)
        elif stripped.startswith(("%", "!")):
            word, _, rest = stripped.lstrip("%").partition(" ")
            cell_magic = stripped.startswith("%%")
            code = _magic_code(word, rest) if stripped.startswith("%") and word in \
                CODE_MAGICS else None
            if code is not None:
                lines.append(indent + (code or "pass") + end)
                refused += _as_magic(code, number) if code else []
                if cell_magic and number == first_code:
                    body = "".join(raw_lines[number:])
                    refused += _as_magic(body, number + 1) if body.strip() else []
            elif stripped.startswith("%") and word == "matplotlib" and \
                    re.fullmatch(r"\w*", rest.strip()):
                lines.append(indent + "pass" + end)
            else:
                refused.append(Violation(number, stripped.split()[0], MAGIC_RULE))
                lines.append(indent + "pass" + end)
        else:
            lines.append(raw)
    if not source.lstrip().startswith("%%"):
        refused += _as_magic(source, first_code)
    return "".join(lines), refused


# the hidden part of a test cell: the course's alone, never what students receive
HIDDEN_TESTS = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def _as_received(source):
    """The tree of a cell as students receive it (no hidden tests, magics made Python), or
    None where it does not parse."""
    try:
        return ast.parse(_without_magics(HIDDEN_TESTS.sub("", source))[0])
    except (SyntaxError, ValueError, RecursionError):
        return None


def course_imports_of(sources):
    """{(module, name)} imported from the course packages by the course's own cells, as
    students receive them (hidden tests, which import the grading rules, do not count)."""
    found = set()
    for tree in filter(None, map(_as_received, sources)):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.split(".")[0] in COURSE_PACKAGES:
                found.update((node.module, a.name) for a in node.names)
    return frozenset(found)


def _bindings(tree):
    """(name, how, line) of every name a cell binds in the notebook's namespace: how is
    ("def",) for def and class, ("import", module) or ("from", module, name) for imports,
    ("assign",) for the rest (assignments, loops, with ... as, del, walrus, `global` names)."""
    found, todo = [], list(tree.body)
    for node in ast.walk(tree):   # `global x` in a function binds x in the namespace too
        if isinstance(node, ast.Global):
            found += [(n, ("assign",), node.lineno) for n in node.names]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.append((node.name, ("def",), node.lineno))
            todo += node.decorator_list   # their bodies are their own scopes
            continue
        if isinstance(node, ast.Import):
            found += [(a.asname or a.name.split(".")[0],
                       ("import", a.name if a.asname else a.name.split(".")[0]), node.lineno)
                      for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            found += [(a.asname or a.name, ("from", node.module, a.name), node.lineno)
                      for a in node.names]
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            found.append((node.id, ("assign",), node.lineno))
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            found.append((node.name, ("assign",), node.lineno))   # except E as x, case x
        elif isinstance(node, ast.MatchMapping) and node.rest:
            found.append((node.rest, ("assign",), node.lineno))
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                             ast.GeneratorExp)):   # their own scopes, but for walruses
            found += [(n.target.id, ("assign",), n.lineno) for n in ast.walk(node)
                      if isinstance(n, ast.NamedExpr)]
            continue
        todo += ast.iter_child_nodes(node)
    return list(dict.fromkeys(found))


def course_definitions_of(sources):
    """{name: how} of what the course's own cells define and import at their top level
    (`forward`, `make_parameters`, `Linear`, `cmp`, `torch`): what its later cells and the
    hidden tests call. A student cell may bind such a name only as the course does (`import
    torch` again), never to something of its own."""
    found = {}
    for tree in filter(None, map(_as_received, sources)):
        for name, how, _ in _bindings(tree):
            if how[0] != "assign":
                found[name] = how
    return found


def course_autograd_of(sources):
    """Names of the functions and classes the course's own cells define that hand on what
    autograd computes (they read .grad, switch grad mode on, ...: stage 5's autograd twin
    `autograd_step`), and of those that call them. A course helper that only calls
    .backward() on tensors of its own (a check comparing with autograd) is not among them."""
    defined = {}
    for tree in filter(None, map(_as_received, sources)):
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                walked = list(ast.walk(node))
                hands_on = any(isinstance(n, ast.Attribute) and (
                    n.attr in AUTOGRAD_NAMES - {"backward"} or n.attr in AUTOGRAD_ATTRIBUTES)
                    for n in walked)
                defined[node.name] = hands_on, {n.id for n in walked if isinstance(n, ast.Name)}
    doors = {name for name, (hands_on, _) in defined.items() if hands_on}
    while grown := {name for name, (_, uses) in defined.items() if uses & doors} - doors:
        doors |= grown
    return frozenset(doors)


def _modules_bound(tree, known):
    """Names a tree binds to what may be or hold a module: imports (`import torch as t`, `from
    torch import nn`), and assignments whose value holds a module itself, not only something
    of it (`t = torch`, `u = t`, `mods = [torch]`; not `h = torch.tanh(x)`)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:   # from torch import nn
            bound.update(a.asname or a.name for a in node.names
                         if _is_module(f"{node.module}.{a.name}"))
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value \
                and _holds_module(node.value, MODULE_NAMES | known | bound):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) \
                and _holds_module(node.iter, MODULE_NAMES | known | bound):   # for m in [torch]
            bound.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
    return bound


@functools.cache
def _module_attribute_names():
    """Attribute names under which the allowed modules hand out a module (or torch.Tensor)."""
    return frozenset({m.rsplit(".", 1)[-1] for m in ALLOWED_MODULES} | MODULE_NAMES | {"Tensor"})


@functools.cache
def _is_module(dotted):
    if dotted in ALLOWED_MODULES:
        return True
    if dotted.split(".")[0] not in COURSE_PACKAGES:
        return False
    import importlib.util
    try:
        return importlib.util.find_spec(dotted) is not None
    except (ImportError, ValueError):
        return False


def _holds_module(value, modules):
    """Whether an expression's value is one of the modules named, or a container or choice of
    them (`torch`, `[np, torch]`, `F if x else torch`); what a call returns or an attribute
    holds is not followed (`torch.tanh(x)`, `f(SEED)` are the answer's own values)."""
    if isinstance(value, ast.Name):
        return value.id in modules
    if isinstance(value, ast.Attribute):   # F.torch, torch.nn, torch.Tensor (its methods)
        return value.attr in _module_attribute_names()
    if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        return any(_holds_module(v, modules) for v in value.elts)
    if isinstance(value, ast.Dict):
        return any(_holds_module(v, modules) for v in value.values)
    if isinstance(value, ast.IfExp):
        return _holds_module(value.body, modules) or _holds_module(value.orelse, modules)
    if isinstance(value, ast.BoolOp):
        return any(_holds_module(v, modules) for v in value.values)
    if isinstance(value, (ast.Starred, ast.NamedExpr)):
        return _holds_module(value.value, modules)
    return False


def modules_bound_in(source, known=frozenset()):
    """The names a cell binds to a module, for the cells after it (see check_source)."""
    tree = _as_received(source)
    return set() if tree is None else _modules_bound(tree, set(known))


class _Checker(ast.NodeVisitor):
    def __init__(self, policy, course_imports, course_autograd=frozenset(),
                 known_modules=frozenset()):
        self.policy, self.course_imports, self.found = policy, course_imports, []
        self.course_autograd = course_autograd
        self.module_aliases = set(known_modules)   # names bound to a module, here or before
        self.called = set()   # ids of Attribute/Name nodes that are directly called
        self.bare_calls = set()   # ...with no arguments
        self.bases = set()   # ids of the nodes naming a class's bases

    def run(self, tree):
        self.module_aliases |= _modules_bound(tree, self.module_aliases)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                self.called.add(id(node.func))
                if not node.args and not node.keywords:
                    self.bare_calls.add(id(node.func))
            elif isinstance(node, ast.ClassDef):
                self.bases.update(id(base) for base in node.bases)
        self.visit(tree)
        seen, unique = set(), []
        for v in sorted(self.found, key=lambda v: v.line):
            if (v.line, v.construct) not in seen:
                seen.add((v.line, v.construct))
                unique.append(v)
        return unique

    def refuse(self, node, construct, rule):
        self.found.append(Violation(getattr(node, "lineno", 0), construct, rule))

    # ---- names and attributes

    def check_identifier(self, node, name, attribute, defining=False):
        p = self.policy
        shown = f".{name}" if attribute else name
        if name.startswith("__") and name.endswith("__"):
            if not (defining and name in p.definable_dunders):
                self.refuse(node, shown, "dunder names are the language's internals, not "
                                         "part of an answer")
            return
        if name.startswith("_"):
            self.refuse(node, shown, "private (_underscore) names are off limits in answers: "
                                     "they reach PyTorch's and the grader's internals")
            return
        if not p.autograd and (name in AUTOGRAD_NAMES and not (
                name in AUTOGRAD_DEFINABLE | BARE_NAMES_OK and not attribute) or attribute and (
                name in AUTOGRAD_ATTRIBUTES or AUTOGRAD_INFIX in name)):
            self.refuse(node, shown, "autograd is not allowed here: derive this gradient "
                                     "yourself")
        if not p.autograd and not attribute and name in self.course_autograd:
            self.refuse(node, shown, "this is the course's own code that takes gradients from "
                                     "autograd: an answer here may not use it")
        if not attribute and name in DYNAMIC_NAMES or name in DYNAMIC_ATTRIBUTES or (
                name in NAMESPACE_CLASSES and id(node) not in self.bases):
            self.refuse(node, shown, "dynamic code, attribute or namespace access is not "
                                     "allowed in answers" + DYNAMIC_INSTEAD.get(name, ""))
        if not attribute and name in REFUSED_BARE_MODULES:
            self.refuse(node, shown, "modules the course does not hand out are off limits in "
                                     "answers, even where a course cell imported them")
        if name in COURSE_FILE_READERS and id(node) not in self.bare_calls:
            self.refuse(node, shown, "the course reads its own files: call it as the course "
                                     "does, with no path")
        if attribute and (FRAME_ATTRIBUTE.match(name) or name in FILE_ATTRIBUTES
                          or name in refused_module_attributes()):
            self.refuse(node, shown, "frames, code objects, files and modules the course "
                                     "does not hand out are off limits")
        # bare names are the answer's own (def softmax(...)): PyTorch's are reached through an
        # attribute or an import, both checked here
        if attribute and ((p.by_hand and (name in READY_MADE or BY_HAND_FAMILY.search(name)))
                          or (p.guard_ready_made and name in READY_MADE and (
                              name in READY_MADE_CLASSES or id(node) not in self.called))):
            rule = ("compute it by hand here (max, exp, normalise, log): PyTorch's softmax, "
                    "logsumexp and cross-entropy are not allowed in this answer") \
                if p.by_hand else ("in this notebook PyTorch's softmax and cross-entropy may "
                                   "only be called directly, as F.softmax(...), never imported, "
                                   "renamed or stored")
            self.refuse(node, shown, rule)

    def visit_Name(self, node):
        if node.id == "_" and isinstance(node.ctx, ast.Store):
            return   # the throwaway name; read, it is IPython's last output
        self.check_identifier(node, node.id, attribute=False)

    def visit_Attribute(self, node):
        self.check_identifier(node, node.attr, attribute=True)
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            root = node.value
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            # x.a = ... and x[i].a = ... on the answer's own objects; not on a module, nor on
            # what a call or an expression returns (f().a, [torch][0].a: it may be a module)
            if not isinstance(root, ast.Name) or root.id in MODULE_NAMES | self.module_aliases:
                shown = root.id if isinstance(root, ast.Name) else "(...)"
                self.refuse(node, f"{shown}....{node.attr} = ...", "a module's functions and "
                            "settings are not the answer's to change: the course's cells run "
                            "them after it")
        if node.attr == "format":
            literal = isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            if id(node) not in self.called or not literal or \
                    FORMAT_REACH.search(node.value.value):
                self.refuse(node, ".format(...)", "format strings may not reach attributes or "
                                                  "items, nor be stored (use an f-string)")
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and DUNDER.match(node.value):
            self.refuse(node, repr(node.value), "dunder names are the language's internals, "
                                                "not part of an answer, even as strings")
        if isinstance(node.value, str) and FORMAT_REACH.search(node.value):
            self.refuse(node, repr(node.value)[:40], "format templates may not reach attributes "
                                                     "or items (use an f-string)")

    def visit_FunctionDef(self, node):
        self.check_identifier(node, node.name, attribute=False, defining=True)
        for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
            self.check_identifier(a, a.arg, attribute=False)
        for a in (node.args.vararg, node.args.kwarg):
            if a is not None:
                self.check_identifier(a, a.arg, attribute=False)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
            self.check_identifier(a, a.arg, attribute=False)
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        self.check_identifier(node, node.name, attribute=False, defining=True)
        for stmt in node.body:   # what a class body binds are the class's attributes
            targets = stmt.targets if isinstance(stmt, ast.Assign) else \
                [stmt.target] if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) else []
            for n in (n for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)):
                self.check_identifier(n, n.id, attribute=True)
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and not DUNDER.match(stmt.name):
                self.check_identifier(stmt, stmt.name, attribute=True, defining=True)
        if any(isinstance(base, ast.Starred) for base in node.bases):
            self.refuse(node, f"class {node.name}(*...)", "name a class's bases")
        if not self.policy.autograd:
            for base in node.bases:
                named = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                if named in GRAD_MODE_CLASSES:
                    self.refuse(base, f"class {node.name}({named})", "autograd is not allowed "
                                "here: a subclass of a grad-mode manager can switch it back on")
        self.generic_visit(node)

    def visit_arg(self, node):
        if node.annotation is not None:   # its name is checked where the function is defined
            self.visit(node.annotation)    # annotations run when the function is defined

    def visit_ExceptHandler(self, node):
        if node.name:
            self.check_identifier(node, node.name, attribute=False)
        self.generic_visit(node)

    def visit_Global(self, node):
        for name in node.names:
            self.check_identifier(node, name, attribute=False)

    visit_Nonlocal = visit_Global

    def visit_keyword(self, node):
        if node.arg is None:   # f(**mapping): its names are checked as keywords, so written out
            keys = node.value.keys if isinstance(node.value, ast.Dict) else [None]
            if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in keys):
                self.refuse(node, "**...", "keyword arguments are written out in an answer, "
                                           "not unpacked from a computed mapping")
            else:
                for key, value in zip(keys, node.value.values, strict=True):
                    self.visit_keyword(ast.keyword(arg=key.value, value=value,
                                                   lineno=getattr(node, "lineno", 0)))
                return
        if node.arg and node.arg.startswith("_"):
            self.check_identifier(node, node.arg, attribute=False)
        # a literal template is checked where it stands (visit_Constant); a computed one is not
        if node.arg == "bar_format" and not (
                isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            self.refuse(node, "bar_format=...", "format strings may not reach attributes or "
                                                "items, nor be computed (write it out)")
        self.generic_visit(node)

    def visit_MatchClass(self, node):
        self.refuse(node, "case ...(...)", "class patterns read attributes by name (keywords, "
                                           "__match_args__): use isinstance")
        self.generic_visit(node)

    def visit_MatchAs(self, node):
        if node.name:
            self.check_identifier(node, node.name, attribute=False)
        self.generic_visit(node)

    visit_MatchStar = visit_MatchAs   # case [*name]

    def visit_MatchMapping(self, node):   # case {**name}
        if node.rest:
            self.check_identifier(node, node.rest, attribute=False)
        self.generic_visit(node)

    # ---- imports

    def visit_Import(self, node):
        for alias in node.names:
            self.check_module(node, alias.name)
            if alias.asname:
                self.check_identifier(node, alias.asname, attribute=False)

    def visit_ImportFrom(self, node):
        module = node.module or ""
        if node.level:
            self.refuse(node, f"from {'.' * node.level}{module} import ...",
                        "relative imports are not allowed in answers")
            return
        for alias in node.names:
            if module.split(".")[0] in COURSE_PACKAGES:
                if alias.asname and alias.name in COURSE_FILE_READERS:
                    self.check_identifier(node, alias.name, attribute=False)
                if (module, alias.name) not in self.course_imports:
                    self.refuse(node, f"from {module} import {alias.name}",
                                "from the course's own package import only what the "
                                "notebook's own cells import")
            else:
                self.check_module(node, module)
                full = f"{module}.{alias.name}"
                if alias.name == "*":
                    self.refuse(node, f"from {module} import *", "name what you import")
                elif full not in ALLOWED_MODULES and not (   # `from enum import Enum`: its
                        alias.name in NAMESPACE_CLASSES and not alias.asname):   # uses are checked
                    self.check_identifier(node, alias.name, attribute=True)
            if alias.asname:
                self.check_identifier(node, alias.asname, attribute=False)

    def check_module(self, node, module):
        top = module.split(".")[0]
        if top in COURSE_PACKAGES:
            self.refuse(node, f"import {module}", "from the course's own package import "
                                                  "only what the notebook's own cells import")
        elif module not in ALLOWED_MODULES:
            self.refuse(node, f"import {module}", "imports come from an allowlist (torch, "
                                                  "numpy, math, random, itertools, collections"
                                                  ", ...: grader/policy.py ALLOWED_MODULES)")


def describe(violations, limit=3):
    """One line naming the first violations, for a failing cell."""
    shown = "; ".join(str(v) for v in violations[:limit])
    more = len(violations) - limit
    return shown + (f"; and {more} more" if more > 0 else "")
