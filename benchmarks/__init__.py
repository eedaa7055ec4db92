"""lrid benchmarks: a classifier harness and the project's speed benchmarks.

Classifier harness (plug in any scikit-learn classifier)::

    python -m benchmarks.classifiers --classifier examples/my_classifier.py:NearestCentroidClassifier \\
        --data embedded --quick

Modules: :mod:`benchmarks.plugins` (turn ``--classifier`` values into
estimators), :mod:`benchmarks.compat` (the compatibility check),
:mod:`benchmarks.tasks` (fixed data, fixed splits), :mod:`benchmarks.harness`
(runner and results store), :mod:`benchmarks.leaderboard` (tables, tests and
figure) and :mod:`benchmarks.classifiers` (the command).

Speed benchmarks (each times lrid against a baseline run in the same process)::

    python -m benchmarks --list
    python -m benchmarks --all --quick
    python -m benchmarks load_view
    python -m benchmarks --report

See :mod:`benchmarks.speed`.
"""
