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


SECOND_SIGNAL_DURING_LAKE_REMOVAL = """
import os, signal, sys, time
from micromegas_perfetto import cli, sample_lake

written = []
real_write = sample_lake.pq.write_table
def write_table(*args, **kwargs):  # the first signal: once a few of the lake's files are written
    real_write(*args, **kwargs)
    written.append(1)
    if len(written) == 3:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
sample_lake.pq.write_table = write_table

removing = []
real_remove = sample_lake._remove
def remove(path):  # the second: as the half-written lake is being removed
    if not removing:
        removing.append(1)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(2)  # the watchdog of _signals exited here, leaving the half lake
    real_remove(path)
sample_lake._remove = remove

sys.exit(cli.main(["sample-lake", sys.argv[1], "--quiet", "--threads", "2", "--spans-per-thread", "100",
                   "--async-spans", "100"]))
"""


def test_a_second_signal_while_an_interrupted_sample_lake_is_removed_waits_for_the_removal(tmp_path):
    """Campaign: SIGTERM then SIGINT on `sample-lake` left a half lake (thread_spans/ and
    log_entries/, no processes.parquet): the second signal exited at once, in the middle of
    the removal of what the first had interrupted. The removal now finishes first."""
    folder = tmp_path / "lake"
    result = run_child(SECOND_SIGNAL_DURING_LAKE_REMOVAL, str(folder))
    assert (result.returncode, result.stderr.strip()) == (130, "interrupted: nothing written"), result
    assert list(tmp_path.iterdir()) == []
