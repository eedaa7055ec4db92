"""Pack sizes: by model size on the CPU, by estimated training memory against the device's memory on CUDA.

CI has no GPU: the CUDA memory queries are mocked, the activation estimate is
checked against the memory a real packed forward pass allocates on the CPU.
"""

import dataclasses
import json

import pytest
import torch
from torch import nn

from lrid_generate import packed
from lrid_generate.models import build_model
from lrid_generate.packing import (
    MAX_PACK,
    PACK_MEMORY_FRACTION,
    PACK_PARAMETERS,
    default_pack_size,
    device_memory,
    make_packs,
    network_memory,
    pack_key,
    pack_memory,
)
from lrid_generate.presets import PRESETS, SweepError
from lrid_generate.rules import convert, local_loss
from lrid_generate.sweep import grid_packs

TINY = PRESETS["tiny"]
GIB = 2 ** 30


def _spec(architecture="knet", width=0.25, rule="sgdm", batch_size=32, **changes):
    like = next(s for s in TINY.specs() if s.learning_rule == rule)
    return dataclasses.replace(like, architecture=architecture, width=width, batch_size=batch_size, **changes)


@pytest.fixture
def fake_gpus(monkeypatch):
    """CUDA devices with the given total memory (bytes) each; the free memory is whatever ``free`` holds."""
    totals = []
    free = {"fraction": 1.0}
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(totals))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(totals))
    monkeypatch.setattr(torch.cuda, "mem_get_info",
                        lambda index=None: (int(totals[index or 0] * free["fraction"]), totals[index or 0]))
    return totals, free


# --------------------------------------------------------------------------- sizes from memory


def test_pack_size_follows_device_memory(fake_gpus):
    totals, _ = fake_gpus
    spec = _spec("alexnet", 0.125)
    per_network = network_memory(spec)["total"]
    sizes = {}
    for n in (16, 8, 4, 2):  # a GPU holding n networks in its packs' share
        totals[:] = [int(n * per_network / PACK_MEMORY_FRACTION) + 64]
        sizes[n] = default_pack_size(spec, memory=pack_memory("cuda", n_devices=1), device="cuda")
    assert sizes == {16: 16, 8: 8, 4: 4, 2: 2}  # halving the memory halves the pack
    totals[:] = [int(per_network / 10)]
    assert default_pack_size(spec, memory=pack_memory("cuda"), device="cuda") == 1  # tiny: at least 1
    totals[:] = [10 ** 15]
    assert default_pack_size(spec, memory=pack_memory("cuda"), device="cuda") == MAX_PACK  # huge: the cap
    # on a GPU the memory rule alone: a model far above the CPU's parameter budget still packs
    big = _spec("resnet18", 1.0, task="cifar10", task_options=())
    assert default_pack_size(big) == 1
    assert default_pack_size(big, memory=pack_memory("cuda"), device="cuda") == MAX_PACK


def test_pack_size_ignores_the_free_memory(fake_gpus):
    """Packs are fixed by the grid: what else is on the GPU when a worker starts does not change them."""
    totals, free = fake_gpus
    totals[:] = [8 * GIB]
    specs = [dataclasses.replace(s, batch_size=b) for s in TINY.specs() for b in (64, 4096)]
    before = [[s.run_id for s in p] for p in make_packs(specs, memory=pack_memory("cuda"), device="cuda")]
    free["fraction"] = 0.01
    after = [[s.run_id for s in p] for p in make_packs(specs, memory=pack_memory("cuda"), device="cuda")]
    assert before == after


def test_pack_memory_shares_a_device_among_its_workers(fake_gpus):
    totals, _ = fake_gpus
    totals[:] = [16 * GIB, 12 * GIB]
    assert device_memory("cuda") == 12 * GIB and device_memory("cuda:0") == 16 * GIB  # bare cuda: the smallest
    one = pack_memory("cuda", workers=1, n_devices=2)
    assert one == int(PACK_MEMORY_FRACTION * 12 * GIB)
    assert pack_memory("cuda", workers=2, n_devices=2) == one  # one worker per GPU
    assert pack_memory("cuda", workers=3, n_devices=2) == one // 2  # two workers on cuda:0
    assert pack_memory("cuda:0", workers=2, n_devices=2) == int(PACK_MEMORY_FRACTION * 16 * GIB) // 2
    # a declared capacity wins over the device's
    assert pack_memory("cuda", workers=1, n_devices=2, device_memory_gb=40) == int(PACK_MEMORY_FRACTION * 40 * GIB)
    totals[:] = []
    with pytest.raises(RuntimeError, match="no CUDA device"):
        pack_memory("cuda")
    with pytest.raises(ValueError, match="must be > 0"):
        pack_memory("cpu", device_memory_gb=0)


def test_cpu_packs_by_model_size_and_a_declared_memory():
    spec = _spec("alexnet", 0.125)
    n_parameters = sum(p.numel() for p in build_model("alexnet", 10, (1, 8, 8), width=0.125, seed=0).parameters())
    by_size = max(1, min(MAX_PACK, PACK_PARAMETERS // n_parameters))
    assert default_pack_size(spec) == by_size
    assert pack_memory("cpu") is None
    per_network = network_memory(spec)["total"]
    assert default_pack_size(spec, memory=3 * per_network) == min(3, by_size)  # also at most what fits
    with pytest.raises(ValueError, match="needs the memory"):
        default_pack_size(spec, device="cuda")


def test_a_pack_that_cannot_be_sized_is_one_network_with_a_warning():
    specs = [_spec("no_such_net", model_seed=seed) for seed in (None, 0)]
    with pytest.warns(UserWarning, match="cannot size the pack of .*no_such_net"):
        packs = make_packs(specs, memory=GIB, device="cuda")
    assert [len(p) for p in packs] == [1, 1]


def test_network_memory_counts_parameters_gradients_optimizer_state_and_activations():
    spec = _spec("knet", 0.25, rule="information")
    model = convert(build_model("knet", 10, (1, 8, 8), width=0.25, seed=0), "information", seed=0)
    memory = network_memory(spec)
    assert memory["parameters"] == 4 * sum(p.numel() for p in model.parameters())  # float32, IA's B included
    assert memory["buffers"] == 4 * sum(b.numel() for b in model.buffers())
    assert memory["total"] == 5 * memory["parameters"] + 2 * memory["buffers"] + memory["activations"]
    # activations grow with the batch (affine in it), SimCLR's two views count twice
    small, large = network_memory(dataclasses.replace(spec, batch_size=32)), network_memory(
        dataclasses.replace(spec, batch_size=64))
    assert 1.5 < large["activations"] / small["activations"] < 2.0


# --------------------------------------------------------------------------- the activation estimate, measured


def _allocated_by_packed_forward(spec, k=3):
    """Bytes per network still allocated after a packed forward pass on the CPU (what backward will read).

    Measured with the profiler's memory accounting (allocations minus frees)
    around a real pass of ``k`` networks with their inputs, labels, dropout
    masks and losses as :func:`train_pack` computes them: an independent
    check of the saved-tensor estimate, made on 2 networks on the meta device.
    """
    from torch.func import functional_call, stack_module_state, vmap
    from torch.profiler import ProfilerActivity, profile

    shape = (1, 8, 8)
    models = [convert(build_model(spec.architecture, 10, shape, width=spec.width, seed=i), spec.learning_rule,
                      seed=i).train() for i in range(k)]
    template, dropouts = packed._template(models[0])
    params, buffers = stack_module_state(models)
    calls = packed._dropout_calls(models[0], torch.zeros(spec.batch_size, *shape), dropouts) if dropouts else []

    def network(p, b, x, y):
        loss = nn.functional.cross_entropy(functional_call(template, (p, b), (x,)), y) + local_loss(template)
        for module in template.modules():
            if hasattr(module, "clear_local_loss"):
                module.clear_local_loss()
        return loss

    generator = torch.Generator().manual_seed(0)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        x = torch.randn(k, spec.batch_size, *shape, generator=generator)
        y = torch.randint(0, 10, (k, spec.batch_size), generator=generator)
        state = dict(buffers)
        for name, p, call_shape in calls:
            state[name] = torch.rand(k, *call_shape, generator=generator).ge(p).float().div(1 - p)
        losses = vmap(network, randomness="error")(params, state, x, y)
        del x, y, state  # what the graph does not hold is freed
    assert losses.shape == (k,)
    return sum(event.self_cpu_memory_usage for event in prof.events()) / k


@pytest.mark.parametrize("architecture, width, rule", [
    ("knet", 0.25, "sgdm"), ("knet", 0.25, "information"), ("alexnet", 0.125, "sgdm"),
    ("resnet18", 0.125, "feedback"),
])
def test_activation_estimate_matches_the_memory_a_packed_pass_allocates(architecture, width, rule):
    spec = _spec(architecture, width, rule=rule, batch_size=48)
    estimate = network_memory(spec)["activations"]
    measured = _allocated_by_packed_forward(spec)
    assert measured > 0
    assert estimate == pytest.approx(measured, rel=0.01)  # 4 bytes apart with torch 2.13


# --------------------------------------------------------------------------- sweeps and the command line


def test_grid_packs_for_some_run_ids_are_those_of_the_whole_grid():
    specs = [dataclasses.replace(s, batch_size=b) for s in TINY.specs() for b in (32, 64)]
    whole = grid_packs(specs, device="cpu", device_memory_gb=1.0)
    wanted = {specs[0].run_id}
    part = grid_packs(specs, device="cpu", device_memory_gb=1.0, run_ids=wanted)
    assert {pack_key(s) for p in part for s in p} == {pack_key(specs[0])}  # only its group sized
    assert part == [p for p in whole if pack_key(p[0]) == pack_key(specs[0])]
    with pytest.raises(SweepError, match="cannot size packs"):
        grid_packs(specs, device="cpu", device_memory_gb=-1)


def test_sweep_sizes_packs_for_the_declared_memory(tmp_path):
    from lrid_generate.sweep import run_sweep

    spec = TINY.specs()[0]
    per_network = network_memory(spec)["total"]
    # room for one SGDM network per pack: SGDM and Adam, packed by default, train alone
    gb = 1.5 * per_network / PACK_MEMORY_FRACTION / GIB
    counts = run_sweep("tiny", tmp_path / "one", progress=False, limit=2, device_memory_gb=gb)
    assert counts["complete"] == 2
    runs = json.loads((tmp_path / "one" / "runs.json").read_text())
    assert len(runs) == 2 and all("pack_size" not in r for r in runs)


def test_sweep_cli_passes_the_device_memory(monkeypatch, tmp_path, capsys):
    from lrid_generate import sweep
    from lrid_generate.__main__ import main

    seen = {}

    def fake_run_sweep(preset, out, **kwargs):
        seen.update(kwargs)
        return {"total": 4, "selected": 4, "skipped": 0, "complete": 4, "diverged": 0, "failed": 0, "claimed": 0,
                "missing": 0, "failures": {}}

    code = main(["sweep", "--preset", "tiny", "--out", str(tmp_path / "bad"), "--device-memory-gb", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot size packs" in err and "must be > 0" in err  # before anything is trained
    monkeypatch.setattr(sweep, "run_sweep", fake_run_sweep)
    assert main(["sweep", "--preset", "tiny", "--out", str(tmp_path), "--device-memory-gb", "24"]) == 0
    assert seen["device_memory_gb"] == 24.0 and seen["pack"] is None


def test_submission_sizes_packs_once_for_every_task(fake_gpus, monkeypatch, tmp_path):
    """The array's packs are planned where it is submitted; every task gets the same device capacity."""
    from lrid_generate import executors
    from lrid_generate.executors import ClusterOptions, submit_sweep

    totals, _ = fake_gpus
    options = ClusterOptions(executor="submitit-slurm", gpus_per_task=1, networks_per_task=1)  # a task per pack
    with pytest.raises(SweepError, match="--device-memory-gb"):  # no GPU here, none declared
        submit_sweep("tiny", tmp_path / "none", options, device="cuda")
    totals[:] = [8 * GIB]
    submitted = {}

    class FakeExecutor:
        def map_array(self, fn, *args):
            submitted["args"] = args
            return ["job"] * len(args[0])

    monkeypatch.setattr(executors, "make_executor", lambda *a, **k: FakeExecutor())
    _, packs = submit_sweep("tiny", tmp_path / "gpu", options, device="cuda")
    run_kwargs = submitted["args"][3]
    assert {kw["device_memory_gb"] for kw in run_kwargs} == {8.0}
    expected = grid_packs(TINY.specs(), device="cuda", n_gpus=1, device_memory_gb=8.0)
    assert [sorted(p) for p in packs] == [sorted(s.run_id for s in p) for p in expected]
