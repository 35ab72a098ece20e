"""How grading runs, each setting stated once: the nbgrader course, kernel limits, caches.

The course's own facts (paths, data, seeds, tolerance) are in makemore.config; the grader
uses them from there.
"""
import os

from makemore.config import (DEFAULT_NAMES, NAMES_ENV, NOTEBOOKS, REPO, SEED,  # noqa: F401
                             SOLUTIONS, names_path)

COURSE_ID = "makemore-backprop"
ASSIGNMENT = "makemore"  # one nbgrader assignment holds every stage's notebook

# Limits of every grading kernel (grader.guard). A cell that runs longer than CELL_TIMEOUT
# is interrupted and scores as an error (MAKEMORE_CELL_TIMEOUT overrides it, e.g. for tests).
# KERNEL_MEMORY caps a kernel's address space: a stage 2 kernel peaks at ~1.5 GiB of address
# space (~0.3 GiB resident), so 4 GiB leaves room for figures and larger models while two
# kernels in parallel stay far below a 2-core, 8+ GiB machine's memory. A bigger allocation
# fails with MemoryError (or torch's "can't allocate memory") in that cell only.
CELL_TIMEOUT = int(os.environ.get("MAKEMORE_CELL_TIMEOUT") or 60)   # seconds per cell
KERNEL_MEMORY = 4 * 2**30        # bytes of address space per grading kernel
IOPUB_WAIT = 30                  # seconds to wait for a finished cell's last output (a busy
                                 # machine can be slow to deliver it); 5 after an interrupt
# Grading kernels compute on one thread (OMP/MKL/torch): results do not depend on the
# machine's core count, and kernels graded in parallel do not fight over cores.
KERNEL_THREADS = 1
KERNEL_FILE_SIZE = 256 * 2**20   # largest file a grading kernel may write, bytes
KERNEL_PROCESSES = 128          # processes and threads a sandboxed kernel may run (~20 in use)
KERNEL_DISK = 512 * 2**20        # bytes a grading kernel may write in all (its private /tmp)
CELL_OUTPUT_LIMIT = 2 * 2**20    # bytes of output kept per cell; the rest is dropped
NOTEBOOK_OUTPUT_LIMIT = 8 * 2**20   # bytes of output kept per notebook
# seconds one notebook may run in all (stage 5, the longest, needs ~40 s on one core)
NOTEBOOK_TIMEOUT = int(os.environ.get("MAKEMORE_NOTEBOOK_TIMEOUT") or 600)
NO_SANDBOX_ENV = "MAKEMORE_NO_SANDBOX"   # "1": kernels without bubblewrap (--no-sandbox)
KERNEL_START_TRIES = 3           # a kernel that fails to start is tried this often

# Reference answers are cached in OUT/course/.references, keyed by a hash of the solution
# notebook, the torch version, the names file and makemore/checks.py. MAKEMORE_REFERENCE_CACHE
# names another folder for that cache, shared by several output folders (the tests use it);
# grading kernels cannot read it either way.
REFERENCE_CACHE_ENV = "MAKEMORE_REFERENCE_CACHE"

