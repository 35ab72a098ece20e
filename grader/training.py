"""How long a notebook's training loops run: the lecture's length, or a short one while graded."""
import os


def steps(interactive, grading):
    """`grading` while nbgrader runs the notebook (NBGRADER_EXECUTION set), else `interactive`.

    Use it for every long loop, e.g. `max_steps = steps(200_000, 2_000)`, so a notebook that
    trains for minutes in JupyterLab autogrades and validates in seconds.
    """
    return grading if "NBGRADER_EXECUTION" in os.environ else interactive
