"""OUT/report.html: the class at a glance, for deciding what to re-teach.

One self-contained page (figures embedded as PNG): per notebook, the distribution of
students' scores and, for every graded answer in notebook order, the share of students
who got it right. Shares count the students whose notebook was graded; missing or
unreadable notebooks are counted apart.
"""
import base64
import html
import io
from statistics import mean, median


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def notebook_figures(name, totals, max_score, cells, shares):
    """(score histogram, per-answer share bar chart) as PNG data URIs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 3))
    bins = [b - 0.5 for b in range(int(max_score) + 2)] if max_score <= 40 else 20
    ax.hist(totals, bins=bins, color="#4c72b0", edgecolor="white")
    ax.set_title(f"{name}: scores of {len(totals)} students")
    ax.set_xlabel(f"score (out of {max_score:g})")
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlim(-0.5, max_score + 0.5)
    hist = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(max(6, 0.32 * len(cells) + 2), 3.6))
    colors = ["#c44e52" if s < 0.5 else "#dd8452" if s < 0.8 else "#55a868" for s in shares]
    ax.bar(range(len(cells)), [100 * s for s in shares], color=colors)
    ax.set_xticks(range(len(cells)))
    ax.set_xticklabels(cells, rotation=70, ha="right", fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of students with full credit")
    ax.set_title(f"{name}: who got each answer (in notebook order)")
    bars = _png(fig)
    plt.close(fig)
    return hist, bars


def write_report(path, rows, summary, cells, similar=None):
    """Write the class report from grades.csv rows and summary.csv rows (and similarity.csv's
    rows, for the section on similar submissions)."""
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Class report</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{padding:.2em .7em;"
             "border-bottom:1px solid #ddd;text-align:left}td.n{text-align:right}"
             ".low{color:#c44e52;font-weight:bold}</style></head><body>",
             "<h1>Class report</h1>"]
    for notebook in cells:
        graded = sorted(s["student"] for s in summary
                        if s["notebook"] == notebook and s["status"] == "graded")
        others = [s for s in summary if s["notebook"] == notebook and s["status"] != "graded"]
        parts.append(f"<h2>{html.escape(notebook)}</h2>")
        if not graded:
            parts.append(f"<p>No graded submissions ({len(others)} missing or not gradable).</p>")
            continue
        mine = [r for r in rows if r["notebook"] == notebook and r["student"] in set(graded)]
        max_score = sum(float(r["max_score"]) for r in mine if r["student"] == graded[0])
        totals = [sum(float(r["score"] or 0) for r in mine if r["student"] == s) for s in graded]
        shares, means, pending = [], [], []
        for cell in cells[notebook]:
            here = [r for r in mine if r["cell"] == cell]
            # a hand-graded answer still waiting for its grade (blank score) is pending, not missed
            scores = [(float(r["score"]), float(r["max_score"])) for r in here if r["score"] != ""]
            pending.append(len(here) - len(scores))
            shares.append(sum(s >= m for s, m in scores) / len(scores) if scores else None)
            means.append(mean(s / m if m else 1.0 for s, m in scores) if scores else None)
        hist, bars = notebook_figures(notebook, totals, max_score, cells[notebook],
                                      [share or 0 for share in shares])
        parts.append(
            f"<p>{len(graded)} graded, {len(others)} missing or not gradable. Score: mean "
            f"{mean(totals):.1f}, median {median(totals):g} of {max_score:g}.</p>"
            f"<img alt='score distribution of {html.escape(notebook)}' src='{hist}'>"
            f"<img alt='share of students per answer in {html.escape(notebook)}' src='{bars}'>")
        scored = [i for i, share in enumerate(shares) if share is not None]
        hardest = sorted(scored, key=lambda i: (shares[i], i))[:3]
        parts.append("<p>Most missed: " + ", ".join(
            f"<b>{html.escape(cells[notebook][i])}</b> ({100 * shares[i]:.0f}%)" for i in hardest)
            + "</p>")
        if any(pending):
            parts.append(f"<p>{max(pending)} notebooks wait for manual grading (pending below; "
                         "not counted as missed).</p>")
        parts.append("<table><tr><th>answer</th><th>full credit</th><th>mean score "
                     "(share of its points)</th><th>pending</th></tr>")
        for cell, share, m, waiting in zip(cells[notebook], shares, means, pending, strict=True):
            low = " low" if share is not None and share < 0.5 else ""
            full = "—" if share is None else f"{100 * share:.0f}%"
            average = "—" if m is None else f"{100 * m:.0f}%"
            parts.append(f"<tr><td>{html.escape(cell)}</td><td class='n{low}'>{full}</td>"
                         f"<td class='n'>{average}</td><td class='n'>{waiting or ''}</td></tr>")
        parts.append("</table>")
        if others:
            parts.append("<table><tr><th>not graded</th><th>status</th><th>reason</th></tr>")
            for s in sorted(others, key=lambda s: s["student"]):
                parts.append(f"<tr><td>{html.escape(s['student'])}</td><td>{s['status']}</td>"
                             f"<td>{html.escape(s['reason'])}</td></tr>")
            parts.append("</table>")
    if similar is not None:
        from .similarity import report_section
        parts.append(report_section(similar, list(cells)))
    parts.append("</body></html>\n")
    path.write_text("\n".join(parts))
