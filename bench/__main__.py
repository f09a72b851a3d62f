"""`python -m bench` runs the whole benchmark (see bench.suite)."""

import sys

from bench.suite import main

sys.exit(main())
