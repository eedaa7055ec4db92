"""Tests for the download path (real HTTP against a local server) and the CLI."""

from __future__ import annotations

import os
import pickle
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from public_pickles import meta_slice, synthetic_public_dict, write_pickle

from lrid_analysis import download, public
from lrid_analysis.dataset import load_view
from lrid_analysis.sources import resolve_data


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        server = self.server.owner
        requested = self.headers.get("Range")
        server.requests.append(requested)
        if self.path != "/dataset.pkl":
            self.send_error(404, "no such file")
            return
        data, start = server.payload, 0
        if requested and server.honour_range:
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
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.drops:
            # announce the whole body, send part of it, then hang up
            server.drops -= 1
            self.wfile.write(body[: server.drop_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class LocalServer:
    """ThreadingHTTPServer on 127.0.0.1 (random port) serving ``payload`` at /dataset.pkl.

    ``honour_range``: answer ``Range`` requests with 206 (else always 200).
    ``drops``: number of requests that get cut after ``drop_after`` body bytes.
    """

    def __init__(self, payload, honour_range=True, drops=0, drop_after=0):
        self.payload, self.honour_range = payload, honour_range
        self.drops, self.drop_after = drops, drop_after
        self.requests = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
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


def test_dropped_connection_keeps_part_then_resumes_with_range(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    part = tmp_path / "dataset.pkl.part"
    cut = 123_457
    with LocalServer(payload, drops=1, drop_after=cut) as server:
        with pytest.raises(download.DownloadError, match=f"dropped after {cut} of {len(payload)} bytes.*resume"):
            download.download_public(server.url, dest=dest, chunk_size=4096, progress=False)
        assert not dest.exists()
        assert part.read_bytes() == payload[:cut]
        download.download_public(server.url, dest=dest, chunk_size=4096, progress=False)
    assert server.requests == [None, f"bytes={cut}-"]
    assert dest.read_bytes() == payload
    assert not part.exists()


def test_server_ignoring_range_restarts_cleanly(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    part = tmp_path / "dataset.pkl.part"
    part.write_bytes(b"stale bytes from another file" * 100)
    with LocalServer(payload, honour_range=False) as server:
        download.download_public(server.url, dest=dest, progress=False)
    assert server.requests == [f"bytes={len(b'stale bytes from another file') * 100}-"]
    assert dest.read_bytes() == payload and not part.exists()


def test_complete_part_is_finished_on_416(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    (tmp_path / "dataset.pkl.part").write_bytes(payload)
    with LocalServer(payload) as server:
        download.download_public(server.url, dest=dest, progress=False)
    assert server.requests == [f"bytes={len(payload)}-"]
    assert dest.read_bytes() == payload


def test_part_longer_than_remote_starts_over(tmp_path, payload):
    dest = tmp_path / "dataset.pkl"
    (tmp_path / "dataset.pkl.part").write_bytes(payload + b"junk")
    with LocalServer(payload) as server:
        download.download_public(server.url, dest=dest, progress=False)
    assert server.requests == [f"bytes={len(payload) + 4}-", None]
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
    with LocalServer(payload) as server:
        with pytest.raises(download.DownloadError, match=f"{len(payload)} bytes, expected {len(payload) + 1}"):
            download.download_public(server.url, dest=dest, expected_size=len(payload) + 1, progress=False)
        assert not dest.exists() and not (tmp_path / "dataset.pkl.part").exists()
        download.download_public(server.url, dest=dest, expected_size=len(payload), progress=False)
    assert dest.read_bytes() == payload


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
                            capture_output=True, text=True, timeout=120)
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
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: ") and "Traceback" not in result.stderr
    assert Path(tmp_path).exists()
