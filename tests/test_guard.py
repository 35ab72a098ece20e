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


CHANGE_THROUGH_A_PARAMETER = '''
def change(module, functional):
    module.tanh = lambda x: x
    functional.softmax = None
    module.planted = 1
change(torch, F)
def seed_with(module, f):
    module.seed = f
seed_with(np.random, print)
torch.set_default_dtype(torch.float64)
print('inside the cell:', torch.tanh(torch.tensor(3.0)).item())
'''


def test_what_a_cell_changes_in_a_module_is_put_back_after_it():
    """A module reached through a parameter (which the code policy cannot follow) is put back
    after the cell, and the cell's output says what; a submodule imported since is kept."""
    code = ("from IPython.core.interactiveshell import InteractiveShell\n"
            "shell = InteractiveShell.instance()\n"
            "shell.run_cell('import torch, torch.nn.functional as F, numpy as np')\n"
            "shell.run_cell('import grader.guard as g')\n"
            "shell.run_cell('g.start()')\n"
            f"shell.run_cell({CHANGE_THROUGH_A_PARAMETER!r})\n"
            "shell.run_cell('import torch.distributions')\n"
            "shell.run_cell('print(torch.tanh(torch.tensor(3.0)).item(), F.softmax is not None, "
            "hasattr(torch, \"planted\"), hasattr(torch, \"distributions\"), "
            "np.random.seed is not print, torch.get_default_dtype())')\n")
    env = {**os.environ, GUARD_ENV: json.dumps({"block_autograd": True})}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "inside the cell: 3.0", lines
    assert lines[1] == ("(grading put back F.softmax, numpy.random.seed, torch.planted, "
                        "torch.set_default_dtype, torch.tanh: a cell may not change what a "
                        "module holds)"), lines
    assert lines[2].startswith("0.995") and lines[2].endswith("True False True True torch.float32")
    assert len(lines) == 3, lines   # the import of a submodule changed nothing


def test_a_function_called_with_autograd_blocked_changes_no_module_after_the_block():
    from grader import guard
    watch = guard.ModuleWatch()
    watch.take()
    saved, guard._WATCH = guard._WATCH, watch
    original = torch.Tensor.sum
    try:
        with autograd_blocked():
            torch.Tensor.sum = lambda self, *a, **k: 0   # what a student's function may do
        assert torch.Tensor.sum is original
        assert watch.put_back() == []
    finally:
        guard._WATCH = saved
        torch.Tensor.sum = original
