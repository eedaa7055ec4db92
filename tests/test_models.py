"""Tests for lrid_generate.models: the paper's architectures."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from torch import nn

from lrid_analysis.synthetic import public_meta
from lrid_generate.models import (
    ARCHITECTURES,
    HEADS,
    SMALL_INPUT_SIZE,
    ConvReLU,
    LayeredModel,
    build_model,
    kernel_module,
    layer_positions,
    supervised_layer_names,
    weight_of,
)
from lrid_generate.rules import (
    RULES,
    AlignmentLayer,
    alignment_layers,
    convert,
    local_loss,
    make_optimizer,
)

torch.set_num_threads(1)

SMALL_SHAPES = [(1, 8, 8), (1, 16, 16), (3, 28, 28)]
TASK_HEAD = {"imagenet": "classifier", "audionet": "classifier", "cifar10": "classifier",
             "simclr": "simclr"}


def _run_observed(model, x):
    """Forward ``x`` and return each observed layer's output, via forward hooks."""
    seen = {}
    handles = [layer.module.register_forward_hook(
        lambda mod, inp, out, name=layer.name: seen.setdefault(name, []).append(out))
        for layer in model.observed_layers]
    try:
        out = model(x)
    finally:
        for h in handles:
            h.remove()
    return out, seen


# --------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_forward_shapes_at_small_inputs(arch):
    for shape in SMALL_SHAPES:
        for head in HEADS:
            model = build_model(arch, 7, shape, width=0.25, head=head, seed=0)
            assert isinstance(model, LayeredModel)
            model.train()
            out, seen = _run_observed(model, torch.randn(2, *shape))
            expected = 7 if head == "classifier" else round(128 * 0.25)
            assert out.shape == (2, expected) and model.output_dim == expected
            assert torch.isfinite(out).all()
            # every observed layer ran exactly once, with a non-empty output per example
            assert sorted(seen) == sorted(model.layer_names)
            for name, outs in seen.items():
                assert len(outs) == 1 and outs[0].shape[0] == 2 and outs[0][0].numel() >= 1, name
            assert [layer.index for layer in model.observed_layers] == list(range(len(seen)))


def test_full_size_stems_and_projection_dim():
    # at and above SMALL_INPUT_SIZE the original stems are used
    shape = (3, SMALL_INPUT_SIZE, SMALL_INPUT_SIZE + 8)
    res = build_model("resnet18", 5, shape, width=0.125, seed=0)
    assert res.conv0.kernel_size == (7, 7) and res.conv0.stride == (2, 2)
    assert isinstance(res.stem_pool, nn.MaxPool2d) and res.config["stem"] == "full"
    alex = build_model("alexnet", 5, shape, width=0.125, seed=0)
    assert alex.conv1.conv.kernel_size == (11, 11) and alex.conv1.conv.stride == (4, 4)
    alex.eval()
    assert alex(torch.randn(2, *shape)).shape == (2, 5)
    assert res.eval()(torch.randn(2, *shape)).shape == (2, 5)
    small = build_model("resnet18", 5, (1, 8, 8), width=0.125, seed=0)
    assert small.conv0.kernel_size == (3, 3) and small.conv0.stride == (1, 1)
    assert isinstance(small.stem_pool, nn.Identity) and small.config["stem"] == "small"
    sim = build_model("knet", None, (3, 8, 8), width=0.5, head="simclr", projection_dim=9, seed=0)
    assert sim.eval()(torch.randn(3, 3, 8, 8)).shape == (3, 9)
    assert not hasattr(sim, "fc4") and sim.head_contrastive.nl_1.out_features == 9


def test_width_scales_channels_and_units():
    for width, expect in [(0.5, 32), (0.25, 16), (0.01, 1)]:
        m = build_model("resnet34v2", 3, (1, 8, 8), width=width, seed=0)
        assert m.conv0.out_channels == expect
    m = build_model("alexnet", 3, (1, 8, 8), width=0.25, seed=0)
    assert m.fc6.linear.out_features == 1024 and m.conv1.conv.out_channels == 24
    m = build_model("knetc4", 3, (1, 8, 8), width=0.5, seed=0)
    assert [m.conv1.out_channels, m.conv4.conv.out_channels] == [16, 64]
    m = build_model("resnet18", None, (1, 8, 8), width=0.5, head="simclr", seed=0)
    assert m.head_contrastive.nl_0.in_features == 256 == m.head_contrastive.nl_0.out_features
    assert m.head_contrastive.nl_1.out_features == 64


# --------------------------------------------------------------------------
# names and positions vs the public dataset
# --------------------------------------------------------------------------


def test_layer_names_and_positions_match_public_meta():
    meta = public_meta()
    pairs = meta[["task", "architecture"]].drop_duplicates()
    assert len(pairs) == 22
    for task, arch in pairs.itertuples(index=False):
        rows = meta[(meta.task == task) & (meta.architecture == arch)]
        public = dict(zip(rows.layer_name, rows.layer_position_inferred))
        assert rows.groupby("layer_name").layer_position_inferred.nunique().max() == 1
        model = build_model(arch, 3, (1, 8, 8), width=0.125, head=TASK_HEAD[task], seed=0)
        ours = {layer.name: layer.position for layer in model.observed_layers}
        assert len(model.layer_names) == len(ours)  # unique names
        assert ours == public, (task, arch)
        # depth order: positions never go back
        order = [("early", "middle", "deep").index(layer.position) for layer in model.observed_layers]
        assert order == sorted(order)


def test_layer_positions_rule():
    assert layer_positions(list("abcdefgh")) == dict(
        zip("abcdefgh", ["early"] * 2 + ["middle"] * 2 + ["deep"] * 4))
    # n // 3 == 0: every supervised layer is deep; head layers are always deep
    assert layer_positions(["a", "b"], head_names=["h"]) == {"a": "deep", "b": "deep", "h": "deep"}
    assert list(layer_positions(list("abcd"), ["h"]).values()) == [
        "early", "middle", "deep", "deep", "deep"]
    assert len(supervised_layer_names("resnet34")) == 38
    assert supervised_layer_names("knetc4lrn")[-1] == "fc5"


# --------------------------------------------------------------------------
# rules on every architecture
# --------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_convert_and_train_step_every_architecture_and_rule(arch):
    x = torch.randn(4, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 1])
    for rule in RULES:
        head = "simclr" if rule == "information" else "classifier"  # cover the head too
        model = build_model(arch, 3, (1, 8, 8), width=0.125, head=head, seed=1)
        convert(model, rule, seed=2)
        opt = make_optimizer(model, rule, lr=0.01, weight_decay=1e-4)
        before = [weight_of(layer.module).detach().clone() for layer in model.observed_layers]
        model.train()
        out = model(x)
        task = F.cross_entropy(out, y) if head == "classifier" else out.pow(2).mean()
        total = task + local_loss(model)
        opt.zero_grad()
        total.backward()
        opt.step()
        assert torch.isfinite(total)
        if rule == "information":
            assert local_loss(model).item() > 0
        moved = [not torch.equal(weight_of(layer.module), b)
                 for layer, b in zip(model.observed_layers, before)]
        assert any(moved), (arch, rule)
        n_kernels = len(model.observed_layers)
        n_aligned = len(list(alignment_layers(model)))
        assert n_aligned == (0 if rule in ("sgdm", "adam") else n_kernels), (arch, rule)


@pytest.mark.parametrize("arch", ["resnet18", "alexnetlrn", "knetc4"])
def test_observed_layers_follow_conversion(arch):
    model = build_model(arch, 3, (1, 8, 8), width=0.125, seed=0)
    before = {layer.name: kernel_module(layer.module).weight for layer in model.observed_layers}
    convert(model, "feedback", seed=0)
    for layer in model.observed_layers:
        kernel = kernel_module(layer.module)
        assert isinstance(kernel, AlignmentLayer) and kernel.rule == "feedback", layer.name
        assert weight_of(layer.module) is before[layer.name]  # W, same Parameter
        assert weight_of(layer.module) is not kernel.feedback_weight


def test_feedback_uses_the_models_kernel_initializer():
    model = build_model("resnet18", 3, (3, 8, 8), width=1.0, seed=0)
    convert(model, "fa", seed=0)
    layer = model.block_group4_1.conv2  # 512 x 512 x 3 x 3
    fan_in = 512 * 9
    for t in (layer.weight.detach(), layer.feedback_weight):
        # TF1 variance scaling: N(0, s) truncated at 2 s with s = sqrt(1/fan_in)/0.8796,
        # whose standard deviation is sqrt(1/fan_in)
        s = math.sqrt(1 / fan_in) / scipy.stats.truncnorm(-2, 2).std()
        assert float(t.abs().max()) <= 2 * s
        assert float(t.std()) == pytest.approx(math.sqrt(1 / fan_in), rel=0.01)
    assert not torch.equal(layer.weight, layer.feedback_weight)
    fc = model.dense
    assert fc.weight.detach().std().item() == pytest.approx(0.01, rel=0.1)
    assert float(fc.feedback_weight.std()) == pytest.approx(0.01, rel=0.1)


# --------------------------------------------------------------------------
# structure
# --------------------------------------------------------------------------


@pytest.mark.parametrize("depth", ["18", "34"])
def test_resnet_v1_and_v2_differ_in_preactivation_order(depth):
    torch.manual_seed(0)
    x = torch.randn(4, 1, 8, 8)
    for arch, block_name in [(f"resnet{depth}", "block_group1_0"),
                             (f"resnet{depth}v2", "block_layer1_0")]:
        model = build_model(arch, 3, (1, 8, 8), width=0.25, seed=0).train()
        block = getattr(model, block_name)
        record = {}
        h1 = block.register_forward_hook(lambda m, i, o: record.update(block_in=i[0], block_out=o))
        h2 = block.conv1.register_forward_hook(lambda m, i, o: record.update(conv1_in=i[0]))
        h3 = block.conv0.register_forward_hook(lambda m, i, o: record.update(conv0_in=i[0]))
        model(x)
        for h in (h1, h2, h3):
            h.remove()
        assert torch.equal(record["conv0_in"], record["conv1_in"])  # shortcut sees the same input
        if arch.endswith("v2"):
            # pre-activation: conv1 sees relu(bn(block input)); the stem has no BN, and
            # the block output (a plain sum) is not rectified
            bn = block.preact_bn
            expected = F.relu(F.batch_norm(record["block_in"], None, None, bn.weight, bn.bias,
                                           True, 0.0, bn.eps))
            assert torch.allclose(record["conv1_in"], expected, atol=1e-5)
            assert (record["block_in"] < 0).any() and (record["block_out"] < 0).any()
            assert isinstance(model.final_bn, nn.BatchNorm2d) and not hasattr(model, "bn0")
        else:
            # post-activation: conv1 sees the block input itself, outputs are rectified
            assert torch.equal(record["conv1_in"], record["block_in"])
            assert (record["block_in"] >= 0).all() and (record["block_out"] >= 0).all()
            assert isinstance(model.bn0, nn.BatchNorm2d) and isinstance(model.final_bn, nn.Identity)


def test_observed_modules_produce_the_recorded_activation():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16)
    alex = build_model("alexnetlrn", 3, (3, 16, 16), width=0.25, seed=0).train()
    _, seen = _run_observed(alex, x)
    assert isinstance(alex.conv1, ConvReLU) and (seen["conv1"][0] >= 0).all()  # ReLU inside
    assert (seen["fc6"][0] >= 0).all() and (seen["fc8"][0] < 0).any()  # logits: no ReLU
    assert isinstance(alex.lrn1, nn.LocalResponseNorm) and isinstance(alex.lrn2, nn.LocalResponseNorm)
    res = build_model("resnet18", 3, (3, 16, 16), width=0.25, seed=0).train()
    _, seen = _run_observed(res, x)
    assert (seen["block_group2_0/conv1"][0] < 0).any()  # conv output before BN / ReLU
    assert type(res.observed_layer("conv0").module) is nn.Conv2d
    knet = build_model("knet", 3, (3, 16, 16), width=0.5, seed=0).train()
    _, seen = _run_observed(knet, x)
    assert (seen["conv1"][0] < 0).any() and (seen["conv2"][0] >= 0).all()
    sim = build_model("resnet34v2", None, (3, 16, 16), width=0.25, head="simclr", seed=0).train()
    _, seen = _run_observed(sim, x)
    assert type(sim.observed_layer("head_contrastive/nl_0").module) is nn.Linear
    assert (seen["head_contrastive/nl_0"][0] < 0).any()  # before BN and ReLU
    with pytest.raises(KeyError, match="no recorded layer"):
        sim.observed_layer("dense")


def test_dropout_only_in_alexnet_fc6_fc7():
    alex = build_model("alexnet", 3, (1, 8, 8), width=0.125, seed=0)
    drops = [name for name, m in alex.named_modules() if isinstance(m, nn.Dropout)]
    assert drops == ["drop6", "drop7"] and alex.drop6.p == 0.5
    x = torch.randn(3, 1, 8, 8)
    alex.eval()
    assert torch.equal(alex(x), alex(x))
    for arch in ("resnet18", "knet"):
        m = build_model(arch, 3, (1, 8, 8), width=0.125, seed=0)
        assert not any(isinstance(mod, nn.Dropout) for mod in m.modules())


# --------------------------------------------------------------------------
# seeds and errors
# --------------------------------------------------------------------------


def test_seeded_initialisation_is_deterministic_and_leaves_global_rng():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = build_model("resnet18", 4, (1, 8, 8), width=0.25, seed=7)
    assert torch.equal(torch.rand(3), expected_next)  # global RNG untouched
    b = build_model("resnet18", 4, (1, 8, 8), width=0.25, seed=7)
    c = build_model("resnet18", 4, (1, 8, 8), width=0.25, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["conv0.weight"], sc["conv0.weight"])
    d = build_model("resnet18", 4, (1, 8, 8), width=0.25)
    e = build_model("resnet18", 4, (1, 8, 8), width=0.25)
    assert not torch.equal(d.conv0.weight, e.conv0.weight)  # seed=None: fresh draws
    assert a.config["seed"] == 7 and d.config["seed"] is None
    # the same integer seed for weights and feedback does not give B = W
    convert(a, "fa", seed=7)
    for _, layer in alignment_layers(a):
        assert not torch.allclose(layer.weight, layer.feedback_weight)


def test_build_model_errors_are_clear():
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        build_model("vgg", 3)
    with pytest.raises(ValueError, match="unknown head"):
        build_model("knet", 3, head="byol")
    with pytest.raises(ValueError, match="input_shape"):
        build_model("knet", 3, (8, 8))
    with pytest.raises(ValueError, match="n_outputs"):
        build_model("knet", None)
    with pytest.raises(ValueError, match="width"):
        build_model("knet", 3, width=0)
    with pytest.raises(ValueError, match="exactly one"):
        kernel_module(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))
    assert np.isclose(weight_of(nn.Linear(2, 3)).shape[0], 3)


def test_lrn_scale_matches_hand_computed_normalisation():
    from lrid_generate.models import _lrn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 3, 4))
    radius, tf_alpha, scale = 3, 5e-5, 64.0
    expected = np.empty_like(x)
    for c in range(x.shape[1]):
        window = x[:, max(0, c - radius):c + radius + 1] ** 2
        expected[:, c] = x[:, c] / (1.0 + tf_alpha * scale ** 2 * window.sum(axis=1)) ** 0.75
    got = _lrn(radius, tf_alpha, scale)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # LRN(s a) / s with the published constants is the same map
    plain = _lrn(radius, tf_alpha)(torch.from_numpy(x * scale)).numpy() / scale
    np.testing.assert_allclose(got, plain, rtol=1e-10)
    with pytest.raises(ValueError, match="lrn_scale"):
        build_model("knetlrn", 10, (1, 14, 14), lrn_scale=0)


@pytest.mark.parametrize("arch", ["knetlrn", "alexnetlrn"])
def test_lrn_variants_differ_from_plain_twins_with_lrn_scale(arch):
    # on standardised inputs with unit-variance layers the published constants leave the
    # activations unchanged (the LRN net computes its plain twin); lrn_scale=64 makes them bite
    from lrid_generate.train import rescale_initial_weights

    x = torch.randn(64, 1, 14, 14, generator=torch.Generator().manual_seed(0))
    outputs = {}
    for name, scale in ((arch[:-3], 1.0), (arch, 1.0), (arch, 64.0)):
        model = build_model(name, 10, (1, 14, 14), width=0.25, seed=3, lrn_scale=scale)
        rescale_initial_weights(model, x)
        model.eval()
        with torch.no_grad():
            outputs[name, scale] = model(x)
    plain = outputs[arch[:-3], 1.0]

    def relative(a):
        return float((a - plain).norm() / plain.norm())

    assert relative(outputs[arch, 1.0]) < 1e-2
    assert relative(outputs[arch, 64.0]) > 0.1


def test_alexnet_dropout_option():
    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    model = build_model("alexnet", 10, (1, 8, 8), width=0.125, seed=0, dropout=0.0).train()
    assert model.drop6.p == 0.0 and model.drop7.p == 0.0
    assert torch.equal(model(x), model(x))  # no dropout: training forwards are deterministic
    default = build_model("alexnet", 10, (1, 8, 8), width=0.125, seed=0).train()
    assert default.drop6.p == 0.5 and not torch.equal(default(x), default(x))
    with pytest.raises(ValueError, match="dropout"):
        build_model("alexnet", 10, (1, 8, 8), dropout=1.0)


def test_bn_momentum_defaults_to_the_original_decays_and_can_be_set():
    def momenta(model):
        return {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}

    assert momenta(build_model("resnet18", 10, (1, 8, 8), width=0.125, seed=0)) == {0.1}
    assert momenta(build_model("resnet18v2", 10, (1, 8, 8), width=0.125, seed=0)) == {0.003}
    model = build_model("resnet18v2", 10, (1, 8, 8), width=0.125, seed=0, bn_momentum=0.1)
    assert momenta(model) == {0.1} and model.config["bn_momentum"] == 0.1
    # the option changes nothing else: same initial weights
    reference = build_model("resnet18v2", 10, (1, 8, 8), width=0.125, seed=0)
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="bn_momentum"):
        build_model("resnet18", 10, (1, 8, 8), bn_momentum=0.0)
