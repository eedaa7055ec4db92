"""examples/tutorial.py runs end to end on the embedded data (small forest, two splits)."""

import importlib.util
from pathlib import Path

import matplotlib.image
import numpy as np

TUTORIAL = Path(__file__).resolve().parents[1] / "examples" / "tutorial.py"


def test_tutorial_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("lrid_tutorial", TUTORIAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.main(tmp_path, n_trees=10, n_splits=2)
    for name in ("trajectories", "comparison", "importance"):
        image = matplotlib.image.imread(tmp_path / f"{name}.png")
        assert image.shape[0] > 100 and image.shape[1] > 100
    assert set(table["cv"]) == {"held-out task", "category-balanced"}
    # both classifiers were scored on the very same rows (the splits are drawn once per splitter)
    for _, part in table.groupby("cv"):
        mine = part[part["classifier"].str.contains("mine")]["test_index"].tolist()
        forest = part[part["classifier"] == "random forest"]["test_index"].tolist()
        assert [list(a) for a in mine] == [list(b) for b in forest]
    # the held-out task folds leave one task out each: their test rows partition the data
    heldout = table[(table["cv"] == "held-out task") & (table["classifier"] == "random forest")]
    tested = np.concatenate([np.asarray(t) for t in heldout["test_index"]])
    assert len(tested) == len(set(tested.tolist()))
    # the forest finds the rules well above chance on the balanced splits
    balanced = table[(table["cv"] == "category-balanced") & (table["classifier"] == "random forest")]
    assert balanced["test_accuracy"].mean() > 0.6
    assert "wrote" in capsys.readouterr().out
