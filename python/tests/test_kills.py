"""Defects found by killing the real command line at random moments (the kill campaign of
notes/kills.md), each reproduced deterministically: the signal is sent by the child itself at
the moment that broke, so nothing depends on timing or load.

The children start with SIGINT, SIGTERM and SIGHUP at their default dispositions (a test run
started in the background, `make test &`, inherits SIGINT ignored, and the command line
rightly keeps an ignored signal ignored)."""
import signal
import subprocess
import sys
import textwrap

import pytest

from micromegas_perfetto import _entry
from micromegas_perfetto.errors import interruption_message

DEFAULTS = "import signal\nfor s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP): signal.signal(s, signal.SIG_DFL)\n"


def run_child(script: str, *args, timeout=60):
    return subprocess.run([sys.executable, "-c", DEFAULTS + textwrap.dedent(script), *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_a_signal_while_errors_is_half_imported_is_the_usual_line(sig):
    """Campaign: SIGHUP while the command line imported `errors` (cli's first import of it)
    printed "interrupted" alone, exit 129: the entry point's handler could not import the
    wording from a module half run. It is the usual line."""
    script = f"""
        import builtins, os
        real = builtins.__import__
        def hooked(name, globals=None, locals=None, fromlist=(), level=0):
            if name == "re" and (globals or {{}}).get("__name__") == "micromegas_perfetto.errors":
                os.kill(os.getpid(), {int(sig)})  # the handler runs inside errors' own imports
            return real(name, globals, locals, fromlist, level)
        import micromegas_perfetto._entry
        builtins.__import__ = hooked
        import micromegas_perfetto.errors
        print("not interrupted")
    """
    result = run_child(script)
    assert (result.returncode, result.stderr.strip(), result.stdout) == (128 + sig, interruption_message(sig), "")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_the_entry_points_own_wording_is_the_errors_one(sig):
    assert _entry._line_before_errors(sig) == interruption_message(sig)
