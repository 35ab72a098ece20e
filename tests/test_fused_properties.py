"""Stages 3 and 4: equivalent formulas earn every point; each flaw loses exactly its cells.

Runs the hidden tests in this process (properties.py) for many variants of the two functions,
more than nbgrader could grade in the test budget. cases_stage3.py / cases_stage4.py grade the
named flaws end to end through nbgrader.
"""
import pytest

from properties import lost_cells, reports

STAGES = (3, 4)   # pytest -m stageN (tests/conftest.py)

STAGE3 = "03_fused_cross_entropy"
STAGE4 = "04_fused_batchnorm"


def function(name, signature, body):
    return f"def {name}({signature}):\n" + "".join(f"    {line}\n" for line in body.splitlines())


def ce(body):
    return {"answer_cross_entropy": function("cross_entropy_backward", "logits, Y", body)}


def bn(body, parameter_gradients=True):
    """A batchnorm_backward whose dhprebn is what body returns; with parameter_gradients, it
    returns stage 2's dbngain and dbnbias beside it, as the notebook asks."""
    if parameter_gradients:
        head, _, expression = body.rpartition("return ")
        body = (f"{head}return ({expression}), (bnraw * dhpreact).sum(0, keepdim=True), "
                "dhpreact.sum(0, keepdim=True)")
    return {"answer_batchnorm": function("batchnorm_backward",
                                         "dhpreact, bngain, bnraw, bnvar_inv", body)}


CE_EQUIVALENT = {
    "softmax minus one-hot": "return (F.softmax(logits, 1) - F.one_hot(Y, logits.shape[1])) / logits.shape[0]",
    "max subtracted by hand": """n = logits.shape[0]
e = (logits - logits.max(1, keepdim=True).values).exp()
p = e / e.sum(1, keepdim=True)
p[torch.arange(n), Y] -= 1
return p / n""",
    "exp of log_softmax": """oh = F.one_hot(Y, logits.shape[1]).to(logits.dtype)
return (F.log_softmax(logits, 1).exp() - oh) / logits.shape[0]""",
    "scatter into torch.softmax": """d = torch.softmax(logits, dim=-1)
d.scatter_add_(1, Y.view(-1, 1), -torch.ones(len(Y), 1, dtype=logits.dtype))
return d * (1.0 / len(Y))""",
}

CE_FLAWED = {
    "stage 2's eight steps (1/probs overflows)": ("""n = logits.shape[0]
norm_logits = logits - logits.max(1, keepdim=True).values
counts = norm_logits.exp()
counts_sum_inv = counts.sum(1, keepdim=True)**-1
probs = counts * counts_sum_inv
dlogprobs = torch.zeros_like(logits)
dlogprobs[range(n), Y] = -1.0 / n
dprobs = dlogprobs / probs
dcounts = counts_sum_inv * dprobs - (counts * dprobs).sum(1, keepdim=True) * counts_sum_inv**2
return counts * dcounts""", {"check_large_logits"}),
    "drops the 1/n": ("""d = F.softmax(logits, 1)
d[range(logits.shape[0]), Y] -= 1
return d""", {"check_ce_lecture", "check_mean"}),
    "unstable for large logits": ("""counts = logits.exp()
d = counts / counts.sum(1, keepdim=True)
d[range(logits.shape[0]), Y] -= 1
return d / logits.shape[0]""", {"check_large_logits"}),
    "hard-codes 1/32": ("""d = F.softmax(logits, 1)
d[range(logits.shape[0]), Y] -= 1
return d / 32""", {"check_mean"}),
    "hard-codes the batch of 32": ("""d = F.softmax(logits, 1)
d[range(32), Y] -= 1
return d / 32""", {"check_mean", "check_ce_batch_sizes", "check_classes", "check_ce_float64",
                   "check_large_logits"}),
    "answers in float32": ("""d = torch.zeros(logits.shape)
d += F.softmax(logits, 1)
d[range(logits.shape[0]), Y] -= 1
return d / logits.shape[0]""", {"check_ce_float64"}),
    "flips the sign": ("return (F.one_hot(Y, logits.shape[1]) - F.softmax(logits, 1)) / len(Y)",
                       {"check_ce_lecture", "check_mean", "check_ce_batch_sizes", "check_classes",
                        "check_ce_float64", "check_large_logits"}),
}

BN_EQUIVALENT_WHOLE = {
    "the sums once, as dbnbias and dbngain": """n = dhpreact.shape[0]
dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
dbnbias = dhpreact.sum(0, keepdim=True)
return bngain*bnvar_inv/n * (n*dhpreact - dbnbias - n/(n-1)*bnraw*dbngain), dbngain, dbnbias""",
    "a list, with the sums in float64": """n = dhpreact.shape[0]
dbngain = (bnraw.double() * dhpreact.double()).sum(0, keepdim=True)
dbnbias = dhpreact.double().sum(0, keepdim=True)
dhprebn = bngain*bnvar_inv/n * (n*dhpreact - dbnbias.to(dhpreact.dtype) - n/(n-1)*bnraw*dbngain.to(dhpreact.dtype))
return [dhprebn, dbngain.to(dhpreact.dtype), dbnbias.to(dhpreact.dtype)]""",
}

BN_FLAWED_WHOLE = {
    "returns dhprebn alone": ("""n = dhpreact.shape[0]
return bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0) - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))""",
                              {"check_bn_lecture"}),
    "parameter gradients without keepdim": ("""n = dhpreact.shape[0]
dbngain = (bnraw * dhpreact).sum(0)
dbnbias = dhpreact.sum(0)
return bngain*bnvar_inv/n * (n*dhpreact - dbnbias - n/(n-1)*bnraw*dbngain), dbngain, dbnbias""",
                                            {"check_bn_lecture"}),
    "swaps dbngain and dbnbias": ("""n = dhpreact.shape[0]
dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
dbnbias = dhpreact.sum(0, keepdim=True)
return bngain*bnvar_inv/n * (n*dhpreact - dbnbias - n/(n-1)*bnraw*dbngain), dbnbias, dbngain""",
                                  {"check_bn_lecture"}),
}

BN_EQUIVALENT = {
    "the lecture's long line": """n = dhpreact.shape[0]
return bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0) - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))""",
    "mean and projection": """n = dhpreact.shape[0]
proj = (dhpreact * bnraw).sum(0, keepdim=True) / (n - 1)
return bngain * bnvar_inv * (dhpreact - dhpreact.mean(0, keepdim=True) - bnraw * proj)""",
    "stage 2's chain from bndiff and bnvar": """n = dhpreact.shape[0]
bndiff = bnraw / bnvar_inv
bnvar = bnvar_inv**-2 - 1e-5
dbnraw = bngain * dhpreact
dbnvar = -0.5 * (bnvar + 1e-5)**-1.5 * (bndiff * dbnraw).sum(0, keepdim=True)
dbndiff = bnvar_inv * dbnraw + 2 * bndiff * dbnvar / (n - 1)
return dbndiff - dbndiff.mean(0, keepdim=True)""",
    "through dbnraw": """n = dhpreact.shape[0]
dbnraw = bngain * dhpreact
return bnvar_inv / n * (n * dbnraw - dbnraw.sum(0) - n / (n - 1) * bnraw * (dbnraw * bnraw).sum(0))""",
}

BN_FLAWED = {
    "forgets Bessel's correction": ("""n = dhpreact.shape[0]
return bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0) - bnraw*(dhpreact*bnraw).sum(0))""",
                                    {"check_bn_lecture", "check_bessel"}),
    "drops the 1/n": ("""n = dhpreact.shape[0]
return bngain*bnvar_inv * (n*dhpreact - dhpreact.sum(0) - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))""",
                      {"check_bn_lecture", "check_scale"}),
    "leaves out the variance's path": ("""return bngain * bnvar_inv * (dhpreact - dhpreact.mean(0, keepdim=True))""",
                                       {"check_bn_lecture", "check_bessel"}),
    "hard-codes the batch of 32": ("""return bngain*bnvar_inv/32 * (32*dhpreact - dhpreact.sum(0) - 32/31*bnraw*(dhpreact*bnraw).sum(0))""",
                                   {"check_scale", "check_bessel", "check_bn_batch_sizes",
                                    "check_large_batch", "check_bn_float64"}),
    "answers in float32": ("""n = dhpreact.shape[0]
out = torch.zeros(dhpreact.shape)
out += bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0) - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))
return out""", {"check_bn_float64"}),
    "sums over the wrong dimension": ("""n = dhpreact.shape[0]
return bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(1, keepdim=True) - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))""",
                                      {"check_bn_lecture", "check_scale", "check_bessel",
                                       "check_bn_batch_sizes", "check_large_batch", "check_bn_float64"}),
}


@pytest.fixture(scope="module")
def reference3():
    return reports(STAGE3)


@pytest.fixture(scope="module")
def reference4():
    return reports(STAGE4)


def test_reference_reports_every_property(reference3, reference4):
    for reference, cells in [(reference3, 6), (reference4, 6)]:
        assert len(reference) == cells
        for cell, values in reference.items():
            assert values and "<error>" not in values, cell


@pytest.mark.parametrize("name", CE_EQUIVALENT)
def test_equivalent_cross_entropy_formula_earns_every_point(reference3, name):
    assert lost_cells(reference3, reports(STAGE3, ce(CE_EQUIVALENT[name]))) == {}


@pytest.mark.parametrize("name", CE_FLAWED)
def test_cross_entropy_flaw_loses_exactly_its_cells(reference3, name):
    body, lost = CE_FLAWED[name]
    assert set(lost_cells(reference3, reports(STAGE3, ce(body)))) == lost


@pytest.mark.parametrize("name", BN_EQUIVALENT)
def test_equivalent_batchnorm_formula_earns_every_point(reference4, name):
    assert lost_cells(reference4, reports(STAGE4, bn(BN_EQUIVALENT[name]))) == {}


@pytest.mark.parametrize("name", BN_FLAWED)
def test_batchnorm_flaw_loses_exactly_its_cells(reference4, name):
    body, lost = BN_FLAWED[name]
    assert set(lost_cells(reference4, reports(STAGE4, bn(body)))) == lost


@pytest.mark.parametrize("name", BN_EQUIVALENT_WHOLE)
def test_equivalent_batchnorm_function_earns_every_point(reference4, name):
    answer = bn(BN_EQUIVALENT_WHOLE[name], parameter_gradients=False)
    assert lost_cells(reference4, reports(STAGE4, answer)) == {}


@pytest.mark.parametrize("name", BN_FLAWED_WHOLE)
def test_batchnorm_function_flaw_loses_exactly_its_cells(reference4, name):
    body, lost = BN_FLAWED_WHOLE[name]
    answer = reports(STAGE4, bn(body, parameter_gradients=False))
    assert set(lost_cells(reference4, answer)) == lost


def test_lone_dhprebn_is_told_to_return_three_gradients(reference4):
    body, _ = BN_FLAWED_WHOLE["returns dhprebn alone"]
    answer = reports(STAGE4, bn(body, parameter_gradients=False))
    assert "must return three gradients" in answer["check_bn_lecture"]["<error>"]
