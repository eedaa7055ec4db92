"""Optimizers of the four rules: coupled L2 decay on kernels only, FA / IA on a base optimizer."""

from __future__ import annotations

import math

import torch
from torch import nn

from lrid_generate.rules.convert import alignment_layers
from lrid_generate.rules.names import BASE_OPTIMIZERS, canonical_rule

__all__ = ["make_optimizer", "parameter_groups"]


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into decayed kernels and the rest.

    Kernels are the ``weight`` of every ``nn.Linear`` / ``nn.Conv2d`` (FA/IA
    layers included). Biases, normalisation parameters and IA feedback
    kernels get no weight decay (the IA ``Decay`` term regularises ``B``).

    Returns
    -------
    list of dict
        ``[{"name": "kernels", "params": [...], "weight_decay": weight_decay},
        {"name": "other", "params": [...], "weight_decay": 0.0}]``; empty
        groups are left out.
    """
    if not (isinstance(weight_decay, (int, float)) and math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    kernel_ids = set()
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)) and module.weight.requires_grad:
            kernel_ids.add(id(module.weight))
    kernels, other, seen = [], [], set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (kernels if id(p) in kernel_ids else other).append(p)
    groups = []
    if kernels:
        groups.append({"name": "kernels", "params": kernels, "weight_decay": float(weight_decay)})
    if other:
        groups.append({"name": "other", "params": other, "weight_decay": 0.0})
    return groups


def make_optimizer(model: nn.Module, rule: str, lr: float, weight_decay: float = 0.0,
                   base_optimizer: str = "sgdm") -> torch.optim.Optimizer:
    """Optimizer for ``model`` trained with ``rule``.

    Parameters
    ----------
    model : nn.Module
        Already converted with :func:`convert` for FA / IA.
    rule : str
        One of :data:`RULES` (or an alias).
    lr : float
        Learning rate.
    weight_decay : float
        Coupled L2 decay on kernels only (gradient ``+ weight_decay * w``, the
        loss term ``weight_decay * sum(w**2) / 2``).
    base_optimizer : {"sgdm", "adam"}
        Optimizer used for FA and IA (ignored for ``"sgdm"`` / ``"adam"``).
        Default ``"sgdm"``, the reference code's default.

    Returns
    -------
    torch.optim.Optimizer
        ``SGD(momentum=0.9, nesterov=True)`` or ``Adam`` with torch defaults.
    """
    rule = canonical_rule(rule)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    base = base_optimizer.strip().lower() if isinstance(base_optimizer, str) else base_optimizer
    if base not in BASE_OPTIMIZERS:
        raise ValueError(f"base_optimizer must be one of {BASE_OPTIMIZERS}, got {base_optimizer!r}")
    layers = [m for _, m in alignment_layers(model)]
    if rule in ("sgdm", "adam"):
        if layers:
            raise ValueError(f"rule {rule!r} is backprop but the model contains FA/IA layers")
        base = rule
    else:
        if not layers:
            raise ValueError(f"rule {rule!r} needs a converted model: call convert(model, {rule!r}) first")
        wrong = {m.rule for m in layers} - {rule}
        if wrong:
            raise ValueError(f"rule {rule!r} but the model contains {sorted(wrong)} layers")
    groups = parameter_groups(model, weight_decay)
    if not groups:
        raise ValueError("model has no trainable parameters")
    if base == "sgdm":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    return torch.optim.Adam(groups, lr=lr)
