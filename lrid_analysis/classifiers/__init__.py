"""Classifiers of learning rules, their hyperparameter grids and a registry.

Every estimator here takes the flat feature layout of
:func:`lrid_analysis.features.flatten`: an array ``X`` of shape
``(n_trajectories, n_observables * n_checkpoints + n_categorical)`` in which
observable ``j`` occupies columns ``j * n_checkpoints .. (j + 1) *
n_checkpoints - 1`` and the ``n_categorical`` (3) layer-position one-hot
columns come last. :class:`Conv1DClassifier` (and a :class:`GridSelection`
of it) also takes the trajectory layout of
:func:`lrid_analysis.features.trajectories`, ``(n_trajectories,
n_checkpoints, n_observables + n_categorical)``, and reads the number of
checkpoints from it; the others get flat features from
:class:`lrid_analysis.trajectories.Flatten` (a pipeline of
:func:`lrid_analysis.trajectories.for_trajectories`, as every experiment
builds, or inside a :class:`~lrid_analysis.trajectories.WindowGeneralizer`). Labels may be
strings; ``classes_`` holds them sorted.

Registry
    :func:`get_classifier` builds a registered classifier by name, ready for
    ``clone(est).fit(X_train, y_train)``. With ``select=True`` (default) and a
    grid, the estimator selects its hyperparameters inside ``fit`` from the
    training data only and exposes the choice as ``best_params_``.
    :func:`register_classifier` adds a classifier; packages can add their own
    through the entry-point group ``lrid.classifiers`` (an entry point loads a
    factory, or a ``(factory, param_grid)`` pair). :func:`resolve_classifier`
    also accepts ``"package.module:Name"`` and estimator objects.

Built-in classifiers and their registered grids (``--selection paper``, the
original protocol point by point, is :mod:`lrid_analysis.classifiers.protocols`)
    ``random_forest``
        ``max_features`` in {sqrt, log2, None} x ``n_estimators`` in
        {20, 50, 100, 500, 1000}; selected by out-of-bag accuracy
        (:class:`OOBForestSelection`).
    ``svm``
        Linear SVM (:class:`LinearSVMClassifier`) on standardized continuous
        features, with optional PCA of the continuous features; ``C`` in
        {1, 5e1, 5e2, 5e3, 5e4, 5e5, 5e6} x ``n_components`` in
        {None (no PCA), 10, 20, 50, 100, 200, 400, 600} (the paper's PCA grid is
        ``PAPER_SVM_GRID``).
    ``conv1d``
        One 1-D convolution over the checkpoints followed by a linear layer
        (:class:`Conv1DClassifier`, PyTorch); kernel size {1, 2, 6, 11, 21},
        stride {1, 2, 4}, {20, 40} filters, pooling {none, max, avg}, Adam
        learning rate {1e-3, 1e-4}, weight decay {0, 1e-4} (360; the paper's
        720-setting grid with global pooling and two batch sizes is
        ``PAPER_CONV1D_GRID``).
    ``xgboost`` (our addition)
        Gradient-boosted trees (:class:`XGBoostClassifier`); ``max_depth`` in
        {3, 6} x ``n_estimators`` in {100, 300} x ``learning_rate`` in
        {0.05, 0.3}.
    ``logistic`` (our addition)
        Standardized multinomial logistic regression
        (:class:`LogisticClassifier`); ``C`` in {1e-3, 1e-2, 0.1, 1, 10, 100}.

Package layout
    ``forest_selection`` (:class:`OOBForestSelection`), ``grid_selection``
    (:class:`GridSelection`), ``linear`` (SVM, logistic regression),
    ``boosting`` (XGBoost), ``conv1d`` (Conv1D MLP), ``grids`` (registered
    grids), ``protocols`` (selection modes), ``registry`` (names, plugins).

Hyperparameter selection (all on the training data only, seeded, grouped by
network when ``fit`` gets ``groups``)
    Random forests grow one forest per non-tree setting with ``warm_start``
    and read the out-of-bag accuracy at every tree count of the grid; cheap
    settings grow first, and after ``prune_from`` trees a setting stops
    growing when, projected to the largest tree count at its latest gain per
    doubling of trees, it stays more than ``margin`` below the best accuracy
    seen so far (successive halving; between distant grid sizes, e.g. 100
    and 500, it is also checked at the doublings in between). The best
    (setting, tree count) wins, fewer trees on ties, and the already grown
    forest, cut to that many trees, is the final model: no refit and no
    cross-validation.
    The other classifiers use :class:`GridSelection`: successive halving over
    the grid (:class:`~sklearn.model_selection.HalvingGridSearchCV`, factor 3,
    3-fold stratified CV, resources = training rows) and a refit of the
    winner on all training rows; ``search="grid"`` gives a plain 3-fold
    :class:`~sklearn.model_selection.GridSearchCV`.
"""

__all__ = [
    "ENTRY_POINT_GROUP",
    "import_object",
    "RANDOM_FOREST_GRID",
    "SVM_GRID",
    "CONV1D_GRID",
    "XGBOOST_GRID",
    "LOGISTIC_GRID",
    "register_classifier",
    "list_classifiers",
    "get_param_grid",
    "get_classifier",
    "resolve_classifier",
    "OOBForestSelection",
    "GridSelection",
    "LinearSVMClassifier",
    "LogisticClassifier",
    "XGBoostClassifier",
    "Conv1DClassifier",
    "UngroupedSelectionWarning",
    "SELECTIONS",
    "COMPACT_SETTINGS",
    "PAPER_SETTINGS",
    "PAPER_SVM_GRID",
    "PAPER_CONV1D_GRID",
]

from ._layout import UngroupedSelectionWarning
from .boosting import XGBoostClassifier
from .conv1d import Conv1DClassifier
from .forest_selection import OOBForestSelection, _decision_sizes  # noqa: F401  (tests)
from .grid_selection import GridSelection
from .grids import (
    CONV1D_GRID,
    LOGISTIC_GRID,
    RANDOM_FOREST_GRID,
    SVM_GRID,
    XGBOOST_GRID,
)
from .linear import LinearSVMClassifier, LogisticClassifier
from .protocols import (
    COMPACT_SETTINGS,
    PAPER_CONV1D_GRID,
    PAPER_SETTINGS,
    PAPER_SVM_GRID,
    SELECTIONS,
)
from .registry import (  # noqa: F401  (_REGISTRY: the registry's dict, for tests and plugins)
    _REGISTRY,
    ENTRY_POINT_GROUP,
    get_classifier,
    get_param_grid,
    import_object,
    list_classifiers,
    register_classifier,
    resolve_classifier,
)
