"""The data card of a generated dataset: how it was made and whether it is real.

A card states the command, versions and time taken, counts networks,
trajectories and bytes, tabulates the training accuracy each rule reached per
task, and checks that the learning rule can be recovered: a random forest on
category-balanced splits of the full-access trajectories must beat chance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lrid_analysis.atomic import write_text_atomic

__all__ = ["dataset_card", "write_card"]


def _folder_bytes(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*.parquet") if not p.name.startswith("."))


def _forest_check(out, n_splits, seed, n_estimators):
    from sklearn.ensemble import RandomForestClassifier

    from lrid_analysis import dataset, evaluate, features, splits

    view = dataset.load_view(out)
    full = (view.meta["unit_fraction"].to_numpy() == 1.0) & (view.meta["noise_std"].to_numpy() == 0.0)
    view = features.select(view.subset(full), "all")
    forest = RandomForestClassifier(n_estimators=n_estimators, max_features="sqrt", random_state=seed, n_jobs=1)
    splitter = splits.CategoryBalancedSplit(n_splits=n_splits, random_state=seed)
    result = evaluate.cross_validate(forest, features.flatten(view), view.y, splitter, meta=view.meta,
                                     verbose=False)
    table = result.table
    per_task = {}
    for task in sorted(view.meta["task"].unique()):
        sub = view.subset(view.meta["task"].to_numpy() == task)
        res = evaluate.cross_validate(forest, features.flatten(sub), sub.y,
                                      splits.CategoryBalancedSplit(n_splits=n_splits, random_state=seed), meta=sub.meta,
                                      verbose=False)
        per_task[task] = float(res.table["test_accuracy"].mean())
    n = len(table)
    acc = table["test_accuracy"].to_numpy()
    return {
        "classifier": f"RandomForestClassifier(n_estimators={n_estimators}, max_features='sqrt')",
        "observables": "all 24 admissible statistics, full trajectory, layer position",
        "n_splits": n,
        "n_train_per_rule": int(table["n_train"].iloc[0]) // len(result.labels),
        "n_test_per_rule": int(table["n_test"].iloc[0]) // len(result.labels),
        "test_accuracy_mean": float(acc.mean()),
        "test_accuracy_sem": float(acc.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
        "chance": 1.0 / len(result.labels),
        "confusion": result.mean_confusion().tolist(),
        "labels": list(result.labels),
        "per_task_test_accuracy": per_task,
    }


def dataset_card(out, n_splits=5, seed=0, n_estimators=200):
    """Facts about a generated dataset folder, as a dict.

    Parameters
    ----------
    out : str or Path
        A sweep's output folder (holding ``runs.json`` and ``sweep.json``).
    n_splits, seed, n_estimators : int
        Settings of the random-forest check.

    Returns
    -------
    dict
        ``sweep`` (preset, grid, versions as recorded), ``counts``,
        ``accuracy`` (per task and rule: mean final training and validation
        accuracy), ``forest_check``.
    """
    from lrid_analysis import dataset
    from lrid_generate.store import collect_runs

    out = Path(out)
    runs = collect_runs(out)
    if not len(runs):
        raise FileNotFoundError(f"no generated networks under {out}")
    sweep = json.loads((out / "sweep.json").read_text()) if (out / "sweep.json").is_file() else {}
    complete = runs[runs["status"] == "complete"]
    accuracy = (
        complete.groupby(["paper_task", "task", "learning_rule"])[["train_accuracy", "val_accuracy"]]
        .agg(["mean", "min", "max"])
    )
    accuracy.columns = [f"{a}_{b}" for a, b in accuracy.columns]
    table = dataset.read_table(out, columns=["run_id", "layer_name", "unit_fraction", "noise_std", "obs_seed"])
    trajectories = table.drop_duplicates().shape[0]
    return {
        "sweep": sweep,
        "counts": {
            "networks": int(len(runs)),
            "complete": int((runs["status"] == "complete").sum()),
            "diverged": int((runs["status"] == "diverged").sum()),
            "rows": int(len(table)),
            "trajectories": int(trajectories),
            "bytes": int(_folder_bytes(out)),
            "train_seconds_total": float(runs["seconds"].sum()),
            "record_seconds_total": float(runs["record_seconds"].sum()),
        },
        "accuracy": accuracy.reset_index().to_dict(orient="records"),
        "forest_check": _forest_check(out, n_splits, seed, n_estimators),
    }


def _markdown(card, command, wall_seconds):
    counts, check = card["counts"], card["forest_check"]
    sweep = card["sweep"]
    lines = [
        "# Embedded dataset card" if "embedded" in json.dumps(sweep.get("presets", sweep))[:2000] else "# Dataset card",
        "",
        "Real observables of small networks trained by `lrid_generate` with SGDM, Adam, "
        "Feedback Alignment and Information Alignment, in the tidy Parquet schema of lrid.",
        "",
        "## How it was made",
        "",
        f"- Command: `{command}`" if command else "- Command: see `sweep.json`",
        f"- Wall time: {wall_seconds / 60:.1f} min" if wall_seconds else "- Wall time: not recorded",
        f"- CPU time in training and recording, summed over networks: {counts['train_seconds_total'] / 60:.1f} min "
        f"(of which recording {counts['record_seconds_total'] / 60:.1f} min)",
        "- Versions and the exact grid: `sweep.json` (preset, versions); per-network settings and results: "
        "`runs.json`; each Parquet footer holds its networks' specs.",
    ]
    versions = _find_versions(sweep)
    if versions:
        lines.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    lines += [
        "",
        "## Contents",
        "",
        f"- {counts['networks']} networks ({counts['complete']} complete, {counts['diverged']} diverged and left out)",
        f"- {counts['trajectories']} trajectories (layer x measurement condition), {counts['rows']} rows, "
        f"{counts['bytes'] / 1e6:.1f} MB on disk",
        "",
        "## Training accuracy per task and rule (final epoch; mean [min, max] over networks)",
        "",
        "| paper task | task | rule | train accuracy | validation accuracy |",
        "|---|---|---|---|---|",
    ]
    for row in card["accuracy"]:
        lines.append(
            f"| {row['paper_task']} | {row['task']} | {row['learning_rule']} | "
            f"{row['train_accuracy_mean']:.2f} [{row['train_accuracy_min']:.2f}, {row['train_accuracy_max']:.2f}] | "
            f"{row['val_accuracy_mean']:.2f} [{row['val_accuracy_min']:.2f}, {row['val_accuracy_max']:.2f}] |"
        )
    lines += [
        "",
        "Chance is 0.10 on the 10-class tasks. For SimCLR tasks the accuracy is the fraction of "
        "augmented views whose most similar other view is their positive pair (chance 1/(2B-1)).",
        "",
        "## Is it real? A random forest recovers the rule",
        "",
        f"{check['classifier']} on {check['observables']}; {check['n_splits']} category-balanced splits "
        f"({check['n_train_per_rule']} train / {check['n_test_per_rule']} test trajectories per rule, "
        f"full-access trajectories only):",
        "",
        f"- test accuracy {check['test_accuracy_mean']:.3f} +- {check['test_accuracy_sem']:.3f} (s.e.m.); "
        f"chance {check['chance']:.2f}",
        "- per task (same protocol within each task): "
        + ", ".join(f"{t} {a:.3f}" for t, a in check["per_task_test_accuracy"].items()),
        "",
        "Mean test confusion matrix (rows actual, columns predicted; " + ", ".join(check["labels"]) + "):",
        "",
    ]
    for label, row in zip(check["labels"], check["confusion"]):
        lines.append(f"    {label:>12}  " + "  ".join(f"{v:7.1f}" for v in row))
    lines.append("")
    return "\n".join(lines)


def _find_versions(sweep):
    if isinstance(sweep, dict):
        if "versions" in sweep and isinstance(sweep["versions"], dict):
            return sweep["versions"]
        for value in sweep.values():
            found = _find_versions(value)
            if found:
                return found
    return {}


def write_card(out, command=None, wall_seconds=None, n_splits=5, seed=0, n_estimators=200):
    """Write ``CARD.md`` and ``card.json`` into a generated dataset folder.

    Parameters
    ----------
    out : str or Path
        The sweep's output folder.
    command : str, optional
        The command that generated it, quoted in the card.
    wall_seconds : float, optional
        Wall-clock time the generation took.
    n_splits, seed, n_estimators : int
        Settings of the random-forest check.

    Returns
    -------
    dict
        The card (see :func:`dataset_card`).
    """
    out = Path(out)
    card = dataset_card(out, n_splits=n_splits, seed=seed, n_estimators=n_estimators)
    card["command"], card["wall_seconds"] = command, wall_seconds
    write_text_atomic(out / "card.json", json.dumps(card, indent=2, default=str))
    write_text_atomic(out / "CARD.md", _markdown(card, command, wall_seconds))
    return card
