"""Students meet the code policy while they work: `cmp` and `check` apply it to the cells run
since the last check, as the grader will, so nobody first learns a rule from a 0."""
import nbformat
from nbclient import NotebookClient

from crafted import STAGE2, correct_submission


def cell_errors(nb, grade_id):
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return " ".join(o.get("evalue", "") for o in cell.outputs if o.output_type == "error")


def test_cmp_names_the_rule_an_answer_breaks(tmp_path):
    nb = correct_submission(STAGE2)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "answer_logprobs":
            cell.source = "dlogprobs = logprobs.grad   # autograd's own answer"
    path = tmp_path / f"{STAGE2}.ipynb"
    nbformat.write(nb, str(path))
    client = NotebookClient(nb, timeout=120, allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    refused = cell_errors(nb, "check_logprobs")
    assert "breaks the grading rules" in refused, refused
    assert "line 1: `.grad`: autograd is not allowed here" in refused, refused
    assert cell_errors(nb, "check_probs") == ""       # the next answer is judged as usual
    assert cell_errors(nb, "check_C") == ""           # loops and index_add_ pass the policy
