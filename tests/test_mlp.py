"""makemore.mlp builds exactly the network, minibatch and forward pass that stage 2 spells out."""
import nbformat
import pytest
import torch

from grader import config
from makemore.mlp import STEPS, batchnorm, forward, init_mlp

STAGES = (2,)   # pytest -m stageN (tests/conftest.py)

STAGE2 = config.SOLUTIONS / "02_backprop_step_by_step.ipynb"
SETUP_CELLS = ["setup", "data", "init", "batch", "forward"]   # stage 2's provided cells, in order


@pytest.fixture(scope="module")
def stage2():
    """The variables of stage 2 after its provided cells ran (the notebook's own code)."""
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source
             for c in nbformat.read(str(STAGE2), as_version=4).cells}
    namespace = {}
    for cell in SETUP_CELLS:
        exec(compile(cells[cell], f"stage2:{cell}", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def rebuilt(stage2):
    """The same network from makemore.mlp: same seed, same minibatch draw."""
    g = torch.Generator().manual_seed(config.SEED)
    parameters = init_mlp(stage2["vocab_size"], stage2["n_embd"], stage2["n_hidden"],
                          stage2["block_size"], generator=g)
    ix = torch.randint(0, stage2["Xtr"].shape[0], (stage2["batch_size"],), generator=g)
    f = forward(parameters, stage2["Xtr"][ix], stage2["Ytr"][ix])
    f.loss.backward()
    return parameters, f


def test_parameters_match_stage2_bit_for_bit(stage2, rebuilt):
    parameters, _ = rebuilt
    for name, p in zip(["C", "W1", "b1", "W2", "b2", "bngain", "bnbias"], parameters,
                              strict=True):
        assert p.requires_grad, name
        assert torch.equal(p, stage2[name]), name


def test_forward_and_gradients_match_stage2_bit_for_bit(stage2, rebuilt):
    _, f = rebuilt
    assert torch.equal(f.loss, stage2["loss"])
    for name in STEPS:
        ours, theirs = getattr(f, name), stage2[name]
        assert torch.equal(ours, theirs), name
        assert ours.grad is not None and torch.equal(ours.grad, theirs.grad), name


def test_forward_without_autograd_tracking_still_works():
    g = torch.Generator().manual_seed(0)
    parameters = [p.detach() for p in init_mlp(27, generator=g)]
    X = torch.randint(0, 27, (5, 3), generator=g)
    Y = torch.randint(0, 27, (5,), generator=g)
    f = forward(parameters, X, Y)
    assert f.logits.shape == (5, 27) and not f.loss.requires_grad
    assert torch.allclose(f.loss, torch.nn.functional.cross_entropy(f.logits, Y))


def test_batchnorm_normalises_each_column_with_bessels_correction():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64) * 3 + 2
    gain, bias = torch.full((1, 4), 2.0, dtype=torch.float64), torch.ones(1, 4, dtype=torch.float64)
    bn = batchnorm(x, gain, bias)
    expected = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=True) + 1e-5)
    assert torch.allclose(bn.bnraw, expected)
    assert torch.allclose(bn.hpreact, 2 * expected + 1)
    assert bn.bnvar.shape == bn.bnvar_inv.shape == (1, 4)
