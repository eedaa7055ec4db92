"""Tests for lrid_generate.tasks: task objects, batching, losses, the task mapping."""

import math

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
    contrastive_accuracy,
    make_task,
    nt_xent_loss,
    resolve_dataset_seed,
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

