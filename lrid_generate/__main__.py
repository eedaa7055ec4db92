"""Command line: ``python -m lrid_generate {sweep,presets,compact,card} ...``."""

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
  python -m lrid_generate card --out lrid_analysis/data/embedded   # CARD.md: how it was made, checks

A sweep writes one Parquet shard per network under OUT/source=PRESET/task=TASK/
and skips networks whose shard exists, so an interrupted sweep resumes when run
again. Read the result with lrid_analysis.dataset.load_view(OUT).
"""


def _parser():
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
                       help="networks trained together as one packed model (default: by model size, up to 16; "
                            "1 = one at a time)")
    sweep.add_argument("--data-dir", default=None,
                       help="folder with local datasets (CIFAR-10 python batches, Fashion-MNIST IDX files)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.add_argument("--compact", dest="compact", action="store_true", default=None,
                       help="merge each task folder's shards into one file once every network is done "
                            "(default: the preset's choice; embedded compacts)")
    sweep.add_argument("--no-compact", dest="compact", action="store_false", help="keep one shard per network")

    sub.add_parser("presets", help="list the presets and their grids")
    comp = sub.add_parser("compact", help="merge the per-network shards under a folder (one file per task)")
    comp.add_argument("--out", required=True, help="the sweep's output folder")
    comp.add_argument("--preset", default=None, help="only this preset's folders")
    card = sub.add_parser("card", help="write CARD.md / card.json: counts, accuracies, a random-forest check")
    card.add_argument("--out", required=True, help="the sweep's output folder")
    card.add_argument("--command-line", default=None, help="the generating command, quoted in the card")
    card.add_argument("--wall-seconds", type=float, default=None, help="wall-clock time the generation took")
    card.add_argument("--splits", type=int, default=5, help="category-balanced splits of the forest check")
    card.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    from lrid_generate.presets import PRESETS, SweepError
    from lrid_generate.store import compact
    from lrid_generate.sweep import run_sweep

    if args.command == "presets":
        for preset in PRESETS.values():
            print(preset.describe())
            print()
        return 0
    if args.command == "card":
        from lrid_generate.card import write_card

        try:
            card = write_card(args.out, command=args.command_line, wall_seconds=args.wall_seconds,
                              n_splits=args.splits, seed=args.seed)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        check = card["forest_check"]
        print(f"wrote {args.out}/CARD.md: forest test accuracy {check['test_accuracy_mean']:.3f} "
              f"(chance {check['chance']:.2f})")
        return 0
    if args.command == "compact":
        written = compact(args.out, source=args.preset)
        print(f"compacted {len(written)} folder(s)" + "".join(f"\n  {p}" for p in written))
        return 0
    out = args.out or f"lrid-{args.preset}"
    try:
        counts = run_sweep(args.preset, out, device=args.device, workers=args.workers, limit=args.limit,
                           data_dir=args.data_dir, threads=args.threads, progress=not args.quiet,
                           compact_when_done=args.compact, pack=args.pack)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"{args.preset}: {counts['total']} networks, {counts['skipped']} already done, "
        f"{counts['complete']} trained, {counts['diverged']} diverged, {counts['failed']} failed, "
        f"{counts['missing']} still missing -> {out}"
    )
    for run, error in counts["failures"].items():
        print(f"  failed: {run}: {error}", file=sys.stderr)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
