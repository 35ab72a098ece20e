"""Crafted stage 2 submissions (see crafted.py)."""
from crafted import ALL, MALFORMED, STAGE2, Case

CASES = [
    Case("one_wrong", STAGE2,
         {"answer_counts_sum": "dcounts_sum = counts_sum**-2 * dcounts_sum_inv"},
         {"check_counts_sum"}, "a sign error costs that gradient only"),
    Case("one_wrong_early", STAGE2,
         {"answer_logprobs": "dlogprobs = torch.zeros_like(logprobs)\n"
                             "dlogprobs[range(n), Yb] = -1.0"},
         {"check_logprobs"}, "a missing 1/n costs dlogprobs only: later answers get its reference"),
    Case("from_grad", STAGE2,
         {"answer_logprobs": "dlogprobs = logprobs.grad.clone()",
          "answer_W1": "dW1 = W1.grad.clone()",
          "answer_C": "dC = C.grad"},
         {"check_logprobs", "check_W1", "check_C"}, "answers read from .grad earn 0"),
    Case("calls_backward", STAGE2,
         {"answer_h": "loss.backward()\ndh = h.grad.clone()",
          "answer_emb": "demb = torch.autograd.grad(loss, emb, retain_graph=True)[0]"},
         {"check_h", "check_emb"}, "answers from backward() or torch.autograd.grad earn 0"),
    Case("shape_64", STAGE2,
         {"answer_bngain": "dbngain = (bnraw * dhpreact).sum(0)",
          "answer_bnmeani": "dbnmeani = (-dbndiff).sum(0)"},
         {"check_bngain", "check_bnmeani"}, "a [64] answer for a [1, 64] tensor loses its credit"),
    Case("broken_json", STAGE2, MALFORMED, ALL, "a malformed notebook scores 0 with its reason"),
    Case("stderr_noise", "03_fused_cross_entropy",
         {"answer_cross_entropy":
          "def cross_entropy_backward(logits, Y):\n"
          "    logits = torch.tensor(logits)   # PyTorch warns about this copy, on every call\n"
          "    n = logits.shape[0]\n"
          "    dlogits = F.softmax(logits, 1)\n"
          "    dlogits[torch.arange(n), Y] -= 1\n"
          "    return dlogits / n"},
         set(), "a library's warnings in test cells never cost a right answer"),
]
