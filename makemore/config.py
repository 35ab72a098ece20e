"""Course facts, each stated once: where the course's files are, the data, seeds, tolerance."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"   # nbgrader source: solutions and hidden tests
NOTEBOOKS = REPO / "notebooks"   # the student release, generated from SOLUTIONS

# The dataset. Set MAKEMORE_NAMES to use another names file (e.g. the lecture's names.txt).
NAMES_ENV = "MAKEMORE_NAMES"
DEFAULT_NAMES = REPO / "data" / "names.txt"

SEED = 2147483647        # the lecture's torch.Generator seed
SPLIT_SEED = 42          # the lecture's random.seed before shuffling the words

# Grading tolerance, one rule for every graded float answer: an answer a passes against the
# reference r when, element by element, |a - r| <= RTOL_EPS * eps * |r| + eps, with eps the
# machine epsilon of r's dtype (float32: 1.19e-7, float64: 2.2e-16). Shapes and dtypes must
# match exactly; integer answers must be equal. On torch 2.13 CPU correct float32 answers
# differ from the reference by at most ~5e-9 absolute and ~1e-5 relative, while real
# mistakes (a missing 1/n, Bessel's n/(n-1), a sign) differ by 3% or more.
RTOL_EPS = 100


def names_path() -> Path:
    """The names file every notebook reads: $MAKEMORE_NAMES if set, else data/names.txt."""
    return Path(os.environ.get(NAMES_ENV) or DEFAULT_NAMES).expanduser().resolve()


def tolerance(dtype) -> tuple[float, float]:
    """(rtol, atol) for comparing floating tensors of this dtype."""
    import torch
    eps = torch.finfo(dtype).eps
    return RTOL_EPS * eps, eps
