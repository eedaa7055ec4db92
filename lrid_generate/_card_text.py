"""The text of a dataset card (``CARD.md``) from its numbers (:mod:`lrid_generate.card`)."""

from __future__ import annotations

import json

__all__ = ["format_gate", "render"]


def format_gate(gate):
    """The gate as a Markdown table (one row per (task, architecture), one column per rule)."""
    rules = sorted({c["rule"] for c in gate["cells"]}, key=lambda r: ("sgdm", "adam", "feedback",
                                                                       "information").index(r)
                   if r in ("sgdm", "adam", "feedback", "information") else 9)
    by_pair = {}
    for c in gate["cells"]:
        by_pair.setdefault((c["task"], c["architecture"]), {})[c["rule"]] = c
    lines = ["| task | architecture | " + " | ".join(rules) + " |", "|---|---|" + "---|" * len(rules)]
    for (task, arch), row in by_pair.items():
        cells = []
        for rule in rules:
            c = row.get(rule)
            if c is None:
                cells.append("")
                continue
            mark = "" if c["passed"] else (" (exception)" if c["exception"] else " **MISS**")
            cells.append(f"{c['median']:.3f} (>= {c['target']:.3f}){mark}")
        lines.append(f"| {task} | {arch} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _wall_time(wall_seconds, note):
    text = f"{wall_seconds / 60:.1f} min" if wall_seconds else ""
    if note:
        text = f"{text}; {note}" if text else note
    return f"- Wall time: {text or 'not recorded'}"


def _time_spent(counts):
    text = (f"- Time in training and recording, summed over networks: {counts['train_seconds_total'] / 60:.1f} min "
            f"wall (a pack's wall time shared among its networks; of which recording "
            f"{counts['record_seconds_total'] / 60:.1f} min)")
    cpu = counts.get("cpu_seconds_total")
    return text + (f", {cpu / 60:.1f} min of CPU time" if cpu is not None else "")


def render(card):
    """``CARD.md``'s text for ``card``.

    ``card`` is a :func:`lrid_generate.card.dataset_card` dict plus
    ``command``, ``wall_seconds`` and ``wall_note`` (each may be None).
    """
    command, wall_seconds = card.get("command"), card.get("wall_seconds")
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
        _wall_time(wall_seconds, card.get("wall_note")),
        _time_spent(counts),
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
    gate = card["gate"]
    t = gate["targets"]
    lines += [
        "",
        "Chance is 0.10 on the 10-class tasks. For SimCLR tasks the accuracy is the fraction of "
        "augmented views whose most similar other view is their positive pair (chance 1/(2B-1)).",
        "",
        "## Training-quality gate: " + ("passed" if gate["passed"] else "FAILED"),
        "",
        f"Median final validation accuracy per (task, architecture, rule) (diverged networks count 0), with "
        f"its target: supervised cells >= {t['min_supervised']:.2f}, IA >= {t['ia_ratio']:.2f} x and FA >= "
        f"{t['fa_ratio']:.2f} x SGDM's median; SimCLR cells (positive-pair accuracy among the 2n - 1 other "
        f"views of the n validation examples) >= {t['simclr_over_chance']:g} x chance.",
        "",
        format_gate(gate),
        "",
    ]
    excepted = [c for c in gate["cells"] if c["exception"] and not c["passed"]]
    if excepted:
        lines += ["Known-reason exceptions:", ""]
        lines += [f"- {c['key']}: median {c['median']:.3f} vs target {c['target']:.3f}"
                  + (f" (SGDM {c['sgdm_median']:.3f})" if c["sgdm_median"] is not None else "")
                  + f": {c['exception']}" for c in excepted]
        lines.append("")
    if gate["failed"]:
        lines += ["Cells missing their target: " + ", ".join(gate["failed"]), ""]
    lines += [
        "## Is it real? A random forest recovers the rule",
        "",
        f"{check['classifier']} on {check['observables']}; {check['n_splits']} category-balanced splits "
        f"({check['n_train_per_rule']} train / {check['n_test_per_rule']} test trajectories per rule, "
        f"full-access trajectories only; the splits draw trajectories, so other layers of a test network may be "
        f"in training: the network-grouped comparison with the learning curve is in the next section):",
        "",
        f"- test accuracy {check['test_accuracy_mean']:.3f} +- {check['test_accuracy_sem']:.3f} (s.e.m.); "
        f"chance {check['chance']:.2f}",
        "- per task (same protocol within each task): "
        + ", ".join(f"{t} {_num(a)}" for t, a in check["per_task_test_accuracy"].items()),
        "- per observable set (same protocol): "
        + ", ".join(f"{o} {_num(a)}" for o, a in check["per_observable_set_test_accuracy"].items()),
        "- held out (train on the other values, test on the held-out one; mean over folds): "
        + ", ".join(f"{k} {_num(a)}" for k, a in check["heldout_test_accuracy"].items()),
        f"- learning-curve baseline (final train/validation loss and accuracy plus the task, one row per "
        f"network, {card['curve_baseline']['n_networks']} networks, same forest and splits): "
        f"{_num(card['curve_baseline']['test_accuracy_mean'])} (chance {card['curve_baseline']['chance']:.2f})",
        "",
        "Mean test confusion matrix (rows actual, columns predicted; " + ", ".join(check["labels"]) + "):",
        "",
    ]
    for label, row in zip(check["labels"], check["confusion"]):
        lines.append(f"    {label:>12}  " + "  ".join(f"{v:7.1f}" for v in row))
    lines.append("")
    lines += _control_markdown(card.get("learning_curve_control"))
    twins = card.get("lrn_twins")
    if twins:
        lines += [
            "## LRN variants vs their plain twins",
            "",
            "Medians over networks; the last column pairs networks with the same task, rule, batch size and "
            "seeds (v1's KNet-LRN trained within 0.0014 loss of KNet).",
            "",
            "| task | LRN / plain | pairs | train loss | validation accuracy | median abs train-loss difference |",
            "|---|---|---|---|---|---|",
        ]
        lines += [f"| {t['task']} | {t['lrn']} / {t['plain']} | {t['n_pairs']} | {t['train_loss_lrn']:.4f} / "
                  f"{t['train_loss_plain']:.4f} | {t['val_accuracy_lrn']:.3f} / {t['val_accuracy_plain']:.3f} | "
                  f"{_num(t['median_abs_train_loss_difference'])} |" for t in twins]
        lines.append("")
    corners = card.get("noise_corners")
    if corners:
        lines += [
            "## Unit subsampling and noise: FA vs IA at the grid corners (Fig. 5 style)",
            "",
            "Random forest separating FA from IA (chance 0.50) on the noise-grid networks' trajectories, from "
            "each observable set, at each corner of the grid (observation seeds pooled; noise as recorded in `noise_std`, relative "
            "to each measure's std before learning when the preset says so, see `sweep.json`):",
            "",
        ]
        measures = list(corners[0].get("test_accuracy", {"all": None}))
        lines += ["| unit fraction | noise | trajectories | " + " | ".join(measures) + " |",
                  "|---|---|---|" + "---|" * len(measures)]
        lines += [f"| {c['unit_fraction']:g} | {c['noise_std']:g} | {c['n_trajectories']} | "
                  + " | ".join(_num(c.get("test_accuracy", {"all": c["test_accuracy_mean"]})[m]) for m in measures)
                  + " |" for c in corners]
        lines.append("")
    return "\n".join(lines)


def _control_markdown(control):
    if not control:
        return []
    lines = ["## The observables against the whole learning curve", ""]
    if not control["rows"]:
        return lines + [f"Not computed: {control.get('skipped', 'no rows')}.", ""]
    obs = control["observables"]
    lines += [
        f"The `performance_control` experiment: random forest, {control['n_splits']} category-balanced splits "
        "grouped by network (no network has trajectories on both sides, so neither feature set can recognise "
        "a network), the observables (`" + obs + "`) against each network's whole learning curve (train and "
        "validation loss and accuracy at every checkpoint) on the same splits; *matched*: within each task, "
        "networks subsampled so every compared rule has the same distribution of final validation accuracy. "
        "Mean test accuracy [corrected 95 % CI, clipped to [0, 1]]:",
        "",
        f"| comparison | networks | observables ({obs}) | learning curve |",
        "|---|---|---|---|",
    ]
    cells = {(r["networks"], r["comparison"], r["features"]): r for r in control["rows"]}
    keys = list(dict.fromkeys((r["comparison"], r["networks"]) for r in control["rows"]))

    def cell(row):
        if row is None:
            return "-"
        low, high = (None if v is None else min(1.0, max(0.0, v)) for v in (row["accuracy_ci_low"],
                                                                           row["accuracy_ci_high"]))
        return f"{row['accuracy_mean']:.3f} [{_num(low)}, {_num(high)}]"

    lines += [f"| {comparison} | {networks} | {cell(cells.get((networks, comparison, obs)))} | "
              f"{cell(cells.get((networks, comparison, 'learning_curve')))} |" for comparison, networks in keys]
    return lines + [""]


def _num(value):
    return "n/a" if value is None else f"{value:.3f}"


def _find_versions(sweep):
    if isinstance(sweep, dict):
        if "versions" in sweep and isinstance(sweep["versions"], dict):
            return sweep["versions"]
        for value in sweep.values():
            found = _find_versions(value)
            if found:
                return found
    return {}
