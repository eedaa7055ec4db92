"""Offline data sources of the generator's tasks, as numpy arrays.

Every loader returns ``x_train, y_train, x_val, y_val``: float32 images of
shape (n, channels, height, width), standardized per channel with the training
statistics, and integer labels of shape (n,). The validation examples are
fixed (a split drawn with seed 0 for digits and signal1d, the first test images
for Fashion-MNIST and CIFAR-10), so every run of a task sees the same examples;
:func:`lrid_generate.tasks.make_task` turns the arrays into a
:class:`~lrid_generate.tasks.Task`.

Files read from disk (Fashion-MNIST IDX files, the CIFAR-10 python batches)
are untrusted: :func:`read_idx` checks the header before reading and reads a
bounded number of bytes, and the CIFAR-10 unpickler admits only numpy arrays;
either raises :class:`TaskDataError` naming the file and the problem.
"""

from __future__ import annotations

import gzip
import pickle
import random
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "FASHION_MNIST_DIRS",
    "IDX_MAX_BYTES",
    "TaskDataError",
    "load_digits",
    "load_signal1d",
    "signal_spectrogram",
    "load_fashion_mnist",
    "load_cifar10",
    "read_idx",
]

#: Folders searched for Fashion-MNIST (the Debian package ``dataset-fashion-mnist``
#: installs it in the first one).
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)
_FASHION_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)

# The split between training data and the fixed validation batch is drawn once
# with this seed, so every run of a task sees the same examples.
_SPLIT_SEED = 0


class TaskDataError(FileNotFoundError):
    """Data a task needs is missing or malformed."""



def _split(n, n_val):
    if not 0 < n_val < n:
        raise ValueError(f"n_val must be in (0, {n}), got {n_val}")
    order = np.random.RandomState(_SPLIT_SEED).permutation(n)
    return order[n_val:], order[:n_val]


def _standardize(train, *others):
    """Scale by the training mean and std (per channel)."""
    mean = train.mean(axis=(0, 2, 3), keepdims=True)
    std = train.std(axis=(0, 2, 3), keepdims=True)
    std[std == 0] = 1.0
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def _resize(images, size):
    if size is None or images.shape[-1] == size and images.shape[-2] == size:
        return images
    tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    return F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False).numpy()


def load_digits(n_val=256, image_size=None):
    """scikit-learn's bundled 8x8 digits (1797 images, 10 classes).

    Parameters
    ----------
    n_val : int
        Size of the fixed validation batch (drawn once with a fixed seed).
    image_size : int, optional
        Resize the images to ``image_size`` x ``image_size`` (bilinear).

    Returns
    -------
    x_train : ndarray, shape (1797 - n_val, 1, S, S)
    y_train : ndarray, shape (1797 - n_val,)
    x_val : ndarray, shape (n_val, 1, S, S)
    y_val : ndarray, shape (n_val,)
    """
    from sklearn.datasets import load_digits as _sk_digits

    data = _sk_digits()
    images = _resize(data.images[:, None].astype(np.float32) / 16.0, image_size)
    train, val = _split(len(images), n_val)
    x_train, x_val = _standardize(images[train], images[val])
    return x_train, data.target[train], x_val, data.target[val]


def _mnist1d_signals(n_samples, seq_len, seed):
    """Signals from the mnist1d generator, leaving the global random state untouched."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the signal1d task needs the mnist1d package (its procedural generator, no download): "
            "pip install mnist1d"
        ) from err
    args = get_dataset_args()
    args.num_samples = int(n_samples)
    args.final_seq_length = int(seq_len)
    args.train_split = 1.0
    args.seed = int(seed)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return data["x"].astype(np.float32), data["y"].astype(np.int64)


def signal_spectrogram(signals, n_fft=30, hop_length=4, n_frames=16):
    """Magnitude short-time Fourier transform of 1-D signals.

    Parameters
    ----------
    signals : ndarray or Tensor, shape (n, length)
    n_fft, hop_length : int
        Hann window of ``n_fft`` samples, ``hop_length`` apart (centred frames).
    n_frames : int
        Keep the first ``n_frames`` frames.

    Returns
    -------
    ndarray, shape (n, 1, n_fft // 2 + 1, n_frames)
    """
    x = torch.as_tensor(np.asarray(signals, dtype=np.float32))
    spec = torch.stft(
        x, n_fft=n_fft, hop_length=hop_length, window=torch.hann_window(n_fft), center=True,
        pad_mode="reflect", return_complex=True,
    ).abs()
    if spec.shape[-1] < n_frames:
        raise ValueError(
            f"signals of length {x.shape[-1]} give {spec.shape[-1]} frames, fewer than n_frames={n_frames}"
        )
    return spec[..., :n_frames].unsqueeze(1).numpy()


def load_signal1d(n_val=256, n_samples=4000, seq_len=64, n_fft=30, hop_length=4, seed=0, n_frames=None):
    """Procedural 1-D signals (mnist1d's templates, shifts, scales, noise) as spectrograms.

    The mnist1d generator draws ``n_samples`` signals of ``seq_len`` samples
    (10 classes) with ``seed``; each becomes a (1, n_fft // 2 + 1, n_frames)
    magnitude spectrogram (``n_frames`` defaults to ``n_fft // 2 + 1``: 16 x 16
    with the defaults), a stand-in for the audio task's spectrogram-like inputs.

    Returns
    -------
    x_train, y_train, x_val, y_val : ndarrays (see :func:`load_digits`)
    """
    signals, labels = _mnist1d_signals(n_samples, seq_len, seed)
    images = signal_spectrogram(signals, n_fft=n_fft, hop_length=hop_length,
                                n_frames=n_fft // 2 + 1 if n_frames is None else int(n_frames))
    train, val = _split(len(images), n_val)
    x_train, x_val = _standardize(images[train], images[val])
    return x_train, labels[train], x_val, labels[val]


#: Largest IDX payload :func:`read_idx` reads unless told otherwise (the 60k
#: Fashion-MNIST training images are 47 MB).
IDX_MAX_BYTES = 64 * 2**20


def read_idx(path, ndim, item_shape=None, max_items=None, max_bytes=IDX_MAX_BYTES):
    """Read an unsigned-byte IDX file (MNIST format), validating it as it goes.

    The header is checked before any data are read: two zero bytes, type code
    ``0x08`` (unsigned byte), the expected number of dimensions and, if given,
    the item shape. Only the first ``max_items`` items are read (a bounded
    read: the file is never loaded whole), and the read stops with an error
    if the file ends early.

    Parameters
    ----------
    path : str or Path
        The file; a name ending in ``.gz`` is read through gzip.
    ndim : int
        Dimensions expected (1 for labels, 3 for images).
    item_shape : tuple of int, optional
        Expected shape of one item (e.g. ``(28, 28)``).
    max_items : int, optional
        Read at most this many items (default all).
    max_bytes : int
        Refuse to read more than this many data bytes.

    Returns
    -------
    ndarray of uint8, shape (n, *item_shape)
        ``n = min(count in header, max_items)``.

    Raises
    ------
    TaskDataError
        Naming the file and what is wrong with it.

    Examples
    --------
    >>> import struct, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
    >>> _ = path.write_bytes(struct.pack(">HBBI", 0, 8, 1, 3) + bytes([7, 1, 4]))
    >>> read_idx(path, ndim=1).tolist()
    [7, 1, 4]
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            magic = handle.read(4)
            if len(magic) < 4:
                raise TaskDataError(f"{path}: too short to be an IDX file ({len(magic)} bytes)")
            zero, dtype_code, file_ndim = struct.unpack(">HBB", magic)
            if zero != 0 or dtype_code != 0x08:
                raise TaskDataError(f"{path}: not an unsigned-byte IDX file (magic {magic.hex()}, expected 000008..)")
            if file_ndim != ndim:
                raise TaskDataError(f"{path}: IDX file has {file_ndim} dimensions, expected {ndim}")
            dims = handle.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise TaskDataError(f"{path}: IDX header truncated")
            shape = struct.unpack(f">{ndim}I", dims)
            if item_shape is not None and tuple(shape[1:]) != tuple(item_shape):
                raise TaskDataError(f"{path}: items of shape {tuple(shape[1:])}, expected {tuple(item_shape)}")
            n = shape[0] if max_items is None else min(shape[0], int(max_items))
            item_bytes = int(np.prod(shape[1:], dtype=np.int64))
            size = n * item_bytes
            if size > max_bytes:
                raise TaskDataError(
                    f"{path}: {n} items of {item_bytes} bytes exceed the read limit of {max_bytes} bytes "
                    "(read fewer items or raise max_bytes)"
                )
            raw = handle.read(size)
    except TaskDataError:
        raise
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise TaskDataError(f"{path}: cannot read IDX file ({err})") from err
    if len(raw) < size:
        raise TaskDataError(f"{path}: header says {shape[0]} items of shape {tuple(shape[1:])} but the file "
                            f"ends after {len(raw) // max(item_bytes, 1)} of the {n} requested")
    return np.frombuffer(raw, dtype=np.uint8).reshape((n,) + tuple(shape[1:]))


def _find_file(folder, stem):
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_fashion_mnist(data_dir=None, n_val=256, n_train=None, image_size=None):
    """Fashion-MNIST (28x28, 10 classes) from a local IDX copy.

    Looks in ``data_dir`` (and its ``fashion-mnist`` subfolder), then in
    :data:`FASHION_MNIST_DIRS`, for ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``). Files are read with
    :func:`read_idx` (validated headers, bounded reads).

    Parameters
    ----------
    data_dir : str or Path, optional
    n_val : int
        The validation examples are the first ``n_val`` test images.
    n_train : int, optional
        Use only the first ``n_train`` training images (the files are in a
        shuffled order; default all 60,000).
    image_size : int, optional
        Resize the images to ``image_size`` x ``image_size`` (bilinear).

    Returns
    -------
    x_train, y_train, x_val, y_val : ndarrays (see :func:`load_digits`)

    Raises
    ------
    TaskDataError
        Naming the folders searched and the files expected, or the file
        that is malformed.
    """
    candidates = []
    if data_dir is not None:
        candidates += [Path(data_dir), Path(data_dir) / "fashion-mnist"]
    candidates += [Path(d) for d in FASHION_MNIST_DIRS]
    for folder in candidates:
        files = [_find_file(folder, stem) for stem in _FASHION_FILES]
        if all(files):
            break
    else:
        raise TaskDataError(
            f"Fashion-MNIST not found: expected {', '.join(_FASHION_FILES)} (optionally .gz) in one of "
            f"{[str(c) for c in candidates]}; install the Debian package dataset-fashion-mnist or pass --data-dir"
        )
    if n_train is not None and int(n_train) < 1:
        raise ValueError(f"n_train must be >= 1, got {n_train}")
    x_tr = read_idx(files[0], 3, (28, 28), max_items=n_train)
    y_tr = read_idx(files[1], 1, max_items=n_train)
    x_te = read_idx(files[2], 3, (28, 28), max_items=n_val)
    y_te = read_idx(files[3], 1, max_items=n_val)
    if x_tr.shape[0] != y_tr.shape[0]:
        raise TaskDataError(f"{files[0]} and {files[1]}: {x_tr.shape[0]} images but {y_tr.shape[0]} labels")
    if x_te.shape[0] < n_val or y_te.shape[0] < n_val:
        raise TaskDataError(f"{files[2]}: holds {min(x_te.shape[0], y_te.shape[0])} labelled test images, "
                            f"fewer than n_val={n_val}")
    for f, labels in ((files[1], y_tr), (files[3], y_te)):
        if labels.size and labels.max() > 9:
            raise TaskDataError(f"{f}: label {int(labels.max())} outside the 10 classes 0..9")
    x_train, x_val = _standardize(
        _resize(x_tr[:, None].astype(np.float32) / 255.0, image_size),
        _resize(x_te[:n_val, None].astype(np.float32) / 255.0, image_size),
    )
    return x_train, y_tr.astype(np.int64), x_val, y_te[:n_val].astype(np.int64)


class _ArrayUnpickler(pickle.Unpickler):
    """Admits only what a CIFAR-10 batch holds: numpy arrays and builtin containers."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays and lists")


def _load_cifar_batch(path):
    try:
        with open(path, "rb") as handle:
            batch = _ArrayUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise TaskDataError(f"{path}: not a CIFAR-10 python batch ({err})") from err
    if not isinstance(batch, dict):
        raise TaskDataError(f"{path}: expected a pickled dict, got {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    missing = [k for k in ("data", "labels") if k not in batch]
    if missing:
        raise TaskDataError(f"{path}: missing key(s) {missing} (found {sorted(batch)})")
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.shape[0]:
        raise TaskDataError(
            f"{path}: expected data of shape (n, 3072) and n labels, got {data.shape} and {labels.shape}"
        )
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(data_dir=None, n_val=256):
    """CIFAR-10 (32x32 RGB, 10 classes) from a local copy in its python format.

    Parameters
    ----------
    data_dir : str or Path, optional
        A folder holding ``data_batch_1`` .. ``data_batch_5`` and
        ``test_batch``, or holding a ``cifar-10-batches-py`` folder with them.
        Defaults to the lrid cache folder (``$LRID_DATA_DIR`` or ``~/.cache/lrid``).
    n_val : int
        The validation batch is the first ``n_val`` test images.

    Raises
    ------
    TaskDataError
        Naming the expected files and the folders searched.
    """
    if data_dir is None:
        from lrid_analysis.sources import cache_dir

        data_dir = cache_dir()
    root = Path(data_dir).expanduser()
    candidates = [root, root / "cifar-10-batches-py", root / "cifar10" / "cifar-10-batches-py"]
    for folder in candidates:
        if all((folder / name).is_file() for name in _CIFAR_FILES):
            break
    else:
        raise TaskDataError(
            f"CIFAR-10 not found: expected {', '.join(_CIFAR_FILES)} (the python version, "
            f"cifar-10-python.tar.gz unpacked) in one of {[str(c) for c in candidates]}; pass --data-dir"
        )
    parts = [_load_cifar_batch(folder / name) for name in _CIFAR_FILES[:5]]
    x_te, y_te = _load_cifar_batch(folder / "test_batch")
    if x_te.shape[0] < n_val:
        raise TaskDataError(f"{folder / 'test_batch'}: holds {x_te.shape[0]} images, fewer than n_val={n_val}")
    x_tr = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    y_tr = np.concatenate([p[1] for p in parts])
    x_train, x_val = _standardize(x_tr, x_te[:n_val].astype(np.float32) / 255.0)
    return x_train, y_tr, x_val, y_te[:n_val]
