"""How long a notebook's training loops run: the lecture's length, or a short one while graded.

Every long loop of every stage takes its length from `steps`, so a notebook that trains for
minutes in JupyterLab autogrades and validates in seconds. Nothing graded may depend on how
long a loop trained.
"""
import os

# nbgrader sets this in the kernels it runs: "autograde" or "validate"
NBGRADER_ENV = "NBGRADER_EXECUTION"


def steps(interactive, grading):
    """`grading` while nbgrader runs the notebook (NBGRADER_EXECUTION set), else `interactive`.

    Use it for every long loop, e.g. `max_steps = steps(200_000, 2_000)`.
    """
    for name, value in (("interactive", interactive), ("grading", grading)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"steps: {name} must be a whole number >= 0, got {value!r}")
    return grading if NBGRADER_ENV in os.environ else interactive
