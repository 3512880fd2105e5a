"""`python -m genlab ...`: the same command line as `genlab ...` (and what torchrun starts)."""
import sys

from .cli import main

sys.exit(main())
