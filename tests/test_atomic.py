"""Atomic writes (lrid_analysis.atomic)."""

import json
import os
import stat

import pytest

from lrid_analysis.atomic import write_atomic, write_json_atomic, write_text_atomic


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "r.parquet"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, broken)
    assert [p.name for p in tmp_path.iterdir()] == ["r.parquet"]
    assert target.read_text() == "old"


def test_text_and_json_round_trip_with_normal_permissions(tmp_path):
    path = write_text_atomic(tmp_path / "sub" / "a.txt", "héllo")
    assert path.read_text(encoding="utf-8") == "héllo"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    data = {"a": 1, "b": [1.5, "x"], "p": tmp_path}
    loaded = json.loads(write_json_atomic(tmp_path / "d.json", data).read_text())
    assert loaded == {"a": 1, "b": [1.5, "x"], "p": str(tmp_path)}
