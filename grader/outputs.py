"""Solutions stored executed: their outputs, and whether those belong to their current code.

`python -m grader execute` runs each solution notebook as a reader would run it (no grading
settings), stores the outputs in place and records in the notebook's metadata a hash of its
code cells, so a test (`python -m grader execute --check`) and the reading version's build can
tell whether the stored outputs belong to the current code.
"""
import copy
import hashlib
import json
import os
from pathlib import Path
from unittest import mock

import nbformat

from . import GradingError

OUTPUTS_KEY = "outputs_of_code"   # in metadata["makemore"]: code_hash() of the executed code
EXECUTE_TIMEOUT = 3600   # seconds per cell: the full training runs of the later stages


def code_hash(nb):
    """sha256 of the sources of a notebook's code cells, in order."""
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    return "sha256:" + hashlib.sha256(json.dumps(sources).encode()).hexdigest()


def execute(path, timeout=EXECUTE_TIMEOUT):
    """Run the notebook at path top to bottom as a reader would; store its outputs in place.

    The notebook's own metadata is kept as it was (nbclient would write the kernel's Python
    version into it), plus the hash of the code that made the outputs. Nothing is written
    when a cell fails.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = nbformat.read(str(path), as_version=4)
    metadata = copy.deepcopy(nb.metadata)
    client = NotebookClient(nb, timeout=timeout, record_timing=False,
                            kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
                            extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    interactive = {k: v for k, v in os.environ.items()
                   if k not in ("NBGRADER_EXECUTION", "MAKEMORE_GUARD")}
    try:
        with mock.patch.dict(os.environ, interactive, clear=True):
            client.execute()
    except CellExecutionError as e:
        raise GradingError(f"{path.name}: a cell failed, nothing written: "
                           f"{str(e).strip().splitlines()[-1][:300]}") from None
    nb.metadata = metadata
    nb.metadata.setdefault("makemore", {})[OUTPUTS_KEY] = code_hash(nb)
    nbformat.write(nb, str(path))
    return path


def outputs_problem(nb):
    """None if the stored outputs are a full run of the notebook's current code, else why not."""
    recorded = nb.metadata.get("makemore", {}).get(OUTPUTS_KEY)
    if recorded is None:
        return "not executed (no record of the code its outputs come from)"
    if recorded != code_hash(nb):
        return "the code changed since its outputs were stored"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.execution_count is None:
            return f"cell {i} was not run"
        if any(o.output_type == "error" for o in cell.outputs):
            return f"cell {i} stored an error"
    return None


def stale_outputs(paths):
    """'name: reason' for each notebook whose stored outputs do not belong to its code."""
    problems = []
    for path in paths:
        problem = outputs_problem(nbformat.read(str(path), as_version=4))
        if problem:
            problems.append(f"{Path(path).name}: {problem}")
    return problems


def without_outputs_record(nb):
    """The notebook without the record of its outputs' code (the release must not depend on it)."""
    nb = copy.deepcopy(nb)
    nb.metadata.get("makemore", {}).pop(OUTPUTS_KEY, None)
    return nb
