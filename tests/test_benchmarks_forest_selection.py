"""The forest-selection benchmark's vote check (lrid_benchmarks.forest_selection.vote_check)."""

import json

from lrid_benchmarks.forest_selection import vote_check


def test_vote_check_grows_every_setting_to_every_size(tmp_path):
    output = tmp_path / "results.json"
    results = vote_check(rows_per_rule=30, n_splits=2, n_jobs=1, sizes=(5, 10, 20), output=output)
    assert [row["split"] for row in results["splits"]] == [0, 1]
    for row in results["splits"]:
        assert set(row["oob_curves"]) == {"sqrt", "log2"}
        for curve in row["oob_curves"].values():  # never pruned: a score at every size
            assert len(curve) == 3 and all(0.0 <= v <= 1.0 for v in curve)
    saved = json.loads(output.read_text())["vote_check_30x2"]
    assert saved["sizes"] == [5, 10, 20] and saved["splits"] == results["splits"]
