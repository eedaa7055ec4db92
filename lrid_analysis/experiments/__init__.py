"""The experiments of Nayebi et al. (2020), from Python or the command line.

Each experiment is a module with a ``run(data=None, ..., out=None)`` function
returning an :class:`ExperimentResult` (per-split table, summary, statistical
comparisons, figure), and a command::

    python -m lrid_analysis.experiments NAME [options]
    python -m lrid_analysis.experiments --list
    python -m lrid_analysis.experiments NAME --help

From Python::

    from lrid_analysis import run_experiment
    result = run_experiment("heldout_task", "embedded", n_jobs=2)
    print(result.summary)
    result.figure().savefig("heldout_task.png")

The modules: :mod:`~lrid_analysis.experiments.options` (names to settings),
:mod:`~lrid_analysis.experiments.data` (loading),
:mod:`~lrid_analysis.experiments.splitting`,
:mod:`~lrid_analysis.experiments.context` (one run: prepare, fit through
:mod:`lrid_analysis.runner`, finish), :mod:`~lrid_analysis.experiments.summaries`
(tables and tests), :mod:`~lrid_analysis.experiments.outputs` (result
object, files, manifest, report), :mod:`~lrid_analysis.experiments.cli`.

:func:`list_experiments` names them with a one-line description;
:func:`register_experiment` adds one (a module or object with the same
attributes: ``NAME``, ``DESCRIPTION``, ``DETAILS``, ``EXAMPLES``,
``DEFAULTS``, ``add_arguments``, ``run``, ``main``).
"""

from __future__ import annotations

import importlib
import sys

from .options import ExperimentError
from .outputs import ExperimentResult

__all__ = ["EXPERIMENTS", "ExperimentError", "ExperimentResult", "list_experiments", "get_experiment",
           "register_experiment", "main"]

#: Registered experiments: name to module path (imported on first use).
EXPERIMENTS = {
    "separability": f"{__name__}.separability",
    "confusion": f"{__name__}.confusion",
    "heldout_architecture": f"{__name__}.heldout_architecture",
    "heldout_curriculum": f"{__name__}.heldout_curriculum",
    "heldout_task": f"{__name__}.heldout_task",
    "importance": f"{__name__}.importance",
    "trajectory_subsample": f"{__name__}.trajectory_subsample",
    "trajectory_window": f"{__name__}.trajectory_window",
    "trajectory_average": f"{__name__}.trajectory_average",
    "pairwise": f"{__name__}.pairwise",
    "unit_noise": f"{__name__}.unit_noise",
    "performance_control": f"{__name__}.performance_control",
    "design": f"{__name__}.design",
}
_LOADED = {}


def register_experiment(name, module, overwrite=False):
    """Add an experiment: a module path (``"package.module"``) or a module-like object."""
    if name in EXPERIMENTS and not overwrite:
        raise ValueError(f"experiment {name!r} is already registered; pass overwrite=True")
    if isinstance(module, str):
        EXPERIMENTS[name] = module
        _LOADED.pop(name, None)
    else:
        EXPERIMENTS[name] = getattr(module, "__name__", repr(module))
        _LOADED[name] = module


def get_experiment(name):
    """The module of experiment ``name``.

    Raises
    ------
    ExperimentError
        For an unknown name, listing the registered ones.
    """
    if name not in EXPERIMENTS:
        raise ExperimentError(f"unknown experiment {name!r}; available: {', '.join(EXPERIMENTS)}")
    if name not in _LOADED:
        _LOADED[name] = importlib.import_module(EXPERIMENTS[name])
    return _LOADED[name]


def list_experiments():
    """Registered experiments and their one-line descriptions.

    Returns
    -------
    dict of str to str
    """
    return {name: get_experiment(name).DESCRIPTION for name in EXPERIMENTS}


def _listing():
    width = max(map(len, EXPERIMENTS))
    lines = ["experiments:"]
    lines += [f"  {name:<{width}}  {description}" for name, description in list_experiments().items()]
    return "\n".join(lines)


_USAGE = """\
usage: python -m lrid_analysis.experiments NAME [options]
       python -m lrid_analysis.experiments NAME --help
       python -m lrid_analysis.experiments --list

example: python -m lrid_analysis.experiments heldout_task
"""


def main(argv=None):
    """Run an experiment from command-line arguments; returns the exit code.

    ``--list`` prints the experiments (exit 0); no arguments print the usage
    and the list (exit 2). Bad names and options print one ``error:`` line
    (exit 2); missing or unsuitable data, an unwritable ``--out``, memory
    running out or a failing classifier exit with 1 (one line; ``--debug``
    shows the traceback).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "--list", "list"):
        text = _listing() if argv and argv[0] in ("--list", "list") else _USAGE + "\n" + _listing()
        print(text)
        return 2 if not argv else 0
    name = argv[0]
    try:
        module = get_experiment(name)
    except ExperimentError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    from .cli import build_parser, report_errors, with_backend

    args = build_parser(module).parse_args(argv[1:])
    return report_errors(lambda: with_backend(lambda: module.main(args), args), debug=args.debug,
                         interrupted="finished fits are kept in the output's parts/ folder and reused when the "
                                     "same command runs again")
