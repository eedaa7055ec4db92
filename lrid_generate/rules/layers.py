"""FA and IA layers: ``nn.Linear`` / ``nn.Conv2d`` twins with a feedback kernel ``B``.

See :mod:`lrid_generate.rules` for the rules' definitions.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lrid_generate.rules.functions import (
    _FeedbackConv2dFunction,
    _FeedbackLinearFunction,
    _LocalLossFunction,
)
from lrid_generate.rules.names import IA_DEFAULTS, KERNEL_INIT_ATTR, default_kernel_init

__all__ = ["AlignmentLayer", "FeedbackConv2d", "FeedbackLinear", "InformationConv2d", "InformationLinear"]




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
                          batch_fraction: float = 1.0, spatial_mean: bool = False) -> None:
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
        if not isinstance(spatial_mean, bool):
            raise ValueError(f"IA spatial_mean must be True or False, got {spatial_mean!r}")
        self.spatial_mean = spatial_mean
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

        With ``spatial_mean`` (an option, not the reference definition) ``N``
        is the number of samples times the number of output positions of a
        conv layer, so Amp and Null average over pixels instead of summing
        (the reference sums, which gives early conv layers' ``B`` steps
        hundreds of times larger than the dense layers'); Decay is unchanged.

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
        n = x.shape[0] * (math.prod(y.shape[2:]) if self.spatial_mean else 1)
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
                + (f", batch_fraction={self.batch_fraction}" if self.batch_fraction < 1 else "")
                + (", spatial_mean=True" if self.spatial_mean else ""))


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
    spatial_mean : bool
        Average Amp and Null over a conv layer's output positions instead of
        summing (default False, the reference definition; no effect on a
        linear layer). See :meth:`_information_loss`.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None,
                 *, kernel_init=None, generator=None, alpha=IA_DEFAULTS["alpha"],
                 beta=IA_DEFAULTS["beta"], gamma=IA_DEFAULTS["gamma"], batch_fraction=1.0,
                 spatial_mean=False):
        FeedbackLinear.__init__(self, in_features, out_features, bias, device, dtype,
                                kernel_init=kernel_init, generator=generator)
        self._init_information(alpha, beta, gamma, batch_fraction, spatial_mean)

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
                 beta=IA_DEFAULTS["beta"], gamma=IA_DEFAULTS["gamma"], batch_fraction=1.0,
                 spatial_mean=False):
        FeedbackConv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                                dilation, groups, bias, padding_mode, device, dtype,
                                kernel_init=kernel_init, generator=generator)
        self._init_information(alpha, beta, gamma, batch_fraction, spatial_mean)

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
    """Layout for the local loss's convolutions: ``x``'s own (NCHW unless channels_last; NCHW under vmap)."""
    if torch._C._functorch.is_batchedtensor(x):  # packed training: vmap cannot query other layouts
        return torch.contiguous_format
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _without_bias(out, bias, dtype, memory_format) -> torch.Tensor:
    """``out - bias`` (the linear projection ``W x``) in ``dtype`` and ``memory_format``."""
    if bias is None:
        return out.to(dtype).contiguous(memory_format=memory_format)
    # no out= (torch.func.vmap, used by packed training, has no batching rule for it)
    y = torch.sub(out, bias.detach().to(out.dtype).view(1, -1, 1, 1))
    return y.to(dtype).contiguous(memory_format=memory_format)


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
