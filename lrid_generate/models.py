"""The network families of Nayebi et al. (2020), each defined once.

Architectures (public spellings, :data:`ARCHITECTURES`):

* ``resnet18``, ``resnet34``: ResNet v1 (post-activation; BN after every
  convolution), layers ``conv0``, ``block_group{g}_{b}/conv{c}``, ``dense``;
  ``c = 0`` is the 1x1 projection shortcut of the first block of every group.
* ``resnet18v2``, ``resnet34v2``: ResNet v2 (pre-activation; BN + ReLU before
  every convolution, none after the stem), layers ``conv0``,
  ``block_layer{g}_{b}/conv{c}``, ``dense``.
* ``alexnet``, ``alexnetlrn``: ``conv1`` .. ``conv5``, ``fc6`` .. ``fc8``,
  dropout 0.5 after ``fc6`` and ``fc7``; the LRN variant normalises after
  ``conv1`` and ``conv2``.
* ``knet``, ``knetlrn`` (KNet4): ``conv1`` .. ``conv3`` (32, 32, 64 filters,
  5x5) and ``fc4``; ``knetc4``, ``knetc4lrn`` (KNet5) add a 128-filter
  ``conv4`` and ``fc5``; the LRN variants normalise after ``pool1`` and
  ``pool2``.

With ``head="simclr"`` the final classifier (``dense`` / ``fc8`` / ``fc4`` /
``fc5``) is replaced by the SimCLR projection head: ``head_contrastive/nl_0``
(dense to the representation size, BN, ReLU) and ``head_contrastive/nl_1``
(dense to the projection size, BN without shift).

Every model is a :class:`LayeredModel` built from plain ``nn.Linear`` /
``nn.Conv2d`` layers, so :func:`lrid_generate.rules.convert` can turn it into
an FA / IA network in place. ``model.observed_layers`` lists the recorded
layers in depth order; it is resolved from module paths on every access, so
it follows converted layers.

Scaling: channel and unit counts are multiplied by ``width`` (rounded, at
least 1). Inputs whose smaller side is below :data:`SMALL_INPUT_SIZE` (64)
get the small-input stem: AlexNet ``conv1`` becomes 3x3 / stride 1 /
padding 1 instead of 11x11 / stride 4 / no padding, and the ResNet stem
becomes a 3x3 / stride 1 ``conv0`` without the stride-2 max-pool instead of
7x7 / stride 2 plus max-pool. Every pooling uses a 3x3 window, stride 2 and
padding 1 (``ceil(n / 2)`` outputs) and strided convolutions are padded, so
every layer keeps a spatial size >= 1 for any input size >= 1.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ARCHITECTURES",
    "HEADS",
    "POSITIONS",
    "SMALL_INPUT_SIZE",
    "NATIVE_INPUT_SHAPES",
    "ObservedLayer",
    "LayeredModel",
    "ConvReLU",
    "LinearReLU",
    "ProjectionHead",
    "ResNet",
    "AlexNet",
    "KNet",
    "build_model",
    "supervised_layer_names",
    "layer_positions",
    "kernel_module",
    "weight_of",
]

#: Public architecture names.
ARCHITECTURES = (
    "resnet18", "resnet18v2", "resnet34", "resnet34v2",
    "alexnet", "alexnetlrn",
    "knet", "knetlrn", "knetc4", "knetc4lrn",
)
#: Output heads: a classifier layer, or the SimCLR projection head.
HEADS = ("classifier", "simclr")
#: Layer position categories (one-hot order of the public ``X_cat``).
POSITIONS = ("early", "middle", "deep")
#: Inputs whose smaller spatial side is below this get the small-input stem.
SMALL_INPUT_SIZE = 64
#: Input shape used when ``build_model`` gets none (the original data sets).
NATIVE_INPUT_SHAPES = {
    **{a: (3, 224, 224) for a in ARCHITECTURES if a.startswith(("resnet", "alexnet"))},
    **{a: (3, 32, 32) for a in ARCHITECTURES if a.startswith("knet")},
}
#: Projection size of the SimCLR head at width 1.
PROJECTION_DIM = 128

_RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
_RESNET_FILTERS = (64, 128, 256, 512)
_HEAD_NAMES = ("head_contrastive/nl_0", "head_contrastive/nl_1")


class ObservedLayer(NamedTuple):
    """One recorded layer.

    Attributes
    ----------
    name : str
        Public layer name, e.g. ``"block_group1_0/conv2"``.
    module : nn.Module
        Maps the layer input to the recorded activation (see
        :class:`LayeredModel`).
    position : str
        ``"early"``, ``"middle"`` or ``"deep"``.
    index : int
        Depth order within the network, from 0.
    """

    name: str
    module: nn.Module
    position: str
    index: int


# --------------------------------------------------------------------------
# kernel initializers (TF1 semantics of the original code)
# --------------------------------------------------------------------------


def _fan_in(tensor: torch.Tensor) -> int:
    return int(tensor.shape[1] * math.prod(tensor.shape[2:]))


def _truncated_normal(tensor, std, generator=None):
    """Normal(0, std) truncated to +-2 std (TF1 ``truncated_normal``), by resampling.

    Faster than ``nn.init.trunc_normal_`` with a generator on large kernels.
    """
    with torch.no_grad():
        flat = tensor.view(-1)
        flat.normal_(0.0, std, generator=generator)
        idx = torch.nonzero(flat.abs() > 2 * std).squeeze(1)
        while idx.numel():
            fresh = torch.empty(idx.numel(), dtype=tensor.dtype, device=tensor.device)
            fresh.normal_(0.0, std, generator=generator)
            flat[idx] = fresh
            idx = idx[fresh.abs() > 2 * std]
    return tensor


def _variance_scaling(tensor, generator=None):
    """TF1 ``variance_scaling_initializer()``: truncated normal, fan-in, scale 1."""
    std = math.sqrt(1.0 / _fan_in(tensor)) / 0.87962566103423978
    return _truncated_normal(tensor, std, generator=generator)


def _normal(tensor, std, generator=None):
    return nn.init.normal_(tensor, 0.0, std, generator=generator)


def _glorot_uniform(tensor, generator=None):
    return nn.init.xavier_uniform_(tensor, generator=generator)


class _Builder:
    """Creates layers and initialises them from one generator, in call order."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def _init(self, layer, init, bias_value):
        layer.kernel_init = init  # read by rules.convert to draw B like W
        with torch.no_grad():
            init(layer.weight, generator=self.generator)
            if layer.bias is not None:
                layer.bias.fill_(bias_value)
        return layer

    def conv(self, cin, cout, kernel, stride=1, padding=0, bias=True, init=_glorot_uniform,
             bias_value=0.0) -> nn.Conv2d:
        return self._init(nn.Conv2d(cin, cout, kernel, stride, padding, bias=bias), init, bias_value)

    def linear(self, fin, fout, bias=True, init=_glorot_uniform, bias_value=0.0) -> nn.Linear:
        return self._init(nn.Linear(fin, fout, bias=bias), init, bias_value)


# --------------------------------------------------------------------------
# small building blocks
# --------------------------------------------------------------------------


class ConvReLU(nn.Module):
    """``relu(conv(x))``: a convolutional layer with its ReLU inside (AlexNet, KNet)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        return F.relu(self.conv(x))


class LinearReLU(nn.Module):
    """``relu(linear(x))``: a fully connected layer with its ReLU inside."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.linear = linear

    def forward(self, x):
        return F.relu(self.linear(x))


class _ScaleBatchNorm1d(nn.Module):
    """Batch normalisation with a learned scale and no shift (TF ``center=False``)."""

    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.norm = nn.BatchNorm1d(num_features, eps=eps, momentum=momentum, affine=False)
        self.weight = nn.Parameter(torch.ones(num_features))

    def forward(self, x):
        return self.norm(x) * self.weight


class ProjectionHead(nn.Module):
    """SimCLR projection head (``head_contrastive``).

    ``nl_0``: dense ``in_dim -> in_dim`` (no bias), BN, ReLU; ``nl_1``: dense
    ``in_dim -> out_dim`` (no bias), BN without shift. Input ``(N, in_dim)``,
    output ``(N, out_dim)``. The recorded activations are the dense outputs
    (before BN), as in the original layer code.
    """

    def __init__(self, build: _Builder, in_dim: int, out_dim: int):
        super().__init__()
        init = partial(_normal, std=0.01)
        self.nl_0 = build.linear(in_dim, in_dim, bias=False, init=init)
        self.bn_0 = nn.BatchNorm1d(in_dim, eps=1e-5, momentum=0.1)
        self.nl_1 = build.linear(in_dim, out_dim, bias=False, init=init)
        self.bn_1 = _ScaleBatchNorm1d(out_dim)

    def forward(self, h):
        return self.bn_1(self.nl_1(F.relu(self.bn_0(self.nl_0(h)))))


def _scaled(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


# --------------------------------------------------------------------------
# positions and kernels
# --------------------------------------------------------------------------


def supervised_layer_names(architecture: str) -> list[str]:
    """Layer names of the supervised (classifier) network in depth order.

    Parameters
    ----------
    architecture : str
        One of :data:`ARCHITECTURES`.
    """
    arch = _check_architecture(architecture)
    if arch.startswith("resnet"):
        depth = int(arch[6:8])
        prefix = "block_layer" if arch.endswith("v2") else "block_group"
        names = ["conv0"]
        for g, n_blocks in enumerate(_RESNET_BLOCKS[depth], start=1):
            for b in range(n_blocks):
                convs = (0, 1, 2) if b == 0 else (1, 2)
                names += [f"{prefix}{g}_{b}/conv{c}" for c in convs]
        return names + ["dense"]
    if arch.startswith("alexnet"):
        return ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    if arch.startswith("knetc4"):
        return ["conv1", "conv2", "conv3", "conv4", "fc5"]
    return ["conv1", "conv2", "conv3", "fc4"]


def layer_positions(supervised_names, head_names=()) -> dict[str, str]:
    """Map layer names to ``early`` / ``middle`` / ``deep``.

    With ``n`` supervised layers in depth order, the first ``n // 3`` are
    early, the next ``n // 3`` middle and the rest deep; head layers are deep.
    The supervised list includes the final classifier even when a SimCLR head
    replaces it, so the backbone keeps the same positions across tasks (as in
    the original project).

    Parameters
    ----------
    supervised_names : sequence of str
        Supervised layer names in depth order.
    head_names : sequence of str
        Extra head layers (all deep).
    """
    names = list(supervised_names)
    k = len(names) // 3
    out = {}
    for i, name in enumerate(names):
        out[name] = POSITIONS[0] if i < k else POSITIONS[1] if i < 2 * k else POSITIONS[2]
    for name in head_names:
        out[name] = POSITIONS[2]
    return out


def kernel_module(module: nn.Module) -> nn.Module:
    """The single ``nn.Linear`` / ``nn.Conv2d`` (possibly FA/IA) inside ``module``.

    ``module`` itself when it is one.
    """
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        return module
    found = [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if len(found) != 1:
        raise ValueError(
            f"{type(module).__name__} holds {len(found)} Linear/Conv2d layers; "
            "an observed layer must hold exactly one"
        )
    return found[0]


def weight_of(module: nn.Module) -> torch.Tensor:
    """The forward kernel ``W`` of an observed layer (never the feedback kernel).

    Returns
    -------
    torch.Tensor
        ``(out_features, in_features)`` or ``(out_channels, in_channels, kH, kW)``.
    """
    return kernel_module(module).weight


# --------------------------------------------------------------------------
# base model
# --------------------------------------------------------------------------


class LayeredModel(nn.Module):
    """A network whose recorded layers are listed in depth order.

    Attributes
    ----------
    architecture : str
    head : str
        ``"classifier"`` or ``"simclr"``.
    input_shape : tuple of int
        ``(C, H, W)`` the model was built for (layer sizes depend on it).
    width : float
    output_dim : int
        Size of the forward output (classes, or the SimCLR projection size).
    config : dict
        Everything needed to rebuild the model with :func:`build_model`.

    Notes
    -----
    ``observed_layers[i].module`` maps the layer input to the recorded
    activation: for ResNet convolutions the ``nn.Conv2d`` itself (output
    before BN); for AlexNet / KNet convolutions a :class:`ConvReLU` (ReLU
    inside the layer), except KNet ``conv1`` whose ReLU follows ``pool1`` as
    in the original, so it is the bare ``nn.Conv2d``; for hidden fully
    connected layers a :class:`LinearReLU`; for the classifier and the SimCLR
    head layers the ``nn.Linear`` (head: before BN and ReLU).
    """

    def __init__(self, architecture, head, input_shape, width, output_dim):
        super().__init__()
        self.architecture = architecture
        self.head = head
        self.input_shape = tuple(input_shape)
        self.width = float(width)
        self.output_dim = int(output_dim)
        self.config: dict = {}
        self._observed_paths: list[tuple[str, str]] = []
        self._classifier_attr: str | None = None

    # -- recorded layers ---------------------------------------------------
    def _set_observed(self, supervised, paths: dict[str, str]) -> None:
        heads = _HEAD_NAMES if self.head == "simclr" else ()
        names = list(supervised[:-1] if heads else supervised) + list(heads)
        self._positions = layer_positions(supervised, heads)
        self._observed_paths = [(n, paths.get(n, n.replace("/", "."))) for n in names]
        for name, path in self._observed_paths:  # fail early on a wrong path
            self.get_submodule(path)

    @property
    def observed_layers(self) -> list[ObservedLayer]:
        """Recorded layers in depth order (resolved now, so conversions are seen)."""
        return [ObservedLayer(name, self.get_submodule(path), self._positions[name], i)
                for i, (name, path) in enumerate(self._observed_paths)]

    @property
    def layer_names(self) -> list[str]:
        """Public names of the recorded layers in depth order."""
        return [name for name, _ in self._observed_paths]

    def observed_layer(self, name: str) -> ObservedLayer:
        """The recorded layer called ``name``."""
        for layer in self.observed_layers:
            if layer.name == name:
                return layer
        raise KeyError(f"{self.architecture} has no recorded layer {name!r}; "
                       f"layers: {self.layer_names}")

    # -- forward -----------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Representation before the classifier / projection head, ``(N, D)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, output_dim)`` (logits or SimCLR projection)."""
        h = self.features(x)
        if self.head == "simclr":
            return self.head_contrastive(h)
        return getattr(self, self._classifier_attr)(h)

    def _make_output(self, build: _Builder, feat_dim: int, n_outputs, classifier_attr, init,
                     projection_dim):
        if self.head == "simclr":
            self.head_contrastive = ProjectionHead(build, feat_dim, projection_dim)
        else:
            self._classifier_attr = classifier_attr
            setattr(self, classifier_attr, build.linear(feat_dim, n_outputs, init=init))

    def _feature_dim(self, fn) -> int:
        with torch.no_grad():
            return int(fn(torch.zeros((1, *self.input_shape))).shape[1])


# --------------------------------------------------------------------------
# ResNet
# --------------------------------------------------------------------------


def _bn2d(channels, momentum):
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=momentum)


class _BlockV1(nn.Module):
    """Post-activation basic block: conv-BN-ReLU-conv-BN, add shortcut, ReLU."""

    def __init__(self, build, cin, cout, stride, projection, momentum):
        super().__init__()
        self.projection = projection
        if projection:
            self.conv0 = build.conv(cin, cout, 1, stride, 0, bias=False, init=_variance_scaling)
            self.bn0 = _bn2d(cout, momentum)
        self.conv1 = build.conv(cin, cout, 3, stride, 1, bias=False, init=_variance_scaling)
        self.bn1 = _bn2d(cout, momentum)
        self.conv2 = build.conv(cout, cout, 3, 1, 1, bias=False, init=_variance_scaling)
        self.bn2 = _bn2d(cout, momentum)
        nn.init.zeros_(self.bn2.weight)  # original: last BN of a block starts at 0

    def forward(self, x):
        shortcut = self.bn0(self.conv0(x)) if self.projection else x
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + shortcut)


class _BlockV2(nn.Module):
    """Pre-activation basic block: BN-ReLU, (projection), conv-BN-ReLU-conv, add."""

    def __init__(self, build, cin, cout, stride, projection, momentum):
        super().__init__()
        self.projection = projection
        self.preact_bn = _bn2d(cin, momentum)
        if projection:
            self.conv0 = build.conv(cin, cout, 1, stride, 0, bias=False, init=_variance_scaling)
        self.conv1 = build.conv(cin, cout, 3, stride, 1, bias=False, init=_variance_scaling)
        self.bn1 = _bn2d(cout, momentum)
        self.conv2 = build.conv(cout, cout, 3, 1, 1, bias=False, init=_variance_scaling)

    def forward(self, x):
        pre = F.relu(self.preact_bn(x))
        shortcut = self.conv0(pre) if self.projection else x
        h = F.relu(self.bn1(self.conv1(pre)))
        return self.conv2(h) + shortcut


class ResNet(LayeredModel):
    """ResNet-18/34, v1 (post-activation) or v2 (pre-activation).

    Full stem (smaller input side >= :data:`SMALL_INPUT_SIZE`): 7x7 / stride 2
    ``conv0`` and a 3x3 / stride 2 max-pool; small stem: 3x3 / stride 1
    ``conv0``, no max-pool. Groups of 64, 128, 256, 512 filters (times
    ``width``) with strides 1, 2, 2, 2; global average pool; ``dense``.
    BN momentum follows the original decays (v1 0.9, v2 0.997, i.e. PyTorch
    momentum 0.1 and 0.003) unless ``build_model(bn_momentum=...)`` sets it,
    epsilon 1e-5. Kernels: TF1 variance scaling (truncated normal, fan-in);
    ``dense``: normal(0, 0.01).
    """

    def __init__(self, architecture, n_outputs, input_shape, width, head, projection_dim, build):
        depth = int(architecture[6:8])
        v2 = architecture.endswith("v2")
        super().__init__(architecture, head, input_shape, width,
                         projection_dim if head == "simclr" else n_outputs)
        self.preactivation = v2
        momentum = getattr(build, "bn_momentum", None) or (0.003 if v2 else 0.1)
        self.bn_momentum = momentum
        cin = input_shape[0]
        c0 = _scaled(64, width)
        self.small_input = min(input_shape[1:]) < SMALL_INPUT_SIZE
        if self.small_input:
            self.conv0 = build.conv(cin, c0, 3, 1, 1, bias=False, init=_variance_scaling)
        else:
            self.conv0 = build.conv(cin, c0, 7, 2, 3, bias=False, init=_variance_scaling)
        if not v2:
            self.bn0 = _bn2d(c0, momentum)
        self.stem_pool = nn.Identity() if self.small_input else nn.MaxPool2d(3, 2, 1)
        prefix = "block_layer" if v2 else "block_group"
        block_cls = _BlockV2 if v2 else _BlockV1
        self._block_names = []
        channels = c0
        for g, (n_blocks, filters) in enumerate(zip(_RESNET_BLOCKS[depth], _RESNET_FILTERS), start=1):
            cout = _scaled(filters, width)
            for b in range(n_blocks):
                stride = (1 if g == 1 else 2) if b == 0 else 1
                name = f"{prefix}{g}_{b}"
                setattr(self, name, block_cls(build, channels, cout, stride, b == 0, momentum))
                self._block_names.append(name)
                channels = cout
        self.final_bn = _bn2d(channels, momentum) if v2 else nn.Identity()
        self._make_output(build, channels, n_outputs, "dense", partial(_normal, std=0.01),
                          projection_dim)
        self._set_observed(supervised_layer_names(architecture), {})

    def features(self, x):
        h = self.conv0(x)
        if not self.preactivation:
            h = F.relu(self.bn0(h))
        h = self.stem_pool(h)
        for name in self._block_names:
            h = getattr(self, name)(h)
        if self.preactivation:
            h = F.relu(self.final_bn(h))
        return h.mean(dim=(2, 3))


# --------------------------------------------------------------------------
# AlexNet
# --------------------------------------------------------------------------


class AlexNet(LayeredModel):
    """AlexNet (Krizhevsky et al. 2012), optionally with LRN after conv1 and conv2.

    ``conv1`` 96 filters 11x11 / stride 4 (small inputs: 3x3 / stride 1 /
    padding 1), max-pool; ``conv2`` 256 5x5, max-pool; ``conv3``, ``conv4``
    384 3x3; ``conv5`` 256 3x3, max-pool; ``fc6``, ``fc7`` 4096 with ReLU and
    dropout 0.5; ``fc8``. Counts are times ``width``. LRN: radius 5, bias 1,
    alpha 1e-4 (TF convention), beta 0.75. Kernels: Glorot uniform for convs,
    truncated normal(0.01) for dense layers; biases 0 except fc6/fc7 (0.1).
    The original TF code used a 4x4 kernel for ``conv4``; the 3x3 of the
    published AlexNet is used here so that every padding is symmetric.
    """

    def __init__(self, architecture, n_outputs, input_shape, width, head, projection_dim, build):
        super().__init__(architecture, head, input_shape, width,
                         projection_dim if head == "simclr" else n_outputs)
        lrn = architecture.endswith("lrn")
        c = [_scaled(n, width) for n in (96, 256, 384, 384, 256)]
        units = _scaled(4096, width)
        self.small_input = min(input_shape[1:]) < SMALL_INPUT_SIZE
        if self.small_input:
            conv1 = build.conv(input_shape[0], c[0], 3, 1, 1)
        else:
            conv1 = build.conv(input_shape[0], c[0], 11, 4, 0)
        self.conv1 = ConvReLU(conv1)
        self.lrn1 = _lrn(5, 1e-4, build.lrn_scale) if lrn else nn.Identity()
        self.pool1 = nn.MaxPool2d(3, 2, 1)
        self.conv2 = ConvReLU(build.conv(c[0], c[1], 5, 1, 2))
        self.lrn2 = _lrn(5, 1e-4, build.lrn_scale) if lrn else nn.Identity()
        self.pool2 = nn.MaxPool2d(3, 2, 1)
        self.conv3 = ConvReLU(build.conv(c[1], c[2], 3, 1, 1))
        self.conv4 = ConvReLU(build.conv(c[2], c[3], 3, 1, 1))
        self.conv5 = ConvReLU(build.conv(c[3], c[4], 3, 1, 1))
        self.pool5 = nn.MaxPool2d(3, 2, 1)
        flat = self._feature_dim(self._conv_features)
        fc_init = partial(_truncated_normal, std=0.01)
        self.fc6 = LinearReLU(build.linear(flat, units, init=fc_init, bias_value=0.1))
        self.drop6 = nn.Dropout(build.dropout)
        self.fc7 = LinearReLU(build.linear(units, units, init=fc_init, bias_value=0.1))
        self.drop7 = nn.Dropout(build.dropout)
        self._make_output(build, units, n_outputs, "fc8", fc_init, projection_dim)
        self._set_observed(supervised_layer_names(architecture), {})

    def _conv_features(self, x):
        h = self.pool1(self.lrn1(self.conv1(x)))
        h = self.pool2(self.lrn2(self.conv2(h)))
        h = self.pool5(self.conv5(self.conv4(self.conv3(h))))
        return h.flatten(1)

    def features(self, x):
        h = self.drop6(self.fc6(self._conv_features(x)))
        return self.drop7(self.fc7(h))


# --------------------------------------------------------------------------
# KNet
# --------------------------------------------------------------------------


def _lrn(radius: int, tf_alpha: float, scale: float = 1.0) -> nn.LocalResponseNorm:
    """LRN with TF parameters: window ``2 radius + 1``; TF alpha multiplies the sum.

    ``scale`` s gives the LRN of activations measured in units s times larger,
    ``LRN(s a) / s = a / (1 + alpha s^2 sum a^2)^0.75`` (see :func:`build_model`).
    """
    size = 2 * radius + 1
    return nn.LocalResponseNorm(size, alpha=tf_alpha * size * scale ** 2, beta=0.75, k=1.0)


class KNet(LayeredModel):
    """Krizhevsky's CIFAR-10 network (cuda-convnet ``cifar10_full``): KNet4 / KNet5.

    ``conv1`` 32 5x5 (pre-ReLU output is recorded; max-pool then ReLU, as in
    the original), ``conv2`` 32 5x5 + ReLU, average pool, ``conv3`` 64 5x5 +
    ReLU, average pool, [``conv4`` 128 5x5 + ReLU, average pool], then
    ``fc4`` / ``fc5``. All convolutions stride 1, padding 2; pools 3x3 /
    stride 2 / padding 1 (average pools exclude the padding, like TF 'SAME').
    LRN variants (radius 3, alpha 5e-5, beta 0.75) after ``pool1`` and
    ``pool2``. Kernels: normal(1e-4) for ``conv1``, normal(0.01) otherwise;
    biases 0. The original omits the ReLU after ``pool1`` in the variant
    without LRN (apparently by accident); it is kept here in both variants.
    """

    def __init__(self, architecture, n_outputs, input_shape, width, head, projection_dim, build):
        super().__init__(architecture, head, input_shape, width,
                         projection_dim if head == "simclr" else n_outputs)
        lrn = architecture.endswith("lrn")
        self.has_conv4 = architecture.startswith("knetc4")
        self.small_input = False  # KNet needs no stem change: pools keep sizes >= 1
        c = [_scaled(n, width) for n in (32, 32, 64, 128)]
        init = partial(_normal, std=0.01)
        self.conv1 = build.conv(input_shape[0], c[0], 5, 1, 2, init=partial(_normal, std=1e-4))
        self.pool1 = nn.MaxPool2d(3, 2, 1)
        self.lrn1 = _lrn(3, 5e-5, build.lrn_scale) if lrn else nn.Identity()
        self.conv2 = ConvReLU(build.conv(c[0], c[1], 5, 1, 2, init=init))
        self.pool2 = nn.AvgPool2d(3, 2, 1, count_include_pad=False)
        self.lrn2 = _lrn(3, 5e-5, build.lrn_scale) if lrn else nn.Identity()
        self.conv3 = ConvReLU(build.conv(c[1], c[2], 5, 1, 2, init=init))
        self.pool3 = nn.AvgPool2d(3, 2, 1, count_include_pad=False)
        if self.has_conv4:
            self.conv4 = ConvReLU(build.conv(c[2], c[3], 5, 1, 2, init=init))
            self.pool4 = nn.AvgPool2d(3, 2, 1, count_include_pad=False)
        flat = self._feature_dim(self.features)
        self._make_output(build, flat, n_outputs, "fc5" if self.has_conv4 else "fc4", init,
                          projection_dim)
        self._set_observed(supervised_layer_names(architecture), {})

    def features(self, x):
        h = self.lrn1(F.relu(self.pool1(self.conv1(x))))
        h = self.lrn2(self.pool2(self.conv2(h)))
        h = self.pool3(self.conv3(h))
        if self.has_conv4:
            h = self.pool4(self.conv4(h))
        return h.flatten(1)


# --------------------------------------------------------------------------
# factory
# --------------------------------------------------------------------------


#: Stream tag mixed into build_model()'s seed (see rules.convert._FEEDBACK_STREAM).
_WEIGHT_STREAM = 0x3E1647


def _weight_generator(seed: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), _WEIGHT_STREAM]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


def _check_architecture(architecture) -> str:
    if not isinstance(architecture, str) or architecture.lower() not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {ARCHITECTURES}")
    return architecture.lower()


def build_model(architecture: str, n_outputs: int | None, input_shape=None, width: float = 1.0,
                head: str = "classifier", seed: int | None = None,
                projection_dim: int | None = None, lrn_scale: float = 1.0,
                dropout: float = 0.5, bn_momentum: float | None = None) -> LayeredModel:
    """Build one of the paper's networks.

    Parameters
    ----------
    architecture : str
        One of :data:`ARCHITECTURES`.
    n_outputs : int or None
        Number of classes (classifier head). Unused with ``head="simclr"``.
    input_shape : tuple of int, optional
        ``(C, H, W)``; default :data:`NATIVE_INPUT_SHAPES` (3x224x224 for
        ResNet / AlexNet, 3x32x32 for KNet). Inputs smaller than
        :data:`SMALL_INPUT_SIZE` on their smaller side use the small stem.
    width : float
        Multiplier of every channel / unit count (rounded, at least 1).
    head : {"classifier", "simclr"}
        Final classifier layer, or the SimCLR projection head in its place.
    seed : int, optional
        Seed of every initial weight (drawn in construction order from one
        ``torch.Generator`` seeded with ``SeedSequence([seed, stream])``). ``None`` draws a seed from torch's global random
        state. The global random state is otherwise left untouched.
    projection_dim : int, optional
        SimCLR projection size; default ``round(128 * width)``.
    lrn_scale : float
        Units of the activations the LRN layers (``alexnetlrn``, ``knetlrn``,
        ``knetc4lrn``) normalise: each LRN computes ``LRN(s a) / s``, i.e.
        the original constants with ``alpha`` times ``s**2``. The original
        constants were set for activations on raw 8-bit pixel inputs; on
        standardised inputs with unit-variance layers (``init_scaling=
        "unit_variance"``) they change activations by ~0.01 % and an LRN
        network trains like its plain twin. ``s = 64`` (about the std of raw
        8-bit pixels) brings the activations to the scale where the
        constants normalise. Default 1 (the constants as published).
    dropout : float
        Dropout probability after AlexNet's ``fc6`` and ``fc7`` (default 0.5,
        the original; other architectures have none). Under SimCLR the two
        views draw independent masks, which can hide the positive pair: on
        8x8 digits AlexNet reached a positive-pair accuracy of 0.015 with
        0.5 and 0.167 with 0 after 6 epochs.
    bn_momentum : float, optional
        PyTorch momentum of the ResNets' batch-norm running statistics;
        default the original decays (v1 0.9 and v2 0.997, i.e. momentum 0.1
        and 0.003). The v2 decay suits ImageNet's ~10^5 steps: after the few
        hundred steps of a small task its running statistics have moved
        only ~40 % of the way from their initial values (on 8x8 digits a
        ResNet-18v2 then scored 1.0 in training mode and 0.23 in evaluation
        mode), so short trainings should pass 0.1.

    Returns
    -------
    LayeredModel
        Input ``(N, C, H, W)``; output ``(N, n_outputs)`` logits or
        ``(N, projection_dim)`` projections. Dropout and BN need ``train()`` /
        ``eval()`` as usual.
    """
    arch = _check_architecture(architecture)
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; expected one of {HEADS}")
    if input_shape is None:
        input_shape = NATIVE_INPUT_SHAPES[arch]
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3 or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise ValueError(f"input_shape must be (C, H, W) with positive ints, got {input_shape!r}")
    if not (isinstance(width, (int, float)) and math.isfinite(width) and width > 0):
        raise ValueError(f"width must be a finite number > 0, got {width!r}")
    if head == "classifier":
        if not (isinstance(n_outputs, int) and not isinstance(n_outputs, bool) and n_outputs >= 1):
            raise ValueError(f"n_outputs must be a positive int for a classifier, got {n_outputs!r}")
    if not (isinstance(lrn_scale, (int, float)) and math.isfinite(lrn_scale) and lrn_scale > 0):
        raise ValueError(f"lrn_scale must be a finite number > 0, got {lrn_scale!r}")
    if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    if bn_momentum is not None and not (isinstance(bn_momentum, (int, float)) and 0 < bn_momentum <= 1):
        raise ValueError(f"bn_momentum must be None or a number in (0, 1], got {bn_momentum!r}")
    if projection_dim is None:
        projection_dim = _scaled(PROJECTION_DIM, width)
    elif not (isinstance(projection_dim, int) and projection_dim >= 1):
        raise ValueError(f"projection_dim must be a positive int, got {projection_dim!r}")
    init_seed = int(torch.randint(0, 2**62, (1,)).item()) if seed is None else int(seed)
    cls = ResNet if arch.startswith("resnet") else AlexNet if arch.startswith("alexnet") else KNet
    with torch.random.fork_rng(devices=[]):  # default inits must not move the global RNG
        build = _Builder(_weight_generator(init_seed))
        build.lrn_scale = float(lrn_scale)
        build.dropout = float(dropout)
        build.bn_momentum = None if bn_momentum is None else float(bn_momentum)
        model = cls(arch, n_outputs, shape, float(width), head, projection_dim, build)
    model.config = {
        "architecture": arch, "n_outputs": n_outputs if head == "classifier" else None,
        "input_shape": shape, "width": float(width), "head": head,
        "projection_dim": projection_dim if head == "simclr" else None,
        "seed": seed, "init_seed": init_seed,
        "stem": "small" if getattr(model, "small_input", False) else "full",
        "lrn_scale": float(lrn_scale), "dropout": float(dropout),
        "bn_momentum": model.bn_momentum if isinstance(model, ResNet) else None,
    }
    return model
