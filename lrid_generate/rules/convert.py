"""Converting a model's layers to FA / IA and summing the IA local losses."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import nn

from lrid_generate.rules.layers import (
    AlignmentLayer,
    FeedbackConv2d,
    FeedbackLinear,
    InformationConv2d,
    InformationLinear,
    _check_conv_supported,
    _InformationMixin,
    _numeric_padding,
)
from lrid_generate.rules.names import (
    IA_DEFAULTS,
    IA_OPTIONS,
    KERNEL_INIT_ATTR,
    canonical_rule,
)

__all__ = ["alignment_angle", "alignment_layers", "convert", "local_loss"]

_FEEDBACK_STREAM = 0xFEEDBAC


def _feedback_generator(seed) -> torch.Generator | None:
    if seed is None:
        return None
    state = np.random.SeedSequence([int(seed), _FEEDBACK_STREAM]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


_CONVERSIONS = {
    ("feedback", nn.Linear): FeedbackLinear,
    ("feedback", nn.Conv2d): FeedbackConv2d,
    ("information", nn.Linear): InformationLinear,
    ("information", nn.Conv2d): InformationConv2d,
}


def _converted_layer(layer: nn.Module, rule: str, name: str, ia_kwargs: dict,
                     generator) -> nn.Module:
    """Build the FA/IA twin of ``layer`` sharing its weight and bias Parameters."""
    base = nn.Linear if type(layer) is nn.Linear else nn.Conv2d
    cls = _CONVERSIONS[(rule, base)]
    kwargs = dict(ia_kwargs) if rule == "information" else {}
    w = layer.weight
    if base is nn.Linear:
        new = cls(layer.in_features, layer.out_features, bias=layer.bias is not None,
                  device="meta", dtype=w.dtype, **kwargs)
    else:
        _check_conv_supported(layer, f"layer {name!r}")
        new = cls(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                  _numeric_padding(layer, f"layer {name!r}"), layer.dilation, 1,
                  layer.bias is not None, "zeros", device="meta", dtype=w.dtype, **kwargs)
    new.weight = w
    new.bias = layer.bias
    init = getattr(layer, KERNEL_INIT_ATTR, None)
    if init is not None:
        setattr(new, KERNEL_INIT_ATTR, init)
    new._register_feedback(torch.empty_like(w, requires_grad=False))
    new.reset_feedback(generator)
    new.train(layer.training)
    return new




def alignment_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(qualified_name, layer)`` for every FA / IA layer of ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, AlignmentLayer):
            yield name, module


def convert(model: nn.Module, rule: str, *, seed: int | None = None, **ia_kwargs) -> nn.Module:
    """Turn every ``nn.Linear`` / ``nn.Conv2d`` of ``model`` into an FA or IA layer, in place.

    Weights and biases are kept (the same ``Parameter`` objects, so their
    ``state_dict`` names do not change); each converted layer gains a
    ``feedback_weight`` entry. Norm layers, nonlinearities, pooling, dropout
    and residual additions are untouched. For ``"sgdm"`` / ``"adam"`` nothing
    changes.

    Parameters
    ----------
    model : nn.Module
        Model built from plain ``nn.Linear`` / ``nn.Conv2d`` layers (``groups=1``,
        zero padding). Create the optimizer after converting.
    rule : str
        One of :data:`RULES` (or an alias).
    seed : int, optional
        Seed for the feedback kernels (drawn in module order on the CPU from a
        generator seeded with ``SeedSequence([seed, stream])``, so reusing the
        weights' seed does not give ``B = W``). ``None`` draws them from
        torch's global random state.
    **ia_kwargs
        ``alpha``, ``beta``, ``gamma`` of the IA local loss and its
        ``batch_fraction`` (IA only; see :class:`InformationConv2d`).

    Returns
    -------
    nn.Module
        ``model`` itself (a new layer when ``model`` is itself a bare layer).
    """
    rule = canonical_rule(rule)
    unknown = set(ia_kwargs) - set(IA_DEFAULTS) - set(IA_OPTIONS)
    if unknown:
        raise TypeError(f"convert() got unknown keyword(s) {sorted(unknown)}; "
                        f"IA accepts {sorted(IA_DEFAULTS) + sorted(IA_OPTIONS)}")
    if ia_kwargs and rule != "information":
        raise ValueError(f"IA keywords {sorted(ia_kwargs)} given for rule {rule!r}")
    existing = [name or "<root>" for name, _ in alignment_layers(model)]
    if existing:
        raise ValueError(
            f"model already contains FA/IA layers ({', '.join(existing[:3])}"
            f"{', ...' if len(existing) > 3 else ''}); convert a freshly built model"
        )
    if rule in ("sgdm", "adam"):
        return model
    generator = _feedback_generator(seed)
    ia = {**IA_DEFAULTS, **IA_OPTIONS, **ia_kwargs}

    targets = []
    for name, module in model.named_modules():
        if type(module) in (nn.Linear, nn.Conv2d):
            targets.append((name, module))
        elif isinstance(module, (nn.Linear, nn.Conv2d)):
            raise TypeError(
                f"layer {name or '<root>'!r} is a {type(module).__name__}, a subclass of "
                "nn.Linear/nn.Conv2d that convert() does not know how to convert"
            )
    if not targets:
        raise ValueError(f"model has no nn.Linear or nn.Conv2d layer to convert to {rule!r}")

    replaced = {}
    for name, module in targets:
        replaced[name] = _converted_layer(module, rule, name or "<root>", ia, generator)
    if "" in replaced:  # the model is a bare layer
        return replaced[""]
    for name, new in replaced.items():
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, new)
    return model


def local_loss(model: nn.Module) -> torch.Tensor:
    """Sum of the IA local losses of the latest training forward pass.

    Returns
    -------
    torch.Tensor
        Scalar; ``0`` (on the model's device) when the model has no IA layer
        or no training forward pass has run.
    """
    losses = [m.last_local_loss for _, m in alignment_layers(model)
              if isinstance(m, _InformationMixin) and m.last_local_loss is not None]
    if losses:
        total = losses[0]
        for value in losses[1:]:
            total = total + value
        return total
    ref = next(iter(model.parameters()), None)
    if ref is None:
        ref = next(iter(model.buffers()), torch.zeros(()))
    return torch.zeros((), dtype=ref.dtype if ref.is_floating_point() else torch.float32,
                       device=ref.device)


def alignment_angle(layer: nn.Module) -> float:
    """Angle in degrees between the flattened forward and feedback kernels.

    Parameters
    ----------
    layer : nn.Module
        An FA/IA layer, or a module containing exactly one.
    """
    if not isinstance(layer, AlignmentLayer):
        found = [m for _, m in alignment_layers(layer)]
        if len(found) != 1:
            raise TypeError(
                f"alignment_angle needs an FA/IA layer (or a module holding exactly one); "
                f"{type(layer).__name__} holds {len(found)}"
            )
        layer = found[0]
    with torch.no_grad():
        w = layer.weight.detach().reshape(-1).double()
        b = layer.feedback_weight.detach().reshape(-1).double()
        denom = w.norm() * b.norm()
        if denom == 0:
            return float("nan")
        cos = torch.clamp(w.dot(b) / denom, -1.0, 1.0)
    return float(torch.rad2deg(torch.arccos(cos)))
