"""Held-out task: train on the other tasks, test on one (Fig. 2b, right).

See :mod:`lrid_analysis.experiments._heldout` for the procedure and the
statistics.
"""

from __future__ import annotations

from ..splits import HeldOutTask
from ._heldout import DEFAULTS, add_arguments, heldout_experiment

__all__ = ["run", "main", "DEFAULTS", "add_arguments"]

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


run, main = heldout_experiment(NAME, HeldOutTask, "task", "tasks")
