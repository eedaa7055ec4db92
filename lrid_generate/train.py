"""Training one network while the recorder records it.

:func:`train_network` builds the architecture, converts it to the run's
learning rule, trains it and records its observables at every checkpoint.

Initialisation. Presets may rescale the architectures' reference
initialisation to unit-variance layer outputs
(:func:`rescale_initial_weights`); the shipped presets do, because the
reference initialisers starve scaled-down networks on standardised inputs.

Diverged runs. A run whose loss becomes NaN or infinite stops at the next
checkpoint; its summary says ``status: diverged``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from lrid_generate.presets import resolve_model_seed
from lrid_generate.recorder import Recorder, network_key
from lrid_generate.tasks import make_task, resolve_dataset_seed

__all__ = ["checkpoint_steps", "keep_freed_memory", "rescale_initial_weights", "train_network"]


def rescale_initial_weights(model, inputs, kernel_of=None, feedback=False):
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
    reference-scale ``B`` it trains stably. With ``feedback=True`` (init
    scaling ``unit_variance_feedback``) each ``B`` is multiplied by its
    ``W``'s factor: on ResNets (batch norm after every conv) the
    reference-scale ``B`` of the SimCLR head shrank the error reaching the
    trunk and FA/IA stayed at chance. Batch-norm statistics are left
    untouched and dropout is off during the measurement.

    Parameters
    ----------
    model : LayeredModel
    inputs : Tensor, shape (n, C, H, W)
    kernel_of : callable, optional
        Observed module -> its ``nn.Linear`` / ``nn.Conv2d``
        (default :func:`lrid_generate.models.kernel_module`).
    feedback : bool
        Also scale each FA / IA feedback kernel ``B`` by its layer's factor.

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
                if feedback and getattr(kernel, "feedback_weight", None) is not None:
                    kernel.feedback_weight.mul_(factor)
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


def _build_network(spec, task, device):
    """The run's model (built, converted, rescaled, in train mode) and its resolved seeds."""
    from lrid_generate.models import build_model
    from lrid_generate.rules import convert

    model_seed = resolve_model_seed(spec.model_seed)
    order_seed = resolve_dataset_seed(spec.dataset_seed)
    model = build_model(
        spec.architecture, task.n_outputs, task.input_shape, width=spec.width, head=task.head, seed=model_seed,
        projection_dim=task.projection_dim if task.kind == "simclr" else None, **dict(spec.model_options),
    )
    model = convert(model, spec.learning_rule, seed=model_seed, **dict(spec.rule_options)).to(device)
    if spec.init_scaling.startswith("unit_variance"):
        rescale_initial_weights(model, task.x_train[:256], feedback=spec.init_scaling == "unit_variance_feedback")
    model.train()
    return model, model_seed, order_seed


def _make_recorder(spec, task, model):
    from lrid_generate.models import weight_of

    return Recorder(model, task.x_val, conditions=spec.conditions, weight_of=weight_of,
                    network_key=network_key(spec.run_id))


def _summary(spec, task, model, *, status, frames, step, total, seeds, device, train_sums, recorder):
    """The run summary of :func:`train_network` without ``seconds`` (``train_sums``: last epoch's sums)."""
    steps_per_epoch = task.steps_per_epoch(spec.batch_size)
    summary = {
        "run_id": spec.run_id,
        "source": spec.source,
        "paper_task": task.paper_task,
        "status": status,
        "checkpoints_recorded": len(frames),
        "steps": int(step),
        "steps_total": int(total),
        "model_seed_used": seeds[0],
        "dataset_seed_used": seeds[1],
        "device": str(device),
    }
    if status == "complete":
        loss_sum, correct_sum = train_sums
        summary["train_loss"] = float(loss_sum) / steps_per_epoch
        summary["train_accuracy"] = float(correct_sum) / (steps_per_epoch * task.n_scored(spec.batch_size))
        summary.update({f"val_{k}": v for k, v in task.evaluate(model).items()})
    summary["record_seconds"] = recorder.seconds
    return summary


def _checkpoint_curve(task, model, batch_size, n_steps=0, loss_sum=0.0, correct_sum=0.0):
    """The learning-curve columns of one checkpoint (DESIGN section 4).

    ``val_*``: :meth:`~lrid_generate.tasks.Task.evaluate` of the model now
    (evaluation mode, no gradient); ``train_*``: the mean training loss and
    accuracy over the ``n_steps`` steps since the previous checkpoint
    (``loss_sum`` / ``correct_sum`` their sums), null at checkpoint 0.
    """
    with torch.no_grad():
        val = task.evaluate(model)
    if n_steps:
        train_loss = float(loss_sum) / n_steps
        train_accuracy = float(correct_sum) / (n_steps * task.n_scored(batch_size))
    else:
        train_loss = train_accuracy = float("nan")
    return {"train_accuracy": train_accuracy, "val_accuracy": val["accuracy"], "train_loss": train_loss,
            "val_loss": val["loss"]}


def _tidy_rows(spec, frames):
    """The recorded frames with the run's columns (DESIGN section 4)."""
    rows = pd.concat(frames, ignore_index=True)
    run_columns = {
        "source": spec.source, "run_id": spec.run_id, "task": spec.task, "architecture": spec.architecture,
        "learning_rule": spec.learning_rule, "batch_size": spec.batch_size,
        "model_seed": pd.array([spec.model_seed] * len(rows), dtype="Int64"),
        "dataset_seed": pd.array([spec.dataset_seed] * len(rows), dtype="Int64"),
    }
    return rows.assign(**run_columns)


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
        Tidy rows (DESIGN section 4) of the checkpoints reached, with the
        learning curve at each checkpoint: ``val_loss`` / ``val_accuracy``
        (``task.evaluate`` then) and ``train_loss`` / ``train_accuracy``
        (means over the steps since the previous checkpoint; null at 0).
    summary : dict
        ``status`` (``complete`` or ``diverged``), ``checkpoints_recorded``,
        final ``train_loss`` / ``train_accuracy`` (mean over the last epoch),
        ``val_loss`` / ``val_accuracy`` (validation batch, evaluation mode),
        ``seconds`` (wall), ``cpu_seconds`` (this process's CPU time, all its
        threads), ``record_seconds``, ``steps``, resolved seeds.

    See Also
    --------
    lrid_generate.packed.train_pack : several networks in one packed model, same results.
    """
    from lrid_generate.rules import local_loss, make_optimizer

    device = torch.device(device)
    task = _task_for(spec, device, data_dir)
    start, cpu_start = time.perf_counter(), time.process_time()  # after loading the data (cached per process)
    torch.manual_seed(resolve_model_seed(spec.model_seed))  # dropout and anything else drawing from the global state
    model, model_seed, order_seed = _build_network(spec, task, device)
    optimizer = make_optimizer(
        model, spec.learning_rule, spec.lr, spec.weight_decay, base_optimizer=spec.base_optimizer
    )
    recorder = _make_recorder(spec, task, model)

    steps_per_epoch = task.steps_per_epoch(spec.batch_size)
    total = spec.epochs * steps_per_epoch
    record_at = checkpoint_steps(total, spec.n_checkpoints)
    order_generator = torch.Generator().manual_seed(order_seed)
    view_generator = torch.Generator(device=device).manual_seed(order_seed + 1)

    frames = [recorder.record(0, epoch=0.0).assign(**_checkpoint_curve(task, model, spec.batch_size))]
    next_ckpt = 1
    step = 0
    status = "complete"
    bad = torch.zeros((), dtype=torch.bool, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct_sum = torch.zeros((), dtype=torch.float64, device=device)
    interval = torch.zeros(2, dtype=torch.float64, device=device)  # loss and correct sums since the last checkpoint
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
            interval[0] += loss.detach()
            interval[1] += correct
            if step == record_at[next_ckpt]:
                if bool(bad):
                    status = "diverged"
                    break
                curve = _checkpoint_curve(task, model, spec.batch_size, int(step - record_at[next_ckpt - 1]),
                                          *interval.tolist())
                frames.append(recorder.record(next_ckpt, epoch=step / steps_per_epoch).assign(**curve))
                interval.zero_()
                next_ckpt += 1
        if status == "diverged":
            break

    summary = _summary(spec, task, model, status=status, frames=frames, step=step, total=total,
                       seeds=(model_seed, order_seed), device=device, train_sums=(loss_sum, correct_sum),
                       recorder=recorder)
    summary["seconds"] = time.perf_counter() - start
    summary["cpu_seconds"] = time.process_time() - cpu_start
    return _tidy_rows(spec, frames), summary


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
