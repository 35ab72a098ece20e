"""Crafted stage 1 submissions (see crafted.py)."""
from crafted import Case

STAGE1 = "01_bigram_mlp"

# Correct answers written differently from the solution: other loops, other operations, other
# rounding. Each must earn its point.
VARIANTS = {
    "answer_bigram_counts": '''
def bigram_counts(words, stoi):
    N = torch.zeros((27, 27), dtype=torch.int32)
    for w in words:
        chs = ['.'] + list(w) + ['.']
        for ch1, ch2 in zip(chs, chs[1:]):
            N[stoi[ch1], stoi[ch2]] += 1
    return N
''',
    "answer_bigram_probs": '''
def bigram_probs(N):
    P = N.float() + 1
    P /= P.sum(1, keepdims=True)
    return P
''',
    "answer_average_nll": '''
def average_nll(P, words, stoi):
    log_likelihood, n = 0.0, 0
    for w in words:
        chs = ['.'] + list(w) + ['.']
        for ch1, ch2 in zip(chs, chs[1:]):
            log_likelihood += torch.log(P[stoi[ch1], stoi[ch2]])
            n += 1
    return -log_likelihood / n
''',
    "answer_bigram_loss": '''
def bigram_loss(W, xs, ys):
    logits = W[xs]                       # the one-hot product, as a lookup
    log_norm = logits.exp().sum(1).log()
    nll = (log_norm - logits[torch.arange(len(ys)), ys]).mean()
    return nll + 0.01 * W.pow(2).mean()
''',
    "answer_sgd_step": '''
def sgd_step(parameters, loss, lr):
    for p in parameters:
        if p.grad is not None:
            p.grad.zero_()
    loss.backward()
    with torch.no_grad():
        for p in parameters:
            p -= lr * p.grad
''',
    "answer_build_dataset": '''
def build_dataset(words, stoi, block_size=3):
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + '.':
            X.append(context)
            Y.append(stoi[ch])
            context = context[1:] + [stoi[ch]]
    return torch.tensor(X), torch.tensor(Y)
''',
    "answer_embed_one_hot": '''
def embed_one_hot(X, C):
    onehot = F.one_hot(X, C.shape[0]).to(C.dtype)
    return torch.einsum('...v,vd->...d', onehot, C)
''',
    "answer_mlp_forward": '''
def mlp_forward(X, C, W1, b1, W2, b2):
    emb = C[X]
    embcat = torch.cat([emb[:, i] for i in range(emb.shape[1])], 1)
    h = torch.tanh(torch.addmm(b1, embcat, W1))
    return torch.addmm(b2, h, W2)
''',
    "answer_softmax_nll": '''
def softmax_nll(logits, Y):
    m = logits.max(1, keepdim=True).values
    log_norm = (logits - m).exp().sum(1).log() + m.squeeze(1)
    return (log_norm - logits[torch.arange(len(Y)), Y]).mean()
''',
}

NAIVE_SOFTMAX = '''
def softmax_nll(logits, Y):
    counts = logits.exp()
    probs = counts / counts.sum(1, keepdims=True)
    return -probs[torch.arange(logits.shape[0]), Y].log().mean()
'''

CASES = [
    Case("variants", STAGE1, VARIANTS, set(),
         "correct answers written differently from the solution get full marks"),
    Case("counts_no_start", STAGE1, {"answer_bigram_counts": VARIANTS["answer_bigram_counts"]
                                     .replace("['.'] + list(w)", "list(w)")},
         {"check_bigram_counts"},
         "wrong counts cost their point only: probabilities, loss and sampling are tested apart"),
    Case("dataset_no_end", STAGE1, {"answer_build_dataset": VARIANTS["answer_build_dataset"]
                                    .replace("w + '.'", "w")},
         {"check_build_dataset"},
         "a wrong build_dataset costs its point only: the MLP trains on the course's datasets"),
    Case("forward_fixed_view", STAGE1, {"answer_mlp_forward": '''
def mlp_forward(X, C, W1, b1, W2, b2):
    h = torch.tanh(C[X].view(-1, 6) @ W1 + b1)
    return h @ W2 + b2
'''}, {"check_mlp_forward"},
         "a forward pass that only fits the first network loses its point only"),
    Case("sgd_no_reset", STAGE1, {"answer_sgd_step": '''
def sgd_step(parameters, loss, lr):
    loss.backward()
    for p in parameters:
        p.data += -lr * p.grad
'''}, {"check_sgd_step"}, "gradients that pile up from step to step cost the step's point only"),
    Case("naive_softmax", STAGE1, {"answer_softmax_nll": NAIVE_SOFTMAX},
         {"check_softmax_nll_large"},
         "a softmax without the max subtracted fails on large logits only"),
    Case("ready_made", STAGE1, {
        # logsumexp takes the maximum out itself: the stable softmax done for the student
        "answer_softmax_nll": "def softmax_nll(logits, Y):\n"
                              "    return (logits.logsumexp(1) - logits[range(len(Y)), Y]).mean()",
        "answer_bigram_loss": '''
def bigram_loss(W, xs, ys):
    probs = F.softmax(F.one_hot(xs, num_classes=27).float() @ W, dim=1)
    return -probs[torch.arange(len(ys)), ys].log().mean() + 0.01 * (W**2).mean()
'''}, {"check_softmax_nll", "check_softmax_nll_large", "check_bigram_loss"},
         "answers that call PyTorch's softmax or logsumexp instead of computing it earn 0"),
    Case("leaf_mistakes", STAGE1, {
        "answer_bigram_probs": "def bigram_probs(N):\n    P = (N + 1).float()\n"
                               "    return P / P.sum(1)",
        "answer_average_nll": VARIANTS["answer_average_nll"].replace("/ n", ""),
        "answer_embed_one_hot": "def embed_one_hot(X, C):\n    return F.one_hot(X).float() @ C",
        "answer_bigram_loss": VARIANTS["answer_bigram_loss"]
                              .replace(" + 0.01 * W.pow(2).mean()", ""),
    }, {"check_bigram_probs", "check_average_nll", "check_embed_one_hot", "check_bigram_loss"},
         "a missing keepdim, a sum for a mean, a missing num_classes, a missing regulariser: "
         "each costs its own point"),
]
