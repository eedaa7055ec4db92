"""The leaderboard: per task, every classifier against the random-forest reference.

:func:`build_leaderboard` summarises a long results table (one row per
classifier, task and split; see :mod:`lrid_benchmarks.harness`):

* mean and standard error of the mean of the test accuracy over splits
  (:func:`lrid_analysis.stats.mean_sem`);
* a confidence interval of the mean with the Nadeau-Bengio corrected
  variance, which accounts for the overlap of the training sets of repeated
  splits (:func:`lrid_analysis.stats.corrected_confidence_interval`, with the
  mean train and test sizes), clipped to [0, 1], the range of an accuracy;
* the difference to the reference, paired by split, with the corrected
  resampled t-test and Holm's correction over the comparisons of one task
  (:func:`lrid_analysis.stats.compare_conditions`). Splits are paired by
  their digest, so only classifiers that saw the very same rows are compared.

For the held-out tasks (one fold per architecture, curriculum or task) the
correction assumes random splits and is an approximation.

:func:`to_markdown` renders it as a table, :func:`plot_leaderboard` as a bar
chart (a matplotlib Figure rendered with Agg), :func:`write_leaderboard` saves both plus a
CSV of the numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from lrid_analysis import stats
from lrid_analysis.atomic import write_atomic, write_text_atomic

__all__ = ["LEADERBOARD_COLUMNS", "build_leaderboard", "to_markdown", "plot_leaderboard", "write_leaderboard"]

#: Columns of :func:`build_leaderboard`'s table.
LEADERBOARD_COLUMNS = [
    "task", "classifier", "params_digest", "is_reference", "n_splits", "accuracy_mean", "accuracy_sem",
    "ci_low", "ci_high", "balanced_accuracy_mean", "balanced_accuracy_sem", "fit_seconds", "predict_seconds",
    "n_train", "n_test", "difference", "t", "p", "p_holm", "reject", "chance",
]


def _labels(frame):
    """Classifier label per row: the name, plus the parameter digest when a name has several in a task."""
    several = frame.groupby(["task", "classifier"])["params_digest"].transform("nunique") > 1
    return np.where(several, frame["classifier"] + " [" + frame["params_digest"].str[:6] + "]", frame["classifier"])


def build_leaderboard(results, reference="random_forest", metric="accuracy", confidence=0.95, alpha=0.05,
                      task_order=None, chance=None):
    """Summarise per-split scores per task and classifier.

    Parameters
    ----------
    results : pandas.DataFrame
        Columns ``task``, ``classifier``, ``params_digest``, ``split_digest``,
        ``metric``, ``balanced_accuracy``, ``fit_seconds``,
        ``predict_seconds``, ``n_train``, ``n_test``.
    reference : str
        Classifier every other one is compared with.
    metric : str
        Score column (``accuracy`` or ``balanced_accuracy``).
    confidence : float
        Level of the corrected confidence interval (clipped to [0, 1]).
    alpha : float
        Family-wise error rate of Holm's correction (one family per task).
    task_order : sequence of str, optional
        Order of the tasks (others follow, sorted).
    chance : dict of str to float, optional
        Chance accuracy per task (shown in the figure).

    Returns
    -------
    pandas.DataFrame
        One row per (task, classifier), columns :data:`LEADERBOARD_COLUMNS`,
        sorted by task then mean score (best first). ``difference``, ``t``,
        ``p``, ``p_holm`` and ``reject`` are NaN for the reference and when
        no comparison is possible.
    """
    needed = ["task", "classifier", "params_digest", "split_digest", metric, "balanced_accuracy", "fit_seconds",
              "predict_seconds", "n_train", "n_test"]
    missing = [c for c in needed if c not in results.columns]
    if missing:
        raise ValueError(f"results table lacks column(s) {missing}")
    if results.empty:
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    frame = results.copy()
    frame["label"] = _labels(frame)
    rows = []
    for (task, label), group in frame.groupby(["task", "label"], sort=False):
        scores = group[metric].to_numpy(dtype=float)
        mean, sem = stats.mean_sem(scores)
        bal_mean, bal_sem = stats.mean_sem(group["balanced_accuracy"].to_numpy(dtype=float))
        n_train, n_test = float(group["n_train"].mean()), float(group["n_test"].mean())
        low = high = math.nan
        if len(scores) >= 2 and np.isfinite(scores).all():
            _, low, high = stats.corrected_confidence_interval(scores, n_train, n_test, confidence=confidence)
            low, high = _clip_interval(low, high)
        rows.append({
            "task": task, "classifier": label, "params_digest": group["params_digest"].iloc[0],
            "is_reference": label == reference, "n_splits": len(scores), "accuracy_mean": float(mean),
            "accuracy_sem": float(sem), "ci_low": low, "ci_high": high, "balanced_accuracy_mean": float(bal_mean),
            "balanced_accuracy_sem": float(bal_sem), "fit_seconds": float(group["fit_seconds"].mean()),
            "predict_seconds": float(group["predict_seconds"].mean()), "n_train": n_train, "n_test": n_test,
            "chance": (chance or {}).get(task, math.nan),
        })
    board = pd.DataFrame(rows)
    for column in ("difference", "t", "p", "p_holm"):
        board[column] = math.nan
    board["reject"] = pd.Series([pd.NA] * len(board), dtype="boolean")
    for task, group in frame.groupby("task", sort=False):
        labels = list(pd.unique(group["label"]))
        if reference not in labels or len(labels) < 2:
            continue
        try:
            comparison = stats.compare_conditions(group, "label", value_col=metric, split_col="split_digest",
                                                  reference=reference, alpha=alpha)
        except ValueError:
            comparison = _pairwise_where_possible(group, labels, reference, metric, alpha)
        for _, c in comparison.iterrows():
            where = (board["task"] == task) & (board["classifier"] == c["condition_a"])
            board.loc[where, ["difference", "t", "p", "p_holm"]] = [c["difference"], c["t"], c["p"], c["p_holm"]]
            board.loc[where, "reject"] = bool(c["reject"]) if np.isfinite(c["p_holm"]) else pd.NA
    order = list(task_order or [])
    order += sorted(t for t in board["task"].unique() if t not in order)
    board["_task"] = board["task"].map({t: i for i, t in enumerate(order)})
    board = board.sort_values(["_task", "accuracy_mean", "classifier"], ascending=[True, False, True], kind="stable")
    return board.drop(columns="_task").reset_index(drop=True)[LEADERBOARD_COLUMNS]


def _clip_interval(low, high):
    """A confidence interval of an accuracy clipped to its range [0, 1] (NaN stays NaN)."""
    return float(np.clip(low, 0.0, 1.0)), float(np.clip(high, 0.0, 1.0))


def _pairwise_where_possible(group, labels, reference, metric, alpha):
    """Comparisons for the classifiers that share at least two splits with the reference, Holm over those."""
    shared = set(group.loc[group["label"] == reference, "split_digest"])
    usable = [label for label in labels if label != reference
              and len(shared & set(group.loc[group["label"] == label, "split_digest"])) >= 2]
    if not usable:
        return pd.DataFrame(columns=["condition_a", "difference", "t", "p", "p_holm", "reject"])
    keep = group["label"].isin(usable + [reference]) & group["split_digest"].isin(shared)
    return stats.compare_conditions(group.loc[keep], "label", value_col=metric, split_col="split_digest",
                                    reference=reference, alpha=alpha)


def _fmt(value, digits=3, signed=False):
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or pd.isna(value):
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _fmt_p(p):
    if p is None or pd.isna(p) or not math.isfinite(p):
        return ""
    return "<0.001" if p < 1e-3 else f"{p:.3f}"


def _fmt_seconds(s):
    if pd.isna(s):
        return ""
    return f"{s:.3g}"


def to_markdown(board, reference="random_forest", header=None, notes=None, confidence=0.95, alpha=0.05):
    """The leaderboard as a markdown table.

    Parameters
    ----------
    board : pandas.DataFrame
        From :func:`build_leaderboard`.
    reference : str
    header : str, optional
        Lines printed above the table (data, settings).
    notes : dict of str to str, optional
        Task name to a note (e.g. why it was skipped), listed below the table.
    confidence, alpha : float
        As used to build ``board`` (for the legend).

    Returns
    -------
    str
    """
    lines = ["# Classifier benchmark", ""]
    if header:
        lines += [header.rstrip(), ""]
    ci = f"{round(confidence * 100):d}% CI"
    lines += [
        f"| task | classifier | accuracy (mean ± s.e.m.) | {ci} | balanced acc. | Δ vs {reference} | p (Holm) "
        "| splits | fit s | predict s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in board.iterrows():
        if r["is_reference"]:
            delta, p = "reference", ""
        else:
            mark = " *" if r["reject"] is True or (not pd.isna(r["reject"]) and bool(r["reject"])) else ""
            delta, p = _fmt(r["difference"], signed=True) + mark, _fmt_p(r["p_holm"])
        accuracy = f"{_fmt(r['accuracy_mean'])} ± {_fmt(r['accuracy_sem'])}" if math.isfinite(r["accuracy_sem"]) \
            else _fmt(r["accuracy_mean"])
        interval = f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]" if math.isfinite(r["ci_low"]) else ""
        lines.append(
            f"| {r['task']} | {r['classifier']} | {accuracy} | {interval} | {_fmt(r['balanced_accuracy_mean'])} "
            f"| {delta} | {p} | {int(r['n_splits'])} | {_fmt_seconds(r['fit_seconds'])} "
            f"| {_fmt_seconds(r['predict_seconds'])} |"
        )
    lines += [
        "",
        f"Accuracy: test accuracy, mean ± s.e.m. over splits. {ci}: corrected resampled variance "
        "(Nadeau & Bengio 2003). Δ: mean difference to the reference over the same splits; p: corrected "
        f"resampled t-test, Holm-corrected within each task (* p < {alpha:g}). Seconds: mean per split "
        "(fit on the training rows, predict on the test rows).",
    ]
    if notes:
        lines += ["", "Notes:"]
        lines += [f"- {task}: {note}" for task, note in notes.items()]
    return "\n".join(lines) + "\n"


def plot_leaderboard(board, path=None, reference="random_forest",
                     title="Classifier benchmark (error bars: corrected 95% CI)"):
    """A grouped bar chart: mean accuracy per task and classifier, corrected CI as error bars.

    Parameters
    ----------
    board : pandas.DataFrame
        From :func:`build_leaderboard`.
    path : str or Path, optional
        Save the figure there (PNG).
    reference : str
    title : str

    Returns
    -------
    matplotlib.figure.Figure
        Error bars: the confidence interval, clipped to [0, 1]; the legend
        below the panel.
    """
    # A bare Figure renders with the Agg canvas and never touches pyplot's
    # global state or the user's interactive backend.
    import matplotlib
    from matplotlib.figure import Figure

    from lrid_analysis import plots

    tasks = list(pd.unique(board["task"]))
    names = list(pd.unique(board["classifier"]))
    if reference in names:
        names.remove(reference)
        names.insert(0, reference)
    fig = Figure(figsize=(max(7.0, 1.1 * len(tasks) + 4), 4.2), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(len(names), 1)
    colors = matplotlib.colormaps["tab10"]
    for i, name in enumerate(names):
        sub = board.set_index("task").loc[lambda d: d["classifier"] == name]
        xs, means, lower, upper = [], [], [], []
        for j, task in enumerate(tasks):
            if task not in sub.index:
                continue
            r = sub.loc[task]
            xs.append(j - 0.4 + width * (i + 0.5))
            means.append(r["accuracy_mean"])
            low, high = _clip_interval(r["ci_low"], r["ci_high"])  # also a board read from an older CSV
            lower.append(r["accuracy_mean"] - low if np.isfinite(low) else 0.0)
            upper.append(high - r["accuracy_mean"] if np.isfinite(high) else 0.0)
        ax.bar(xs, means, width=width * 0.95, yerr=[lower, upper], capsize=2, label=name, color=colors(i % 10),
               edgecolor="black" if name == reference else "none", linewidth=0.8)
    if "chance" in board.columns:
        labelled = False
        for j, task in enumerate(tasks):
            chance = board.loc[board["task"] == task, "chance"].iloc[0]
            if np.isfinite(chance):
                ax.hlines(chance, j - 0.45, j + 0.45, colors="gray", linestyles="dashed", linewidth=1,
                          label=None if labelled else "chance")
                labelled = True
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(tasks, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    entries = sorted(zip(*ax.get_legend_handles_labels()), key=lambda entry: entry[1] == "chance")  # chance last
    plots.figure_legend(fig, handles=[h for h, _ in entries], labels=[label for _, label in entries])
    if path is not None:
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    return fig


def write_leaderboard(board, out_dir, reference="random_forest", header=None, notes=None, confidence=0.95,
                      alpha=0.05, stem="leaderboard"):
    """Write ``<stem>.md``, ``<stem>.csv`` and ``<stem>.png`` to ``out_dir`` (atomically).

    Returns
    -------
    dict
        ``markdown``, ``csv``, ``figure``: paths; ``text``: the markdown.
    """
    out_dir = Path(out_dir)
    text = to_markdown(board, reference=reference, header=header, notes=notes, confidence=confidence, alpha=alpha)
    paths = {"markdown": write_text_atomic(out_dir / f"{stem}.md", text),
             "csv": write_text_atomic(out_dir / f"{stem}.csv", board.to_csv(index=False))}
    if len(board):
        plot_leaderboard(board, out_dir / f"{stem}.png", reference=reference)
        paths["figure"] = out_dir / f"{stem}.png"
    paths["text"] = text
    return paths
