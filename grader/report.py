"""OUT/report.html: the class at a glance, for deciding what to re-teach.

One self-contained page (figures embedded as PNG): per notebook, the distribution of
students' scores and, for every graded answer in notebook order, the share of students
who got it right. Shares count the students whose notebook was graded; missing or
unreadable notebooks are counted apart. The tables are pandas DataFrames.
"""
import base64
import html
import io

import pandas as pd


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


def answer_table(grades: pd.DataFrame, cells: list[str]) -> pd.DataFrame:
    """Per answer (index, in notebook order) of one notebook's grades (student, cell, score,
    max_score; a blank score waits for manual grading): `full credit`, the share of students
    with all its points; `mean score`, the mean share of its points; `pending`, how many wait
    for manual grading (not counted as missed). NaN where no score is known yet."""
    scored = grades.dropna(subset=["score"])
    points = scored["max_score"].where(scored["max_score"] > 0)
    return pd.DataFrame({
        "full credit": (scored["score"] >= scored["max_score"]).groupby(scored["cell"]).mean(),
        "mean score": (scored["score"] / points).fillna(1.0).groupby(scored["cell"]).mean(),
        "pending": grades["score"].isna().groupby(grades["cell"]).sum(),
    }).reindex(cells).fillna({"pending": 0}).astype({"pending": int})


def _percent(share, low=None):
    if pd.isna(share):
        return "—"
    text = f"{100 * share:.0f}%"
    return f"<span class='low'>{text}</span>" if low is not None and share < low else text


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=False, border=0)


def write_report(path, rows, summary, cells, similar=None):
    """Write the class report from grades.csv rows and summary.csv rows (and similarity.csv's
    rows, for the section on similar submissions)."""
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Class report</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{padding:.2em .7em;"
             "border-bottom:1px solid #ddd;text-align:left}"
             ".low{color:#c44e52;font-weight:bold}</style></head><body>",
             "<h1>Class report</h1>"]
    grades = pd.DataFrame(rows, columns=["student", "notebook", "cell", "score", "max_score"])
    grades["score"] = pd.to_numeric(grades["score"], errors="coerce")   # blank: pending
    grades["max_score"] = pd.to_numeric(grades["max_score"])
    for notebook in cells:
        graded = sorted(s["student"] for s in summary
                        if s["notebook"] == notebook and s["status"] == "graded")
        others = [s for s in summary if s["notebook"] == notebook and s["status"] != "graded"]
        parts.append(f"<h2>{html.escape(notebook)}</h2>")
        if not graded:
            parts.append(f"<p>No graded submissions ({len(others)} missing or not gradable).</p>")
            continue
        mine = grades[(grades["notebook"] == notebook) & grades["student"].isin(graded)]
        max_score = mine.loc[mine["student"] == graded[0], "max_score"].sum()
        totals = mine.groupby("student")["score"].sum().reindex(graded, fill_value=0.0)
        table = answer_table(mine, cells[notebook])
        hist, bars = notebook_figures(notebook, list(totals), max_score, cells[notebook],
                                      list(table["full credit"].fillna(0)))
        parts.append(
            f"<p>{len(graded)} graded, {len(others)} missing or not gradable. Score: mean "
            f"{totals.mean():.1f}, median {totals.median():g} of {max_score:g}.</p>"
            f"<img alt='score distribution of {html.escape(notebook)}' src='{hist}'>"
            f"<img alt='share of students per answer in {html.escape(notebook)}' src='{bars}'>")
        hardest = table["full credit"].dropna().sort_values(kind="stable").head(3)
        parts.append("<p>Most missed: " + ", ".join(
            f"<b>{html.escape(cell)}</b> ({100 * share:.0f}%)" for cell, share in hardest.items())
            + "</p>")
        if table["pending"].any():
            parts.append(f"<p>{table['pending'].max()} notebooks wait for manual grading "
                         "(pending below; not counted as missed).</p>")
        parts.append(_table(pd.DataFrame({
            "answer": [html.escape(c) for c in table.index],
            "full credit": [_percent(v, low=0.5) for v in table["full credit"]],
            "mean score (share of its points)": [_percent(v) for v in table["mean score"]],
            "pending": [n or "" for n in table["pending"]]})))
        if others:
            parts.append(_table(pd.DataFrame(
                [{"not graded": html.escape(s["student"]), "status": html.escape(s["status"]),
                  "reason": html.escape(s["reason"])}
                 for s in sorted(others, key=lambda s: s["student"])])))
    if similar is not None:
        from .similarity import report_section
        parts.append(report_section(similar, list(cells)))
    parts.append("</body></html>\n")
    path.write_text("\n".join(parts))
