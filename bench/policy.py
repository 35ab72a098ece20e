"""The code policy's cost per notebook: every answer cell of every solution, checked as the
grader checks a submission (grader/preprocessors/enforce_policy.py).

    python bench/policy.py

Target (issue: a code policy checked outside the kernel): under 50 ms per notebook.
"""
import sys
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from grader import config, policy  # noqa: E402
from grader.preprocessors.enforce_policy import is_course_cell  # noqa: E402


def student_cells(path):
    nb = nbformat.read(str(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    imports = policy.course_imports_of(c.source for c in code if is_course_cell(c))
    return [c.source for c in code if not is_course_cell(c)], imports


def main():
    start = time.perf_counter()
    policy.refused_module_attributes()   # built once per grading process
    print(f"policy set-up, once per grading process: {1000 * (time.perf_counter() - start):.0f} ms")
    for path in sorted(config.SOLUTIONS.glob("*.ipynb")):
        sources, imports = student_cells(path)
        default, _ = policy.policies_of(path.stem)
        runs = 20
        start = time.perf_counter()
        for _ in range(runs):
            for source in sources:
                policy.check_source(source, default, imports)
        per = 1000 * (time.perf_counter() - start) / runs
        print(f"{path.stem:32s} {len(sources):3d} student cells: {per:6.2f} ms per notebook "
              f"(target < 50 ms)")


if __name__ == "__main__":
    main()
