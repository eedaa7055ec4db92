"""Learning rules: SGDM, Adam, Feedback Alignment (FA) and Information Alignment (IA).

A model is written once with plain :class:`torch.nn.Linear` and
:class:`torch.nn.Conv2d` layers. :func:`convert` turns every such layer into
an alignment layer in place; :func:`make_optimizer` builds the optimizer with
coupled L2 weight decay on kernels only. A training step is then::

    convert(model, "information")
    opt = make_optimizer(model, "information", lr=0.01, weight_decay=1e-4)
    out = model(x)
    (task_loss(out, y) + local_loss(model)).backward()
    opt.step()

Feedback Alignment (Lillicrap et al. 2016)
    The forward pass uses the forward kernel ``W``. In the backward pass the
    error reaches the layer input through a fixed feedback kernel ``B`` of
    ``W``'s shape instead of through ``W``; ``W`` and the bias get their
    ordinary gradients. ``B`` is a buffer (it follows ``.to()``, is saved in
    ``state_dict`` and is not in ``parameters()``) and is never trained.

Information Alignment (Kunin et al. 2020)
    As FA, but ``B`` is a parameter trained only by the layer-local loss
    ``R = alpha * Amp + beta * Null + gamma * Decay`` with ``x`` the layer
    input, ``y = W x`` (no bias, no nonlinearity) and ``N`` the batch size:

    * ``Amp = -(1/N) sum_batch sum_units y * (B x)``,
    * ``Null = (1/N) sum_batch ||B^T y||^2`` (for a convolution ``B^T`` is the
      transposed convolution at the layer's stride, padding and dilation),
    * ``Decay = ||W||^2 + ||B||^2``.

    ``x``, ``W`` and the bias are detached, so ``R`` moves only ``B``; the task
    loss never reaches ``B``. Each IA layer computes ``R`` during a training
    forward pass (``module.training``, gradients enabled and ``B`` requiring
    grad; never in ``eval()`` or under ``no_grad``) and keeps the latest
    value; :func:`local_loss` sums them.

    Implementation: ``R`` and ``dR/dB`` are computed in closed form, without
    autograd. With ``r = B^T y`` and ``u = -(alpha/N) x + (2 beta/N) r``,
    ``dR/dB = y^T u + 2 gamma B`` (linear) or the weight-gradient convolution
    of ``u`` against ``y`` plus ``2 gamma B`` (conv), and
    ``alpha Amp + beta Null = (1/N) (-alpha <r, x> + beta ||r||^2)``. ``y``
    is the forward output minus the bias (``W x`` is not recomputed), so a
    conv layer pays one transposed convolution and one weight-gradient
    convolution per training step. The stored loss is a one-node autograd
    graph with the exact value of ``R`` whose backward pass adds the
    precomputed ``dR/dB`` to ``B.grad``.

Feedback kernels are drawn with the initializer of the forward kernel: a
layer may carry a ``kernel_init`` attribute, a callable
``init(tensor, generator=None)`` that fills ``tensor`` in place (the models in
:mod:`lrid_generate.models` set it to the initializer they used for ``W``);
without it, PyTorch's default ``nn.Linear`` / ``nn.Conv2d`` initializer
(:func:`default_kernel_init`) is used.
"""

from __future__ import annotations

from lrid_generate.rules.convert import (
    alignment_angle,
    alignment_layers,
    convert,
    local_loss,
)
from lrid_generate.rules.layers import (
    AlignmentLayer,
    FeedbackConv2d,
    FeedbackLinear,
    InformationConv2d,
    InformationLinear,
)
from lrid_generate.rules.names import (
    BASE_OPTIMIZERS,
    IA_DEFAULTS,
    IA_OPTIONS,
    RULE_ALIASES,
    RULES,
    canonical_rule,
    default_kernel_init,
)
from lrid_generate.rules.optim import make_optimizer, parameter_groups

__all__ = [
    "RULES",
    "RULE_ALIASES",
    "BASE_OPTIMIZERS",
    "IA_DEFAULTS",
    "IA_OPTIONS",
    "canonical_rule",
    "default_kernel_init",
    "FeedbackLinear",
    "FeedbackConv2d",
    "InformationLinear",
    "InformationConv2d",
    "AlignmentLayer",
    "convert",
    "alignment_layers",
    "local_loss",
    "alignment_angle",
    "parameter_groups",
    "make_optimizer",
]

