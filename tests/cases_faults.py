"""Faults: broken submissions, each graded with a recorded reason and nothing lost elsewhere.

A fault costs the cells it breaks (and, when the kernel dies, the cells it never reached),
never the notebook's other cells, another notebook or another student. The crafted run uses
a short per-cell timeout (MAKEMORE_CELL_TIMEOUT, see conftest.py).
"""
from crafted import ALL, DELETE, STAGE2, Case

# graded cells of stage 2 from check_emb on (the last two)
LAST_TWO = {"check_emb", "check_C"}
SOLUTION_DH = "dh = dlogits @ W2.T"


def _move_cells(nb):
    """Put the last test cell first and swap the first two answers with their tests."""
    ids = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    nb.cells.remove(ids["check_C"])
    nb.cells.insert(0, ids["check_C"])
    a, b = nb.cells.index(ids["answer_logprobs"]), nb.cells.index(ids["answer_probs"])
    nb.cells[a], nb.cells[b] = nb.cells[b], nb.cells[a]


CASES = [
    Case("fault_loop", STAGE2, {"answer_h": "while True:\n    pass\n" + SOLUTION_DH},
         {"check_h"}, "an infinite loop costs its cell only: the kernel is interrupted",
         reason="answer_h ran past the"),
    Case("fault_stubborn_loop", STAGE2,
         {"answer_emb": "total = sum(range(10**15))   # one C call: the interrupt waits for it"},
         LAST_TWO, "a loop that ignores the interrupt: the kernel is stopped, earlier cells "
                   "keep their credit", reason="did not stop when interrupted"),
    Case("fault_os_exit", STAGE2, {"answer_emb": "import os\nos._exit(3)"},
         {"check_emb"}, "os._exit is refused by the code policy before it runs (the kernel's "
                        "death is tested in test_sandbox.py): only its own answer fails",
         reason="answer_emb breaks the code policy (no-autograd): line 1: `import os`"),
    Case("fault_sys_exit", STAGE2, {"answer_h": "raise SystemExit('bye')\n" + SOLUTION_DH},
         {"check_h"}, "SystemExit raised in a cell is an error in that cell",
         reason="answer_h called sys.exit()"),
    Case("fault_segfault", STAGE2, {"answer_emb": "import faulthandler\nfaulthandler._sigsegv()"},
         {"check_emb"}, "a segfault attempt is refused by the code policy before it runs",
         reason="`import faulthandler`"),
    Case("fault_memory_bomb", STAGE2,
         {"answer_h": "hog = bytearray(64 * 2**30)\n" + SOLUTION_DH},
         {"check_h"}, "a memory bomb hits the kernel's memory limit in its own cell",
         reason="answer_h ran out of memory"),
    Case("fault_renamed", STAGE2, {}, ALL, "a renamed notebook is missing, and says what was found",
         filename="my_backprop.ipynb", status="missing",
         reason="found instead: my_backprop.ipynb"),
    Case("fault_extra_files", STAGE2, {}, set(),
         "extra files are ignored and recorded; a course library or grader package beside "
         "the notebook never reaches the kernel",
         extra_files=(("notes.txt", "my notes"),
                      ("grader/__init__.py", ""),
                      ("grader/guard.py", "def start():\n    pass\n"),
                      ("makemore/__init__.py", ""),
                      ("makemore/checks.py", "def report(*a, **k):\n    pass\n"
                                             "def cmp(*a, **k):\n    pass\n")),
         reason="ignored extra files: grader/__init__.py, grader/guard.py, "
                "makemore/__init__.py, makemore/checks.py, notes.txt"),
    Case("fault_huge_output", STAGE2,
         {"answer_h": "for _ in range(40):\n    print('x' * 100_000)\n" + SOLUTION_DH},
         set(), "a huge output is cut; the answer still counts",
         reason="answer_h printed more than"),
    Case("fault_nan", STAGE2, {"answer_h": "dh = dlogits @ W2.T * float('nan')",
                               "answer_b2": "db2 = dlogits.sum(0) / 0 * 0"},
         {"check_h", "check_b2"}, "NaN answers are wrong answers"),
    Case("fault_deleted_cells", STAGE2,
         {"forward": DELETE, "check_b2": DELETE, "answer_W2": DELETE, "forward_md": DELETE},
         {"check_W2"}, "deleted locked and test cells are restored; a deleted answer scores 0",
         reason="deleted cells restored: forward_md, forward, check_b2"),
    Case("fault_edited_locked", STAGE2,
         {"forward": "loss = 0.0", "check_h": "pass", "setup": "import torch"},
         set(), "edited locked cells are restored from the course", reason="locked cells edited"),
    Case("fault_reordered", STAGE2, {}, set(), "moved cells are graded in the course's order",
         transform=_move_cells, reason="cells were moved"),
]
