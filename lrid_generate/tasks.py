"""Training tasks: data held as tensors on the training device, losses, accuracies.

The paper trained on ImageNet (supervised and SimCLR), Word-Speaker-Noise
(audio, spectrogram-like inputs) and CIFAR-10. The generator ships small,
offline stand-ins so that a whole sweep runs on a laptop:

============================  ==========  ==========================================
generator task name           paper task  data
============================  ==========  ==========================================
``digits``                    imagenet    scikit-learn's bundled 8x8 digits, 10 classes
``digits_simclr``             simclr      the same images, SimCLR (two augmented views)
``signal1d``                  audionet    procedural 1-D signals (``mnist1d``), 10 classes,
                                          as a 16x16 magnitude spectrogram
``fashion_mnist``             cifar10     Fashion-MNIST from a local IDX copy (the CIFAR-10
                                          stand-in of the embedded preset's shallow KNets)
``cifar10``                   cifar10     CIFAR-10 from a local python-format copy
``<name>_simclr``             simclr      SimCLR on any of the image-like data above
============================  ==========  ==========================================

:data:`PAPER_TASKS` holds this mapping. The tidy data keeps the generator's
names (the ``task`` column), so generated and public data are never mixed up.
Shards written before the mapping gave ``fashion_mnist`` to CIFAR-10 (the
shipped v2 data among them) store ``imagenet`` in their footers;
:func:`lrid_generate.store.collect_runs` reports the current mapping.

Every task keeps its data in tensors on one device. Each epoch visits the
training set in the order of a seeded permutation (:meth:`Task.epoch_batches`),
dropping the last incomplete batch so every step sees ``batch_size`` examples.
The train / validation split and the data themselves are fixed (they do not
depend on the run's seeds); a run's ``dataset_seed`` only drives the example
order and the SimCLR augmentations (see :func:`resolve_dataset_seed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from lrid_generate.datasets import (
    _SPLIT_SEED,
    load_cifar10,
    load_digits,
    load_fashion_mnist,
    load_signal1d,
)

__all__ = [
    "TASK_NAMES",
    "PAPER_TASKS",
    "KINDS",
    "DEFAULT_DATASET_SEED",
    "Augmentation",
    "Task",
    "make_task",
    "resolve_dataset_seed",
    "nt_xent_loss",
    "contrastive_accuracy",
    "VALIDATIONS",
]

_BASE_TASKS = ("digits", "signal1d", "fashion_mnist", "cifar10")
#: Task names understood by :func:`make_task`.
TASK_NAMES = tuple(n for b in _BASE_TASKS for n in (b, f"{b}_simclr"))
#: The paper's task that each generator task stands in for.
PAPER_TASKS = {
    "digits": "imagenet",
    "signal1d": "audionet",
    "fashion_mnist": "cifar10",
    "cifar10": "cifar10",
    **{f"{b}_simclr": "simclr" for b in _BASE_TASKS},
}
KINDS = ("supervised", "simclr")

#: Order seed used for a run whose ``dataset_seed`` is None. The public data
#: has two dataset-seed settings, ``None`` (unseeded) and ``0``; the generator
#: keeps both settings but makes ``None`` reproducible by mapping it to this seed.
DEFAULT_DATASET_SEED = 20200


def resolve_dataset_seed(dataset_seed):
    """The integer order seed of a run: ``None`` maps to :data:`DEFAULT_DATASET_SEED`."""
    if dataset_seed is None or (isinstance(dataset_seed, float) and np.isnan(dataset_seed)):
        return DEFAULT_DATASET_SEED
    seed = int(dataset_seed)
    if seed < 0:
        raise ValueError(f"dataset_seed must be None or >= 0, got {dataset_seed}")
    return seed


# --------------------------------------------------------------------------- losses


def nt_xent_loss(z1, z2, temperature=0.5):
    """SimCLR's normalised temperature-scaled cross-entropy (NT-Xent).

    Parameters
    ----------
    z1, z2 : Tensor, shape (n, d)
        Projections of the two views; row ``i`` of ``z1`` and of ``z2`` come
        from the same example (a positive pair).
    temperature : float

    Returns
    -------
    Tensor, shape ()
        Mean over the ``2 n`` anchors of ``-log softmax`` of the positive's
        cosine similarity among the ``2 n - 1`` other projections.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two (n, d) projections of equal shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    logits, target = _contrastive_logits(z1, z2, temperature)
    return F.cross_entropy(logits, target)


def contrastive_accuracy(z1, z2):
    """Fraction of the ``2 n`` anchors whose most similar other projection is their positive.

    Parameters
    ----------
    z1, z2 : Tensor, shape (n, d)

    Returns
    -------
    Tensor, shape ()
    """
    logits, target = _contrastive_logits(z1, z2, 1.0)
    return (logits.argmax(dim=1) == target).float().mean()


def _contrastive_logits(z1, z2, temperature):
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return logits, target


# --------------------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class Augmentation:
    """Random views for SimCLR, batched in torch on the data's device.

    Each example is independently shifted by up to ``max_shift`` pixels along
    both spatial axes (zero padding), its intensities scaled by a factor in
    ``[1 - scale_jitter, 1 + scale_jitter]`` and offset by a value in
    ``[-offset_jitter, offset_jitter]``, and Gaussian pixel noise of std
    ``noise_std`` is added.
    """

    max_shift: int = 1
    scale_jitter: float = 0.2
    offset_jitter: float = 0.2
    noise_std: float = 0.1

    def __call__(self, x, generator=None):
        """Augment a batch.

        Parameters
        ----------
        x : Tensor, shape (n, C, H, W)
        generator : torch.Generator, optional
            On ``x``'s device; drives every random choice.

        Returns
        -------
        Tensor, shape (n, C, H, W)
        """
        n, _, h, w = x.shape
        opts = dict(generator=generator, device=x.device)
        if self.max_shift > 0:
            s = int(self.max_shift)
            padded = F.pad(x, (s, s, s, s))
            oy = torch.randint(0, 2 * s + 1, (n,), **opts)
            ox = torch.randint(0, 2 * s + 1, (n,), **opts)
            rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
            cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
            batch = torch.arange(n, device=x.device)[:, None, None, None]
            chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = padded[batch, chans, rows, cols]
        if self.scale_jitter > 0:
            x = x * (1 + self.scale_jitter * (2 * torch.rand((n, 1, 1, 1), dtype=x.dtype, **opts) - 1))
        if self.offset_jitter > 0:
            x = x + self.offset_jitter * (2 * torch.rand((n, 1, 1, 1), dtype=x.dtype, **opts) - 1)
        if self.noise_std > 0:
            x = x + self.noise_std * torch.randn(x.shape, dtype=x.dtype, **opts)
        return x


# --------------------------------------------------------------------------- task


@dataclass(eq=False)
class Task:
    """One training task: data tensors, a loss and an accuracy.

    Attributes
    ----------
    name : str
        Generator task name (the ``task`` column of the tidy data).
    kind : {"supervised", "simclr"}
    x_train : Tensor, shape (n_train, C, H, W)
    y_train : Tensor of int64, shape (n_train,)
    x_val : Tensor, shape (n_val, C, H, W)
        The fixed validation batch on which observables are recorded.
    y_val : Tensor of int64, shape (n_val,)
    n_classes : int
    x_eval, y_eval : Tensor, shape (n_eval, ...), optional
        The validation set :meth:`evaluate` scores by default (its first
        ``n_val`` examples are the recording batch); ``None`` means the
        recording batch itself.
    paper_task : str
        The paper's task this one stands in for (see :data:`PAPER_TASKS`).
    projection_dim : int
        Output size of the SimCLR projection head.
    temperature : float
        NT-Xent temperature (SimCLR only).
    augmentation : Augmentation or None
        View generator (SimCLR only).
    """

    name: str
    kind: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int
    paper_task: str
    projection_dim: int = 64
    temperature: float = 0.5
    augmentation: Augmentation | None = None
    description: str = field(default="", repr=False)
    x_eval: torch.Tensor | None = field(default=None, repr=False)
    y_eval: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "simclr" and self.augmentation is None:
            raise ValueError(f"task {self.name!r}: a SimCLR task needs an augmentation")
        if self.x_train.shape[1:] != self.x_val.shape[1:]:
            raise ValueError(
                f"task {self.name!r}: train inputs {tuple(self.x_train.shape[1:])} and validation inputs "
                f"{tuple(self.x_val.shape[1:])} differ in shape"
            )

    @property
    def input_shape(self):
        """Shape of one input example, ``(C, H, W)``."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def n_train(self):
        return int(self.x_train.shape[0])

    @property
    def n_outputs(self):
        """Model output size: the classes, or the SimCLR projection size."""
        return self.n_classes if self.kind == "supervised" else self.projection_dim

    @property
    def head(self):
        """The model head this task trains (``classifier`` or ``simclr``)."""
        return "classifier" if self.kind == "supervised" else "simclr"

    @property
    def device(self):
        return self.x_train.device

    def to(self, device):
        """A copy of the task with every tensor on ``device``."""
        device = torch.device(device)
        if device == self.device:
            return self
        return replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_val=self.x_val.to(device),
            y_val=self.y_val.to(device),
            x_eval=None if self.x_eval is None else self.x_eval.to(device),
            y_eval=None if self.y_eval is None else self.y_eval.to(device),
        )

    def steps_per_epoch(self, batch_size):
        """Number of full batches in one epoch."""
        steps = self.n_train // int(batch_size)
        if steps < 1:
            raise ValueError(
                f"task {self.name!r}: batch_size {batch_size} exceeds the {self.n_train} training examples"
            )
        return steps

    def epoch_batches(self, batch_size, generator):
        """The batches of one epoch in a seeded random order.

        Parameters
        ----------
        batch_size : int
        generator : torch.Generator
            CPU generator drawing the permutation of the training examples.

        Yields
        ------
        x : Tensor, shape (batch_size, C, H, W)
        y : Tensor, shape (batch_size,)
        """
        steps = self.steps_per_epoch(batch_size)
        order = torch.randperm(self.n_train, generator=generator).to(self.device)
        for step in range(steps):
            index = order[step * batch_size:(step + 1) * batch_size]
            yield self.x_train[index], self.y_train[index]

    def forward(self, model, batch, generator=None):
        """Loss and number of correct predictions of ``model`` on one batch.

        Parameters
        ----------
        model : torch.nn.Module
        batch : tuple (x, y)
        generator : torch.Generator, optional
            On the task's device; draws the SimCLR views.

        Returns
        -------
        loss : Tensor, shape ()
        n_correct : Tensor, shape ()
            Correct top-1 class predictions (supervised), or anchors whose
            nearest projection is their positive (SimCLR; out of ``2 n``).
        """
        x, y = batch
        if self.kind == "supervised":
            logits = model(x)
            return F.cross_entropy(logits, y), (logits.argmax(dim=1) == y).sum()
        n = x.shape[0]
        views = torch.cat([self.augmentation(x, generator), self.augmentation(x, generator)], dim=0)
        z = model(views)
        z1, z2 = z[:n], z[n:]
        return nt_xent_loss(z1, z2, self.temperature), contrastive_accuracy(z1, z2).detach() * (2 * n)

    def loss(self, model, batch, generator=None):
        """The task loss of ``model`` on ``batch`` (cross-entropy or NT-Xent)."""
        return self.forward(model, batch, generator)[0]

    def n_scored(self, batch_size):
        """How many predictions :meth:`forward` scores per batch."""
        return int(batch_size) * (1 if self.kind == "supervised" else 2)

    @torch.no_grad()
    def evaluate(self, model, x=None, y=None, seed=0):
        """Loss and accuracy in evaluation mode (the validation set by default).

        The default set is ``x_eval`` / ``y_eval`` when the task has one,
        else the recording batch ``x_val`` / ``y_val``.

        Returns
        -------
        dict with float ``loss`` and ``accuracy``
        """
        if x is None:
            x, y = (self.x_val, self.y_val) if self.x_eval is None else (self.x_eval, self.y_eval)
        generator = torch.Generator(device=self.device).manual_seed(int(seed))
        was_training = model.training
        model.eval()
        try:
            loss, correct = self.forward(model, (x, y), generator)
        finally:
            model.train(was_training)
        return {"loss": float(loss), "accuracy": float(correct) / self.n_scored(x.shape[0])}



# --------------------------------------------------------------------------- data sources


@lru_cache(maxsize=8)
def _load_arrays(base, data_dir, n_val, options):
    options = dict(options)
    if base == "digits":
        return load_digits(n_val=n_val, **options)
    if base == "signal1d":
        return load_signal1d(n_val=n_val, **options)
    if base == "fashion_mnist":
        return load_fashion_mnist(data_dir, n_val=n_val, **options)
    if base == "cifar10":
        return load_cifar10(data_dir, n_val=n_val, **options)
    raise AssertionError(base)  # pragma: no cover


#: Where :func:`make_task` takes the validation set from.
VALIDATIONS = ("heldout", "train_split")


def make_task(name, device="cpu", data_dir=None, n_val=256, projection_dim=64, temperature=0.5,
              augmentation=None, n_eval=None, validation="heldout", **options):
    """Build a task with its data on ``device``.

    Parameters
    ----------
    name : str
        One of :data:`TASK_NAMES`.
    device : str or torch.device
    data_dir : str or Path, optional
        Where local copies of Fashion-MNIST / CIFAR-10 live.
    n_val : int
        Size of the fixed validation batch used for recording.
    projection_dim, temperature : SimCLR settings (ignored for supervised tasks).
    augmentation : Augmentation, optional
        SimCLR views; defaults to :class:`Augmentation` with ``max_shift``
        one eighth of the image side.
    n_eval : int, optional
        Size of the validation set :meth:`Task.evaluate` scores (default
        ``n_val``); the recording batch is its first ``n_val`` examples, so
        accuracy can be measured on more examples than the observables.
    validation : {"heldout", "train_split"}
        ``heldout``: the validation set is the task's held-out data.
        ``train_split``: it is a seeded part of the *training* data (the
        same training data as with ``heldout``), which is then left out of
        training, and the held-out data are not used: for choosing
        hyper-parameters (``python -m lrid_generate tune``).
        Standardisation keeps the statistics of the full training data.
    **options
        Passed to the loader (e.g. ``image_size`` for digits, ``n_samples``
        for signal1d).

    Returns
    -------
    Task
    """
    if name not in TASK_NAMES:
        raise ValueError(f"unknown task {name!r}; choose from {list(TASK_NAMES)}")
    simclr = name.endswith("_simclr")
    base = name[: -len("_simclr")] if simclr else name
    key_dir = None if data_dir is None else str(data_dir)
    n_val = int(n_val)
    n_eval = n_val if n_eval is None else int(n_eval)
    if n_eval < n_val:
        raise ValueError(f"n_eval ({n_eval}) must be at least n_val ({n_val}): the recording batch is part of it")
    if validation not in VALIDATIONS:
        raise ValueError(f"validation must be one of {VALIDATIONS}, got {validation!r}")
    x_train, y_train, x_eval, y_eval = _load_arrays(base, key_dir, n_eval, tuple(sorted(options.items())))
    if validation == "train_split":
        if not 0 < n_eval < len(x_train):
            raise ValueError(f"n_eval={n_eval} must be smaller than the {len(x_train)} training examples")
        order = np.random.RandomState(_SPLIT_SEED + 1).permutation(len(x_train))
        held, kept = np.sort(order[:n_eval]), np.sort(order[n_eval:])
        x_train, y_train, x_eval, y_eval = x_train[kept], y_train[kept], x_train[held], y_train[held]
    x_val, y_val = x_eval[:n_val], y_eval[:n_val]
    extended = n_eval > n_val
    if simclr and augmentation is None:
        augmentation = Augmentation(max_shift=max(1, x_train.shape[-1] // 8))
    task = Task(
        name=name,
        kind="simclr" if simclr else "supervised",
        x_train=torch.from_numpy(np.ascontiguousarray(x_train)),
        y_train=torch.from_numpy(np.asarray(y_train, dtype=np.int64)),
        x_val=torch.from_numpy(np.ascontiguousarray(x_val)),
        y_val=torch.from_numpy(np.asarray(y_val, dtype=np.int64)),
        n_classes=int(max(y_train.max(), y_eval.max()) + 1),
        paper_task=PAPER_TASKS[name],
        projection_dim=int(projection_dim),
        temperature=float(temperature),
        augmentation=augmentation if simclr else None,
        x_eval=torch.from_numpy(np.ascontiguousarray(x_eval)) if extended else None,
        y_eval=torch.from_numpy(np.asarray(y_eval, dtype=np.int64)) if extended else None,
    )
    return task.to(device)
