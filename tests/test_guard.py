"""The grading kernel's guard: autograd off, warnings to stdout."""
import json
import os
import subprocess
import sys

import pytest
import torch

from grader.guard import GUARD_ENV, AutogradOff, autograd_blocked


def test_autograd_blocked_inside_the_block_only():
    x = torch.randn(3, requires_grad=True)
    with autograd_blocked():
        (x * x).sum().backward()
        assert x.grad is None
        with pytest.raises(AutogradOff):
            torch.autograd.grad((x * x).sum(), x)
        with pytest.raises(AutogradOff):
            torch.func.grad(lambda t: (t * t).sum())(x.detach())
    (x * x).sum().backward()
    assert torch.equal(x.grad, 2 * x.detach())


def test_grading_kernel_start_blocks_autograd_and_moves_warnings_to_stdout():
    code = ("import grader.guard as g, torch, warnings; g.start();"
            "x = torch.ones(2, requires_grad=True); (x * 3).sum().backward();"
            "print('grad', x.grad); warnings.warn('careful')")
    env = {**os.environ, GUARD_ENV: json.dumps({"block_autograd": True})}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "grad None" in run.stdout and "careful" in run.stdout
    assert run.stderr == ""


def test_backward_kernels_raise_inside_the_block_only():
    x, g = torch.randn(4, 5), torch.randn(4, 5)
    expected = torch.ops.aten.tanh_backward(g, x)
    with autograd_blocked():
        with pytest.raises(AutogradOff, match="backward kernels"):
            torch.ops.aten.tanh_backward(g, x)
        with pytest.raises(AutogradOff):
            torch._log_softmax_backward_data(g, torch.log_softmax(x, 1), 1, x.dtype)
        assert torch.tanh(x).shape == x.shape   # forward kernels are untouched
    assert torch.equal(torch.ops.aten.tanh_backward(g, x), expected)
