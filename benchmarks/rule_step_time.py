"""Benchmark: training-step time of Feedback and Information Alignment vs backprop.

For each model the same network (same seed) is built once per rule and
converted with :func:`lrid_generate.rules.convert`: ``sgdm`` (plain backprop,
the baseline), ``feedback`` (FA) and ``information`` (IA). A training step
is what :mod:`lrid_generate.sweep` runs::

    optimizer.zero_grad(set_to_none=True)
    loss = cross_entropy(model(x), y) + local_loss(model)
    loss.backward()
    optimizer.step()

with SGD (momentum 0.9, Nesterov) and coupled weight decay on kernels.
Timing is interleaved: every round times a block of ``steps`` consecutive
steps of each rule (the order of the rules rotates from round to round),
after ``warmup`` untimed steps per rule. The per-step time of a rule is the
median over rounds; ratios are taken between medians, and the median of the
per-round (paired) ratios is reported next to them. Interleaving and medians
keep the ratios fair on a machine shared with other processes.

Targets (from the issue): FA under 1.2x and IA under 1.6x the backprop step
time on the same model.

Usage::

    python benchmarks/rule_step_time.py [--quick] [--batch 64] [--repeats 9]
        [--steps 3] [--threads 1] [--device cpu|cuda] [--models knet resnet18 alexnet]
        [--ia-batch-fraction 1.0] [--output PATH]

Results go to ``benchmarks/results/rule_step_time.json`` (written atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import lrid_generate
from lrid_generate.models import build_model
from lrid_generate.rules import convert, local_loss, make_optimizer

TARGETS = {"feedback": 1.2, "information": 1.6}
BASELINE = "sgdm"
RULES = (BASELINE, "feedback", "information")
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "rule_step_time.json"

#: name -> (architecture, width, input shape)
MODELS = {
    "knet": ("knet", 1.0, (3, 32, 32)),
    "resnet18": ("resnet18", 0.25, (3, 32, 32)),
    "alexnet": ("alexnet", 0.25, (3, 32, 32)),
}
N_CLASSES = 10


def machine(device: torch.device) -> dict:
    """A description of the machine, the device and the library versions."""
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "lrid": lrid_generate.__version__,
        "device": str(device),
    }
    if device.type == "cuda":
        info["cuda_device"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def make_trainer(name: str, rule: str, batch: int, device: torch.device, seed: int,
                 ia_batch_fraction: float = 1.0, memory_format: str = "contiguous"):
    """Build model ``name`` for ``rule`` and return a function running one training step."""
    arch, width, shape = MODELS[name]
    model = build_model(arch, N_CLASSES, shape, width=width, seed=seed)
    ia = {"batch_fraction": ia_batch_fraction} if rule == "information" and ia_batch_fraction != 1.0 else {}
    fmt = MEMORY_FORMATS[memory_format]
    model = convert(model, rule, seed=seed, **ia).to(device, memory_format=fmt)
    model.train()
    optimizer = make_optimizer(model, rule, lr=0.01, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, *shape), generator=g).to(device).contiguous(memory_format=fmt)
    y = torch.randint(0, N_CLASSES, (batch,), generator=g).to(device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y) + local_loss(model)
        loss.backward()
        optimizer.step()

    n_params = sum(p.numel() for p in model.parameters())
    return step, n_params


def time_model(name: str, batch: int, repeats: int, steps: int, warmup: int,
               device: torch.device, seed: int, ia_batch_fraction: float = 1.0,
               memory_format: str = "contiguous") -> dict:
    """Interleaved timing of one model under every rule; seconds per step."""
    trainers, n_params = {}, {}
    for rule in RULES:
        trainers[rule], n_params[rule] = make_trainer(name, rule, batch, device, seed,
                                                      ia_batch_fraction, memory_format)
    for rule in RULES:
        for _ in range(warmup):
            trainers[rule]()
    _sync(device)
    samples = {rule: [] for rule in RULES}
    for r in range(repeats):
        order = RULES[r % len(RULES):] + RULES[:r % len(RULES)]
        for rule in order:
            _sync(device)
            start = time.perf_counter()
            for _ in range(steps):
                trainers[rule]()
            _sync(device)
            samples[rule].append((time.perf_counter() - start) / steps)
    median = {rule: statistics.median(s) for rule, s in samples.items()}
    result = {
        "architecture": MODELS[name][0], "width": MODELS[name][1],
        "input_shape": list(MODELS[name][2]), "batch": batch, "memory_format": memory_format,
        "n_parameters": n_params,
        "median_step_s": {k: round(v, 6) for k, v in median.items()},
        "min_step_s": {k: round(min(v), 6) for k, v in samples.items()},
        "samples_step_s": {k: [round(t, 6) for t in v] for k, v in samples.items()},
        "ratio": {}, "paired_ratio_median": {}, "target": {}, "meets_target": {},
    }
    for rule in RULES[1:]:
        ratio = median[rule] / median[BASELINE]
        paired = statistics.median(a / b for a, b in zip(samples[rule], samples[BASELINE]))
        result["ratio"][rule] = round(ratio, 4)
        result["paired_ratio_median"][rule] = round(paired, 4)
        result["target"][rule] = TARGETS[rule]
        result["meets_target"][rule] = bool(ratio < TARGETS[rule])
    return result


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=9, help="interleaved rounds (median over them)")
    parser.add_argument("--steps", type=int, default=3, help="training steps timed per round and rule")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per rule first")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ia-batch-fraction", type=float, default=1.0,
                        help="IA batch_fraction (1.0 = exact local loss, the default)")
    parser.add_argument("--memory-format", default="contiguous", choices=list(MEMORY_FORMATS),
                        help="layout of the model and the input (the same for every rule)")
    parser.add_argument("--quick", action="store_true", help="short run: 3 rounds of 1 step, 1 warm-up")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.steps, args.warmup = 3, 1, 1
    for flag in ("batch", "repeats", "steps", "threads"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available in this torch build/machine")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device must be cpu or cuda, got {args.device!r}")
    torch.set_num_threads(args.threads)

    payload = {
        "machine": machine(device),
        "parameters": {"batch": args.batch, "repeats": args.repeats, "steps": args.steps,
                       "warmup": args.warmup, "seed": args.seed, "quick": args.quick,
                       "ia_batch_fraction": args.ia_batch_fraction,
                       "memory_format": args.memory_format,
                       "optimizer": "sgdm (momentum 0.9, Nesterov), lr 0.01, wd 1e-4"},
        "targets": TARGETS,
        "models": {},
    }
    print(f"{'model':<10} {'backprop ms':>11} {'FA ms':>8} {'IA ms':>8} "
          f"{'FA/bp':>6} {'(<1.2)':>6} {'IA/bp':>6} {'(<1.6)':>6}")
    for name in args.models:
        res = time_model(name, args.batch, args.repeats, args.steps, args.warmup, device,
                         args.seed, args.ia_batch_fraction, args.memory_format)
        payload["models"][name] = res
        med, ratio, ok = res["median_step_s"], res["ratio"], res["meets_target"]
        print(f"{name:<10} {1e3 * med['sgdm']:>11.1f} {1e3 * med['feedback']:>8.1f} "
              f"{1e3 * med['information']:>8.1f} {ratio['feedback']:>6.2f} "
              f"{'ok' if ok['feedback'] else 'MISS':>6} {ratio['information']:>6.2f} "
              f"{'ok' if ok['information'] else 'MISS':>6}", flush=True)
    _write_json(args.output, payload)
    print(f"wrote {args.output}")
    return payload


if __name__ == "__main__":
    main()
