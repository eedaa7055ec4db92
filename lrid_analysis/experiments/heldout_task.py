"""Held-out task: train on the other tasks, test on one (Fig. 2b, right).

See :mod:`lrid_analysis.experiments._heldout` for the procedure and the
statistics.
"""

from __future__ import annotations

import sys

from ..splits import HeldOutTask
from ._heldout import DEFAULTS, add_arguments, main_for, run_heldout

__all__ = ["run", "DEFAULTS", "add_arguments"]

NAME = "heldout_task"
DESCRIPTION = "held-out task: train on the other tasks, test on one (Fig. 2b, right)"
DETAILS = """
For each observable set (weight, act, grad, all), one fold per task: train on all
other tasks, test on the held-out one (rule-balanced). The red reference line is the
category-balanced accuracy on all observables (--splits splits). Default classifier:
a random forest of 100 trees with max_features=log2 (--selection compact), which keeps
the public-sized run within minutes on 2 cores; --param max_features=sqrt costs about
2.5x, the paper's OOB grid search (--selection paper) 30x or more.
"""
EXAMPLES = (
    "python -m lrid_analysis.experiments heldout_task",
    "python -m lrid_analysis.experiments heldout_task --observables act,all --data embedded --n-jobs 2",
)


def run(data=None, *, classifier=None, observables=None, n_splits=10, seed=0, n_jobs=1, out=None, reference=True,
        **options):
    """Held-out task accuracy per observable set, with the category-balanced reference.

    Parameters
    ----------
    data : None, "auto", "public", "embedded", path, DataFrame or AnalysisView
    classifier : str, list or estimator, optional
        Default: random_forest; several give a panel each.
    observables : str or list, optional
        Default: weight, act, grad, all.
    n_splits : int
        Category-balanced splits of the reference.
    seed, n_jobs : int
    out : str or Path, optional
    reference : bool
    **options
        filters, params, selection, resume, verbose, progress, plot.

    Returns
    -------
    ExperimentResult
        See :func:`lrid_analysis.experiments._heldout.run_heldout`.
    """
    return run_heldout(NAME, HeldOutTask, "task", data, classifier=classifier, observables=observables,
                       n_splits=n_splits, seed=seed, n_jobs=n_jobs, out=out, reference=reference, **options)


def main(args):
    """Command-line entry: ``python -m lrid_analysis.experiments heldout_task``."""
    return main_for(sys.modules[__name__], args)
