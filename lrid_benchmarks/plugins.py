"""The ``--classifier`` loader of the benchmark: :mod:`lrid_analysis.plugins` (shared with the experiments)."""

from lrid_analysis.plugins import (
                                   ClassifierSpec,
                                   ClassifierSpecError,
                                   build_classifier,
                                   load_object_from_file,
                                   parse_classifier,
)

__all__ = ["ClassifierSpecError", "ClassifierSpec", "parse_classifier", "load_object_from_file", "build_classifier"]
