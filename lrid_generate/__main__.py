"""Command line: ``python -m lrid_generate {sweep,finalize,presets,compact,card,tune} ...``."""

from __future__ import annotations

import argparse
import sys

EPILOG = """\
examples:
  python -m lrid_generate presets
  python -m lrid_generate sweep --preset tiny --out /tmp/lrid-tiny
  python -m lrid_generate sweep --preset embedded --out lrid_analysis/data/embedded --workers 2
  python -m lrid_generate sweep --preset cifar10_knet --device cuda --data-dir ~/data --out runs/cifar
  python -m lrid_generate sweep --preset embedded --out /tmp/try --limit 3   # time a few networks
  python -m lrid_generate compact --out runs/cifar   # merge shards: one Parquet file per task
  python -m lrid_generate sweep --preset embedded --out /tmp/e --shard 0/4   # slice 0 of 4 of the grid
  python -m lrid_generate sweep --preset cifar10_knet --out /shared/cifar --device cuda --executor submitit-slurm
      --partition gpu --time 120 --gpus-per-task 1 --networks-per-task 8 --device-memory-gb 80   # one job array
  python -m lrid_generate finalize --out /shared/cifar   # once every task is done: check, compact
  python -m lrid_generate card --out lrid_analysis/data/embedded --n-jobs 2   # CARD.md: how it was made, checks
  python -m lrid_generate card --out lrid_analysis/data/embedded --reuse-forests   # re-make it in seconds
  python -m lrid_generate tune --preset tiny --out /tmp/tune-tiny --lr-file /tmp/tiny-rates.json

A sweep writes one Parquet shard per network under OUT/source=PRESET/task=TASK/
and skips networks whose shard exists (verifying its checksums), so an
interrupted sweep resumes when run again. Several sweeps may share OUT: each
network is claimed by one process. Inside a Slurm array task, the slice
SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT is run unless --shard says
otherwise. Read the result with lrid_analysis.dataset.load_view(OUT).
"""


def _parser():
    from lrid_generate.executors import EXECUTORS
    from lrid_generate.presets import PRESETS

    parser = argparse.ArgumentParser(
        prog="python -m lrid_generate",
        description="Train networks with SGDM, Adam, FA and IA and record their observables.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sweep = sub.add_parser(
        "sweep", help="run (or resume) a preset's grid of networks",
        description="Run every network of a preset that has no shard in --out yet.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("--preset", required=True, choices=sorted(PRESETS), help="grid to run (see `presets`)")
    sweep.add_argument("--out", default=None, help="output folder (default: ./lrid-<preset>)")
    sweep.add_argument("--device", default="cpu", help="cpu or cuda (data and models stay on it); default cpu")
    sweep.add_argument("--workers", type=int, default=1,
                       help="networks trained at once, one process each (default 1)")
    sweep.add_argument("--threads", type=int, default=None,
                       help="torch threads per process (default: 1 with several workers, torch's choice otherwise)")
    sweep.add_argument("--limit", type=int, default=None, help="run at most N of the missing networks")
    sweep.add_argument("--pack", type=int, default=None,
                       help="networks trained together as one packed model (default: up to 16, by model size on "
                            "the CPU, by estimated training memory against the device's memory on CUDA; "
                            "1 = one at a time)")
    sweep.add_argument("--device-memory-gb", type=float, default=None, metavar="GB",
                       help="memory of one device (GiB) that default packs are sized for: half of it is shared by "
                            "the workers on that device (default on CUDA: the GPU's total memory; on the CPU: "
                            "none, packs by model size). Give the same value to every machine of one grid")
    sweep.add_argument("--data-dir", default=None,
                       help="folder with local datasets (CIFAR-10 python batches, Fashion-MNIST IDX files)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.add_argument("--compact", dest="compact", action="store_true", default=None,
                       help="merge each task folder's shards into one file once every network is done "
                            "(default: the preset's choice; embedded compacts)")
    sweep.add_argument("--no-compact", dest="compact", action="store_false", help="keep one shard per network")
    sweep.add_argument("--shard", default=None, metavar="K/N",
                       help="run slice K of N of the grid (K from 0); default: the Slurm array task's, else all")
    cluster = sweep.add_argument_group(
        "cluster", "run the grid as one job array through submitit (pip install \"lrid[cluster]\"); "
                   "these flags override the --config file")
    cluster.add_argument("--executor", default=None, choices=EXECUTORS,
                         help="local: worker processes here (default); submitit-slurm: one Slurm job array; "
                              "submitit-local: the same tasks as local subprocesses")
    cluster.add_argument("--config", default=None, help="TOML file with a [cluster] table of these options")
    cluster.add_argument("--partition", default=None, help="Slurm partition")
    cluster.add_argument("--time", type=int, default=None, help="minutes per array task (default 60)")
    cluster.add_argument("--gpus-per-task", type=int, default=None, help="GPUs per array task (default 0)")
    cluster.add_argument("--cpus-per-task", type=int, default=None, help="default: workers x threads")
    cluster.add_argument("--mem-gb", type=float, default=None, help="memory per array task")
    cluster.add_argument("--array-parallelism", type=int, default=None, help="array tasks at once (default 64)")
    cluster.add_argument("--networks-per-task", type=int, default=None,
                         help="networks one array task trains (default 8)")
    cluster.add_argument("--log-dir", default=None, help="submitit's job folder (default OUT/.submitit)")
    cluster.add_argument("--wait", action="store_true", help="wait for the array and report its counts")

    fin = sub.add_parser("finalize", help="after a distributed sweep: refuse if networks are missing, "
                                          "else compact and write runs.json / sweep.json")
    fin.add_argument("--out", required=True, help="the sweep's output folder")
    fin.add_argument("--preset", default=None, help="only this preset (default: every preset in sweep.json)")
    fin.add_argument("--no-compact", dest="compact", action="store_false", help="keep one shard per network")
    fin.add_argument("--noisy-statistics", choices=("all", "admissible"), default=None,
                     help="what compaction keeps of the subsampled / noisy rows (default: the preset's choice)")
    fin.add_argument("--noisy-mantissa-bits", type=int, default=None, metavar="N",
                     help="mantissa bits (1-23, 23 exact) kept of the subsampled / noisy rows' observables "
                          "(default: the preset's choice; embedded: 12)")
    fin.add_argument("--compression-level", type=int, default=None, metavar="N",
                     help="zstd level of the compacted files (1-22, lossless; 19: 6-17 %% smaller on the "
                          "embedded data, slower to write); default: the preset's choice, else pyarrow's")

    sub.add_parser("presets", help="list the presets and their grids")
    comp = sub.add_parser("compact", help="merge the per-network shards under a folder (one file per task)")
    comp.add_argument("--out", required=True, help="the sweep's output folder")
    comp.add_argument("--preset", default=None, help="only this preset's folders")
    comp.add_argument("--noisy-statistics", choices=("all", "admissible"), default=None,
                      help="all statistics of the subsampled / noisy rows, or only the admissible ones (others "
                           "stored as nulls); default: the preset's choice (embedded: admissible)")
    comp.add_argument("--noisy-mantissa-bits", type=int, default=None, metavar="N",
                      help="mantissa bits (1-23, 23 exact) kept of the subsampled / noisy rows' observables "
                           "(relative error <= 2**-(N+1)); default: the preset's choice (embedded: 12)")
    comp.add_argument("--compression-level", type=int, default=None, metavar="N",
                      help="zstd level of the compacted files (1-22, lossless; 19: 6-17 %% smaller on the "
                           "embedded data, slower to write); default: the preset's choice, else pyarrow's")
    card = sub.add_parser("card", help="write CARD.md / card.json: counts, accuracies, a random-forest check")
    card.add_argument("--out", required=True, help="the sweep's output folder")
    card.add_argument("--command-line", default=None, help="the generating command, quoted in the card")
    card.add_argument("--wall-seconds", type=float, default=None, help="wall-clock time the generation took")
    card.add_argument("--splits", type=int, default=5, help="category-balanced splits of the forest check")
    card.add_argument("--seed", type=int, default=0)
    card.add_argument("--control-splits", type=int, default=10,
                      help="network-grouped splits of the observables vs learning-curve comparison (default: 10)")
    card.add_argument("--n-jobs", type=int, default=1,
                      help="threads of every forest (default: 1; the numbers do not depend on it)")
    card.add_argument("--wall-note", default=None, help="free text after the wall time (how it was measured)")
    card.add_argument("--reuse-forests", action="store_true",
                      help="keep the forest sections of the folder's card.json (refused if the data or the "
                           "settings changed); its command, wall time and exceptions are kept unless given "
                           "(--exception adds or overrides): re-make the card in seconds")
    card.add_argument("--exception", action="append", default=[], metavar="TASK/ARCH/RULE=REASON",
                      help="a gate cell allowed to miss its target for a stated reason (repeatable)")

    tune = sub.add_parser(
        "tune", help="choose each (task, architecture, rule)'s learning rate by short pilots",
        description="Train one short pilot per rate of the preset's grid for every (task, architecture, rule), "
                    "score it on a held-out part of the training data and write the best rates into the "
                    "preset's learning-rate file (or --lr-file). Resumable: finished pilots are kept in OUT.",
    )
    tune.add_argument("--preset", required=True, choices=sorted(PRESETS))
    tune.add_argument("--out", default=None, help="folder for the pilot records (default: ./lrid-tune-<preset>)")
    tune.add_argument("--lr-file", default=None, help="learning-rate file to write (default: the preset's own)")
    tune.add_argument("--tasks", nargs="+", default=None, help="tune only these tasks")
    tune.add_argument("--architectures", nargs="+", default=None, help="tune only these architectures")
    tune.add_argument("--rules", nargs="+", default=None, help="tune only these rules")
    tune.add_argument("--epochs", type=int, default=None, help="pilot length (default: the preset's tune_epochs)")
    tune.add_argument("--limit", type=int, default=None, help="train at most N missing pilots, then stop")
    tune.add_argument("--lr-grid", type=float, nargs="+", default=None,
                      help="multipliers of the default rate to try instead of the preset's (e.g. to extend a cell "
                           "whose best rate sat at the edge; every rate tried for a cell competes)")
    tune.add_argument("--pack", type=int, default=None,
                      help="pilots trained together as one packed model (default: by model size; 1 = one at a time)")
    tune.add_argument("--device", default="cpu")
    tune.add_argument("--data-dir", default=None)
    tune.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    tune.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _cluster_options(args):
    from lrid_generate.executors import ClusterOptions, load_cluster_config

    options = load_cluster_config(args.config) if args.config else ClusterOptions()
    return options.updated(
        executor=args.executor, partition=args.partition, time=args.time, gpus_per_task=args.gpus_per_task,
        cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb, array_parallelism=args.array_parallelism,
        networks_per_task=args.networks_per_task, log_dir=args.log_dir,
    )


def _submit(args, out, options, run_kwargs):
    from lrid_generate.executors import submit_sweep

    if args.shard is not None:
        print("error: --shard is for --executor local; a job array splits the grid itself", file=sys.stderr)
        return 2
    jobs, packs = submit_sweep(args.preset, out, options, **run_kwargs)
    if not jobs:
        print(f"{args.preset}: every network is stored in {out}; nothing to submit")
        return 0
    print(f"{args.preset}: submitted {sum(map(len, packs))} networks as {len(jobs)} array task(s) "
          f"({options.executor}, job {jobs[0].job_id.split('_')[0]}, <= {max(map(len, packs))} networks each); "
          f"logs in {jobs[0].paths.folder}")
    if not args.wait:
        print(f"when they are done: python -m lrid_generate finalize --out {out}")
        return 0
    failed = 0
    totals = {"complete": 0, "diverged": 0, "failed": 0, "claimed": 0, "skipped": 0}
    for job in jobs:
        try:
            counts = job.result()
        except Exception as err:  # noqa: BLE001 - a task died: say which, go on
            failed += 1
            print(f"  task {job.job_id} failed: {str(err).strip().splitlines()[-1]}", file=sys.stderr)
            continue
        for key in totals:
            totals[key] += counts[key]
        for run, error in counts["failures"].items():
            print(f"  failed: {run}: {error}", file=sys.stderr)
    print(f"{args.preset}: {totals['complete']} trained, {totals['diverged']} diverged, {totals['failed']} failed, "
          f"{totals['skipped'] + totals['claimed']} done or trained elsewhere, {failed} task(s) failed; "
          f"next: python -m lrid_generate finalize --out {out}")
    return 1 if failed or totals["failed"] else 0


def main(argv=None):
    args = _parser().parse_args(argv)
    from lrid_generate.presets import PRESETS, SweepError
    from lrid_generate.store import compact, finalize
    from lrid_generate.sweep import parse_shard, run_sweep, shard_from_env

    if args.command == "presets":
        for preset in PRESETS.values():
            print(preset.describe())
            print()
        return 0
    if args.command == "card":
        from lrid_generate.card import CardError, format_gate, write_card

        exceptions = {}
        for item in args.exception:
            key, sep, reason = item.partition("=")
            if not sep or len(key.split("/")) != 3 or not reason.strip():
                print(f"error: --exception needs TASK/ARCH/RULE=REASON, got {item!r}", file=sys.stderr)
                return 2
            exceptions[key.strip()] = reason.strip()
        try:
            card = write_card(args.out, command=args.command_line, wall_seconds=args.wall_seconds,
                              n_splits=args.splits, seed=args.seed, exceptions=exceptions,
                              control_splits=args.control_splits, n_jobs=args.n_jobs, wall_note=args.wall_note,
                              reuse_forests=args.reuse_forests)
        except (FileNotFoundError, CardError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        check = card["forest_check"]
        print(f"wrote {args.out}/CARD.md: forest test accuracy {check['test_accuracy_mean']:.3f} "
              f"(chance {check['chance']:.2f})")
        if not card["gate"]["passed"]:
            print(format_gate(card["gate"]))
            print(f"training-quality gate FAILED: {', '.join(card['gate']['failed'])}", file=sys.stderr)
            return 3
        return 0
    if args.command == "tune":
        return _tune(args)
    if args.command == "compact":
        try:
            written = compact(args.out, source=args.preset, noisy_statistics=args.noisy_statistics,
                              noisy_mantissa_bits=args.noisy_mantissa_bits, compression_level=args.compression_level)
        except SweepError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"compacted {len(written)} folder(s)" + "".join(f"\n  {p}" for p in written))
        return 0
    if args.command == "finalize":
        try:
            result = finalize(args.out, source=args.preset, compact_files=args.compact,
                              noisy_statistics=args.noisy_statistics, noisy_mantissa_bits=args.noisy_mantissa_bits,
                              compression_level=args.compression_level)
        except SweepError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        for name, counts in result.items():
            print(f"{name}: {counts['total']} networks ({counts['complete']} complete, {counts['diverged']} "
                  f"diverged), {len(counts['compacted'])} folder(s) compacted -> {args.out}")
        return 0
    out = args.out or f"lrid-{args.preset}"
    run_kwargs = {"device": args.device, "workers": args.workers, "threads": args.threads, "data_dir": args.data_dir,
                  "pack": args.pack, "device_memory_gb": args.device_memory_gb}
    try:
        options = _cluster_options(args)
        if options.executor != "local":
            return _submit(args, out, options, run_kwargs)
        shard = parse_shard(args.shard) if args.shard is not None else shard_from_env()
        counts = run_sweep(args.preset, out, limit=args.limit, progress=not args.quiet,
                           compact_when_done=args.compact, shard=shard, **run_kwargs)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    part = "" if shard is None else f" (slice {shard[0]}/{shard[1]}: {counts['selected']} networks)"
    print(
        f"{args.preset}: {counts['total']} networks{part}, {counts['skipped']} already done, "
        f"{counts['complete']} trained, {counts['diverged']} diverged, {counts['failed']} failed, "
        f"{counts['claimed']} being trained elsewhere, {counts['missing']} still missing -> {out}"
    )
    for run, error in counts["failures"].items():
        print(f"  failed: {run}: {error}", file=sys.stderr)
    return 1 if counts["failed"] else 0


def _tune(args):
    import torch

    from lrid_generate.presets import SweepError
    from lrid_generate.tune import tune

    torch.set_num_threads(max(1, args.threads))
    try:
        result = tune(args.preset, args.out or f"lrid-tune-{args.preset}", lr_file=args.lr_file, tasks=args.tasks,
                      architectures=args.architectures, rules=args.rules, epochs=args.epochs, device=args.device,
                      data_dir=args.data_dir, limit=args.limit, progress=not args.quiet, pack=args.pack, lr_grid=args.lr_grid)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for key, scores in result["pilots"].items():
        cells = ", ".join(f"{r:.3g}: {'diverged' if a is None else f'{a:.3f}'}" for r, a in sorted(scores.items()))
        chosen = result["chosen"].get(key)
        mark = " (edge of grid)" if key in result["at_edge"] else ""
        print(f"{key}: {cells} -> {'none' if chosen is None else f'{chosen:.3g}'}{mark}")
    if result["missing"]:
        print(f"{result['trained']} pilots trained, {result['missing']} missing: run again to finish")
        return 0
    print(f"{result['trained']} pilots trained; rates written to {result['lr_file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
