"""`python -m micromegas_perfetto ...`: the command line (see `--help`)."""
from ._entry import run

run()
