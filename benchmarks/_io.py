"""Atomic file writes shared by the benchmark modules (private)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def atomic_write(path, write):
    """Call ``write(tmp_path)`` on a hidden file next to ``path``, then rename it over ``path``.

    The temporary name is unique and lies in the destination folder (same file
    system, so the rename is atomic); unlike ``tempfile.mkstemp`` the file gets
    the usual permissions. An interrupted write never leaves a partial file
    under the final name.

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


def atomic_write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
