"""Benchmark your classifier against the random-forest reference on fixed tasks.

Usage::

    python -m lrid_benchmarks.classifiers --classifier NAME_OR_PATH [--classifier ...]
        [--data embedded|public|auto|PATH] [--tasks TASK ...] [--splits N] [--out DIR]
        [--n-jobs N] [--seed S] [--quick]
    python -m lrid_benchmarks.classifiers --list-tasks
    python -m lrid_benchmarks.classifiers --list-classifiers
    python -m lrid_benchmarks.classifiers --classifier NAME_OR_PATH --check-only

See :mod:`lrid_benchmarks.harness` for what is run and stored, and
``docs/benchmarks.md`` for a worked example.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
Benchmark scikit-learn compatible classifiers of learning rules against the
random-forest reference, on fixed data, fixed splits and one metric (test
accuracy). Every classifier first passes a compatibility check on a tiny
problem with string labels; then each is fitted on every split of every task
it has not seen yet, the scores go to <out>/results.parquet, and the
leaderboard (mean ± s.e.m., corrected 95% CI, corrected paired test against
the reference with Holm's correction) is printed and saved as
<out>/leaderboard.md, .csv and .png.

A classifier is:
  NAME                      a registered name (see --list-classifiers; installed
                            packages add theirs through the entry-point group
                            lrid.classifiers)
  package.module:Object     an importable class, factory or estimator object
  path/to/file.py:Object    a class, factory or estimator object in your own file
  LABEL=any of the above    the same, labelled LABEL in the results
"""

_EPILOG = """\
examples:
  # a classifier from your own file, quick run on the embedded data
  python -m lrid_benchmarks.classifiers --classifier examples/my_classifier.py:NearestCentroidClassifier --quick

  # only check that it plugs in
  python -m lrid_benchmarks.classifiers --classifier examples/my_classifier.py:NearestCentroidClassifier --check-only

  # an installed estimator and two built-ins, full run on the public data, 4 jobs
  python -m lrid_benchmarks.classifiers --classifier sklearn.neighbors:KNeighborsClassifier \\
      --classifier svm --classifier xgboost --data public --n-jobs 4

  # two tasks, 5 splits, results in my_results/
  python -m lrid_benchmarks.classifiers --classifier logistic --tasks separation_all heldout_task \\
      --splits 5 --out my_results

Re-running the same command skips the splits already in <out>/results.parquet.
Exit status: 0 done; 1 a classifier failed the check or a fit, or data missing;
2 bad options.
"""


def build_parser():
    """The argument parser of ``python -m lrid_benchmarks.classifiers``."""
    from lrid_analysis.experiments.cli import add_backend_arguments
    from lrid_analysis.runner import DEFAULT_N_JOBS

    from .harness import QUICK_SPLITS

    parser = argparse.ArgumentParser(
        prog="python -m lrid_benchmarks.classifiers", description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--classifier", action="append", default=[], metavar="NAME_OR_PATH",
                        help="classifier to benchmark (repeatable); the reference random_forest always runs")
    parser.add_argument("--data", default="auto", metavar="SPEC",
                        help="embedded, public, auto (public if converted, else embedded) or a Parquet file/folder "
                             "(default: auto)")
    parser.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                        help="tasks to run (names or comma lists; default: all, see --list-tasks)")
    parser.add_argument("--splits", type=int, default=None, metavar="N",
                        help=f"category-balanced splits per task (default 10; {QUICK_SPLITS} with --quick); "
                             "held-out tasks use one fold per held-out value")
    parser.add_argument("--out", default="results/classifier_benchmark", metavar="DIR",
                        help="output folder (default: results/classifier_benchmark)")
    parser.add_argument("--n-jobs", type=int, default=DEFAULT_N_JOBS, metavar="N",
                        help=f"parallel jobs given to the classifiers (default {DEFAULT_N_JOBS}: all cores, as in "
                             "the experiments); fits run one after another, so timings compare fairly")
    parser.add_argument("--random-state", "--seed", dest="seed", type=int, default=0, metavar="S",
                        help="seed of the splits, the subsampling and the classifiers (default 0; --seed is a "
                             "deprecated alias)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    add_backend_arguments(parser)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SPLITS} splits and a fixed 100-tree forest as the reference (for CI and "
                             "a first look)")
    parser.add_argument("--check-only", action="store_true",
                        help="run the compatibility check only (the reference when no --classifier is given)")
    parser.add_argument("--list-tasks", action="store_true", help="list the tasks and exit")
    parser.add_argument("--list-classifiers", action="store_true", help="list the registered classifiers and exit")
    return parser


def _list_tasks():
    from .tasks import list_tasks

    tasks = list_tasks()
    width = max(map(len, tasks))
    return "tasks:\n" + "\n".join(f"  {name:<{width}}  {text}" for name, text in tasks.items())


def _list_classifiers():
    from lrid_analysis.classifiers import list_classifiers

    names = list_classifiers()
    width = max(map(len, names))
    return "registered classifiers:\n" + "\n".join(f"  {n:<{width}}  {d}" for n, d in names.items())


def main(argv=None):
    """Run the command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_tasks or args.list_classifiers:
        if args.list_tasks:
            print(_list_tasks())
        if args.list_classifiers:
            print(_list_classifiers())
        return 0
    from lrid_analysis.experiments.cli import report_errors, with_backend

    outcome = {"code": 0}
    code = report_errors(lambda: outcome.update(code=with_backend(lambda: _run(args), args)), debug=args.debug,
                         interrupted="finished fits are kept in the output's cache/ folder and reused when the same "
                                     "command runs again")
    return code or outcome["code"]


def _error(message, code):
    print(f"error: {message}", file=sys.stderr)
    return code


def _run(args):
    """The command after parsing; returns the exit status (errors it does not expect propagate)."""
    if args.splits is not None and args.splits < 2:
        return _error(f"--splits must be >= 2, got {args.splits}", 2)
    if args.n_jobs == 0:
        return _error("--n-jobs must not be 0 (use 1, a positive count, or -1 for all cores)", 2)

    from lrid_analysis.dataset import DatasetError
    from lrid_analysis.experiments.options import ExperimentError
    from lrid_analysis.experiments.outputs import check_writable

    from .harness import REFERENCE, CompatibilityError, check_classifiers, run_benchmark
    from .plugins import ClassifierSpecError, parse_classifier

    try:
        specs = [parse_classifier(c) for c in args.classifier]
        if args.tasks is not None:
            from .tasks import get_tasks

            get_tasks(args.tasks)
    except (ClassifierSpecError, ValueError) as err:
        return _error(err, 2)

    if args.check_only:
        reports = check_classifiers(specs or [parse_classifier(REFERENCE)], seed=args.seed, n_jobs=args.n_jobs)
        for report in reports:
            print(report.format())
        return 0 if all(r.ok for r in reports) else 1

    try:
        check_writable(args.out)
        result = run_benchmark(specs, data=args.data, tasks=args.tasks, n_splits=args.splits, out=args.out,
                               n_jobs=args.n_jobs, seed=args.seed, quick=args.quick)
    except CompatibilityError:
        return _error("fix the problems above, then run again (--check-only repeats just the check)", 1)
    except ExperimentError as err:
        return _error(err, err.exit_code)
    except (FileNotFoundError, DatasetError) as err:
        return _error(err, 1)
    except MemoryError:
        return _error(f"out of memory while loading or fitting {args.data!r}; use a smaller dataset or fewer "
                      "--n-jobs", 1)
    except (ClassifierSpecError, ValueError) as err:
        return _error(err, 2)
    print()
    print(result.markdown)
    print(f"{result.n_new} split(s) fitted, {result.n_reused} reused from {result.paths['cache']}")
    print("wrote " + ", ".join(str(result.paths[k]) for k in ("results", "markdown", "csv", "figure")
                               if k in result.paths))
    if result.failures:
        print("failed:\n" + textwrap.indent("\n".join(result.failures), "  "), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
