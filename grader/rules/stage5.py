"""Stage 5's hidden tests: each function graded on its own, on inputs the student never saw.

`backward` is graded with the reference cross_entropy_backward and batchnorm_backward in
place of the student's, and `train_step` with the reference backward, so one mistake costs
one answer. The reference functions are the solution's formulas (the reading version shows
them), nothing secret; the inputs are drawn from seeds. Each check below is one test cell of
05_training_and_diagnostics: it hands values to the grader with `report`, and the grader
compares them with the solution's outside the kernel. A check reads the notebook's own
names (its globals, `nb`) and calls the student's functions with autograd off.
"""
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from makemore.checks import report
from makemore.config import SEED
from ..guard import autograd_blocked

PARAM_NAMES = ["C", "W1", "b1", "W2", "b2", "bngain", "bnbias"]
OWN_CODE = ("(while this check calls your function, autograd is switched off and the "
            "parameters' .grad is None: gradients must come from your own code)")


def cross_entropy_backward(logits, Y):
    probs = F.softmax(logits, 1)
    return (probs - F.one_hot(Y, logits.shape[1])) / logits.shape[0]


def batchnorm_backward(dhpreact, bngain, bnraw, bnvar_inv):
    n = dhpreact.shape[0]
    dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
    dbnbias = dhpreact.sum(0, keepdim=True)
    dhprebn = bngain * bnvar_inv / n * (n * dhpreact - dbnbias - n / (n - 1) * bnraw * dbngain)
    return dhprebn, dbngain, dbnbias


def backward(parameters, cache, Xb, Yb):
    C, W1, b1, W2, b2, bngain, bnbias = parameters
    dlogits = cross_entropy_backward(cache.logits, Yb)
    dhpreact = (1.0 - cache.h**2) * (dlogits @ W2.T)
    dhprebn, dbngain, dbnbias = batchnorm_backward(dhpreact, bngain, cache.bnraw, cache.bnvar_inv)
    dC = torch.zeros_like(C).index_add_(0, Xb.view(-1), (dhprebn @ W1.T).view(-1, C.shape[1]))
    return [dC, cache.embcat.T @ dhprebn, dhprebn.sum(0), cache.h.T @ dlogits, dlogits.sum(0),
            dbngain, dbnbias]


def seeded(offset: int) -> torch.Generator:
    """The generator of one hidden input: the course's seed plus offset."""
    return torch.Generator().manual_seed(SEED + offset)


REFERENCE_PIECES = {"cross_entropy_backward": cross_entropy_backward,
                    "batchnorm_backward": batchnorm_backward}


@contextmanager
def graded(nb: dict, swap: dict | None = None):
    """Autograd off, the .grad of the notebook's parameters hidden, the names in swap
    replaced in the notebook's globals; all restored afterwards."""
    swap = swap or {}
    saved = {name: nb.get(name) for name in swap}
    kept = [p.grad for p in nb["parameters"]]
    nb.update(swap)
    for p in nb["parameters"]:
        p.grad = None
    try:
        with autograd_blocked():
            yield
    except Exception:
        print(OWN_CODE)
        raise
    finally:
        nb.update(saved)
        for p, grad in zip(nb["parameters"], kept, strict=False):
            p.grad = grad


def check_pieces(nb: dict) -> None:
    """Raw values of cross_entropy_backward and batchnorm_backward on a batch of 50."""
    gen = seeded(11)
    logits = torch.randn(50, nb["vocab_size"], generator=gen) * 3
    Y = torch.randint(0, nb["vocab_size"], (50,), generator=gen)
    hprebn = torch.randn(50, 40, generator=gen) * 2 + 0.5
    bnvar_inv = (hprebn.var(0, keepdim=True) + 1e-5)**-0.5
    bnraw = (hprebn - hprebn.mean(0, keepdim=True)) * bnvar_inv
    bngain = torch.randn(1, 40, generator=gen) * 0.1 + 1.0
    dhpreact = torch.randn(50, 40, generator=gen) * 0.01
    with graded(nb):
        dlogits = nb["cross_entropy_backward"](logits, Y)
        bn = nb["batchnorm_backward"](dhpreact, bngain, bnraw, bnvar_inv)
    report("dlogits (batch of 50)", dlogits)
    if not (isinstance(bn, (tuple, list)) and len(bn) == 3):
        raise TypeError("batchnorm_backward must return three gradients: dhprebn, dbngain, dbnbias")
    for name, answer in zip(["dhprebn", "dbngain", "dbnbias"], bn, strict=False):
        report(f"{name} (batch of 50)", answer)


def check_backward(nb: dict) -> None:
    """Raw values of backward's seven gradients on the lecture's batch at parameters drawn
    from a seed, with the reference pieces in place of the student's."""
    # not the notebook's parameters: autograd's gradients of those, which the visible check
    # compares with, are in the kernel
    params = nb["make_parameters"](seeded(10))
    _, cache = nb["forward"](params, nb["Xb"], nb["Yb"])   # no tensor here requires grad
    with graded(nb, REFERENCE_PIECES):
        grads = nb["backward"](params, cache, nb["Xb"], nb["Yb"])
    for name, d in zip(PARAM_NAMES, grads, strict=False):
        report("d" + name, d)


def check_backward_any_batch(nb: dict) -> None:
    """Raw values of backward's seven gradients on 50 validation examples at other parameters,
    with the reference pieces."""
    params = nb["make_parameters"](seeded(12))
    ix = torch.randint(0, nb["Xdev"].shape[0], (50,), generator=seeded(13))
    X, Y = nb["Xdev"][ix], nb["Ydev"][ix]
    _, cache = nb["forward"](params, X, Y)   # no tensor here requires grad
    with graded(nb, REFERENCE_PIECES):
        grads = nb["backward"](params, cache, X, Y)
    for name, d in zip(PARAM_NAMES, grads, strict=False):
        report(f"d{name} (batch of 50)", d)


def check_train(nb: dict) -> None:
    """The parameters after 100 steps of train_step, with the reference backward in place of
    the student's."""
    params = nb["make_parameters"](seeded(14))
    with graded(nb, {"backward": backward}):
        nb["train"](params, 100, seeded(15), nb["train_step"],
                    progress=False)
    for name, p in zip(PARAM_NAMES, params, strict=False):
        report(f"{name} after 100 steps", p)


def check_make_layers(nb: dict) -> None:
    """Parameter counts, and the raw output for a fixed input, with and without batchnorm (gain
    2.5)."""
    x = torch.randn(64, nb["n_embd"] * nb["block_size"], generator=seeded(21))
    for bn in (False, True):
        layers = nb["make_layers"](2.5, bn, seeded(22))
        report(f"parameters (batchnorm={bn})", sum(p.nelement() for layer in layers
                                                   for p in layer.parameters()))
        out = x
        for layer in layers:   # no tensor here requires grad
            out = layer(out)
        report(f"output for a fixed input (batchnorm={bn}, gain 2.5)", out)


def check_saturation(nb: dict) -> None:
    """The percentage for tanh(2x + 0.3) of a 300x70 normal sample."""
    t = torch.tanh(torch.randn(300, 70, generator=seeded(31)) * 2.0 + 0.3)
    report("saturation of tanh(2x + 0.3)", float(nb["saturation"](t)))


def check_update_to_data(nb: dict) -> None:
    """The ratio for a random 100x27 parameter and gradient at lr 0.05."""
    gen = seeded(32)
    p = torch.randn(100, 27, generator=gen) * 0.3
    dp = torch.randn(100, 27, generator=gen) * 0.02 + 0.01
    report("update:data ratio", float(nb["update_to_data"](p, dp, 0.05)))
