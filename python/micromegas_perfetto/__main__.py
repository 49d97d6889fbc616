"""`python -m micromegas_perfetto ...`: the command line (see `--help`)."""
import sys

from .cli import main

sys.exit(main())
