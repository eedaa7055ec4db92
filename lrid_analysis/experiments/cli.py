"""The command line of the experiments: one parser per experiment, one-line errors."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from ..runner import DEFAULT_N_JOBS
from ..sources import DATA_CHOICES
from ..splits import GROUPINGS
from .options import SELECTIONS, ExperimentError
from .outputs import FIGURE_FORMATS

__all__ = ["build_parser", "cli_kwargs", "report_errors"]

_COMMON_EPILOG = """\
data: --data auto uses the converted public dataset when present, else the embedded one;
      every run prints which data it used. Only full-access trajectories (all units, no
      noise) are analysed, except by unit_noise and design.
outputs (in --out, default results/<experiment>/): <name>.parquet (per-split scores),
      <name>_summary.parquet (mean ± s.e.m.), <name>_stats.parquet (comparisons), a .json
      next to each (parameters, seeds, versions, data), <name>.png (--format), README.md
      (a report linking them), manifest.json (settings and files; a run with other
      settings is refused unless --overwrite), and parts/ (finished fits, reused when
      the same fits come again; --no-resume recomputes).
errors: one line and a non-zero exit status; --debug shows the traceback.
"""


def build_parser(module):
    """The argument parser of one experiment module (common options plus ``module.add_arguments``)."""
    defaults = module.DEFAULTS
    parser = argparse.ArgumentParser(
        prog=f"python -m lrid_analysis.experiments {module.NAME}",
        description=f"{module.NAME}: {module.DESCRIPTION}\n\n" + textwrap.dedent(module.DETAILS).strip(),
        epilog="example:\n  " + "\n  ".join(module.EXAMPLES) + "\n\n" + _COMMON_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from ..classifiers import list_classifiers

    common = parser.add_argument_group("common options")
    common.add_argument("--data", default="auto", metavar="SPEC",
                        help=f"{' | '.join(DATA_CHOICES)} | PATH to tidy Parquet (default: auto)")
    common.add_argument("--classifier", action="append", metavar="NAME",
                        help="registry name, package.module:Name or path/to/file.py:Name, optionally LABEL=...; "
                             f"repeat or comma-separate for several (registered: {', '.join(list_classifiers())}; "
                             f"default: {', '.join(defaults['classifiers'])})")
    common.add_argument("--observables", action="append", metavar="SETS",
                        help="weight, act, grad, all (24 admissible), all45, gradfwd and all_fwd (forward-Jacobian "
                             "gradient, generated data), or statistic names; comma list "
                             f"(default: {', '.join(defaults['observables'])})")
    splits_default = getattr(module, "SPLITS_DEFAULT", 10)
    common.add_argument("--splits", type=int, default=splits_default, metavar="N",
                        help=f"number of category-balanced train/test splits (default: {splits_default})")
    groupings = getattr(module, "GROUPINGS", GROUPINGS)
    grouping_default = getattr(module, "GROUPING_DEFAULT", "trajectory")
    common.add_argument("--grouping", choices=groupings, default=grouping_default,
                        help="unit of the category-balanced splits: trajectory (the paper: layer trajectories, "
                             "so layers of one network fall in train and test) or network (whole networks on "
                             f"one side, the same number of networks per rule) (default: {grouping_default})")
    common.add_argument("--n-jobs", type=int, default=DEFAULT_N_JOBS, metavar="N",
                        help=f"parallel fits (default: {DEFAULT_N_JOBS}, all cores); results do not depend on it")
    common.add_argument("--random-state", "--seed", dest="random_state", type=int, default=0, metavar="N",
                        help="seed of splits, classifiers and sampling (default: 0; --seed is a deprecated alias)")
    common.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help=f"output folder (default: results/{module.NAME})")
    common.add_argument("--overwrite", action="store_true",
                        help="replace a run with other settings in --out (default: refuse)")
    common.add_argument("--format", default="png", metavar="FMT",
                        help=f"figure formats, comma list of {', '.join(FIGURE_FORMATS)} (default: png)")
    common.add_argument("--filter", action="append", metavar="COLUMN=VALUE",
                        help="keep rows with this value (repeatable; repeating a column means OR), "
                             "e.g. --filter task=imagenet")
    common.add_argument("--param", action="append", metavar="[CLASSIFIER.]KEY=VALUE",
                        help="fixed classifier parameter, e.g. --param n_estimators=50 or "
                             "--param svm.C=10 (removed from any grid)")
    common.add_argument("--selection", choices=SELECTIONS, default="compact",
                        help="hyperparameters: compact (default; fixed settings or small grids, see the "
                             "README), paper (the paper's grids, selected inside fit; slow), off (fixed "
                             "defaults and --param)")
    if len(defaults["classifiers"]) > 1:
        common.add_argument("--quick", action="store_true",
                            help="only the random forest unless --classifier is given")
    common.add_argument("--no-resume", action="store_true", help="recompute finished fits")
    common.add_argument("--no-plot", action="store_true", help="do not draw the figure")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_argument("--debug", action="store_true", help="show the traceback of an error")
    add_backend_arguments(common)
    module.add_arguments(parser)
    return parser


def cli_kwargs(args, name):
    """The keyword arguments of an experiment's ``run`` from the common options.

    Examples
    --------
    >>> from lrid_analysis.experiments import get_experiment
    >>> args = build_parser(get_experiment("separability")).parse_args(["--seed", "3", "--format", "png,pdf"])
    >>> kwargs = cli_kwargs(args, "separability")
    >>> kwargs["random_state"], kwargs["formats"], str(kwargs["out"])
    (3, 'png,pdf', 'results/separability')
    """
    classifier = args.classifier
    if classifier is None and getattr(args, "quick", False):
        classifier = ["random_forest"]
    return {
        "classifier": classifier,
        "observables": args.observables,
        "n_splits": args.splits,
        "grouping": args.grouping,
        "random_state": args.random_state,
        "n_jobs": args.n_jobs,
        "out": args.out if args.out is not None else Path("results") / name,
        "filters": args.filter,
        "params": args.param,
        "selection": args.selection,
        "resume": not args.no_resume,
        "overwrite": args.overwrite,
        "formats": args.format,
        "verbose": True,
        "progress": not args.quiet,
        "plot": not args.no_plot,
    }


def add_backend_arguments(parser):
    """Add ``--backend`` and ``--scheduler-address`` (see :func:`lrid_analysis.backends.parallel_backend`)."""
    from ..backends import BACKENDS

    parser.add_argument("--backend", choices=BACKENDS, default="loky",
                        help="joblib backend running the fits: loky (local processes, default), threading, "
                             "dask (a Dask cluster; pip install -e '.[cluster]') or ray")
    parser.add_argument("--scheduler-address", default=None, metavar="ADDRESS",
                        help="an existing Dask scheduler (e.g. tcp://HOST:8786) for --backend dask; without it "
                             "a local Dask cluster is started for the run")


def with_backend(call, args):
    """``call()`` inside the joblib backend that ``args.backend`` / ``args.scheduler_address`` name.

    With dask or ray, ``--n-jobs 1`` would keep every fit in this process,
    so it is read as "all the cluster's workers" there. joblib's Dask
    backend sends each large argument (the feature matrix) to the workers
    once per parallel loop, not once per fit.

    Examples
    --------
    >>> import argparse
    >>> with_backend(lambda: "ran", argparse.Namespace(backend="threading", scheduler_address=None, n_jobs=2))
    'ran'
    """
    from ..backends import parallel_backend

    backend = getattr(args, "backend", "loky")
    if backend in ("dask", "ray") and getattr(args, "n_jobs", None) == 1:
        args.n_jobs = -1
    with parallel_backend(backend, n_jobs=getattr(args, "n_jobs", None),
                          scheduler_address=getattr(args, "scheduler_address", None)):
        return call()


def _one_line(err):
    return " ".join(str(err).split()) or type(err).__name__


def report_errors(call, debug=False, interrupted=""):
    """Run ``call()`` and turn its errors into one ``error:`` line on stderr and an exit status.

    Parameters
    ----------
    call : callable
    debug : bool
        Re-raise (full traceback) instead.
    interrupted : str
        What to print after Ctrl-C.

    Returns
    -------
    int
        0, the :class:`ExperimentError`'s exit code, 1 for out of memory,
        an unwritable file or an unexpected error, 130 for Ctrl-C.

    Examples
    --------
    >>> import contextlib, io
    >>> def fails():
    ...     raise ExperimentError("unknown classifier 'rf'")
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     code = report_errors(fails)
    >>> code, err.getvalue().strip()
    (2, "error: unknown classifier 'rf'")
    """
    try:
        call()
    except ExperimentError as err:
        if debug:
            raise
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"\ninterrupted{'; ' + interrupted if interrupted else ''}", file=sys.stderr)
        return 130
    except MemoryError:
        if debug:
            raise
        print("error: out of memory; select fewer rows (--filter) or observables, or lower --n-jobs",
              file=sys.stderr)
        return 1
    except OSError as err:
        if debug:
            raise
        where = f" {err.filename}" if getattr(err, "filename", None) else ""
        print(f"error: cannot read or write{where}: {err.strerror or _one_line(err)}", file=sys.stderr)
        return 1
    except Exception as err:  # anything else: still one line unless --debug
        if debug:
            raise
        print(f"error: {type(err).__name__}: {_one_line(err)} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1
    return 0
