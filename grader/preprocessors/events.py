"""What happened to one notebook while it was graded, for the summary.

Each notebook's nbconvert resources carry its GradingNotes (under NOTES_KEY; the grader's
CourseAutograde puts them there): notes (a timeout, a cap that fired, restored cells), and
the grader's own failure (a kernel that never started), for which the notebook is marked
`error`, not scored. nbconvert deep-copies the resources before its preprocessors run; the
notes stay one object, so what the preprocessors write reaches whoever started the grading.
"""
NOTES_KEY = "makemore_notes"


class GradingNotes:
    """The notes of one notebook's grading: `events` (in order) and the grader's `fault`."""

    def __init__(self):
        self.events: list[str] = []
        self.fault: str | None = None

    def __deepcopy__(self, memo):
        return self   # one record, however often nbconvert copies the resources


def _notes(resources) -> GradingNotes | None:
    return (resources or {}).get(NOTES_KEY)


def record(resources, text, log=None):
    """Note what happened to the notebook being graded (shown in the summary's reason)."""
    notes = _notes(resources)
    if notes is not None:
        notes.events.append(text)
    if log:
        log.warning(text)


def fault(resources, text):
    """Note that the grader, not the student, failed on the notebook being graded."""
    notes = _notes(resources)
    if notes is not None and notes.fault is None:
        notes.fault = text


def label(cell, index):
    """How the summary names a cell: its grade id, or its position if the student added it."""
    gid = cell.metadata.get("nbgrader", {}).get("grade_id")
    return gid or f"cell {index + 1} (added)"
