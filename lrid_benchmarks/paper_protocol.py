"""Benchmark: the separability experiment with ``--selection paper``, timed and extrapolated.

``separability --selection paper`` fits, for each of the 4 observable sets
(weight, act, grad, all) and each of 10 category-balanced splits, the
paper's three classifiers with the paper's selection
(:data:`lrid_analysis.classifiers.PAPER_SETTINGS`): the random forest's 15
settings chosen by grouped out-of-bag accuracy, the unscaled dual linear
SVM over 7 C x 12 PCA sizes and the original Conv1D MLP over 720 settings,
the latter two by 5-fold unshuffled cross-validation grouped by network plus
a refit. On the public-sized table that is far too slow to run here, so this
script runs the protocol on a stated fraction of the synthetic public-sized
table (:func:`lrid_analysis.synthetic.synthetic_table`, whole networks,
``--rows-per-rule``) and measures per-fit timings, then extrapolates:

* random forest: the grouped OOB selection is run in full on the fraction;
  its time is scaled to the full training size by ``n log n`` in rows;
* SVM: ``--settings`` grid settings (drawn with a seeded generator) are
  timed on a fold of the fraction; the mean seconds per fit are scaled
  linearly in rows (liblinear's dual coordinate descent costs one pass over
  the rows per iteration) and multiplied by the fits of the search
  (84 settings x 5 folds + 1 refit);
* Conv1D: the per-step seconds of ``--settings`` architectures at batch
  size 512 and 1024 are measured on full-width batches; a fit is
  ``400 x floor(n_rows / batch)`` steps (last partial batch dropped), so the
  search costs ``sum over settings and folds`` of that, plus the refit.

All timings are CPU seconds of single-threaded fits (``time.process_time``),
so they do not grow with the load of a shared machine; the extrapolated run
times are CPU hours on one core per fit.

Observable sets other than ``all`` are assumed to cost in proportion to
their columns (13, 8, 3 and 24 statistics: 2x the ``all`` set in total).
Test accuracy is measured on the fraction (split 0, observable set
``all``): the forest with its full selection, the SVM and the Conv1D MLP
with the paper's search restricted to the timed settings (stated in the
results). Results go to ``lrid_benchmarks/results/paper_protocol.json``
under the mode's key, with versions, parameters and seeds.

Usage::

    python -m lrid_benchmarks.paper_protocol --quick     # CI-sized, seconds
    python -m lrid_benchmarks.paper_protocol [--rows-per-rule 150 --settings 3]
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, StratifiedGroupKFold

from lrid_analysis.atomic import write_json_atomic
from lrid_analysis.classifiers import PAPER_SETTINGS, get_classifier
from lrid_analysis.splits import CategoryBalancedSplit
from lrid_benchmarks.forest_selection import build_data
from lrid_benchmarks.machine import machine

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "paper_protocol.json"
#: Rows of the public table and of one category-balanced training split (75 %).
PUBLIC_ROWS = 20736
PUBLIC_TRAIN_ROWS = 4 * 3888
N_SPLITS, CV = 10, 5
#: Statistics per observable set of separability (weight, act, grad, all).
SET_SIZES = {"weight": 13, "act": 8, "grad": 3, "all": 24}


def _sample_settings(grid, k, seed):
    settings = list(ParameterGrid(grid))
    rng = np.random.RandomState(seed)
    return [settings[i] for i in rng.choice(len(settings), size=min(k, len(settings)), replace=False)]


def _chosen(fitted, settings):
    """The selected setting (the only one when nothing was searched)."""
    return getattr(fitted, "best_params_", settings[0])


def _time(fn):
    """``(fn(), CPU seconds)``: CPU time of this process, so that timings on a loaded
    machine stay comparable (every fit here runs on one thread)."""
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def _accuracy(estimator, X_train, y_train, groups, X_test, y_test):
    """Fit (with ``groups`` when ``fit`` takes them, as lrid's runner does) and score on the test rows."""
    extra = {"groups": groups} if "groups" in inspect.signature(estimator.fit).parameters else {}
    fitted, seconds = _time(lambda: clone(estimator).fit(X_train, y_train, **extra))
    return fitted, seconds, float(np.mean(fitted.predict(X_test) == y_test))


def forest(X_train, y_train, groups, X_test, y_test, seed, quick):
    grid = PAPER_SETTINGS["random_forest"]["grid"]
    if quick:
        grid = {**grid, "n_estimators": [20, 50]}
    est = get_classifier("random_forest", selection="paper", random_state=seed, n_jobs=1, param_grid=grid)
    fitted, seconds, accuracy = _accuracy(est, X_train, y_train, groups, X_test, y_test)
    n, full = len(y_train), PUBLIC_TRAIN_ROWS
    per_fit_full = seconds * (full * np.log(full)) / (n * np.log(n))
    return {"measured_fit_seconds": seconds, "fits_per_selection": 1, "per_selection_seconds_full": per_fit_full,
            "scaling": "n log n in rows", "accuracy": accuracy, "best_params": fitted.best_params_,
            "grid_size": len(ParameterGrid(grid))}


def svm(X_train, y_train, groups, X_test, y_test, seed, n_settings):
    mode = PAPER_SETTINGS["svm"]
    settings = _sample_settings(mode["grid"], n_settings, seed)
    fold_train, _ = next(StratifiedGroupKFold(CV).split(X_train, y_train, groups))
    base = get_classifier("svm", selection="paper", select=False, random_state=seed)
    per_fit = []
    for setting in settings:
        _, seconds = _time(lambda: clone(base).set_params(**setting).fit(X_train[fold_train], y_train[fold_train]))
        per_fit.append(seconds)
    n_fold, n_fold_full = len(fold_train), PUBLIC_TRAIN_ROWS * (CV - 1) / CV
    mean_full = float(np.mean(per_fit)) * n_fold_full / n_fold
    n_grid = len(ParameterGrid(mode["grid"]))
    restricted = get_classifier("svm", selection="paper", random_state=seed,
                                param_grid={k: sorted({s[k] for s in settings}, key=str) for k in settings[0]})
    fitted, _, accuracy = _accuracy(restricted, X_train, y_train, groups, X_test, y_test)
    return {"timed_settings": settings, "measured_seconds_per_fit": per_fit, "fold_rows": n_fold,
            "per_fit_seconds_full": mean_full, "fits_per_selection": n_grid * CV + 1,
            "per_selection_seconds_full": mean_full * (n_grid * CV + 1), "scaling": "linear in rows",
            "accuracy": accuracy, "accuracy_grid": "the timed settings only", "best_params": _chosen(fitted, settings),
            "grid_size": n_grid}


def conv1d(X_train, y_train, groups, X_test, y_test, seed, n_settings, epochs, n_checkpoints=21):
    """Per-step timings extrapolated to 400-epoch fits; accuracy from fits of ``epochs`` epochs."""
    import torch
    from torch.nn import functional as F

    mode = PAPER_SETTINGS["conv1d"]
    architecture = {k: v for k, v in mode["grid"].items() if k != "batch_size"}
    settings = _sample_settings(architecture, n_settings, seed)
    base = get_classifier("conv1d", selection="paper", select=False, random_state=seed, n_checkpoints=n_checkpoints)
    step_seconds = {}
    for batch_size in mode["grid"]["batch_size"]:
        times = []
        rows = np.resize(np.arange(len(y_train)), batch_size)  # a full-width batch of training rows
        for setting in settings:
            est = clone(base).set_params(**setting, batch_size=batch_size, max_epochs=1).fit(X_train, y_train)
            seq, cat = est._split(X_train[rows])
            seq, cat = torch.from_numpy(seq), torch.from_numpy(cat)
            codes = torch.from_numpy(np.searchsorted(est.classes_, y_train[rows]))
            net = est.network_.train()
            opt = torch.optim.Adam(net.parameters(), lr=setting["learning_rate"])
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # as in fit (n_threads=1)
            start = time.process_time()
            for _ in range(5):
                opt.zero_grad()
                F.cross_entropy(est._forward(net, seq, cat), codes).backward()
                opt.step()
            times.append((time.process_time() - start) / 5)
            torch.set_num_threads(threads)
        step_seconds[batch_size] = float(np.mean(times))
    fold_full, train_full = PUBLIC_TRAIN_ROWS * (CV - 1) / CV, PUBLIC_TRAIN_ROWS
    n_arch = len(ParameterGrid(architecture))
    # every (architecture, batch size) on every fold, then one refit of the winner (mean over batch sizes)
    paper_epochs = mode["params"]["max_epochs"]
    search = n_arch * CV * paper_epochs * sum((fold_full // b) * s for b, s in step_seconds.items())
    refit = paper_epochs * float(np.mean([(train_full // b) * s for b, s in step_seconds.items()]))
    per_selection = search + refit
    restricted_grid = {k: sorted({s[k] for s in settings}, key=str) for k in settings[0]}
    restricted_grid["batch_size"] = list(mode["grid"]["batch_size"])
    restricted = get_classifier("conv1d", selection="paper", random_state=seed, n_checkpoints=n_checkpoints,
                                param_grid=restricted_grid, max_epochs=epochs)
    fitted, seconds, accuracy = _accuracy(restricted, X_train, y_train, groups, X_test, y_test)
    return {"timed_settings": settings, "step_seconds": {str(k): v for k, v in step_seconds.items()},
            "epochs_extrapolated": paper_epochs, "epochs_accuracy_fit": epochs,
            "per_selection_seconds_full": per_selection,
            "fits_per_selection": len(ParameterGrid(mode["grid"])) * CV + 1,
            "scaling": "400 epochs x floor(rows / batch) steps x measured seconds per step",
            "accuracy": accuracy, "accuracy_grid": restricted_grid, "accuracy_fit_seconds": seconds,
            "best_params": _chosen(fitted, settings), "grid_size": len(ParameterGrid(mode["grid"]))}


def run(quick=False, rows_per_rule=150, n_settings=3, signal=0.3, seed=0, output=DEFAULT_OUTPUT, key=None):
    """Run the benchmark; return the results dict (also merged into ``output`` under ``key``)."""
    started = time.perf_counter()
    if quick:
        rows_per_rule, n_settings = min(rows_per_rule, 40), 1
    epochs = 4 if quick else PAPER_SETTINGS["conv1d"]["params"]["max_epochs"]
    view, X, y, networks = build_data(signal, seed, rows_per_rule, grouped=True)
    train, test = next(iter(CategoryBalancedSplit(n_splits=1, seed=seed).split(view)))
    args = (X[train], y[train], networks[train], X[test], y[test])
    results = {"random_forest": forest(*args, seed, quick), "svm": svm(*args, seed, n_settings),
               "conv1d": conv1d(*args, seed, n_settings, epochs)}
    set_factor = sum(SET_SIZES.values()) / SET_SIZES["all"]
    for entry in results.values():
        entry["whole_run_seconds_full"] = entry["per_selection_seconds_full"] * N_SPLITS * set_factor
    total = sum(r["whole_run_seconds_full"] for r in results.values())
    doc = {"mode": "quick" if quick else "fraction", "machine": machine(), "seed": seed, "signal": signal,
           "clock": "process_time (CPU seconds, single-threaded fits)", "rows": int(len(y)), "fraction_of_public": len(y) / PUBLIC_ROWS, "train_rows": int(len(train)),
           "n_networks": int(len(np.unique(networks))), "settings_timed": n_settings, "conv1d_epochs": epochs,
           "extrapolated_to": {"train_rows": PUBLIC_TRAIN_ROWS, "splits": N_SPLITS, "observable_sets": SET_SIZES,
                               "set_cost_factor": set_factor},
           "classifiers": results, "whole_run_seconds_full": total,
           "wall_seconds": time.perf_counter() - started}
    print(f"paper protocol on {len(y)} rows ({100 * len(y) / PUBLIC_ROWS:.1f} % of public, "
          f"{doc['n_networks']} networks), {n_settings} timed setting(s) per grid:")
    for name, r in results.items():
        print(f"  {name:14s} test accuracy {r['accuracy']:.3f}; one selection at public size "
              f"~{r['per_selection_seconds_full'] / 3600:.2f} CPU h; whole separability run "
              f"~{r['whole_run_seconds_full'] / 3600:.1f} CPU h ({r['scaling']})")
    print(f"  whole run, all three: ~{total / 3600:.1f} CPU hours on this machine (one core per fit)")
    output = Path(output)
    merged = json.loads(output.read_text()) if output.exists() else {}
    merged[key or doc["mode"]] = doc
    write_json_atomic(output, merged)
    print(f"results written to {output} (key {key or doc['mode']!r})")
    return doc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="CI size: 40 rows per rule, 1 setting, forest up to 50 trees, Conv1D accuracy fit 4 epochs")
    parser.add_argument("--rows-per-rule", type=int, default=150, help="rows of each rule, whole networks")
    parser.add_argument("--settings", type=int, default=3, help="grid settings timed per classifier")
    parser.add_argument("--signal", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--key", default=None)
    args = parser.parse_args(argv)
    run(quick=args.quick, rows_per_rule=args.rows_per_rule, n_settings=args.settings, signal=args.signal,
        seed=args.seed, output=args.output, key=args.key)


if __name__ == "__main__":
    main()
