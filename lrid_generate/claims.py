"""Claim files: which process is training which network of a shared output folder.

Several workers, machines or Slurm array tasks may run sweeps on one output
folder. Before a network is trained its worker creates
``<out>/.claims/<source>/<run_id>.claim`` with an atomic exclusive create
(``O_CREAT | O_EXCL``, atomic on local file systems and on NFS v3+); the file
records the owner's host, process id, start time and a random token. Whoever
fails to create it leaves the network to its owner. The claim is removed once
the network's shard is written (or its training failed).

Stale claims. A killed process cannot remove its claim. A claim counts as
stale when its owner ran on this host and that process is gone, or, for any
host, when the file was not refreshed for ``stale_after`` seconds: an owner
refreshes the modification time of its claims every ``stale_after / 4``
seconds from a background thread (:class:`Heartbeat`). A stale claim is taken
over by renaming it away (only one contender's rename succeeds) and creating
a fresh one.

Duplicate work is harmless for correctness, only for cost: shard writes are
atomic and a network trains bit-identically wherever it runs.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

__all__ = [
    "CLAIMS_DIR", "STALE_AFTER", "Heartbeat", "claim_path", "is_stale", "live_claims", "pid_alive", "release",
    "try_claim",
]

#: Hidden folder of the claim files (dataset readers skip hidden folders).
CLAIMS_DIR = ".claims"
#: Seconds without a heartbeat after which any host's claim counts as stale.
STALE_AFTER = 600.0


def claim_path(out, source, run_id):
    """``<out>/.claims/<source>/<run_id>.claim``."""
    return Path(out) / CLAIMS_DIR / str(source) / f"{run_id}.claim"


def _read(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None  # vanished, or being written right now


def pid_alive(pid):
    """Whether a process with this id runs on this host (a zombie, exited but not reaped, does not)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        state = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust kill
    return state not in ("Z", "X")


def is_stale(path, record=None, stale_after=STALE_AFTER, now=None):
    """Whether the claim at ``path`` belongs to nobody any more (see module docs)."""
    record = _read(path) if record is None else record
    try:
        age = (time.time() if now is None else now) - Path(path).stat().st_mtime
    except FileNotFoundError:
        return False  # released meanwhile: nothing to take over
    if record is None:
        return age > 60.0  # unreadable for a minute: a writer died between create and write
    if record.get("host") == socket.gethostname() and not pid_alive(record.get("pid", -1)):
        return True
    return age > stale_after


def try_claim(out, source, run_id, stale_after=STALE_AFTER):
    """Claim a network for this process.

    Returns
    -------
    Path or None
        The claim file (this process owns the network), or None when a live
        owner holds it.
    """
    path = claim_path(out, source, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time(), "token": uuid.uuid4().hex}
    # the record is written to a private file first and linked into place (an atomic create that fails
    # when the claim exists), so a claim is never seen empty or half written
    draft = path.with_name(f".{path.name}.{record['token']}.draft")
    draft.write_text(json.dumps(record))
    try:
        for _attempt in range(3):
            try:
                os.link(draft, path)
            except FileExistsError:
                held = _read(path)
                if not is_stale(path, held, stale_after):
                    return None
                _take_over(path, held)
                continue
            return path
        return None
    finally:
        draft.unlink(missing_ok=True)


def _take_over(path, held):
    """Move a stale claim away; put it back if it turned out to be a fresh one."""
    aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # someone else took it over first
    if _read(aside) != held and held is not None:
        try:  # it was replaced between our read and the rename: give it back
            os.link(aside, path)
        except OSError as err:
            if err.errno != errno.EEXIST:
                raise
    aside.unlink(missing_ok=True)


def release(path):
    """Remove a claim this process holds (no error if it is gone)."""
    if path is not None:
        Path(path).unlink(missing_ok=True)


def live_claims(out):
    """Claims under ``out`` held by live owners: ``{(source, run_id): record}``."""
    root = Path(out) / CLAIMS_DIR
    found = {}
    if not root.is_dir():
        return found
    for path in root.glob("*/*.claim"):
        record = _read(path)
        if not is_stale(path, record):
            found[(path.parent.name, path.stem)] = record
    return found


class Heartbeat:
    """Background thread refreshing the modification time of the claims this process holds.

    Parameters
    ----------
    interval : float
        Seconds between refreshes (default ``STALE_AFTER / 4``).
    """

    def __init__(self, interval=STALE_AFTER / 4):
        self.interval = float(interval)
        self._held = set()
        self._lock = threading.Lock()
        self._thread = None

    def hold(self, path):
        with self._lock:
            self._held.add(Path(path))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lrid-claims", daemon=True)
                self._thread.start()

    def drop(self, path):
        with self._lock:
            self._held.discard(Path(path))

    def _run(self):
        while True:
            time.sleep(self.interval)
            with self._lock:
                held = list(self._held)
            for path in held:
                try:
                    os.utime(path)
                except FileNotFoundError:
                    pass
