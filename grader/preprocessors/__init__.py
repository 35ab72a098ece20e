"""The course's nbgrader preprocessors, one per module (as nbgrader's own)."""
