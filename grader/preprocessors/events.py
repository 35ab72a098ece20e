"""What happened to each notebook while it was graded in this process, for the summary.

EVENTS holds notes (a timeout, a cap that fired, restored cells); FAULTS holds the grader's
own failures (a kernel that never started): such a notebook is marked `error`, not scored.
"""
EVENTS = {}   # (student, notebook) -> [what happened]
FAULTS = {}   # (student, notebook) -> why the grader could not grade it


def _key(resources):
    nbg = (resources or {}).get("nbgrader", {})
    return nbg.get("student"), nbg.get("notebook")


def record(resources, text, log=None):
    """Note what happened to the notebook being graded (shown in the summary's reason)."""
    EVENTS.setdefault(_key(resources), []).append(text)
    if log:
        log.warning(text)


def fault(resources, text):
    """Note that the grader, not the student, failed on the notebook being graded."""
    FAULTS.setdefault(_key(resources), text)


def label(cell, index):
    """How the summary names a cell: its grade id, or its position if the student added it."""
    gid = cell.metadata.get("nbgrader", {}).get("grade_id")
    return gid or f"cell {index + 1} (added)"
