"""The instructor's side of the makemore backprop course: release, sandboxed autograding
with nbgrader, reports, the reading version. The notebooks import the course library, `makemore`."""
import sys

# jsonschema (under nbformat) imports this optional IRI checker when it is installed, which
# takes about 1.5 s in every grading process; notebook schemas never use IRI formats.
sys.modules.setdefault("rfc3987_syntax", None)


class GradingError(Exception):
    """A grading step failed; the message is a one-line reason."""
