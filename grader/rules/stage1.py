"""Stage 1's hidden tests: the bigram model's and the MLP's functions on inputs the student
never saw.

Each check below is one test cell of 01_bigram_mlp (its grade id): it calls the student's
function on inputs drawn from a seed (SEED + k, one k per check) and hands the results to the
grader with `report`; the grader compares them with the solution's, outside the kernel.
The answers that take a softmax by hand run under `by_hand`, so PyTorch's softmax and
cross-entropy raise there as in the notebook.
"""
import torch
import torch.nn.functional as F

from makemore.checks import by_hand, report
from makemore.config import SEED


def random_words(gen: torch.Generator, itos: dict, count: int, longest: int) -> list[str]:
    """`count` words of 1 to longest-1 random letters (no '.')."""
    lengths = torch.randint(1, longest, (count,), generator=gen).tolist()
    return ["".join(itos[i] for i in torch.randint(1, 27, (k,), generator=gen).tolist())
            for k in lengths]


def check_bigram_counts(nb: dict) -> None:
    """The count matrix (as integers) of 300 random words."""
    words = random_words(torch.Generator().manual_seed(SEED + 1), nb["itos"], 300, 12)
    report("N", torch.as_tensor(nb["bigram_counts"](words, nb["stoi"])).long())


def check_bigram_probs(nb: dict) -> None:
    """Raw values on random int32 counts with one all-zero row (a character never seen
    first: its row must not become NaN)."""
    gen = torch.Generator().manual_seed(SEED + 2)
    counts = torch.randint(0, 40, (27, 27), generator=gen, dtype=torch.int32)
    counts[5] = 0
    report("P", nb["bigram_probs"](counts))


def check_average_nll(nb: dict) -> None:
    """The value (as a float) for a random model on 100 random words."""
    gen = torch.Generator().manual_seed(SEED + 3)
    probs = torch.rand((27, 27), generator=gen) + 0.05
    probs /= probs.sum(1, keepdim=True)
    words = random_words(gen, nb["itos"], 100, 10)
    report("nll", float(nb["average_nll"](probs, words, nb["stoi"])))


def check_bigram_loss(nb: dict) -> None:
    """Whether the loss is differentiable, its value on 500 random pairs and random weights,
    and its value on the notebook's own W, xs, ys; all by hand (no PyTorch softmax)."""
    gen = torch.Generator().manual_seed(SEED + 4)
    W = torch.randn((27, 27), generator=gen, requires_grad=True)
    xs = torch.randint(0, 27, (500,), generator=gen)
    ys = torch.randint(0, 27, (500,), generator=gen)
    with by_hand(), torch.enable_grad():
        loss = nb["bigram_loss"](W, xs, ys)
        loss_seed = nb["bigram_loss"](nb["W"], nb["xs"], nb["ys"])
    report("differentiable", bool(torch.is_tensor(loss) and loss.requires_grad))
    report("loss", float(torch.as_tensor(loss).detach()))
    report("initial loss", float(torch.as_tensor(loss_seed).detach()))


def check_sgd_step(nb: dict) -> None:
    """Raw parameter values after two steps on two losses, starting from a stale .grad the
    step must not use."""
    gen = torch.Generator().manual_seed(SEED + 5)
    A = torch.randn((5, 4), generator=gen, requires_grad=True)
    b = torch.randn(4, generator=gen, requires_grad=True)
    x = torch.randn((7, 5), generator=gen)
    A.grad = torch.ones_like(A)   # left over from an earlier computation
    nb["sgd_step"]([A, b], ((x @ A + b)**2).mean(), 0.1)
    nb["sgd_step"]([A, b], torch.tanh(x @ A + b).sum(), 0.05)
    report("A", A.detach().clone())
    report("b", b.detach().clone())


def check_build_dataset(nb: dict) -> None:
    """X and Y exactly, for 60 random words with block sizes 3 (positional) and 5 (keyword)."""
    words = random_words(torch.Generator().manual_seed(SEED + 6), nb["itos"], 60, 12)
    X3, Y3 = nb["build_dataset"](words, nb["stoi"], 3)
    X5, Y5 = nb["build_dataset"](words, nb["stoi"], block_size=5)
    report("X", X3)
    report("Y", Y3)
    report("X, block_size 5", X5)
    report("Y, block_size 5", Y5)


def check_embed_one_hot(nb: dict) -> None:
    """Raw values for a random [50, 3] index batch into a [27, 5] table."""
    gen = torch.Generator().manual_seed(SEED + 7)
    X = torch.randint(0, 20, (50, 3), generator=gen)
    C = torch.randn((27, 5), generator=gen)
    report("emb", nb["embed_one_hot"](X, C))


def check_mlp_forward(nb: dict) -> None:
    """Raw logits of a random MLP (block size 4, embedding 3, 20 hidden), and the loss of
    the notebook's own network on its batch."""
    gen = torch.Generator().manual_seed(SEED + 8)
    X = torch.randint(0, 27, (40, 4), generator=gen)
    params = [torch.randn((27, 3), generator=gen), torch.randn((12, 20), generator=gen) * 0.2,
              torch.randn(20, generator=gen) * 0.1, torch.randn((20, 27), generator=gen) * 0.05,
              torch.randn(27, generator=gen) * 0.01]
    report("logits", nb["mlp_forward"](X, *params))
    logits = nb["mlp_forward"](nb["X"], nb["C"], nb["W1"], nb["b1"], nb["W2"], nb["b2"])
    report("initial loss", F.cross_entropy(logits, nb["Y"]).item())


def softmax_nll_cases(seed: int, nb: dict, scale: float, shift: float) -> None:
    """The loss, by hand, on 64 rows of scale * N(0, 1) + shift logits and random targets."""
    gen = torch.Generator().manual_seed(SEED + seed)
    logits = torch.randn((64, 27), generator=gen) * scale + shift
    Y = torch.randint(0, 27, (64,), generator=gen)
    with by_hand(), torch.no_grad():
        report("loss", float(nb["softmax_nll"](logits, Y)))


def check_softmax_nll(nb: dict) -> None:
    """The loss (as a float) on 64 random rows of logits, by hand."""
    softmax_nll_cases(9, nb, scale=2.0, shift=0.0)


def check_softmax_nll_large(nb: dict) -> None:
    """The loss on logits near 100, where exp overflows float32 unless the max is taken
    out first."""
    softmax_nll_cases(10, nb, scale=3.0, shift=100.0)
