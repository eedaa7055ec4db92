"""Which networks train together, and how many: the packs of a grid.

:func:`pack_key` says what networks must share to be trained as one packed
model (:func:`lrid_generate.packed.train_pack`), :func:`make_packs` groups a
grid's run specs into packs in grid order, and :func:`default_pack_size`
says how many networks a pack holds: by model size on the CPU
(``PACK_PARAMETERS // parameters``), by the estimated training memory of
one network (:func:`network_memory`: parameters, gradients, optimizer state
and activations measured by the saved-tensor bytes of a packed pass on the
meta device) against the memory a pack may fill (:func:`pack_memory`: a
share of the device's total memory, shared by its workers) on a GPU.
Between 1 and :data:`MAX_PACK`. Details: docs/generate.md, "Pack sizes".
"""

from __future__ import annotations

import functools
import warnings

import torch
from torch import nn

from lrid_generate.rules import canonical_rule, local_loss
from lrid_generate.tasks import nt_xent_loss

__all__ = ["MAX_PACK", "PACK_MEMORY_FRACTION", "PACK_PARAMETERS", "default_pack_size", "device_memory",
           "make_packs", "network_memory", "pack_key", "pack_memory"]

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
    except Exception as err:  # noqa: BLE001 - a spec that cannot be built fails on its own, alone
        warnings.warn(f"cannot size the pack of {spec.run_id} ({type(err).__name__}: {err}); it trains alone",
                      stacklevel=2)
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
    :func:`~lrid_generate.packed.train_pack`) on 2 and on 4 examples each, with
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
    """Saved bytes per network of a pack of ``k`` copies of ``model``, run as ``train_pack`` runs them.

    One vmapped forward pass of the template per number of examples in
    ``sizes`` (zeros of ``shape``), on the model's device, each network's
    outputs summed with its IA local losses.

    Returns
    -------
    list of float
    """
    from torch.func import functional_call, stack_module_state, vmap

    from lrid_generate.packed import _dropout_calls, _template

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
    """Saved bytes per network of the pack's loss on ``n`` outputs (as ``train_pack`` computes it)."""
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
