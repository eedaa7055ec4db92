"""Registered hyperparameter grids of the built-in classifiers.

These are searched by ``get_classifier(name)`` (``select=True``). The paper's
own grids and settings, used by ``--selection paper``, are in
:mod:`lrid_analysis.classifiers.protocols` (``PAPER_SVM_GRID``,
``PAPER_CONV1D_GRID``).
"""

#: Paper grid of the random forest.
RANDOM_FOREST_GRID = {"max_features": ["sqrt", "log2", None], "n_estimators": [20, 50, 100, 500, 1000]}
#: lrid's grid of the linear SVM: the paper's C values with a coarser PCA grid
#: (the paper's is ``protocols.PAPER_SVM_GRID``); ``n_components=None`` means no PCA.
SVM_GRID = {
    "C": [1.0, 5e1, 5e2, 5e3, 5e4, 5e5, 5e6],
    "n_components": [None, 10, 20, 50, 100, 200, 400, 600],
}
#: lrid's grid of the Conv1D MLP: the paper's architecture x Adam values with window-2 pooling
#: (360 settings; the paper's 720 are ``protocols.PAPER_CONV1D_GRID``). Kernel sizes are capped
#: at the number of checkpoints.
CONV1D_GRID = {
    "kernel_size": [1, 2, 6, 11, 21],
    "stride": [1, 2, 4],
    "n_filters": [20, 40],
    "pooling": ["none", "max", "avg"],
    "learning_rate": [1e-3, 1e-4],
    "weight_decay": [0.0, 1e-4],
}
#: Our grid for gradient-boosted trees (not in the paper).
XGBOOST_GRID = {"max_depth": [3, 6], "n_estimators": [100, 300], "learning_rate": [0.05, 0.3]}
#: Our grid for logistic regression (not in the paper).
LOGISTIC_GRID = {"C": [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]}
