"""Where data lives: the user cache, the embedded dataset, and ``--data`` choices."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

__all__ = ["cache_dir", "embedded_path", "public_path", "parquet_files", "resolve_data", "DATA_CHOICES"]

#: Named data sources accepted wherever a command takes ``--data``.
DATA_CHOICES = ("auto", "public", "embedded")
CACHE_ENV = "LRID_DATA_DIR"


def cache_dir(override=None):
    """The folder holding downloads and converted data.

    ``override`` first, then the ``LRID_DATA_DIR`` environment variable, then
    ``$XDG_CACHE_HOME/lrid`` (``~/.cache/lrid`` by default).
    """
    if override:
        return Path(override).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "lrid"


def embedded_path():
    """Folder of the small real dataset shipped inside the package."""
    return Path(str(resources.files("lrid_analysis").joinpath("data", "embedded")))


def public_path(cache=None):
    """Folder of the converted public dataset (tidy Parquet)."""
    return cache_dir(cache) / "nayebi2020"


def parquet_files(path):
    """The Parquet files :func:`lrid_analysis.dataset.read_table` reads at ``path``.

    Parameters
    ----------
    path : str or Path
        A ``.parquet`` file, or a folder searched recursively. Hidden files
        and files or folders starting with ``_`` (temporary writes, Parquet
        side files) are skipped.

    Returns
    -------
    list of Path
        ``[path]`` for a file, else the files in sorted path order.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist or holds no ``.parquet`` file.

    Examples
    --------
    >>> files = parquet_files(embedded_path())
    >>> [f.parent.name for f in files]
    ['task=digits', 'task=digits_simclr', 'task=fashion_mnist', 'task=signal1d']
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no Parquet data at {path}")
    files = sorted(
        p for p in path.rglob("*.parquet") if not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
    )
    if not files:
        raise FileNotFoundError(f"no .parquet files under {path}")
    return files


def _has_parquet(path):
    """Whether :func:`parquet_files` finds data at ``path``."""
    try:
        return bool(parquet_files(path))
    except FileNotFoundError:
        return False


def resolve_data(spec=None, cache=None):
    """Resolve a ``--data`` value to a Parquet path and a sentence saying what it is.

    Parameters
    ----------
    spec : {None, "auto", "public", "embedded"}, str or path-like
        ``auto`` (default) uses the converted public dataset when present,
        else the embedded one. Any other string, and any path-like object
        (even one named ``embedded``), is a Parquet file or folder.
    cache : str or Path, optional
        Cache folder override (see :func:`cache_dir`).

    Returns
    -------
    path : Path
    description : str

    Raises
    ------
    FileNotFoundError
        When the chosen source holds no Parquet data, saying how to get it.

    Examples
    --------
    >>> path, description = resolve_data("embedded")
    >>> description.startswith("embedded dataset shipped with lrid")
    True
    """
    if isinstance(spec, os.PathLike):
        return _path_source(Path(spec), str(spec))
    spec = "auto" if spec is None else str(spec)
    public = public_path(cache)
    looked = ""
    if spec == "auto":
        if _has_parquet(public):
            return public, f"public dataset (Nayebi et al. 2020) at {public}"
        spec, looked = "embedded", f"no converted public dataset in {public}, and "
    if spec == "public":
        if not _has_parquet(public):
            raise FileNotFoundError(
                f"the public dataset is not converted yet (looked in {public}); run "
                "`python -m lrid_analysis.download` first, or use --data embedded"
            )
        return public, f"public dataset (Nayebi et al. 2020) at {public}"
    if spec == "embedded":
        path = embedded_path()
        if not _has_parquet(path):
            raise FileNotFoundError(
                f"{looked}the embedded dataset is missing from {path}; regenerate it with "
                "`python -m lrid_generate sweep --preset embedded`"
            )
        return path, f"embedded dataset shipped with lrid at {path}"
    return _path_source(Path(spec), spec)


def _path_source(path, spec):
    path = path.expanduser()
    if not _has_parquet(path):
        raise FileNotFoundError(f"--data {spec!r}: not one of {DATA_CHOICES} and no Parquet data at {path}")
    return path, f"Parquet data at {path}"
