"""Stage 5 figures: the manual training step against autograd's, full training, grading time.

    python bench/stage5.py            # everything (about 5 minutes)
    python bench/stage5.py --quick    # step ratios and grading time only, no 200,000-step runs

Targets (stage 5 issue):
* the solution's manual training step costs <= 0.6x (aim 0.5x) the autograd step of the same
  network, both measured side by side in this run;
* the full 200,000-step training of the solution finishes in <= 120 s (aim 90 s), and its
  validation loss is within 0.02 of the autograd-trained twin's;
* the whole notebook autogrades in <= 60 s, and no cell comes near the per-cell timeout.

The step functions are the solution notebook's own (its code cells are run here). Step costs
are CPU time of this (single) thread, in blocks of steps that alternate between the variants,
so that other work on the shared machine affects them alike; wall times are printed too.
"""
import argparse
import functools
import os
import time

import nbformat

from measure import alternating_blocks, autograde_seconds, cell_seconds, run_solution

from grader import config
from makemore.training import NBGRADER_ENV

NOTEBOOK = "05_training_and_diagnostics"
SOLUTION = config.SOLUTIONS / f"{NOTEBOOK}.ipynb"
PART_A = ["setup", "data", "init", "forward", "answer_pieces", "answer_backward", "train",
          "answer_train_step", "calibrate_functions"]


def solution_namespace():
    """The solution's Part A definitions (data, forward, backward, train, steps), run here."""
    os.environ.pop(NBGRADER_ENV, None)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source
             for c in nbformat.read(str(SOLUTION), as_version=4).cells if c.cell_type == "code"}
    ns = {}
    for gid in PART_A:
        if gid in cells:
            exec(compile(cells[gid], f"{NOTEBOOK}:{gid}", "exec"), ns)
    exec(LECTURE_STEPS, ns)
    return ns


# The lecture's Exercise 4 step, as a student would first write it: its formulas, in-loop
# updates of p.data, and dC either with the lecture's double loop or with index_add_.
LECTURE_STEPS = '''
def lecture_backward(parameters, cache, Xb, Yb, double_loop):
    C, W1, b1, W2, b2, bngain, bnbias = parameters
    n = Xb.shape[0]
    dlogits = F.softmax(cache.logits, 1)
    dlogits[range(n), Yb] -= 1
    dlogits /= n
    dh = dlogits @ W2.T
    dW2 = cache.h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - cache.h**2) * dh
    dbngain = (cache.bnraw * dhpreact).sum(0, keepdim=True)
    dbnbias = dhpreact.sum(0, keepdim=True)
    dhprebn = bngain * cache.bnvar_inv / n * (n * dhpreact - dhpreact.sum(0)
              - n / (n - 1) * cache.bnraw * (dhpreact * cache.bnraw).sum(0))
    dembcat = dhprebn @ W1.T
    dW1 = cache.embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.view(cache.emb.shape)
    if double_loop:
        dC = torch.zeros_like(C)
        for k in range(Xb.shape[0]):
            for j in range(Xb.shape[1]):
                dC[Xb[k, j]] += demb[k, j]
    else:
        dC = torch.zeros_like(C).index_add_(0, Xb.view(-1), demb.view(-1, C.shape[1]))
    return [dC, dW1, db1, dW2, db2, dbngain, dbnbias]

def lecture_step(parameters, Xb, Yb, lr, double_loop=False):
    loss, cache = forward(parameters, Xb, Yb)
    for p, grad in zip(parameters, lecture_backward(parameters, cache, Xb, Yb, double_loop)):
        p.data += -lr * grad
    return loss

def lecture_step_double_loop(parameters, Xb, Yb, lr):
    return lecture_step(parameters, Xb, Yb, lr, double_loop=True)
'''


def step_costs(ns, variants, rounds=30):
    """{variant: (CPU s/step, wall s/step)}: medians over alternating blocks of training steps.

    variants: {name: (step function, steps per block)}."""
    torch = ns["torch"]
    blocks = {}
    for name, (step, k) in variants.items():
        params = ns["make_parameters"](torch.Generator().manual_seed(config.SEED))
        g = torch.Generator().manual_seed(config.SEED + 1)
        ns["train"](params, 3 * k, g, step, progress=False)  # warm-up
        blocks[name] = (functools.partial(ns["train"], params, k, g, step, progress=False), k)
    return alternating_blocks(blocks, rounds)


def full_training(ns, step, max_steps):
    """Train from the notebook's initialisation; (CPU s, wall s, train loss, val loss)."""
    torch, F = ns["torch"], ns["F"]
    g = torch.Generator().manual_seed(config.SEED)
    params = ns["make_parameters"](g)
    c0, w0 = time.thread_time(), time.perf_counter()
    ns["train"](params, max_steps, g, step, progress=False)
    cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
    bnvar, bnmean = torch.var_mean(ns["hidden_preactivations"](params, ns["Xtr"]), 0, keepdim=True)
    losses = [F.cross_entropy(ns["inference_logits"](params, bnmean, bnvar, X), Y).item()
              for X, Y in ((ns["Xtr"], ns["Ytr"]), (ns["Xdev"], ns["Ydev"]))]
    return cpu, wall, *losses


def graded_run_cells():
    """Per-cell kernel seconds of the solution run as while grading (NBGRADER_EXECUTION set)."""
    nb, _ = run_solution(SOLUTION.stem, "autograde", timeout=600)
    return [(c.metadata.get("nbgrader", {}).get("grade_id"), cell_seconds(c))
            for c in nb.cells if c.cell_type == "code"]


def autograde_one():
    """(course setup s, autograde s) for one correct submission of this notebook."""
    setup, seconds = autograde_seconds(NOTEBOOK)
    return setup, seconds["solution"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the two 200,000-step runs")
    args = parser.parse_args()
    ns = solution_namespace()
    torch = ns["torch"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} "
          "(shared: times drift, ratios measured side by side)")

    costs = step_costs(ns, {"autograd_step": (ns["autograd_step"], 100),
                            "train_step (solution)": (ns["train_step"], 100),
                            "lecture step, index_add_ dC": (ns["lecture_step"], 100),
                            "lecture step, double-loop dC": (ns["lecture_step_double_loop"], 20)})
    base_cpu, base_wall = costs["autograd_step"]
    print("\none training step (sample a batch, forward, backward, update), median over blocks:")
    print(f"  {'':30s} {'CPU us':>8s} {'x autograd':>10s} {'wall us':>8s} {'x autograd':>10s}")
    for name, (cpu, wall) in costs.items():
        print(f"  {name:30s} {cpu * 1e6:8.0f} {cpu / base_cpu:10.2f} {wall * 1e6:8.0f} "
              f"{wall / base_wall:10.2f}")
    ratio = costs["train_step (solution)"][0] / base_cpu
    print(f"  solution / autograd: {ratio:.2f} (target <= 0.6, aim 0.5)")

    if not args.quick:
        max_steps = 200_000
        print(f"\nfull training, {max_steps} steps from the notebook's initialisation:")
        results = {}
        for name in ("train_step", "autograd_step"):
            cpu, wall, tr, va = results[name] = full_training(ns, ns[name], max_steps)
            print(f"  {name:14s} {wall:6.1f} s wall ({cpu:6.1f} s CPU) "
                  f"| train {tr:.4f} | val {va:.4f}")
        solution, twin = results["train_step"], results["autograd_step"]
        print(f"  solution time: {solution[1]:.1f} s wall, {solution[0]:.1f} s CPU "
              f"(target <= 120 s, aim 90 s); CPU {solution[0] / twin[0]:.2f}x the autograd twin's; "
              f"load average now {os.getloadavg()[0]:.1f}")
        gap = abs(solution[3] - twin[3])
        print(f"  |val - val of the autograd twin| = {gap:.4f} (target <= 0.02); "
              f"lecture on its data: train 2.0705, val 2.1099")

    cells = graded_run_cells()
    slowest = max(cells, key=lambda c: c[1])
    print(f"\nsolution run as while grading: {sum(t for _, t in cells):.1f} s kernel time; "
          f"slowest cell {slowest[0]} {slowest[1]:.1f} s "
          f"(per-cell timeout {config.CELL_TIMEOUT} s)")
    setup, one = autograde_one()
    print(f"autograde one submission: {one:.1f} s (target <= 60 s); course setup and reference "
          f"runs, once per grading run: {setup:.1f} s")


if __name__ == "__main__":
    main()
