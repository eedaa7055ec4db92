"""The data card of a generated dataset: how it was made and whether it is real.

A card states the command, versions and time taken, counts networks,
trajectories and bytes, tabulates the training accuracy each rule reached per
task, and checks that the data carry the science:

* the **training-quality gate** (:func:`training_gate`): per (task,
  architecture, rule) the median final validation accuracy (for SimCLR the
  positive-pair accuracy); on supervised pairs IA must reach ``ia_ratio`` and
  FA ``fa_ratio`` of SGDM's median, no cell may sit at chance and every
  SimCLR cell must be clearly above it. Known-reason exceptions are listed
  with their numbers; ``python -m lrid_generate card`` exits with status 3
  when a cell misses without one;
* a random forest recovers the rule from the observables (category-balanced
  splits of the full-access trajectories), per observable set, and under
  held-out architecture / curriculum / task splits;
* the same forest on the learning curve alone (each network's final train /
  validation loss and accuracy plus its task) as a baseline the observables
  must beat by far, and the stronger baseline of the whole learning curve
  against the observables on the same network-grouped splits, on all and on
  performance-matched networks (:func:`learning_curve_control`);
* LRN variants next to their plain twins (final training loss, accuracy);
* a Fig. 5-style FA-vs-IA table at the corners of the unit-noise grid.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lrid_analysis.atomic import write_text_atomic
from lrid_analysis.observables import MEASURE_GROUPS
from lrid_generate._card_text import format_gate, render

__all__ = ["FOREST_SECTIONS", "GATE_TARGETS", "CardError", "curve_baseline", "dataset_card", "format_gate",
           "learning_curve_control", "lrn_twins", "noise_corners", "training_gate", "write_card"]

#: Targets of :func:`training_gate` (see there).
GATE_TARGETS = {"ia_ratio": 0.85, "fa_ratio": 0.5, "min_supervised": 0.2, "simclr_over_chance": 10.0}


def _folder_bytes(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*.parquet") if not p.name.startswith("."))


def _forest(n_estimators, seed, n_jobs=1):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=n_estimators, max_features="sqrt", random_state=seed, n_jobs=n_jobs)


def _mean_accuracy(view, splitter, n_estimators, seed, observables="all", n_jobs=1):
    """Mean test accuracy of the forest on ``view``'s ``observables``, or None when the splits cannot be made."""
    from lrid_analysis import evaluate, features

    sub = features.select(view, observables)
    try:
        result = evaluate.cross_validate(_forest(n_estimators, seed, n_jobs), features.flatten(sub), sub.y, splitter,
                                         meta=sub.meta, verbose=False)
    except ValueError:  # too few rows of a rule for the split
        return None
    return float(result.table["test_accuracy"].mean())


def _forest_check(out, n_splits, seed, n_estimators, view=None, n_jobs=1):
    from lrid_analysis import dataset, evaluate, features, splits

    view = dataset.load_view(out, full_access=False) if view is None else view
    full = (view.meta["unit_fraction"].to_numpy() == 1.0) & (view.meta["noise_std"].to_numpy() == 0.0)
    view = view.subset(full)
    selected = features.select(view, "all")
    forest = _forest(n_estimators, seed, n_jobs)
    splitter = splits.CategoryBalancedSplit(n_splits=n_splits, random_state=seed)
    result = evaluate.cross_validate(forest, features.flatten(selected), selected.y, splitter, meta=selected.meta,
                                     verbose=False)
    table = result.table
    per_task = {}
    for task in sorted(view.meta["task"].unique()):
        sub = view.subset(view.meta["task"].to_numpy() == task)
        per_task[task] = _mean_accuracy(sub, splits.CategoryBalancedSplit(n_splits=n_splits, random_state=seed),
                                        n_estimators, seed, n_jobs=n_jobs)
    per_set = {obs: _mean_accuracy(view, splits.CategoryBalancedSplit(n_splits=n_splits, random_state=seed),
                                   n_estimators, seed, obs, n_jobs=n_jobs)
               for obs in MEASURE_GROUPS}
    heldout = {}
    for name, split_class in (("architecture", splits.HeldOutArchitecture),
                              ("curriculum", splits.HeldOutCurriculum), ("task", splits.HeldOutTask)):
        columns = ("batch_size", "dataset_seed") if name == "curriculum" else (name,)
        n_values = len(view.meta[list(columns)].astype(str).drop_duplicates())
        heldout[name] = (_mean_accuracy(view, split_class(random_state=seed), n_estimators, seed, n_jobs=n_jobs)
                         if n_values >= 2 else None)
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
        "per_observable_set_test_accuracy": per_set,
        "heldout_test_accuracy": heldout,
    }


# --------------------------------------------------------------------------- learning-curve baseline


def curve_baseline(runs, n_splits=5, seed=0, n_estimators=200, n_jobs=1):
    """The forest on learning-curve features only: can the rule be read off the training outcome?

    Features per network: final ``train_loss``, ``train_accuracy``,
    ``val_loss``, ``val_accuracy`` and a one-hot task; category-balanced
    splits over networks (complete ones).

    Parameters
    ----------
    runs : pandas.DataFrame
        :func:`lrid_generate.store.collect_runs` output.

    Returns
    -------
    dict
        ``test_accuracy_mean``, ``chance``, ``n_networks``, ``features``; the
        accuracy is None when there are too few networks per rule to split.
    """
    from lrid_analysis import evaluate, splits

    done = runs[runs["status"] == "complete"].reset_index(drop=True)
    columns = ["train_loss", "train_accuracy", "val_loss", "val_accuracy"]
    tasks = sorted(done["task"].unique())
    X = np.column_stack([done[columns].to_numpy(dtype=float)]
                        + [(done["task"] == t).to_numpy(dtype=float) for t in tasks])
    y = done["learning_rule"].to_numpy()
    meta = done[["learning_rule", "task"]]
    try:
        result = evaluate.cross_validate(_forest(n_estimators, seed, n_jobs), X, y,
                                         splits.CategoryBalancedSplit(n_splits=n_splits, random_state=seed), meta=meta,
                                         verbose=False)
        accuracy = float(result.table["test_accuracy"].mean())
    except ValueError:
        accuracy = None
    return {"test_accuracy_mean": accuracy, "chance": 1.0 / max(1, len(set(y))), "n_networks": int(len(done)),
            "features": columns + [f"task={t}" for t in tasks]}


def learning_curve_control(out, n_splits=10, seed=0, n_jobs=1, observables="all"):
    """The observables against each network's whole learning curve, on network-grouped splits.

    Runs the ``performance_control`` experiment with its defaults (random
    forest; whole learning curve: train / validation loss and accuracy at every
    checkpoint; splits grouped by network, so neither feature set can
    recognise a network seen in training), on all networks and on networks
    matched in final validation accuracy, for the 4-way problem and every pair
    of rules. Unlike :func:`curve_baseline` (final values only, per network)
    this is the strongest learning-curve baseline lrid has, and the observables
    are scored on the very same splits.

    Parameters
    ----------
    out : str or Path
        Generated data (a sweep folder) with learning curves.
    n_splits, seed, n_jobs : int
        Network-grouped category-balanced splits, their seed, forest workers.
    observables : str
        The observable set compared with the learning curve.

    Returns
    -------
    dict
        ``rows``: one per (networks, comparison, features) with
        ``accuracy_mean``, ``accuracy_ci_low``, ``accuracy_ci_high`` (corrected
        95 % CI) and ``n_splits``; ``n_splits``, ``observables``. When the data
        cannot be split by network (fewer than 2 networks per rule) or hold no
        learning curves, ``rows`` is empty and ``skipped`` says why.
    """
    from lrid_analysis.experiments import ExperimentError, performance_control

    try:
        result = performance_control.run(str(out), observables=observables, n_splits=n_splits, random_state=seed,
                                         n_jobs=n_jobs, verbose=False, progress=False, plot=False)
    except ExperimentError as err:
        return {"rows": [], "n_splits": n_splits, "observables": observables, "skipped": str(err)}
    summary = result.summary
    if performance_control.CURVE not in set(summary["features"]):
        return {"rows": [], "n_splits": n_splits, "observables": observables,
                "skipped": "the data hold no learning curves"}
    columns = ["networks", "comparison", "features", "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high",
               "n_splits"]
    return {"rows": summary[columns].to_dict(orient="records"), "n_splits": n_splits, "observables": observables}


# --------------------------------------------------------------------------- training-quality gate


def _simclr_chance(row):
    options = json.loads(row["task_options"]) if isinstance(row.get("task_options"), str) else {}
    n = int(options.get("n_eval", row.get("n_val", 1)))
    return 1.0 / max(1, 2 * n - 1)


def training_gate(runs, ia_ratio=GATE_TARGETS["ia_ratio"], fa_ratio=GATE_TARGETS["fa_ratio"],
                  min_supervised=GATE_TARGETS["min_supervised"],
                  simclr_over_chance=GATE_TARGETS["simclr_over_chance"], exceptions=None):
    """Check that every rule learned: median final validation accuracy per (task, architecture, rule).

    A diverged network counts as accuracy 0. Supervised cells need at least
    ``min_supervised`` (chance is 0.1 on the 10-class tasks); on each
    supervised (task, architecture) IA needs ``ia_ratio`` x and FA
    ``fa_ratio`` x SGDM's median. SimCLR cells (positive-pair accuracy among
    the ``2 n - 1`` other views of the ``n`` validation examples; chance
    ``1 / (2 n - 1)``) need ``simclr_over_chance`` times chance (with 512
    validation examples, 10 x chance is 0.0098; a network that learned
    nothing scores about chance).

    Parameters
    ----------
    runs : pandas.DataFrame
        :func:`lrid_generate.store.collect_runs` output.
    ia_ratio, fa_ratio, min_supervised, simclr_over_chance : float
        Targets (defaults :data:`GATE_TARGETS`).
    exceptions : dict, optional
        ``"task/architecture/rule"`` -> reason: a missed target with a known
        reason; the cell is reported but does not fail the gate.

    Returns
    -------
    dict
        ``cells`` (one dict per cell: ``task``, ``architecture``, ``rule``,
        ``kind``, ``n``, ``diverged``, ``median``, ``target``, ``sgdm_median``,
        ``passed``, ``exception``), ``passed`` (bool), ``failed`` (keys of
        the failing cells without an exception), ``targets``.

    Examples
    --------
    >>> import pandas as pd
    >>> runs = pd.DataFrame({"task": ["digits"] * 2, "architecture": ["knet"] * 2,
    ...                      "learning_rule": ["sgdm", "information"], "status": ["complete"] * 2,
    ...                      "val_accuracy": [0.9, 0.7], "paper_task": ["imagenet"] * 2})
    >>> gate = training_gate(runs)
    >>> gate["passed"], gate["failed"]
    (False, ['digits/knet/information'])
    """
    exceptions = dict(exceptions or {})
    data = runs.copy()
    accuracy = data["val_accuracy"].where(data["status"] == "complete", 0.0).astype(float).fillna(0.0)
    data["_accuracy"] = accuracy
    cells = []
    for (task, arch), pair in data.groupby(["task", "architecture"], sort=True):
        simclr = str(task).endswith("_simclr") or ("paper_task" in pair and (pair["paper_task"] == "simclr").any())
        medians = pair.groupby("learning_rule")["_accuracy"].median()
        sgdm = float(medians["sgdm"]) if "sgdm" in medians else None
        for rule, group in pair.groupby("learning_rule", sort=True):
            median = float(group["_accuracy"].median())
            chance = _simclr_chance(group.iloc[0]) if simclr else 0.1
            if simclr:
                target = simclr_over_chance * chance
            else:
                target = min_supervised
                ratio = {"information": ia_ratio, "feedback": fa_ratio}.get(rule)
                if ratio is not None and sgdm is not None:
                    target = max(target, ratio * sgdm)
            key = f"{task}/{arch}/{rule}"
            cells.append({
                "key": key, "task": task, "architecture": arch, "rule": rule,
                "kind": "simclr" if simclr else "supervised", "n": int(len(group)),
                "diverged": int((group["status"] != "complete").sum()), "median": median,
                "chance": chance,
                "target": float(target), "sgdm_median": sgdm, "passed": bool(median >= target),
                "exception": exceptions.get(key),
            })
    failed = [c["key"] for c in cells if not c["passed"] and c["exception"] is None]
    return {"cells": cells, "passed": not failed, "failed": failed,
            "targets": {"ia_ratio": ia_ratio, "fa_ratio": fa_ratio, "min_supervised": min_supervised,
                        "simclr_over_chance": simclr_over_chance}}


# --------------------------------------------------------------------------- LRN twins


def lrn_twins(runs):
    """LRN architectures next to their plain twins: do they train differently?

    For every ``<arch>lrn`` with its ``<arch>`` on the same task, the median
    final training loss and validation accuracy of each, and the median over
    paired networks (same task, rule, batch size and seeds) of the absolute
    difference in final training loss.

    Returns
    -------
    list of dict
        ``task``, ``lrn``, ``plain``, ``n_pairs``, ``train_loss_lrn``,
        ``train_loss_plain``, ``val_accuracy_lrn``, ``val_accuracy_plain``,
        ``median_abs_train_loss_difference``.
    """
    done = runs[runs["status"] == "complete"]
    keys = ["task", "learning_rule", "batch_size", "model_seed", "dataset_seed"]
    out = []
    for (task, arch), lrn in done.groupby(["task", "architecture"], sort=True):
        if not str(arch).endswith("lrn"):
            continue
        plain = done[(done["task"] == task) & (done["architecture"] == arch[:-3])]
        if not len(plain):
            continue
        cols = [k for k in keys if k in done.columns]
        paired = lrn[cols + ["train_loss"]].astype({c: str for c in cols}).merge(
            plain[cols + ["train_loss"]].astype({c: str for c in cols}), on=cols, suffixes=("_lrn", "_plain"))
        diff = (paired["train_loss_lrn"] - paired["train_loss_plain"]).abs()
        out.append({
            "task": task, "lrn": arch, "plain": arch[:-3], "n_pairs": int(len(paired)),
            "train_loss_lrn": float(lrn["train_loss"].median()), "train_loss_plain": float(plain["train_loss"].median()),
            "val_accuracy_lrn": float(lrn["val_accuracy"].median()),
            "val_accuracy_plain": float(plain["val_accuracy"].median()),
            "median_abs_train_loss_difference": float(diff.median()) if len(diff) else None,
        })
    return out


# --------------------------------------------------------------------------- Fig. 5 corners


#: Observable sets of the noise-corner table: each measure alone (Fig. 5's panels), then all together.
CORNER_MEASURES = ("weight", "act", "grad", "all")


def noise_corners(view, n_splits=5, seed=0, n_estimators=200, measures=CORNER_MEASURES, n_jobs=1):
    """FA vs IA separability at the corners of the unit-noise grid (Fig. 5 style).

    The networks with more than one measurement condition (the noise grid)
    are taken; for the smallest and largest unit fraction crossed with the
    smallest and largest noise level (observation seeds pooled), a forest
    separates FA from IA on category-balanced splits of those trajectories,
    from each observable set of ``measures``.

    Returns
    -------
    list of dict or None
        ``unit_fraction``, ``noise_std``, ``n_trajectories``,
        ``test_accuracy_mean`` (``"all"``'s, kept for older cards) and
        ``test_accuracy`` (observable set -> mean test accuracy; chance 0.5;
        None when too few to split); None when the data have no noise grid.
    """
    from lrid_analysis import splits

    meta = view.meta
    rules = meta["learning_rule"].isin(["feedback", "information"]).to_numpy()
    conditions = meta[["unit_fraction", "noise_std"]].drop_duplicates()
    if len(conditions) < 2 or not rules.any():
        return None
    grid_runs = meta.loc[rules & ~((meta["unit_fraction"] == 1.0) & (meta["noise_std"] == 0.0)).to_numpy(),
                         "run_id"].unique()
    if not len(grid_runs):
        return None
    in_grid = rules & meta["run_id"].isin(grid_runs).to_numpy()
    fractions = sorted(meta.loc[in_grid, "unit_fraction"].unique())
    noises = sorted(meta.loc[in_grid, "noise_std"].unique())
    out = []
    for f in (fractions[0], fractions[-1]):
        for s in (noises[0], noises[-1]):
            mask = in_grid & (meta["unit_fraction"] == f).to_numpy() & (meta["noise_std"] == s).to_numpy()
            sub = view.subset(mask)
            splitter = splits.CategoryBalancedSplit(n_splits=n_splits, random_state=seed)
            accuracy = {m: _mean_accuracy(sub, splitter, n_estimators, seed, observables=m, n_jobs=n_jobs)
                        if mask.sum() else None
                        for m in measures}
            out.append({"unit_fraction": float(f), "noise_std": float(s), "n_trajectories": int(mask.sum()),
                        "test_accuracy_mean": accuracy.get("all"), "test_accuracy": accuracy})
    return out


class CardError(ValueError):
    """A card cannot be made as asked (e.g. reusing an earlier card of changed data)."""


#: The card's sections that train forests on the observables (minutes to an hour);
#: :func:`dataset_card` can take them from an earlier card of the same data.
FOREST_SECTIONS = ("forest_check", "learning_curve_control", "noise_corners")


def dataset_card(out, n_splits=5, seed=0, n_estimators=200, exceptions=None, gate_targets=None, control_splits=10,
                 n_jobs=1, reuse=None):
    """Facts about a generated dataset folder, as a dict.

    Parameters
    ----------
    out : str or Path
        A sweep's output folder (holding ``runs.json`` and ``sweep.json``).
    n_splits, seed, n_estimators : int
        Settings of the random-forest checks.
    exceptions : dict, optional
        Known-reason exceptions of the gate (see :func:`training_gate`).
    gate_targets : dict, optional
        Overrides of :data:`GATE_TARGETS`.
    control_splits : int
        Splits of :func:`learning_curve_control`.
    n_jobs : int
        Threads of every forest (the results do not depend on it).
    reuse : dict, optional
        An earlier card of this folder (its ``card.json``): its
        :data:`FOREST_SECTIONS` are kept instead of recomputed, so that a
        card can be re-made after a change to the exceptions, the text or the
        cheap sections in seconds. Refused (:class:`CardError`) unless the data
        are unchanged (same counts of networks, rows and trajectories, same
        bytes on disk) and the forest settings are the same.

    Returns
    -------
    dict
        ``settings`` (the arguments above that shape the numbers),
        ``sweep`` (preset, grid, versions as recorded), ``counts``,
        ``accuracy`` (per task and rule: mean final training and validation
        accuracy), ``gate`` (:func:`training_gate`), ``forest_check``,
        ``curve_baseline`` (:func:`curve_baseline`),
        ``learning_curve_control`` (:func:`learning_curve_control`),
        ``lrn_twins`` (:func:`lrn_twins`), ``noise_corners``
        (:func:`noise_corners`).
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
    settings = {"n_splits": int(n_splits), "seed": int(seed), "n_estimators": int(n_estimators),
                "control_splits": int(control_splits)}
    counts = {
        "networks": int(len(runs)),
        "complete": int((runs["status"] == "complete").sum()),
        "diverged": int((runs["status"] == "diverged").sum()),
        "rows": int(len(table)),
        "trajectories": int(trajectories),
        "bytes": int(_folder_bytes(out)),
        "train_seconds_total": float(runs["seconds"].sum()),
        "record_seconds_total": float(runs["record_seconds"].sum()),
        "cpu_seconds_total": float(runs["cpu_seconds"].sum()) if "cpu_seconds" in runs else None,
    }
    card = {
        "settings": settings,
        "sweep": sweep,
        "counts": counts,
        "accuracy": accuracy.reset_index().to_dict(orient="records"),
        "gate": training_gate(runs, exceptions=exceptions, **(gate_targets or {})),
        "curve_baseline": curve_baseline(runs, n_splits, seed, n_estimators, n_jobs=n_jobs),
        "lrn_twins": lrn_twins(runs),
    }
    if reuse is not None:
        _check_reusable(reuse, settings, counts, out)
        return {**card, **{key: reuse[key] for key in FOREST_SECTIONS}}
    view = dataset.load_view(out, full_access=False)  # every condition: the noise corners need them
    return {
        **card,
        "forest_check": _forest_check(out, n_splits, seed, n_estimators, view=view, n_jobs=n_jobs),
        "learning_curve_control": learning_curve_control(out, n_splits=control_splits, seed=seed, n_jobs=n_jobs),
        "noise_corners": noise_corners(view, n_splits, seed, n_estimators, n_jobs=n_jobs),
    }


def _check_reusable(previous, settings, counts, out):
    """Refuse to reuse an earlier card's forest sections unless data and settings are the same."""
    missing = [key for key in ("settings", "counts", *FOREST_SECTIONS) if key not in previous]
    if missing:
        raise CardError(f"{out}/card.json: cannot reuse it, it has no {', '.join(missing)}")
    if previous["settings"] != settings:
        raise CardError(f"{out}/card.json was computed with {previous['settings']}, not {settings}: "
                         "recompute the card (without reuse) or pass the same settings")
    changed = [key for key in ("networks", "complete", "diverged", "rows", "trajectories", "bytes")
               if previous["counts"].get(key) != counts[key]]
    if changed:
        detail = ", ".join(f"{key} {previous['counts'].get(key)} -> {counts[key]}" for key in changed)
        raise CardError(f"{out}: the data changed since card.json was written ({detail}); recompute the card")


def write_card(out, command=None, wall_seconds=None, n_splits=5, seed=0, n_estimators=200, exceptions=None,
               gate_targets=None, control_splits=10, n_jobs=1, wall_note=None, reuse_forests=False):
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
        Settings of the random-forest checks.
    exceptions, gate_targets : dict, optional
        See :func:`dataset_card`.
    control_splits, n_jobs : int
        See :func:`dataset_card`.
    wall_note : str, optional
        Free text after the wall time (how it was measured, re-runs).
    reuse_forests : bool
        Keep the forest sections of the folder's ``card.json`` (see
        ``reuse`` of :func:`dataset_card`); ``command``, ``wall_seconds``
        and ``wall_note`` not given are kept from it too, and so are its
        gate exceptions (``exceptions`` adds to them and overrides them).

    Returns
    -------
    dict
        The card (see :func:`dataset_card`); ``card["gate"]["passed"]`` says
        whether the training-quality gate passed.
    """
    out = Path(out)
    previous = None
    if reuse_forests:
        path = out / "card.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no earlier card to reuse")
        previous = json.loads(path.read_text())
        command = previous.get("command") if command is None else command
        wall_seconds = previous.get("wall_seconds") if wall_seconds is None else wall_seconds
        wall_note = previous.get("wall_note") if wall_note is None else wall_note
        kept = {c["key"]: c["exception"] for c in previous.get("gate", {}).get("cells", []) if c.get("exception")}
        exceptions = {**kept, **(exceptions or {})}
    card = dataset_card(out, n_splits=n_splits, seed=seed, n_estimators=n_estimators, exceptions=exceptions,
                        gate_targets=gate_targets, control_splits=control_splits, n_jobs=n_jobs, reuse=previous)
    card["command"], card["wall_seconds"], card["wall_note"] = command, wall_seconds, wall_note
    write_text_atomic(out / "card.json", json.dumps(card, indent=2, default=str))
    write_text_atomic(out / "CARD.md", render(card))
    return card
