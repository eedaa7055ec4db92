"""Atomic file writes: a crash never leaves a partial file under the final name."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

__all__ = ["write_atomic", "write_text_atomic", "write_json_atomic"]


def write_atomic(path, write):
    """Call ``write(tmp_path)`` on a hidden file next to ``path``, then rename it over ``path``.

    The temporary name is unique and lies in the destination folder (same file
    system, so the rename is atomic; readers of folders skip hidden files).
    Unlike ``tempfile.mkstemp`` the file gets the usual permissions. Parent
    folders are created.

    Parameters
    ----------
    path : str or Path
        Final destination.
    write : callable
        Called with the temporary :class:`~pathlib.Path` to fill; its suffix
        is ``.tmp``, so pass formats explicitly where they follow the suffix.

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path, data, indent=2):
    """Write ``data`` as JSON (non-JSON values through ``str``) to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent, default=str) + "\n")
