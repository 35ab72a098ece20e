"""Crafted stage 3 submissions (see crafted.py): which graded cells each flaw of
cross_entropy_backward loses, and why.

check_ce_lecture compares the raw answer on the lecture's batch, so every wrong value loses it.
check_mean compares raw answers at other batch sizes: the one cell for the overall scale.
check_ce_batch_sizes, check_classes, check_ce_float64 and check_large_logits compare answers scaled
to norm 1 (makemore.checks.direction), so a wrong constant factor does not cost them again;
check_large_logits also reports whether every entry is finite. tests/test_fused_properties.py
runs the same hidden tests in-process for more variants, including equivalent formulas.
"""
from crafted import Case

STAGE3 = "03_fused_cross_entropy"
ANSWER = "answer_cross_entropy"
EVERY_CELL_BUT_THE_LECTURES = {"check_mean", "check_ce_batch_sizes", "check_classes",
                               "check_ce_float64", "check_large_logits"}


def answer(body):
    return {ANSWER: "def cross_entropy_backward(logits, Y):\n"
                    + "".join(f"    {line}\n" for line in body.splitlines())}


CASES = [
    Case("no_mean", STAGE3, answer("""dlogits = F.softmax(logits, 1)
dlogits[range(logits.shape[0]), Y] -= 1
return dlogits"""),
         {"check_ce_lecture", "check_mean"},
         "the gradient of the sum, not the mean (drops the 1/n), is n times too large: it loses "
         "the lecture's batch and the scale cell; the cells comparing directions keep their credit"),
    Case("unstable", STAGE3, answer("""counts = logits.exp()
dlogits = counts / counts.sum(1, keepdim=True)
dlogits[range(logits.shape[0]), Y] -= 1
return dlogits / logits.shape[0]"""),
         {"check_large_logits"},
         "exp without subtracting the row maximum is right for ordinary logits and NaN for "
         "logits near +-1000: it loses the large-logits cell only"),
    Case("fused_from_grad", STAGE3, answer("""logits = logits.detach().requires_grad_()
F.cross_entropy(logits, Y).backward()
return logits.grad"""),
         set(["check_ce_lecture"]) | EVERY_CELL_BUT_THE_LECTURES,
         "an answer from autograd earns nothing: backward() does nothing while grading"),
    Case("batch32", STAGE3, answer("""dlogits = F.softmax(logits, 1)
dlogits[range(32), Y] -= 1
return dlogits / 32"""),
         EVERY_CELL_BUT_THE_LECTURES,
         "a function written for the lecture's batch of 32 earns the lecture's cell only"),
]
