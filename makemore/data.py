"""The names dataset as the lectures use it: words, vocabulary, (context, next) pairs, splits."""
import random

import torch

from .config import SPLIT_SEED, names_path


def load_words(path=None):
    """The names, one per line, from path or the course's names file (see config.names_path)."""
    path = path or names_path()
    try:
        text = open(path, encoding="utf-8").read()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"names file not found: {path}. Rebuild it with `python data/build_names.py`, "
            "or point the MAKEMORE_NAMES environment variable at a names file.") from None
    words = text.splitlines()
    if not words:
        raise ValueError(f"names file is empty: {path}")
    return words


def vocabulary(words):
    """(stoi, itos): the letters a..z as 1..26 and '.', the start/end token, as 0."""
    chars = sorted(set("".join(words)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    itos = {i: s for s, i in stoi.items()}
    return stoi, itos


def build_dataset(words, stoi, block_size=3):
    """X: the block_size previous characters of every character in words; Y: that character."""
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X).view(-1, block_size), torch.tensor(Y)


def split_words(words, seed=SPLIT_SEED):
    """The lecture's 80/10/10 split: shuffled as random.seed(42); random.shuffle(words) does."""
    words = list(words)
    random.Random(seed).shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    return words[:n1], words[n1:n2], words[n2:]
