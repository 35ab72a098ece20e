"""Set up a grading kernel before any notebook cell runs (nbgrader starts it with `start()`).

The setup comes from the MAKEMORE_GUARD environment variable (JSON) that the grader sets:
    block_autograd  PyTorch's autograd is switched off, so answers cannot come from `.grad`,
                    `backward()`, torch.autograd.grad, torch.func or forward-mode AD.
Warnings go to stdout in every grading kernel: nbgrader scores any test cell with stderr
output 0, and a PyTorch warning is not a wrong answer.
"""
import json
import os
import sys
import warnings
from contextlib import contextmanager

GUARD_ENV = "MAKEMORE_GUARD"
START = "__import__('grader.guard').guard.start()"   # what the kernel runs at start-up


class AutogradOff(RuntimeError):
    """Raised by autograd's entry points while grading."""


def start():
    """Apply the setup the grader asked for; a no-op outside grading kernels."""
    setup = json.loads(os.environ.get(GUARD_ENV) or "{}")
    warnings.showwarning = _warning_to_stdout
    if setup.get("block_autograd"):
        block_autograd()


def _warning_to_stdout(message, category, filename, lineno, file=None, line=None):
    sys.stdout.write(warnings.formatwarning(message, category, filename, lineno, line))


def _refuse(*args, **kwargs):
    raise AutogradOff("autograd is switched off while grading: compute this gradient yourself")


def _backward(self, *args, **kwargs):
    print("(autograd is switched off while grading: backward() did nothing)")


class _NoEngine:
    """Stands in for PyTorch's backward engine."""
    def __getattr__(self, name):
        return _refuse


def _autograd_entry_points():
    """(owner, attribute) of every public way into PyTorch's autograd engines."""
    import torch
    import torch.autograd.forward_ad as fwad
    import torch.autograd.functional as functional
    import torch.autograd.variable as variable
    import torch.func

    points = [(torch.Tensor, "backward"), (variable.Variable, "_execution_engine")]
    for owner, names in [
        (torch.autograd, ["backward", "grad"]),
        (functional, ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]),
        (torch.func, ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd",
                      "hessian", "linearize"]),
        (fwad, ["make_dual", "enter_dual_level"]),
        (torch._C, ["_make_dual", "_enter_dual_level", "_ImperativeEngine"]),
    ]:
        points += [(owner, name) for name in names if hasattr(owner, name)]
    return points


def _replacement(owner, name):
    if name == "backward":
        return _backward
    if name == "_execution_engine":
        return _NoEngine()
    return _refuse


def block_autograd():
    """Switch off every public way into PyTorch's autograd engines, for this process."""
    for owner, name in _autograd_entry_points():
        setattr(owner, name, _replacement(owner, name))


@contextmanager
def autograd_blocked():
    """Autograd switched off inside the block only (e.g. around a call to a student's function)."""
    saved = [(owner, name, owner.__dict__[name] if name in vars(owner) else getattr(owner, name))
             for owner, name in _autograd_entry_points()]
    block_autograd()
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
