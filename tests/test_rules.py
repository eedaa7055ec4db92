"""Tests for lrid_generate.rules: FA / IA layers, conversion, optimizers."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lrid_generate import rules
from lrid_generate.rules import (
    IA_DEFAULTS,
    IA_OPTIONS,
    RULES,
    AlignmentLayer,
    FeedbackConv2d,
    FeedbackLinear,
    InformationConv2d,
    InformationLinear,
    alignment_angle,
    alignment_layers,
    canonical_rule,
    convert,
    local_loss,
    make_optimizer,
    parameter_groups,
)
from lrid_generate.rules.functions import (
    _FeedbackConv2dFunction,
    _FeedbackLinearFunction,
)

torch.set_num_threads(1)

CONV_CONFIGS = [
    dict(stride=1, padding=0, dilation=1, bias=True),
    dict(stride=2, padding=1, dilation=1, bias=False),
    dict(stride=(2, 3), padding=(2, 1), dilation=(2, 1), bias=True),
    dict(stride=3, padding=0, dilation=2, bias=False),
]


def _single(layer):
    """Wrap a layer so convert() can replace it in place; return (model, converted)."""
    model = nn.Sequential(layer)
    return model


def _fa_grads(model, x, g):
    x = x.clone().requires_grad_(True)
    out = model(x)
    out.backward(g)
    layer = model[0]
    return out, x.grad, layer.weight.grad, None if layer.bias is None else layer.bias.grad


# --------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------


def test_canonical_rule_accepts_public_names_and_aliases():
    assert [canonical_rule(r) for r in RULES] == list(RULES)
    assert canonical_rule("FA") == "feedback"
    assert canonical_rule(" ia ") == "information"
    with pytest.raises(ValueError, match="unknown learning rule 'kp'"):
        canonical_rule("kp")


# --------------------------------------------------------------------------
# FA equals backprop when B = W
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_fa_linear_with_feedback_equal_to_weight_is_backprop(bias):
    torch.manual_seed(0)
    ref = nn.Linear(5, 4, bias=bias).double()
    fa = convert(_single(copy.deepcopy(ref)), "feedback", seed=1)
    with torch.no_grad():
        fa[0].feedback_weight.copy_(fa[0].weight)
    x = torch.randn(3, 2, 5, dtype=torch.float64)  # extra leading axis
    g = torch.randn(3, 2, 4, dtype=torch.float64)
    out_fa, gx_fa, gw_fa, gb_fa = _fa_grads(fa, x, g)
    out_bp, gx_bp, gw_bp, gb_bp = _fa_grads(_single(ref), x, g)
    assert torch.allclose(out_fa, out_bp)
    assert torch.allclose(gx_fa, gx_bp)
    assert torch.allclose(gw_fa, gw_bp)
    if bias:
        assert torch.allclose(gb_fa, gb_bp)
    else:
        assert fa[0].bias is None


@pytest.mark.parametrize("conf", CONV_CONFIGS)
def test_fa_conv_with_feedback_equal_to_weight_is_backprop(conf):
    torch.manual_seed(0)
    ref = nn.Conv2d(3, 4, (3, 2), **conf).double()
    fa = convert(_single(copy.deepcopy(ref)), "feedback", seed=1)
    with torch.no_grad():
        fa[0].feedback_weight.copy_(fa[0].weight)
    x = torch.randn(2, 3, 11, 10, dtype=torch.float64)  # sizes not divisible by strides
    g = torch.randn_like(ref(x))
    out_fa, gx_fa, gw_fa, gb_fa = _fa_grads(fa, x, g)
    out_bp, gx_bp, gw_bp, gb_bp = _fa_grads(_single(ref), x, g)
    assert torch.allclose(out_fa, out_bp)
    assert torch.allclose(gx_fa, gx_bp)
    assert torch.allclose(gw_fa, gw_bp)
    if conf["bias"]:
        assert torch.allclose(gb_fa, gb_bp)


# --------------------------------------------------------------------------
# FA: the input gradient goes through B, W and bias get true gradients
# --------------------------------------------------------------------------


def test_fa_linear_input_gradient_is_feedback_product():
    torch.manual_seed(0)
    model = convert(_single(nn.Linear(6, 3).double()), "feedback", seed=2)
    layer = model[0]
    assert not torch.allclose(layer.feedback_weight, layer.weight)
    x = torch.randn(7, 6, dtype=torch.float64)
    g = torch.randn(7, 3, dtype=torch.float64)
    _, gx, _, _ = _fa_grads(model, x, g)
    expected = np.asarray(g) @ np.asarray(layer.feedback_weight)  # dL/dx = g B
    np.testing.assert_allclose(gx.numpy(), expected, rtol=1e-12)


def test_fa_conv_input_gradient_is_feedback_adjoint():
    torch.manual_seed(0)
    model = convert(_single(nn.Conv2d(2, 3, 3, stride=2, padding=1, dilation=1).double()),
                    "feedback", seed=2)
    layer = model[0]
    x = torch.randn(2, 2, 9, 8, dtype=torch.float64)
    g = torch.randn_like(layer(x))
    _, gx, _, _ = _fa_grads(model, x, g)
    # B^T g is the adjoint of the convolution with B: d/dx <conv(x, B), g>
    xr = x.clone().requires_grad_(True)
    (F.conv2d(xr, layer.feedback_weight, None, 2, 1) * g).sum().backward()
    assert torch.allclose(gx, xr.grad)
    assert torch.allclose(gx, torch.nn.grad.conv2d_input(x.shape, layer.feedback_weight, g, 2, 1))
    assert not torch.allclose(gx, torch.nn.grad.conv2d_input(x.shape, layer.weight, g, 2, 1))


@pytest.mark.parametrize("make", [lambda: nn.Linear(4, 3),
                                  lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1)])
def test_fa_weight_and_bias_gradients_pass_gradcheck(make):
    torch.manual_seed(0)
    layer = convert(_single(make().double()), "feedback", seed=3)[0]
    shape = (3, 4) if isinstance(layer, nn.Linear) else (2, 2, 5, 6)
    x = torch.randn(*shape, dtype=torch.float64)  # no input gradient requested
    w = layer.weight.detach().clone().requires_grad_(True)
    b = layer.bias.detach().clone().requires_grad_(True)

    B = layer.feedback_weight

    def fn(w, b):  # the autograd function itself, with w and b as inputs
        if isinstance(layer, nn.Linear):
            return _FeedbackLinearFunction.apply(x, w, b, B)
        return _FeedbackConv2dFunction.apply(x, w, b, B, layer.stride, layer.padding,
                                             layer.dilation)

    assert torch.autograd.gradcheck(fn, (w, b))


# --------------------------------------------------------------------------
# IA local rule
# --------------------------------------------------------------------------


def test_ia_linear_feedback_gradient_matches_hand_rule():
    torch.manual_seed(0)
    alpha, beta, gamma = 0.3, 0.2, 0.1
    model = convert(_single(nn.Linear(5, 3).double()), "information", seed=1,
                    alpha=alpha, beta=beta, gamma=gamma)
    layer = model[0]
    x = torch.randn(8, 5, dtype=torch.float64, requires_grad=True)
    model.train()
    model(x)
    local_loss(model).backward()
    W = layer.weight.detach().numpy()
    B = layer.feedback_weight.detach().numpy()
    X = x.detach().numpy()
    Y = X @ W.T  # y = W x (no bias)
    Rr = Y @ B  # r = B^T y
    n = X.shape[0]
    expected = -(alpha / n) * Y.T @ X + (2 * beta / n) * Y.T @ Rr + 2 * gamma * B
    np.testing.assert_allclose(layer.feedback_weight.grad.numpy(), expected, rtol=1e-10)
    # R moves only B
    assert layer.weight.grad is None and layer.bias.grad is None and x.grad is None
    # value of R from the closed form
    R = (-alpha * np.sum(Y * (X @ B.T)) / n + beta * np.sum(Rr ** 2) / n
         + gamma * (np.sum(W ** 2) + np.sum(B ** 2)))
    assert math.isclose(layer.last_local_loss.item(), R, rel_tol=1e-10)


@pytest.mark.parametrize("in_channels", [3, 6])  # B^T y by fold (few input channels) / transposed conv
@pytest.mark.parametrize("conf", CONV_CONFIGS)
def test_ia_conv_feedback_gradient_matches_explicit_loss(conf, in_channels):
    torch.manual_seed(0)
    alpha, beta, gamma = 0.3, 0.2, 0.1
    model = convert(_single(nn.Conv2d(in_channels, 4, 3, **conf).double()), "information", seed=1,
                    alpha=alpha, beta=beta, gamma=gamma)
    layer = model[0]
    x = torch.randn(2, in_channels, 11, 10, dtype=torch.float64)
    assert (in_channels <= rules.layers._FOLD_ADJOINT_MAX_IN_CHANNELS) == (in_channels == 3)  # both paths run
    model.train()
    model(x)
    local_loss(model).backward()
    got = layer.feedback_weight.grad.clone()

    # explicit R; B^T y written as the adjoint of x -> conv(x, B)
    W = layer.weight.detach()
    B = layer.feedback_weight.detach().clone().requires_grad_(True)
    kw = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation)
    y = F.conv2d(x, W, None, **kw)
    n = x.shape[0]
    amp = -(y * F.conv2d(x, B, None, **kw)).sum() / n
    probe = torch.zeros_like(x, requires_grad=True)
    (bt_y,) = torch.autograd.grad((F.conv2d(probe, B, None, **kw) * y).sum(), probe,
                                  create_graph=True)
    null = bt_y.pow(2).sum() / n
    R = alpha * amp + beta * null + gamma * (W.pow(2).sum() + B.pow(2).sum())
    R.backward()
    assert torch.allclose(got, B.grad, rtol=1e-9, atol=1e-12)
    assert math.isclose(layer.last_local_loss.item(), R.item(), rel_tol=1e-9)
    assert layer.weight.grad is None


def _explicit_conv_loss(layer, x, alpha, beta, gamma):
    """R written out with autograd (B^T y as the adjoint of x -> conv(x, B)); returns (R, dR/dB)."""
    W = layer.weight.detach()
    B = layer.feedback_weight.detach().clone().requires_grad_(True)
    kw = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation)
    y = F.conv2d(x, W, None, **kw)
    n = x.shape[0]
    amp = -(y * F.conv2d(x, B, None, **kw)).sum() / n
    probe = torch.zeros_like(x, requires_grad=True)
    (bt_y,) = torch.autograd.grad((F.conv2d(probe, B, None, **kw) * y).sum(), probe,
                                  create_graph=True)
    null = bt_y.pow(2).sum() / n
    R = alpha * amp + beta * null + gamma * (W.pow(2).sum() + B.pow(2).sum())
    R.backward()
    return R.detach(), B.grad


POINTWISE_CONFIGS = [
    dict(stride=1, bias=True),
    dict(stride=2, bias=False),
    dict(stride=(3, 2), bias=True),
]


@pytest.mark.parametrize("conf", POINTWISE_CONFIGS)
def test_ia_pointwise_conv_fast_path_matches_explicit_loss(conf, monkeypatch):
    # 1x1 convolutions take the per-pixel linear path; compare it with the
    # explicit loss and with the general (transposed-convolution) path
    torch.manual_seed(0)
    alpha, beta, gamma = 0.3, 0.2, 0.1
    model = convert(_single(nn.Conv2d(3, 5, 1, **conf).double()), "information", seed=1,
                    alpha=alpha, beta=beta, gamma=gamma)
    layer = model[0]
    x = torch.randn(4, 3, 11, 10, dtype=torch.float64)  # sizes not divisible by strides
    model.train()
    model(x)
    local_loss(model).backward()
    R, grad = _explicit_conv_loss(layer, x, alpha, beta, gamma)
    assert torch.allclose(layer.feedback_weight.grad, grad, rtol=1e-9, atol=1e-12)
    assert math.isclose(layer.last_local_loss.item(), R.item(), rel_tol=1e-9)

    monkeypatch.setattr(rules.layers, "_POINTWISE_FAST_PATH", False)
    layer.feedback_weight.grad = None
    model(x)
    local_loss(model).backward()
    assert torch.allclose(layer.feedback_weight.grad, grad, rtol=1e-9, atol=1e-12)
    assert math.isclose(layer.last_local_loss.item(), R.item(), rel_tol=1e-9)


@pytest.mark.parametrize("alpha,beta,gamma", [(0.3, 0.0, 0.1), (0.0, 0.2, 0.0), (0.0, 0.0, 0.1),
                                              (0.0, 0.0, 0.0)])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_ia_zero_weights_in_the_local_loss(alpha, beta, gamma, kind):
    # the closed form has separate branches for beta = 0 (no B^T y) and alpha = 0
    torch.manual_seed(0)
    make = (lambda: nn.Linear(5, 3)) if kind == "linear" else (lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1))
    model = convert(_single(make().double()), "information", seed=1,
                    alpha=alpha, beta=beta, gamma=gamma)
    layer = model[0]
    x = torch.randn(*((6, 5) if kind == "linear" else (3, 2, 7, 6)), dtype=torch.float64)
    model.train()
    model(x)
    local_loss(model).backward()
    if kind == "conv":
        R, grad = _explicit_conv_loss(layer, x, alpha, beta, gamma)
    else:
        W = layer.weight.detach().numpy()
        B = layer.feedback_weight.detach().numpy()
        X = x.numpy()
        Y = X @ W.T
        n = X.shape[0]
        grad = torch.from_numpy(-(alpha / n) * Y.T @ X + (2 * beta / n) * Y.T @ (Y @ B)
                                + 2 * gamma * B)
        R = torch.tensor(-alpha * np.sum(Y * (X @ B.T)) / n + beta * np.sum((Y @ B) ** 2) / n
                         + gamma * (np.sum(W ** 2) + np.sum(B ** 2)))
    assert torch.allclose(layer.feedback_weight.grad, grad, rtol=1e-9, atol=1e-12)
    assert math.isclose(layer.last_local_loss.item(), R.item(), rel_tol=1e-9, abs_tol=1e-12)


def test_ia_local_loss_keeps_no_graph_and_scales_with_upstream_gradient():
    torch.manual_seed(0)
    model = convert(_single(nn.Conv2d(2, 3, 3, padding=1).double()), "ia", seed=0,
                    alpha=0.3, beta=0.2, gamma=0.1)
    layer = model[0]
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    model(x)
    loss = layer.last_local_loss
    # the stored loss is one node whose only input is B (no activations kept)
    parents = [f for f, _ in loss.grad_fn.next_functions if f is not None]
    assert len(parents) == 1 and parents[0].variable is layer.feedback_weight
    (3.0 * loss).backward()
    _, grad = _explicit_conv_loss(layer, x, 0.3, 0.2, 0.1)
    assert torch.allclose(layer.feedback_weight.grad, 3.0 * grad, rtol=1e-9, atol=1e-12)


def test_ia_local_loss_skipped_when_feedback_is_frozen():
    model = convert(nn.Sequential(nn.Linear(3, 2)), "ia", seed=0).train()
    model[0].feedback_weight.requires_grad_(False)
    model(torch.randn(4, 3))
    assert model[0].last_local_loss is None and float(local_loss(model)) == 0.0


def test_ia_channels_last_input_gives_the_same_loss():
    torch.manual_seed(0)
    model = convert(_single(nn.Conv2d(4, 6, 3, stride=2, padding=1).double()), "ia", seed=0,
                    alpha=0.3, beta=0.2, gamma=0.1)
    x = torch.randn(3, 4, 9, 9, dtype=torch.float64)
    model(x)
    local_loss(model).backward()
    expected = (model[0].last_local_loss.item(), model[0].feedback_weight.grad.clone())
    model[0].feedback_weight.grad = None
    model.to(memory_format=torch.channels_last)
    model(x.contiguous(memory_format=torch.channels_last))
    local_loss(model).backward()
    assert math.isclose(model[0].last_local_loss.item(), expected[0], rel_tol=1e-12)
    assert torch.allclose(model[0].feedback_weight.grad, expected[1], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kind", ["linear", "conv", "pointwise"])
def test_ia_batch_fraction_uses_the_first_samples(kind):
    # batch_fraction f estimates R on the first ceil(f N) samples: equal to the
    # exact loss of a twin layer fed only those samples
    torch.manual_seed(0)
    make = {"linear": lambda: nn.Linear(5, 3),
            "conv": lambda: nn.Conv2d(2, 3, 3, padding=1),
            "pointwise": lambda: nn.Conv2d(2, 3, 1, stride=2)}[kind]
    base = make().double()
    shape = (10, 5) if kind == "linear" else (10, 2, 6, 5)
    x = torch.randn(*shape, dtype=torch.float64)
    part = convert(_single(copy.deepcopy(base)), "ia", seed=1, alpha=0.3, beta=0.2, gamma=0.1,
                   batch_fraction=0.25)
    full = convert(_single(copy.deepcopy(base)), "ia", seed=1, alpha=0.3, beta=0.2, gamma=0.1)
    assert part[0].batch_fraction == 0.25 and full[0].batch_fraction == 1.0
    part(x)
    full(x[:3])  # ceil(0.25 * 10) = 3
    local_loss(part).backward()
    local_loss(full).backward()
    assert torch.allclose(part[0].feedback_weight.grad, full[0].feedback_weight.grad, rtol=1e-12)
    assert math.isclose(part[0].last_local_loss.item(), full[0].last_local_loss.item(), rel_tol=1e-12)
    exact = convert(_single(copy.deepcopy(base)), "ia", seed=1, alpha=0.3, beta=0.2, gamma=0.1)
    exact(x)
    assert not math.isclose(exact[0].last_local_loss.item(), part[0].last_local_loss.item(),
                            rel_tol=1e-6)


def test_ia_batch_fraction_validation():
    for bad in (0.0, 1.5, -0.1, float("nan"), True, "half"):
        with pytest.raises(ValueError, match="batch_fraction"):
            InformationLinear(3, 2, batch_fraction=bad)
    with pytest.raises(ValueError, match="IA keywords"):
        convert(nn.Sequential(nn.Linear(3, 2)), "fa", batch_fraction=0.5)
    layer = convert(nn.Sequential(nn.Linear(3, 2)), "ia", batch_fraction=0.5)[0]
    assert layer.batch_fraction == 0.5 and IA_OPTIONS == {"batch_fraction": 1.0, "spatial_mean": False}


@pytest.mark.parametrize("kind", ["conv", "pointwise", "linear"])
def test_ia_spatial_mean_averages_amp_and_null_over_output_positions(kind):
    # option (not the reference): Amp and Null divided by N * H_out * W_out, Decay unchanged;
    # oracle: the explicit R written with that normalisation, differentiated by autograd
    torch.manual_seed(0)
    alpha, beta, gamma = 0.3, 0.2, 0.1
    base = {"conv": lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1),
            "pointwise": lambda: nn.Conv2d(3, 4, 1, stride=2),
            "linear": lambda: nn.Linear(5, 4)}[kind]().double()
    x = torch.randn(*((6, 5) if kind == "linear" else (6, 3, 9, 8)), dtype=torch.float64)
    model = convert(_single(copy.deepcopy(base)), "ia", seed=1, alpha=alpha, beta=beta, gamma=gamma,
                    spatial_mean=True)
    layer = model[0]
    model.train()
    model(x)
    local_loss(model).backward()
    W = layer.weight.detach()
    B = layer.feedback_weight.detach().clone().requires_grad_(True)
    if kind == "linear":
        forward = lambda inp, k: inp @ k.T  # noqa: E731
    else:
        forward = lambda inp, k: F.conv2d(inp, k, None, stride=layer.stride, padding=layer.padding)  # noqa: E731
    y = forward(x, W)
    positions = 1 if kind == "linear" else y.shape[2] * y.shape[3]
    probe = torch.zeros_like(x, requires_grad=True)
    (bt_y,) = torch.autograd.grad((forward(probe, B) * y).sum(), probe, create_graph=True)
    denominator = x.shape[0] * positions
    R = (-alpha * (y * forward(x, B)).sum() / denominator + beta * bt_y.pow(2).sum() / denominator
         + gamma * (W.pow(2).sum() + B.pow(2).sum()))
    R.backward()
    assert torch.allclose(layer.feedback_weight.grad, B.grad, rtol=1e-9, atol=1e-12)
    assert math.isclose(layer.last_local_loss.item(), R.item(), rel_tol=1e-9)
    reference = convert(_single(copy.deepcopy(base)), "ia", seed=1, alpha=alpha, beta=beta, gamma=gamma)
    reference(x)
    assert math.isclose(reference[0].last_local_loss.item(), R.item(), rel_tol=1e-9) == (kind == "linear")
    with pytest.raises(ValueError, match="spatial_mean"):
        InformationLinear(3, 2, spatial_mean=1)


def test_task_loss_never_reaches_feedback_weights():
    torch.manual_seed(0)
    model = convert(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)), "information")
    model(torch.randn(5, 4)).pow(2).sum().backward()  # task loss only
    for _, layer in alignment_layers(model):
        assert layer.feedback_weight.grad is None
        assert layer.weight.grad is not None


def test_fa_feedback_is_a_buffer_and_ia_feedback_a_parameter():
    fa = convert(nn.Sequential(nn.Linear(3, 2)), "fa")
    ia = convert(nn.Sequential(nn.Linear(3, 2)), "ia")
    assert "0.feedback_weight" in dict(fa.named_buffers())
    assert "0.feedback_weight" not in dict(fa.named_parameters())
    assert "0.feedback_weight" in fa.state_dict()
    assert "0.feedback_weight" in dict(ia.named_parameters())
    assert isinstance(fa[0], FeedbackLinear) and not isinstance(fa[0], InformationLinear)
    assert isinstance(ia[0], InformationLinear)


def test_local_loss_only_in_training_forward():
    model = convert(nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2)), "ia", seed=0)
    assert float(local_loss(model)) == 0.0
    model.eval()
    model(torch.randn(4, 3))
    assert float(local_loss(model)) == 0.0
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3))
    assert float(local_loss(model)) == 0.0
    model(torch.randn(4, 3))
    total = local_loss(model)
    parts = [m.last_local_loss for _, m in alignment_layers(model)]
    assert total.dim() == 0 and len(parts) == 2
    assert torch.allclose(total, parts[0] + parts[1])
    bp = nn.Sequential(nn.Linear(3, 2))
    assert float(local_loss(bp)) == 0.0


# --------------------------------------------------------------------------
# training behaviour
# --------------------------------------------------------------------------


def _classification_data(seed=0, n=96):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 6, 6, generator=g)
    # planted signal: class = which image quadrant has the largest mean
    q = torch.stack([x[:, 0, :3, :3].mean((1, 2)), x[:, 0, :3, 3:].mean((1, 2)),
                     x[:, 0, 3:, :].mean((1, 2))], 1)
    return x, q.argmax(1)


def _small_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.Flatten(), nn.Linear(6 * 36, 16), nn.ReLU(), nn.Linear(16, 3))


def _train(model, rule, x, y, steps, lr, base="sgdm"):
    opt = make_optimizer(model, rule, lr=lr, weight_decay=1e-4, base_optimizer=base)
    losses = []
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        (loss + local_loss(model)).backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_lowers_the_training_loss(rule):
    x, y = _classification_data()
    model = convert(_small_net(), rule, seed=0)
    lr = 0.01 if rule == "adam" else 0.05
    losses = _train(model, rule, x, y, steps=60, lr=lr)
    assert np.mean(losses[-5:]) < 0.7 * losses[0]


def test_fa_feedback_does_not_move_and_ia_feedback_aligns():
    x, y = _classification_data(seed=1)
    fa = convert(_small_net(1), "feedback", seed=0)
    before_fa = {n: m.feedback_weight.clone() for n, m in alignment_layers(fa)}
    angle_fa = alignment_angle(fa[4])
    _train(fa, "feedback", x, y, steps=40, lr=0.05)
    for n, m in alignment_layers(fa):
        assert torch.equal(m.feedback_weight, before_fa[n])
    assert alignment_angle(fa[4]) == pytest.approx(angle_fa, abs=5.0)  # W moves, B not

    # IA with a strong local loss: B learns to decode W x and turns toward W
    ia = convert(_small_net(1), "information", seed=0, alpha=0.02, beta=0.01, gamma=1e-3)
    angles_before = [alignment_angle(m) for _, m in alignment_layers(ia)]
    _train(ia, "information", x, y, steps=40, lr=0.05)
    angles_after = [alignment_angle(m) for _, m in alignment_layers(ia)]
    assert all(a > 70 for a in angles_before)  # random B starts near-orthogonal
    assert all(after < before - 10 for before, after in zip(angles_before, angles_after))


# --------------------------------------------------------------------------
# optimizer and weight decay
# --------------------------------------------------------------------------


def _net_with_norm():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 16, 3))


@pytest.mark.parametrize("rule", RULES)
def test_weight_decay_applies_only_to_kernels(rule):
    model = convert(_net_with_norm(), rule, seed=0)
    lr, wd = 0.1, 0.05
    opt = make_optimizer(model, rule, lr=lr, weight_decay=wd)
    kernels = {id(model[0].weight), id(model[3].weight)}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # only weight decay drives this step
    opt.step()
    for name, p in model.named_parameters():
        if id(p) in kernels:
            if isinstance(opt, torch.optim.SGD):
                # Nesterov first step: buf = wd w; update = wd w + 0.9 buf
                expected = before[name] * (1 - lr * wd * 1.9)
                assert torch.allclose(p, expected), name
            else:
                assert not torch.allclose(p, before[name]), name
        else:
            assert torch.equal(p, before[name]), name
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["kernels"]["weight_decay"] == wd and groups["other"]["weight_decay"] == 0.0
    if rule == "information":
        assert any(p is model[0].feedback_weight for p in groups["other"]["params"])


def test_make_optimizer_types_and_errors():
    model = nn.Sequential(nn.Linear(3, 2))
    opt = make_optimizer(model, "sgdm", lr=0.1)
    assert isinstance(opt, torch.optim.SGD)
    assert opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"]
    assert isinstance(make_optimizer(model, "adam", lr=0.1), torch.optim.Adam)
    with pytest.raises(ValueError, match="call convert"):
        make_optimizer(model, "feedback", lr=0.1)
    convert(model, "fa")
    assert isinstance(make_optimizer(model, "fa", lr=0.1, base_optimizer="adam"), torch.optim.Adam)
    assert isinstance(make_optimizer(model, "fa", lr=0.1), torch.optim.SGD)
    with pytest.raises(ValueError, match="backprop"):
        make_optimizer(model, "sgdm", lr=0.1)
    with pytest.raises(ValueError, match="contains"):
        make_optimizer(model, "information", lr=0.1)
    with pytest.raises(ValueError, match="base_optimizer"):
        make_optimizer(model, "fa", lr=0.1, base_optimizer="rmsprop")
    with pytest.raises(ValueError, match="lr"):
        make_optimizer(model, "fa", lr=0.0)
    groups = parameter_groups(model, 0.1)
    assert [len(g["params"]) for g in groups] == [1, 1]


# --------------------------------------------------------------------------
# conversion
# --------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["feedback", "information"])
def test_convert_keeps_parameters_and_state_dict_names(rule):
    model = _net_with_norm()
    params = {name: p for name, p in model.named_parameters()}
    keys = set(model.state_dict())
    convert(model, rule, seed=0)
    new_keys = set(model.state_dict())
    assert keys <= new_keys
    assert new_keys - keys == {"0.feedback_weight", "3.feedback_weight"}
    for name, p in model.named_parameters():
        if not name.endswith("feedback_weight"):
            assert p is params[name]
    assert isinstance(model[0], (FeedbackConv2d, InformationConv2d))
    assert isinstance(model[1], nn.BatchNorm2d) and not isinstance(model[1], AlignmentLayer)
    with pytest.raises(ValueError, match="already contains"):
        convert(model, rule)


def test_convert_backprop_rules_are_noops_and_errors_are_clear():
    model = _net_with_norm()
    before = [type(m) for m in model.modules()]
    for rule in ("sgdm", "adam"):
        assert convert(model, rule) is model
    assert [type(m) for m in model.modules()] == before
    with pytest.raises(ValueError, match="unknown learning rule"):
        convert(model, "hebb")
    with pytest.raises(TypeError, match="unknown keyword"):
        convert(model, "ia", delta=1.0)
    with pytest.raises(ValueError, match="IA keywords"):
        convert(model, "fa", alpha=1.0)
    with pytest.raises(NotImplementedError, match="groups=1"):
        convert(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2)), "fa")
    with pytest.raises(ValueError, match="no nn.Linear"):
        convert(nn.Sequential(nn.ReLU()), "fa")


def test_feedback_drawn_with_the_kernel_initializer_and_seed():
    def wide(tensor, generator=None):
        return nn.init.normal_(tensor, 0.0, 0.5, generator=generator)

    layer = nn.Linear(200, 100)
    layer.kernel_init = wide
    a = convert(nn.Sequential(copy.deepcopy(layer)), "fa", seed=4)[0].feedback_weight
    b = convert(nn.Sequential(copy.deepcopy(layer)), "fa", seed=4)[0].feedback_weight
    c = convert(nn.Sequential(copy.deepcopy(layer)), "fa", seed=5)[0].feedback_weight
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.std()) == pytest.approx(0.5, rel=0.03)
    # without kernel_init: PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    d = convert(nn.Sequential(nn.Linear(200, 100)), "fa", seed=4)[0].feedback_weight
    bound = 1 / math.sqrt(200)
    assert float(d.abs().max()) <= bound and float(d.std()) == pytest.approx(bound / math.sqrt(3), rel=0.03)


@pytest.mark.parametrize("rule", ["feedback", "information"])
def test_to_dtype_moves_feedback(rule):
    model = convert(_net_with_norm(), rule, seed=0).to(torch.float64)
    for _, layer in alignment_layers(model):
        assert layer.feedback_weight.dtype == torch.float64
    model.train()
    out = model(torch.randn(4, 1, 6, 6, dtype=torch.float64))
    (out.sum() + local_loss(model)).backward()
    assert model[0].weight.grad.dtype == torch.float64


def test_alignment_angle_closed_forms():
    layer = convert(nn.Sequential(nn.Linear(2, 2)), "fa")[0]
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
        layer.feedback_weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    assert alignment_angle(layer) == pytest.approx(45.0)
    with torch.no_grad():
        layer.feedback_weight.copy_(-3 * layer.weight)
    assert alignment_angle(layer) == pytest.approx(180.0)
    with pytest.raises(TypeError, match="FA/IA layer"):
        alignment_angle(nn.Linear(2, 2))


def test_unbatched_conv_and_standalone_layers():
    torch.manual_seed(0)
    layer = InformationConv2d(2, 3, 3, padding="same", generator=torch.Generator().manual_seed(0))
    assert layer.padding == (1, 1)
    out = layer(torch.randn(2, 5, 5))
    assert out.shape == (3, 5, 5) and layer.last_local_loss is not None
    fa = FeedbackLinear(3, 2, bias=False)
    assert fa.bias is None and fa.feedback_weight.shape == (2, 3)
    assert IA_DEFAULTS == {"alpha": 2e-3, "beta": 1e-3, "gamma": 1e-3}
    assert (layer.alpha, layer.beta, layer.gamma) == (2e-3, 1e-3, 1e-3)


def test_vjp_with_ones_goes_through_feedback_and_torch_func_works():
    # the recorder's gradavg is a VJP with a ones vector: under FA it is 1^T B
    torch.manual_seed(0)
    model = convert(nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1)), "fa", seed=0)
    x = torch.randn(2, 2, 7, 7)
    out, vjp = torch.func.vjp(model, x)
    (gx,) = vjp(torch.ones_like(out))
    xr = x.clone().requires_grad_(True)
    (F.conv2d(xr, model[0].feedback_weight, None, 2, 1) * torch.ones_like(out)).sum().backward()
    assert torch.allclose(gx, xr.grad, atol=1e-6)


def test_deepcopy_after_training_forward_drops_the_stored_loss():
    model = convert(nn.Sequential(nn.Linear(3, 2)), "ia", seed=0).train()
    model(torch.randn(4, 3))
    clone = copy.deepcopy(model)
    assert clone[0].last_local_loss is None and model[0].last_local_loss is not None
    assert torch.equal(clone[0].feedback_weight, model[0].feedback_weight)
