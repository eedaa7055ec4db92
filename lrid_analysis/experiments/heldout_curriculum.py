"""Held-out curriculum (batch size x dataset seed): train on the others, test on one (Fig. 2b, middle).

See :mod:`lrid_analysis.experiments._heldout` for the procedure and the
statistics.
"""

from __future__ import annotations

from ..splits import HeldOutCurriculum
from ._heldout import DEFAULTS, add_arguments, heldout_experiment

__all__ = ["run", "main", "DEFAULTS", "add_arguments"]

NAME = "heldout_curriculum"
DESCRIPTION = "held-out curriculum (batch size x dataset seed): train on the others, test on one (Fig. 2b, middle)"
DETAILS = """
For each observable set (weight, act, grad, all), one fold per training curriculum,
i.e. (batch size, dataset randomisation seed) pair (six in the public data): train on
the others, test on the held-out one. The red reference line is the category-balanced
accuracy on all observables (--splits splits).
"""
EXAMPLES = (
    "python -m lrid_analysis.experiments heldout_curriculum",
    "python -m lrid_analysis.experiments heldout_curriculum --observables act,all --data embedded --n-jobs 2",
)


run, main = heldout_experiment(NAME, HeldOutCurriculum, "curriculum", "curricula")
