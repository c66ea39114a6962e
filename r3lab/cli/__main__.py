"""`python -m r3lab.cli ...` (e.g. under torchrun): the `r3lab` command."""

import sys

from .app import main

sys.exit(main())
