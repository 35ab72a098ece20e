"""The lecture's MLP as stage 2 builds it: its parameters and its forward pass in small steps.

Stage 2 spells these out cell by cell; later stages, whose students have seen them, call
these functions instead. tests/test_mlp.py checks that both give the same tensors, bit for bit.
"""
from types import SimpleNamespace

import torch

# the intermediate tensors of the forward pass, in the order it computes them
STEPS = ["emb", "embcat", "hprebn", "bnmeani", "bndiff", "bndiff2", "bnvar", "bnvar_inv", "bnraw",
         "hpreact", "h", "logits", "logit_maxes", "norm_logits", "counts", "counts_sum",
         "counts_sum_inv", "probs", "logprobs"]


def init_mlp(vocab_size, n_embd=10, n_hidden=64, block_size=3, generator=None):
    """[C, W1, b1, W2, b2, bngain, bnbias], drawn from generator in stage 2's order and scales.

    Every parameter requires grad. bngain and bnbias come from the generator too (the lecture
    draws them without it), so the same seed gives the same network.
    """
    g = generator
    fan_in = n_embd * block_size
    C = torch.randn((vocab_size, n_embd), generator=g)
    W1 = torch.randn((fan_in, n_hidden), generator=g) * (5/3) / (fan_in**0.5)
    b1 = torch.randn(n_hidden, generator=g) * 0.1
    W2 = torch.randn((n_hidden, vocab_size), generator=g) * 0.1
    b2 = torch.randn(vocab_size, generator=g) * 0.1
    bngain = torch.randn((1, n_hidden), generator=g) * 0.1 + 1.0
    bnbias = torch.randn((1, n_hidden), generator=g) * 0.1
    parameters = [C, W1, b1, W2, b2, bngain, bnbias]
    for p in parameters:
        p.requires_grad = True
    return parameters


def batchnorm(hprebn, bngain, bnbias):
    """Stage 2's batchnorm of a batch hprebn [n, width], one small operation at a time.

    Batch statistics, the variance with Bessel's correction (n-1), eps 1e-5 inside bnvar_inv.
    Returns a namespace with bnmeani, bndiff, bndiff2, bnvar, bnvar_inv, bnraw and hpreact.
    """
    n = hprebn.shape[0]
    bnmeani = 1/n * hprebn.sum(0, keepdim=True)
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff**2
    bnvar = 1/(n-1) * bndiff2.sum(0, keepdim=True)   # Bessel's correction: n-1
    bnvar_inv = (bnvar + 1e-5)**-0.5
    bnraw = bndiff * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    return SimpleNamespace(bnmeani=bnmeani, bndiff=bndiff, bndiff2=bndiff2, bnvar=bnvar,
                           bnvar_inv=bnvar_inv, bnraw=bnraw, hpreact=hpreact)


def forward(parameters, Xb, Yb):
    """Stage 2's forward pass, one small operation at a time.

    Returns a namespace with every intermediate tensor under its lecture name (`STEPS`) and
    `loss`. Each intermediate that autograd tracks retains its gradient, so after
    `.loss.backward()` every `.grad` is autograd's answer key, as in stage 2.
    """
    C, W1, b1, W2, b2, bngain, bnbias = parameters
    n = Xb.shape[0]
    emb = C[Xb]
    embcat = emb.view(emb.shape[0], -1)
    hprebn = embcat @ W1 + b1
    bn = batchnorm(hprebn, bngain, bnbias)
    h = torch.tanh(bn.hpreact)
    logits = h @ W2 + b2
    logit_maxes = logits.max(1, keepdim=True).values
    norm_logits = logits - logit_maxes
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdim=True)
    counts_sum_inv = counts_sum**-1
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[range(n), Yb].mean()
    steps = {**vars(bn), **{name: value for name, value in locals().items() if name in STEPS}}
    for t in steps.values():
        if t.requires_grad:
            t.retain_grad()
    return SimpleNamespace(**{name: steps[name] for name in STEPS}, loss=loss)
