"""The makemore backprop course: course facts, checks, and the nbgrader-based grader."""


class GradingError(Exception):
    """A grading step failed; the message is a one-line reason."""
