"""``python -m lrid_benchmarks``: list, run and report the speed benchmarks (see :mod:`lrid_benchmarks.speed`)."""

import sys

from .speed import main

sys.exit(main())
