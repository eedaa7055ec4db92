"""Run the doctest Examples of every lrid_analysis and lrid_benchmarks module (modules without examples are skipped)."""

import doctest
import importlib
import pkgutil

import matplotlib
import pytest

import lrid_analysis
import lrid_benchmarks

matplotlib.use("Agg")

MODULES = sorted([package.__name__ for package in (lrid_analysis, lrid_benchmarks)]
                 + [m.name for package in (lrid_analysis, lrid_benchmarks)
                    for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
                    if not m.name.endswith("__main__")])


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name):
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, name) if t.examples]
    if not tests:
        pytest.skip(f"{name} has no examples")
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (output above)"
