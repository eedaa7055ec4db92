"""Conv1D MLP over the checkpoints (PyTorch, imported lazily)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._layout import _layout, _one_class_error

_POOLINGS = ("none", "max", "avg", "global_max", "global_avg")
_INITS = ("pytorch", "glorot")
_DTYPES = ("float32", "float64")


class _torch_threads:
    """Context manager: run torch with ``n`` CPU threads, then restore the setting."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        import torch

        self.before = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(int(self.n))

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.before)


def _batches(order, batch_size, drop_last):
    """Mini-batches of ``order``; ``drop_last`` drops a last partial one (unless it is the only one)."""
    n_full = len(order) // batch_size
    stop = n_full * batch_size if drop_last and n_full else len(order)
    return [order[start:start + batch_size] for start in range(0, stop, batch_size)]


def _conv_lengths(n_checkpoints, kernel_size, stride, pooling):
    """Effective kernel size, output length of the convolution and of the pooling."""
    kernel = min(int(kernel_size), n_checkpoints)
    conv_len = (n_checkpoints - kernel) // int(stride) + 1
    if pooling.startswith("global_"):
        return kernel, conv_len, 1
    pooled = conv_len // 2 if pooling != "none" and conv_len >= 2 else conv_len
    return kernel, conv_len, pooled


class Conv1DClassifier(ClassifierMixin, BaseEstimator):
    """A 1-D convolution over the checkpoints, then a linear layer (PyTorch).

    ``X`` is either the trajectory layout ``(n_samples, n_checkpoints,
    n_observables + n_categorical)`` of
    :func:`lrid_analysis.features.trajectories` (the number of checkpoints
    is read from it) or the flat layout of
    :func:`lrid_analysis.features.flatten`, reshaped to ``(n_samples,
    n_observables, n_checkpoints)`` with the ``n_checkpoints`` parameter;
    the observables are the channels. Each observable is
    standardized with its mean and standard deviation over training rows and
    checkpoints (so the shape of each trajectory is kept). One convolution
    (``n_filters`` filters, ``kernel_size`` capped at ``n_checkpoints``,
    ``stride``) with a ReLU, then optional max or average pooling (window 2,
    stride 2, skipped when a single time step is left; ``"global_max"`` /
    ``"global_avg"`` pool over all time steps), is flattened,
    concatenated with the one-hot columns and mapped to the classes by a
    linear layer. Training minimizes cross-entropy with Adam in mini-batches
    of ``batch_size``; ``validation_fraction`` of the training rows
    (stratified, seeded) are held out, and training stops after
    ``patience`` epochs without a lower validation loss (at most
    ``max_epochs``), keeping the weights of the best epoch. With too few
    rows for a stratified hold-out (fewer than 2 per class), all rows train
    for ``max_epochs``. Weight initialization and batch order are seeded by
    ``random_state`` without touching torch's global generator.

    The paper's protocol (``--selection paper``, see
    :data:`~lrid_analysis.classifiers.PAPER_SETTINGS`) differs in five
    switches: ``categorical_as_channels=True`` (the one-hot enters the
    convolution as constant input channels instead of joining the linear
    layer), ``standardize=False``, ``init="glorot"`` (Glorot-uniform
    weights, zero biases), ``drop_last=True`` (the last partial batch of an
    epoch is dropped; with fewer rows than ``batch_size`` one batch of all
    rows is used) and ``dtype="float64"``; with ``validation_fraction=0``
    and ``max_epochs=400`` (no early stopping).

    Parameters
    ----------
    n_checkpoints : int
        Checkpoints of a flat ``X`` (a 3-D ``X`` carries its own).
    n_categorical : int
        Trailing one-hot columns (flat ``X``) or constant channels (3-D ``X``).
    n_filters, kernel_size, stride : int
    pooling : {"none", "max", "avg", "global_max", "global_avg"}
    learning_rate, weight_decay : float
        Adam settings.
    batch_size, max_epochs, patience : int
    validation_fraction : float
        In [0, 1); 0 trains for ``max_epochs`` without early stopping.
    categorical_as_channels : bool
        Feed the one-hot as constant input channels of the convolution
        (``n_observables + n_categorical`` channels) instead of appending it
        to the linear layer's input.
    standardize : bool
        Standardize each observable over training rows and checkpoints.
    init : {"pytorch", "glorot"}
        PyTorch's default initialization, or Glorot-uniform weights and
        zero biases.
    drop_last : bool
        Drop the last partial mini-batch of every epoch.
    dtype : {"float32", "float64"}
        Precision of the network and of training.
    device : str
        Torch device for training (``"cpu"`` default); the fitted network is
        kept on the CPU.
    n_threads : int or None
        Torch CPU threads during ``fit`` and ``predict_proba`` (restored
        afterwards). The network is small, so 1 thread is fastest, and
        selection runs candidates in parallel processes (``n_jobs``) instead.
        None: leave torch's setting alone.
    random_state : int

    Attributes
    ----------
    network_ : torch.nn.ModuleDict
        ``features`` (conv, ReLU, pooling, flatten) and ``head`` (linear).
    channel_mean_, channel_scale_ : ndarray of shape (n_observables,)
    history_ : pandas.DataFrame
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_accuracy``.
    n_epochs_ : int
        Epochs run. ``best_epoch_`` : int, the epoch whose weights were kept.
    n_checkpoints_ : int
        Checkpoints of the fitted layout.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    """

    def __init__(self, n_checkpoints=21, n_categorical=3, n_filters=20, kernel_size=6, stride=1, pooling="max",
                 learning_rate=1e-3, weight_decay=0.0, batch_size=128, max_epochs=100, patience=10,
                 validation_fraction=0.1, categorical_as_channels=False, standardize=True, init="pytorch",
                 drop_last=False, dtype="float32", device="cpu", n_threads=1, random_state=0):
        self.n_checkpoints = n_checkpoints
        self.n_categorical = n_categorical
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.stride = stride
        self.pooling = pooling
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.categorical_as_channels = categorical_as_channels
        self.standardize = standardize
        self.init = init
        self.drop_last = drop_last
        self.dtype = dtype
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    def _adapt_param_grid(self, grid, shape):
        """Cap kernel sizes at the number of checkpoints (of a 3-D X, else the parameter) and drop the duplicates."""
        if "kernel_size" not in grid:
            return grid
        limit = int(shape[1]) if len(shape) == 3 else int(grid.get("n_checkpoints", [self.n_checkpoints])[0])
        sizes = []
        for k in grid["kernel_size"]:
            k = int(min(k, limit))
            if k not in sizes:
                sizes.append(k)
        return {**grid, "kernel_size": sizes}

    def _check_params(self):
        if self.pooling not in _POOLINGS:
            raise ValueError(f"Conv1DClassifier: pooling must be one of {_POOLINGS}, got {self.pooling!r}")
        if self.init not in _INITS:
            raise ValueError(f"Conv1DClassifier: init must be one of {_INITS}, got {self.init!r}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"Conv1DClassifier: dtype must be one of {_DTYPES}, got {self.dtype!r}")
        for name in ("n_filters", "kernel_size", "stride", "batch_size", "max_epochs", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Conv1DClassifier: {name} must be >= 1, got {getattr(self, name)!r}")
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise ValueError(
                f"Conv1DClassifier: validation_fraction must be in [0, 1), got {self.validation_fraction!r}"
            )

    def _split(self, X):
        """(sequences (n, channels, n_ckpt), one-hot (n, n_cat)) in ``dtype``.

        Observables standardized (``standardize``); with
        ``categorical_as_channels`` the one-hot is appended as constant
        channels and the second array has no columns.
        """
        n_ckpt = self.n_checkpoints_
        n_obs = self.channel_mean_.shape[0]
        seq = X[:, : n_obs * n_ckpt].reshape(len(X), n_obs, n_ckpt)
        seq = (seq - self.channel_mean_[None, :, None]) / self.channel_scale_[None, :, None]
        cat = X[:, n_obs * n_ckpt:]
        if self.categorical_as_channels:
            seq = np.concatenate([seq, np.repeat(cat[:, :, None], n_ckpt, axis=2)], axis=1)
            cat = cat[:, :0]
        return seq.astype(self.dtype), np.ascontiguousarray(cat, dtype=self.dtype)

    def _flat(self, X):
        """(flat X, its number of checkpoints or None): a 3-D X is flattened (:class:`~lrid_analysis.trajectories.Flatten`)."""
        if getattr(X, "ndim", None) == 3:
            from ..trajectories import Flatten

            return Flatten(n_categorical=self.n_categorical).fit_transform(X), X.shape[1]
        return X, None

    def _build_network(self, n_obs, n_classes, n_checkpoints=None):
        import torch
        from torch import nn

        n_ckpt = int(self.n_checkpoints if n_checkpoints is None else n_checkpoints)
        n_cat = int(self.n_categorical)
        kernel, conv_len, pooled = _conv_lengths(n_ckpt, self.kernel_size, self.stride, self.pooling)
        channels, head_extra = (n_obs + n_cat, 0) if self.categorical_as_channels else (n_obs, n_cat)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.random_state))
            conv = nn.Conv1d(channels, int(self.n_filters), kernel_size=kernel, stride=int(self.stride))
            layers = [conv, nn.ReLU()]
            if self.pooling in ("global_max", "global_avg"):
                layers.append(nn.AdaptiveMaxPool1d(1) if self.pooling == "global_max" else nn.AdaptiveAvgPool1d(1))
            elif self.pooling != "none" and conv_len >= 2:
                layers.append(nn.MaxPool1d(2) if self.pooling == "max" else nn.AvgPool1d(2))
            layers.append(nn.Flatten())
            head = nn.Linear(int(self.n_filters) * pooled + head_extra, n_classes)
            if self.init == "glorot":
                for layer in (conv, head):
                    nn.init.xavier_uniform_(layer.weight)
                    nn.init.zeros_(layer.bias)
            network = nn.ModuleDict({"features": nn.Sequential(*layers), "head": head})
            return network.to(getattr(torch, self.dtype))

    @staticmethod
    def _forward(network, seq, cat):
        import torch

        return network["head"](torch.cat([network["features"](seq), cat], dim=1))

    def fit(self, X, y):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_checkpoints, n_observables + n_categorical)
            or (n_samples, n_observables * n_checkpoints + n_categorical)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        import torch

        with _torch_threads(self.n_threads):
            return self._fit(torch, X, y)

    def _fit(self, torch, X, y):
        from torch.nn import functional as F

        self._check_params()
        X, n_ckpt = self._flat(X)
        n_ckpt = int(self.n_checkpoints) if n_ckpt is None else n_ckpt
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        n_obs = _layout(X.shape[1], n_ckpt, self.n_categorical, "Conv1DClassifier")
        self.n_checkpoints_ = int(n_ckpt)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        _one_class_error(self.classes_, "Conv1DClassifier")
        codes = encoder.transform(y)
        seq = X[:, : n_obs * n_ckpt].reshape(len(X), n_obs, n_ckpt)
        if self.standardize:
            self.channel_mean_ = seq.mean(axis=(0, 2))
            scale = seq.std(axis=(0, 2))
            self.channel_scale_ = np.where(scale > 0, scale, 1.0)
        else:
            self.channel_mean_, self.channel_scale_ = np.zeros(n_obs), np.ones(n_obs)
        seq, cat = self._split(X)

        rows = np.arange(len(X))
        counts = np.bincount(codes)
        n_val = int(round(float(self.validation_fraction) * len(X)))
        early_stopping = n_val >= len(self.classes_) and counts.min() >= 2 and len(X) - n_val >= len(self.classes_)
        if early_stopping:
            train_rows, val_rows = train_test_split(rows, test_size=n_val, stratify=codes,
                                                    random_state=self.random_state)
        else:
            train_rows, val_rows = rows, rows[:0]

        device = torch.device(self.device)
        network = self._build_network(n_obs, len(self.classes_), self.n_checkpoints_).to(device)
        optimizer = torch.optim.Adam(network.parameters(), lr=float(self.learning_rate),
                                     weight_decay=float(self.weight_decay))
        tensors = [torch.from_numpy(a).to(device) for a in (seq, cat, codes.astype(np.int64))]
        generator = torch.Generator().manual_seed(int(self.random_state))
        train_idx = torch.from_numpy(train_rows)
        val_idx = torch.from_numpy(val_rows).to(device)
        best_loss, best_epoch, best_state, history = np.inf, 0, None, []
        for epoch in range(1, int(self.max_epochs) + 1):
            network.train()
            order = train_idx[torch.randperm(len(train_idx), generator=generator)].to(device)
            total, seen = 0.0, 0
            for batch in _batches(order, int(self.batch_size), bool(self.drop_last)):
                optimizer.zero_grad()
                loss = F.cross_entropy(self._forward(network, tensors[0][batch], tensors[1][batch]),
                                       tensors[2][batch])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
                seen += len(batch)
            record = {"epoch": epoch, "train_loss": total / seen, "val_loss": np.nan, "val_accuracy": np.nan}
            if early_stopping:
                network.eval()
                with torch.no_grad():
                    logits = self._forward(network, tensors[0][val_idx], tensors[1][val_idx])
                    record["val_loss"] = float(F.cross_entropy(logits, tensors[2][val_idx]))
                    record["val_accuracy"] = float((logits.argmax(1) == tensors[2][val_idx]).double().mean())
                if record["val_loss"] < best_loss:
                    best_loss, best_epoch = record["val_loss"], epoch
                    best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
            history.append(record)
            if early_stopping and epoch - best_epoch >= int(self.patience):
                break
        if best_state is not None:
            network.load_state_dict(best_state)
        else:
            best_epoch = len(history)
        self.network_ = network.to("cpu").eval()
        self.history_ = pd.DataFrame(history)
        self.n_epochs_ = len(history)
        self.best_epoch_ = best_epoch
        return self

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        import torch

        check_is_fitted(self, "network_")
        X, n_ckpt = self._flat(X)
        if n_ckpt not in (None, self.n_checkpoints_):
            raise ValueError(f"Conv1DClassifier: X has {n_ckpt} checkpoints, fitted on {self.n_checkpoints_}")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        seq, cat = self._split(X)
        with _torch_threads(self.n_threads), torch.no_grad():
            logits = self._forward(self.network_, torch.from_numpy(seq), torch.from_numpy(cat))
            return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X):
        """Predicted labels, shape (n_samples,)."""
        check_is_fitted(self, "network_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
