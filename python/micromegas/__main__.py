"""`python -m micromegas ...` for micromegas-perfetto users.

This is the only file micromegas-perfetto installs under `micromegas/`: it dispatches to
`micromegas_perfetto`'s command line, so `python -m micromegas write_perfetto ...` keeps
working. micromegas' official client owns the `micromegas` package and ships no `__main__`,
so the two never touch each other's files; without the official client, `micromegas` is a
namespace package holding only this file.
"""
from micromegas_perfetto._entry import run

run(prog="python -m micromegas")
