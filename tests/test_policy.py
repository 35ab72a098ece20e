"""The code policy (grader.policy), read statically: what a student's cell may and may not hold.

ALLOWED is realistic code for "Becoming a backprop ninja", each row under the policy of the
cell it would be written in; every row must pass. REFUSED holds one attack per row (get
gradients from autograd under NO_AUTOGRAD, use PyTorch's softmax family under BY_HAND or
STAGE1, reach os, files, frames, globals, IPython's history or modules the course does not
hand out); every row must be refused, and where a row gives a line, the first violation must
name it. Rows marked "bypass" were allowed before the policy was fixed for them.
"""
import pytest

from grader.policy import BASE, BY_HAND, DIAGNOSTICS, NO_AUTOGRAD, STAGE1, check_source

# what the course's own cells import from the course library (stage 1 also imports the module
# makemore.data itself, which is how a student has `data` in hand)
COURSE_IMPORTS = frozenset({
    ("makemore.checks", "cmp"), ("makemore.checks", "check"), ("makemore.checks", "report"),
    ("makemore.checks", "by_hand"), ("makemore.config", "SEED"), ("makemore.data", "load_words"),
    ("makemore", "data")})
# what stage 5's course cells define that hands on autograd's gradients (course_autograd_of)
COURSE_AUTOGRAD = frozenset({"autograd_step"})


def cell(*lines):
    """A cell of several lines."""
    return "\n".join(lines)


def ok(policy, source, id):
    return pytest.param(policy, source, id=id)


def no(policy, source, id, line=None):
    return pytest.param(policy, source, line, id=id)


ALLOWED = [
    # ---- stage 2: backprop step by step, under NO_AUTOGRAD
    ok(NO_AUTOGRAD, cell("dlogprobs = torch.zeros_like(logprobs)",
                         "dlogprobs[range(n), Yb] = -1.0 / n"), "dlogprobs-indexed"),
    ok(NO_AUTOGRAD, "dprobs = (1.0 / probs) * dlogprobs", "dprobs"),
    ok(NO_AUTOGRAD, "dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)", "sum-keepdim"),
    ok(NO_AUTOGRAD, "dcounts_sum = -counts_sum**-2 * dcounts_sum_inv", "power-rule"),
    ok(NO_AUTOGRAD, cell("dcounts = counts_sum_inv * dprobs",
                         "dcounts += torch.ones_like(counts) * dcounts_sum"), "two-uses-add"),
    ok(NO_AUTOGRAD, "dlogit_maxes = (-dnorm_logits).sum(1, keepdim=True)", "negated-sum"),
    ok(NO_AUTOGRAD, cell("dlogits = dnorm_logits.clone()",
                         "dlogits += F.one_hot(logits.max(1).indices, num_classes=logits.shape[1])"
                         " * dlogit_maxes"), "one-hot-of-argmax"),
    ok(NO_AUTOGRAD, "dh = dlogits @ W2.T", "matmul-transpose"),
    ok(NO_AUTOGRAD, "dW2 = h.T @ dlogits", "weight-gradient"),
    ok(NO_AUTOGRAD, "db2 = dlogits.sum(0)", "bias-gradient"),
    ok(NO_AUTOGRAD, "dhpreact = (1.0 - h**2) * dh", "tanh-local-derivative"),
    ok(NO_AUTOGRAD, "dbnvar = -0.5 * (bnvar + 1e-5)**-1.5 * dbnvar_inv", "bnvar"),
    ok(NO_AUTOGRAD, "dbndiff2 = 1.0 / (n - 1) * torch.ones_like(bndiff2) * dbnvar",
       "bessel-correction"),
    ok(NO_AUTOGRAD, "demb = dembcat.view(emb.shape)", "view-back"),
    ok(NO_AUTOGRAD, cell("dC = torch.zeros_like(C)",
                         "for k in range(Xb.shape[0]):",
                         "    for j in range(Xb.shape[1]):",
                         "        ix = Xb[k, j]",
                         "        dC[ix] += demb[k, j]"), "embedding-loop"),
    ok(NO_AUTOGRAD, "dC = torch.zeros_like(C).index_add_(0, Xb.view(-1), demb.view(-1, n_embd))",
       "index-add"),
    ok(NO_AUTOGRAD, cell("a = dh.numpy()", "b = np.array(a)", "print(np.abs(a - b).max())"),
       "numpy-conversions"),
    ok(NO_AUTOGRAD, cell("def tanh_backward(h, dh):",
                         "    \"\"\"Local derivative of tanh, times the incoming gradient.\"\"\"",
                         "    return (1 - h**2) * dh",
                         "",
                         "dhpreact = tanh_backward(h, dh)"), "helper-function"),
    ok(NO_AUTOGRAD, "print(f\"{'dh':15s} | max diff: {(dh - dh_mine).abs().max().item():.2e}\")",
       "f-string"),
    ok(NO_AUTOGRAD, "print('{:.4f}'.format(loss.item()))", "literal-format"),
    ok(NO_AUTOGRAD, cell("with torch.no_grad():", "    W1 -= 0.1 * dW1"), "no-grad-block"),
    ok(NO_AUTOGRAD, "diffs = [(a - b).abs().max().item() for a, b in zip(mine, theirs)]",
       "list-comprehension"),
    ok(NO_AUTOGRAD, "expected = -math.log(1 / 27)", "math-log"),
    ok(NO_AUTOGRAD, "import copy\nsaved = copy.copy(shapes)", "shallow-copy"),
    ok(BASE, "df = pd.DataFrame({'mean': means, 'std': stds}).round(3)", "pandas-table"),
    ok(BASE, "y = torch.nn.functional.relu(x)", "functional-through-attributes"),
    ok(BASE, "plt.plot(x, y, **{'color': 'k', 'alpha': 0.5})", "literal-keywords-unpacked"),
    ok(BASE, "f = lambda *a, **k: None", "lambda-keyword-parameters"),
    ok(NO_AUTOGRAD, "%time dC = torch.zeros_like(C).index_add_(0, Xb.view(-1), demb.view(-1, 10))",
       "time-magic"),
    ok(NO_AUTOGRAD, "%timeit -n 10 -r 3 dh = dlogits @ W2.T", "timeit-options"),
    ok(NO_AUTOGRAD, cell("%%timeit", "dW1 = embcat.T @ dhprebn"), "timeit-cell-magic"),
    ok(NO_AUTOGRAD, "F.one_hot?", "help-line"),
    ok(NO_AUTOGRAD, "%matplotlib inline", "matplotlib-inline"),
    ok(NO_AUTOGRAD, cell("assert dC.shape == C.shape, dC.shape",
                         "print(torch.allclose(dh, dh_mine, atol=1e-6))"), "assert-allclose"),
    ok(NO_AUTOGRAD, "n_params = sum(p.nelement() for p in parameters)", "generator-sum"),
    ok(NO_AUTOGRAD, "biggest = max(parameters, key=lambda p: p.numel())", "lambda-key"),
    ok(NO_AUTOGRAD, "debug = True", "one-line-assignment-to-a-magic-name"),
    ok(NO_AUTOGRAD, "print(torch.is_grad_enabled())", "grad-mode-query"),
    # ---- stages 3 to 5: fused backward passes and training, under NO_AUTOGRAD
    ok(NO_AUTOGRAD, cell("def cross_entropy_backward(logits, Y):",
                         "    n = logits.shape[0]",
                         "    dlogits = F.softmax(logits, 1)",
                         "    dlogits[torch.arange(n), Y] -= 1",
                         "    return dlogits / n"), "fused-cross-entropy"),
    ok(NO_AUTOGRAD, cell("dlogits.scatter_add_(1, Y.view(n, 1), torch.full((n, 1), -1.0))",
                         "dlogits.div_(n)"), "scatter-add"),
    ok(NO_AUTOGRAD, cell("dhprebn = torch.sub(dhpreact, dbnbias, alpha=1 / n)",
                         "dhprebn.addcmul_(bnraw, dbngain, value=-1 / (n - 1))",
                         "dhprebn.mul_(bngain * bnvar_inv)"), "fused-batchnorm"),
    ok(NO_AUTOGRAD, cell("def backward(parameters, cache, Xb, Yb):",
                         "    C, W1, _, W2, _, bngain, _ = parameters",
                         "    dlogits = cross_entropy_backward(cache.logits, Yb)",
                         "    return [dlogits @ W2.T]"), "stage5-backward-definition"),
    ok(NO_AUTOGRAD, cell("with torch.no_grad():",
                         "    loss, cache = forward(parameters, Xb, Yb)",
                         "    for p, dp in zip(parameters, backward(parameters, cache, Xb, Yb)):",
                         "        p -= lr * dp"), "train-step"),
    ok(NO_AUTOGRAD, cell("try:", "    k = int(s)", "except ValueError as e:", "    k = 0",
                         "while k < 3:", "    k += 1"), "try-while"),
    # ---- stage 5's diagnostics (DIAGNOSTICS: autograd and stage 5's classes allowed)
    ok(DIAGNOSTICS, cell("class Linear:",
                         "    def __init__(self, fan_in, fan_out, g, bias=True):",
                         "        self.weight = torch.randn((fan_in, fan_out), generator=g)"
                         " / fan_in**0.5",
                         "        self.bias = torch.zeros(fan_out) if bias else None",
                         "",
                         "    def __call__(self, x):",
                         "        self.out = x @ self.weight",
                         "        if self.bias is not None:",
                         "            self.out += self.bias",
                         "        return self.out",
                         "",
                         "    def parameters(self):",
                         "        return [self.weight] + ([self.bias] if self.bias else [])"),
       "stage5-class"),
    ok(DIAGNOSTICS, cell("def saturation(t):",
                         "    return (t.abs() > 0.97).float().mean().item() * 100"), "saturation"),
    ok(DIAGNOSTICS, "ud.append([((lr * p.grad).std() / p.data.std()).log10().item() "
                    "for p in parameters])", "update-to-data-with-grad"),
    ok(DIAGNOSTICS, cell("for i, layer in enumerate(layers[:-1]):",
                         "    if isinstance(layer, Tanh):",
                         "        t = layer.out.grad",
                         "        hy, hx = torch.histogram(t, density=True)",
                         "        plt.plot(hx[:-1].detach(), hy.detach())",
                         "plt.legend(legends)"), "gradient-histograms"),
    ok(DIAGNOSTICS, cell("plt.figure(figsize=(20, 10))",
                         "plt.imshow(h.abs() > 0.99, cmap='gray', interpolation='nearest')"),
       "imshow"),
    # ---- stage 1 (STAGE1: autograd allowed; softmax only called directly)
    ok(STAGE1, cell("for p in parameters:", "    p.grad = None", "loss.backward()",
                    "for p in parameters:", "    p.data += -lr * p.grad"), "stage1-sgd"),
    ok(STAGE1, "probs = F.softmax(logits, 1)", "stage1-direct-softmax"),
    ok(STAGE1, "loss = F.cross_entropy(logits, Y)", "stage1-direct-cross-entropy"),
    ok(STAGE1, "words = load_words()", "load-words-as-the-course-does"),
    ok(STAGE1, cell("chars = sorted(set(''.join(words)))",
                    "stoi = {s: i + 1 for i, s in enumerate(chars)}"), "dict-comprehension"),
    ok(STAGE1, "g = torch.Generator().manual_seed(SEED)", "generator"),
    ok(STAGE1, "from makemore.checks import check", "course-import"),
    # ---- stage 1's by-hand answers (BY_HAND)
    ok(BY_HAND, cell("counts = logits.exp()",
                     "probs = counts / counts.sum(1, keepdims=True)",
                     "loss = -probs[torch.arange(n), Y].log().mean()"), "by-hand-softmax"),
    ok(BY_HAND, cell("norm_logits = logits - logits.max(1, keepdim=True).values",
                     "counts = norm_logits.exp()",
                     "probs = counts / counts.sum(1, keepdim=True)"), "by-hand-stable"),
    ok(BY_HAND, "logits = F.one_hot(xs, num_classes=27).float() @ W", "by-hand-one-hot"),
    ok(NO_AUTOGRAD, "logprobs = logits - logits.logsumexp(1, keepdim=True)",
       "logsumexp-outside-by-hand"),
    ok(BY_HAND, "p = np.exp(l) / np.exp(l).sum(1, keepdims=True)", "by-hand-numpy"),
    ok(BASE, "x = [i**2 for i in range(10) if i % 2]", "base-comprehension"),
    # ---- names an answer gives its own things, which autograd or PyTorch also use
    ok(NO_AUTOGRAD, cell("grads = [dC, dW1, db1]",
                         "updated = [p - 0.1 * grad for p, grad in zip(parameters, grads)]"),
       "own-variable-grad"),
    ok(NO_AUTOGRAD, cell("func = lambda t: t * 2", "ops = 3", "jacobian = dW @ W.T"),
       "own-variables-func-ops-jacobian"),
    ok(BY_HAND, cell("def softmax(logits):",
                     "    counts = (logits - logits.max(1, keepdim=True).values).exp()",
                     "    return counts / counts.sum(1, keepdim=True)",
                     "probs = softmax(logits)"), "own-softmax-by-hand"),
    ok(STAGE1, cell("def log_softmax(x):", "    return x - x.exp().sum(1, keepdim=True).log()"),
       "own-log-softmax"),
    ok(DIAGNOSTICS, cell("shown = '{l_bar}{bar}| {n_fmt}/{total_fmt}'",
                         "for i in tqdm(range(10), bar_format='{l_bar}{bar}| {n_fmt}'):",
                         "    pass"), "tqdm-literal-bar-format"),
    ok(NO_AUTOGRAD, cell("with torch.no_grad():", "    h = emb.view(32, -1) @ W1"),
       "no-grad-block"),
    ok(NO_AUTOGRAD, "check_cross_entropy('n=3', torch.randn(3, 27), torch.tensor([1, 2, 3]))",
       "course-check-helper"),
    ok(NO_AUTOGRAD, cell("def linear(input, weight, bias):", "    return input @ weight + bias"),
       "parameter-named-input"),
]

_TF = "classmethod(lambda c, f, t, a, k=None: True)"

REFUSED = [
    # ---- (a) autograd under NO_AUTOGRAD: the obvious doors
    no(NO_AUTOGRAD, "loss.backward()", "backward"),
    no(NO_AUTOGRAD, "dW1 = W1.grad", "read-grad"),
    no(NO_AUTOGRAD, "dW1, = torch.autograd.grad(loss, [W1])", "autograd-grad"),
    no(NO_AUTOGRAD, "import torch.autograd as A", "import-autograd-as"),
    no(NO_AUTOGRAD, "from torch import autograd", "from-torch-import-autograd"),
    no(NO_AUTOGRAD, "F.torch.autograd.grad", "autograd-through-F"),
    no(NO_AUTOGRAD, "torch.nn.modules.module", "nn-modules-internals"),
    no(NO_AUTOGRAD, "nodes = loss.grad_fn.next_functions", "graph-nodes"),
    no(NO_AUTOGRAD, cell("x = 1", "with torch.enable_grad():", "    y = x"), "enable-grad", 2),
    no(NO_AUTOGRAD, "torch.set_grad_enabled(True)", "set-grad-enabled"),
    no(NO_AUTOGRAD, "torch.no_grad.__enter__", "no-grad-dunder"),
    no(NO_AUTOGRAD, "with torch.inference_mode(False):\n    pass", "inference-mode"),
    no(NO_AUTOGRAD, "torch.func.grad(f)(x)", "torch-func"),
    no(NO_AUTOGRAD, "torch.vmap(f)", "vmap"),
    no(NO_AUTOGRAD, "W1.register_hook(print)", "hook"),
    no(NO_AUTOGRAD, "@torch.enable_grad()\ndef f(): pass", "decorator"),
    no(NO_AUTOGRAD, "torch.ops.aten.tanh_backward(dh, h)", "aten-backward-kernel"),
    no(NO_AUTOGRAD, "torch.optim.SGD(parameters, lr=0.1).step()", "optimizer-reads-grad"),
    # ---- (a) bypasses of NO_AUTOGRAD, fixed
    no(NO_AUTOGRAD, cell("ng = torch.no_grad()", "with ng:", "    ng.prev = True"),
       "bypass-no-grad-restores-prev", 3),
    no(NO_AUTOGRAD, "torch.batch_norm_backward_elemt(dhpreact, hprebn, m, s, g, a, b, c)",
       "bypass-public-backward-kernel"),
    no(NO_AUTOGRAD, "string.Formatter().get_field('0.backward', [loss], {})[0]()",
       "bypass-formatter-get-field"),
    no(NO_AUTOGRAD, cell("show = '{0.grad}'.format", "print(show(W1))"),
       "bypass-stored-format-method", 1),
    no(NO_AUTOGRAD, "def f(x: loss.backward()): pass", "bypass-annotation-runs-code"),
    no(NO_AUTOGRAD, cell("def f(x: 'In'): pass", "print(typing.get_type_hints(f))"),
       "bypass-get-type-hints-evaluates", 2),
    no(NO_AUTOGRAD, "functools.singledispatch(print).register(f)",
       "bypass-singledispatch-evaluates-annotations"),
    no(NO_AUTOGRAD, cell("match loss:", "    case torch.Tensor(backward=b):", "        b()"),
       "bypass-match-class-keyword", 2),
    no(NO_AUTOGRAD, cell("match cmp:", "    case object(__globals__=g):", "        print(g)"),
       "bypass-match-class-globals", 2),
    no(NO_AUTOGRAD, cell("match parameters:", "    case [*_ref_backward]:", "        pass"),
       "bypass-match-star-binds-private", 2),
    no(NO_AUTOGRAD, "functools.update_wrapper(s, loss, (), ('backward',))",
       "bypass-update-wrapper-getattr"),
    no(NO_AUTOGRAD, "print(enum.bltns.getattr(loss, 'backward'))", "bypass-enum-builtins"),
    no(NO_AUTOGRAD, "T = type('T', (torch.Tensor,), {})", "bypass-type-builds-class"),
    no(NO_AUTOGRAD, "ns = {'__torch_function__': " + _TF + "}", "bypass-dunder-string-key"),
    no(NO_AUTOGRAD, "E = enum.Enum('E', {'a': 1})", "bypass-enum-functional-api"),
    no(NO_AUTOGRAD, "A = dataclasses.make_dataclass('A', ['grad'])", "bypass-make-dataclass"),
    no(NO_AUTOGRAD, "print(torch.Tensor.mro())", "bypass-mro"),
    # ---- (a) globals, frames, IPython's history (where the hidden tests and _ref_* live)
    no(NO_AUTOGRAD, "print(In)", "input-history"),
    no(NO_AUTOGRAD, "Out", "output-history"),
    no(NO_AUTOGRAD, "print(_ih[-1])", "private-history"),
    no(NO_AUTOGRAD, "_i3", "numbered-history"),
    no(NO_AUTOGRAD, "globals()['_ref_backward']", "globals"),
    no(NO_AUTOGRAD, "__builtins__", "builtins-dunder"),
    no(NO_AUTOGRAD, "breakpoint()", "breakpoint"),
    no(NO_AUTOGRAD, cell("try:", "    1 / 0", "except Exception as e:", "    tb = e.__traceback__"),
       "traceback", 4),
    no(NO_AUTOGRAD, cell("g = (i for i in range(3))", "frame = g.gi_frame"), "generator-frame", 2),
    no(NO_AUTOGRAD, "vars(torch.Tensor)", "vars"),
    no(NO_AUTOGRAD, "torch.Tensor.__dict__['grad']", "class-dict"),
    no(NO_AUTOGRAD, "type(W1).__mro__", "type-mro"),
    no(NO_AUTOGRAD, "operator.attrgetter('grad')(W1)", "attrgetter"),
    no(NO_AUTOGRAD, "np.lib.npyio.load('refs.npz')", "numpy-lib"),
    no(NO_AUTOGRAD, "functools.reduce(getattr, ['grad'], W1)", "reduce-getattr"),
    no(NO_AUTOGRAD, "print(np.bmat('In'))", "bypass-bmat-reads-caller-globals"),
    no(NO_AUTOGRAD, "print(np.r_['In'])", "bypass-r-underscore-reads-caller-globals"),
    no(NO_AUTOGRAD, "help('__main__')", "bypass-help-prints-main-globals"),
    no(NO_AUTOGRAD, "In?", "bypass-help-line-on-history"),
    no(NO_AUTOGRAD, "?In", "bypass-leading-help-on-history"),
    no(NO_AUTOGRAD, "_ref_backward??", "bypass-help-line-shows-reference-source"),
    no(NO_AUTOGRAD, cell("x.?", "import os"), "help-line-of-no-name", 2),
    no(NO_AUTOGRAD, "W1.grad?", "bypass-help-line-shows-grad"),
    # ---- (c) dynamic code, os, files and modules the course does not hand out
    no(NO_AUTOGRAD, "exec('import os')", "exec"),
    no(NO_AUTOGRAD, "compile('1', 'x', 'exec')", "compile"),
    no(NO_AUTOGRAD, "eval('1')", "eval"),
    no(NO_AUTOGRAD, "open('/etc/passwd').read()", "open"),
    no(NO_AUTOGRAD, "np.load('refs.npy')", "np-load"),
    no(NO_AUTOGRAD, "torch.load('refs.pt')", "torch-load"),
    no(NO_AUTOGRAD, "get_ipython().user_ns", "get-ipython"),
    no(NO_AUTOGRAD, "display(x)", "display"),
    no(NO_AUTOGRAD, cell("dh = dlogits @ W2.T", "import os"), "import-os", 2),
    no(NO_AUTOGRAD, "from threading import Thread", "thread"),
    no(NO_AUTOGRAD, "!cat /etc/passwd", "shell-escape"),
    no(NO_AUTOGRAD, "%run exploit.py", "run-magic"),
    no(NO_AUTOGRAD, cell("%%bash", "cat /etc/passwd"), "bash-cell-magic"),
    no(NO_AUTOGRAD, "%load hidden_tests.py", "load-magic"),
    no(BASE, "from grader.judge import judge", "course-package-not-handed-out"),
    no(NO_AUTOGRAD, "x = !cat /etc/passwd", "bypass-assign-from-shell"),
    no(NO_AUTOGRAD, "hist = %history", "bypass-assign-from-magic"),
    no(NO_AUTOGRAD, "/exec 'import os'", "bypass-autocall-escape"),
    no(NO_AUTOGRAD, "    import os", "bypass-indented-cell"),
    no(NO_AUTOGRAD, ">>> import os", "bypass-prompt"),
    no(NO_AUTOGRAD, "history", "bypass-automagic-history"),
    no(NO_AUTOGRAD, "pycat /etc/passwd", "bypass-automagic-pycat"),
    no(NO_AUTOGRAD, "%time history", "bypass-automagic-inside-time"),
    no(NO_AUTOGRAD, cell("%%time", "history"), "bypass-automagic-inside-time-cell", 2),
    no(NO_AUTOGRAD, "%timeit -n1 -r1 exec('import os')", "bypass-timeit-options"),
    no(NO_AUTOGRAD, cell("%%timeit import os", "pass"), "bypass-timeit-setup-line", 1),
    no(NO_AUTOGRAD, "%prun -T /tmp/out f()", "bypass-prun-options"),
    no(NO_AUTOGRAD, cell("import os", "async def f(): pass", "await f()"),
       "top-level-await", 1),
    no(NO_AUTOGRAD, cell("s = 'a\u2028b'", "import os"), "bypass-line-separator-in-string", 2),
    no(NO_AUTOGRAD, "plt.logging.FileHandler('/etc/passwd', 'r').stream.read()",
       "bypass-logging-through-pyplot"),
    no(NO_AUTOGRAD, "plt.cbook.to_filehandle('/etc/passwd').read()", "bypass-cbook"),
    no(NO_AUTOGRAD, "matplotlib.textpath.urllib.request.urlopen('file:///etc/passwd')",
       "bypass-urllib-two-modules-deep"),
    no(NO_AUTOGRAD, "torch.cuda.tunable.mp.Process(target=f).start()",
       "bypass-multiprocessing-under-an-alias"),
    no(NO_AUTOGRAD, "torch.xpu.c_void_p.from_address(id(x))", "bypass-ctypes-through-xpu"),
    no(NO_AUTOGRAD, "np.fromregex('/etc/passwd', '(.*)', [('line', 'U99')])",
       "bypass-fromregex"),
    no(NO_AUTOGRAD, "plt.style.use('/etc/passwd')", "bypass-style-file"),
    no(NO_AUTOGRAD, "plt.rc_file('/etc/passwd')", "bypass-rc-file"),
    no(NO_AUTOGRAD, "matplotlib.Path('/etc/passwd').read_text()", "bypass-pathlib-path"),
    no(NO_AUTOGRAD, "words = load_words('/etc/passwd')", "bypass-course-reader-with-path"),
    no(NO_AUTOGRAD, "from makemore.data import load_words as lw", "bypass-course-reader-renamed"),
    no(NO_AUTOGRAD, "print(data.names_path().parent)", "bypass-course-path"),
    no(NO_AUTOGRAD, cell("class T(tqdm.TMonitor):", "    def run(self):", "        pass"),
       "bypass-thread-subclass", 1),
    no(NO_AUTOGRAD, "%matplotlib module://evil", "bypass-matplotlib-backend-module"),
    no(NO_AUTOGRAD, "x = " + " + ".join(["1"] * 2000), "nested-too-deep-to-check", 1),
    no(NO_AUTOGRAD, cell("import os", "y = (a", "%matplotlib", ")"),
       "bypass-magic-line-inside-brackets", 1),
    # ---- (b) PyTorch's softmax family under BY_HAND and STAGE1
    no(STAGE1, "sm = F.softmax", "stage1-renamed"),
    no(STAGE1, "def f(x, s=F.log_softmax):\n    return s(x, 1)", "stage1-default-argument"),
    no(STAGE1, "p = functools.partial(F.softmax, dim=1)", "stage1-partial"),
    no(STAGE1, "m = nn.Softmax(1)", "stage1-module-class"),
    no(STAGE1, "(s := F.softmax)", "stage1-walrus"),
    no(STAGE1, cell("class A:", "    s = F.softmax"), "stage1-class-attribute", 2),
    no(STAGE1, "from torch.nn.functional import softmax as sm", "stage1-import-as"),
    no(BY_HAND, "probs = logits.softmax(1)", "method"),
    no(BY_HAND, "logprobs = torch.special.log_softmax(logits, 1)", "special"),
    no(BY_HAND, "f = lambda x: F.softmax(x, 1)", "lambda"),
    no(BY_HAND, "loss = F.cross_entropy(logits, Y)", "cross-entropy"),
    no(BY_HAND, "loss = F.nll_loss(logprobs, Y)", "nll-loss"),
    no(BY_HAND, "loss = (logits.logsumexp(1) - logits[range(n), Y]).mean()",
       "bypass-logsumexp-method"),
    no(BY_HAND, "lse = torch.logsumexp(logits, dim=1, keepdim=True)", "bypass-logsumexp"),
    no(BY_HAND, "lse = torch.special.logsumexp(logits, 1)", "bypass-logsumexp-special"),
    no(BY_HAND, "loss = nn.CrossEntropyLoss()(logits, Y)", "loss-class"),
    no(BY_HAND, "probs = torch.distributions.Categorical(logits=logits).probs", "distributions"),
    no(BY_HAND, cell("counts = logits.exp()", "probs = F.softmax(logits, 1)"),
       "by-hand-mixed", 2),
    no(BY_HAND, "probs = F.scaled_dot_product_attention(logits * 27**0.5, eye, eye)",
       "bypass-attention-is-a-softmax"),
    no(BY_HAND, "m = nn.MultiheadAttention(27, 1)", "bypass-attention-module"),
    no(BY_HAND, "probs = F.gumbel_softmax(logits, tau=1.0)", "bypass-gumbel-softmax"),
    no(BY_HAND, "loss = F.kl_div(logprobs, F.one_hot(Y, 27).float(), reduction='batchmean')",
       "bypass-kl-div-is-nll"),
    no(BY_HAND, "loss = F.ctc_loss(logprobs[None], Y[:, None], ones, ones)",
       "bypass-ctc-is-nll"),
    no(BY_HAND, "string.Formatter().get_field('0.softmax', [F], {})[0](logits, 1)",
       "bypass-softmax-by-string"),
    # ---- found by a second attack on the policy
    no(NO_AUTOGRAD, cell("class G(torch.no_grad):",
                         "    prev = property(lambda self: True, lambda self, v: None)",
                         "with G():", "    pass"), "bypass-no-grad-subclass", line=1),
    no(NO_AUTOGRAD, cell("from torch import no_grad", "class G(no_grad):", "    pass"),
       "bypass-no-grad-subclass-bare", line=2),
    no(NO_AUTOGRAD, "f = torch.compile(lambda *a: a, backend=be)", "bypass-torch-compile"),
    no(NO_AUTOGRAD, "model.compile(backend=be)", "bypass-module-compile"),
    no(NO_AUTOGRAD, "g.call_method('backward', (loss,))", "bypass-fx-call-method"),
    no(BY_HAND, "torch.compile(f, backend=be)(logits)", "bypass-compile-by-hand"),
    no(NO_AUTOGRAD, "s = tqdm.format_meter(0, 1, 0, bar_format='{o.grad}', o=W)",
       "bypass-format-meter"),
    no(NO_AUTOGRAD, "bar = tqdm(range(3), bar_format='{postfix.grad}', postfix=W)",
       "bypass-bar-format-attribute"),
    no(NO_AUTOGRAD, "bar = tqdm(range(3), bar_format=fmt, postfix=W)",
       "bypass-bar-format-computed"),
    no(BY_HAND, "loss = F.linear_cross_entropy(h, W2.T, Y)", "bypass-linear-cross-entropy"),
    no(BY_HAND, "loss = nn.LinearCrossEntropyLoss()(h, W2.T, Y)", "bypass-linear-ce-class"),
    no(BY_HAND, "loss = nn.NLLLoss2d()(logprobs, Y)", "bypass-nll-loss-2d"),
    no(BY_HAND, "lse = logits.logcumsumexp(1)[:, -1:]", "bypass-logcumsumexp"),
    no(BY_HAND, "lse = functools.reduce(torch.logaddexp, logits.unbind(1))", "bypass-logaddexp"),
    no(BY_HAND, "loss = F.poisson_nll_loss(logits, Y)", "bypass-poisson-nll"),
    no(BY_HAND, "from torch import logcumsumexp", "bypass-import-logcumsumexp"),
    no(STAGE1, "from torch.nn.functional import softmax", "import-softmax-stage1"),
    # ---- found by a third attack: modules changed under the course's cells, numpy.testing
    no(NO_AUTOGRAD, cell("torch.is_grad_enabled = lambda: True", "with torch.no_grad():",
                         "    pass"), "bypass-patch-grad-mode-query", line=1),
    no(NO_AUTOGRAD, "F.softmax = my_softmax", "patch-module-function"),
    no(NO_AUTOGRAD, "del torch.allclose", "delete-module-function"),
    no(NO_AUTOGRAD, cell("import numpy as xp", "xp.allclose = lambda *a, **k: True"),
       "patch-aliased-module", line=2),
    no(NO_AUTOGRAD, "np.testing.measure('import os')", "numpy-testing-exec"),
    no(NO_AUTOGRAD, "torch.testing.assert_close(dW1, W1)", "torch-testing-opens-np-testing"),
    # ---- found by a fourth attack: class bodies, templates, starred bases, BCE
    no(NO_AUTOGRAD, cell("@dataclasses.dataclass", "class X(torch.Tensor):",
                         "    grad: object = None"), "bypass-dataclass-field-grad", line=3),
    no(NO_AUTOGRAD, cell("class X(torch.Tensor):", "    backward: object = None"),
       "bypass-class-attribute-backward", line=2),
    no(BY_HAND, cell("class X(torch.Tensor):", "    softmax: object = None"),
       "bypass-class-attribute-softmax", line=2),
    no(NO_AUTOGRAD, cell("bar = tqdm(range(3), postfix=[W])",
                         "bar.bar_format = '{postfix[0].grad}'"), "bypass-template-attribute"),
    no(NO_AUTOGRAD, "opts = {'bar_format': '{postfix.grad}'}", "bypass-template-in-dict"),
    no(NO_AUTOGRAD, cell("Quiet = [torch.no_grad]", "class Loud(*Quiet):", "    pass"),
       "bypass-starred-base"),
    no(BY_HAND, "loss = nn.BCELoss(weight=one_hot, reduction='sum')(probs, ones) / n",
       "bypass-bce-loss"),
    no(BY_HAND, "loss = nn.BCEWithLogitsLoss()(logits, one_hot)", "bypass-bce-logits"),
    # the fourth round of attacks: code run from strings, .grad read without its name
    no(NO_AUTOGRAD, cell("try:",
                         "    torch.set_default_tensor_type('builtins.nothing_here')",
                         "except AttributeError as e:",
                         "    bi = e.obj",
                         "bi.exec('import os', {})"), "bypass-attribute-error-obj", line=2),
    no(NO_AUTOGRAD, cell("try:", "    x.nothing", "except AttributeError as e:", "    m = e.obj"),
       "bypass-exception-obj", line=4),
    no(BASE, "builtins_in_hand.exec(code)", "bypass-exec-as-attribute"),
    no(BASE, "module_in_hand.getattr(t, 'grad')", "bypass-getattr-as-attribute"),
    no(NO_AUTOGRAD, "timeit.timeit(CODE, number=1, globals=box)", "bypass-timeit-string"),
    no(NO_AUTOGRAD, cell("def batchnorm_backward(dhpreact, bngain, bnraw, bnvar_inv):",
                         "    t = timeit.Timer(CODE, globals=box)"), "bypass-timeit-timer", 2),
    no(NO_AUTOGRAD, cell("import copy", "memo = {}", "copy.deepcopy(W1, memo)"),
       "bypass-deepcopy-memo", line=3),
    no(NO_AUTOGRAD, cell("from copy import deepcopy", "stash = deepcopy(parameters)"),
       "bypass-deepcopy-imported", line=1),
    no(NO_AUTOGRAD, "g = pd.eval('t.grad', engine='python', local_dict=dict(t=W1))",
       "bypass-pandas-eval"),
    no(NO_AUTOGRAD, "df.query('@t.grad.sum() > 0')", "bypass-pandas-query"),
    no(NO_AUTOGRAD, "sys.meta_path.insert(0, Spy())", "bypass-course-imported-sys"),
    no(BASE, "frames = sys.argv", "bypass-course-imported-sys-base"),
    no(BASE, "x = pd.read_pickle(path)", "bypass-read-pickle"),
    no(NO_AUTOGRAD, cell("from numpy import distutils",
                         "fo, path = distutils.misc_util.make_temp_file(suffix='.py')"),
       "bypass-unloaded-submodule", line=1),
    no(NO_AUTOGRAD, "helper = np.distutils.misc_util.exec_mod_from_location('h', path)",
       "bypass-unloaded-submodule-attribute"),
    no(BASE, "from tqdm import contrib", "bypass-unloaded-tqdm-submodule"),
    no(NO_AUTOGRAD, cell("axis = plt.gca().xaxis",
                         "axis.set_major_formatter('{x' + '.gr' + 'ad[0]:.9e}')",
                         "value = axis.get_major_formatter()(W1)"), "bypass-formatter-template",
       line=2),
    no(NO_AUTOGRAD, cell("cb = plt.colorbar(format=template)", "value = cb.formatter(W1)"),
       "bypass-colorbar-formatter", line=2),
    no(NO_AUTOGRAD, cell("bar = tqdm(range(1), file=w, postfix=[cache.logits])",
                         "bar.bar_format = '{postfix' + '[0].grad}'"), "bypass-bar-format-store",
       line=2),
    no(NO_AUTOGRAD, "bar = tqdm(range(1), **{'bar_format': '{postfix' + '[0].grad}'})",
       "bypass-bar-format-unpacked"),
    no(NO_AUTOGRAD, "bar = tqdm(range(1), **options)", "bypass-computed-keywords"),
]


@pytest.mark.parametrize("policy, source", ALLOWED)
def test_allowed(policy, source):
    assert check_source(source, policy, COURSE_IMPORTS) == []


@pytest.mark.parametrize("policy, source, line", REFUSED)
def test_refused(policy, source, line):
    found = check_source(source, policy, COURSE_IMPORTS)
    assert found, f"allowed under {policy.name}: {source!r}"
    if line is not None:
        assert found[0].line == line, found


def test_the_courses_own_autograd_code_is_out_of_an_answers_reach():
    """Stage 5's course cells define autograd_step (the autograd twin a check compares with):
    a training step that calls it would train with autograd's gradients."""
    answer = cell("def train_step(parameters, Xb, Yb, lr):",
                  "    return autograd_step(parameters, Xb, Yb, lr)")
    found = check_source(answer, NO_AUTOGRAD, COURSE_IMPORTS, COURSE_AUTOGRAD)
    assert found and found[0].construct == "autograd_step" and found[0].line == 2, found
    assert check_source(answer, DIAGNOSTICS, COURSE_IMPORTS, COURSE_AUTOGRAD) == []


def test_course_code_that_hands_on_gradients_is_found_through_its_callers():
    from grader.policy import course_autograd_of
    course = [cell("def autograd_step(parameters, Xb, Yb, lr):",
                   "    with torch.enable_grad():",
                   "        loss = forward(parameters, Xb, Yb)",
                   "        loss.backward()",
                   "    return [p.grad for p in parameters]"),
              cell("def twice(*args):", "    return autograd_step(*args)"),
              cell("def check_it(label, logits, Y):",   # compares with autograd, hands nothing on
                   "    logits = logits.detach().requires_grad_()",
                   "    F.cross_entropy(logits, Y).backward()",
                   "    cmp(label, mine(logits.detach(), Y), logits)"),
              cell("def forward(parameters, Xb, Yb):", "    return (Xb @ parameters[0]).sum()")]
    assert course_autograd_of(course) == {"autograd_step", "twice"}


def test_a_module_bound_in_an_earlier_cell_is_still_not_the_answers_to_change():
    from grader.policy import modules_bound_in
    known = modules_bound_in("import torch as t")
    found = check_source("t.is_grad_enabled = lambda: True", NO_AUTOGRAD, COURSE_IMPORTS,
                         known_modules=known)
    assert found and "not the answer's to change" in found[0].rule, found
    known = modules_bound_in("u = t", known)   # an alias of the alias
    assert check_source("u.allclose = f", NO_AUTOGRAD, COURSE_IMPORTS, known_modules=known)
    known = modules_bound_in("mods = [np, torch]", known)   # a module inside a container
    assert check_source("mods[1].is_grad_enabled = f", NO_AUTOGRAD, COURSE_IMPORTS,
                        known_modules=known)
    for source in ("[torch][0].is_grad_enabled = f", "(F or torch).softmax = f",
                   "get_torch().is_grad_enabled = f"):   # what an expression returns
        assert check_source(source, NO_AUTOGRAD, COURSE_IMPORTS), source
    # the answer's own objects stay the answer's, tensors made with torch among them
    known = modules_bound_in(cell("h = torch.tanh(hpreact)", "out = F.one_hot(Y, 27)"), known)
    assert not {"h", "out"} & known
    assert check_source(cell("cache.h = h", "layer.weight = W1", "layers[-1].weight *= 0.1",
                             "self.out = x @ self.weight", "h.label = 'tanh'"),
                        NO_AUTOGRAD, COURSE_IMPORTS, known_modules=known) == []


def test_after_the_courses_own_cells_an_answers_objects_are_still_its_own():
    """Which names hold a module is carried from cell to cell; starting from what each real
    notebook's course cells bind, the stores students write on their own objects pass."""
    import nbformat
    from grader import config
    from grader.policy import modules_bound_in
    from grader.preprocessors.enforce_policy import is_course_cell
    own = cell("cache.h = h", "W1.label = 'W1'", "layers[-1].weight *= 0.1",
               "g2 = torch.Generator().manual_seed(SEED)",
               "C2 = torch.randn((27, 10), generator=g2)", "C2.label = 'C'",
               "copy = W1.clone()", "copy.label = 'x'",
               "class Tanh:", "    def __call__(self, x):", "        self.out = torch.tanh(x)",
               "        return self.out")
    for path in sorted(config.SOLUTIONS.glob("*.ipynb")):
        known = set()
        for c in nbformat.read(str(path), as_version=4).cells:
            if c.cell_type == "code" and is_course_cell(c):
                known |= modules_bound_in(c.source, known)
        assert {"torch", "F", "plt"} & known, (path.name, known)
        assert not {"g", "C", "W1", "h", "logits", "parameters", "cache", "SEED"} & known, known
        assert check_source(own, DIAGNOSTICS, COURSE_IMPORTS, known_modules=known) == [], path


def test_modules_reached_through_attributes_loops_and_classes_are_modules_too():
    from grader.policy import modules_bound_in
    for earlier, change in [("t = F.torch", "t.is_grad_enabled = lambda: True"),
                            ("f = torch.nn.functional", "f.softmax = mine"),
                            ("T = torch.Tensor", "T.allclose = lambda *a: True"),
                            ("for m in [torch]:\n    pass", "m.is_grad_enabled = f")]:
        known = modules_bound_in(earlier)
        assert check_source(change, NO_AUTOGRAD, COURSE_IMPORTS, known_modules=known), earlier


def test_tables_are_large_enough():
    assert len(ALLOWED) >= 45 and len(REFUSED) >= 45


def test_what_the_course_defines_is_not_the_answers_to_redefine():
    """Stage 5's hidden tests call the notebook's forward and make_parameters: an answer (or an
    added cell) may not rebind them, nor what the course imports, except as the course does."""
    import nbformat

    from grader import config
    from grader.policy import course_definitions_of
    from grader.preprocessors.enforce_policy import is_course_cell
    nb = nbformat.read(str(config.SOLUTIONS / "05_training_and_diagnostics.ipynb"), 4)
    defined = course_definitions_of([c.source for c in nb.cells
                                     if c.cell_type == "code" and is_course_cell(c)])
    assert {"forward", "make_parameters", "train", "cmp", "torch", "F"} <= set(defined)
    assert "backward" not in defined and "parameters" not in defined   # answers and data

    def refused(source):
        return [v.construct for v in check_source(source, NO_AUTOGRAD, COURSE_IMPORTS,
                                                  course_definitions=defined)]
    assert refused("forward = lambda parameters, Xb, Yb: (None, cache)") == ["forward"]
    assert refused("def make_parameters(g, n_hidden=200):\n    return parameters") == \
        ["make_parameters"]
    assert refused("def f():\n    global train\n    train = None") == ["train"]
    assert refused("import numpy as torch") == ["torch"]
    assert refused("try:\n    pass\nexcept Exception as train:\n    pass") == ["train"]
    assert refused("match 1:\n    case forward:\n        pass") == ["forward"]
    assert refused("import torch\nimport torch.nn.functional as F") == []
    assert refused("def backward(parameters, cache, Xb, Yb):\n    return []") == []
    assert refused("n = Xb.shape[0]\ndef helper(forward):\n    return forward") == []
