"""Tests for lrid_generate.recorder: torch statistics against the numpy reference."""

from collections import namedtuple

import numpy as np
import pytest
import torch
from torch import nn

from lrid_analysis import observables as npobs
from lrid_analysis.dataset import validate_table
from lrid_generate.recorder import (
    FULL_ACCESS,
    RECORDED_NAMES,
    Condition,
    Recorder,
    condition_grid,
    function_statistics,
    network_key,
    noise_seed,
    obfuscate_units,
    summed_jacobian,
    unit_seed,
    unit_statistics,
)

ObservedLayer = namedtuple("ObservedLayer", "name module position index")


class TinyNet(nn.Module):
    """A conv block (conv + ReLU recorded together) and a linear readout."""

    def __init__(self, width=3, side=5, n_out=4):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(width * side * side, n_out)

    def forward(self, x):
        return self.fc(self.block(x).flatten(1))

    @property
    def observed_layers(self):
        return [
            ObservedLayer("fc", self.fc, "deep", 1),  # deliberately out of depth order
            ObservedLayer("conv1", self.block, "early", 0),
        ]


def tiny_weight_of(module):
    return module[0].weight if isinstance(module, nn.Sequential) else module.weight


def numpy_reference(x_np):
    """The 21 numpy observables of rows (n_rows, n_units), in public order."""
    out = npobs._measure_observables("m", x_np)
    return np.array([out[f"m{f}_{s}"] for f in npobs.FUNCTIONS for s in npobs.STATISTICS])


def assert_close(a, b, rtol=1e-9, atol=1e-12):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                               rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (1, 7), (1, 8), (3, 10), (4, 11), (5, 64), (2, 101)])
def test_function_statistics_match_numpy(shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.normal(size=shape) * rng.uniform(0.1, 3.0) + rng.normal()
    assert_close(function_statistics(torch.from_numpy(x)), numpy_reference(x))


def test_unit_statistics_match_numpy_with_ties():
    rng = np.random.default_rng(1)
    x = rng.integers(-3, 4, size=(6, 9)).astype(float)  # many ties: the rank rule matters
    got = unit_statistics(torch.from_numpy(x)).numpy()
    ref = npobs.unit_statistics(x)
    for k, stat in enumerate(npobs.STATISTICS):
        assert_close(got[:, k], ref[stat])


@pytest.mark.parametrize("value", [0.0, 2.0, -1.5])
@pytest.mark.parametrize("n", [1, 4, 7])
def test_constant_rows_follow_ieee_like_numpy(value, n):
    # values whose mean is exact in any summation order, so both sides see var == 0
    x = np.full((2, n), value)
    got = function_statistics(torch.from_numpy(x)).numpy()
    assert_close(got, numpy_reference(x))
    names = [f"{f}_{s}" for f in npobs.FUNCTIONS for s in npobs.STATISTICS]
    assert np.isnan(got[names.index("raw_skew")]) and np.isnan(got[names.index("raw_kurtosis")])


@pytest.mark.parametrize("n", [1, 2, 9, 64])
def test_torch_and_numpy_selection_agree(n):
    from lrid_generate.recorder import _order_statistics

    rng = np.random.default_rng(n)
    raw = torch.from_numpy(rng.integers(-4, 5, size=(5, n)).astype(np.float32) * 0.5)  # ties
    raw[0, 0] = float("nan") if n > 1 else raw[0, 0]
    by_torch = _order_statistics(raw, raw.abs(), use_numpy=False)
    by_numpy = _order_statistics(raw, raw.abs(), use_numpy=True)
    assert torch.equal(torch.nan_to_num(by_torch, nan=99.0), torch.nan_to_num(by_numpy, nan=99.0))


def test_rows_with_nan_match_numpy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 12))
    x[1, 4] = np.nan
    assert_close(function_statistics(torch.from_numpy(x)), numpy_reference(x))
    got = unit_statistics(torch.from_numpy(x)).numpy()
    ref = npobs.unit_statistics(x)
    for k, stat in enumerate(npobs.STATISTICS):
        assert_close(got[:, k], ref[stat])


def test_float32_input_is_computed_in_float64():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 50)).astype(np.float32)
    assert_close(function_statistics(torch.from_numpy(x)), numpy_reference(x.astype(np.float64)))


@pytest.mark.parametrize("fraction,std,seed,batch_axis", [
    (1.0, 0.0, 0, True), (0.3, 0.0, 4, True), (0.25, 0.5, 3, True), (1.0, 0.7, 1, False), (0.1, 0.2, 9, False),
])
def test_obfuscation_matches_numpy_obfuscate_units(fraction, std, seed, batch_axis):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 3, 5))
    nseed = 1234 + seed
    got = obfuscate_units(torch.from_numpy(x), fraction, std, seed, batch_axis=batch_axis, noise_seed=nseed)
    # numpy's units, then the noise drawn as documented: float64 normals from a CPU generator, kept units only
    flat_shape = (x.shape[0], 15) if batch_axis else (1, x.size)
    kept = npobs.obfuscate_units(x.reshape(flat_shape), fraction, 0.0, seed, batch_axis=True)
    noise = torch.randn(kept.shape, generator=torch.Generator().manual_seed(nseed), dtype=torch.float64).numpy()
    ref = kept + std * noise
    assert got.shape == ref.shape == (flat_shape[0], npobs.n_kept_units(flat_shape[1], fraction))
    assert_close(got, ref)
    assert_close(function_statistics(got), numpy_reference(ref))


def test_noise_seed_differs_by_checkpoint_measure_network_and_layer():
    seeds = {noise_seed(0, c, m, n, i) for c in range(3) for m in ("weight", "act", "gradavg")
             for n in (0, network_key("a"), network_key("b")) for i in range(2)}
    assert len(seeds) == 3 * 3 * 3 * 2
    assert noise_seed(2, 5, "act", 7, 1) == noise_seed(2, 5, "act", 7, 1)
    units = {unit_seed(s, n, i, r) for s in range(2) for n in (0, network_key("a")) for i in range(2) for r in (0, 1)}
    assert len(units) == 16 and all(0 <= u < 2**32 for u in units)


def test_network_key_is_stable_and_64_bit():
    # sha256 of the run id, first 8 bytes little-endian: derived independently here
    import hashlib
    digest = hashlib.sha256(b"digits-resnet18-feedback-bs32-ms0-ds0").digest()
    assert network_key("digits-resnet18-feedback-bs32-ms0-ds0") == int.from_bytes(digest[:8], "little")
    assert network_key("x") != network_key("y") and 0 <= network_key("x") < 2**64


def test_measurement_draws_are_independent_across_networks_and_layers():
    # Two recorders of the same model (same weights, same inputs) with different network keys: the
    # noiseless row is identical, the noisy rows differ (own units and noise). With one key they agree.
    conditions = [FULL_ACCESS, Condition(0.5, 0.3, 0), Condition(0.5, 0.0, 0)]
    rec_a, model, x = _recorder(conditions=conditions)
    rec_b = Recorder(model, x, conditions=conditions, weight_of=tiny_weight_of, network_key=1)
    rec_a2 = Recorder(model, x, conditions=conditions, weight_of=tiny_weight_of, network_key=0)
    a, b, a2 = rec_a.observe(2), rec_b.observe(2), rec_a2.observe(2)
    assert_close(a[:, 0], b[:, 0], rtol=0, atol=0)
    assert_close(a, a2, rtol=0, atol=0)
    weight = [i for i, n in enumerate(RECORDED_NAMES) if n.startswith("weight")]
    assert np.all(a[:, 1, weight] != b[:, 1, weight])  # fresh noise for the other network
    assert np.any(a[:, 2] != b[:, 2])  # other kept units, noiseless
    # the two layers' noise comes from different draws: equal-shaped inputs would otherwise share it
    assert noise_seed(0, 2, "act", 0, 0) != noise_seed(0, 2, "act", 0, 1)


def test_condition_grid_puts_full_access_first_without_repeats():
    grid = condition_grid((1.0, 0.5), (0.0, 0.1), (0, 1))
    assert grid[0] == FULL_ACCESS
    assert len(grid) == len(set(grid)) == 1 + 7 - 1  # (1.0, 0.0, 1) is dropped
    assert Condition(1.0, 0.0, 1) not in grid
    with pytest.raises(ValueError, match="unit_fraction"):
        Condition(0.0, 0.0, 0)
    with pytest.raises(ValueError, match="noise_std"):
        Condition(0.5, -1.0, 0)


def test_summed_jacobian_of_linear_layer_is_column_sum():
    torch.manual_seed(0)
    layer = nn.Linear(6, 4).double()
    x = torch.randn(3, 6, dtype=torch.float64)
    _, jac = summed_jacobian(layer, x)
    expected = layer.weight.detach().sum(dim=0).expand(3, -1)
    assert_close(jac, expected)
    _, jac_sub = summed_jacobian(layer, x, output_units=np.array([2, 0]))
    assert_close(jac_sub, layer.weight.detach()[[0, 2]].sum(dim=0).expand(3, -1))


def _recorder(model=None, conditions=None, seed=0):
    torch.manual_seed(seed)
    model = model or TinyNet()
    x = torch.randn(6, 1, 5, 5)
    return Recorder(model, x, conditions=conditions, weight_of=tiny_weight_of), model, x


def test_recorder_matches_numpy_observables():
    recorder, model, x = _recorder()
    values = recorder.observe()
    assert values.shape == (2, 1, 48)
    # backprop layers: the forward Jacobian is the layer's own backward
    np.testing.assert_array_equal(values[:, :, 45:], values[:, :, 42:45])
    assert [layer.name for layer in recorder.layers] == ["conv1", "fc"]
    names = list(npobs.OBSERVABLE_NAMES)
    with torch.no_grad():
        hidden = model.block(x)
        outputs = {"conv1": hidden, "fc": model.fc(hidden.flatten(1))}
    inputs = {"conv1": x, "fc": hidden.flatten(1)}
    modules = {"conv1": model.block, "fc": model.fc}
    for k, name in enumerate(["conv1", "fc"]):
        ref = npobs.weight_observables(tiny_weight_of(modules[name]).detach().double().numpy())
        ref.update(npobs.activation_observables(outputs[name].double().numpy()))
        # gradavg from full per-example Jacobians (independent of the one-VJP shortcut)
        g = []
        for n in range(x.shape[0]):
            jac = torch.autograd.functional.jacobian(modules[name], inputs[name][n:n + 1])
            g.append(jac.sum().item() / outputs[name][0].numel())
        ref.update(npobs.gradavg_observables(np.array(g)))
        assert_close(values[k, 0, :45], [ref[o] for o in names], rtol=2e-5, atol=1e-6)


def test_gradavg_of_linear_layer_closed_form():
    recorder, model, _ = _recorder()
    values = recorder.observe()
    names = list(npobs.OBSERVABLE_NAMES)
    w = model.fc.weight.detach().double()
    g = w.sum().item() / w.shape[0]  # (1 / N_out) * sum of all entries of W, same for every example
    fc = values[1, 0]
    assert fc[names.index("gradavgraw_id")] == pytest.approx(g, rel=1e-6)
    assert fc[names.index("gradavgabs_id")] == pytest.approx(abs(g), rel=1e-6)
    assert fc[names.index("gradavgsq_id")] == pytest.approx(g * g, rel=1e-6)


def test_gradavg_under_feedback_alignment_uses_b():
    rules = pytest.importorskip("lrid_generate.rules")
    torch.manual_seed(0)
    model = TinyNet()
    rules.convert(model, "feedback", seed=3)
    recorder = Recorder(model, torch.randn(4, 1, 5, 5), weight_of=tiny_weight_of)
    values = recorder.observe()
    names = list(npobs.OBSERVABLE_NAMES)
    b = model.fc.feedback_weight.detach().double()
    w = model.fc.weight.detach().double()
    assert values[1, 0, names.index("gradavgraw_id")] == pytest.approx(b.sum().item() / b.shape[0], rel=1e-6)
    assert abs(b.sum().item() - w.sum().item()) > 1e-3  # B is not W, so the check can fail
    # the weight statistics see W, never B
    assert values[1, 0, names.index("weightraw_mean")] == pytest.approx(w.mean().item(), rel=1e-6)


def _gradient_columns(values, prefix):
    names = list(RECORDED_NAMES)
    return values[..., [names.index(f"{prefix}{f}_id") for f in npobs.FUNCTIONS]]


@pytest.mark.parametrize("rule", ["feedback", "information"])
def test_gradfwd_under_alignment_is_the_backprop_networks_gradavg(rule):
    rules = pytest.importorskip("lrid_generate.rules")
    torch.manual_seed(0)
    plain = TinyNet()
    aligned = TinyNet()
    aligned.load_state_dict(plain.state_dict())
    rules.convert(aligned, rule, seed=3)
    b_before = [aligned.block[0].feedback_weight.clone(), aligned.fc.feedback_weight.clone()]
    x = torch.randn(4, 1, 5, 5)
    grid = [FULL_ACCESS, Condition(0.5, 0.3, 2), Condition(0.6, 1.0, 1, relative=True)]
    got = Recorder(aligned, x, conditions=grid, weight_of=tiny_weight_of).observe(checkpoint=2)
    ref = Recorder(plain, x, conditions=grid, weight_of=tiny_weight_of).observe(checkpoint=2)
    # the forward Jacobian of the FA / IA network is backprop's gradavg on the same weights, at full access
    assert_close(_gradient_columns(got, "gradfwd")[:, 0], _gradient_columns(ref, "gradavg")[:, 0], rtol=1e-6)
    # and its own gradavg reads B, which is not W (so the check above can fail)
    assert np.abs(_gradient_columns(got, "gradavg")[:, 0] - _gradient_columns(ref, "gradavg")[:, 0]).max() > 1e-3
    # the 45 public observables did not change by recording gradfwd; B is restored bit for bit
    fresh = TinyNet()
    fresh.load_state_dict(plain.state_dict())
    rules.convert(fresh, rule, seed=3)
    again = Recorder(fresh, x, conditions=grid, weight_of=tiny_weight_of).observe(checkpoint=2)
    np.testing.assert_array_equal(got, again)
    assert torch.equal(aligned.block[0].feedback_weight, b_before[0])
    assert torch.equal(aligned.fc.feedback_weight, b_before[1])
    # noisy conditions: the same kept units as gradavg, but noise of its own
    names = list(RECORDED_NAMES)
    assert got[0, 1, names.index("gradfwdraw_id")] != got[0, 1, names.index("gradavgraw_id")]


def test_gradfwd_noise_is_drawn_independently_of_gradavg():
    recorder, _, _ = _recorder(conditions=[FULL_ACCESS, Condition(1.0, 0.5, 0)])
    values = recorder.observe(checkpoint=1)
    noisy_avg, noisy_fwd = _gradient_columns(values, "gradavg")[:, 1], _gradient_columns(values, "gradfwd")[:, 1]
    assert np.all(noisy_avg != noisy_fwd)
    assert noise_seed(0, 1, "gradavg") != noise_seed(0, 1, "gradfwd")


def test_full_access_condition_equals_plain_record():
    grid = condition_grid((1.0, 0.5), (0.0, 0.3), (0, 2))
    rec_grid, model, x = _recorder(conditions=grid)
    rec_plain = Recorder(model, x, weight_of=tiny_weight_of)
    assert_close(rec_grid.observe(3)[:, 0], rec_plain.observe(3)[:, 0], rtol=0, atol=0)


def test_subsampled_gradavg_of_linear_layer_closed_form():
    f, seed = 0.4, 7
    recorder, model, _ = _recorder(conditions=[FULL_ACCESS, Condition(f, 0.0, seed)])
    values = recorder.observe()
    w = model.fc.weight.detach().double().numpy()
    n_out, n_in = w.shape
    fc = 1  # the layer index of ``fc``; the recorder's network key is 0
    kept_out = np.random.RandomState(unit_seed(seed, 0, fc, 1)).permutation(n_out)[:npobs.n_kept_units(n_out, f)]
    kept_in = np.random.RandomState(unit_seed(seed, 0, fc, 0)).permutation(n_in)[:npobs.n_kept_units(n_in, f)]
    g = w[np.ix_(kept_out, kept_in)].sum() / len(kept_out)
    assert values[1, 1, list(npobs.OBSERVABLE_NAMES).index("gradavgraw_id")] == pytest.approx(g, rel=1e-6)


def test_noisy_condition_matches_numpy_pipeline():
    f, s, seed, ckpt = 0.5, 0.25, 4, 2
    net, fc = 12345, 1  # the recorder's network key, the layer index of ``fc``
    recorder, model, x = _recorder(conditions=[FULL_ACCESS, Condition(f, s, seed)])
    recorder.network_key = net
    values = recorder.observe(checkpoint=ckpt)
    names = list(npobs.OBSERVABLE_NAMES)

    def noisy(units, measure, batch_axis=True):
        flat = units.reshape(units.shape[0], -1) if batch_axis else units.reshape(1, -1)
        kept = npobs.obfuscate_units(flat, f, 0.0, unit_seed(seed, net, fc, 0))
        gen = torch.Generator().manual_seed(noise_seed(seed, ckpt, measure, net, fc))
        return kept + s * torch.randn(kept.shape, generator=gen, dtype=torch.float64).numpy()

    w = model.fc.weight.detach().double().numpy()
    with torch.no_grad():
        act = model.fc(model.block(x).flatten(1)).double().numpy()
    ref = {}
    for measure, rows in (("weight", noisy(w, "weight", batch_axis=False)), ("act", noisy(act, "act"))):
        stats = npobs._measure_observables(measure, rows)
        ref.update(stats)
    for name in names[:42]:
        assert values[1, 1, names.index(name)] == pytest.approx(ref[name], rel=1e-5, abs=1e-7, nan_ok=True), name
    # gradavg: kept output units (role 1) -> per-example column sums of W, noise, kept inputs
    n_out, n_in = w.shape
    kept_out = np.random.RandomState(unit_seed(seed, net, fc, 1)).permutation(n_out)[:npobs.n_kept_units(n_out, f)]
    jac = np.tile(w[kept_out].sum(axis=0), (x.shape[0], 1))
    g = noisy(jac, "gradavg").sum(axis=1) / len(kept_out)
    ref_g = npobs.gradavg_observables(g)
    for name, value in ref_g.items():
        assert values[1, 1, names.index(name)] == pytest.approx(value, rel=1e-5)


def test_relative_noise_scales_by_each_measures_std():
    # a relative condition is the absolute condition with noise_std times the measure's std
    f, s, seed, ckpt = 0.5, 0.7, 3, 1
    recorder, model, x = _recorder(conditions=[FULL_ACCESS, Condition(f, s, seed, relative=True)])
    relative = recorder.observe(checkpoint=ckpt)
    w = model.fc.weight.detach().double()
    with torch.no_grad():
        act = model.fc(model.block(x).flatten(1)).double()
    names = list(npobs.OBSERVABLE_NAMES)
    for measure, scale in (("weight", w.std(correction=0).item()), ("act", act.std(correction=0).item())):
        absolute, _, _ = _recorder(conditions=[FULL_ACCESS, Condition(f, s * scale, seed)])
        values = absolute.observe(checkpoint=ckpt)
        columns = [i for i, n in enumerate(names) if n.startswith(measure)]
        np.testing.assert_allclose(relative[1, 1, columns], values[1, 1, columns], rtol=1e-6)
    assert Condition(f, s, seed, relative=True) != Condition(f, s, seed)
    grid = condition_grid((1.0, 0.5), (0.0, 2.0), relative=True)
    assert grid[0] == FULL_ACCESS and all(c.relative == ("checkpoint" if c.noise_std > 0 else False) for c in grid)


def test_initial_relative_noise_keeps_the_first_checkpoints_scale():
    # "initial": noise_std times the measure's std at the first observe, held while the weights change
    f, s, seed = 0.5, 0.7, 3
    condition = Condition(f, s, seed, relative="initial")
    recorder, model, x = _recorder(conditions=[FULL_ACCESS, condition])
    w0 = model.fc.weight.detach().double().std(correction=0).item()
    recorder.observe(checkpoint=0)
    with torch.no_grad():
        model.fc.weight.mul_(3.0)  # "learning" triples the readout's weights
    later = recorder.observe(checkpoint=5)
    absolute = Recorder(model, x, conditions=[FULL_ACCESS, Condition(f, s * w0, seed)], weight_of=tiny_weight_of)
    names = list(npobs.OBSERVABLE_NAMES)
    columns = [i for i, n in enumerate(names) if n.startswith("weight")]
    np.testing.assert_allclose(later[1, 1, columns], absolute.observe(checkpoint=5)[1, 1, columns], rtol=1e-6)
    assert recorder.initial_scales[("fc", "weight")] == pytest.approx(w0, rel=1e-12)
    # the per-checkpoint mode follows the tripled weights instead
    per_checkpoint = Recorder(model, x, conditions=[FULL_ACCESS, Condition(f, s, seed, relative=True)],
                              weight_of=tiny_weight_of).observe(checkpoint=5)
    assert not np.allclose(per_checkpoint[1, 1, columns], later[1, 1, columns])
    assert Condition(f, s, seed, relative=True).relative == "checkpoint"
    with pytest.raises(ValueError, match="relative"):
        Condition(f, s, seed, relative="final")


@pytest.mark.parametrize("mode", ["checkpoint", "initial"])
def test_per_checkpoint_relative_noise_leaks_the_clean_scale_and_initial_does_not(mode):
    # two networks from one init; one's readout grows by half. Under the per-checkpoint scale the noisy
    # variance is (1 + s**2) x the clean one, so the clean ratio 1.5**2 survives any noise; with the
    # initial scale held, the ratio is (1.5**2 + s**2) / (1 + s**2), near 1 at large s (closed forms)
    s = 16.0
    names = list(RECORDED_NAMES)
    column = names.index("weightraw_var")
    variances = []
    for growth in (1.0, 1.5):
        recorder, model, _ = _recorder(TinyNet(width=8, n_out=200), [FULL_ACCESS, Condition(1.0, s, 0, relative=mode)])
        recorder.observe(checkpoint=0)
        with torch.no_grad():
            model.fc.weight.mul_(growth)
        variances.append(recorder.observe(checkpoint=1)[1, 1, column])  # fc: 40,000 weights
    expected = 1.5 ** 2 if mode == "checkpoint" else (1.5 ** 2 + s ** 2) / (1 + s ** 2)
    assert variances[1] / variances[0] == pytest.approx(expected, rel=0.03)


def test_record_rows_follow_contract_and_restore_mode():
    grid = [FULL_ACCESS, Condition(0.5, 0.1, 1)]
    recorder, model, _ = _recorder(conditions=grid)
    model.train()
    frame = recorder.record(checkpoint=4, epoch=2.5)
    assert model.training and all(m.training for m in model.modules())
    assert len(frame) == 2 * len(grid)
    assert list(frame["layer_name"]) == ["conv1", "conv1", "fc", "fc"]
    assert list(frame["unit_fraction"]) == [1.0, 0.5, 1.0, 0.5]
    assert (frame["checkpoint"] == 4).all() and (frame["epoch"] == 2.5).all()
    # layer sizes: conv1 sees 1 x 5 x 5 inputs, gives 3 x 5 x 5 outputs with a 3 x 1 x 3 x 3 kernel; fc 75 -> 4
    sizes = frame.drop_duplicates("layer_name").set_index("layer_name")[["n_inputs", "n_outputs", "n_weights"]]
    assert sizes.loc["conv1"].tolist() == [25, 75, 27] and sizes.loc["fc"].tolist() == [75, 4, 300]
    run = dict(source="test", run_id="r", task="t", architecture="a", learning_rule="sgdm",
               batch_size=8, model_seed=None, dataset_seed=0)
    validate_table(frame.assign(**run))
    assert recorder.seconds > 0


def test_record_does_not_touch_batchnorm_statistics():
    model = nn.Sequential()
    model.conv = nn.Conv2d(1, 2, 3)
    model.bn = nn.BatchNorm2d(2)
    model.observed_layers = [ObservedLayer("conv", model.conv, "early", 0)]
    before = model.bn.running_mean.clone()
    Recorder(model, torch.randn(5, 1, 6, 6) + 3, weight_of=lambda m: m.weight).observe()
    assert torch.equal(model.bn.running_mean, before)


def test_layer_called_twice_is_refused():
    class Twice(TinyNet):
        def forward(self, x):
            return self.fc(self.block(self.block(x)[:, :1]).flatten(1))

    recorder, _, _ = _recorder(model=Twice())
    with pytest.raises(RuntimeError, match="conv1.*2 times"):
        recorder.observe()


def test_training_gives_each_network_its_own_recorder_key():
    # train_network and train_pack build recorders through _make_recorder: keyed by the run id
    import dataclasses
    from types import SimpleNamespace

    from lrid_generate.presets import PRESETS
    from lrid_generate.train import _make_recorder

    _, model, x = _recorder()
    spec = PRESETS["tiny"].specs()[0]
    other = dataclasses.replace(spec, batch_size=spec.batch_size * 2)
    task = SimpleNamespace(x_val=x)
    keys = [_make_recorder(s, task, model).network_key for s in (spec, other)]
    assert keys == [network_key(spec.run_id), network_key(other.run_id)] and keys[0] != keys[1]
