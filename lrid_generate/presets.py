"""Run specifications and presets: the grids of networks a sweep trains.

A :class:`Preset` names a grid (learning rules x tasks x architectures x
batch sizes x model seeds x dataset seeds) with its training length, learning
rates and recording settings; :meth:`Preset.specs` expands it into
:class:`RunSpec` objects, one per network.

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
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from itertools import product

from lrid_generate.recorder import FULL_ACCESS, Condition, condition_grid

__all__ = [
    "DEFAULT_MODEL_SEED",
    "INIT_SCALINGS",
    "NoiseGrid",
    "Preset",
    "PRESETS",
    "RunSpec",
    "SweepError",
    "get_preset",
    "reference_weight_decay",
    "resolve_model_seed",
    "run_id",
]

#: Initialisation choices: the architectures' own, or rescaled to unit variance.
INIT_SCALINGS = ("reference", "unit_variance")
#: Initialisation seed of a run whose ``model_seed`` is None.
DEFAULT_MODEL_SEED = 20201


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




def get_preset(preset):
    """A :class:`Preset` from its name (or the preset itself); :class:`SweepError` for an unknown name."""
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise SweepError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[preset]
