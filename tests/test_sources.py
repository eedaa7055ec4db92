"""Tests for lrid_analysis.sources: cache folder and ``--data`` resolution."""

import pytest

from lrid_analysis import sources
from lrid_analysis.dataset import write_table
from lrid_analysis.sources import DATA_CHOICES, cache_dir, embedded_path, public_path, resolve_data


@pytest.fixture
def one_file(small_table):
    """Write a 21-row table to a given path."""
    return lambda path: write_table(small_table.head(21), path)


@pytest.fixture
def places(tmp_path, monkeypatch, one_file):
    """A cache folder, and an embedded dataset in a temporary folder."""
    monkeypatch.delenv("LRID_DATA_DIR", raising=False)
    embedded = tmp_path / "embedded"
    one_file(embedded / "source=embedded" / "part.parquet")
    monkeypatch.setattr(sources, "embedded_path", lambda: embedded)
    return {"cache": tmp_path / "cache", "embedded": embedded}


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("LRID_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "lrid"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "lrid"
    monkeypatch.setenv("LRID_DATA_DIR", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "given") == tmp_path / "given"
    assert public_path(tmp_path / "given") == tmp_path / "given" / "nayebi2020"


def test_embedded_path_is_inside_the_package():
    path = embedded_path()
    assert path.name == "embedded" and path.parent.name == "data"
    assert (path.parent.parent / "dataset.py").is_file()


def test_auto_uses_embedded_until_public_is_converted(places, one_file):
    path, description = resolve_data("auto", cache=places["cache"])
    assert path == places["embedded"] and "embedded" in description
    assert resolve_data(None, cache=places["cache"])[0] == places["embedded"]
    one_file(places["cache"] / "nayebi2020" / "source=nayebi2020" / "part.parquet")
    path, description = resolve_data("auto", cache=places["cache"])
    assert path == places["cache"] / "nayebi2020" and "public dataset" in description


def test_auto_ignores_an_interrupted_conversion(places):
    partial = places["cache"] / "nayebi2020"
    partial.mkdir(parents=True)
    (partial / ".part.parquet.abc.tmp").write_bytes(b"PAR1")
    (partial / ".part.parquet").write_bytes(b"PAR1")
    assert resolve_data("auto", cache=places["cache"])[0] == places["embedded"]


def test_environment_variable_names_the_cache(places, monkeypatch, one_file):
    one_file(places["cache"] / "nayebi2020" / "part.parquet")
    monkeypatch.setenv("LRID_DATA_DIR", str(places["cache"]))
    assert resolve_data("public")[0] == places["cache"] / "nayebi2020"
    assert resolve_data()[0] == places["cache"] / "nayebi2020"


def test_public_not_converted_error(places):
    with pytest.raises(FileNotFoundError, match="public dataset is not converted yet") as err:
        resolve_data("public", cache=places["cache"])
    assert str(places["cache"] / "nayebi2020") in str(err.value)
    assert "lrid_analysis.download" in str(err.value)


def test_embedded_missing_error(places, monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "embedded_path", lambda: tmp_path / "gone")
    with pytest.raises(FileNotFoundError, match="embedded dataset is missing") as err:
        resolve_data("embedded", cache=places["cache"])
    assert str(tmp_path / "gone") in str(err.value)
    with pytest.raises(FileNotFoundError, match="no converted public dataset in .*embedded dataset is missing"):
        resolve_data("auto", cache=places["cache"])


def test_path_spec(places, tmp_path, one_file):
    file = one_file(tmp_path / "mine" / "runs.parquet")
    assert resolve_data(str(file))[0] == file
    path, description = resolve_data(tmp_path / "mine")
    assert path == tmp_path / "mine" and str(tmp_path / "mine") in description
    with pytest.raises(FileNotFoundError, match=r"--data 'nowhere': not one of .*no Parquet data at") as err:
        resolve_data("nowhere")
    assert all(choice in str(err.value) for choice in DATA_CHOICES)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no Parquet data at"):
        resolve_data(tmp_path / "empty")



def test_a_path_object_is_a_path_even_when_named_like_a_source(places, tmp_path, monkeypatch, one_file):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    file = one_file(tmp_path / "work" / "embedded")  # a file called "embedded" in the working directory
    assert resolve_data(file)[0] == file
    assert resolve_data("embedded")[0] == places["embedded"]  # the name still means the shipped data


def test_parquet_files_skips_hidden_and_underscore_entries(tmp_path, one_file):
    one_file(tmp_path / "b" / "x.parquet")
    one_file(tmp_path / "a.parquet")
    one_file(tmp_path / "_tmp" / "y.parquet")
    one_file(tmp_path / ".hidden.parquet")
    assert sources.parquet_files(tmp_path) == [tmp_path / "a.parquet", tmp_path / "b" / "x.parquet"]
    assert sources.parquet_files(tmp_path / "a.parquet") == [tmp_path / "a.parquet"]


def test_sources_uses_no_private_helper_of_dataset():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(sources))
    imported = [(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names]
    assert not [(m, n) for m, n in imported if n.startswith("_") and m and "dataset" in m]
    assert "dataset" not in {m for m, _ in imported}  # dataset imports sources, not the other way round
