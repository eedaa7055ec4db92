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

import math
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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

#: Public rule names, spelled as in the public dataset.
RULES = ("sgdm", "adam", "feedback", "information")
#: Accepted short names.
RULE_ALIASES = {"fa": "feedback", "ia": "information"}
#: Optimizers that can drive FA / IA training.
BASE_OPTIMIZERS = ("sgdm", "adam")
#: Default weights of the IA local loss (Kunin et al. 2020 reference code).
IA_DEFAULTS = {"alpha": 2e-3, "beta": 1e-3, "gamma": 1e-3}
#: Other IA keywords accepted by :func:`convert` and the IA layers, with defaults.
IA_OPTIONS = {"batch_fraction": 1.0}

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


# --------------------------------------------------------------------------
# autograd functions
# --------------------------------------------------------------------------


class _FeedbackLinearFunction(torch.autograd.Function):
    """``y = x W^T + b``; backward sends ``dy B`` to ``x``, ordinary grads to W, b."""

    @staticmethod
    def forward(x, weight, bias, feedback):
        return F.linear(x, weight, bias)

    @staticmethod
    def setup_context(ctx, inputs, output):  # separate, so torch.func transforms work
        x, weight, bias, feedback = inputs
        ctx.save_for_backward(x, feedback)
        ctx.weight_dtype = weight.dtype
        ctx.has_bias = bias is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None

    @staticmethod
    def backward(ctx, grad_out):
        x, feedback = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out.to(feedback.dtype).matmul(feedback).to(x.dtype)
        if ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2]):
            g2 = grad_out.reshape(-1, grad_out.shape[-1]).to(ctx.weight_dtype)
            if ctx.needs_input_grad[1]:
                x2 = x.reshape(-1, x.shape[-1]).to(ctx.weight_dtype)
                grad_w = g2.t().matmul(x2)
            if ctx.has_bias and ctx.needs_input_grad[2]:
                grad_b = g2.sum(0).to(ctx.bias_dtype)
        return grad_x, grad_w, grad_b, None


class _FeedbackConv2dFunction(torch.autograd.Function):
    """2-D convolution whose input gradient uses the feedback kernel (groups=1)."""

    @staticmethod
    def forward(x, weight, bias, feedback, stride, padding, dilation):
        return F.conv2d(x, weight, bias, stride, padding, dilation, 1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, bias, feedback, stride, padding, dilation = inputs
        ctx.save_for_backward(x, feedback)
        ctx.conf = (stride, padding, dilation)
        ctx.weight_shape = weight.shape
        ctx.weight_dtype = weight.dtype
        ctx.has_bias = bias is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None

    @staticmethod
    def backward(ctx, grad_out):
        x, feedback = ctx.saved_tensors
        stride, padding, dilation = ctx.conf
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = ctx.has_bias and ctx.needs_input_grad[2]
        dtype = ctx.weight_dtype
        # One fused call, as for an ordinary convolution: the input gradient is
        # computed with B in the weight slot; the weight and bias gradients do
        # not depend on the weight's values (same as torch.nn.grad.conv2d_input /
        # conv2d_weight with B and with W).
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad_out.to(dtype), x.to(dtype), feedback.to(dtype),
            [feedback.shape[0]] if need_b else None,
            stride, padding, dilation, False, [0, 0], 1, (need_x, need_w, need_b),
        )
        if grad_x is not None:
            grad_x = grad_x.to(x.dtype)
        if grad_b is not None:
            grad_b = grad_b.to(ctx.bias_dtype)
        return grad_x, grad_w, grad_b, None, None, None, None


class _LocalLossFunction(torch.autograd.Function):
    """A scalar ``R(B)`` whose value and gradient were computed in closed form.

    ``forward(feedback, value, grad)`` returns ``value``; the backward pass
    gives ``feedback`` the gradient ``grad_out * grad``. The only thing kept
    for the backward pass is ``grad`` (the shape of ``B``): no graph through
    the local loss's convolutions is built or stored.
    """

    @staticmethod
    def forward(feedback, value, grad):
        return value.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[2])

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return grad * grad_out.to(grad.dtype), None, None


# --------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------


class AlignmentLayer:
    """Mixin shared by the FA and IA layers.

    Attributes
    ----------
    feedback_weight : torch.Tensor
        ``B``, same shape as ``weight``. A buffer for FA, a parameter for IA.
    rule : str
        ``"feedback"`` or ``"information"``.
    """

    rule = "feedback"
    feedback_trainable = False

    def _register_feedback(self, tensor: torch.Tensor) -> None:
        if self.feedback_trainable:
            self.feedback_weight = nn.Parameter(tensor)
        else:
            self.register_buffer("feedback_weight", tensor)

    def reset_feedback(self, generator: torch.Generator | None = None) -> None:
        """Draw ``B`` with the forward kernel's initializer (see module docs).

        ``B`` is drawn in float32 on the CPU (so the draw does not depend on
        the device) and then cast to the dtype and device of ``weight``.
        """
        init = getattr(self, KERNEL_INIT_ATTR, None) or default_kernel_init
        draw = torch.empty(tuple(self.weight.shape), dtype=torch.float32)
        init(draw, generator=generator)
        with torch.no_grad():
            self.feedback_weight.copy_(draw.to(self.feedback_weight.dtype))

    def extra_repr(self) -> str:  # pragma: no cover - cosmetic
        return super().extra_repr() + f", rule={self.rule}"


class _InformationMixin:
    """IA part: ``B`` is a parameter trained by a local loss computed in training.

    The local loss and its gradient with respect to ``B`` are computed in
    closed form during the training forward pass (see
    :meth:`_information_loss`); the stored loss is a one-node graph whose
    backward pass hands ``B`` that gradient.
    """

    rule = "information"
    feedback_trainable = True

    def _init_information(self, alpha: float, beta: float, gamma: float,
                          batch_fraction: float = 1.0) -> None:
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"IA {name} must be a finite number >= 0, got {value!r}")
        if not (isinstance(batch_fraction, (int, float)) and not isinstance(batch_fraction, bool)
                and 0 < batch_fraction <= 1):
            raise ValueError(f"IA batch_fraction must be a number in (0, 1], got {batch_fraction!r}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.batch_fraction = float(batch_fraction)
        self._local_loss = None

    def _wants_local_loss(self) -> bool:
        return self.training and torch.is_grad_enabled() and self.feedback_weight.requires_grad

    @property
    def last_local_loss(self) -> torch.Tensor | None:
        """Local loss ``R`` of the latest training forward pass (or None).

        A scalar with the exact value of ``R``; calling ``backward`` on it (or
        on a sum containing it) adds the exact ``dR/dB`` to
        ``feedback_weight.grad`` and nothing to any other tensor.
        """
        return self._local_loss

    def clear_local_loss(self) -> None:
        self._local_loss = None

    def __getstate__(self):
        # the stored loss is a graph node: copies and pickles start without it
        state = dict(super().__getstate__())
        state["_local_loss"] = None
        return state

    def _batch_subset(self, x: torch.Tensor, y: torch.Tensor):
        """First ``ceil(batch_fraction * N)`` samples of ``x`` and ``y`` (all when 1)."""
        if self.batch_fraction >= 1.0:
            return x, y
        m = max(1, math.ceil(self.batch_fraction * x.shape[0]))
        return x[:m], y[:m]

    def _information_loss(self, x, y, feedback_adjoint, correlate) -> torch.Tensor:
        """``R`` and its exact gradient with respect to ``B`` without autograd.

        With ``r = B^T y`` (``feedback_adjoint(y)``) and ``C(v)`` the gradient
        with respect to ``B`` of ``<y, B v>`` (``correlate(v, y)``, linear in
        ``v``; ``y^T v`` for a linear layer, the weight-gradient convolution for
        a conv), the adjoint identity ``<y, B v> = <B^T y, v> = <B, C(v)>``
        gives::

            alpha Amp + beta Null = (1/N) (-alpha <r, x> + beta ||r||^2)
            dR/dB = C(-(alpha/N) x + (2 beta/N) r) + 2 gamma B

        so one adjoint product and one correlation (Amp and Null fused in its
        first argument) are all the work, and ``<B, C(.)>`` gives the value.
        When ``beta = 0`` the adjoint product is skipped.

        Parameters
        ----------
        x : torch.Tensor
            Layer input, detached, ``(N, ...)`` in B's dtype.
        y : torch.Tensor
            ``W x`` (forward output minus the bias), detached, ``(N, ...)``.
        """
        B = self.feedback_weight
        Bd = B.detach()
        x, y = self._batch_subset(x, y)
        n = x.shape[0]
        alpha, beta, gamma = self.alpha, self.beta, self.gamma
        r = feedback_adjoint(y) if beta > 0 else None
        if beta > 0:
            # (2 beta / N) C(r - alpha / (2 beta) x); one fused pass builds the argument
            u = torch.add(r, x, alpha=-alpha / (2 * beta)) if alpha > 0 else r
            scale = 2 * beta / n
        else:
            u, scale = x, -alpha / n
        if scale != 0:
            grad = correlate(u, y).mul_(scale)
            value = torch.dot(Bd.reshape(-1), grad.reshape(-1))  # -(a/N)<r,x> + (2b/N)||r||^2
        else:
            grad = torch.zeros_like(Bd)
            value = Bd.new_zeros(())
        if r is not None:
            value = value - (beta / n) * torch.linalg.vector_norm(r).square()
        if gamma > 0:
            w = self.weight.detach().to(Bd.dtype).reshape(-1)
            b = Bd.reshape(-1)
            decay = torch.dot(w, w) + torch.dot(b, b)
            value = value + gamma * decay
            grad.add_(Bd, alpha=2 * gamma)
        return _LocalLossFunction.apply(B, value, grad)

    def extra_repr(self) -> str:  # pragma: no cover - cosmetic
        return (super().extra_repr() + f", alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}"
                + (f", batch_fraction={self.batch_fraction}" if self.batch_fraction < 1 else ""))


class FeedbackLinear(AlignmentLayer, nn.Linear):
    """Linear layer trained with Feedback Alignment.

    Parameters
    ----------
    in_features, out_features, bias, device, dtype
        As for :class:`torch.nn.Linear`.
    kernel_init : callable, optional
        ``init(tensor, generator=None)`` used for ``weight`` and ``B``;
        default :func:`default_kernel_init`.
    generator : torch.Generator, optional
        Random source for the initial ``weight`` and ``B``.

    Notes
    -----
    Input ``(..., in_features)``, output ``(..., out_features)``;
    ``feedback_weight`` has shape ``(out_features, in_features)``.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None,
                 *, kernel_init: Callable | None = None, generator=None):
        nn.Linear.__init__(self, in_features, out_features, bias=bias, device=device, dtype=dtype)
        _setup_alignment(self, kernel_init, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _FeedbackLinearFunction.apply(x, self.weight, self.bias, self.feedback_weight.detach())


class FeedbackConv2d(AlignmentLayer, nn.Conv2d):
    """2-D convolution trained with Feedback Alignment (``groups=1``, zero padding).

    Parameters are those of :class:`torch.nn.Conv2d` plus ``kernel_init`` and
    ``generator`` as in :class:`FeedbackLinear`. ``padding="same"`` is
    accepted when it is symmetric (odd effective kernel size).

    Notes
    -----
    Input ``(N, C_in, H, W)`` or ``(C_in, H, W)``; ``feedback_weight`` has the
    kernel's shape ``(C_out, C_in, kH, kW)``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None, *, kernel_init: Callable | None = None, generator=None):
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                           dilation, groups, bias, padding_mode, device, dtype)
        _check_conv_supported(self, type(self).__name__)
        self.padding = _numeric_padding(self)
        _setup_alignment(self, kernel_init, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unbatched = x.dim() == 3
        if unbatched:
            x = x.unsqueeze(0)
        out = _FeedbackConv2dFunction.apply(
            x, self.weight, self.bias, self.feedback_weight.detach(),
            self.stride, self.padding, self.dilation,
        )
        return out.squeeze(0) if unbatched else out


class InformationLinear(_InformationMixin, FeedbackLinear):
    """Linear layer trained with Information Alignment.

    Parameters as :class:`FeedbackLinear`, plus ``alpha``, ``beta``, ``gamma``
    and ``batch_fraction``.

    Parameters
    ----------
    alpha, beta, gamma : float
        Weights of the local loss (defaults :data:`IA_DEFAULTS`).
    batch_fraction : float
        Fraction of the batch (its first ``ceil(batch_fraction * N)``
        samples, or rows for a linear layer) on which the local loss's batch
        averages are estimated. Default ``1.0``: the exact loss. Smaller
        values make the local loss cheaper at the price of a noisier
        gradient for ``B``.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None,
                 *, kernel_init=None, generator=None, alpha=IA_DEFAULTS["alpha"],
                 beta=IA_DEFAULTS["beta"], gamma=IA_DEFAULTS["gamma"], batch_fraction=1.0):
        FeedbackLinear.__init__(self, in_features, out_features, bias, device, dtype,
                                kernel_init=kernel_init, generator=generator)
        self._init_information(alpha, beta, gamma, batch_fraction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = FeedbackLinear.forward(self, x)
        if self._wants_local_loss():
            self._local_loss = self._linear_local_loss(x.detach(), out.detach())
        return out

    def _linear_local_loss(self, x, out):
        B = self.feedback_weight.detach()
        x2 = x.reshape(-1, self.in_features).to(B.dtype)
        y = out.reshape(-1, self.out_features).to(B.dtype)
        if self.bias is not None:
            y = y - self.bias.detach().to(B.dtype)
        return self._information_loss(
            x2, y,
            feedback_adjoint=lambda y: y.matmul(B),          # r = B^T y, (N, in)
            correlate=lambda v, y: y.t().matmul(v),          # sum_n y_n v_n^T, (out, in)
        )


class InformationConv2d(_InformationMixin, FeedbackConv2d):
    """2-D convolution trained with Information Alignment.

    ``B^T`` is the transposed convolution (the adjoint of ``x -> conv(x, B)``)
    at the layer's stride, padding and dilation, returning the input's
    spatial size. Parameters as :class:`FeedbackConv2d`, plus ``alpha``,
    ``beta``, ``gamma`` and ``batch_fraction`` as in :class:`InformationLinear`
    (the batch fraction takes the first samples of the batch).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None, *, kernel_init=None, generator=None, alpha=IA_DEFAULTS["alpha"],
                 beta=IA_DEFAULTS["beta"], gamma=IA_DEFAULTS["gamma"], batch_fraction=1.0):
        FeedbackConv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                                dilation, groups, bias, padding_mode, device, dtype,
                                kernel_init=kernel_init, generator=generator)
        self._init_information(alpha, beta, gamma, batch_fraction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = FeedbackConv2d.forward(self, x)
        if self._wants_local_loss():
            if x.dim() == 3:
                self._local_loss = self._conv_local_loss(x.detach()[None], out.detach()[None])
            else:
                self._local_loss = self._conv_local_loss(x.detach(), out.detach())
        return out

    def _conv_local_loss(self, x, out):
        B = self.feedback_weight.detach()
        if _POINTWISE_FAST_PATH and self.kernel_size == (1, 1) and self.padding == (0, 0):
            return self._pointwise_local_loss(x, out)
        fmt = _local_memory_format(x)
        x = x.to(B.dtype).contiguous(memory_format=fmt)
        y = _without_bias(out, self.bias, B.dtype, fmt)
        conf = (self.stride, self.padding, self.dilation, False, [0, 0], 1)

        def feedback_adjoint(y):  # B^T y at x's size (torch.nn.grad.conv2d_input)
            if self.in_channels <= _FOLD_ADJOINT_MAX_IN_CHANNELS and y.device.type == "cpu":
                return _folded_adjoint(y, B, x.shape[-2:], self.stride, self.padding, self.dilation)
            return torch.ops.aten.convolution_backward(
                y, x[: y.shape[0]], B, None, *conf, (True, False, False))[0]

        def correlate(v, y):  # d<y, conv(v, B)>/dB (torch.nn.grad.conv2d_weight)
            return torch.ops.aten.convolution_backward(
                y, v, B, None, *conf, (False, True, False))[1]

        return self._information_loss(x, y, feedback_adjoint, correlate)

    def _pointwise_local_loss(self, x, out):
        """1x1 kernel, no padding: a linear map per output pixel.

        Only the input pixels at multiples of the stride reach the output, and
        ``B^T y`` is zero elsewhere, so ``R`` and ``dR/dB`` are those of a linear
        layer applied to the subsampled input: two (batched) matrix products
        instead of a strided transposed convolution.
        """
        B = self.feedback_weight.detach()
        n, c_out, h_out, w_out = out.shape
        sh, sw = self.stride
        x = x[:, :, ::sh, ::sw][:, :, :h_out, :w_out].to(B.dtype)
        x = x.reshape(n, self.in_channels, h_out * w_out)            # (N, C_in, P)
        y = _without_bias(out, self.bias, B.dtype, torch.contiguous_format)
        y = y.reshape(n, c_out, h_out * w_out)                      # (N, C_out, P)
        b = B.reshape(c_out, self.in_channels)
        return self._information_loss(
            x, y,
            feedback_adjoint=lambda y: torch.matmul(b.t(), y),      # (N, C_in, P)
            correlate=lambda v, y: torch.bmm(y, v.transpose(1, 2)).sum(0).view_as(B),
        )


# --------------------------------------------------------------------------
# helpers for the layers
# --------------------------------------------------------------------------

#: Compute the local loss of 1x1 convolutions without padding as a per-pixel
#: linear layer (exact; much faster than a strided transposed convolution).
_POINTWISE_FAST_PATH = True

#: On the CPU, layers with at most this many input channels (the first layer of
#: an image model) compute ``B^T y`` as a matrix product and a fold: 1.6-2.2x
#: faster than the transposed convolution, whose kernels are slow for few
#: output channels; with many input channels the fold is several times slower.
_FOLD_ADJOINT_MAX_IN_CHANNELS = 4


def _folded_adjoint(y, B, size, stride, padding, dilation):
    """``B^T y`` (the transposed convolution) as ``fold(B_mat^T y_mat)``.

    Parameters
    ----------
    y : Tensor, shape (N, C_out, H_out, W_out)
    B : Tensor, shape (C_out, C_in, kh, kw)
    size : (H, W) of the layer input.

    Returns
    -------
    Tensor, shape (N, C_in, H, W)
    """
    n, c_out = y.shape[:2]
    columns = torch.matmul(B.reshape(c_out, -1).t(), y.reshape(n, c_out, -1))  # (N, C_in kh kw, P)
    return F.fold(columns, tuple(size), B.shape[-2:], dilation=dilation, padding=padding, stride=stride)


def _local_memory_format(x: torch.Tensor) -> torch.memory_format:
    """Layout for the local loss's convolutions: ``x``'s own (NCHW unless channels_last)."""
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _without_bias(out, bias, dtype, memory_format) -> torch.Tensor:
    """``out - bias`` (the linear projection ``W x``) in ``dtype`` and ``memory_format``."""
    if bias is None:
        return out.to(dtype).contiguous(memory_format=memory_format)
    y = torch.empty_like(out, dtype=dtype, memory_format=memory_format)
    return torch.sub(out, bias.detach().to(out.dtype).view(1, -1, 1, 1), out=y)


def _setup_alignment(layer, kernel_init, generator) -> None:
    if kernel_init is not None:
        setattr(layer, KERNEL_INIT_ATTR, kernel_init)
        if layer.weight.device.type != "meta":
            with torch.no_grad():
                draw = torch.empty(tuple(layer.weight.shape), dtype=torch.float32)
                kernel_init(draw, generator=generator)
                layer.weight.copy_(draw.to(layer.weight.dtype))
    layer._register_feedback(torch.empty_like(layer.weight))
    if layer.weight.device.type != "meta":
        layer.reset_feedback(generator)


def _check_conv_supported(conv: nn.Conv2d, name: str) -> None:
    if conv.groups != 1:
        raise NotImplementedError(f"{name}: FA/IA convolutions need groups=1, got groups={conv.groups}")
    if conv.padding_mode != "zeros":
        raise NotImplementedError(
            f"{name}: FA/IA convolutions need padding_mode='zeros', got {conv.padding_mode!r}"
        )
    _numeric_padding(conv, name)


def _numeric_padding(conv: nn.Conv2d, name: str = "Conv2d") -> tuple[int, int]:
    pad = conv.padding
    if isinstance(pad, str):
        if pad == "valid":
            return (0, 0)
        # "same" (PyTorch allows it only with stride 1)
        out = []
        for d, k in zip(conv.dilation, conv.kernel_size):
            total = d * (k - 1)
            if total % 2:
                raise NotImplementedError(
                    f"{name}: padding='same' with an even effective kernel size "
                    f"(dilation {d}, kernel {k}) needs asymmetric padding, which FA/IA "
                    "convolutions do not support; pad the input explicitly instead"
                )
            out.append(total // 2)
        return tuple(out)
    return tuple(int(p) for p in pad)


#: Stream tag mixed into convert()'s seed so that the feedback kernels never
#: repeat a weight draw made from the same integer seed.
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


# --------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------


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
