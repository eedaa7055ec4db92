"""``python -m benchmarks``: list, run and report the speed benchmarks (see :mod:`benchmarks.speed`)."""

import sys

from .speed import main

sys.exit(main())
