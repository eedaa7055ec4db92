"""Download the public dataset of Nayebi et al. (2020), verified, and the command line that converts it.

``python -m lrid_analysis.download`` fetches ``dataset.pkl`` into the user
cache (:func:`download_public`) and converts it to tidy Parquet
(:func:`lrid_analysis.public.convert_public`); run it with ``--help`` for the
options.

What a download guarantees
--------------------------
* Bytes go to ``<dest>.part`` (never through a symbolic link); the file gets
  its final name only once it is known to be complete: its size equals the
  announced length (or ``expected_size``), it is not a web page, and its
  SHA-256 equals the expected one (``sha256``, else the pinned
  :data:`PUBLIC_SHA256` when known). Anything else stays a ``.part`` file
  and the error says how to retry.
* An interrupted download resumes with ``Range`` and ``If-Range`` (the ETag,
  else Last-Modified, of the first answer, kept in ``<dest>.part.json``), so a
  file that changed on the server restarts from zero instead of being
  spliced from two versions.
* The whole download must finish within ``deadline`` seconds: a watchdog
  shuts the connection down when it passes, so a server trickling its
  status line, headers or body cannot hold it forever; each network wait
  is also bounded by ``timeout``. A full disk is reported as such.
* ``<dest>.json`` records the URL, validator, size and SHA-256 of the
  finished file; the conversion writes where the data came from into the
  Parquet footer.
"""

from __future__ import annotations

import argparse
import datetime
import errno
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from pathlib import Path

from . import __version__, public
from .atomic import write_json_atomic
from .dataset import DatasetError
from .sources import CACHE_ENV, cache_dir, public_path, resolve_data
from .unpickle import UnreadablePickleError, UnsafePickleError

__all__ = [
    "PUBLIC_URL",
    "PUBLIC_FILENAME",
    "PUBLIC_SHA256",
    "PUBLIC_SIZE",
    "DEFAULT_TIMEOUT",
    "DEFAULT_DEADLINE",
    "DownloadError",
    "default_pickle_path",
    "download_public",
    "build_parser",
    "main",
]

#: Where the authors host the dataset (``get_dataset.sh`` of neuroailab/lr-identify).
PUBLIC_URL = "https://lridentify-datasets.s3-us-west-1.amazonaws.com/dataset.pkl"
PUBLIC_FILENAME = "dataset.pkl"
#: SHA-256 (hex) and size in bytes of the published ``dataset.pkl``. ``None``: not pinned yet. The
#: file could not be fetched where lrid was written, and a value not computed from the real file
#: would be worse than none. Until it is pinned, downloads are checked against ``--sha256`` when
#: given, and the computed digest is printed and stored in the converted data's footer.
PUBLIC_SHA256 = None
PUBLIC_SIZE = None
#: Seconds to wait on any one network operation.
DEFAULT_TIMEOUT = 60.0
#: Seconds the whole download may take (511 MB at 100 kB/s takes about 1.5 h).
DEFAULT_DEADLINE = 3 * 3600.0
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(RuntimeError):
    """The dataset could not be fetched or verified (offline, HTTP error, dropped, incomplete, wrong file)."""


def default_pickle_path(cache=None):
    """Where the downloaded ``dataset.pkl`` lives: ``<cache dir>/dataset.pkl``.

    Examples
    --------
    >>> default_pickle_path("/data/lrid").as_posix()
    '/data/lrid/dataset.pkl'
    """
    return cache_dir(cache) / PUBLIC_FILENAME


def _sha256_arg(value):
    text = str(value).strip().lower()
    if not _HEX64.match(text):
        raise DownloadError(f"--sha256 {value!r} is not a SHA-256 digest (64 hexadecimal digits)")
    return text


def _check_url(url):
    parts = urllib.parse.urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DownloadError(f"--url {url!r} is not an http:// or https:// address")


def _offline_message(url, dest, reason):
    return (
        f"could not reach {url} ({reason}); this machine seems to be offline. "
        f"Fetch the file on a machine with internet access (for example `curl -fLo dataset.pkl {url}`), "
        f"then either copy it to {dest} or convert it with "
        "`python -m lrid_analysis.download --from-file /path/to/dataset.pkl`"
    )


def _content_range(response):
    """Parse ``Content-Range: bytes a-b/total`` into (a, total); None for unknown parts."""
    match = re.match(r"bytes\s+(\d+|\*)(?:-(\d+))?/(\d+|\*)", response.headers.get("Content-Range", ""))
    if not match:
        return None, None
    start = None if match[1] == "*" else int(match[1])
    total = None if match[3] == "*" else int(match[3])
    return start, total


def _validator(headers):
    """The strong ETag of an answer, else its Last-Modified date (what ``If-Range`` accepts); or None."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified")


class _Clock:
    """The overall deadline of one download, enforced by a watchdog.

    Each network wait is bounded by the per-operation timeout, but a server
    can answer every wait with one byte (of the status line, the headers or
    the body). When the deadline passes, a timer thread shuts down the sockets
    of every connection opened through :meth:`opener`, so a blocked read
    returns at once; the caller then sees :attr:`expired` and reports the
    deadline. Call :meth:`stop` when done.
    """

    def __init__(self, deadline):
        self.deadline = float(deadline)
        self.end = time.monotonic() + self.deadline
        self.expired = False
        self._connections = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, self.deadline), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self):
        return self.end - time.monotonic()

    def timeout(self, timeout):
        return max(0.001, min(float(timeout), self.left()))

    def stop(self):
        self._timer.cancel()

    def _expire(self):
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            self._shut(connection)

    @staticmethod
    def _shut(connection):
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:  # the plain socket's shutdown (also under TLS): a blocked recv returns at once
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def watch(self, connection):
        """Shut ``connection`` down when the deadline passes (at once if it has passed)."""
        with self._lock:
            if connection not in self._connections:
                self._connections.append(connection)
            expired = self.expired
        if expired:
            self._shut(connection)

    def error(self, url, detail, part=None, resumable=False):
        kept = f" The partial file is kept at {part}: {_retry(resumable)}, or" if part is not None else ""
        return DownloadError(f"{url}: the download did not finish within its {self.deadline:g} s deadline "
                             f"({detail}; the server sends too slowly).{kept} allow more time with "
                             "--deadline SECONDS")

    def opener(self):
        """A urllib opener whose HTTP(S) connections this clock watches."""
        return urllib.request.build_opener(*(handler(self) for handler in _WATCHED_HANDLERS))


class _Watched:
    """A urllib HTTP(S) handler whose connections are watched by a :class:`_Clock` from before they connect."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def do_open(self, http_class, req, **kwargs):
        clock = self.clock

        def connection(*args, **kw):
            conn = http_class(*args, **kw)
            connect = conn.connect

            def watched_connect():
                clock.watch(conn)  # sock is read when the deadline passes: the TLS handshake is covered too
                connect()
                clock.watch(conn)

            conn.connect = watched_connect
            return conn

        return super().do_open(connection, req, **kwargs)


_WATCHED_HANDLERS = [type("_WatchedHTTPHandler", (_Watched, urllib.request.HTTPHandler), {})]
if hasattr(urllib.request, "HTTPSHandler"):
    _WATCHED_HANDLERS.append(type("_WatchedHTTPSHandler", (_Watched, urllib.request.HTTPSHandler), {}))


def _open(url, offset, validator, timeout, dest, clock):
    headers = {"User-Agent": f"lrid/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        headers["If-Range"] = validator
    request = urllib.request.Request(url, headers=headers)
    try:
        response = clock.opener().open(request, timeout=clock.timeout(timeout))
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return err, 416  # range not satisfiable: the caller checks whether .part is complete
        raise DownloadError(f"{url}: the server answered HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, TimeoutError, ConnectionError, HTTPException) as err:
        if clock.expired:
            raise clock.error(url, "no complete answer to the request") from err
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        raise DownloadError(_offline_message(url, dest, reason)) from err
    if clock.expired:  # the watchdog cut the headers short: what arrived is not the server's answer
        response.close()
        raise clock.error(url, "no complete answer to the request")
    return response, response.status


def _read_json(path):
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _record_path(path):
    return path.with_name(path.name + ".json")


def _write_all(fd, chunk):
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view):]


def _write_error(err, part, received):
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return DownloadError(
            f"disk full while writing {part} ({received:,} bytes written): free some space on that disk "
            "(or choose another folder with --cache-dir), then run the same command again to resume"
        )
    return DownloadError(f"cannot write {part} after {received:,} bytes ({err.strerror or err})")


def _symlink_error(part):
    return DownloadError(f"{part} is a symbolic link; lrid never writes through one. Remove it, or run again "
                         "with --force (which removes the link, not its target)")


def _retry(resumable):
    return "run the same command again to resume" if resumable else "run again with --force to start over"


def _stream(response, part, offset, total, clock, url, resumable, chunk_size, progress, desc):
    """Append the response body to ``part`` (from ``offset``); return the bytes now in it."""
    from tqdm.auto import tqdm

    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if offset else os.O_TRUNC)
    try:
        fd = os.open(part, flags, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise _symlink_error(part) from err
        raise _write_error(err, part, offset) from err
    received = offset
    try:
        with tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                  disable=not progress, leave=False) as bar:
            while True:
                if clock.expired or clock.left() <= 0:
                    raise clock.error(url, f"{received:,} of {total or 'unknown'} bytes", part, resumable)
                try:
                    chunk = response.read1(chunk_size)
                except (HTTPException, OSError) as err:
                    if clock.expired:
                        raise clock.error(url, f"{received:,} of {total or 'unknown'} bytes", part, resumable) from err
                    raise DownloadError(
                        f"{url}: the connection dropped after {received:,} of {total or 'unknown'} bytes ({err!r}); "
                        f"the partial file is kept at {part}: {_retry(resumable)}"
                    ) from err
                if not chunk:
                    if clock.expired:  # the watchdog shut the socket: not the end of the file
                        raise clock.error(url, f"{received:,} of {total or 'unknown'} bytes", part, resumable)
                    break
                try:
                    _write_all(fd, chunk)
                except OSError as err:
                    raise _write_error(err, part, received) from err
                received += len(chunk)
                bar.update(len(chunk))
    finally:
        try:
            os.close(fd)
        except OSError as err:  # a delayed write error (full disk on some file systems)
            raise _write_error(err, part, received) from err
    return received


def download_public(url=PUBLIC_URL, dest=None, cache=None, force=False, expected_size=None, sha256=None,
                    timeout=DEFAULT_TIMEOUT, deadline=DEFAULT_DEADLINE, chunk_size=1 << 20, progress=True):
    """Download the public ``dataset.pkl``: resumable, verified, promoted only when complete.

    See the module docstring for what is guaranteed. A later call resumes
    an interrupted download (``Range`` + ``If-Range``; a changed file on the
    server restarts from zero, as does a partial file with no recorded
    validator).

    Parameters
    ----------
    url : str
        Address of the file (:data:`PUBLIC_URL` by default); http or https.
    dest : str or Path, optional
        Destination file; ``<cache dir>/dataset.pkl`` by default.
    cache : str or Path, optional
        Cache folder override (see :func:`lrid_analysis.sources.cache_dir`).
    force : bool
        Download again even if ``dest`` exists; a partial download is
        discarded, and ``dest`` is replaced only once the new copy is complete.
    expected_size : int, optional
        Size in bytes the file must have (:data:`PUBLIC_SIZE` when None and
        pinned).
    sha256 : str, optional
        Hex SHA-256 the file must have, for a mirror serving another version;
        :data:`PUBLIC_SHA256` when None (not checked while that is unknown).
    timeout : float
        Seconds to wait for the server on each network operation.
    deadline : float
        Seconds the whole call may take.
    chunk_size : int
        Bytes read at a time.
    progress : bool
        Show a tqdm progress bar (on stderr).

    Returns
    -------
    Path
        The complete file; ``<dest>.json`` holds its URL, size and SHA-256.

    Raises
    ------
    DownloadError
        When offline (the message says where to put a manually fetched
        file), on an HTTP error, a dropped connection, a deadline, a full
        disk, an incomplete or unverifiable download or a wrong file; the
        message says how to retry.

    Examples
    --------
    >>> download_public("notaurl")
    Traceback (most recent call last):
    ...
    lrid_analysis.download.DownloadError: --url 'notaurl' is not an http:// or https:// address
    """
    _check_url(url)
    expected_sha = _sha256_arg(sha256) if sha256 is not None else PUBLIC_SHA256
    expected_size = PUBLIC_SIZE if expected_size is None else int(expected_size)
    dest = Path(dest) if dest is not None else default_pickle_path(cache)
    part = dest.with_name(dest.name + ".part")
    state_file = _record_path(part)
    if part.is_symlink():
        if not force:
            raise _symlink_error(part)
        part.unlink()
    if force:
        part.unlink(missing_ok=True)  # an existing dest stays until the new copy is complete
        state_file.unlink(missing_ok=True)
    if dest.exists() and not force:
        if expected_size is not None or expected_sha is not None:
            _verify(dest, expected_size, expected_sha, sha256 is not None, url, kept=False)
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(f"cannot create the folder {dest.parent} ({err.strerror or err}); choose a writable "
                            f"one with --cache-dir or {CACHE_ENV}") from err
    clock = _Clock(deadline)
    try:
        state = _read_json(state_file) or {}
        offset = part.lstat().st_size if part.exists() else 0
        if offset and not (state.get("url") == url and state.get("validator")):
            offset = 0  # nothing proves the partial file is a part of this file: start over
        response, status = _open(url, offset, state.get("validator"), timeout, dest, clock)
        if status == 416:  # nothing left to send: .part is complete, or longer than the remote file
            _, total = _content_range(response)
            response.close()
            if total is not None and total == offset == state.get("total"):
                return _finish(part, dest, total, expected_size, expected_sha, sha256 is not None, url, state)
            offset = 0
            response, status = _open(url, 0, None, timeout, dest, clock)
        if status == 206:
            start, total = _content_range(response)
            if start != offset or _validator(response.headers) != state.get("validator") \
                    or state.get("total") not in (None, total):
                response.close()  # another version of the file (or an answer lrid cannot match): start over
                offset = 0
                response, status = _open(url, 0, None, timeout, dest, clock)
        if status != 206 or not offset:
            if status == 206:
                response.close()
                raise DownloadError(f"{url}: the server sent part of the file to a request for all of it; "
                                    "try again later or use another --url")
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
            state = {"url": url, "validator": _validator(response.headers), "total": total}
            write_json_atomic(state_file, state)
        resumable = bool(state.get("validator")) and total is not None
        with response:
            received = _stream(response, part, offset, total, clock, url, resumable, chunk_size, progress, dest.name)
        if total is not None and received != total:
            raise DownloadError(
                f"{url}: the connection dropped after {received:,} of {total:,} bytes; the partial file is kept "
                f"at {part}: {_retry(resumable)}"
            )
        return _finish(part, dest, total, expected_size, expected_sha, sha256 is not None, url, state)
    finally:
        clock.stop()


def _reference(given):
    return "--sha256" if given else "the pinned PUBLIC_SHA256"


def _verify(path, expected_size, expected_sha, given, url, kept):
    """Check size and SHA-256 of ``path``; return the digest."""
    where = f"it is kept at {path} and was not used" if kept else f"{path} was not used"
    retry = "run again with --force to download it again"
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise DownloadError(f"{path} has {size} bytes, expected {expected_size}: not the expected file ({where}); "
                            f"{retry} (from {url})")
    digest = public.file_sha256(path)
    if expected_sha is not None and digest != expected_sha:
        raise DownloadError(
            f"{path}: SHA-256 is {digest}, expected {expected_sha} ({_reference(given)}): the file is corrupt, "
            f"or the server's copy changed ({where}). {retry.capitalize()} from {url}; if you trust this copy "
            f"(a mirror serving another version), pass --sha256 {digest}"
        )
    return digest


def _finish(part, dest, total, expected_size, expected_sha, given, url, state):
    state_file = _record_path(part)
    if total is None and expected_size is None and expected_sha is None:
        state_file.unlink(missing_ok=True)  # nothing to resume from: the next run starts over
        raise DownloadError(
            f"{url}: the server did not announce the file's length, so lrid cannot tell whether the download "
            f"is complete; the file is kept at {part} and was not used. Run again with --force to download it "
            "again, or pass --expected-size BYTES or --sha256 HEX to accept a complete copy"
        )
    with open(part, "rb") as file:
        head = file.read(512)
    if head.lstrip()[:1] == b"<":  # HTML or XML; a pickle starts with an opcode, never with "<"
        state_file.unlink(missing_ok=True)
        raise DownloadError(
            f"{url} sent a web page ({head.lstrip()[:40]!r}...), not dataset.pkl (an error or login page?); it "
            f"is kept at {part} for inspection and was not used. Check --url, then run again with --force"
        )
    digest = _verify(part, expected_size, expected_sha, given, url, kept=True)
    os.replace(part, dest)
    write_json_atomic(_record_path(dest), {
        "url": url, "validator": state.get("validator"), "size": dest.stat().st_size, "sha256": digest,
        "sha256_verified": expected_sha is not None,
        "downloaded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })
    state_file.unlink(missing_ok=True)
    return dest


# ---------------------------------------------------------------------------
# command line

_EPILOG = f"""\
examples:
  python -m lrid_analysis.download
      download dataset.pkl (about 511 MB) into the cache folder, resuming an
      interrupted download, then convert it to tidy Parquet
  python -m lrid_analysis.download --from-file ~/Downloads/dataset.pkl
      convert a file fetched by hand (e.g. on a machine without internet:
      curl -fLo dataset.pkl {PUBLIC_URL})
  python -m lrid_analysis.download --cache-dir /data/lrid --no-convert
      only download, into another folder
  {CACHE_ENV}=/data/lrid python -m lrid_analysis.experiments ...
      later commands find data in a non-default cache through {CACHE_ENV}

The cache folder is --cache-dir, else ${CACHE_ENV}, else $XDG_CACHE_HOME/lrid
(~/.cache/lrid). The pickle is read with a restricted unpickler that only
rebuilds numpy arrays, in memory bounded by the file's size: a tampered file
is refused, never executed. The file's SHA-256 is printed and recorded in the
converted data; it is checked against --sha256 or the pinned value when
known.
"""


def build_parser():
    """The argparse parser of ``python -m lrid_analysis.download``."""
    parser = argparse.ArgumentParser(
        prog="python -m lrid_analysis.download",
        description=(
            "Download the public dataset of Nayebi et al. (NeurIPS 2020) and convert it to the\n"
            "tidy Parquet layout that lrid's experiments read. Once converted, experiments use\n"
            "it by default (--data auto picks it over the small embedded dataset)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--from-file", metavar="PATH", type=Path,
                        help="convert this local dataset.pkl instead of downloading")
    parser.add_argument("--cache-dir", metavar="DIR", type=Path,
                        help=f"folder for the download and the converted data (default: ${CACHE_ENV} or ~/.cache/lrid)")
    parser.add_argument("--url", default=PUBLIC_URL, help="address of dataset.pkl (default: %(default)s)")
    parser.add_argument("--no-convert", action="store_true", help="download only, do not convert")
    parser.add_argument("--force", action="store_true",
                        help="download and convert again even if the files are already there")
    parser.add_argument("--expected-size", metavar="BYTES", type=int,
                        help="fail unless the downloaded file has exactly this many bytes")
    parser.add_argument("--sha256", metavar="HEX",
                        help="fail unless the file has this SHA-256 (e.g. a mirror serving another version; "
                             "default: the pinned digest of the public file, when known)")
    parser.add_argument("--no-strict", action="store_true",
                        help="accept a partial file (skip the 20,736-row and rule-balance checks)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="wait at most this long on any network operation (default: %(default)s)")
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE, metavar="SECONDS",
                        help="give up when the whole download takes longer (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return parser


class _UsageError(RuntimeError):
    pass


def _say(message):
    print(message, flush=True)


def _check_writable(folder):
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise _UsageError(f"cannot write to the cache folder {folder} ({err.strerror or err}); choose a writable "
                          f"folder with --cache-dir DIR or {CACHE_ENV}") from err


def _digest_line(digest, expected, given):
    if expected is None:
        return (f"SHA-256 {digest}: not checked, lrid has no pinned SHA-256 of the public file yet; compare it "
                "with a trusted source, or pass --sha256 HEX to check it")
    return f"SHA-256 {digest}: matches {_reference(given)}"


def _downloaded_from(pkl):
    """The URL ``pkl`` was downloaded from, when its record still matches the file."""
    record = _read_json(_record_path(pkl)) or {}
    if record.get("size") == pkl.stat().st_size and record.get("sha256") == public.file_sha256(pkl):
        return record.get("url")
    return None


def _run(args):
    cache = args.cache_dir
    out_dir = public_path(cache)
    sha256 = _sha256_arg(args.sha256) if args.sha256 is not None else None
    _check_writable(cache_dir(cache))
    if args.from_file is not None:
        pkl = args.from_file.expanduser()
        if not pkl.is_file():
            raise FileNotFoundError(f"--from-file {pkl}: no such file")
        source_url = None
        expected = sha256 or (PUBLIC_SHA256 if not args.no_strict else None)
    else:
        _check_url(args.url)
        pkl = default_pickle_path(cache)
        present = pkl.is_file() and not args.force
        if present:
            _say(f"dataset.pkl already downloaded: {pkl}")
        else:
            _say(f"downloading {args.url}\n         to {pkl}")
        download_public(args.url, dest=pkl, force=args.force, expected_size=args.expected_size, sha256=sha256,
                        timeout=args.timeout, deadline=args.deadline, progress=not args.quiet)
        expected = sha256 or PUBLIC_SHA256
        if not present:
            record = _read_json(_record_path(pkl)) or {}
            _say(f"downloaded: {pkl} ({pkl.stat().st_size:,} bytes)")
            _say(_digest_line(record.get("sha256"), expected, sha256 is not None))
        if args.no_convert:
            return
        if present and (out_dir / f"source={public.SOURCE}" / "part-0.parquet").is_file():
            _say(f"already converted: {out_dir} (use --force to download and convert again)")
            _report_default(cache, out_dir)
            return
        source_url = _downloaded_from(pkl)
    _say(f"converting {pkl} (restricted unpickler: numpy arrays only)")
    path = public.convert_public(pkl, out_dir, strict=not args.no_strict, sha256=expected, source_url=source_url)
    import pyarrow.parquet as pq

    _say(f"wrote tidy Parquet: {path}")
    _say(_digest_line(pq.read_schema(path).metadata[b"lrid.source_sha256"].decode(), expected, sha256 is not None))
    _report_default(cache, out_dir)


def _report_default(cache, out_dir):
    # resolve_data is what experiments call with --data auto
    found, description = resolve_data("auto", cache=cache)
    if Path(found) == Path(out_dir):
        _say(f"experiments now use the public data by default (--data auto): {description}")
    if cache is not None and cache_dir() != cache_dir(cache):
        _say(f"this is not the default cache folder: set {CACHE_ENV}={Path(cache).expanduser()} "
             "(or pass the same cache) so that later commands find it")


def main(argv=None):
    """Entry point; returns the exit status (0 on success, 1 on error, 130 when interrupted).

    Errors are printed as one line (``error: ...``) without a traceback,
    unless ``--debug`` is given.
    """
    args = build_parser().parse_args(argv)
    try:
        _run(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted; run the same command again to resume the download", file=sys.stderr)
        return 130
    except (DownloadError, _UsageError, UnsafePickleError, UnreadablePickleError, DatasetError, OSError,
            MemoryError) as err:
        if args.debug:
            raise
        if isinstance(err, MemoryError):
            message = ("out of memory while loading or converting the dataset (converting the full public file "
                       "needs about 3 GB free); close other programs or use a machine with more memory")
        else:
            message = " ".join(str(err).split())
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
