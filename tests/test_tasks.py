"""Tests for lrid_generate.tasks: data loaders, batching, losses."""

import gzip
import math
import os
import pickle
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lrid_generate import tasks
from lrid_generate.tasks import (
    DEFAULT_DATASET_SEED,
    PAPER_TASKS,
    TASK_NAMES,
    Augmentation,
    Task,
    TaskDataError,
    contrastive_accuracy,
    load_cifar10,
    load_digits,
    load_fashion_mnist,
    make_task,
    nt_xent_loss,
    resolve_dataset_seed,
    signal_spectrogram,
)


# --------------------------------------------------------------------------- losses


def test_nt_xent_hand_computed_case():
    # views identical and orthogonal: each anchor sees its positive at cosine 1 and
    # the two other projections at cosine 0, so loss = -log(e / (e + 2)) = log(1 + 2 / e)
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert nt_xent_loss(z, z.clone(), temperature=1.0).item() == pytest.approx(math.log(1 + 2 / math.e), rel=1e-6)
    # one example: the positive is the only candidate, whatever the norms
    single = nt_xent_loss(torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 3.0]]), 0.5)
    assert single.item() == pytest.approx(0.0, abs=1e-7)


def test_nt_xent_matches_explicit_loop():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    tau = 0.3
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    losses = []
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        denominator = sum(math.exp(z[i] @ z[k] / tau) for k in range(2 * n) if k != i)
        losses.append(-math.log(math.exp(z[i] @ z[positive] / tau) / denominator))
    got = nt_xent_loss(torch.tensor(z1), torch.tensor(z2), tau).item()
    assert got == pytest.approx(np.mean(losses), rel=1e-10)


def test_contrastive_accuracy():
    z = torch.eye(4)
    assert contrastive_accuracy(z, z.clone()).item() == 1.0
    # every second view's positive is swapped: those anchors find the wrong view
    swapped = z[[1, 0, 2, 3]]
    assert contrastive_accuracy(z, swapped).item() == pytest.approx(4 / 8)
    with pytest.raises(ValueError, match="equal shape"):
        nt_xent_loss(torch.zeros(3, 2), torch.zeros(2, 2))


# --------------------------------------------------------------------------- augmentation


def test_augmentation_identity_and_shift():
    x = torch.zeros(6, 1, 7, 7)
    x[:, 0, 3, 3] = 1.0
    assert torch.equal(Augmentation(0, 0.0, 0.0, 0.0)(x), x)
    shift_only = Augmentation(max_shift=2, scale_jitter=0, offset_jitter=0, noise_std=0)
    shifted = shift_only(x, torch.Generator().manual_seed(1))
    assert shifted.shape == x.shape
    assert torch.equal(shifted.sum(dim=(1, 2, 3)), torch.ones(6))  # the pixel moved, not lost
    rows, cols = torch.nonzero(shifted[:, 0], as_tuple=True)[1:]
    assert ((rows - 3).abs() <= 2).all() and ((cols - 3).abs() <= 2).all()
    dots = torch.zeros(64, 1, 7, 7)
    dots[:, 0, 3, 3] = 1.0
    many = shift_only(dots, torch.Generator().manual_seed(0))
    positions = {tuple(p.tolist()) for p in torch.nonzero(many[:, 0])[:, 1:]}
    assert len(positions) > 10  # examples get their own shifts


def test_augmentation_is_seeded():
    x = torch.randn(4, 2, 5, 5)
    aug = Augmentation(1, 0.2, 0.2, 0.1)
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    c = aug(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


# --------------------------------------------------------------------------- data sources


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
    x_tr, y_tr, x_val, y_val = tasks.load_signal1d(n_val=50, n_samples=300)
    assert np.array_equal(np.random.get_state()[1], state[1])
    assert x_tr.shape == (250, 1, 16, 16) and x_val.shape == (50, 1, 16, 16)
    assert set(np.unique(np.concatenate([y_tr, y_val]))) == set(range(10))
    assert np.array_equal(tasks.load_signal1d(n_val=50, n_samples=300)[0], x_tr)  # procedural and seeded


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
    monkeypatch.setattr(tasks, "FASHION_MNIST_DIRS", ())
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


# --------------------------------------------------------------------------- task object


def _toy_task(kind="supervised", n=40):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 4, 4, generator=g)
    y = torch.arange(n) % 3
    return Task(name="toy", kind=kind, x_train=x, y_train=y, x_val=x[:8], y_val=y[:8], n_classes=3,
                paper_task="imagenet", projection_dim=5,
                augmentation=Augmentation(1, 0.1, 0.1, 0.1) if kind == "simclr" else None)


def test_epoch_batches_are_seeded_permutations():
    task = _toy_task()

    def order(seed):
        return torch.cat([y for _, y in task.epoch_batches(16, torch.Generator().manual_seed(seed))])

    first = [x for x, _ in task.epoch_batches(16, torch.Generator().manual_seed(1))]
    assert len(first) == 2 and all(b.shape == (16, 1, 4, 4) for b in first)  # last incomplete batch dropped
    stacked = torch.cat(first).reshape(32, -1)
    assert len({tuple(row.tolist()) for row in stacked}) == 32  # no example twice in an epoch
    assert torch.equal(order(1), order(1)) and not torch.equal(order(1), order(2))
    with pytest.raises(ValueError, match="exceeds"):
        task.steps_per_epoch(41)


def test_dataset_seed_mapping():
    assert resolve_dataset_seed(None) == DEFAULT_DATASET_SEED != 0
    assert resolve_dataset_seed(0) == 0 and resolve_dataset_seed(7) == 7
    with pytest.raises(ValueError):
        resolve_dataset_seed(-1)


def test_supervised_forward_and_evaluate():
    task = _toy_task()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3), torch.nn.Dropout(0.5))
    x, y = task.x_train[:10], task.y_train[:10]
    model.eval()
    loss, correct = task.forward(model, (x, y))
    logits = model(x)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, y).item())
    assert correct.item() == (logits.argmax(1) == y).sum().item()
    model.train()
    result = task.evaluate(model)
    assert model.training  # mode restored
    model.eval()
    assert result["loss"] == pytest.approx(F.cross_entropy(model(task.x_val), task.y_val).item())
    assert task.n_outputs == 3 and task.head == "classifier" and task.input_shape == (1, 4, 4)


def test_simclr_forward_scores_both_views():
    task = _toy_task("simclr")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 5))
    loss, correct = task.forward(model, (task.x_val, task.y_val), torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and 0 <= correct.item() <= 16 and task.n_scored(8) == 16
    assert task.n_outputs == 5 and task.head == "simclr"
    with pytest.raises(ValueError, match="augmentation"):
        Task(name="t", kind="simclr", x_train=task.x_train, y_train=task.y_train, x_val=task.x_val,
             y_val=task.y_val, n_classes=3, paper_task="simclr")


def test_make_task_names_and_mapping():
    assert set(PAPER_TASKS) == set(TASK_NAMES)
    assert PAPER_TASKS["digits"] == "imagenet" and PAPER_TASKS["digits_simclr"] == "simclr"
    assert PAPER_TASKS["signal1d"] == "audionet" and PAPER_TASKS["cifar10"] == "cifar10"
    assert PAPER_TASKS["fashion_mnist"] == "cifar10"  # the shallow KNets' CIFAR-10 stand-in (issue #13)
    with pytest.raises(ValueError, match="unknown task 'mnist'.*digits"):
        make_task("mnist")
    task = make_task("digits_simclr", n_val=100, image_size=16)
    assert task.kind == "simclr" and task.input_shape == (1, 16, 16) and task.x_val.shape[0] == 100
    assert task.augmentation.max_shift == 2


# --------------------------------------------------------------------------- IDX reader


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
        np.testing.assert_array_equal(tasks.read_idx(tmp_path / name, 3, (4, 5)), images)
        np.testing.assert_array_equal(tasks.read_idx(tmp_path / name, 3, max_items=3), images[:3])
    # the byte limit applies to what is read, so a subset of a big file stays allowed
    assert tasks.read_idx(tmp_path / "a-idx3-ubyte", 3, max_items=2, max_bytes=40).shape == (2, 4, 5)
    with pytest.raises(TaskDataError, match="a-idx3-ubyte.*read limit"):
        tasks.read_idx(tmp_path / "a-idx3-ubyte", 3, max_bytes=100)


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
        tasks.read_idx(path, 1, **kwargs)
    assert str(info.value).count("bad-idx1-ubyte") == 1  # one clear message, not re-wrapped


def test_read_idx_checks_item_shape_and_gzip(tmp_path):
    path = tmp_path / "img-idx3-ubyte"
    path.write_bytes(_idx_bytes(np.zeros((2, 3, 3))))
    with pytest.raises(TaskDataError, match=r"img-idx3-ubyte: items of shape \(3, 3\), expected \(28, 28\)"):
        tasks.read_idx(path, 3, (28, 28))
    broken = tmp_path / "img-idx3-ubyte.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(TaskDataError, match="img-idx3-ubyte.gz: cannot read"):
        tasks.read_idx(broken, 3)


def _fashion_folder(folder, n_train=30, n_test=12, labels_test=None):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n_train, 28, 28))
    _write_idx(folder / "train-images-idx3-ubyte.gz", images)
    _write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images[:n_test])
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % 10 if labels_test is None else labels_test)
    return images


def test_fashion_mnist_subset_and_label_checks(tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "FASHION_MNIST_DIRS", ())
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


def test_validation_set_larger_than_recording_batch():
    tasks._load_arrays.cache_clear()
    task = make_task("digits", n_val=40, n_eval=300)
    assert task.x_val.shape[0] == 40 and task.x_eval.shape[0] == 300
    assert torch.equal(task.x_eval[:40], task.x_val)  # the recording batch is part of the validation set
    assert task.n_train == 1797 - 300
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    model.eval()
    expected = (model(task.x_eval).argmax(1) == task.y_eval).float().mean().item()
    assert task.evaluate(model)["accuracy"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="at least n_val"):
        make_task("digits", n_val=40, n_eval=20)


def test_train_split_validation_leaves_heldout_data_out():
    heldout = make_task("digits", n_val=30, n_eval=200)
    tuning = make_task("digits", n_val=30, n_eval=200, validation="train_split")
    assert tuning.n_train == heldout.n_train - 200 and tuning.x_eval.shape[0] == 200
    rows = {tuple(r.tolist()) for r in heldout.x_train.reshape(heldout.n_train, -1)}
    # the tuning validation set comes from the training data, the held-out data are not used
    assert all(tuple(r.tolist()) in rows for r in tuning.x_eval.reshape(200, -1))
    assert all(tuple(r.tolist()) in rows for r in tuning.x_train.reshape(tuning.n_train, -1))
    train_rows = {tuple(r.tolist()) for r in tuning.x_train.reshape(tuning.n_train, -1)}
    assert not any(tuple(r.tolist()) in train_rows for r in tuning.x_eval.reshape(200, -1))
    with pytest.raises(ValueError, match="validation must be"):
        make_task("digits", validation="test")


def test_signal1d_frames_option():
    pytest.importorskip("mnist1d")
    x_tr, _, x_val, _ = tasks.load_signal1d(n_val=10, n_samples=60, n_fft=14, hop_length=4, n_frames=16)
    assert x_tr.shape == (50, 1, 8, 16) and x_val.shape == (10, 1, 8, 16)
    assert tasks.load_signal1d(n_val=10, n_samples=60)[0].shape == (50, 1, 16, 16)
