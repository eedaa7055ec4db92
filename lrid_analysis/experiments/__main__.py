"""``python -m lrid_analysis.experiments NAME [options]``; see :func:`lrid_analysis.experiments.main`."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
