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

Which networks share a pack: :func:`pack_key`; how many: :func:`default_pack_size` (by model size on
the CPU, by the estimated training memory of :func:`network_memory` against :func:`pack_memory` on a GPU).
"""

from __future__ import annotations

import copy
import functools
import time

import torch
from torch import nn

from lrid_generate.presets import resolve_model_seed
from lrid_generate.rules import canonical_rule, local_loss
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

__all__ = ["PackedOptimizer", "default_pack_size", "device_memory", "make_packs", "network_memory", "pack_key",
           "pack_memory", "train_pack"]

#: Networks per pack at most (the embedded grid has 16 per task, architecture and batch size).
MAX_PACK = 16
#: :func:`default_pack_size` fills a pack up to about this many parameters.
PACK_PARAMETERS = 2_000_000


def _family(rule):
    """Networks of one family share a template module: plain layers (sgdm, adam), FA or IA layers."""
    rule = canonical_rule(rule)
    return "backprop" if rule in ("sgdm", "adam") else rule


def pack_key(spec):
    """What networks must share to be packed: everything but seeds, rule within a family, lr and decay.

    Parameters
    ----------
    spec : RunSpec

    Returns
    -------
    tuple
        Source, task, architecture, width, batch size, epochs, checkpoints,
        validation size, task options, initialisation scaling and the rule
        family (``backprop`` for SGDM and Adam, which share plain layers;
        ``feedback``; ``information``).

    Examples
    --------
    >>> from lrid_generate.presets import get_preset
    >>> sgdm, adam, fa, ia = get_preset("tiny").specs()
    >>> pack_key(sgdm) == pack_key(adam), pack_key(sgdm) == pack_key(fa)
    (True, False)
    """
    return (spec.source, spec.task, spec.architecture, float(spec.width), int(spec.batch_size), int(spec.epochs),
            int(spec.n_checkpoints), int(spec.n_val), tuple(spec.task_options), spec.init_scaling,
            _family(spec.learning_rule))


def default_pack_size(spec, memory=None, device="cpu"):
    """Networks per pack for ``spec``'s model, between 1 and 16 (:data:`MAX_PACK`).

    On the CPU, ``PACK_PARAMETERS // parameters``: small models (the
    ``embedded`` KNets and AlexNets, a few thousand to a few hundred thousand
    parameters) get packs of 16; a full-width ResNet-18 (11 M parameters)
    trains alone (a CPU gains little from packing large models). With
    ``memory`` (the bytes one pack may fill, see :func:`pack_memory`), also
    at most ``memory // network_memory(spec)["total"]``; on a GPU this
    memory rule alone sizes the pack.

    Parameters
    ----------
    spec : RunSpec
    memory : int, optional
        Bytes one pack may fill; required on a GPU.
    device : str or torch.device

    Returns
    -------
    int

    Examples
    --------
    >>> from lrid_generate.presets import get_preset
    >>> spec = get_preset("tiny").specs()[0]
    >>> default_pack_size(spec), default_pack_size(spec, memory=2 * network_memory(spec)["total"])
    (16, 2)
    """
    limits = []
    if torch.device(device).type == "cpu":
        n_parameters = _n_parameters(spec.architecture, float(spec.width), _input_shape(spec))
        limits.append(PACK_PARAMETERS // max(n_parameters, 1))
    if memory is not None:
        limits.append(int(memory) // network_memory(spec)["total"])
    if not limits:
        raise ValueError(f"sizing packs for {device} needs the memory a pack may fill (see pack_memory)")
    return int(max(1, min(MAX_PACK, *limits)))


#: Input shapes of the tasks (without an ``image_size`` option), for :func:`default_pack_size`.
_INPUT_SHAPES = {"digits": (1, 8, 8), "signal1d": (1, 16, 16), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


def _input_shape(spec):
    size = dict(spec.task_options).get("image_size")
    base = spec.task.removesuffix("_simclr")
    return (1, size, size) if size else _INPUT_SHAPES.get(base, (3, 32, 32))


@functools.lru_cache(maxsize=256)
def _n_parameters(architecture, width, shape):
    from lrid_generate.models import build_model

    return sum(p.numel() for p in build_model(architecture, 10, shape, width=width, seed=0).parameters())


def _safe_default_pack_size(spec, memory=None, device="cpu"):
    try:
        return default_pack_size(spec, memory, device)
    except Exception:  # noqa: BLE001 - a spec that cannot be built fails on its own, alone
        return 1


# --------------------------------------------------------------------------- memory


#: Share of a device's memory the packs of its workers may fill together. The rest is left to what the
#: estimate of :func:`network_memory` leaves out: the CUDA context, the task's data on the device (CIFAR-10:
#: 0.6 GB), the recorder's pass over one network at a checkpoint, the backward pass's transient gradients,
#: kernel workspaces and the allocator's fragmentation.
PACK_MEMORY_FRACTION = 0.5


def network_memory(spec):
    """Estimated bytes one network of ``spec``'s pack takes while training.

    ``total = 2 (parameters + buffers) + 3 parameters + activations``: its
    own module (kept for recording) and its slice of the stacked copy, its
    gradients, the optimizer state (two tensors per parameter, Adam's, the
    larger of SGDM's and Adam's), and the tensors the packed forward pass
    saves for the backward pass at the spec's batch size (two views per
    example for SimCLR), float32 throughout.

    The activations are measured, not modelled: two copies of the network
    (rule layers converted) on the meta device (shapes, no arithmetic) run
    one packed forward pass (``vmap`` + ``functional_call`` on the template, as
    :func:`train_pack`) on 2 and on 4 examples each, with
    ``torch.autograd.graph.saved_tensors_hooks`` adding up the storage of
    every saved tensor that is not a parameter or buffer (each storage once).
    Saved bytes are affine in the examples per step (checked to the byte on
    KNet, AlexNet and ResNet-18), so the two passes give them at any batch
    size; the loss's saved tensors (SimCLR's similarity matrix is quadratic
    in the batch) are measured at the actual batch size. One measurement per
    (architecture, width, input shape, head, rule, options), cached.

    Parameters
    ----------
    spec : RunSpec

    Returns
    -------
    dict
        Bytes: ``parameters``, ``buffers``, ``activations``, ``total``.

    Examples
    --------
    >>> from lrid_generate.presets import get_preset
    >>> sgdm = get_preset("tiny").specs()[0]
    >>> memory = network_memory(sgdm)
    >>> own_and_stacked = 2 * (memory["parameters"] + memory["buffers"])
    >>> memory["total"] == own_and_stacked + 3 * memory["parameters"] + memory["activations"]
    True
    """
    simclr = spec.task.endswith("_simclr")
    options = dict(spec.task_options)
    n_outputs = int(options.get("projection_dim", 64)) if simclr else 10
    parameters, buffers, intercept, slope = _model_memory(
        spec.architecture, float(spec.width), _input_shape(spec), "simclr" if simclr else "classifier", n_outputs,
        canonical_rule(spec.learning_rule), tuple(spec.rule_options), tuple(spec.model_options))
    n = int(spec.batch_size) * (2 if simclr else 1)
    activations = max(0, intercept + slope * n) + _loss_saved_bytes(simclr, n, n_outputs)
    return {"parameters": parameters, "buffers": buffers, "activations": int(activations),
            "total": int(2 * (parameters + buffers) + 3 * parameters + activations)}


def _saved_bytes(fn, exclude=()):
    """``(bytes, result)``: the storage of the tensors autograd saves while ``fn()`` runs, each storage once.

    Storages of ``exclude`` (parameters, buffers) are not counted. Storages
    are told apart by their ``StorageImpl`` (``_cdata``), which also works on
    the meta device, where every data pointer is 0.
    """
    skip = {t.untyped_storage()._cdata for t in exclude}
    seen = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage._cdata not in skip:
            seen[storage._cdata] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = fn()  # kept until counted: the graph holds the saved tensors, so no storage is freed and reused
        total = sum(seen.values())
    return total, result


def _packed_saved_bytes(model, shape, sizes, k=2):
    """Saved bytes per network of a pack of ``k`` copies of ``model`` run as :func:`train_pack` runs them.

    One vmapped forward pass of the template per number of examples in
    ``sizes`` (zeros of ``shape``), on the model's device, each network's
    outputs summed with its IA local losses.

    Returns
    -------
    list of float
    """
    from torch.func import functional_call, stack_module_state, vmap

    template, dropouts = _template(model)
    params, buffers = stack_module_state([model] * k)
    device = next(iter(params.values())).device

    def network(p, b, inputs):
        total = functional_call(template, (p, b), (inputs,)).sum() + local_loss(template)
        for module in template.modules():
            if hasattr(module, "clear_local_loss"):
                module.clear_local_loss()
        return total

    packed = vmap(network, randomness="error")
    out = []
    for n in sizes:
        x = torch.zeros(k, n, *shape, device=device)
        state = dict(buffers)
        for name, _p, call_shape in (_dropout_calls(model, x[0], dropouts) if dropouts else []):
            state[name] = torch.ones(k, *call_shape, device=device)
        run = functools.partial(packed, params, state, x)
        out.append(_saved_bytes(run, (*params.values(), *buffers.values()))[0] / k)
    return out


@functools.lru_cache(maxsize=256)
def _model_memory(architecture, width, shape, head, n_outputs, rule, rule_options, model_options):
    """``(parameter bytes, buffer bytes, intercept, slope)``: saved bytes per network = intercept + slope n.

    A pack of two copies of the model on the meta device (shapes without
    arithmetic) runs one forward pass on 2 and one on 4 examples each.
    """
    from lrid_generate.models import build_model
    from lrid_generate.rules import convert

    model = build_model(architecture, n_outputs, shape, width=width, head=head, seed=0,
                        projection_dim=n_outputs if head == "simclr" else None, **dict(model_options))
    model = convert(model, rule, seed=0, **dict(rule_options)).train()
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    two, four = _packed_saved_bytes(model.to("meta"), shape, (2, 4))
    slope = (four - two) / 2
    return parameters, buffers, two - 2 * slope, slope


@functools.lru_cache(maxsize=256)
def _loss_saved_bytes(simclr, n, n_outputs):
    """Saved bytes per network of the pack's loss on ``n`` outputs (as :func:`train_pack` computes it)."""
    from torch.func import vmap

    out = torch.zeros(2, n, n_outputs, device="meta", requires_grad=True)
    y = torch.zeros(2, n, dtype=torch.long, device="meta")

    def loss(o, target):
        if simclr:
            return nt_xent_loss(o[:n // 2], o[n // 2:])
        return nn.functional.cross_entropy(o, target)

    return _saved_bytes(lambda: vmap(loss)(out, y), (out,))[0] // 2


def device_memory(device):
    """Total memory of a CUDA device in bytes (a bare ``cuda``: the smallest of the visible GPUs).

    The total, not the free memory: packs are fixed by the whole grid, so
    every worker and array task must form the same ones, whatever else
    happens to be on its GPU when it starts (the free memory changes as the
    other workers of the sweep allocate theirs).
    """
    device = torch.device(device)
    if device.type != "cuda":
        raise ValueError(f"device_memory is for CUDA devices, got {device}")
    indices = [device.index] if device.index is not None else range(torch.cuda.device_count())
    totals = [torch.cuda.mem_get_info(i)[1] for i in indices]
    if not totals:
        raise RuntimeError("torch sees no CUDA device")
    return int(min(totals))


def pack_memory(device="cpu", workers=1, n_devices=1, device_memory_gb=None):
    """Bytes one pack may fill: ``PACK_MEMORY_FRACTION`` of a device's memory over the workers sharing it.

    Parameters
    ----------
    device : str or torch.device
        ``cpu``, ``cuda`` (workers spread over ``n_devices`` GPUs, as
        :func:`lrid_generate.sweep.device_for_rank`) or ``cuda:<i>`` (every
        worker on GPU i).
    workers : int
        Packs trained at once.
    n_devices : int
        GPUs of a bare ``cuda``.
    device_memory_gb : float, optional
        Memory of one device in GiB (declared); default on CUDA
        :func:`device_memory`. On the CPU without it: None (packs by model
        size alone).

    Returns
    -------
    int or None

    Examples
    --------
    >>> pack_memory("cuda", workers=4, n_devices=2, device_memory_gb=16) / 2 ** 30   # 0.5 x 16 GiB / 2
    4.0
    >>> pack_memory("cpu") is None
    True
    """
    device = torch.device(device)
    if device_memory_gb is None:
        if device.type != "cuda":
            return None
        capacity = device_memory(device)
    else:
        if not float(device_memory_gb) > 0:
            raise ValueError(f"device_memory_gb must be > 0, got {device_memory_gb}")
        capacity = float(device_memory_gb) * 2 ** 30
    spread = device.type == "cuda" and device.index is None
    sharing = -(-int(workers) // max(1, int(n_devices))) if spread else int(workers)
    return int(PACK_MEMORY_FRACTION * capacity) // max(1, sharing)


def make_packs(specs, pack=None, memory=None, device="cpu"):
    """Group run specs into packs, in their order.

    Parameters
    ----------
    specs : sequence of RunSpec
    pack : int, optional
        Networks per pack at most; default :func:`default_pack_size` of each
        group (with ``memory`` and ``device``). ``1`` gives one network per pack.
    memory : int, optional
        Bytes one pack may fill (:func:`pack_memory`); needed on a GPU.
    device : str or torch.device

    Returns
    -------
    list of list of RunSpec
        Each inner list shares a :func:`pack_key`; packs are listed in the
        order of their first network.

    Examples
    --------
    >>> from lrid_generate.presets import get_preset
    >>> [[s.learning_rule for s in p] for p in make_packs(get_preset("tiny").specs())]
    [['sgdm', 'adam'], ['feedback'], ['information']]
    """
    if pack is not None and int(pack) < 1:
        raise ValueError(f"pack must be >= 1, got {pack}")
    groups = {}
    for spec in specs:
        groups.setdefault(pack_key(spec), []).append(spec)
    packs = []
    for members in groups.values():
        size = int(pack) if pack is not None else _safe_default_pack_size(members[0], memory, device)
        packs.extend(members[i:i + size] for i in range(0, len(members), size))
    first = {id(s): i for i, s in enumerate(specs)}
    return sorted(packs, key=lambda p: first[id(p[0])])


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
