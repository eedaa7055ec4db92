"""Sweeps: grids of training runs, one resumable Parquet shard per network.

A :class:`Preset` names a grid (learning rules x tasks x architectures x
batch sizes x model seeds x dataset seeds) with its training length, learning
rates and recording settings; :meth:`Preset.specs` expands it into
:class:`RunSpec` objects, one per network. :func:`train_network` trains one
network while the :class:`~lrid_generate.recorder.Recorder` records it, and
:func:`run_sweep` runs every network that has no shard yet, writing
``<out>/source=<preset>/task=<task>/<run_id>.parquet`` atomically, so a
killed sweep resumes where it stopped without missing or repeating a network.

Seeds. The public data has two settings per seed, ``None`` and ``0``; both
are kept in the ``model_seed`` / ``dataset_seed`` columns. The generator makes
``None`` reproducible: model seed ``None`` initialises with
:data:`DEFAULT_MODEL_SEED`, dataset seed ``None`` orders the data with
:data:`lrid_generate.tasks.DEFAULT_DATASET_SEED`; ``0`` uses seed 0.

Learning rates. Each preset gives a base learning rate per rule at a base
batch size (times an optional factor per rule / task / architecture), scaled
with the batch size, linearly (``lr = base[rule] * factor * batch /
base_batch``, the reference code's rule) or with its square root. The rate is
constant over training (no schedule).

Initialisation. Presets may rescale the architectures' reference
initialisation to unit-variance layer outputs
(:func:`rescale_initial_weights`); the shipped presets do, because the
reference initialisers starve scaled-down networks on standardised inputs.

Diverged runs. A run whose loss becomes NaN or infinite stops at the next
checkpoint. Its checkpoints so far go to ``<out>/_diverged/...`` (a folder
the dataset loader skips, since the analysis needs complete trajectories)
and its summary says ``status: diverged``; the sweep carries on.

Compaction. Once every network of a preset is stored, :func:`compact` can
merge each task folder's shards into one ``compacted.parquet`` (the
``embedded`` preset does so by default): a shipped dataset then has a few
files instead of hundreds of small ones. Resuming and the summaries work the
same on compacted folders.

Records. Every shard's footer holds its network's spec, summary and the
software versions. The summaries (status, final training / validation loss
and accuracy, times) of every network are gathered in ``<out>/runs.json``;
the grid, versions and counts of each preset in ``<out>/sweep.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

import lrid_generate
from lrid_analysis.atomic import write_text_atomic
from lrid_analysis.dataset import write_table
from lrid_generate.recorder import FULL_ACCESS, Condition, Recorder, condition_grid
from lrid_generate.tasks import make_task, resolve_dataset_seed

__all__ = [
    "DEFAULT_MODEL_SEED",
    "NoiseGrid",
    "Preset",
    "PRESETS",
    "RunSpec",
    "SweepError",
    "checkpoint_steps",
    "resolve_model_seed",
    "run_id",
    "shard_path",
    "train_network",
    "run_sweep",
    "collect_runs",
    "compact",
    "keep_freed_memory",
    "versions",
]

#: Initialisation choices: the architectures' own, or rescaled to unit variance.
INIT_SCALINGS = ("reference", "unit_variance")
#: Initialisation seed of a run whose ``model_seed`` is None.
DEFAULT_MODEL_SEED = 20201
RUN_METADATA_KEY = "lrid_run"
RUNS_METADATA_KEY = "lrid_runs"
#: File name of a task folder's merged shards (see :func:`compact`).
COMPACTED_NAME = "compacted.parquet"


class SweepError(RuntimeError):
    """A sweep cannot go on (inconsistent output folder, bad preset)."""


def resolve_model_seed(model_seed):
    """The integer initialisation seed: ``None`` maps to :data:`DEFAULT_MODEL_SEED`."""
    if model_seed is None:
        return DEFAULT_MODEL_SEED
    seed = int(model_seed)
    if seed < 0:
        raise ValueError(f"model_seed must be None or >= 0, got {model_seed}")
    return seed


def run_id(task, architecture, learning_rule, batch_size, model_seed, dataset_seed):
    """Stable id of one network, e.g. ``digits-knet-adam-bs64-msNone-ds0``.

    Same format as :func:`lrid_analysis.synthetic.network_id`.
    """
    def seed(s):
        return "None" if s is None else str(int(s))

    return f"{task}-{architecture}-{learning_rule}-bs{int(batch_size)}-ms{seed(model_seed)}-ds{seed(dataset_seed)}"


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one trained and recorded network.

    Attributes
    ----------
    source : str
        The preset name (the ``source`` column).
    task, architecture, learning_rule : str
    batch_size : int
    model_seed, dataset_seed : int or None
        As written in the data (None is a setting of its own, see module docs).
    epochs : int
    lr, weight_decay : float
    width : float
        Channel / unit multiplier of the architecture.
    n_checkpoints : int
        Recording points spread evenly over training (0 = before training).
    conditions : tuple of Condition
        Measurement conditions; the first is full access.
    base_optimizer : str
        Optimizer driving FA / IA (``sgdm`` or ``adam``).
    n_val : int
        Size of the validation batch the observables are recorded on.
    task_options : tuple of (key, value)
        Passed to :func:`lrid_generate.tasks.make_task`.
    init_scaling : {"reference", "unit_variance"}
        See :func:`rescale_initial_weights`.
    """

    source: str
    task: str
    architecture: str
    learning_rule: str
    batch_size: int
    model_seed: int | None
    dataset_seed: int | None
    epochs: int
    lr: float
    weight_decay: float
    width: float = 1.0
    n_checkpoints: int = 21
    conditions: tuple = (FULL_ACCESS,)
    base_optimizer: str = "sgdm"
    n_val: int = 256
    task_options: tuple = ()
    init_scaling: str = "reference"

    def __post_init__(self):
        if self.init_scaling not in INIT_SCALINGS:
            raise ValueError(f"init_scaling must be one of {INIT_SCALINGS}, got {self.init_scaling!r}")

    @property
    def run_id(self):
        return run_id(self.task, self.architecture, self.learning_rule, self.batch_size,
                      self.model_seed, self.dataset_seed)

    def to_dict(self):
        out = dataclasses.asdict(self)
        out["conditions"] = [list(dataclasses.astuple(c)) for c in self.conditions]
        out["task_options"] = dict(self.task_options)
        return out

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        data["conditions"] = tuple(Condition(*c) for c in data["conditions"])
        data["task_options"] = tuple(sorted(data.get("task_options", {}).items()))
        return cls(**data)


@dataclass(frozen=True)
class NoiseGrid:
    """Extra measurement conditions recorded for some networks of a preset.

    Networks whose rule, task and architecture are all listed get every
    combination of ``unit_fractions`` x ``noise_stds`` x ``obs_seeds`` (besides
    full access); noise stds are absolute (in the units of each measure).
    """

    rules: tuple
    tasks: tuple
    architectures: tuple
    unit_fractions: tuple
    noise_stds: tuple
    obs_seeds: tuple = (0,)

    def applies(self, rule, task, architecture):
        return rule in self.rules and task in self.tasks and architecture in self.architectures

    def conditions(self):
        return tuple(condition_grid(self.unit_fractions, self.noise_stds, self.obs_seeds))


_WEIGHT_DECAY = {"resnet": 1e-4, "alexnet": 5e-4, "knet": 1e-5}
_SIMCLR_WEIGHT_DECAY = 1e-6


def reference_weight_decay(task, architecture):
    """Coupled L2 decay of the reference code: ResNet 1e-4, AlexNet 5e-4, KNet 1e-5, SimCLR 1e-6."""
    if task.endswith("_simclr"):
        return _SIMCLR_WEIGHT_DECAY
    for family, value in _WEIGHT_DECAY.items():
        if architecture.startswith(family):
            return value
    raise ValueError(f"no weight decay known for architecture {architecture!r}")


@dataclass(frozen=True)
class Preset:
    """A named sweep grid with its training and recording settings.

    Attributes
    ----------
    name : str
    description : str
    rules, tasks, architectures : tuple of str
    batch_sizes : tuple of int
    model_seeds, dataset_seeds : tuple of (int or None)
    epochs : int or dict
        Training length; a dict maps task names to epochs.
    learning_rates : dict
        Rule -> learning rate at ``base_batch``.
    lr_factors : dict
        Multiplier of the learning rate keyed by ``(rule, task, architecture)``,
        ``(rule, architecture)``, ``(task, architecture)``, ``architecture`` or
        ``task`` (first match in that order; default 1).
    base_batch : int
        Batch size at which ``learning_rates`` apply.
    lr_scaling : {"linear", "sqrt"}
        How the rate follows the batch size: ``(batch / base_batch)`` or its
        square root.
    width : float or dict
        Width multiplier; a dict maps architectures to widths.
    n_checkpoints : int
    noise : NoiseGrid or None
    base_optimizer : str
    n_val : int
    task_options : dict
        Task name -> options for :func:`~lrid_generate.tasks.make_task`.
    weight_decay : dict
        Overrides of :func:`reference_weight_decay`, keyed like ``lr_factors``.
    init_scaling : {"reference", "unit_variance"}
        ``reference`` keeps the architectures' reference initialisation;
        ``unit_variance`` rescales it with :func:`rescale_initial_weights`.
    compact : bool
        Merge the per-network shards of each task into one file once every
        network is done (see :func:`compact`); fewer, larger files.
    """

    name: str
    description: str
    rules: tuple
    tasks: tuple
    architectures: tuple
    batch_sizes: tuple
    model_seeds: tuple
    dataset_seeds: tuple
    epochs: object
    learning_rates: dict
    lr_factors: dict = field(default_factory=dict)
    base_batch: int = 256
    lr_scaling: str = "linear"
    width: object = 1.0
    n_checkpoints: int = 21
    noise: NoiseGrid | None = None
    base_optimizer: str = "sgdm"
    n_val: int = 256
    task_options: dict = field(default_factory=dict)
    weight_decay: dict = field(default_factory=dict)
    init_scaling: str = "reference"
    compact: bool = False

    def _lookup(self, table, task, architecture, default):
        for key in ((task, architecture), architecture, task):
            if key in table:
                return table[key]
        return default

    def learning_rate(self, task, architecture, rule, batch_size):
        """``base[rule] * factor(rule, task, architecture) * scale(batch_size / base_batch)``."""
        if rule not in self.learning_rates:
            raise SweepError(f"preset {self.name!r} has no learning rate for rule {rule!r}")
        factor = 1.0
        for key in ((rule, task, architecture), (rule, architecture), (task, architecture), architecture, task):
            if key in self.lr_factors:
                factor = self.lr_factors[key]
                break
        ratio = int(batch_size) / int(self.base_batch)
        if self.lr_scaling == "sqrt":
            ratio = math.sqrt(ratio)
        elif self.lr_scaling != "linear":
            raise SweepError(f"preset {self.name!r}: lr_scaling must be 'linear' or 'sqrt', got {self.lr_scaling!r}")
        return float(self.learning_rates[rule]) * float(factor) * ratio

    def weight_decay_for(self, task, architecture):
        """The preset's override if any, else :func:`reference_weight_decay`."""
        value = self._lookup(self.weight_decay, task, architecture, None)
        return float(reference_weight_decay(task, architecture) if value is None else value)

    def specs(self):
        """Every network of the grid, in a stable order (rule varies fastest).

        Returns
        -------
        list of RunSpec
        """
        out = []
        for task, arch, batch, ms, ds, rule in product(
            self.tasks, self.architectures, self.batch_sizes, self.model_seeds, self.dataset_seeds, self.rules
        ):
            epochs = self.epochs[task] if isinstance(self.epochs, dict) else self.epochs
            width = self.width[arch] if isinstance(self.width, dict) else self.width
            conditions = (FULL_ACCESS,)
            if self.noise is not None and self.noise.applies(rule, task, arch):
                conditions = self.noise.conditions()
            out.append(RunSpec(
                source=self.name, task=task, architecture=arch, learning_rule=rule, batch_size=int(batch),
                model_seed=ms, dataset_seed=ds, epochs=int(epochs),
                lr=self.learning_rate(task, arch, rule, batch),
                weight_decay=self.weight_decay_for(task, arch),
                width=float(width), n_checkpoints=int(self.n_checkpoints), conditions=conditions,
                base_optimizer=self.base_optimizer, n_val=int(self.n_val),
                task_options=tuple(sorted(self.task_options.get(task, {}).items())),
                init_scaling=self.init_scaling,
            ))
        return out

    def to_dict(self):
        """JSON-friendly description (tuples become lists, dict keys strings)."""
        def clean(value):
            if isinstance(value, dict):
                return {("/".join(k) if isinstance(k, tuple) else str(k)): clean(v) for k, v in value.items()}
            if isinstance(value, (tuple, list)):
                return [clean(v) for v in value]
            if dataclasses.is_dataclass(value):
                return clean(dataclasses.asdict(value))
            return value

        return {f.name: clean(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def describe(self):
        """A few lines listing the grid."""
        n = len(self.rules) * len(self.tasks) * len(self.architectures) * len(self.batch_sizes) * \
            len(self.model_seeds) * len(self.dataset_seeds)
        lines = [
            f"{self.name}: {self.description}",
            f"  networks       {n}",
            f"  rules          {', '.join(self.rules)}",
            f"  tasks          {', '.join(self.tasks)}",
            f"  architectures  {', '.join(self.architectures)}",
            f"  batch sizes    {', '.join(map(str, self.batch_sizes))}",
            f"  model seeds    {', '.join(map(str, self.model_seeds))}",
            f"  dataset seeds  {', '.join(map(str, self.dataset_seeds))}",
            f"  epochs         {self.epochs}",
            f"  learning rates {self.learning_rates} at batch {self.base_batch}, {self.lr_scaling} in batch size"
            + (f", factors {self.lr_factors}" if self.lr_factors else ""),
            f"  width          {self.width}",
            f"  checkpoints    {self.n_checkpoints}, validation batch {self.n_val}",
            f"  initialisation {self.init_scaling}",
        ]
        if self.noise is not None:
            g = self.noise
            lines.append(
                f"  unit-noise grid for {', '.join(g.rules)} on {', '.join(g.tasks)} x {', '.join(g.architectures)}: "
                f"unit fractions {list(g.unit_fractions)} x noise std {list(g.noise_stds)} x seeds {list(g.obs_seeds)}"
            )
        return "\n".join(lines)


_ALL_RULES = ("sgdm", "adam", "feedback", "information")

# Small networks for the CPU presets (digits upsampled to 16 x 16, like the
# 16 x 16 signal1d spectrograms). Learning rates at batch 256, scaled with the
# square root of the batch size. IA is capped by the stability of its local
# loss (it sums over pixels: learning rates above ~0.04 make B blow up on
# these networks), FA uses a larger rate because its reference-scale B sends
# small errors to the hidden layers.
_CPU_LR = {"sgdm": 0.05, "adam": 0.01, "feedback": 0.3, "information": 0.04}
_DIGITS16 = {"image_size": 16}

PRESETS = {
    "tiny": Preset(
        name="tiny",
        description="CI smoke test: all four rules, one small KNet on digits, a few seconds on one CPU core",
        rules=_ALL_RULES,
        tasks=("digits",),
        architectures=("knet",),
        batch_sizes=(64,),
        model_seeds=(None,),
        dataset_seeds=(None,),
        epochs=2,
        learning_rates=_CPU_LR,
        base_batch=256,
        lr_scaling="sqrt",
        width=0.25,
        n_checkpoints=5,
        n_val=32,
        init_scaling="unit_variance",
        noise=NoiseGrid(rules=("feedback", "information"), tasks=("digits",), architectures=("knet",),
                        unit_fractions=(1.0, 0.5), noise_stds=(0.0, 0.5)),
    ),
    "embedded": Preset(
        name="embedded",
        description=(
            "the dataset shipped with lrid: four rules x digits / digits SimCLR / signal1d x four "
            "scaled-down architectures x 12 settings (batch 32/64/128 standing for 128/256/512, "
            "model seeds None/0, dataset seeds None/0), 21 checkpoints, plus a unit-noise grid for FA and IA "
            "on KNet (digits, digits SimCLR)"
        ),
        rules=_ALL_RULES,
        tasks=("digits", "digits_simclr", "signal1d"),
        architectures=("knet", "knetlrn", "knetc4", "alexnet"),
        batch_sizes=(32, 64, 128),
        model_seeds=(None, 0),
        dataset_seeds=(None, 0),
        epochs=8,
        learning_rates=_CPU_LR,
        lr_factors={("information", "alexnet"): 0.5},
        base_batch=256,
        lr_scaling="sqrt",
        width={"knet": 0.25, "knetlrn": 0.25, "knetc4": 0.25, "alexnet": 0.0625},
        n_checkpoints=21,
        n_val=64,
        task_options={"digits": _DIGITS16, "digits_simclr": _DIGITS16},
        init_scaling="unit_variance",
        noise=NoiseGrid(rules=("feedback", "information"), tasks=("digits", "digits_simclr"),
                        architectures=("knet",), unit_fractions=(1.0, 0.25, 0.05),
                        noise_stds=(0.0, 0.5)),
        compact=True,
    ),
    "cifar10_knet": Preset(
        name="cifar10_knet",
        description=(
            "for a GPU: the four KNet variants x four rules x 12 settings on CIFAR-10 (needs a local "
            "copy, see --data-dir), batch 128/256/512, 21 checkpoints over 20 epochs"
        ),
        rules=_ALL_RULES,
        tasks=("cifar10",),
        architectures=("knet", "knetlrn", "knetc4", "knetc4lrn"),
        batch_sizes=(128, 256, 512),
        model_seeds=(None, 0),
        dataset_seeds=(None, 0),
        epochs=20,
        # Short CPU trials on CIFAR-shaped data: IA's local loss (summed over 32 x 32 pixels) blows up
        # above ~0.003, FA above ~0.05; untested on real CIFAR-10 (pilot a few networks with --limit).
        learning_rates={"sgdm": 0.02, "adam": 1e-3, "feedback": 0.01, "information": 0.002},
        base_batch=256,
        lr_scaling="sqrt",
        width=1.0,
        n_checkpoints=21,
        n_val=256,
        init_scaling="unit_variance",
    ),
}


# --------------------------------------------------------------------------- training


def rescale_initial_weights(model, inputs, kernel_of=None):
    """Rescale each recorded layer's initial kernel so its output has unit std on ``inputs``.

    Layer by layer in depth order (a layer-sequential unit-variance
    initialisation), the forward kernel ``W`` of each observed layer is
    divided by the standard deviation of its kernel's output (the linear
    projection without bias, before any nonlinearity or normalisation) over
    ``inputs``. The reference initialisers (e.g. KNet's normal(1e-4) first
    layer, fixed-std dense layers) were tuned for full-width networks on
    raw-pixel inputs; on scaled-down networks and standardised inputs their
    signal vanishes and SGD-family rules barely move in a short run.

    FA / IA feedback kernels ``B`` keep the reference initialiser's draw
    (:func:`lrid_generate.rules.convert`). Rescaling ``B`` with ``W`` was
    tried: on the networks without batch norm (KNet, AlexNet) FA then blew
    up for most seeds (loss growing from the first epoch), while with the
    reference-scale ``B`` it trains stably. Batch-norm statistics are left
    untouched and dropout is off during the measurement.

    Parameters
    ----------
    model : LayeredModel
    inputs : Tensor, shape (n, C, H, W)
    kernel_of : callable, optional
        Observed module -> its ``nn.Linear`` / ``nn.Conv2d``
        (default :func:`lrid_generate.models.kernel_module`).

    Returns
    -------
    list of float
        The factors applied, in depth order.
    """
    if kernel_of is None:
        from lrid_generate.models import kernel_module as kernel_of
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    was_training = model.training
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.eval()
    factors = []
    try:
        for layer in sorted(model.observed_layers, key=lambda item: item.index):
            kernel = kernel_of(layer.module)
            captured = {}
            handle = kernel.register_forward_hook(lambda mod, args, out: captured.__setitem__("y", out))
            try:
                with torch.no_grad():
                    model(inputs)
            finally:
                handle.remove()
            y = captured["y"]
            if getattr(kernel, "bias", None) is not None:
                shape = (1, -1) + (1,) * (y.ndim - 2)
                y = y - kernel.bias.detach().view(shape)
            std = float(y.double().std())
            factor = 1.0 / std if np.isfinite(std) and std > 0 else 1.0
            with torch.no_grad():
                kernel.weight.mul_(factor)
            factors.append(factor)
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in buffers and not name.endswith("feedback_weight"):
                    b.copy_(buffers[name])
    return factors


def checkpoint_steps(total_steps, n_checkpoints):
    """Training steps at which to record: evenly spread, 0 first and ``total_steps`` last.

    Raises
    ------
    ValueError
        When there are fewer steps than checkpoint intervals.
    """
    if n_checkpoints < 2:
        raise ValueError(f"n_checkpoints must be >= 2, got {n_checkpoints}")
    if total_steps < n_checkpoints - 1:
        raise ValueError(
            f"{total_steps} training steps cannot hold {n_checkpoints} distinct checkpoints; "
            "train longer or use a smaller batch"
        )
    return np.rint(np.linspace(0, total_steps, n_checkpoints)).astype(np.int64)


_TASK_CACHE = {}


def _task_for(spec, device, data_dir):
    key = (spec.task, str(device), None if data_dir is None else str(data_dir), spec.n_val, spec.task_options)
    if key not in _TASK_CACHE:
        _TASK_CACHE.clear()  # keep one task's tensors per process
        _TASK_CACHE[key] = make_task(spec.task, device=device, data_dir=data_dir, n_val=spec.n_val,
                                     **dict(spec.task_options))
    return _TASK_CACHE[key]


def train_network(spec, device="cpu", data_dir=None):
    """Train one network and record its observables at every checkpoint.

    Parameters
    ----------
    spec : RunSpec
    device : str or torch.device
    data_dir : str or Path, optional
        Where local datasets live (see :func:`lrid_generate.tasks.make_task`).

    Returns
    -------
    rows : pandas.DataFrame
        Tidy rows (DESIGN section 4) of the checkpoints reached.
    summary : dict
        ``status`` (``complete`` or ``diverged``), ``checkpoints_recorded``,
        final ``train_loss`` / ``train_accuracy`` (mean over the last epoch),
        ``val_loss`` / ``val_accuracy`` (validation batch, evaluation mode),
        ``seconds``, ``record_seconds``, ``steps``, resolved seeds.
    """
    from lrid_generate.models import build_model, weight_of
    from lrid_generate.rules import convert, local_loss, make_optimizer

    device = torch.device(device)
    task = _task_for(spec, device, data_dir)
    start = time.perf_counter()  # after loading the data (cached across runs of a process)
    model_seed = resolve_model_seed(spec.model_seed)
    order_seed = resolve_dataset_seed(spec.dataset_seed)
    torch.manual_seed(model_seed)  # dropout and anything else drawing from the global state
    model = build_model(
        spec.architecture, task.n_outputs, task.input_shape, width=spec.width, head=task.head, seed=model_seed,
        projection_dim=task.projection_dim if task.kind == "simclr" else None,
    )
    model = convert(model, spec.learning_rule, seed=model_seed).to(device)
    if spec.init_scaling == "unit_variance":
        rescale_initial_weights(model, task.x_train[:256])
    model.train()
    optimizer = make_optimizer(
        model, spec.learning_rule, spec.lr, spec.weight_decay, base_optimizer=spec.base_optimizer
    )
    recorder = Recorder(model, task.x_val, conditions=spec.conditions, weight_of=weight_of)

    steps_per_epoch = task.steps_per_epoch(spec.batch_size)
    total = spec.epochs * steps_per_epoch
    record_at = checkpoint_steps(total, spec.n_checkpoints)
    order_generator = torch.Generator().manual_seed(order_seed)
    view_generator = torch.Generator(device=device).manual_seed(order_seed + 1)

    frames = [recorder.record(0, epoch=0.0)]
    next_ckpt = 1
    step = 0
    status = "complete"
    bad = torch.zeros((), dtype=torch.bool, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct_sum = torch.zeros((), dtype=torch.float64, device=device)
    for _epoch in range(spec.epochs):
        loss_sum.zero_()
        correct_sum.zero_()
        for batch in task.epoch_batches(spec.batch_size, order_generator):
            loss, correct = task.forward(model, batch, view_generator)
            total_loss = loss + local_loss(model)
            optimizer.zero_grad(set_to_none=True)
            total_loss.backward()
            optimizer.step()
            step += 1
            detached = total_loss.detach()
            bad |= ~torch.isfinite(detached)
            loss_sum += loss.detach()
            correct_sum += correct
            if step == record_at[next_ckpt]:
                if bool(bad):
                    status = "diverged"
                    break
                frames.append(recorder.record(next_ckpt, epoch=step / steps_per_epoch))
                next_ckpt += 1
        if status == "diverged":
            break

    summary = {
        "run_id": spec.run_id,
        "source": spec.source,
        "paper_task": task.paper_task,
        "status": status,
        "checkpoints_recorded": len(frames),
        "steps": step,
        "steps_total": int(total),
        "model_seed_used": model_seed,
        "dataset_seed_used": order_seed,
        "device": str(device),
    }
    if status == "complete":
        summary["train_loss"] = float(loss_sum) / steps_per_epoch
        summary["train_accuracy"] = float(correct_sum) / (steps_per_epoch * task.n_scored(spec.batch_size))
        summary.update({f"val_{k}": v for k, v in task.evaluate(model).items()})
    summary["record_seconds"] = recorder.seconds
    summary["seconds"] = time.perf_counter() - start
    rows = pd.concat(frames, ignore_index=True)
    run_columns = {
        "source": spec.source, "run_id": spec.run_id, "task": spec.task, "architecture": spec.architecture,
        "learning_rule": spec.learning_rule, "batch_size": spec.batch_size,
        "model_seed": pd.array([spec.model_seed] * len(rows), dtype="Int64"),
        "dataset_seed": pd.array([spec.dataset_seed] * len(rows), dtype="Int64"),
    }
    rows = rows.assign(**run_columns)
    return rows, summary


# --------------------------------------------------------------------------- output folder


def shard_path(out, spec, diverged=False):
    """Where a network's shard lives: ``<out>/[_diverged/]source=<s>/task=<t>/<run_id>.parquet``."""
    root = Path(out) / "_diverged" if diverged else Path(out)
    return root / f"source={spec.source}" / f"task={spec.task}" / f"{spec.run_id}.parquet"


def versions():
    """Versions of the software that generated the data."""
    return {
        "lrid": lrid_generate.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _write_json(path, data):
    """Write JSON atomically (keys sorted, one-space indent)."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def _stored_runs(out):
    """Every network stored under ``out``: ``{(source, run_id): (record, path)}``.

    A record is ``{"spec": ..., "summary": ..., "versions": ...}`` from a
    shard's footer (key ``lrid_run``) or from a compacted file's footer (key
    ``lrid_runs``, one record per network). Parquet files without either key
    and hidden files are ignored.
    """
    out = Path(out)
    runs = {}
    if not out.is_dir():
        return runs
    for path in sorted(out.rglob("*.parquet")):
        if any(part.startswith(".") for part in path.relative_to(out).parts):
            continue
        try:
            metadata = pq.read_schema(path).metadata or {}
        except Exception as err:  # noqa: BLE001 - name the file
            raise SweepError(f"{path}: not a readable Parquet file ({err}); delete it and run again") from err
        if RUNS_METADATA_KEY.encode() in metadata:
            records = json.loads(metadata[RUNS_METADATA_KEY.encode()])
        elif RUN_METADATA_KEY.encode() in metadata:
            record = json.loads(metadata[RUN_METADATA_KEY.encode()])
            records = {RunSpec.from_dict(record["spec"]).run_id: record}
        else:
            continue
        for run, record in records.items():
            runs.setdefault((record["spec"]["source"], run), (record, path))
    return runs


def _check_same_spec(spec, record, path):
    stored, current = record["spec"], spec.to_dict()
    if stored != current:
        changed = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
        raise SweepError(
            f"{path} holds {spec.run_id} trained with different settings ({', '.join(changed)} differ); "
            "use another --out folder or delete the old files"
        )


def _run_and_write(spec, out, device, data_dir):
    """Worker: train one network, write its shard, return its summary (never raises)."""
    try:
        rows, summary = train_network(spec, device=device, data_dir=data_dir)
        path = shard_path(out, spec, diverged=summary["status"] != "complete")
        metadata = {
            RUN_METADATA_KEY: json.dumps({"spec": spec.to_dict(), "summary": summary, "versions": versions()}),
        }
        write_table(rows, path, metadata=metadata)
        return summary
    except Exception as err:  # noqa: BLE001 - report and continue with the other networks
        return {"run_id": spec.run_id, "source": spec.source, "status": "failed",
                "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}


def keep_freed_memory():
    """Let this process reuse freed memory instead of returning it to the system.

    glibc's ``malloc`` serves large blocks (a batch of activations, a
    gradient) with fresh ``mmap`` pages and unmaps them when freed, so every
    training step pays page faults for its large tensors. Raising the mmap
    and trim thresholds to 1 GiB keeps such blocks in the heap for the next
    step: on the CPU a KNet step took about 20 % less time (44 -> 36 ms for
    backprop, 66 -> 57 ms for IA, batch 64, one thread). The process keeps
    its peak memory. Sweeps call this in every worker; it does nothing where
    the C library has no ``mallopt`` (macOS, Windows, musl).

    Returns
    -------
    bool
        Whether the thresholds were set.
    """
    import ctypes
    import ctypes.util

    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(m_mmap_threshold, 1 << 30)) and bool(mallopt(m_trim_threshold, 1 << 30))


def _worker_init(threads):
    keep_freed_memory()
    torch.set_num_threads(threads)


def _star_run(args):
    return _run_and_write(*args)


def compact(out, source=None):
    """Merge the per-network shards of each task folder into one ``compacted.parquet``.

    Many small Parquet files carry a footer each; one file per (source, task)
    folder is much smaller for a shipped dataset. The compacted file keeps
    every network's record (spec, summary, versions) in its footer under
    ``lrid_runs``, so resuming a sweep and :func:`collect_runs` see the
    networks as before. The merged file is written atomically before the
    shards are deleted; a shard whose network is already in the compacted
    file (an interrupted compaction) is dropped, not added twice.

    Parameters
    ----------
    out : str or Path
    source : str, optional
        Only folders of this preset (``source=<name>``).

    Returns
    -------
    list of Path
        The compacted files written.
    """
    from lrid_analysis.dataset import read_table

    out = Path(out)
    folders = sorted({p.parent for p in out.rglob("*.parquet")
                      if not any(part.startswith(".") for part in p.relative_to(out).parts)})
    written = []
    for folder in folders:
        if source is not None and f"source={source}" not in folder.parts:
            continue
        shards = []
        for path in sorted(folder.glob("*.parquet")):
            if path.name == COMPACTED_NAME or path.name.startswith("."):
                continue
            metadata = pq.read_schema(path).metadata or {}
            if RUN_METADATA_KEY.encode() in metadata:
                shards.append((path, json.loads(metadata[RUN_METADATA_KEY.encode()])))
        if not shards:
            continue
        target = folder / COMPACTED_NAME
        frames, records = [], {}
        if target.is_file():
            frames.append(read_table(target))
            records = json.loads((pq.read_schema(target).metadata or {})[RUNS_METADATA_KEY.encode()])
        for path, record in shards:
            run = RunSpec.from_dict(record["spec"]).run_id
            if run in records:
                continue
            frames.append(read_table(path))
            records[run] = record
        frame = pd.concat(frames, ignore_index=True)
        write_table(frame, target, metadata={RUNS_METADATA_KEY: json.dumps(records, sort_keys=True)})
        for path, _ in shards:
            path.unlink()
        written.append(target)
    return written


def collect_runs(out):
    """Summaries of every network stored under ``out`` (complete and diverged).

    Returns
    -------
    pandas.DataFrame
        One row per network: the spec's fields (without the measurement
        conditions, counted in ``n_conditions``), the summary's and the file
        holding it, sorted by source and run id.
    """
    out = Path(out)
    records = []
    for (source, run), (record, path) in sorted(_stored_runs(out).items()):
        spec = dict(record["spec"])
        n_conditions = len(spec.pop("conditions", []))
        spec["task_options"] = json.dumps(spec.get("task_options", {}), sort_keys=True)
        summary = {k: v for k, v in record["summary"].items() if k != "traceback"}
        records.append({**spec, **summary, "run_id": run, "n_conditions": n_conditions,
                        "path": str(path.relative_to(out))})
    return pd.DataFrame.from_records(records)


def run_sweep(preset, out, device="cpu", workers=1, limit=None, data_dir=None, threads=None, progress=True,
              compact_when_done=None):
    """Run every network of a preset that is not stored under ``out`` yet.

    Parameters
    ----------
    preset : str or Preset
    out : str or Path
        Output folder (created).
    device : str
        ``cpu`` or ``cuda`` (data and models stay on that device).
    workers : int
        Networks trained at once, each in its own process with ``threads``
        torch threads (default 1 when ``workers > 1``).
    limit : int, optional
        Run at most this many of the missing networks.
    data_dir : str or Path, optional
        Local datasets (Fashion-MNIST, CIFAR-10).
    threads : int, optional
        Torch threads per process (default: torch's choice with one worker).
    progress : bool
        Show a tqdm bar (networks done, time left).
    compact_when_done : bool, optional
        Run :func:`compact` once every network of the preset is stored
        (default: the preset's ``compact``).

    Returns
    -------
    dict
        Counts: ``total``, ``skipped`` (already done), ``complete``,
        ``diverged``, ``failed``, ``missing`` (still to run), and
        ``failures`` (run id -> error).
    """
    from tqdm.auto import tqdm

    if isinstance(preset, str):
        if preset not in PRESETS:
            raise SweepError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
        preset = PRESETS[preset]
    out = Path(out)
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SweepError("--device cuda asked for, but torch sees no CUDA device")
    if workers < 1:
        raise SweepError(f"workers must be >= 1, got {workers}")
    specs = preset.specs()
    stored = _stored_runs(out)
    todo = []
    for spec in specs:
        found = stored.get((spec.source, spec.run_id))
        if found is None:
            todo.append(spec)
        else:
            _check_same_spec(spec, *found)
    skipped = len(specs) - len(todo)
    if limit is not None:
        todo = todo[: int(limit)]
    _update_sweep_json(out, preset, device, workers, {"total": len(specs)})

    counts = {"total": len(specs), "skipped": skipped, "complete": 0, "diverged": 0, "failed": 0}
    failures = {}
    bar = tqdm(total=len(todo), desc=f"{preset.name}", unit="net", disable=not progress, dynamic_ncols=True)

    def note(summary):
        counts[summary["status"]] += 1
        if summary["status"] == "failed":
            failures[summary["run_id"]] = summary["error"]
            print(f"\n{summary['run_id']} failed:\n{summary['traceback']}", file=sys.stderr)
        bar.set_postfix(diverged=counts["diverged"], failed=counts["failed"], refresh=False)
        bar.update(1)

    try:
        if workers == 1 or len(todo) <= 1:
            keep_freed_memory()
            previous = torch.get_num_threads()
            if threads:
                torch.set_num_threads(int(threads))
            try:
                for spec in todo:
                    note(_run_and_write(spec, out, device, data_dir))
            finally:
                torch.set_num_threads(previous)
        else:
            import multiprocessing as mp

            # forkserver (POSIX): workers fork from a clean server that imported lrid_generate once;
            # spawn elsewhere. Never plain fork: the parent's torch thread pools and CUDA state.
            if "forkserver" in mp.get_all_start_methods():
                ctx = mp.get_context("forkserver")
                ctx.set_forkserver_preload(["lrid_generate.sweep"])
            else:
                ctx = mp.get_context("spawn")
            with ctx.Pool(int(workers), initializer=_worker_init, initargs=(int(threads or 1),)) as pool:
                jobs = [(spec, out, device, data_dir) for spec in todo]
                for summary in pool.imap_unordered(_star_run, jobs):
                    note(summary)
    finally:
        bar.close()
        stored = _stored_runs(out)
        mine = [stored[(s.source, s.run_id)][0]["summary"]["status"] for s in specs if (s.source, s.run_id) in stored]
        counts["missing"] = len(specs) - len(mine)
        done = counts["missing"] == 0
        if done and (preset.compact if compact_when_done is None else compact_when_done):
            compact(out, source=preset.name)
        runs = collect_runs(out) if out.is_dir() else pd.DataFrame()
        if len(runs):
            _write_json(out / "runs.json", json.loads(runs.to_json(orient="records")))
        _update_sweep_json(out, preset, device, workers, {
            "total": len(specs), "complete": mine.count("complete"), "diverged": mine.count("diverged"),
            "missing": counts["missing"],
        })
    counts["failures"] = failures
    return counts


def _update_sweep_json(out, preset, device, workers, counts):
    path = Path(out) / "sweep.json"
    data = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise SweepError(f"{path}: not valid JSON ({err}); delete it to start over") from err
    data[preset.name] = {
        "preset": preset.to_dict(),
        "versions": versions(),
        "device": device,
        "workers": workers,
        "networks": counts,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
        "layout": "source=<preset>/task=<task>/<run_id>.parquet; diverged runs under _diverged/",
        "seeds": {"model_seed None": DEFAULT_MODEL_SEED, "dataset_seed None": resolve_dataset_seed(None)},
    }
    _write_json(path, data)
