"""The command line's entry point (`micromegas-perfetto`, `python -m micromegas_perfetto`,
`python -m micromegas`). Before importing anything else it makes SIGINT, SIGTERM and SIGHUP
exit at once with one line and 128 + signal: nothing is open for writing yet, so there is
nothing to clean up. `cli.main` then installs the handlers of `_signals` for the run.
"""
import os
import signal
import sys


def _early(signum, frame):
    output = sys.modules.get("micromegas_perfetto.output")
    written = getattr(output, "last_committed", None)
    name = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    text = f"interrupted{name} after {written} was written" if written else f"interrupted{name}: nothing written"
    try:
        os.write(2, (text + "\n").encode())
    finally:
        os._exit(128 + signum)


for _signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
    if _signum is not None and signal.getsignal(_signum) is not signal.SIG_IGN:
        signal.signal(_signum, _early)


def main(argv=None, prog=None) -> int:
    from .cli import main as cli_main
    return cli_main(argv, prog)


def run(prog=None) -> None:
    sys.exit(main(prog=prog))
