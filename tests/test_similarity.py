"""Similar submissions (grader/similarity.py): copies are flagged, however renamed; honest
students with the same correct short answers and the untouched release are not."""
import random
import re
import shutil

import nbformat
import pytest

from conftest import read_csv
from crafted import NOTEBOOKS
from grader import config
from grader.autograde import Result
from grader.similarity import (FIELDS, STATEMENT, code_tokens, compare, course_names,
                               own_fragments, report_section, write_similarity)

STAGE2, STAGE3 = "02_backprop_step_by_step", "03_fused_cross_entropy"

# Stage 2: the ways students write each gradient, the lecture's first. Most cells have one
# common answer, which every honest student writes.
VARIANTS = {
    "answer_logprobs": ["dlogprobs = torch.zeros_like(logprobs)\n"
                        "dlogprobs[range(n), Yb] = -1.0 / n",
                        "dlogprobs = -F.one_hot(Yb, num_classes=logprobs.shape[1]).float() / n",
                        "dlogprobs = torch.zeros(n, logprobs.shape[1])\n"
                        "dlogprobs[torch.arange(n), Yb] = -1 / n"],
    "answer_probs": ["dprobs = (1.0 / probs) * dlogprobs", "dprobs = dlogprobs / probs",
                     "dprobs = probs**-1 * dlogprobs"],
    "answer_counts_sum_inv": ["dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)",
                              "dcounts_sum_inv = torch.sum(counts * dprobs, dim=1, keepdim=True)"],
    "answer_counts_sum": ["dcounts_sum = -counts_sum**-2 * dcounts_sum_inv",
                          "dcounts_sum = -1.0 / counts_sum**2 * dcounts_sum_inv",
                          "dcounts_sum = -(counts_sum_inv**2) * dcounts_sum_inv"],
    "answer_counts": ["dcounts = counts_sum_inv * dprobs\n"
                      "dcounts += torch.ones_like(counts) * dcounts_sum",
                      "dcounts = counts_sum_inv * dprobs + dcounts_sum",
                      "dcounts = dprobs * counts_sum_inv\n"
                      "dcounts = dcounts + dcounts_sum.expand_as(counts)"],
    "answer_norm_logits": ["dnorm_logits = counts * dcounts",
                           "dnorm_logits = norm_logits.exp() * dcounts"],
    "answer_logit_maxes": ["dlogit_maxes = (-dnorm_logits).sum(1, keepdim=True)",
                           "dlogit_maxes = -dnorm_logits.sum(1, keepdim=True)"],
    "answer_logits": ["dlogits = dnorm_logits.clone()\ndlogits += F.one_hot(logits.max(1).indices, "
                      "num_classes=logits.shape[1]) * dlogit_maxes",
                      "dlogits = dnorm_logits.clone()\n"
                      "dlogits[range(n), logits.argmax(1)] += dlogit_maxes.view(-1)",
                      "dlogits = dnorm_logits + (logits == logit_maxes).float() * dlogit_maxes"],
    "answer_h": ["dh = dlogits @ W2.T", "dh = dlogits @ W2.t()",
                 "dh = torch.matmul(dlogits, W2.transpose(0, 1))"],
    "answer_W2": ["dW2 = h.T @ dlogits", "dW2 = h.t() @ dlogits"],
    "answer_b2": ["db2 = dlogits.sum(0)", "db2 = dlogits.sum(dim=0)"],
    "answer_hpreact": ["dhpreact = (1.0 - h**2) * dh", "dhpreact = (1 - h * h) * dh",
                       "dhpreact = dh * (1 - torch.tanh(hpreact)**2)"],
    "answer_bngain": ["dbngain = (bnraw * dhpreact).sum(0, keepdim=True)"],
    "answer_bnbias": ["dbnbias = dhpreact.sum(0, keepdim=True)"],
    "answer_bnraw": ["dbnraw = bngain * dhpreact"],
    "answer_bnvar_inv": ["dbnvar_inv = (bndiff * dbnraw).sum(0, keepdim=True)"],
    "answer_bnvar": ["dbnvar = -0.5 * (bnvar + 1e-5)**-1.5 * dbnvar_inv",
                     "dbnvar = -0.5 * bnvar_inv**3 * dbnvar_inv"],
    "answer_bndiff2": ["dbndiff2 = 1.0 / (n - 1) * torch.ones_like(bndiff2) * dbnvar",
                       "dbndiff2 = torch.ones_like(bndiff2) * dbnvar / (n - 1)"],
    "answer_bndiff": ["dbndiff = bnvar_inv * dbnraw\ndbndiff += 2 * bndiff * dbndiff2",
                      "dbndiff = bnvar_inv * dbnraw + 2 * bndiff * dbndiff2"],
    "answer_bnmeani": ["dbnmeani = (-dbndiff).sum(0, keepdim=True)",
                       "dbnmeani = -dbndiff.sum(0, keepdim=True)"],
    "answer_hprebn": ["dhprebn = dbndiff.clone()\n"
                      "dhprebn += 1.0 / n * torch.ones_like(hprebn) * dbnmeani",
                      "dhprebn = dbndiff + dbnmeani / n"],
    "answer_embcat": ["dembcat = dhprebn @ W1.T", "dembcat = dhprebn @ W1.t()"],
    "answer_W1": ["dW1 = embcat.T @ dhprebn"],
    "answer_b1": ["db1 = dhprebn.sum(0)"],
    "answer_emb": ["demb = dembcat.view(emb.shape)", "demb = dembcat.view(n, block_size, n_embd)"],
    "answer_C": ["dC = torch.zeros_like(C).index_add_(0, Xb.view(-1), demb.view(-1, n_embd))",
                 "dC = torch.zeros_like(C)\nfor k in range(Xb.shape[0]):\n"
                 "    for j in range(Xb.shape[1]):\n        dC[Xb[k, j]] += demb[k, j]",
                 "dC = F.one_hot(Xb.view(-1), num_classes=C.shape[0]).float().T "
                 "@ demb.view(-1, n_embd)"],
}
POPULARITY = [0.6, 0.3, 0.1]   # of the first, second and third way

# Two students with ways of their own, in some cells (the rest as the lecture has it)
ANN2 = {
    "answer_logprobs": "picked = torch.zeros_like(logprobs)  # where the loss looks\n"
                       "picked[torch.arange(len(Yb)), Yb] = 1.0\ndlogprobs = picked * (-1.0 / n)",
    "answer_counts": "spread = dcounts_sum.expand(-1, counts.shape[1])\n"
                     "dcounts = dprobs * counts_sum_inv + spread",
    "answer_logits": "winner = logits.argmax(dim=1, keepdim=True)\n"
                     "mask = torch.zeros_like(logits).scatter_(1, winner, 1.0)\n"
                     "dlogits = dnorm_logits + mask * dlogit_maxes",
    "answer_hpreact": "slope = 1.0 - torch.square(h)\ndhpreact = slope * dh",
    "answer_bnvar": "inv_cubed = bnvar_inv * bnvar_inv * bnvar_inv\n"
                    "dbnvar = -0.5 * inv_cubed * dbnvar_inv",
    "answer_hprebn": "mean_part = dbnmeani.expand_as(hprebn) / n\ndhprebn = dbndiff + mean_part",
    "answer_C": "dC = torch.zeros_like(C)\nflat = Xb.flatten()\n"
                "rows = demb.reshape(flat.numel(), -1)\n"
                "for pos, row in zip(flat.tolist(), rows):\n    dC[pos] = dC[pos] + row",
}
CAT2 = {
    "answer_logprobs": "target = F.one_hot(Yb, logprobs.shape[-1]).to(logprobs.dtype)\n"
                       "dlogprobs = target.neg().div(n)   # mean over the batch",
    "answer_probs": "dprobs = dlogprobs.div(probs)",
    "answer_counts": "all_ones = torch.ones(counts.shape)\n"
                     "dcounts = dprobs.mul(counts_sum_inv).add(all_ones.mul(dcounts_sum))",
    "answer_logits": "where_max = logits.eq(logits.amax(dim=1, keepdim=True)).to(logits.dtype)\n"
                     "dlogits = dnorm_logits.add(where_max.mul(dlogit_maxes))",
    "answer_bndiff2": "scale = 1.0 / (n - 1)\ndbndiff2 = dbnvar.expand_as(bndiff2).mul(scale)",
    "answer_hprebn": "share = dbnmeani.div(n)\ndhprebn = dbndiff.add(share.expand(n, -1))",
    "answer_emb": "demb = dembcat.unflatten(1, (block_size, n_embd))",
    "answer_C": "dC = torch.zeros_like(C)\ndC.index_put_((Xb.flatten(),), "
                "demb.flatten(0, 1), accumulate=True)",
}

# Stage 3: the one short answer every honest student writes, and two of one's own
FUSED = """def cross_entropy_backward(logits, Y):
    \"\"\"d loss / d logits for loss = F.cross_entropy(logits, Y): shape and dtype of logits.\"\"\"
    n = logits.shape[0]
    dlogits = F.softmax(logits, 1)   # {comment}
    dlogits[range(n), Y] -= 1
    dlogits /= n
    return dlogits
"""
ANN3 = """def cross_entropy_backward(logits, Y):
    \"\"\"d loss / d logits for loss = F.cross_entropy(logits, Y): shape and dtype of logits.\"\"\"
    batch = logits.shape[0]
    shifted = logits - logits.max(dim=1, keepdim=True).values   # no overflow in exp
    weights = torch.exp(shifted)
    weights = weights / weights.sum(dim=1, keepdim=True)
    target = torch.zeros_like(weights)
    target.scatter_(1, Y.unsqueeze(1), 1.0)
    return (weights - target) / batch
"""
CAT3 = """def cross_entropy_backward(logits, Y):
    \"\"\"d loss / d logits for loss = F.cross_entropy(logits, Y): shape and dtype of logits.\"\"\"
    rows = logits.size(0)
    # log-softmax first, then back to probabilities: stable for large logits
    log_p = logits.log_softmax(dim=-1)
    grad = log_p.exp()
    picked = torch.arange(rows, device=logits.device)
    grad[picked, Y] = grad[picked, Y] - 1.0
    grad.div_(rows)
    return grad
"""
# dan renames every name cat chose (in stage 3, the function's arguments too) and rewords every
# comment and docstring
RENAMES = {"rows": "count", "log_p": "logsm", "grad": "result", "picked": "idx",
           "target": "hot", "all_ones": "filled", "where_max": "is_top", "scale": "factor",
           "share": "portion"}
ARGUMENTS = {"logits": "scores", "Y": "labels"}


def renamed(source, names=RENAMES):
    """source with every name in names renamed and its comments and docstrings reworded."""
    source = re.sub(r"\b(" + "|".join(names) + r")\b", lambda m: names[m.group(1)], source)
    source = re.sub(r'""".*?"""', '"""Gradient of the cross-entropy loss."""', source, flags=re.S)
    return re.sub(r"#.*", "# my own note", source).replace("    ", "  ")   # another indent


def submission(notebook, answers):
    """The release of notebook with the answers {grade id: code} filled in."""
    nb = nbformat.read(str(config.NOTEBOOKS / f"{notebook}.ipynb"), as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            comment = cell.source.splitlines()[0] if cell.source.startswith("#") else ""
            cell.source = f"{comment}\n{answers[gid]}".lstrip("\n")
    return nb


def honest_stage2(rng):
    """An honest student's stage 2: each gradient written one of the ways students write it."""
    return {gid: rng.choices(ways, POPULARITY[:len(ways)])[0] for gid, ways in VARIANTS.items()}


def crafted_class(honest=8, seed=1):
    """{notebook: {student: notebook}}: a copied pair (ann, bob), a renamed copy (cat, dan),
    honest students and two who hand in the release unchanged (rel1, rel2)."""
    rng = random.Random(seed)
    lecture = {gid: ways[0] for gid, ways in VARIANTS.items()}
    ann, cat = {**lecture, **ANN2}, {**lecture, **CAT2}
    stage2 = {"ann": ann, "bob": dict(ann), "cat": cat,
              "dan": {gid: renamed(code) for gid, code in cat.items()}}
    stage3 = {"ann": ANN3, "bob": ANN3.replace("    ", "\t"), "cat": CAT3,
              "dan": renamed(CAT3, {**RENAMES, **ARGUMENTS})}
    for i in range(honest):
        stage2[f"honest{i}"] = honest_stage2(rng)
        stage3[f"honest{i}"] = FUSED.format(comment=f"note {i}")
    release = {s: {} for s in ("rel1", "rel2")}
    return {STAGE2: {s: submission(STAGE2, a) for s, a in {**stage2, **release}.items()},
            STAGE3: {s: submission(STAGE3, {"answer_cross_entropy": a} if a else {})
                     for s, a in {**stage3, **release}.items()}}


def release(notebook):
    return nbformat.read(str(config.NOTEBOOKS / f"{notebook}.ipynb"), as_version=4)


@pytest.fixture(scope="module")
def compared():
    return {nb: compare(subs, release(nb), nb) for nb, subs in crafted_class().items()}


def pairs(rows, flagged=True):
    return {(r["student_a"], r["student_b"]) for r in rows if r["flagged"] == flagged}


@pytest.mark.parametrize("notebook", [STAGE2, STAGE3])
def test_only_the_copies_are_flagged(compared, notebook):
    assert pairs(compared[notebook]) == {("ann", "bob"), ("cat", "dan")}


@pytest.mark.parametrize("notebook", [STAGE2, STAGE3])
def test_renaming_and_rewording_do_not_hide_a_copy(compared, notebook):
    row = {(r["student_a"], r["student_b"]): r for r in compared[notebook]}[("cat", "dan")]
    assert row["similarity"] == 1.0 and row["own_a"] == row["own_b"] > 0


def test_same_short_answers_are_alike_but_not_flagged(compared):
    honest = [r for r in compared[STAGE3] if r["student_a"].startswith("honest")
              and r["student_b"].startswith("honest")]
    assert len(honest) == 28
    assert all(r["similarity"] == 1.0 and not r["flagged"] for r in honest)
    # each fragment they share is written by all eight (or more): it weighs 1/7 at most
    assert all(0 < r["rare_shared"] <= r["shared"] / 7 + 0.01 for r in honest)
    copied = {(r["student_a"], r["student_b"]): r for r in compared[STAGE3]}[("ann", "bob")]
    assert copied["rare_shared"] > 5 * max(r["rare_shared"] for r in honest)


@pytest.mark.parametrize("notebook", [STAGE2, STAGE3])
def test_the_untouched_release_counts_nothing(compared, notebook):
    rows = [r for r in compared[notebook] if {"rel1", "rel2"} & {r["student_a"], r["student_b"]}]
    assert rows and all(r["similarity"] == r["shared"] == r["rare_shared"] == 0
                        and not r["flagged"] for r in rows)
    assert {r["own_a"] for r in rows if r["student_a"] == "rel1"} == {0}


def test_too_few_students_flag_nothing():
    """Two students alone have no typical pair to stand out from."""
    two = {s: nb for s, nb in crafted_class(honest=0)[STAGE2].items() if s in ("ann", "bob")}
    (row,) = compare(two, release(STAGE2), STAGE2)
    assert row["similarity"] == 1.0 and not row["flagged"]


def test_a_class_of_one_notebook_has_no_outlier():
    """Six students handing in the same notebook are all alike: none stands out."""
    ann = crafted_class(honest=0)[STAGE2]["ann"]
    rows = compare({f"s{i}": ann for i in range(6)}, release(STAGE2), STAGE2)
    assert all(r["similarity"] == 1.0 and r["rare_shared"] >= 40 and not r["flagged"]
               for r in rows)


def test_release_code_never_counts():
    """Answers pasted from locked cells, or left as the stub, are not the student's code."""
    course = release(STAGE2)
    forward = next(c.source for c in course.cells
                   if c.metadata.get("nbgrader", {}).get("grade_id") == "forward")
    pasted = submission(STAGE2, {"answer_logprobs": forward})
    assert own_fragments(pasted, course) == set()
    assert own_fragments(course, course) == set()
    assert own_fragments(submission(STAGE2, {"answer_probs": "dprobs = dlogprobs / probs"}),
                         course)


def test_added_cells_count_edited_locked_cells_do_not():
    """A cell the student added is theirs; a locked cell they edited is the course's (grading
    runs the course's version of it)."""
    course = release(STAGE2)
    added = submission(STAGE2, {})
    added.cells.append(nbformat.v4.new_code_cell("spread = (logits - logits.mean()).abs()"))
    assert own_fragments(added, course)
    edited = submission(STAGE2, {})
    locked = next(c for c in edited.cells
                  if c.metadata.get("nbgrader", {}).get("grade_id") == "forward")
    locked.source = "spread = (logits - logits.mean()).abs()"
    assert own_fragments(edited, course) == set()


def test_names_comments_and_layout_are_normalised():
    names = course_names(release(STAGE3))
    assert code_tokens(FUSED.format(comment="a"), names) == \
        code_tokens(renamed(FUSED.format(comment="b"), ARGUMENTS), names)
    # names of the course and of libraries stay: they tell answers apart
    assert code_tokens("dlogits = F.softmax(logits, 1)", names) != \
        code_tokens("dlogits = F.log_softmax(logits, 1)", names)
    # IPython syntax is read as the code it runs, a line that is not Python as words
    assert code_tokens("%time x = 1", names) == code_tokens("y = 1", names)
    line = "dlogits = F.softmax(logits, 1)"
    assert code_tokens(f"{line}\nx = (", names) == code_tokens(line, names) + ["v", "=", "("]


def test_written_from_the_course_folder(tmp_path):
    """write_similarity reads OUT/course: the release and the submitted notebooks."""
    course = tmp_path / "course"
    (course / "release" / config.ASSIGNMENT).mkdir(parents=True)
    shutil.copy(config.NOTEBOOKS / f"{STAGE3}.ipynb", course / "release" / config.ASSIGNMENT)
    results = []
    for student, nb in crafted_class(honest=3)[STAGE3].items():
        folder = course / "submitted" / student / config.ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, str(folder / f"{STAGE3}.ipynb"))
        results += [Result(student, STAGE3, "graded"), Result(student, STAGE2, "missing")]
    (summary,) = write_similarity(tmp_path / "similarity.csv", course, results, [STAGE2, STAGE3])
    written = read_csv(tmp_path / "similarity.csv")
    assert list(written[0]) == FIELDS and len(written) == summary["pairs"] == 9 * 8 // 2
    flagged = [(r["student_a"], r["student_b"]) for r in written if r["flagged"] == "True"]
    assert sorted(flagged) == [("ann", "bob"), ("cat", "dan")]
    assert [r["flagged"] for r in written[:2]] == ["True", "True"]   # flagged pairs first
    assert [(r["student_a"], r["student_b"]) for r in summary["flagged"]] == flagged[:2]
    section = report_section([summary], [STAGE2, STAGE3])
    assert STATEMENT in section and "<td>ann</td>" in section and "<td>dan</td>" in section


def test_autograde_writes_similarity(graded):
    """The graded crafted class: every notebook's pairs, the untouched release never flagged."""
    rows = read_csv(graded / "similarity.csv")
    assert rows and list(rows[0]) == FIELDS
    assert {r["notebook"] for r in rows} == set(NOTEBOOKS)
    mine = [r for r in rows if "release" in (r["student_a"], r["student_b"])]
    assert mine and all(r["flagged"] == "False" and r["shared"] == "0" for r in mine)
    report = (graded / "report.html").read_text()
    assert "<h2 id='similarity'>Similar submissions</h2>" in report and STATEMENT in report
