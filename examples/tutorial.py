"""Tutorial: from the data to a figure, in the public API of lrid_analysis.

Run it from the repository root (about half a minute on two cores, on the
embedded dataset shipped with lrid)::

    python examples/tutorial.py                # figures and tables in tutorial_output/
    python examples/tutorial.py --out my_dir

Steps
    1. load the full-access trajectories of all 24 admissible statistics;
    2. plot the raw trajectories of one statistic by learning rule;
    3. split: leave one training task out, and category-balanced 75/25 splits;
    4. compare your own classifier (``examples/my_classifier.py``) with the
       random forest on the same splits, in one call;
    5. permutation importance of each measure (weight / act / grad), on the
       very splits of step 4 (their rows are kept in the table);
    6. figures.

The same calls work on the public dataset: replace ``"embedded"`` by
``"public"`` once it is converted (see the README).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lrid_analysis import (CategoryBalancedSplit, HeldOutTask, compare, load_view, permutation_importance,
                           plots)
from lrid_analysis.classifiers import get_classifier
from lrid_analysis.experiments.summaries import summarize
from lrid_analysis.features import feature_groups, flatten
from lrid_analysis.importance import summarize_importance
from lrid_analysis.plugins import load_object_from_file

HERE = Path(__file__).resolve().parent


def main(out="tutorial_output", n_trees=50, n_splits=3):
    """Run the tutorial; returns the comparison table and writes figures into ``out``.

    Parameters
    ----------
    out : str or Path
    n_trees : int
        Trees of the random forest.
    n_splits : int
        Category-balanced splits.

    Returns
    -------
    pandas.DataFrame
        One row per (splitter, classifier, split).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. Load: trajectories of the 24 admissible statistics, measured with all
    #    units and no noise. X has shape (n_trajectories, n_checkpoints, 24).
    #    (load_view keeps the full-access rows by default: full_access=True.)
    view = load_view("embedded", "all")
    print(f"embedded dataset: {len(view)} trajectories, X {view.X.shape}")

    # 2. Raw trajectories of one statistic, by learning rule.
    figure = plots.plot_trajectories(view, "weightabs_median")
    plots.save_figure(figure, out / "trajectories.png")

    # 3. Splitters: scikit-learn cross-validators that read the view's metadata.
    splitters = {"held-out task": HeldOutTask(), "category-balanced": CategoryBalancedSplit(n_splits=n_splits)}

    # 4. Your classifier against the random forest, same splits, one long table.
    mine = load_object_from_file(HERE / "my_classifier.py", "NearestCentroidClassifier")
    n_checkpoints = view.X.shape[1]
    estimators = {
        "nearest centroid (mine)": mine(),
        "random forest": get_classifier("random_forest", n_checkpoints=n_checkpoints, select=False,
                                        n_estimators=n_trees, random_state=0),
    }
    result = compare(estimators, view, splitters, return_estimators=True)
    table = result.table
    summary = summarize(table, ["cv", "classifier"])
    print(summary.to_string(index=False))
    figure = plots.accuracy_bars(summary, x="cv", hue="classifier", chance=1 / len(set(view.y)),
                                 title="Your classifier vs the random forest", x_label="splits")
    plots.save_figure(figure, out / "comparison.png")

    # 5. Permutation importance of each measure, on the held-out-task splits the
    #    forest was scored on (indices from the table, estimators from the run).
    X, y = flatten(view), np.asarray(view.y, dtype=object)
    forest = {"cv": "held-out task", "classifier": "random forest"}
    groups = feature_groups(view.observables, n_checkpoints, by="measure")
    per_split = permutation_importance(result.fitted(**forest), X, y, result.splits(**forest), groups, n_repeats=3,
                                       random_state=0)

    # 6. The importance figure.
    figure = plots.importance_bars(summarize_importance(per_split), title="Permutation importance (held-out task)")
    plots.save_figure(figure, out / "importance.png")
    print(f"wrote {out}/trajectories.png, comparison.png, importance.png")
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="tutorial_output", help="output folder (default: tutorial_output)")
    main(parser.parse_args().out)
