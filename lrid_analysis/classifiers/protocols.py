"""What ``--selection compact | paper | off`` means for each built-in classifier.

A selection mode maps a registry name to fixed parameters, a grid searched
inside ``fit`` (on the training rows only) and how it is searched:

``compact`` (lrid's default)
    Fixed settings or small grids that keep the experiments fast
    (:data:`COMPACT_SETTINGS`; see docs/analysis.md for why each value).
``paper``
    The protocol of Nayebi et al. (2020) point by point
    (:data:`PAPER_SETTINGS`): the random forest's 15-setting grid (chosen by
    out-of-bag accuracy, which picks what a nested grid search picks), the
    linear SVM without scaling with LinearSVC's dual solver and the PCA grid
    {none, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 600}, and the
    original Conv1D MLP (one-hot as constant input channels, global
    pooling, 400 epochs without early stopping, batch size in {512, 1024}
    dropping the last partial batch, Glorot initialisation, no input
    z-scoring, float64) over its 720-setting grid. Grids are searched by
    5-fold stratified cross-validation without shuffling, as the original
    did, grouped by network when ``fit`` gets ``groups``.
``off``
    The registry defaults, nothing selected.

Classifiers the paper did not use (``xgboost``, ``logistic``) keep their
registered grid under ``paper``.
"""

from __future__ import annotations

from .grids import CONV1D_GRID, RANDOM_FOREST_GRID, SVM_GRID

__all__ = ["SELECTIONS", "COMPACT_SETTINGS", "PAPER_SETTINGS", "PAPER_SVM_GRID", "PAPER_CONV1D_GRID",
           "PAPER_SEARCH"]

#: Hyperparameter selection modes (``--selection``).
SELECTIONS = ("compact", "paper", "off")

#: The paper's linear-SVM grid: C x PCA components (None: no PCA).
PAPER_SVM_GRID = {
    "C": list(SVM_GRID["C"]),
    "n_components": [None, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 600],
}

#: The paper's Conv1D grid: lrid's 360 architecture x Adam settings with global pooling,
#: times batch size {512, 1024}: 720 settings.
PAPER_CONV1D_GRID = {
    **{k: list(v) for k, v in CONV1D_GRID.items()},
    "pooling": ["none", "global_max", "global_avg"],
    "batch_size": [512, 1024],
}

#: How the paper's grids are searched: full grid, 5-fold stratified CV without shuffling.
PAPER_SEARCH = {"search": "grid", "cv": 5, "shuffle": False}

#: ``--selection compact``: fixed ``params`` and an optional small ``grid``.
COMPACT_SETTINGS = {
    "random_forest": {"params": {"n_estimators": 100, "max_features": "log2"}, "grid": None},
    # The standardized trajectory features are heavy-tailed and nearly collinear: liblinear's
    # primal solver needs thousands of iterations at any C (25-50 s per fit on the embedded
    # data); 200 iterations cost ~6 s and score within a point of 1,000; C moves the score by
    # about a point between 1 and 500, so it is fixed.
    "svm": {"params": {"C": 50.0, "max_iter": 200, "n_components": None}, "grid": None},
    "conv1d": {"params": {}, "grid": None},
    "xgboost": {"params": {}, "grid": None},
    "logistic": {"params": {}, "grid": {"C": [0.01, 1.0, 100.0]}},
}

#: ``--selection paper``: fixed ``params``, the ``grid`` and the ``search`` options
#: (None: the registered search, i.e. out-of-bag selection for the forest).
PAPER_SETTINGS = {
    "random_forest": {"params": {}, "grid": {k: list(v) for k, v in RANDOM_FOREST_GRID.items()}, "search": None},
    "svm": {"params": {"scale": False, "dual": True}, "grid": PAPER_SVM_GRID, "search": PAPER_SEARCH},
    "conv1d": {
        "params": {"categorical_as_channels": True, "standardize": False, "init": "glorot", "drop_last": True,
                   "dtype": "float64", "max_epochs": 400, "validation_fraction": 0.0},
        "grid": PAPER_CONV1D_GRID,
        "search": PAPER_SEARCH,
    },
}
