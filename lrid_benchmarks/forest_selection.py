"""Benchmark: out-of-bag forest selection against nested 5-fold grid search.

The paper's random-forest protocol: ten category-balanced 75%/25% splits
(:class:`lrid_analysis.splits.CategoryBalancedSplit`, seed 0), all 24
admissible observables over 21 checkpoints plus the layer one-hot (507
columns), and hyperparameters chosen on each split's training rows from
``max_features`` in {sqrt, log2, None} x ``n_estimators`` in {20, 50, 100,
500, 1000}. Two ways of choosing, timed per split in the same process, on the
same rows, with the same number of jobs:

* ``oob``: :class:`lrid_analysis.classifiers.OOBForestSelection` (one
  warm-started forest per ``max_features``, out-of-bag accuracy at every
  size, hopeless settings dropped after 100 trees; the winning forest is the
  model);
* ``nested``: :class:`sklearn.model_selection.GridSearchCV` over the same
  grid with stratified shuffled 5-fold CV, then a refit on all training rows.

``--grouping network`` (default) groups both selections by network
(``run_id``), as lrid's experiments do: the OOB selection bootstraps
networks (``fit(..., groups=...)``; out-of-bag rows are whole networks) and
the nested search uses :class:`~sklearn.model_selection.StratifiedGroupKFold`
(5 folds, shuffled); the quick subsample then draws whole networks
(``--rows-per-rule`` rows of each rule, rounded up to whole networks).
``--grouping none`` is the row-level protocol of the earlier entries.
The OOB side draws its bootstrap's networks within each rule
(``--stratify-groups``, the estimator's default); ``--no-stratify-groups``
draws them over all networks, the earlier default.

Both forests use ``random_state=0``; when both pick the same setting they are
the same forest, so accuracy differences come only from different choices.
The data are :func:`lrid_analysis.synthetic.synthetic_table` on the public
metadata (``--signal`` 0.3 puts a random forest near 85-90 % accuracy, as in
the paper).

``--quick`` (default) subsamples ``--rows-per-rule`` (60) trajectories of
each rule and uses ``--splits`` 2, so both protocols run in a few minutes on
2 cores (the nested search still grows 25,000 trees per split). ``--full`` uses all 20,736 trajectories; there the nested search (about
25,000 trees per split, 8,350 of them with ``max_features=None`` at ~5 s
each on one core) cannot run on a small machine, so unless
``--measure-nested`` is given it is *estimated*: the seconds per tree of each
``max_features`` are measured by fitting ``--probe-trees`` trees on a
fold-sized (4/5) and on a full-sized sample of the first split's training
rows, multiplied by the trees the nested search grows (5 folds x (20 + 50 +
100 + 500 + 1000) per setting, plus the refit of the winner), and divided by
``--n-jobs`` (perfect parallel speed-up, which favours the baseline). The
quick mode reports the same estimate next to its measured nested time, which
checks the estimate. Results (versions, parameters, seeds, per-split
figures) are merged into ``lrid_benchmarks/results/forest_selection.json`` under
the mode's key (or ``--key``). The OOB selection's CPU time (all its
threads) is recorded too, since on a shared machine wall time depends on
the load.

Targets: ``oob`` >= 20x faster than ``nested``, test accuracy within 1 point.

Usage::

    python lrid_benchmarks/forest_selection.py --quick [--rows-per-rule 60 --splits 2]
    python lrid_benchmarks/forest_selection.py --full [--splits 10] [--measure-nested]
    python lrid_benchmarks/forest_selection.py --rows-per-rule 300 --vote-check 1000 2000 3000
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)
from tqdm.auto import tqdm

from lrid_analysis.atomic import write_json_atomic
from lrid_analysis.classifiers import (
    RANDOM_FOREST_GRID,
    OOBForestSelection,
    UngroupedSelectionWarning,
)
from lrid_analysis.dataset import to_view
from lrid_analysis.features import flatten
from lrid_analysis.splits import CategoryBalancedSplit
from lrid_analysis.synthetic import public_meta, synthetic_table
from lrid_benchmarks.machine import machine

TARGET_SPEEDUP = 20.0
TARGET_POINTS = 1.0
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "forest_selection.json"
#: The estimator's own default, so the benchmark measures what users get.
STRATIFY_GROUPS = OOBForestSelection().get_params()["stratify_groups"]




def build_data(signal, seed, rows_per_rule=None, grouped=False):
    """The flat features, labels and network ids of a synthetic public-sized view.

    With ``rows_per_rule``, a random subsample: that many rows of each rule,
    or (``grouped``) whole networks of each rule until at least that many rows.
    """
    view = to_view(synthetic_table(public_meta(), signal=signal, seed=seed), observables="all")
    if rows_per_rule is not None:
        rng = np.random.RandomState(seed)
        labels, networks = view.y, view.meta["run_id"].to_numpy()
        keep = []
        for rule in np.unique(labels):
            rows = np.flatnonzero(labels == rule)
            if not grouped:
                keep.append(rng.permutation(rows)[:rows_per_rule])
                continue
            names = rng.permutation(np.unique(networks[rows]))
            sizes = np.array([np.sum(networks[rows] == n) for n in names])
            chosen = names[: int(np.searchsorted(np.cumsum(sizes), rows_per_rule)) + 1]
            keep.append(rows[np.isin(networks[rows], chosen)])
        view = view.subset(np.sort(np.concatenate(keep)))
    return view, flatten(view), view.y, view.meta["run_id"].to_numpy()


def per_tree_seconds(X, y, grid, probe_trees, seed):
    """CPU seconds to grow one tree (one core) for each max_features, on all rows given.

    CPU time (``time.process_time``), not wall time, so that the estimate is
    comparable with the OOB selection's CPU time on a loaded machine (runs
    recorded before this change used wall time: ``probe_clock`` absent).
    """
    out = {}
    for max_features in grid["max_features"]:
        start = time.process_time()
        RandomForestClassifier(n_estimators=probe_trees, max_features=max_features, random_state=seed,
                               n_jobs=1).fit(X, y)
        out[str(max_features)] = (time.process_time() - start) / probe_trees
    return out


def estimate_nested(X_train, y_train, grid, best, n_jobs, probe_trees, seed, cv=5):
    """Estimated wall seconds of the nested grid search on these training rows.

    Per-tree seconds are measured on a stratified fold-sized sample
    ((cv-1)/cv of the rows) and on all rows; the search grows ``cv * sum(sizes)``
    trees per setting on fold-sized data and refits ``best`` on all rows.
    Scoring time is ignored and parallelism assumed perfect, so the estimate
    is low (in favour of the baseline).
    """
    fold_rows, _ = train_test_split(np.arange(len(y_train)), train_size=(cv - 1) / cv, stratify=y_train,
                                    random_state=seed)
    fold = per_tree_seconds(X_train[fold_rows], y_train[fold_rows], grid, probe_trees, seed)
    full = per_tree_seconds(X_train, y_train, {"max_features": [best["max_features"]]}, probe_trees, seed)
    trees = sum(grid["n_estimators"])
    core_seconds = sum(cv * trees * s for s in fold.values()) + best["n_estimators"] * full[str(best["max_features"])]
    return {"estimated_seconds": core_seconds / n_jobs, "core_seconds": core_seconds,
            "per_tree_seconds_fold": fold, "per_tree_seconds_full": full}


def _oob_curves(table):
    """``max_features`` -> OOB accuracy at each size of ``table`` (``oob_scores_`` rows; None where dropped)."""
    return {str(m): [None if np.isnan(v) else round(float(v), 4) for v in part["oob_score"]]
            for m, part in table.groupby(table["max_features"].map(str), sort=False)}


def run_oob(X_train, y_train, X_test, y_test, grid, n_jobs, seed, groups=None, stratify_groups=STRATIFY_GROUPS):
    start, cpu_start = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UngroupedSelectionWarning)  # --grouping none is deliberate
        est = OOBForestSelection(param_grid=grid, n_jobs=n_jobs, random_state=seed,
                                 stratify_groups=stratify_groups).fit(X_train, y_train, groups=groups)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    table = est.oob_scores_
    grown = {str(m): int(part.n_estimators[~part.dropped].max())
             for m, part in table.groupby(table.max_features.map(str), sort=False)}
    return {"seconds": seconds, "cpu_seconds": cpu_seconds,
            "accuracy": float((est.predict(X_test) == y_test).mean()),
            "best_params": dict(est.best_params_), "oob_score": est.best_score_,
            "trees_grown": grown, "oob_curves": _oob_curves(table),
            "curve_sizes": [int(k) for k in table.n_estimators.unique()]}


def _cpu_seconds():
    """CPU seconds of this process and its live children (joblib's worker processes).

    Uses psutil when it is installed; otherwise this process only.
    """
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is optional
        return time.process_time()
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:  # pragma: no cover - a worker that just exited
            pass
    return total


def run_nested(X_train, y_train, X_test, y_test, grid, n_jobs, seed, cv=5, groups=None):
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    folds = (StratifiedKFold(cv, shuffle=True, random_state=seed) if groups is None
             else StratifiedGroupKFold(cv, shuffle=True, random_state=seed))
    search = GridSearchCV(RandomForestClassifier(random_state=seed, n_jobs=1), grid,
                          cv=folds, n_jobs=n_jobs, refit=True)
    search.fit(X_train, y_train, groups=groups)
    seconds, cpu_seconds = time.perf_counter() - start, _cpu_seconds() - cpu_start
    return {"seconds": seconds, "cpu_seconds": cpu_seconds,
            "accuracy": float((search.predict(X_test) == y_test).mean()),
            "best_params": dict(search.best_params_), "cv_score": float(search.best_score_),
            "cv_curves": {str(m): [round(float(v), 4) for v, p in zip(search.cv_results_["mean_test_score"],
                                                                      search.cv_results_["params"])
                                   if p["max_features"] == m] for m in grid["max_features"]}}


def _merge_write(output, mode, results):
    output = Path(output)
    merged = {}
    if output.exists():
        try:
            merged = json.loads(output.read_text())
        except json.JSONDecodeError:
            merged = {}
    merged[mode] = results
    write_json_atomic(output, merged)


def run(mode="quick", rows_per_rule=60, n_splits=2, signal=0.3, seed=0, n_jobs=2, probe_trees=4,
        measure_nested=None, output=DEFAULT_OUTPUT, key=None, grouping="network", stratify_groups=STRATIFY_GROUPS):
    """Run the benchmark; return the results dict (also written to ``output``)."""
    if grouping not in ("network", "none"):
        raise ValueError(f"grouping must be 'network' or 'none', got {grouping!r}")
    grid = {k: list(v) for k, v in RANDOM_FOREST_GRID.items()}
    measure_nested = (mode == "quick") if measure_nested is None else measure_nested
    started = time.perf_counter()
    grouped = grouping == "network"
    view, X, y, networks = build_data(signal, seed, rows_per_rule if mode == "quick" else None, grouped)
    splitter = CategoryBalancedSplit(n_splits=n_splits, random_state=seed)
    splits = list(splitter.split(view))
    print(f"{mode}: X {X.shape} ({len(np.unique(networks))} networks), {n_splits} split(s) of "
          f"{splitter.n_train_} train / {splitter.n_test_} test rows per rule, grouping={grouping}, "
          f"stratify_groups={stratify_groups}, "
          f"n_jobs={n_jobs}, data built in {time.perf_counter() - started:.1f} s")
    rows = []
    for s, (train, test) in enumerate(tqdm(splits, desc="splits")):
        Xtr, ytr, Xte, yte = X[train], y[train], X[test], y[test]
        groups = networks[train] if grouped else None
        row = {"split": s, "oob": run_oob(Xtr, ytr, Xte, yte, grid, n_jobs, seed, groups, stratify_groups)}
        if measure_nested:
            row["nested"] = run_nested(Xtr, ytr, Xte, yte, grid, n_jobs, seed, groups=groups)
        if mode == "quick" or s == 0:
            best = row["nested"]["best_params"] if measure_nested else row["oob"]["best_params"]
            row["nested_estimate"] = estimate_nested(Xtr, ytr, grid, best, n_jobs, probe_trees, seed)
        rows.append(row)
        line = f"split {s}: oob {row['oob']['seconds']:.1f} s acc {row['oob']['accuracy']:.4f} {row['oob']['best_params']}"
        if measure_nested:
            line += (f" | nested {row['nested']['seconds']:.1f} s acc {row['nested']['accuracy']:.4f} "
                     f"{row['nested']['best_params']}")
        tqdm.write(line)

    oob_seconds = float(np.mean([r["oob"]["seconds"] for r in rows]))
    oob_cpu = float(np.mean([r["oob"]["cpu_seconds"] for r in rows]))
    summary = {"oob_seconds_per_split": oob_seconds, "oob_cpu_seconds_per_split": oob_cpu,
               "oob_accuracy_mean": float(np.mean([r["oob"]["accuracy"] for r in rows]))}
    if measure_nested:
        nested_seconds = float(np.mean([r["nested"]["seconds"] for r in rows]))
        diffs = [100 * (r["oob"]["accuracy"] - r["nested"]["accuracy"]) for r in rows]
        estimated = float(np.mean([r["nested_estimate"]["estimated_seconds"] for r in rows]))
        nested_cpu = float(np.mean([r["nested"]["cpu_seconds"] for r in rows]))
        summary.update({
            "nested_seconds_per_split": nested_seconds,
            "nested_cpu_seconds_per_split": nested_cpu,
            "speedup_cpu": nested_cpu / oob_cpu,
            "nested_accuracy_mean": float(np.mean([r["nested"]["accuracy"] for r in rows])),
            "speedup": nested_seconds / oob_seconds,
            "accuracy_difference_points": float(np.mean(diffs)),
            "accuracy_difference_points_per_split": diffs,
            "same_choice_splits": int(sum(r["oob"]["best_params"] == r["nested"]["best_params"] for r in rows)),
            "nested_estimate_seconds_per_split": estimated,
            "estimate_over_measured": estimated / nested_seconds,
        })
        summary["meets_targets"] = bool(summary["speedup"] >= TARGET_SPEEDUP
                                        and abs(summary["accuracy_difference_points"]) <= TARGET_POINTS)
    else:
        estimated = rows[0]["nested_estimate"]["estimated_seconds"]
        core = rows[0]["nested_estimate"]["core_seconds"]
        summary.update({"nested_estimate_seconds_per_split": estimated,
                        "nested_estimate_core_seconds_per_split": core,
                        "estimated_speedup": estimated / oob_seconds,
                        "estimated_speedup_cpu": core / oob_cpu,
                        "meets_speed_target": bool(estimated / oob_seconds >= TARGET_SPEEDUP)})
    results = {
        "mode": mode, "machine": machine(), "signal": signal, "seed": seed, "n_jobs": n_jobs,
        "grouping": grouping, "stratify_groups": bool(stratify_groups),
        "n_networks": int(len(np.unique(networks))), "fraction_of_public": len(y) / 20736,
        "rows_per_rule": rows_per_rule if mode == "quick" else None, "n_splits": n_splits,
        "n_train_per_rule": splitter.n_train_, "n_test_per_rule": splitter.n_test_, "shape": list(X.shape),
        "grid": grid, "probe_trees": probe_trees, "probe_clock": "process_time", "measured_nested": measure_nested,
        "targets": {"speedup": TARGET_SPEEDUP, "accuracy_points": TARGET_POINTS},
        "summary": summary, "splits": rows, "wall_seconds": time.perf_counter() - started,
    }
    print(f"\n{mode} summary ({n_splits} split(s), n_jobs={n_jobs}):")
    print(f"  oob selection:    {oob_seconds:9.1f} s per split ({oob_cpu:.0f} s CPU), "
          f"test accuracy {summary['oob_accuracy_mean']:.4f}")
    if measure_nested:
        print(f"  nested 5-fold GS: {summary['nested_seconds_per_split']:9.1f} s per split, "
              f"test accuracy {summary['nested_accuracy_mean']:.4f}")
        print(f"  CPU time: oob {oob_cpu:.0f} s vs nested {nested_cpu:.0f} s: x{summary['speedup_cpu']:.1f}")
        print(f"  speed-up x{summary['speedup']:.1f} (target >= {TARGET_SPEEDUP:.0f}), accuracy difference "
              f"{summary['accuracy_difference_points']:+.2f} points (target within {TARGET_POINTS:.0f}), "
              f"same choice in {summary['same_choice_splits']}/{n_splits} splits")
        print(f"  nested estimate from per-tree probes: {estimated:.1f} s per split "
              f"({summary['estimate_over_measured']:.2f} x measured)")
    else:
        print(f"  nested 5-fold GS: {estimated:9.1f} s per split ESTIMATED (per-tree probes, perfect "
              f"{n_jobs}-job parallelism)")
        print(f"  CPU time: oob {oob_cpu:.0f} s vs nested {core:.0f} s estimated: "
              f"x{summary['estimated_speedup_cpu']:.1f}")
        print(f"  estimated speed-up x{summary['estimated_speedup']:.1f} (target >= {TARGET_SPEEDUP:.0f}); "
              f"full protocol (10 splits): oob {oob_seconds * 10 / 60:.1f} min vs nested "
              f"{estimated * 10 / 3600:.1f} h for 10 splits")
    key = key or mode
    _merge_write(output, key, results)
    print(f"results written to {output} (key {key!r})")
    return results


def vote_check(rows_per_rule=300, n_splits=3, signal=0.3, seed=0, n_jobs=2, sizes=(1000, 2000, 3000),
               settings=("sqrt", "log2"), output=DEFAULT_OUTPUT, key=None):
    """OOB accuracy of ``max_features`` settings grown past the grid, without pruning (grouped, quick data).

    A row's out-of-bag vote uses only the ~37 % of trees that left its network
    out, so OOB accuracy at ``k`` trees describes a forest of ~0.37 ``k``
    trees; growing to ~3 ``k`` compares the settings at the vote count of a
    ``k``-tree forest, as the nested search does. Same data and splits as
    ``run(mode="quick", grouping="network")``.
    """
    started = time.perf_counter()
    view, X, y, networks = build_data(signal, seed, rows_per_rule, grouped=True)
    splits = list(CategoryBalancedSplit(n_splits=n_splits, random_state=seed).split(view))
    grid = {"max_features": list(settings), "n_estimators": [int(k) for k in sizes]}
    rows = []
    for s, (train, _) in enumerate(tqdm(splits, desc="splits")):
        est = OOBForestSelection(param_grid=grid, n_jobs=n_jobs, random_state=seed, prune_from=max(sizes) + 1,
                                 stratify_groups=STRATIFY_GROUPS).fit(X[train], y[train], groups=networks[train])
        curves = _oob_curves(est.oob_scores_[est.oob_scores_["in_grid"]])
        rows.append({"split": s, "oob_curves": curves})
        tqdm.write(f"split {s}: " + ", ".join(f"{m} {c}" for m, c in curves.items()))
    results = {"mode": "vote_check", "machine": machine(), "signal": signal, "seed": seed, "n_jobs": n_jobs,
               "rows_per_rule": rows_per_rule, "n_splits": n_splits, "sizes": [int(k) for k in sizes],
               "settings": list(settings), "stratify_groups": STRATIFY_GROUPS, "splits": rows,
               "wall_seconds": time.perf_counter() - started}
    if output is not None:
        _merge_write(output, key or f"vote_check_{rows_per_rule}x{n_splits}", results)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="subsampled rows, measured nested search (default)")
    size.add_argument("--full", action="store_true", help="all 20,736 trajectories, nested search estimated")
    parser.add_argument("--rows-per-rule", type=int, default=60, help="quick: trajectories per rule (default 60)")
    parser.add_argument("--splits", type=int, default=None, help="splits (default: 2 quick, 10 full)")
    parser.add_argument("--signal", type=float, default=0.3, help="planted signal strength (default 0.3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=2, help="jobs for both methods (default 2)")
    parser.add_argument("--probe-trees", type=int, default=None,
                        help="trees per per-tree timing probe (default 20 quick, 4 full)")
    nested = parser.add_mutually_exclusive_group()
    nested.add_argument("--measure-nested", action="store_true", help="full: run the nested search for real")
    nested.add_argument("--estimate-nested", action="store_true",
                        help="quick: estimate the nested search from per-tree probes instead of running it")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--key", default=None, help="key of this run in the results file (default: the mode)")
    parser.add_argument("--grouping", choices=("network", "none"), default="network",
                        help="group both selections by network (default) or select on rows")
    parser.add_argument("--stratify-groups", action=argparse.BooleanOptionalAction, default=STRATIFY_GROUPS,
                        help="grouped OOB selection: draw the bootstrap's networks within each rule (default; "
                             "--no-stratify-groups: over all networks)")
    parser.add_argument("--vote-check", type=int, nargs="+", default=None, metavar="TREES",
                        help="instead: OOB accuracy of sqrt and log2 grown to these sizes without pruning "
                             "(quick data, grouped), e.g. --vote-check 1000 2000 3000")
    args = parser.parse_args(argv)
    if args.vote_check:
        vote_check(rows_per_rule=args.rows_per_rule, n_splits=args.splits or 3, signal=args.signal,
                   seed=args.seed, n_jobs=args.n_jobs, sizes=tuple(args.vote_check), output=args.output,
                   key=args.key)
        return
    mode = "full" if args.full else "quick"
    run(mode=mode, rows_per_rule=args.rows_per_rule,
        n_splits=args.splits or (10 if mode == "full" else 2), signal=args.signal, seed=args.seed,
        n_jobs=args.n_jobs, probe_trees=args.probe_trees or (4 if mode == "full" else 20),
        measure_nested=True if args.measure_nested else (False if args.estimate_nested else None),
        output=args.output, key=args.key, grouping=args.grouping, stratify_groups=args.stratify_groups)


if __name__ == "__main__":
    main()
