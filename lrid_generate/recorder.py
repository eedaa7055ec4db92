"""Record the 45 observables (and ``gradfwd``) of every observed layer, in torch, on the training device.

At each checkpoint the recorder runs the model once (evaluation mode, no
gradient) on a fixed validation batch, capturing the input of every observed
layer with a forward pre-hook. Each layer's module is then run again on that
input (detached, requiring grad): its output gives the activation statistics,
and one vector-Jacobian product of the output with a ones vector gives the
per-example summed Jacobian for ``gradavg``. Through a FA / IA layer that
product runs the layer's own backward, so it uses the feedback weights B.
``gradfwd{abs,raw,sq}_id`` (three columns after the 45) is the same product
through the forward weights, the input-output change a paired pre/post
recording would measure: computed with every FA / IA layer's B tied to its
W for the duration of the product (then restored bit for bit); for backprop
layers it is the ``gradavg`` product itself. It is subsampled like
``gradavg`` (same kept units) and noised with its own draws.

The statistics follow :mod:`lrid_analysis.observables` exactly (that module
is the numpy reference the tests compare against):

* moments are computed in float64; a weight kernel is one row of all its
  entries, an activation one row per example, and per-example statistics
  are averaged over examples;
* median and third quartile are nearest-rank percentiles: with a row sorted in
  descending order, the element at ``rint((n - 1) * (1 - q / 100))``. They
  are found by linear-time selection instead of a full sort
  (``torch.kthvalue``; on the CPU two single-k numpy ``partition`` calls on a
  zero-copy view, about ten times faster), in the values' own dtype (exact), and ``sq``
  reuses the selections of ``abs`` (squaring is monotone on magnitudes);
* population variance, ``skew = 3 (mean - median) / std``, non-excess
  kurtosis, L2 norm; a constant row gives NaN skew and kurtosis.

Unit subsampling and measurement noise (DESIGN.md section 3) are measurement
conditions ``(unit_fraction, noise_std, obs_seed)``: the units at the first
``ceil(f * N)`` entries of ``numpy.random.RandomState(u).permutation(N)`` are
kept (the same units for every example and at every checkpoint) with i.i.d.
Gaussian noise of std ``noise_std`` on each, then the function and the
statistic are applied. (Noise is drawn for the kept units only; being
independent across units, that is the same measurement as noising every unit
and then subsampling.) For ``gradavg`` the output units are subsampled first
(the ones vector of the product is masked to the kept output units, and the
sum is divided by their number), and the input units of the resulting
Jacobian sums are noised and subsampled after.

Every draw is the recorder's network's and layer's own: the unit seed ``u``
is :func:`unit_seed` of ``(obs_seed, network key, layer index, role)`` (role
1 for the summed output units), and the noise is drawn with a CPU
``torch.Generator`` (float64) seeded by :func:`noise_seed` of ``(obs_seed,
checkpoint, measure, network key, layer index)``, then moved to the device:
the same values on any device, fresh noise at every checkpoint (a new
recording session) but the same units throughout (a chronic recording), and
no draw shared between networks or layers. (The first v2 noise grid drew
them from ``obs_seed``, the checkpoint and the measure only: every network
of one architecture got the same noise, which cancels out of the differences
between networks, so FA and IA stayed separable under any noise.) The
network key is :func:`network_key` of the ``run_id`` (:class:`Recorder`'s
``network_key``).

Relative noise: a condition with ``relative`` set reads ``noise_std`` as a
multiple of each measure's typical scale, the standard deviation over all
entries of that layer's measure (the kernel ``W``, the activations of the
recording batch, the per-example Jacobian sums) before subsampling and noise,
so one noise level means a comparable signal-to-noise ratio for every layer
and measure, whatever their units. Two references (:data:`RELATIVE_MODES`):

* ``"initial"``: the scale measured at the first recorded checkpoint (before
  any learning) and held for the whole recording, as an electrode's noise
  floor does not follow what the cell learns. Networks of one architecture
  start from identically distributed weights whatever their rule (FA and IA
  draw ``B`` like ``W``), so the noise level carries nothing of the rule.
* ``"checkpoint"`` (``relative=True``, the first version): the scale of that
  layer and measure at each checkpoint. It leaks: the noisy variance is
  ``(1 + s**2)`` times the clean one and the norm grows by ``sqrt(1 + s**2)``,
  so every scale statistic stays an exact function of the clean one however
  large ``s`` is (on the v2 noise grid, FA vs IA stayed at 0.96-0.98 at 16 x
  the std and 2 % of the units). Kept to read data recorded with it.
"""

from __future__ import annotations

import functools
import hashlib
import time
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import product

import numpy as np
import pandas as pd
import torch

from lrid_analysis.contract import SIZE_COLUMNS
from lrid_analysis.observables import FORWARD_GRADIENT_NAMES, OBSERVABLE_NAMES, STATISTICS, n_kept_units

__all__ = [
    "Condition",
    "FULL_ACCESS",
    "condition_grid",
    "relative_mode",
    "RELATIVE_MODES",
    "RECORDED_NAMES",
    "SIZE_COLUMNS",
    "Recorder",
    "function_statistics",
    "unit_statistics",
    "obfuscate_units",
    "network_key",
    "noise_seed",
    "summed_jacobian",
    "unit_seed",
]

_MEASURE_CODES = {"weight": 0, "act": 1, "gradavg": 2, "gradfwd": 3}
_UNIT_DRAW = 4  # distinguishes unit-draw entropy from noise entropy
#: Columns of :meth:`Recorder.observe`: the 45 public observables, then the forward-Jacobian ``gradfwd``.
RECORDED_NAMES = OBSERVABLE_NAMES + FORWARD_GRADIENT_NAMES
# SIZE_COLUMNS (from the data contract): a layer's input and output units per example and its kernel entries
# (the units a measurement of ``unit_fraction`` f keeps are ``ceil(f * n)``), in every recorded row.


#: References of relative noise (see the module notes): the scale at the first checkpoint, or at each one.
RELATIVE_MODES = ("initial", "checkpoint")


def relative_mode(relative):
    """``False`` (absolute noise) or one of :data:`RELATIVE_MODES` (``True`` is ``"checkpoint"``)."""
    if relative is False or relative is None or relative == 0:
        return False
    if relative is True or relative == 1:
        return "checkpoint"
    if relative in RELATIVE_MODES:
        return relative
    raise ValueError(f"relative must be False, True or one of {RELATIVE_MODES}, got {relative!r}")


@dataclass(frozen=True, order=True)
class Condition:
    """One measurement condition: fraction of units kept, noise std, seed.

    ``relative`` (one of :data:`RELATIVE_MODES`; ``True`` means
    ``"checkpoint"``) scales ``noise_std`` by each measure's typical scale
    (see the module notes); the default (``False``) is absolute noise.
    """

    unit_fraction: float = 1.0
    noise_std: float = 0.0
    obs_seed: int = 0
    relative: bool | str = False

    def __post_init__(self):
        if not 0.0 < float(self.unit_fraction) <= 1.0:
            raise ValueError(f"unit_fraction must be in (0, 1], got {self.unit_fraction}")
        if not float(self.noise_std) >= 0.0:
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std}")
        if int(self.obs_seed) < 0:
            raise ValueError(f"obs_seed must be >= 0, got {self.obs_seed}")
        object.__setattr__(self, "unit_fraction", float(self.unit_fraction))
        object.__setattr__(self, "noise_std", float(self.noise_std))
        object.__setattr__(self, "obs_seed", int(self.obs_seed))
        object.__setattr__(self, "relative", relative_mode(self.relative))

    @property
    def is_full_access(self):
        return self.unit_fraction == 1.0 and self.noise_std == 0.0


#: Noiseless access to every unit (the paper's sections 4 and 5).
FULL_ACCESS = Condition(1.0, 0.0, 0)


def condition_grid(unit_fractions=(1.0,), noise_stds=(0.0,), obs_seeds=(0,), relative=False):
    """Every combination of the given values, with :data:`FULL_ACCESS` first.

    Full-access combinations with another seed are dropped (they would
    repeat the plain record). ``relative`` applies to every noisy condition.

    Returns
    -------
    list of Condition
    """
    grid = [FULL_ACCESS]
    for f, s, seed in product(unit_fractions, noise_stds, obs_seeds):
        condition = Condition(f, s, seed, relative=relative_mode(relative) if s > 0 else False)
        if not condition.is_full_access and condition not in grid:
            grid.append(condition)
    return grid


def _conditions(conditions):
    if conditions is None:
        return [FULL_ACCESS]
    out = [c if isinstance(c, Condition) else Condition(*c) for c in conditions]
    if len(set(out)) != len(out):
        raise ValueError(f"duplicated measurement conditions in {out}")
    return out


# --------------------------------------------------------------------------- statistics


def _percentile_index(n, q):
    # Same arithmetic as lrid_analysis.observables.nearest_rank_percentile.
    return int(np.rint((n - 1) * (1.0 - q / 100.0)))


def _descending_at(values, q):
    """Element ``rint((n - 1) * (1 - q / 100))`` of each row sorted in descending order.

    A selection, not a sort: the ``k``-th smallest of ``-values`` (NaN then
    sorts where numpy's ``-sort(-x)`` puts it). Done in the values' own dtype,
    which picks the same element as float64 would.
    """
    k = _percentile_index(values.shape[-1], q)
    return -torch.kthvalue(-values, k + 1, dim=-1).values


def _order_statistics(raw, magnitude, use_numpy=None):
    """Median and third quartile of ``abs`` and ``raw`` rows.

    ``use_numpy`` (default: on the CPU) picks numpy's partition over
    ``torch.kthvalue``; both give the same elements.

    Returns
    -------
    Tensor, shape (2, 2, n_rows)
        ``[quantile (50, 75), function (abs, raw), row]`` in the input dtype.
    """
    n = raw.shape[-1]
    k50, k75 = _percentile_index(n, 50.0), _percentile_index(n, 75.0)
    if use_numpy is None:
        use_numpy = raw.device.type == "cpu"
    if use_numpy:
        # numpy's single-k partition is SIMD-accelerated (x86-simd-sort) and
        # about ten times faster than a multi-k partition or torch.kthvalue on
        # the CPU. Select k50 first; the k75-th smallest (k75 <= k50) then lies
        # among the k50 values to its left. Both select exactly the same
        # elements (NaN last) as a full sort would.
        negated = -torch.stack([magnitude, raw]).numpy()
        picked = np.partition(negated, k50, axis=-1)
        at_k50 = picked[..., k50]
        at_k75 = at_k50 if k75 == k50 else np.partition(picked[..., :k50], k75, axis=-1)[..., k75]
        return torch.from_numpy(-np.stack([at_k50, at_k75]))
    return torch.stack([
        torch.stack([_descending_at(magnitude, q), _descending_at(raw, q)]) for q in (50.0, 75.0)
    ])


def _moments(values, median, third_quartile):
    """The 7 statistics (STATISTICS order) along the last axis, stacked last.

    One temporary the size of ``values`` (squared in place), and the norm from
    the first two moments (``||v||^2 = n (var + mean^2)``), so large rows do
    not pay for several fresh allocations.
    """
    n = values.shape[-1]
    mean = values.mean(dim=-1)
    sq_centred = values - mean.unsqueeze(-1)
    sq_centred.mul_(sq_centred)
    var = sq_centred.mean(dim=-1)
    fourth = sq_centred.mul_(sq_centred).mean(dim=-1)
    by_name = {
        "kurtosis": fourth / (var * var),
        "mean": mean,
        "median": median,
        "norm": torch.sqrt(n * (var + mean * mean)),
        "skew": 3.0 * (mean - median) / torch.sqrt(var),
        "thirdquartile": third_quartile,
        "var": var,
    }
    return torch.stack([by_name[s] for s in STATISTICS], dim=-1)


def unit_statistics(rows):
    """The seven distribution statistics of each row.

    Parameters
    ----------
    rows : Tensor, shape (n_rows, n_units)
        Values after the function was applied.

    Returns
    -------
    Tensor of float64, shape (n_rows, 7)
        Columns in :data:`lrid_analysis.observables.STATISTICS` order.
    """
    rows = _as_rows(rows)
    values = rows.to(torch.float64)
    return _moments(values, _descending_at(rows, 50.0).double(), _descending_at(rows, 75.0).double())


def function_statistics(rows):
    """The 21 statistics of one measure: 3 functions x 7 statistics, averaged over rows.

    The order statistics are selected in the input dtype (exact), the
    moments computed in float64 for the three functions at once.

    Parameters
    ----------
    rows : Tensor, shape (n_rows, n_units)
        One row per example (activations) or a single row (a weight kernel).

    Returns
    -------
    Tensor of float64, shape (21,)
        In the order of the public names: ``abs``, ``raw``, ``sq``, each with
        the statistics in :data:`~lrid_analysis.observables.STATISTICS` order.
    """
    raw = _as_rows(rows)
    magnitude = raw.abs()
    # selections: raw and abs; sq reuses abs (squaring is monotone on magnitudes)
    selected = _order_statistics(raw, magnitude).to(torch.float64)  # (2 quantiles, 2 functions, n_rows)
    median = torch.cat([selected[0], selected[0, :1] ** 2])
    third_quartile = torch.cat([selected[1], selected[1, :1] ** 2])
    raw64 = raw.to(torch.float64)
    # one function at a time: large activations then need fewer, smaller temporaries
    functions = (magnitude.to(torch.float64), raw64, raw64 * raw64)
    return torch.cat([_moments(values, median[i], third_quartile[i]).mean(dim=0)
                      for i, values in enumerate(functions)])


def _gradavg_functions(g):
    """``gradavg{abs,raw,sq}_id``: each function of the per-example values, averaged."""
    return torch.stack([g.abs().mean(), g.mean(), (g * g).mean()])


def _as_rows(rows):
    rows = torch.as_tensor(rows)
    if rows.ndim != 2 or rows.shape[1] == 0:
        raise ValueError(f"expected a (n_rows, n_units) tensor with n_units >= 1, got shape {tuple(rows.shape)}")
    if not rows.is_floating_point():
        rows = rows.to(torch.float64)
    return rows


# --------------------------------------------------------------------------- obfuscation


@functools.lru_cache(maxsize=1024)
def noise_seed(obs_seed, checkpoint, measure, network=0, layer=0):
    """Seed of the measurement noise of one measure of one layer of one network at one checkpoint.

    Every argument enters the seed, so the noise is independent across
    networks, layers, measures and checkpoints: a noise realisation shared
    by the networks being compared would cancel out of their differences.

    Parameters
    ----------
    obs_seed : int
    checkpoint : int
    measure : {"weight", "act", "gradavg", "gradfwd"}
    network : int
        The network's key (:func:`network_key`).
    layer : int
        The layer's index in its network.

    Returns
    -------
    int

    Examples
    --------
    >>> noise_seed(0, 3, "act", network=1) != noise_seed(0, 3, "act", network=2)
    True
    """
    entropy = [int(obs_seed), int(checkpoint), _MEASURE_CODES[measure], int(network), int(layer)]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> 1)


@functools.lru_cache(maxsize=4096)
def unit_seed(obs_seed, network=0, layer=0, role=0):
    """Seed of the unit draw of one layer of one network (a ``numpy.random.RandomState`` seed).

    The same units are kept at every checkpoint (a chronic recording), but
    each network, layer and observation seed has its own draw. ``role`` 0
    draws the recorded units (kernel entries, activations, input units of
    the Jacobian sums), 1 the output units whose Jacobian rows are summed.

    Returns
    -------
    int in [0, 2**32)

    Examples
    --------
    >>> unit_seed(0, network=1) != unit_seed(0, network=2)
    True
    """
    entropy = [int(obs_seed), int(network), int(layer), int(role), _UNIT_DRAW]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0])


def network_key(run_id):
    """A 64-bit integer key of a network from its ``run_id`` (stable across processes and machines).

    Examples
    --------
    >>> network_key("digits-resnet18-feedback-bs32-ms0-ds0") == network_key("digits-resnet18-feedback-bs32-ms0-ds0")
    True
    """
    return int.from_bytes(hashlib.sha256(str(run_id).encode()).digest()[:8], "little")


def standard_normal(shape, seed, device="cpu"):
    """Float64 standard normal draws from a CPU generator seeded with ``seed``, on ``device``.

    The latest draws are cached (treat the result as read-only): the noise
    levels of one unit fraction reuse one draw, scaled (common random numbers
    across noise levels), and drawing it once saves ~20 % of a noise-grid
    recording.
    """
    return _standard_normal(tuple(int(n) for n in shape), int(seed), str(device))


@functools.lru_cache(maxsize=16)
def _standard_normal(shape, seed, device):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(device)


def _typical_scale(values):
    """Population standard deviation over all entries (float64), the unit of relative noise."""
    return float(values.detach().to(torch.float64).std(correction=0))


@functools.lru_cache(maxsize=4096)
def _kept_units(n_units, unit_fraction, seed):
    """Indices of the kept units (shared between calls: never modify them), or None when every unit is kept.

    Cached: the same units are drawn at every checkpoint, and seeding a
    ``RandomState`` per layer, condition and checkpoint cost ~13 % of a
    recording with the embedded noise grid.
    """
    n_keep = n_kept_units(n_units, unit_fraction)
    if n_keep == n_units:
        return None
    return np.random.RandomState(int(seed)).permutation(n_units)[:n_keep]


def obfuscate_units(units, unit_fraction=1.0, noise_std=0.0, seed=0, batch_axis=True, noise_seed=None):
    """Measurement noise and unit subsampling, in torch.

    Keeps the same units as :func:`lrid_analysis.observables.obfuscate_units`
    for the same ``seed`` and adds i.i.d. Gaussian noise of std
    ``noise_std`` to each kept unit. Noise is drawn for the kept units only
    (``standard_normal((n_rows, n_kept), noise_seed)``, ``seed`` when
    ``noise_seed`` is None): since it is independent across units, this is
    the same measurement as noising every unit and then subsampling, at a
    fraction of the cost.

    Parameters
    ----------
    units : Tensor, shape (n_examples, ...) if ``batch_axis`` else any shape
    unit_fraction : float in (0, 1]
    noise_std : float >= 0
    seed : int
        Seed of the unit permutation.
    batch_axis : bool
        Whether the first axis indexes examples (never subsampled).
    noise_seed : int, optional

    Returns
    -------
    Tensor, shape (n_examples, n_kept) or (1, n_kept)
        float64 when noise is added, else in the input dtype.
    """
    if not noise_std >= 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    flat = units.reshape(units.shape[0], -1) if batch_axis else units.reshape(1, -1)
    keep = _kept_units(flat.shape[1], unit_fraction, seed)
    if keep is not None:
        flat = flat[:, torch.from_numpy(keep).to(flat.device)]
    if noise_std > 0:
        draw = standard_normal(flat.shape, seed if noise_seed is None else noise_seed, flat.device)
        flat = flat.to(torch.float64) + noise_std * draw
    return flat


def summed_jacobian(module, inputs, output_units=None):
    """Per-example input gradient of the summed (optionally subsampled) outputs.

    One vector-Jacobian product: ``J[n, i] = sum_j m_j d y[n, j] / d x[n, i]``
    with ``m`` a ones vector (restricted to ``output_units`` when given). In
    evaluation mode a layer treats examples independently, so one product
    gives every example's sums at once.

    Parameters
    ----------
    module : torch.nn.Module
        Maps the layer input to its recorded output.
    inputs : Tensor, shape (n_examples, ...)
    output_units : ndarray of int, optional
        Flat indices of the output units kept.

    Returns
    -------
    output : Tensor, shape (n_examples, ...)
        The module's output (detached).
    jacobian_sums : Tensor, shape (n_examples, n_input_units)
    """
    x, y = _forward_for_input_gradient(module, inputs)
    return y.detach(), _jacobian_sums(y, x, output_units)


def _forward_for_input_gradient(module, inputs):
    """Run ``module`` on a detached copy of ``inputs`` that requires grad.

    The module's parameters are frozen meanwhile: only the input gradient is
    wanted, and custom autograd functions (FA / IA) then skip the weight
    gradients.

    Returns
    -------
    x : Tensor (the leaf input), y : Tensor (the output, with its graph)
    """
    x = inputs.detach().requires_grad_(True)
    params = [p for p in module.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        with torch.enable_grad():
            y = module(x)
    finally:
        for p in params:
            p.requires_grad_(True)
    return x, y


def _jacobian_sums(y, x, output_units, retain_graph=False):
    """One vector-Jacobian product of ``y`` with a (masked) ones vector, flattened per example."""
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(y, x, grad_outputs=_output_mask(y, output_units), retain_graph=retain_graph)
    return grad.reshape(grad.shape[0], -1)


def _output_mask(y, output_units):
    if output_units is None:
        return torch.ones_like(y)
    mask = torch.zeros(y[0].numel(), dtype=y.dtype, device=y.device)
    mask[torch.from_numpy(np.asarray(output_units)).to(y.device)] = 1
    return mask.expand(y.shape[0], -1).reshape(y.shape)


def _feedback_layers(module):
    """The FA / IA layers inside ``module``: those holding a ``feedback_weight`` shaped like their ``weight``."""
    return [m for m in module.modules()
            if isinstance(getattr(m, "feedback_weight", None), torch.Tensor)
            and isinstance(getattr(m, "weight", None), torch.Tensor)
            and m.feedback_weight.shape == m.weight.shape]


@contextmanager
def _feedback_tied_to_weights(layers):
    """Within the block, every layer's feedback weights B hold a copy of its W (restored bit for bit after).

    An FA / IA layer's backward with B = W is backprop's, so a vector-Jacobian
    product taken inside gives the forward Jacobian.
    """
    saved = [layer.feedback_weight.detach().clone() for layer in layers]
    try:
        with torch.no_grad():
            for layer in layers:
                layer.feedback_weight.copy_(layer.weight)
        yield
    finally:
        with torch.no_grad():
            for layer, value in zip(layers, saved):
                layer.feedback_weight.copy_(value)


# --------------------------------------------------------------------------- recorder


def _default_weight_of(module):
    from lrid_generate.models import weight_of

    return weight_of(module)


class Recorder:
    """Observables of a model's observed layers on a fixed batch, at checkpoints.

    Parameters
    ----------
    model : torch.nn.Module
        With ``observed_layers``: objects with ``name``, ``module``,
        ``position`` and ``index`` (depth order).
    inputs : Tensor, shape (n_examples, C, H, W)
        The fixed validation batch, on the model's device.
    conditions : sequence of Condition or (fraction, std, seed) tuples, optional
        Measurement conditions; default only :data:`FULL_ACCESS`.
    weight_of : callable, optional
        Maps an observed module to its forward kernel
        (default :func:`lrid_generate.models.weight_of`).
    network_key : int
        This network's key (:func:`network_key` of its ``run_id``). It seeds,
        with each layer's index, the kept units and the measurement noise,
        so these are independent across networks and layers: give every
        network of a dataset its own key.

    Notes
    -----
    The observed layers are looked up once, here: build the recorder after
    converting the model to its learning rule.

    Attributes
    ----------
    layers : list
        The observed layers in depth order.
    conditions : list of Condition
    seconds : float
        Time spent recording so far.
    layer_sizes : dict
        Layer name -> ``(n_inputs, n_outputs, n_weights)``: input and output
        units per example and kernel entries (filled by :meth:`observe`).
    initial_scales : dict
        ``(layer name, measure)`` -> the typical scale at the first
        :meth:`observe`, the unit of ``relative="initial"`` noise.
    """

    def __init__(self, model, inputs, conditions=None, weight_of=None, network_key=0):
        self.model = model
        self.inputs = inputs
        self.layers = sorted(model.observed_layers, key=lambda layer: layer.index)
        if not self.layers:
            raise ValueError("the model has no observed layers")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"observed layer names are not unique: {names}")
        self.conditions = _conditions(conditions)
        self.weight_of = weight_of or _default_weight_of
        self.network_key = int(network_key)
        self.seconds = 0.0
        self.layer_sizes = {}
        self.initial_scales = {}

    def _capture_inputs(self):
        captured = {}

        def hook_for(name):
            def hook(module, args):
                captured.setdefault(name, []).append(args[0].detach().clone())

            return hook

        handles = [layer.module.register_forward_pre_hook(hook_for(layer.name)) for layer in self.layers]
        try:
            with torch.no_grad():
                self.model(self.inputs)
        finally:
            for handle in handles:
                handle.remove()
        for layer in self.layers:
            calls = len(captured.get(layer.name, ()))
            if calls != 1:
                raise RuntimeError(
                    f"observed layer {layer.name!r} ran {calls} times in one forward pass; the recorder "
                    "needs every observed module called exactly once"
                )
        return {name: inputs[0] for name, inputs in captured.items()}

    def _layer_values(self, layer, inputs, checkpoint):
        """Tensor (n_conditions, 48) of one layer: the 45 observables, then ``gradfwd``."""
        weight = self.weight_of(layer.module).detach()
        x, y = _forward_for_input_gradient(layer.module, inputs)
        act = y.detach()
        n_out_all = act[0].numel()
        self.layer_sizes[layer.name] = (int(x[0].numel()), int(n_out_all), int(weight.numel()))
        # every (network, layer, observation seed) draws its own units; output units (role 1) apart from inputs
        net, index = self.network_key, layer.index
        output_units = {c: _kept_units(n_out_all, c.unit_fraction, unit_seed(c.obs_seed, net, index, 1))
                        for c in self.conditions}
        keys = {c: None if u is None else (c.unit_fraction, c.obs_seed) for c, u in output_units.items()}
        wanted = {keys[c]: output_units[c] for c in self.conditions}
        jacobians = {key: _jacobian_sums(y, x, units, retain_graph=True) for key, units in wanted.items()}
        feedback = _feedback_layers(layer.module)
        if feedback:  # the forward Jacobian: the same product with B tied to W
            with _feedback_tied_to_weights(feedback):
                xf, yf = _forward_for_input_gradient(layer.module, inputs)
                forward = {key: _jacobian_sums(yf, xf, units, retain_graph=True) for key, units in wanted.items()}
        else:  # backprop layers: the layer's own backward is the forward Jacobian
            forward = jacobians
        out = []
        for condition in self.conditions:
            f, s, seed = condition.unit_fraction, condition.noise_std, condition.obs_seed
            units, key = output_units[condition], keys[condition]
            n_out = n_out_all if units is None else len(units)
            values = {"weight": weight, "act": act, "gradavg": jacobians[key], "gradfwd": forward[key]}
            kept_seed = unit_seed(seed, net, index, 0)
            rows = {}
            for measure, value in values.items():
                std = s * self._noise_scale(layer.name, measure, value, condition.relative) if s > 0 else s
                measure_noise_seed = noise_seed(seed, checkpoint, measure, net, index) if s > 0 else None
                rows[measure] = obfuscate_units(value, f, std, kept_seed, batch_axis=measure != "weight",
                                                noise_seed=measure_noise_seed)
            out.append(torch.cat([
                function_statistics(rows["weight"]), function_statistics(rows["act"]),
                _gradavg_functions(rows["gradavg"].sum(dim=1) / n_out),
                _gradavg_functions(rows["gradfwd"].sum(dim=1) / n_out),
            ]))
        return torch.stack(out)

    def _noise_scale(self, layer_name, measure, value, relative):
        """The unit of a relative noise std (1 for absolute noise); ``"initial"`` keeps the first one measured."""
        if not relative:
            return 1.0
        if relative == "checkpoint":
            return _typical_scale(value)
        key = (layer_name, measure)
        if key not in self.initial_scales:
            self.initial_scales[key] = _typical_scale(value)
        return self.initial_scales[key]

    def observe(self, checkpoint=0):
        """The observables of every layer and condition now.

        The model runs in evaluation mode (batch-norm running statistics, no
        dropout), so each example's Jacobian is its own; its mode is
        restored afterwards.

        Parameters
        ----------
        checkpoint : int
            Seeds the measurement noise (fresh noise at every checkpoint).

        Returns
        -------
        ndarray of float64, shape (n_layers, n_conditions, 48)
            Columns in :data:`RECORDED_NAMES` order.
        """
        start = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        try:
            captured = self._capture_inputs()
            values = torch.stack(
                [self._layer_values(layer, captured[layer.name], checkpoint) for layer in self.layers]
            )
            result = values.cpu().numpy()
        finally:
            self.model.train(was_training)
        self.seconds += time.perf_counter() - start
        return result

    def record(self, checkpoint, epoch=None):
        """Tidy rows for one checkpoint.

        Parameters
        ----------
        checkpoint : int
        epoch : float, optional
            Training progress in epochs.

        Returns
        -------
        pandas.DataFrame, shape (n_layers * n_conditions, 59)
            Columns ``layer_name``, ``layer_index``, ``layer_position``,
            ``checkpoint``, ``epoch``, ``unit_fraction``, ``noise_std``,
            ``obs_seed``, ``n_inputs``, ``n_outputs``, ``n_weights`` (:data:`SIZE_COLUMNS`),
            the 45 observables and the three ``gradfwd`` columns.
        """
        values = self.observe(checkpoint)
        n_layers, n_conditions = values.shape[:2]
        frame = pd.DataFrame(
            values.reshape(-1, len(RECORDED_NAMES)).astype(np.float32), columns=list(RECORDED_NAMES)
        )
        meta = pd.DataFrame(
            {
                "layer_name": np.repeat([layer.name for layer in self.layers], n_conditions),
                "layer_index": np.repeat([int(layer.index) for layer in self.layers], n_conditions),
                "layer_position": np.repeat([layer.position for layer in self.layers], n_conditions),
                "checkpoint": int(checkpoint),
                "epoch": np.nan if epoch is None else float(epoch),
                "unit_fraction": np.tile([c.unit_fraction for c in self.conditions], n_layers),
                "noise_std": np.tile([c.noise_std for c in self.conditions], n_layers),
                "obs_seed": np.tile([c.obs_seed for c in self.conditions], n_layers),
                **{column: np.repeat([self.layer_sizes[layer.name][i] for layer in self.layers], n_conditions)
                   for i, column in enumerate(SIZE_COLUMNS)},
            }
        )
        return pd.concat([meta, frame], axis=1)

