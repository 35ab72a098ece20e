"""nbgrader's settings for JupyterLab started here (`make lab`): Validate counts the checks.

The grader reads none of this: every grading command writes its own course configuration.
"""
from grader.validate import count_checks_in_validate

count_checks_in_validate()
