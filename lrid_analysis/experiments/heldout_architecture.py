"""Held-out architecture: train on the other architectures, test on one (Fig. 2b, left).

See :mod:`lrid_analysis.experiments._heldout` for the procedure and the
statistics.
"""

from __future__ import annotations

from ..splits import HeldOutArchitecture
from ._heldout import DEFAULTS, add_arguments, heldout_experiment

__all__ = ["run", "main", "DEFAULTS", "add_arguments"]

NAME = "heldout_architecture"
DESCRIPTION = "held-out architecture: train on the other architectures, test on one (Fig. 2b, left)"
DETAILS = """
For each observable set (weight, act, grad, all), one fold per architecture: train on
all other architectures, test on the held-out one (rule-balanced). The red reference
line is the category-balanced accuracy on all observables (--splits splits).
"""
EXAMPLES = (
    "python -m lrid_analysis.experiments heldout_architecture",
    "python -m lrid_analysis.experiments heldout_architecture --observables act,all --data embedded --n-jobs 2",
)


run, main = heldout_experiment(NAME, HeldOutArchitecture, "architecture", "architectures")
