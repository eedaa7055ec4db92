"""Learning-rule names, the IA loss defaults and the default kernel initializer."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["BASE_OPTIMIZERS", "IA_DEFAULTS", "IA_OPTIONS", "KERNEL_INIT_ATTR", "RULES", "RULE_ALIASES",
           "canonical_rule", "default_kernel_init"]

#: Public rule names, spelled as in the public dataset.
RULES = ("sgdm", "adam", "feedback", "information")
#: Accepted short names.
RULE_ALIASES = {"fa": "feedback", "ia": "information"}
#: Optimizers that can drive FA / IA training.
BASE_OPTIMIZERS = ("sgdm", "adam")
#: Default weights of the IA local loss (Kunin et al. 2020 reference code).
IA_DEFAULTS = {"alpha": 2e-3, "beta": 1e-3, "gamma": 1e-3}
#: Other IA keywords accepted by :func:`convert` and the IA layers, with defaults.
IA_OPTIONS = {"batch_fraction": 1.0, "spatial_mean": False}

#: Name of the optional attribute holding a layer's kernel initializer.
KERNEL_INIT_ATTR = "kernel_init"


def canonical_rule(rule: str) -> str:
    """Return the public spelling of a learning-rule name.

    Parameters
    ----------
    rule : str
        One of :data:`RULES` or an alias in :data:`RULE_ALIASES`
        (case-insensitive).

    Returns
    -------
    str
        The name in :data:`RULES`.
    """
    if not isinstance(rule, str):
        raise TypeError(f"learning rule must be a string, got {type(rule).__name__}")
    key = rule.strip().lower()
    key = RULE_ALIASES.get(key, key)
    if key not in RULES:
        raise ValueError(
            f"unknown learning rule {rule!r}; expected one of {RULES} "
            f"or an alias in {sorted(RULE_ALIASES)}"
        )
    return key


def default_kernel_init(tensor: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """PyTorch's default ``nn.Linear`` / ``nn.Conv2d`` kernel initializer.

    Kaiming-uniform with ``a = sqrt(5)``, i.e. ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
    """
    return nn.init.kaiming_uniform_(tensor, a=math.sqrt(5), generator=generator)
