"""Stage 2's formula checks: every gradient graded on one batch and again as a formula.

After each check cell the grader re-runs the student's answer cell with random gradients in
place of the carried upstream ones (same forward tensors), and compares the result with the
solution's answer run the same way. A formula right on one batch only by accident (zero at
every input, as dlogit_maxes and db1 are in exact arithmetic) fails here: a flipped sign,
`torch.zeros_like(...)` or a dropped branch gives a different result on random upstream values.
"""
from .. import config

# answer cell -> (the gradient it defines, the upstream gradients its formula reads)
UPSTREAM = {
    "answer_probs": ("dprobs", ["dlogprobs"]),
    "answer_counts_sum_inv": ("dcounts_sum_inv", ["dprobs"]),
    "answer_counts_sum": ("dcounts_sum", ["dcounts_sum_inv"]),
    "answer_counts": ("dcounts", ["dprobs", "dcounts_sum"]),
    "answer_norm_logits": ("dnorm_logits", ["dcounts"]),
    "answer_logit_maxes": ("dlogit_maxes", ["dnorm_logits"]),
    "answer_logits": ("dlogits", ["dnorm_logits", "dlogit_maxes"]),
    "answer_h": ("dh", ["dlogits"]),
    "answer_W2": ("dW2", ["dlogits"]),
    "answer_b2": ("db2", ["dlogits"]),
    "answer_hpreact": ("dhpreact", ["dh"]),
    "answer_bngain": ("dbngain", ["dhpreact"]),
    "answer_bnbias": ("dbnbias", ["dhpreact"]),
    "answer_bnraw": ("dbnraw", ["dhpreact"]),
    "answer_bnvar_inv": ("dbnvar_inv", ["dbnraw"]),
    "answer_bnvar": ("dbnvar", ["dbnvar_inv"]),
    "answer_bndiff2": ("dbndiff2", ["dbnvar"]),
    "answer_bndiff": ("dbndiff", ["dbnraw", "dbndiff2"]),
    "answer_bnmeani": ("dbnmeani", ["dbndiff"]),
    "answer_hprebn": ("dhprebn", ["dbndiff", "dbnmeani"]),
    "answer_embcat": ("dembcat", ["dhprebn"]),
    "answer_W1": ("dW1", ["dhprebn"]),
    "answer_b1": ("db1", ["dhprebn"]),
    "answer_emb": ("demb", ["dembcat"]),
    "answer_C": ("dC", ["demb"]),
}
FORMULA_SUFFIX = " (random upstream)"


def inputs_of(gradient: str) -> list[str]:
    """The upstream gradients stage 2's answer for `gradient` (e.g. dcounts_sum) is computed
    from, in the lecture's graph ([] for any other name)."""
    return next((list(up) for name, up in UPSTREAM.values() if name == gradient), [])
FORMULA_SEED = config.SEED + 1000


def formula_call(answer_id, source, index):
    """The grader's cell that re-runs an answer's source with random upstream gradients."""
    name, upstream = UPSTREAM[answer_id]
    return (f"__import__('grader.rules.stage2').rules.stage2.rerun("
            f"{source!r}, {name!r}, {upstream!r}, {FORMULA_SEED + index})")


def rerun(source, name, upstream, seed):
    """Run source (an answer cell) with every upstream gradient replaced by a random tensor
    of its shape and dtype, all scaled to the largest upstream's spread; report the gradient
    it computes as NAME (random upstream); then put every variable back as it was."""
    import torch
    from IPython import get_ipython

    from makemore.checks import report
    ns = get_ipython().user_ns
    saved = {k: ns[k] for k in [name, *upstream] if k in ns}
    missing = [k for k in upstream if not isinstance(ns.get(k), torch.Tensor)]
    if missing:
        print(f"({name}: not checked as a formula: {', '.join(missing)} not defined)")
        return
    scale = max(float(ns[k].float().std()) if ns[k].numel() > 1 else float(ns[k].abs())
                for k in upstream) or 1.0
    g = torch.Generator().manual_seed(seed)
    try:
        for k in upstream:
            ns[k] = torch.randn(ns[k].shape, generator=g).to(ns[k].dtype) * scale
        exec(compile(source, f"<{name}: your answer, random upstream>", "exec"), ns)
        report(name + FORMULA_SUFFIX, ns.get(name))
    except Exception as e:
        print(f"({name}: your answer failed when re-run with random upstream gradients: "
              f"{type(e).__name__}: {e})")
    finally:
        ns.update(saved)
