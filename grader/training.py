"""How long a notebook's training loops run: the lecture's step counts when a person runs the
notebook, a few steps when nbgrader runs it (Validate or autograding).

Every training loop of every stage takes its length from `steps`, so the whole notebook grades
quickly while a reader still sees the model learn. Nothing graded may depend on how long a loop
trained.
"""
from .checks import nbgrader_running


def steps(interactive, grading):
    """`interactive` when a person runs the notebook; `grading` while nbgrader runs it."""
    for name, value in (("interactive", interactive), ("grading", grading)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"steps: {name} must be a whole number >= 0, got {value!r}")
    return grading if nbgrader_running() else interactive
