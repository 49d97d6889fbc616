"""`python -m micromegas ...` for micromegas-perfetto users.

This is the only file micromegas-perfetto installs under `micromegas/`: it dispatches to
`micromegas_perfetto`'s command line, so `python -m micromegas write_perfetto ...` keeps
working. micromegas' official client owns the `micromegas` package and ships no `__main__`,
so the two never touch each other's files; without the official client, `micromegas` is a
namespace package holding only this file.

SIGINT, SIGTERM and SIGHUP get the entry point's start-up behaviour (one line, exit
128 + signal) before the package is imported: a Ctrl-C while it and the entry point were
being loaded was Python's KeyboardInterrupt traceback. `_entry` replaces these handlers
with its own as soon as it runs.
"""
import _signal
import os


def _early(signum, frame):
    # The wording of errors.interruption_message with nothing written (test_kills checks it).
    name = {_signal.SIGTERM: " by SIGTERM", getattr(_signal, "SIGHUP", None): " by SIGHUP"}.get(signum, "")
    try:
        os.write(2, f"interrupted{name}: nothing written\n".encode())
    finally:
        os._exit(128 + signum)


for _signum in (_signal.SIGINT, _signal.SIGTERM, getattr(_signal, "SIGHUP", None)):
    if _signum is not None and _signal.getsignal(_signum) != _signal.SIG_IGN:  # an ignored one stays ignored
        _signal.signal(_signum, _early)

from micromegas_perfetto._entry import run  # noqa: E402

run(prog="python -m micromegas")
