"""Tests for lrid_generate.datasets: the offline loaders and the IDX / CIFAR readers."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from lrid_generate import datasets
from lrid_generate.datasets import (
    TaskDataError,
    load_cifar10,
    load_digits,
    load_fashion_mnist,
    load_signal1d,
    read_idx,
    signal_spectrogram,
)


def test_digits_split_and_standardisation():
    x_tr, y_tr, x_val, y_val = load_digits(n_val=200)
    assert x_tr.shape == (1797 - 200, 1, 8, 8) and x_val.shape == (200, 1, 8, 8)
    assert x_tr.dtype == np.float32 and set(np.unique(y_tr)) == set(range(10))
    assert abs(x_tr.mean()) < 1e-5 and x_tr.std() == pytest.approx(1.0, abs=1e-4)
    again = load_digits(n_val=200)
    assert np.array_equal(again[1], y_tr) and np.array_equal(again[3], y_val)  # fixed split
    big = load_digits(n_val=200, image_size=16)[0]
    assert big.shape == (1597, 1, 16, 16)


def test_spectrogram_of_a_sinusoid_peaks_at_its_bin():
    n_fft, t = 16, np.arange(64)
    signal = np.cos(2 * np.pi * 4 * t / n_fft)[None]
    spec = signal_spectrogram(signal, n_fft=n_fft, hop_length=4, n_frames=9)
    assert spec.shape == (1, 1, n_fft // 2 + 1, 9)
    assert (spec[0, 0].argmax(axis=0) == 4).all()


def test_signal1d_task_leaves_global_random_state_alone():
    pytest.importorskip("mnist1d")
    state = np.random.get_state()
    x_tr, y_tr, x_val, y_val = load_signal1d(n_val=50, n_samples=300)
    assert np.array_equal(np.random.get_state()[1], state[1])
    assert x_tr.shape == (250, 1, 16, 16) and x_val.shape == (50, 1, 16, 16)
    assert set(np.unique(np.concatenate([y_tr, y_val]))) == set(range(10))
    assert np.array_equal(load_signal1d(n_val=50, n_samples=300)[0], x_tr)  # procedural and seeded


def _write_cifar(folder, n_per_batch=20, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, size=n_per_batch).tolist(), b"batch_label": name.encode()}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)


def test_cifar10_loader_reads_python_batches(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    x_tr, y_tr, x_val, y_val = load_cifar10(tmp_path, n_val=8)
    assert x_tr.shape == (100, 3, 32, 32) and x_val.shape == (8, 3, 32, 32)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as handle:
        first = pickle.load(handle, encoding="bytes")
    assert y_tr[:20].tolist() == first[b"labels"]
    np.testing.assert_allclose(x_tr.mean(axis=(0, 2, 3)), 0, atol=1e-5)  # per-channel standardised
    # the pixel layout is channel-major (R plane, G plane, B plane), as in the CIFAR docs
    raw = first[b"data"][0].reshape(3, 32, 32).astype(np.float32) / 255
    all_raw = np.concatenate([pickle.load(open(tmp_path / "cifar-10-batches-py" / f"data_batch_{i}", "rb"),
                                          encoding="bytes")[b"data"] for i in range(1, 6)]).reshape(-1, 3, 32, 32) / 255
    expected = (raw - all_raw.mean(axis=(0, 2, 3))[:, None, None]) / all_raw.std(axis=(0, 2, 3))[:, None, None]
    np.testing.assert_allclose(x_tr[0], expected, rtol=1e-4, atol=1e-4)


def test_cifar10_missing_or_malicious_files_get_clear_errors(tmp_path):
    with pytest.raises(TaskDataError, match="data_batch_1.*test_batch"):
        load_cifar10(tmp_path)
    _write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo unsafe",))

    with open(tmp_path / "test_batch", "wb") as handle:
        pickle.dump({b"data": Evil(), b"labels": []}, handle)
    with pytest.raises(TaskDataError, match="refusing to load"):
        load_cifar10(tmp_path)
    with open(tmp_path / "test_batch", "wb") as handle:
        pickle.dump({b"labels": [1, 2]}, handle)
    with pytest.raises(TaskDataError, match="missing key"):
        load_cifar10(tmp_path)


def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_idx_files(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIRS", ())
    with pytest.raises(TaskDataError, match="train-images-idx3-ubyte"):
        load_fashion_mnist(tmp_path)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 28, 28))
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(30) % 10)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images[:12])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(12) % 10)
    x_tr, y_tr, x_val, y_val = load_fashion_mnist(tmp_path, n_val=5)
    assert x_tr.shape == (30, 1, 28, 28) and x_val.shape == (5, 1, 28, 28)
    assert y_tr.tolist() == (np.arange(30) % 10).tolist()
    np.testing.assert_allclose(x_tr[3, 0], (images[3] / 255 - (images / 255).mean()) / (images / 255).std(), rtol=1e-4,
                               atol=1e-4)


def _idx_bytes(array, dtype_code=0x08):
    return struct.pack(">HBB", 0, dtype_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + \
        array.astype(np.uint8).tobytes()


def test_read_idx_plain_gz_and_bounded(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(7, 4, 5)).astype(np.uint8)
    (tmp_path / "a-idx3-ubyte").write_bytes(_idx_bytes(images))
    with gzip.open(tmp_path / "b-idx3-ubyte.gz", "wb") as handle:
        handle.write(_idx_bytes(images))
    for name in ("a-idx3-ubyte", "b-idx3-ubyte.gz"):
        np.testing.assert_array_equal(read_idx(tmp_path / name, 3, (4, 5)), images)
        np.testing.assert_array_equal(read_idx(tmp_path / name, 3, max_items=3), images[:3])
    # the byte limit applies to what is read, so a subset of a big file stays allowed
    assert read_idx(tmp_path / "a-idx3-ubyte", 3, max_items=2, max_bytes=40).shape == (2, 4, 5)
    with pytest.raises(TaskDataError, match="a-idx3-ubyte.*read limit"):
        read_idx(tmp_path / "a-idx3-ubyte", 3, max_bytes=100)


@pytest.mark.parametrize("content, kwargs, message", [
    (b"\x00\x00", {}, "too short"),
    (_idx_bytes(np.zeros(3), dtype_code=0x0D), {}, "not an unsigned-byte IDX"),
    (b"\x01" + _idx_bytes(np.zeros(3))[1:], {}, "not an unsigned-byte IDX"),
    (_idx_bytes(np.zeros((2, 3))), {}, "2 dimensions, expected 1"),
    (_idx_bytes(np.zeros(3))[:6], {}, "header truncated"),
    (_idx_bytes(np.zeros(5))[:-2], {}, "ends after 3 of the 5"),
])
def test_read_idx_rejects_malformed_files(tmp_path, content, kwargs, message):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(TaskDataError, match=f"bad-idx1-ubyte.*{message}") as info:
        read_idx(path, 1, **kwargs)
    assert str(info.value).count("bad-idx1-ubyte") == 1  # one clear message, not re-wrapped


def test_read_idx_checks_item_shape_and_gzip(tmp_path):
    path = tmp_path / "img-idx3-ubyte"
    path.write_bytes(_idx_bytes(np.zeros((2, 3, 3))))
    with pytest.raises(TaskDataError, match=r"img-idx3-ubyte: items of shape \(3, 3\), expected \(28, 28\)"):
        read_idx(path, 3, (28, 28))
    broken = tmp_path / "img-idx3-ubyte.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(TaskDataError, match="img-idx3-ubyte.gz: cannot read"):
        read_idx(broken, 3)


def _fashion_folder(folder, n_train=30, n_test=12, labels_test=None):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n_train, 28, 28))
    _write_idx(folder / "train-images-idx3-ubyte.gz", images)
    _write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images[:n_test])
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % 10 if labels_test is None else labels_test)
    return images


def test_fashion_mnist_subset_and_label_checks(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIRS", ())
    images = _fashion_folder(tmp_path)
    x_tr, y_tr, x_val, _ = load_fashion_mnist(tmp_path, n_val=5, n_train=11)
    assert x_tr.shape == (11, 1, 28, 28) and y_tr.tolist() == (np.arange(11) % 10).tolist()
    sub = images[:11] / 255
    np.testing.assert_allclose(x_tr[0, 0], (sub[0] - sub.mean()) / sub.std(), rtol=1e-4, atol=1e-4)
    with pytest.raises(TaskDataError, match="fewer than n_val=20"):
        load_fashion_mnist(tmp_path, n_val=20)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(20) % 10)
    with pytest.raises(TaskDataError, match="30 images but 20 labels"):
        load_fashion_mnist(tmp_path, n_val=5)
    _fashion_folder(tmp_path, labels_test=np.full(12, 11))
    with pytest.raises(TaskDataError, match="t10k-labels-idx1-ubyte.gz: label 11"):
        load_fashion_mnist(tmp_path, n_val=5)


def test_signal1d_frames_option():
    pytest.importorskip("mnist1d")
    x_tr, _, x_val, _ = load_signal1d(n_val=10, n_samples=60, n_fft=14, hop_length=4, n_frames=16)
    assert x_tr.shape == (50, 1, 8, 16) and x_val.shape == (10, 1, 8, 16)
    assert load_signal1d(n_val=10, n_samples=60)[0].shape == (50, 1, 16, 16)
