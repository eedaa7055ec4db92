"""What an experiment returns and writes: the result object, its files, the run manifest and report.

Output folder
    ``<name>.parquet`` (per-split scores), ``<name>_summary.parquet``,
    ``<name>_stats.parquet`` (comparisons), further ``<name>_<table>``
    tables, a ``.json`` next to each (parameters, seeds, versions, data),
    the figure in every format of ``formats`` (``<name>.png`` by default),
    ``manifest.json`` (the settings and the files of the run) and
    ``README.md`` (a short report linking the files).
Manifest
    A run refuses to write into a folder whose manifest records another
    experiment or other settings (:class:`ManifestMismatch`), unless
    ``overwrite=True``; files of an earlier run that the new one does not
    write again (a ``_stats`` table, a figure format) are removed, so a
    folder never mixes two runs. The fit cache (``parts/``) is keyed by
    content and kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import evaluate
from ..atomic import write_text_atomic
from .options import ExperimentError
from .summaries import format_summary

__all__ = ["FIGURE_FORMATS", "ExperimentResult", "parse_formats", "check_manifest", "check_writable",
           "write_outputs"]

#: Figure formats of ``--format``.
FIGURE_FORMATS = ("png", "pdf", "svg")
MANIFEST = "manifest.json"
#: Recorded but not compared: the parallelism, the built classifier settings and values derived from the data
#: during the run (``Context.derived``: known only after the manifest check).
_VOLATILE = ("n_jobs", "classifier_settings", "derived")


def parse_formats(formats):
    """``"png,pdf"`` or a sequence into a tuple of figure formats.

    Examples
    --------
    >>> parse_formats("png,svg")
    ('png', 'svg')
    """
    items = formats.split(",") if isinstance(formats, str) else list(formats or ("png",))
    out = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in items if f.strip()))
    bad = [f for f in out if f not in FIGURE_FORMATS]
    if bad or not out:
        raise ExperimentError(f"--format {formats!r}: use one or more of {', '.join(FIGURE_FORMATS)}")
    return out


@dataclass
class ExperimentResult:
    """What an experiment returns.

    Attributes
    ----------
    name : str
    table : pandas.DataFrame
        Per-split scores, one row per (condition, split).
    summary : pandas.DataFrame
        Mean ± s.e.m. per condition.
    comparisons : pandas.DataFrame
        Statistical comparisons (corrected resampled t-tests, Holm-adjusted).
    params : dict
        Parameters, seeds and classifier settings of the run.
    data : dict
        Description of the data analysed.
    tables : dict of str to pandas.DataFrame
        Further tidy tables (confusion matrices, importances, ...).
    paths : dict of str to Path
        Files written (empty when no output folder was given).

    Examples
    --------
    >>> import pandas as pd
    >>> summary = pd.DataFrame({"observables": ["grad"], "n_splits": [2], "accuracy_mean": [0.9],
    ...                         "accuracy_sem": [0.01]})
    >>> result = ExperimentResult("demo", pd.DataFrame({"test_accuracy": [0.89, 0.91]}), summary, pd.DataFrame(),
    ...                           {"experiment": "demo"}, {"description": "toy"})
    >>> result.figure() is None  # no draw function
    True
    >>> print(result.to_string())
    observables  n_splits accuracy (%)
           grad         2  90.0 ±  1.0
    """

    name: str
    table: pd.DataFrame
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    params: dict
    data: dict
    tables: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)
    draw: object = field(default=None, repr=False)
    _figure: object = field(default=None, repr=False)

    def figure(self):
        """The experiment's figure (drawn on first call when the run had ``plot=False``).

        Returns
        -------
        matplotlib.figure.Figure or None
            None for an experiment without a figure.
        """
        if self._figure is None and self.draw is not None:
            self._figure = self.draw()
        return self._figure

    def to_string(self):
        """The summary as a readable table (accuracies in percent)."""
        return format_summary(self.summary)

    def __str__(self):
        return f"{self.name}\n{self.to_string()}"


def _settings(params):
    return {k: v for k, v in params.items() if k not in _VOLATILE}


def _differences(old, new):
    keys = sorted(set(old) | set(new))
    return [k for k in keys if json.dumps(old.get(k), sort_keys=True, default=str)
            != json.dumps(new.get(k), sort_keys=True, default=str)]


def check_writable(out):
    """Create ``out`` and check that files can be written there.

    Raises
    ------
    ExperimentError
        (exit code 1) naming the folder and the reason.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> blocker = pathlib.Path(tempfile.mkdtemp()) / "a_file"
    >>> _ = blocker.write_text("")
    >>> check_writable(blocker / "out")
    Traceback (most recent call last):
    ...
    lrid_analysis.experiments.options.ExperimentError: cannot write to --out .../a_file/out: Not a directory
    """
    out = Path(out)
    probe = out / ".lrid-write-test"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ExperimentError(f"cannot write to --out {out}: {err.strerror or err}", 1) from None


def check_manifest(out, params, data_description, overwrite=False):
    """Refuse to write a run into a folder holding a run with other settings.

    Parameters
    ----------
    out : Path
    params : dict
        The run's parameters (``n_jobs`` and the built classifier settings
        are not compared).
    data_description : str
    overwrite : bool
        Replace a different run instead of refusing.

    Raises
    ------
    ExperimentError
        Naming the settings that differ.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (out / MANIFEST).write_text(json.dumps({"settings": {"experiment": "separability", "n_splits": 10},
    ...                                             "data": "embedded"}))
    >>> check_manifest(out, {"experiment": "separability", "n_splits": 10, "n_jobs": 4}, "embedded")
    >>> check_manifest(out, {"experiment": "separability", "n_splits": 3}, "embedded")
    Traceback (most recent call last):
    ...
    lrid_analysis.experiments.options.ExperimentError: --out ... holds a separability run with other settings (differs in: n_splits); use another --out, or --overwrite to replace it
    """
    path = Path(out) / MANIFEST
    if overwrite or not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    new = {**_settings(json.loads(json.dumps(params, default=str))), "data": data_description}
    before = {**old.get("settings", {}), "data": old.get("data")}
    changed = _differences(before, new)
    if changed:
        raise ExperimentError(
            f"--out {out} holds a {before.get('experiment', '?')} run with other settings (differs in: "
            f"{', '.join(changed)}); use another --out, or --overwrite to replace it")


def _report(name, summary, comparisons, files, figures, params, data):
    lines = [f"# {name}", "", f"Data: {data.get('description', '?')} ({data.get('n_trajectories', '?')} trajectories)",
             "", "## Summary", "", "```", format_summary(summary), "```", ""]
    if figures:
        lines += ["## Figure", "", f"![{name}]({figures[0].name})", ""]
        if len(figures) > 1:
            lines += ["Also as " + ", ".join(f"[{p.suffix[1:]}]({p.name})" for p in figures[1:]) + ".", ""]
    lines += ["## Files", ""]
    lines += [f"- [{p.name}]({p.name})" for p in files]
    lines += [f"- [{MANIFEST}]({MANIFEST}): settings and files of this run", "", "## Settings", "", "```json",
              json.dumps(_settings(params), indent=2, default=str), "```", ""]
    if comparisons is not None and not comparisons.empty:
        lines.insert(lines.index("## Files"), f"{len(comparisons)} statistical comparisons in "
                     f"[{name}_stats.parquet]({name}_stats.parquet).\n")
    return "\n".join(lines)


def write_outputs(result, out, seeds, figure=None, formats=("png",)):
    """Write a result's tables, figure, manifest and report into ``out``; remove a former run's leftovers.

    Parameters
    ----------
    result : ExperimentResult
        ``paths`` is filled in.
    out : Path
    seeds : dict
    figure : matplotlib.figure.Figure, optional
    formats : sequence of str
        Figure formats.

    Returns
    -------
    ExperimentResult

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pandas as pd
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> table = pd.DataFrame({"split": [0, 1], "test_accuracy": [0.8, 0.9]})
    >>> summary = pd.DataFrame({"n_splits": [2], "accuracy_mean": [0.85], "accuracy_sem": [0.05]})
    >>> result = ExperimentResult("demo", table, summary, pd.DataFrame(), {"experiment": "demo", "n_splits": 2},
    ...                           {"description": "toy data"})
    >>> _ = write_outputs(result, out, seeds={"random_state": 0})
    >>> sorted(p.name for p in out.iterdir())
    ['README.md', 'demo.json', 'demo.parquet', 'demo_summary.json', 'demo_summary.parquet', 'manifest.json']
    >>> pd.read_parquet(out / "demo.parquet")["test_accuracy"].tolist()
    [0.8, 0.9]

    A rewrite without comparisons removes the former run's ``_stats`` table:

    >>> result.comparisons = pd.DataFrame({"family": ["a vs b"], "p": [0.5]})
    >>> _ = write_outputs(result, out, seeds={"random_state": 0})
    >>> (out / "demo_stats.parquet").is_file()
    True
    >>> result.comparisons = pd.DataFrame()
    >>> _ = write_outputs(result, out, seeds={"random_state": 0})
    >>> [p.name for p in out.iterdir() if "stats" in p.name]
    []
    """
    out = Path(out)
    name = result.name
    write = [(name, result.table), (f"{name}_summary", result.summary)]
    if not result.comparisons.empty:
        write.append((f"{name}_stats", result.comparisons))
    write += [(f"{name}_{key}", frame) for key, frame in result.tables.items()]
    written = []
    for stem, frame in write:
        parquet, json_path = evaluate.save_results(frame, out, stem, result.params, data=result.data, seeds=seeds)
        result.paths[stem], result.paths[f"{stem}.json"] = parquet, json_path
        written += [parquet, json_path]
    figures = []
    if figure is not None:
        from .. import plots

        for fmt in formats:
            figures.append(plots.save_figure(figure, out / f"{name}.{fmt}"))
        result.paths["figure"] = figures[0]
        result.paths.update({f"figure.{p.suffix[1:]}": p for p in figures})
    report = out / "README.md"
    write_text_atomic(report, _report(name, result.summary, result.comparisons, written, figures, result.params,
                                      result.data))
    manifest = out / MANIFEST
    previous, before = set(), None
    if manifest.is_file():
        try:
            before = json.loads(manifest.read_text(encoding="utf-8"))
            previous = set(before.get("files", []))
        except (OSError, ValueError):
            previous, before = set(), None
    settings = _settings(json.loads(json.dumps(result.params, default=str)))
    kept_figures = []
    if figure is None and before is not None and not _differences(
            {**before.get("settings", {}), "data": before.get("data")},
            {**settings, "data": result.data.get("description")}):
        # a run without plotting keeps the figures of the same settings
        kept_figures = [f"{name}.{fmt}" for fmt in FIGURE_FORMATS if f"{name}.{fmt}" in previous]
    files = [p.name for p in written + figures] + kept_figures + [report.name]
    document = {"experiment": name, "settings": settings, "data": result.data.get("description"), "files": files,
                **({"derived": result.params["derived"]} if result.params.get("derived") else {}),
                "versions": evaluate.run_metadata()["packages"]}
    write_text_atomic(manifest, json.dumps(document, indent=2, default=str) + "\n")
    keep = set(files) | {MANIFEST}
    stale = previous | {p.name for p in out.glob(f"{name}*")
                        if p.is_file() and p.suffix in (".parquet", ".json", *(f".{f}" for f in FIGURE_FORMATS))}
    for stem in sorted(stale - keep):
        (out / stem).unlink(missing_ok=True)
    result.paths["report"], result.paths["manifest"] = report, manifest
    return result
