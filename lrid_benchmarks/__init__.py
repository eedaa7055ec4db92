"""lrid benchmarks: a classifier harness and the project's speed benchmarks.

Classifier harness (plug in any scikit-learn classifier)::

    python -m lrid_benchmarks.classifiers --classifier examples/my_classifier.py:NearestCentroidClassifier \\
        --data embedded --quick

Modules: :mod:`lrid_benchmarks.plugins` (turn ``--classifier`` values into
estimators), :mod:`lrid_benchmarks.compat` (the compatibility check),
:mod:`lrid_benchmarks.tasks` (fixed data, fixed splits), :mod:`lrid_benchmarks.harness`
(runner and results store), :mod:`lrid_benchmarks.leaderboard` (tables, tests and
figure) and :mod:`lrid_benchmarks.classifiers` (the command).

Speed benchmarks (each times lrid against a baseline run in the same process)::

    python -m lrid_benchmarks --list
    python -m lrid_benchmarks --all --quick
    python -m lrid_benchmarks load_view
    python -m lrid_benchmarks --report

See :mod:`lrid_benchmarks.speed`.
"""
