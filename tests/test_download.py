"""Tests for the download path (real HTTP against a local server) and the CLI."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from public_pickles import meta_slice, synthetic_public_dict, write_pickle

from lrid_analysis import download, unpickle
from lrid_analysis.dataset import load_view
from lrid_analysis.sources import resolve_data


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        server = self.server.owner
        requested = self.headers.get("Range")
        server.requests.append(requested)
        server.if_range.append(self.headers.get("If-Range"))
        if self.path != "/dataset.pkl":
            self.send_error(404, "no such file")
            return
        data, start = server.payload, 0
        validator = server.etag or server.last_modified
        same = self.headers.get("If-Range") in (None, validator) or not server.honour_if_range
        if requested and server.honour_range and same:
            start = int(re.fullmatch(r"bytes=(\d+)-", requested)[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        if server.etag:
            self.send_header("ETag", server.etag)
        if server.last_modified:
            self.send_header("Last-Modified", server.last_modified)
        self.send_header("Content-Type", server.content_type)
        if server.send_length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.close_connection = True  # the body ends when the connection closes
        self.end_headers()
        if server.drops:
            # send part of the body, then hang up
            server.drops -= 1
            self.wfile.write(body[: server.drop_after])
            self.wfile.flush()
            self.close_connection = True
            return
        if server.trickle:
            for i in range(0, len(body), 16):
                self.wfile.write(body[i:i + 16])
                self.wfile.flush()
                time.sleep(server.trickle)
            return
        self.wfile.write(body)


class LocalServer:
    """ThreadingHTTPServer on 127.0.0.1 (random port) serving ``payload`` at /dataset.pkl.

    ``honour_range``: answer ``Range`` requests with 206 (else always 200).
    ``honour_if_range``: send the whole file (200) when ``If-Range`` differs from the validator
    (else ignore ``If-Range``, as a broken server would).
    ``drops``: number of requests that get cut after ``drop_after`` body bytes.
    ``etag`` / ``last_modified``: validators sent with every answer (change them with the payload).
    ``send_length``: send ``Content-Length``; without it the body ends when the connection closes.
    ``trickle``: seconds to sleep after every 16 bytes.
    ``requests`` / ``if_range``: the ``Range`` and ``If-Range`` headers received.
    """

    def __init__(self, payload, honour_range=True, drops=0, drop_after=0, etag='"v1"', last_modified=None,
                 honour_if_range=True, send_length=True, content_type="application/octet-stream", trickle=0.0):
        self.payload, self.honour_range, self.honour_if_range = payload, honour_range, honour_if_range
        self.drops, self.drop_after = drops, drop_after
        self.etag, self.last_modified, self.send_length = etag, last_modified, send_length
        self.content_type, self.trickle = content_type, trickle
        self.requests, self.if_range = [], []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/dataset.pkl"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture()
def payload():
    return np.random.default_rng(0).bytes(300_000)


@pytest.fixture()
def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/dataset.pkl"  # nothing listens there any more


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LRID_DATA_DIR", str(cache))
    return cache


def test_download_whole_file(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    with LocalServer(payload) as server:
        got = download.download_public(server.url, dest=dest, chunk_size=8192)
    assert got == dest and dest.read_bytes() == payload
    assert server.requests == [None]
    assert not (tmp_path / "dataset.pkl.part").exists()


def test_default_destination_is_cache_dir(isolated_cache, payload):
    with LocalServer(payload) as server:
        got = download.download_public(server.url, progress=False)
    assert got == isolated_cache / "dataset.pkl" and got.read_bytes() == payload


def _record(path):
    return json.loads(Path(str(path) + ".json").read_text())


def test_dropped_connection_keeps_part_then_resumes_with_range(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    part = tmp_path / "dataset.pkl.part"
    cut = 123_457
    with LocalServer(payload, drops=1, drop_after=cut) as server:
        with pytest.raises(download.DownloadError, match="dropped after 123,457 of 300,000 bytes.*resume"):
            download.download_public(server.url, dest=dest, chunk_size=4096, progress=False)
        assert not dest.exists()
        assert part.read_bytes() == payload[:cut]
        download.download_public(server.url, dest=dest, chunk_size=4096, progress=False)
    assert server.requests == [None, f"bytes={cut}-"]
    assert server.if_range == [None, '"v1"']  # resume only if the file is still the same version
    assert dest.read_bytes() == payload
    assert not part.exists() and not Path(str(part) + ".json").exists()
    record = _record(dest)
    assert record["sha256"] == hashlib.sha256(payload).hexdigest() and record["url"] == server.url
    assert record["size"] == len(payload) and record["sha256_verified"] is False


@pytest.mark.parametrize("honour_if_range", [True, False])
def test_file_changed_on_server_restarts_from_zero_instead_of_splicing(tmp_path, payload, honour_if_range):
    """Issue 9 item 4: the old code appended the new version's tail to the old version's head."""
    dest = tmp_path / "dataset.pkl"
    cut = 100_000
    new_version = payload[::-1]
    with LocalServer(payload, drops=1, drop_after=cut, honour_if_range=honour_if_range) as server:
        with pytest.raises(download.DownloadError, match="dropped"):
            download.download_public(server.url, dest=dest, progress=False)
        server.payload, server.etag = new_version, '"v2"'
        download.download_public(server.url, dest=dest, progress=False)
    assert dest.read_bytes() == new_version
    assert server.if_range[1] == '"v1"'
    # a server that honours If-Range sends the whole new file at once; one that ignores it sends a
    # 206 with the new ETag, which lrid refuses to splice, and asks again from byte 0
    assert server.requests == ([None, f"bytes={cut}-"] if honour_if_range else [None, f"bytes={cut}-", None])


def test_last_modified_is_the_validator_without_etag(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    stamp = "Tue, 01 Dec 2026 10:00:00 GMT"
    with LocalServer(payload, drops=1, drop_after=5000, etag=None, last_modified=stamp) as server:
        with pytest.raises(download.DownloadError, match="dropped"):
            download.download_public(server.url, dest=dest, progress=False)
        download.download_public(server.url, dest=dest, progress=False)
    assert server.if_range == [None, stamp] and server.requests == [None, "bytes=5000-"]
    assert dest.read_bytes() == payload


def test_part_without_a_recorded_validator_is_not_trusted(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    (tmp_path / "dataset.pkl.part").write_bytes(b"stale bytes from another file" * 100)
    with LocalServer(payload) as server:
        download.download_public(server.url, dest=dest, progress=False)
    assert server.requests == [None]  # nothing says these bytes belong to this file: start over
    assert dest.read_bytes() == payload


def test_server_ignoring_range_restarts_cleanly(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    with LocalServer(payload, drops=1, drop_after=1000, honour_range=False) as server:
        with pytest.raises(download.DownloadError, match="dropped"):
            download.download_public(server.url, dest=dest, progress=False)
        download.download_public(server.url, dest=dest, progress=False)
    assert server.requests == [None, "bytes=1000-"]
    assert dest.read_bytes() == payload and not (tmp_path / "dataset.pkl.part").exists()


def _interrupted(server, dest, rest):
    """A download cut after 1000 bytes, whose .part then gets ``rest`` appended (a process killed late)."""
    with pytest.raises(download.DownloadError, match="dropped"):
        download.download_public(server.url, dest=dest, progress=False)
    with open(str(dest) + ".part", "ab") as file:
        file.write(rest)


def test_complete_part_is_finished_on_416(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    with LocalServer(payload, drops=1, drop_after=1000) as server:
        _interrupted(server, dest, payload[1000:])
        download.download_public(server.url, dest=dest, progress=False)
    assert server.requests == [None, f"bytes={len(payload)}-"]
    assert dest.read_bytes() == payload


def test_part_longer_than_remote_starts_over(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    with LocalServer(payload, drops=1, drop_after=1000) as server:
        _interrupted(server, dest, payload[1000:] + b"junk")
        download.download_public(server.url, dest=dest, progress=False)
    assert server.requests == [None, f"bytes={len(payload) + 4}-", None]
    assert dest.read_bytes() == payload


def test_existing_file_is_kept_unless_forced(tmp_path, payload, closed_port_url):
    dest = tmp_path / "dataset.pkl"
    dest.write_bytes(b"already here")
    # no network needed: the port is closed and the call still succeeds
    assert download.download_public(closed_port_url, dest=dest).read_bytes() == b"already here"
    # a forced download that fails leaves the existing file alone
    with pytest.raises(download.DownloadError):
        download.download_public(closed_port_url, dest=dest, force=True)
    assert dest.read_bytes() == b"already here"
    with LocalServer(payload) as server:
        download.download_public(server.url, dest=dest, force=True, progress=False)
    assert dest.read_bytes() == payload


def test_expected_size_is_verified(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    part = tmp_path / "dataset.pkl.part"
    with LocalServer(payload) as server:
        with pytest.raises(download.DownloadError, match=f"{len(payload)} bytes, expected {len(payload) + 1}.*--force"):
            download.download_public(server.url, dest=dest, expected_size=len(payload) + 1, progress=False)
        assert not dest.exists() and part.read_bytes() == payload  # never promoted
        download.download_public(server.url, dest=dest, expected_size=len(payload), progress=False)
    assert server.requests == [None, f"bytes={len(payload)}-"]  # the complete part was not fetched again
    assert dest.read_bytes() == payload


def test_sha256_is_verified_before_the_file_is_used(tmp_path, payload, monkeypatch):
    """Issue 9 item 4: a wrong digest keeps the file out of dataset.pkl, with both digests named."""
    dest = tmp_path / "dataset.pkl"
    digest = hashlib.sha256(payload).hexdigest()
    with LocalServer(payload) as server:
        with pytest.raises(download.DownloadError, match=f"SHA-256 is {digest}, expected {'a' * 64} \\(--sha256\\)"):
            download.download_public(server.url, dest=dest, sha256="A" * 64, progress=False)
        assert not dest.exists() and (tmp_path / "dataset.pkl.part").read_bytes() == payload
        # the pinned digest is used when --sha256 is not given
        monkeypatch.setattr(download, "PUBLIC_SHA256", "b" * 64)
        with pytest.raises(download.DownloadError, match=f"expected {'b' * 64} \\(the pinned PUBLIC_SHA256\\).*"
                                                         f"--sha256 {digest}"):
            download.download_public(server.url, dest=dest, progress=False)
        monkeypatch.setattr(download, "PUBLIC_SHA256", digest)
        download.download_public(server.url, dest=dest, progress=False)
        assert _record(dest)["sha256_verified"] is True
        # an existing file is checked too
        monkeypatch.setattr(download, "PUBLIC_SHA256", "c" * 64)
        with pytest.raises(download.DownloadError, match=f"expected {'c' * 64}.*--force"):
            download.download_public(server.url, dest=dest, progress=False)
    assert len(server.requests) == 3  # the complete part was checked again, never downloaded twice
    with pytest.raises(download.DownloadError, match="not a SHA-256 digest"):
        download.download_public(server.url, dest=dest, sha256="abc")


def test_symlinked_part_is_never_followed(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    (tmp_path / "dataset.pkl.part").symlink_to(victim)
    with LocalServer(payload) as server:
        with pytest.raises(download.DownloadError, match="symbolic link.*--force"):
            download.download_public(server.url, dest=dest, progress=False)
        assert victim.read_bytes() == b"keep me" and server.requests == []
        download.download_public(server.url, dest=dest, force=True, progress=False)
    assert victim.read_bytes() == b"keep me" and dest.read_bytes() == payload and not dest.is_symlink()


def test_part_turned_into_a_symlink_mid_way_is_not_followed(tmp_path, payload, monkeypatch):
    dest = tmp_path / "dataset.pkl"
    part = tmp_path / "dataset.pkl.part"
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    real_open = download._open

    def swap_then_open(*args):  # a symlink planted between the check and the open
        part.unlink(missing_ok=True)
        part.symlink_to(victim)
        return real_open(*args)

    monkeypatch.setattr(download, "_open", swap_then_open)
    with LocalServer(payload) as server:
        with pytest.raises(download.DownloadError, match="symbolic link"):
            download.download_public(server.url, dest=dest, progress=False)
    assert victim.read_bytes() == b"keep me" and not dest.exists()


def test_download_without_length_that_drops_stays_part(tmp_path, payload):
    """Issue 9 item 5: without Content-Length a dropped connection looks like the end of the file."""
    dest = tmp_path / "dataset.pkl"
    part = tmp_path / "dataset.pkl.part"
    with LocalServer(payload, send_length=False, drops=1, drop_after=50_000) as server:
        with pytest.raises(download.DownloadError, match="did not announce the file's length.*--force"):
            download.download_public(server.url, dest=dest, progress=False)
        assert not dest.exists() and part.read_bytes() == payload[:50_000]
        # the next try starts over (nothing to resume from) and, with a digest to check, succeeds
        download.download_public(server.url, dest=dest, sha256=hashlib.sha256(payload).hexdigest(), progress=False)
    assert server.requests == [None, None]
    assert dest.read_bytes() == payload


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/octet-stream"])
def test_html_error_page_served_with_200_stays_part(tmp_path, content_type):
    page = b"\n<!DOCTYPE html><html><body>Service unavailable</body></html>"
    dest = tmp_path / "dataset.pkl"
    with LocalServer(page, content_type=content_type) as server:
        with pytest.raises(download.DownloadError, match="sent a web page.*--force"):
            download.download_public(server.url, dest=dest, progress=False)
        assert not dest.exists() and (tmp_path / "dataset.pkl.part").read_bytes() == page
        with pytest.raises(download.DownloadError, match="web page"):
            download.download_public(server.url, dest=dest, progress=False)
    assert server.requests == [None, None]  # an HTML page is never resumed


def test_disk_full_is_reported_as_disk_full(tmp_path, payload, monkeypatch):
    dest = tmp_path / "dataset.pkl"
    real_write = download._write_all
    written = []

    def fill_up(fd, chunk):  # the disk fills after the first chunk
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(len(chunk))
        real_write(fd, chunk)

    monkeypatch.setattr(download, "_write_all", fill_up)
    with LocalServer(payload) as server:
        with pytest.raises(download.DownloadError) as info:
            download.download_public(server.url, dest=dest, chunk_size=4096, progress=False)
    message = str(info.value)
    assert message.startswith("disk full while writing") and "dropped" not in message and "resume" in message
    assert not dest.exists() and (tmp_path / "dataset.pkl.part").stat().st_size == written[0]


def test_trickling_server_hits_the_overall_deadline(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    with LocalServer(payload, trickle=0.02) as server:
        start = time.monotonic()
        with pytest.raises(download.DownloadError, match=r"did not finish within its 0.5 s deadline.*--deadline"):
            download.download_public(server.url, dest=dest, timeout=5, deadline=0.5, progress=False)
        elapsed = time.monotonic() - start
    assert elapsed < 3  # checked between reads, and the watchdog shuts the socket at the deadline
    assert not dest.exists() and 0 < (tmp_path / "dataset.pkl.part").stat().st_size < len(payload)


class HeaderTrickler:
    """A raw 127.0.0.1 server that sends the status line and headers one byte every ``pause`` seconds.

    Each byte arrives well within any per-operation timeout, so only an overall deadline stops a client.
    It stops by itself after ``limit`` seconds (then hangs up), or when the client goes away.
    """

    def __init__(self, pause=0.05, limit=6.0):
        self.pause, self.limit = pause, limit
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(limit)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/dataset.pkl"

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)  # the request
            end = time.monotonic() + self.limit
            answer = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 100_000
            for i in range(len(answer)):
                if time.monotonic() > end:
                    return
                try:
                    conn.sendall(answer[i:i + 1])
                except OSError:
                    return  # the client hung up
                time.sleep(self.pause)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join(self.limit + 5)
        self.sock.close()


def test_server_trickling_its_headers_hits_the_overall_deadline(tmp_path):
    dest = tmp_path / "dataset.pkl"
    with HeaderTrickler() as server:
        start = time.monotonic()
        with pytest.raises(download.DownloadError) as info:
            download.download_public(server.url, dest=dest, timeout=5, deadline=1.5, progress=False)
        elapsed = time.monotonic() - start
    # the watchdog shuts the socket at the deadline; without it the client waits until the server gives up (6 s)
    assert elapsed < 3, (elapsed, str(info.value))
    assert re.search(r"did not finish within its 1.5 s deadline \(no complete answer.*--deadline", str(info.value))
    assert not dest.exists() and not (tmp_path / "dataset.pkl.part").exists()


def test_http_error_is_reported(tmp_path, payload):
    with LocalServer(payload) as server:
        with pytest.raises(download.DownloadError, match="HTTP 404"):
            download.download_public(server.url.replace("dataset.pkl", "other.pkl"), dest=tmp_path / "d.pkl")


def test_offline_message_connection_refused(tmp_path, closed_port_url):
    dest = tmp_path / "dataset.pkl"
    with pytest.raises(download.DownloadError) as info:
        download.download_public(closed_port_url, dest=dest, timeout=5)
    message = str(info.value)
    assert "seems to be offline" in message
    assert str(dest) in message and "--from-file" in message and closed_port_url in message
    assert not dest.exists() and not (tmp_path / "dataset.pkl.part").exists()


def test_offline_message_on_timeout(tmp_path):
    with socket.socket() as sock:  # accepts connections (kernel backlog) but never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/dataset.pkl"
        with pytest.raises(download.DownloadError, match=r"\(timed out\); this machine seems to be offline"):
            download.download_public(url, dest=tmp_path / "dataset.pkl", timeout=0.3)


# ---------------------------------------------------------------------------
# command line


@pytest.fixture(scope="module")
def small_pickle(tmp_path_factory):
    path = tmp_path_factory.mktemp("pkl") / "dataset.pkl"
    data = synthetic_public_dict(meta_slice(60, seed=5), seed=5)
    write_pickle(data, path)
    return path, data


def test_help_lists_options_and_examples():
    result = subprocess.run([sys.executable, "-m", "lrid_analysis.download", "--help"],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for flag in ("--from-file", "--cache-dir", "--url", "--no-convert", "--force", "examples:", "LRID_DATA_DIR"):
        assert flag in result.stdout


def test_cli_from_file_converts_and_becomes_default(tmp_path, small_pickle, capsys):
    pkl, data = small_pickle
    cache = tmp_path / "mycache"
    assert download.main(["--from-file", str(pkl), "--cache-dir", str(cache), "--no-strict"]) == 0
    out = capsys.readouterr().out
    target = cache / "nayebi2020" / "source=nayebi2020" / "part-0.parquet"
    assert str(target) in out and "by default" in out and "LRID_DATA_DIR" in out
    assert resolve_data("auto", cache=cache)[0] == cache / "nayebi2020"
    view = load_view(cache / "nayebi2020", observables="all45")
    np.testing.assert_array_equal(view.X, data["X"])


def test_cli_downloads_then_converts_and_skips_next_time(isolated_cache, small_pickle, capsys):
    pkl, data = small_pickle
    with LocalServer(pkl.read_bytes()) as server:
        assert download.main(["--url", server.url, "--no-strict", "--quiet"]) == 0
        out = capsys.readouterr().out
        assert "downloaded" in out and "experiments now use the public data by default" in out
        assert (isolated_cache / "dataset.pkl").read_bytes() == pkl.read_bytes()
        view = load_view(isolated_cache / "nayebi2020", observables="all45")
        np.testing.assert_array_equal(view.X, data["X"])
        assert download.main(["--url", server.url, "--no-strict", "--quiet"]) == 0
        assert "already converted" in capsys.readouterr().out
    assert len(server.requests) == 1


def test_cli_no_convert_only_downloads(isolated_cache, payload, capsys):
    with LocalServer(payload) as server:
        assert download.main(["--url", server.url, "--no-convert", "--quiet"]) == 0
    assert (isolated_cache / "dataset.pkl").read_bytes() == payload
    assert not (isolated_cache / "nayebi2020").exists()


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_cli_errors_are_one_line(tmp_path, small_pickle, closed_port_url, capsys):
    pkl, _ = small_pickle
    # a slice is not the full public file unless --no-strict
    assert download.main(["--from-file", str(pkl), "--cache-dir", str(tmp_path)]) == 1
    assert "--no-strict" in _one_line_error(capsys)
    assert download.main(["--from-file", str(tmp_path / "missing.pkl")]) == 1
    assert "no such file" in _one_line_error(capsys)
    assert download.main(["--url", closed_port_url, "--cache-dir", str(tmp_path), "--timeout", "5"]) == 1
    assert "offline" in _one_line_error(capsys)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"x": os.system}, protocol=2))
    assert download.main(["--from-file", str(evil), "--cache-dir", str(tmp_path)]) == 1
    assert "refused global posix.system" in _one_line_error(capsys)
    assert not (tmp_path / "nayebi2020").exists()


def test_cli_main_module_exit_code(tmp_path, closed_port_url):
    env = dict(os.environ, LRID_DATA_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "lrid_analysis.download", "--url", closed_port_url, "--quiet"],
                            check=False, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: ") and "Traceback" not in result.stderr
    assert Path(tmp_path).exists()


def test_cli_one_line_errors_for_bad_url_memory_and_unwritable_cache(tmp_path, small_pickle, monkeypatch, capsys):
    """Issue 9 item 12: no traceback, exit status 1, one line naming the problem."""
    pkl, _ = small_pickle
    assert download.main(["--url", "notaurl", "--cache-dir", str(tmp_path)]) == 1
    assert "--url 'notaurl' is not an http:// or https:// address" in _one_line_error(capsys)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert download.main(["--from-file", str(pkl), "--cache-dir", str(blocker / "cache"), "--no-strict"]) == 1
    assert f"cannot write to the cache folder {blocker / 'cache'}" in _one_line_error(capsys)

    def out_of_memory(self):
        raise MemoryError

    monkeypatch.setattr(unpickle.RestrictedUnpickler, "load", out_of_memory)
    assert download.main(["--from-file", str(pkl), "--cache-dir", str(tmp_path), "--no-strict"]) == 1
    assert "out of memory while loading or converting" in _one_line_error(capsys)
    with pytest.raises(MemoryError):  # --debug shows the real exception
        download.main(["--from-file", str(pkl), "--cache-dir", str(tmp_path), "--no-strict", "--debug"])


def test_cli_debug_shows_the_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "lrid_analysis.download", "--url", "notaurl", "--debug",
                             "--cache-dir", str(tmp_path)], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" in result.stderr and "DownloadError" in result.stderr


def test_cli_footer_records_where_the_data_came_from(tmp_path, isolated_cache, small_pickle, capsys):
    """Issue 9 item 6: the footer named the public URL whatever the data's origin."""
    pkl, _ = small_pickle
    digest = hashlib.sha256(pkl.read_bytes()).hexdigest()
    with LocalServer(pkl.read_bytes()) as server:
        assert download.main(["--url", server.url, "--no-strict", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"SHA-256 {digest}: not checked, lrid has no pinned SHA-256" in out
    footer = pq.read_schema(isolated_cache / "nayebi2020" / "source=nayebi2020" / "part-0.parquet").metadata
    assert footer[b"lrid.source_url"].decode() == server.url != download.PUBLIC_URL
    assert footer[b"lrid.source_path"].decode() == str((isolated_cache / "dataset.pkl").resolve())
    assert footer[b"lrid.source_sha256"].decode() == digest

    cache = tmp_path / "other"
    assert download.main(["--from-file", str(pkl), "--cache-dir", str(cache), "--no-strict",
                          "--sha256", digest]) == 0
    assert f"SHA-256 {digest}: matches --sha256" in capsys.readouterr().out
    footer = pq.read_schema(cache / "nayebi2020" / "source=nayebi2020" / "part-0.parquet").metadata
    assert b"lrid.source_url" not in footer and footer[b"lrid.source_path"].decode() == str(pkl.resolve())
    assert footer[b"lrid.source_sha256_verified"] == b"True"
    assert download.main(["--from-file", str(pkl), "--cache-dir", str(cache), "--no-strict",
                          "--sha256", "0" * 64, "--force"]) == 1
    assert f"SHA-256 is {digest}, expected {'0' * 64}" in _one_line_error(capsys)


def test_cli_from_file_given_parquet_says_it_is_already_parquet(tmp_path, small_pickle, capsys):
    pkl, _ = small_pickle
    assert download.main(["--from-file", str(pkl), "--cache-dir", str(tmp_path), "--no-strict"]) == 0
    parquet = tmp_path / "nayebi2020" / "source=nayebi2020" / "part-0.parquet"
    capsys.readouterr()
    assert download.main(["--from-file", str(parquet), "--cache-dir", str(tmp_path / "x"), "--no-strict"]) == 1
    assert "is already a Parquet file" in _one_line_error(capsys)


def test_cli_no_length_download_tells_how_to_retry(isolated_cache, payload, capsys):
    with LocalServer(payload, send_length=False) as server:
        assert download.main(["--url", server.url, "--quiet"]) == 1
    assert "did not announce the file's length" in (err := _one_line_error(capsys)) and "--force" in err
    assert not (isolated_cache / "dataset.pkl").exists()
