"""Packed training: several networks of one architecture trained as one vmapped model.

:func:`train_pack` trains K networks that share a task, an architecture, a
width, a batch size and a training schedule in one process, one step for all
of them at once, and returns for each exactly what
:func:`~lrid_generate.train.train_network` returns for it alone.

How. The K networks are built, converted and rescaled one by one exactly as
for a single run; their parameters and buffers are then stacked
(:func:`torch.func.stack_module_state`) and one template module runs all of
them under :func:`torch.func.vmap` with :func:`torch.func.functional_call`.
Under ``vmap`` a convolution with a batched kernel becomes one grouped
convolution, a linear layer a batched matrix product, batch norm a batch norm
over K times the channels (each network keeps its own batch statistics and
running averages, which are stacked buffers updated in place). The FA / IA
autograd functions batch through their generated vmap rules
(``generate_vmap_rule``), and each IA layer's closed-form local loss is
summed into its own network's loss inside the vmapped function. One
``backward`` of the summed losses gives every network its own gradients (the
derivative of the sum with respect to network k's loss is 1, so a NaN in one
network does not reach another).

What each network keeps. Its model seed (weights, FA / IA feedback kernels,
dropout masks: drawn from a generator seeded like the global one of a single
run, in the same order, and fed to the template's dropout as a stacked
buffer), its data order and SimCLR views (its own generators), its learning
rate, weight decay and optimizer state (:class:`PackedOptimizer`, the
arithmetic of ``torch.optim.SGD`` / ``Adam`` applied to the stacked tensors),
its recorder (at each checkpoint its weights are copied into its own module,
which the ordinary :class:`~lrid_generate.recorder.Recorder` records) and its
learning-curve summary. A network whose loss becomes NaN or infinite stops at
the next checkpoint as it would alone (``status: diverged``); its pack-mates
go on.

Exactness. The results equal those of training each network alone up to the
order of floating-point sums in the grouped kernels (tests:
``tests/test_packed.py``, 1e-5 relative on every observable).

Which networks share a pack and how many: :mod:`lrid_generate.packing` (:func:`pack_key`,
:func:`default_pack_size`, re-exported here).
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from lrid_generate.packing import default_pack_size, make_packs, pack_key
from lrid_generate.presets import resolve_model_seed
from lrid_generate.rules import local_loss
from lrid_generate.tasks import contrastive_accuracy, nt_xent_loss
from lrid_generate.train import (
    _build_network,
    _checkpoint_curve,
    _make_recorder,
    _summary,
    _task_for,
    _tidy_rows,
    checkpoint_steps,
)

__all__ = ["PackedOptimizer", "default_pack_size", "make_packs", "pack_key", "train_pack"]

# --------------------------------------------------------------------------- optimizer


class PackedOptimizer:
    """SGD (momentum 0.9, Nesterov) and Adam on stacked parameters, per-network hyper-parameters.

    Applies the arithmetic of ``torch.optim.SGD(momentum=0.9, nesterov=True)``
    and ``torch.optim.Adam`` (single-tensor implementations, torch defaults)
    with coupled weight decay on kernels only, as
    :func:`lrid_generate.rules.make_optimizer`, to tensors whose first axis
    indexes networks. Networks with the same (optimizer, learning rate, weight
    decay) are updated together with scalar coefficients, so each network's
    update is the elementwise operation of its own optimizer.

    Parameters
    ----------
    params : list of Tensor, each (K, ...)
    is_kernel : list of bool
        Whether each parameter gets weight decay.
    optimizers : sequence of {"sgdm", "adam"}, length K
    lrs, weight_decays : sequence of float, length K

    Notes
    -----
    Adam's step count is the pack's (every parameter of these models gets a
    gradient at every step, so it equals torch's per-parameter count).

    Examples
    --------
    >>> import torch
    >>> w = torch.zeros(2, 3)                      # two networks' (3,) parameter
    >>> opt = PackedOptimizer([w], [False], ["sgdm", "adam"], [0.1, 0.01], [0.0, 0.0])
    >>> opt.step([torch.ones(2, 3)])
    >>> [round(v, 6) for v in w[:, 0].tolist()]     # SGD: -lr (1 + 0.9); Adam: -lr
    [-0.19, -0.01]
    """

    def __init__(self, params, is_kernel, optimizers, lrs, weight_decays):
        self.params = list(params)
        self.is_kernel = list(is_kernel)
        k = self.params[0].shape[0]
        groups = {}
        for i, key in enumerate(zip(optimizers, map(float, lrs), map(float, weight_decays))):
            groups.setdefault(key, []).append(i)
        device = self.params[0].device
        self.groups = [(key, None if len(ix) == k else torch.tensor(ix, device=device)) for key, ix in groups.items()]
        self.state = [dict() for _ in self.groups]
        self.step_count = 0

    @torch.no_grad()
    def step(self, grads):
        """Update every parameter from its gradient (None: left alone, as torch does)."""
        self.step_count += 1
        for g, ((kind, lr, wd), index) in enumerate(self.groups):
            state = self.state[g]
            for i, (param, grad) in enumerate(zip(self.params, grads)):
                if grad is None:
                    continue
                p = param if index is None else param.index_select(0, index)
                d = grad if index is None else grad.index_select(0, index)
                decay = wd if self.is_kernel[i] else 0.0
                if decay != 0:
                    d = d.add(p, alpha=decay)
                if kind == "sgdm":
                    buf = state.get(i)
                    if buf is None:
                        buf = state[i] = d.detach().clone()
                    else:
                        buf.mul_(0.9).add_(d)
                    p.add_(d.add(buf, alpha=0.9), alpha=-lr)
                else:
                    self._adam(state, i, p, d, lr)
                if index is not None:
                    param.index_copy_(0, index, p)

    def _adam(self, state, i, p, d, lr, betas=(0.9, 0.999), eps=1e-8):
        if i not in state:
            state[i] = (torch.zeros_like(p), torch.zeros_like(p))
        exp_avg, exp_avg_sq = state[i]
        exp_avg.lerp_(d, 1 - betas[0])
        exp_avg_sq.mul_(betas[1]).addcmul_(d, d, value=1 - betas[1])
        bias_correction1 = 1 - betas[0] ** self.step_count
        bias_correction2 = 1 - betas[1] ** self.step_count
        denom = (exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(eps)
        p.addcdiv_(exp_avg, denom, value=-(lr / bias_correction1))


# --------------------------------------------------------------------------- template


class _StackedDropout(nn.Module):
    """Dropout whose (already scaled) mask is a buffer: under vmap, each network's own mask."""

    def __init__(self, p):
        super().__init__()
        self.p = float(p)
        self.register_buffer("mask", torch.ones(()), persistent=False)

    def forward(self, x):
        return x * self.mask if self.training else x


def _template(model):
    """A copy of ``model`` to run every network of the pack through ``functional_call``.

    Dropout layers read their mask from a buffer; IA layers compute their
    local loss in training whatever ``requires_grad`` says (under vmap a
    batched tensor reports False).

    Returns
    -------
    template : nn.Module
    dropouts : list of (mask buffer name, p)
    """
    template = copy.deepcopy(model)
    dropouts = []
    for name, module in list(template.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.modules.dropout._DropoutNd):
                if type(child) is not nn.Dropout or child.inplace:
                    raise NotImplementedError(f"packing supports nn.Dropout only, not {type(child).__name__}")
                setattr(module, child_name, _StackedDropout(child.p))
                dropouts.append((f"{full}.mask", child.p))
        if hasattr(module, "_wants_local_loss"):
            module._wants_local_loss = (lambda m=module: m.training and torch.is_grad_enabled())
    return template, dropouts


def _dropout_calls(model, x, dropouts):
    """``(buffer name, p, input shape)`` of each dropout call, in call order.

    An evaluation-mode dry run on ``x`` (no state changes) finds the order
    and shapes; a single run draws its masks in this order.
    """
    names = {module: name for name, module in model.named_modules()}
    calls = []
    handles = [m.register_forward_pre_hook(lambda mod, args: calls.append((names[mod], tuple(args[0].shape))))
               for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    p_of = dict(dropouts)
    if sorted(f"{name}.mask" for name, _ in calls) != sorted(p_of):
        raise RuntimeError("every dropout layer must run exactly once per forward pass to be packed")
    return [(f"{name}.mask", p_of[f"{name}.mask"], shape) for name, shape in calls]


# --------------------------------------------------------------------------- training


def train_pack(specs, device="cpu", data_dir=None):
    """Train several networks as one packed model; each result as :func:`train_network` gives it.

    Parameters
    ----------
    specs : sequence of RunSpec
        Sharing a :func:`pack_key`.
    device : str or torch.device
    data_dir : str or Path, optional

    Returns
    -------
    list of (rows, summary)
        One per spec, in order; see :func:`~lrid_generate.train.train_network`.
        Each summary also has ``pack_size`` and ``pack_seconds`` (the
        pack's wall time); ``seconds`` and ``cpu_seconds`` are the network's
        share (the pack's over ``pack_size``); ``record_seconds`` is its own.

    Examples
    --------
    >>> import dataclasses
    >>> from lrid_generate.presets import get_preset
    >>> sgdm, adam = get_preset("tiny").specs()[:2]
    >>> fast = [dataclasses.replace(s, epochs=1, n_checkpoints=2) for s in (sgdm, adam)]
    >>> [summary["status"] for rows, summary in train_pack(fast)]
    ['complete', 'complete']
    """
    from torch.func import functional_call, stack_module_state, vmap

    from lrid_generate.rules import parameter_groups

    specs = list(specs)
    if not specs:
        return []
    keys = {pack_key(s) for s in specs}
    if len(keys) != 1:
        raise ValueError(f"networks of one pack must share a pack_key; got {len(keys)} different keys")
    device = torch.device(device)
    first = specs[0]
    task = _task_for(first, device, data_dir)
    start, cpu_start = time.perf_counter(), time.process_time()
    built, mask_generators = [], []
    for spec in specs:
        # as train_network: the global generator seeded with the model seed, then the model built (module
        # constructors draw from it); dropout masks of a single run come next from that generator
        torch.manual_seed(resolve_model_seed(spec.model_seed))
        built.append(_build_network(spec, task, device))
        generator = torch.Generator(device=device)
        if device.type == "cpu":
            generator.set_state(torch.get_rng_state())
        else:  # CUDA dropout draws its masks with another kernel: own stream, not bit-equal to a single run
            generator.manual_seed(built[-1][1])
        mask_generators.append(generator)
    models = [b[0] for b in built]
    recorders = [_make_recorder(spec, task, model) for spec, model in zip(specs, models)]
    template, dropouts = _template(models[0])
    params, buffers = stack_module_state(models)
    names = list(params)
    kernel_ids = {id(p) for g in parameter_groups(models[0], 1.0) if g["name"] == "kernels" for p in g["params"]}
    by_name = dict(models[0].named_parameters())
    optimizer = PackedOptimizer(
        [params[n] for n in names], [id(by_name[n]) in kernel_ids for n in names],
        [s.learning_rule if s.learning_rule in ("sgdm", "adam") else s.base_optimizer for s in specs],
        [s.lr for s in specs], [s.weight_decay for s in specs],
    )
    k = len(specs)
    simclr = task.kind == "simclr"
    n_inputs = first.batch_size * (2 if simclr else 1)
    dropout_calls = _dropout_calls(models[0], task.x_train[:1].expand(n_inputs, *task.input_shape), dropouts) if dropouts else []
    order_generators = [torch.Generator().manual_seed(b[2]) for b in built]
    view_generators = [torch.Generator(device=device).manual_seed(b[2] + 1) for b in built]

    def network_loss(p, b, x, y):
        out = functional_call(template, (p, b), (x,))
        if simclr:
            n = x.shape[0] // 2
            z1, z2 = out[:n], out[n:]
            loss, correct = nt_xent_loss(z1, z2, task.temperature), contrastive_accuracy(z1, z2) * (2 * n)
        else:
            loss, correct = nn.functional.cross_entropy(out, y), (out.argmax(dim=1) == y).sum()
        total_loss = loss + local_loss(template)
        for module in template.modules():
            if hasattr(module, "clear_local_loss"):
                module.clear_local_loss()
        return total_loss, loss, correct.to(torch.float64)

    packed_loss = vmap(network_loss, randomness="error")

    def masks():
        stacked = {}
        for name, p, shape in dropout_calls:
            stacked[name] = torch.stack([
                torch.empty(shape, device=device).bernoulli_(1 - p, generator=g).div_(1 - p)
                for g in mask_generators])
        return stacked

    def sync(i):
        """Copy network i's current weights and buffers into its own module."""
        with torch.no_grad():
            for name, value in models[i].named_parameters():
                value.copy_(params[name][i])
            for name, value in models[i].named_buffers():
                if name in buffers:
                    value.copy_(buffers[name][i])

    steps_per_epoch = task.steps_per_epoch(first.batch_size)
    total = first.epochs * steps_per_epoch
    record_at = checkpoint_steps(total, first.n_checkpoints)
    frames = [[recorder.record(0, epoch=0.0).assign(**_checkpoint_curve(task, model, first.batch_size))]
              for recorder, model in zip(recorders, models)]
    active = list(range(k))
    status = ["complete"] * k
    steps = [0] * k
    bad = torch.zeros(k, dtype=torch.bool, device=device)
    loss_sum = torch.zeros(k, dtype=torch.float64, device=device)
    correct_sum = torch.zeros(k, dtype=torch.float64, device=device)
    interval = torch.zeros(2, k, dtype=torch.float64, device=device)  # loss and correct sums since the last checkpoint
    next_ckpt, step = 1, 0
    for _epoch in range(first.epochs):
        loss_sum.zero_()
        correct_sum.zero_()
        epochs = [task.epoch_batches(first.batch_size, g) for g in order_generators]
        for batches in zip(*epochs):
            if simclr:
                x = torch.stack([torch.cat([task.augmentation(bx, g), task.augmentation(bx, g)])
                                 for (bx, _), g in zip(batches, view_generators)])
            else:
                x = torch.stack([bx for bx, _ in batches])
            y = torch.stack([by for _, by in batches])
            state = {**buffers, **masks()} if dropouts else buffers
            total_loss, loss, correct = packed_loss(params, state, x, y)
            grads = torch.autograd.grad(total_loss.sum(), [params[n] for n in names], allow_unused=True)
            optimizer.step(grads)
            step += 1
            bad |= ~torch.isfinite(total_loss.detach())
            loss_sum += loss.detach()
            correct_sum += correct
            interval[0] += loss.detach()
            interval[1] += correct
            if step == record_at[next_ckpt]:
                flags = bad.tolist()
                sums = interval.tolist()
                n_steps = int(step - record_at[next_ckpt - 1])
                for i in list(active):
                    steps[i] = step
                    if flags[i]:
                        status[i] = "diverged"
                        active.remove(i)
                        continue
                    sync(i)
                    curve = _checkpoint_curve(task, models[i], first.batch_size, n_steps, sums[0][i], sums[1][i])
                    frames[i].append(recorders[i].record(next_ckpt, epoch=step / steps_per_epoch).assign(**curve))
                interval.zero_()
                next_ckpt += 1
                if not active:
                    break
        if not active:
            break

    results = []
    for i, spec in enumerate(specs):
        if status[i] == "complete":
            sync(i)
        summary = _summary(spec, task, models[i], status=status[i], frames=frames[i], step=steps[i], total=total,
                           seeds=built[i][1:], device=device, train_sums=(loss_sum[i], correct_sum[i]),
                           recorder=recorders[i])
        results.append((_tidy_rows(spec, frames[i]), summary))
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    for _, summary in results:
        summary.update(pack_size=k, pack_seconds=seconds, seconds=seconds / k, cpu_seconds=cpu_seconds / k)
    return results
