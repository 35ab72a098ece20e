"""Crafted stage 4 submissions (see crafted.py): which graded cells each flaw of
batchnorm_backward loses, and why.

batchnorm_backward returns batchnorm's three gradients (dhprebn, dbngain, dbnbias).
check_bn_lecture compares all three on the lecture's batch, so every wrong value loses it.
check_scale compares raw dhprebn answers for upstream gradients with no component along bnraw:
the Bessel term vanishes there, so it grades the scale (1/n, bnvar_inv) alone. check_bessel
compares answers scaled to norm 1 (makemore.checks.direction) at n = 2, 5 and 8: Bessel's factor,
not the scale. check_bn_batch_sizes, check_large_batch and check_bn_float64 use both devices (no
component along bnraw, norm 1), so neither flaw costs them. tests/test_fused_properties.py runs
the same hidden tests in-process for more variants, including equivalent formulas.
"""
from crafted import Case

STAGE4 = "04_fused_batchnorm"
ANSWER = "answer_batchnorm"
EVERY_CELL_BUT_THE_LECTURES = {"check_scale", "check_bessel", "check_bn_batch_sizes",
                               "check_large_batch", "check_bn_float64"}
# stage 2's gradients of batchnorm's gain and bias, which every answer below returns as well
PARAMETER_GRADIENTS = "(bnraw*dhpreact).sum(0, keepdim=True), dhpreact.sum(0, keepdim=True)"


def answer(body):
    return {ANSWER: "def batchnorm_backward(dhpreact, bngain, bnraw, bnvar_inv):\n"
                    + "".join(f"    {line}\n" for line in body.splitlines())}


CASES = [
    Case("no_bessel", STAGE4, answer("""n = dhpreact.shape[0]
return bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0) - bnraw*(dhpreact*bnraw).sum(0)), """ + PARAMETER_GRADIENTS),
         {"check_bn_lecture", "check_bessel"},
         "forgetting Bessel's n/(n-1) loses the lecture's batch and the Bessel cell only"),
    Case("no_mean", STAGE4, answer("""n = dhpreact.shape[0]
return bngain*bnvar_inv * (n*dhpreact - dhpreact.sum(0) - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0)), """ + PARAMETER_GRADIENTS),
         {"check_bn_lecture", "check_scale"},
         "dropping the 1/n makes the answer n times too large: it loses the lecture's batch and "
         "the scale cell only"),
    Case("fused_from_grad", STAGE4, answer("""bndiff = (bnraw / bnvar_inv).detach().requires_grad_()
var = bndiff.var(0, keepdim=True)
out = bngain * (bndiff - bndiff.mean(0, keepdim=True)) * (var + 1e-5)**-0.5
return torch.autograd.grad(out, bndiff, dhpreact)[0], """ + PARAMETER_GRADIENTS),
         set(["check_bn_lecture"]) | EVERY_CELL_BUT_THE_LECTURES,
         "an answer from torch.autograd.grad earns nothing: it raises while grading"),
    Case("batch32", STAGE4, answer("""return bngain*bnvar_inv/32 * (32*dhpreact - dhpreact.sum(0) - 32/31*bnraw*(dhpreact*bnraw).sum(0)), """ + PARAMETER_GRADIENTS),
         EVERY_CELL_BUT_THE_LECTURES,
         "a function written for the lecture's batch of 32 earns the lecture's cell only"),
    Case("lone_dhprebn", STAGE4, answer("""n = dhpreact.shape[0]
return bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0) - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))"""),
         {"check_bn_lecture"},
         "returning dhprebn alone, as the lecture's line computes it, loses the lecture's cell "
         "(which grades the three gradients) only: the other cells grade dhprebn"),
]
