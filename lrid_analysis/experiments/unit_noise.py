"""Unit subsampling and measurement noise: FA vs IA over unit fraction x noise (Fig. 5).

Uses the recorded measurement grid: rows whose ``unit_fraction < 1`` or
``noise_std > 0`` (statistics recomputed from a random subset of units with
Gaussian noise added; see DESIGN §3), restricted to feedback alignment and
information alignment by default. The networks that have such rows also
give the full-access condition (``unit_fraction = 1``, ``noise_std = 0``),
the top-right cell of each heatmap.

Every (unit_fraction, noise_std) condition is its own dataset: for each
observation seed of that condition, its trajectories are split into
category-balanced (rule-balanced) 75% / 25% splits and classified; the
accuracies of the seeds are averaged per split (so trajectories measured
with different unit draws of the same layer never sit on both sides of a
split), then mean ± s.e.m. over splits. Comparisons: every condition
against full access, per observable set, paired by split.
"""

from __future__ import annotations

from .. import plots
from .cli import cli_kwargs
from .context import prepare
from .options import ExperimentError
from .summaries import compare, summarize

NAME = "unit_noise"
DESCRIPTION = "FA vs IA accuracy over unit fraction x measurement noise, per observable measure (Fig. 5)"
DETAILS = """
Needs data with a unit-subsampling / noise grid (rows with unit_fraction < 1 or
noise_std > 0; the embedded dataset has one for FA and IA, the public dataset does not).
Each (unit fraction, noise std) condition is classified on its own, category-balanced
splits per observation seed, seeds averaged per split. Default observables: weight,
act, grad; default rules: feedback, information.
"""
EXAMPLES = ("python -m lrid_analysis.experiments unit_noise --data embedded",)
DEFAULTS = {"classifiers": ("random_forest",), "observables": ("weight", "act", "grad")}
DEFAULT_RULES = ("feedback", "information")


def add_arguments(parser):
    """``--rules``."""
    group = parser.add_argument_group("unit-noise options")
    group.add_argument("--rules", default=",".join(DEFAULT_RULES), metavar="LIST",
                       help="learning rules to separate (default: feedback,information)")


def _condition_label(unit_fraction, noise_std):
    return f"units={unit_fraction:g}, noise={noise_std:g}"


def noise_grid_mask(meta):
    """Rows measured with unit subsampling or noise."""
    return ((meta["unit_fraction"] < 1.0) | (meta["noise_std"] > 0.0)).to_numpy()


def require_noise_grid(meta):
    """:func:`noise_grid_mask` of ``meta``; an :class:`ExperimentError` (exit 1) when no row is on a grid."""
    grid = noise_grid_mask(meta)
    if not grid.any():
        raise ExperimentError(
            "the data has no unit-subsampling / measurement-noise grid (every trajectory has unit_fraction = 1 "
            "and noise_std = 0); use data recorded with one, e.g. --data embedded, or generate it with "
            "`python -m lrid_generate` (presets with a noise grid)", 1)
    return grid


def grid_measurements(meta):
    """The measurement conditions of a noise grid: ``(levels, [(unit_fraction, noise_std, obs_seed, mask), ...])``.

    ``levels`` are the sorted distinct (unit fraction, noise std) pairs; one
    entry per (level, observation seed) follows, with the boolean row mask of
    its trajectories (one measurement of every network, so splits are drawn
    within it).
    """
    fractions = meta["unit_fraction"].to_numpy(dtype=float)
    noises = meta["noise_std"].to_numpy(dtype=float)
    obs_seeds = meta["obs_seed"].to_numpy()
    levels = sorted(set(zip(fractions.tolist(), noises.tolist())))
    measurements = []
    for uf, ns in levels:
        at_level = (fractions == uf) & (noises == ns)
        for obs_seed in sorted(set(obs_seeds[at_level].tolist())):
            measurements.append((uf, ns, int(obs_seed), at_level & (obs_seeds == obs_seed)))
    return levels, measurements


def run(data=None, *, classifier=None, observables=None, n_splits=10, random_state=0, n_jobs=1, out=None,
        rules=DEFAULT_RULES, **options):
    """Accuracy of separating the rules for every (unit fraction, noise std) and observable set.

    Parameters
    ----------
    data, classifier, observables, n_splits, random_state, n_jobs, out, **options :
        See :func:`lrid_analysis.experiments.separability.run`; default
        classifier random_forest, observables weight, act, grad.
    rules : sequence of str
        Learning rules to separate (default feedback and information).

    Returns
    -------
    ExperimentResult
        ``table``: one row per (observables, unit_fraction, noise_std,
        obs_seed, split); ``tables["by_split"]``: accuracies averaged over
        observation seeds per split.

    Raises
    ------
    ExperimentError
        (exit code 1) when the data has no unit-subsampling / noise grid for
        these rules.
    """
    rules = [r.strip() for r in ([rules] if isinstance(rules, str) else rules) for r in str(r).split(",")
             if r.strip()]
    if len(rules) < 2:
        raise ExperimentError(f"--rules needs at least two rules, got {rules}")
    ctx = prepare(NAME, data, classifier=classifier, observables=observables,
                  default_classifiers=DEFAULTS["classifiers"], default_observables=DEFAULTS["observables"],
                  n_splits=n_splits, random_state=random_state, n_jobs=n_jobs, out=out, full_access=False,
                  extra_params={"rules": rules}, **options)
    if len(ctx.classifiers) != 1:
        raise ExperimentError(f"{NAME} takes one classifier, got {', '.join(ctx.classifiers)}")
    label = next(iter(ctx.classifiers))
    view = ctx.view
    present = sorted(set(view.y))
    missing = [r for r in rules if r not in present]
    if missing:
        raise ExperimentError(f"rule(s) {missing} not in the data; rules present: {', '.join(present)}")
    meta = view.meta
    grid = require_noise_grid(meta)
    in_rules = meta["learning_rule"].isin(rules).to_numpy()
    networks = set(meta.loc[grid & in_rules, "run_id"])
    if not networks:
        grid_rules = sorted(set(meta.loc[grid, "learning_rule"]))
        raise ExperimentError(f"the noise grid covers rules {grid_rules}, not {rules}; choose --rules among them", 1)
    keep = in_rules & meta["run_id"].isin(networks).to_numpy()
    view = view.subset(keep)
    ctx.view = view
    meta = view.meta

    conditions = []
    levels, measurements = grid_measurements(meta)
    if ctx.verbose:
        print(f"      noise grid: {len(networks)} networks of {', '.join(rules)}, {len(levels)} conditions "
              f"(unit fractions {sorted({uf for uf, _ in levels})} x noise std {sorted({ns for _, ns in levels})}), "
              f"{len(view)} trajectories", flush=True)
    for uf, ns, obs_seed, mask in measurements:
        subset = view.subset(mask)
        pairs, names = ctx.balanced_pairs(subset)
        for obs in ctx.observable_sets:
            sub, X = ctx.features(obs, view=subset)
            key = {"classifier": label, "observables": obs, "unit_fraction": uf, "noise_std": ns,
                   "obs_seed": obs_seed, "condition": _condition_label(uf, ns)}
            conditions.append(ctx.condition(key, ctx.classifier(label), X, sub.y, pairs, names,
                                            view=subset, labels=sorted(rules)))
    table, _ = ctx.evaluate(conditions)
    keys = ["classifier", "observables", "unit_fraction", "noise_std", "condition", "split"]
    by_split = table.groupby(keys, sort=False).agg(
        test_accuracy=("test_accuracy", "mean"), n_train=("n_train", "mean"), n_test=("n_test", "mean"),
        n_seeds=("obs_seed", "nunique")).reset_index()
    summary = summarize(by_split, ["observables", "unit_fraction", "noise_std"])
    summary.insert(3, "full_access", (summary["unit_fraction"] == 1.0) & (summary["noise_std"] == 0.0))
    seeds_per = by_split.groupby(["observables", "unit_fraction", "noise_std"], sort=False)["n_seeds"].max()
    summary.insert(4, "n_obs_seeds", seeds_per.to_numpy())
    comparisons = compare(by_split, "condition", within=["observables"], reference=_condition_label(1.0, 0.0),
                          family="condition vs full access")
    def draw():
        return plots.noise_heatmaps(summary, chance=1.0 / len(rules),
                                      title=f"{' vs '.join(plots.rule_label(r) for r in rules)} ({label})")
    return ctx.finish(table, summary, comparisons, draw, tables={"by_split": by_split},
                      seeds={"obs_seeds": sorted({s for _, _, s, _ in measurements})})


def main(args):
    """Command-line entry: ``python -m lrid_analysis.experiments unit_noise``."""
    return run(args.data, rules=args.rules, **cli_kwargs(args, NAME))
