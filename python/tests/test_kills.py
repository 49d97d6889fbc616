"""Defects found by killing the real command line at random moments (the kill campaign of
notes/kills.md), each reproduced deterministically: the signal is sent by the child itself at
the moment that broke, so nothing depends on timing or load.

The children start with SIGINT, SIGTERM and SIGHUP at their default dispositions (a test run
started in the background, `make test &`, inherits SIGINT ignored, and the command line
rightly keeps an ignored signal ignored)."""
import os
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


# The end of a child script: `validate` through the entry point, with sys.stderr calling the
# script's before_line() and after_line() around the interruption's line.
AROUND_THE_LINE = """
class Stderr:
    def __init__(self, stream):
        self.stream = stream
    def write(self, text):
        line = text.startswith("interrupted")
        if line:
            before_line()
        written = self.stream.write(text)
        if line:
            self.stream.flush()
            after_line()
        return written
    def __getattr__(self, name):
        return getattr(self.stream, name)
sys.stderr = Stderr(sys.stderr)
sys.argv[1:] = ["validate", "t.perfetto"]
_entry.run()
"""


SECOND_SIGNAL_AFTER_THE_LINE = """
import os, signal, sys, time
from micromegas_perfetto import _entry, cli

def interrupted(args):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
cli.COMMANDS["validate"] = interrupted

def before_line():  # a second signal as the interruption's line is being written
    if "{when}" == "before":
        os.kill(os.getpid(), signal.{second})

def after_line():  # and the moment it is out (a double Ctrl-C)
    os.kill(os.getpid(), signal.{second})
    for _ in range(100_000):  # what follows the line (the entry point's flushes) takes a moment
        pass
""" + AROUND_THE_LINE


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("second", ["SIGINT", "SIGTERM"])
def test_a_second_signal_after_the_interruptions_line_adds_no_line(second, when):
    """(Seen reading the code for the campaign's double signals.) A second signal landing
    after the first one's line was printed, as the run exited, printed a second line
    ("interrupted by SIGTERM: nothing written") and changed the exit status: the entry
    point's handler, in place again once the run's were restored, did not know the run had
    already reported. And one landing as the line was being written ('before') must not end
    the process before it is out: the campaign saw exit 130 with nothing on stderr."""
    result = run_child(SECOND_SIGNAL_AFTER_THE_LINE.replace("{second}", second).replace("{when}", when))
    assert (result.returncode, result.stderr) == (130, "interrupted: nothing written\n"), result


INTERRUPTED = """
import os, signal, sys, time
from micromegas_perfetto import _entry, cli

def interrupted(args):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
cli.COMMANDS["validate"] = interrupted
sys.argv[1:] = ["validate", "t.perfetto"]
_entry.run()
"""


def test_an_interruption_with_stderr_a_closed_pipe_still_exits_128_plus_signal():
    """(Seen reading the code.) `... 2>&1 | head -1` gone: the interruption's line cannot be written (EPIPE), and that
    failure made the exit status 1 (an uncaught BrokenPipeError) instead of 143."""
    read, write = os.pipe()
    os.close(read)
    try:
        child = subprocess.run([sys.executable, "-c", DEFAULTS + INTERRUPTED], stderr=write, stdout=subprocess.DEVNULL,
                               timeout=60)
    finally:
        os.close(write)
    assert child.returncode == 143


FREED_AS_INTERRUPTED = """
import gc, os, signal
signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own Ctrl-C, as in a notebook
from micromegas_perfetto.writer import PerfettoWriter

FREED = []

class Lib:  # the library, with a Ctrl-C arriving while the writer is freed
    def __init__(self, lib):
        self._lib = lib
    def __getattr__(self, name):
        function = getattr(self._lib, name)
        if name != "pmm_writer_free":
            return function
        def free(handle):
            FREED.append(getattr(handle, "value", handle))
            result = function(handle)
            if len(FREED) == 1:
                os.kill(os.getpid(), signal.SIGINT)  # handled as the call returns: it came during it
            return result
        return free

fd = os.open(os.devnull, os.O_WRONLY)
writer = PerfettoWriter("bdd640fb-0667-4ad1-9c80-317fa3b1799d", fd)
writer.emit_process_descriptor("exe")
writer._lib = Lib(writer._lib)
try:
    writer.close()
except KeyboardInterrupt:
    pass
del writer
gc.collect()
print(len(FREED), len(set(FREED)))
"""


def test_a_ctrl_c_as_the_writer_is_freed_does_not_free_it_twice():
    """(Seen reading the code for the campaign's finish phase.) A KeyboardInterrupt handled as
    pmm_writer_free returned (a Ctrl-C during it, under Python's own handler: a notebook, a
    script) left the handle set; the writer's __del__ freed it again: SIGSEGV. (The command
    line keeps its interruptions, so there the writer was never collected before the exit.)"""
    result = subprocess.run([sys.executable, "-c", FREED_AS_INTERRUPTED], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.split()) == (0, ["1", "1"]), result


SIGNAL_AS_THE_HANDLERS_ARE_INSTALLED = """
import os, signal, sys, time
from micromegas_perfetto import _entry, _signals, cli

real_signal = signal.signal
def installing(signum, handler):
    previous = real_signal(signum, handler)
    if handler is _signals._handler and signum == _signals.SIGNALS[-1]:
        signal.signal = real_signal
        os.kill(os.getpid(), signal.SIGINT)  # as the run's last handler is put in place
    return previous
signal.signal = installing

def before_line():
    pass

def after_line():  # then a second signal once the line is out (the burst goes on)
    os.kill(os.getpid(), signal.SIGHUP)
    time.sleep(1)  # the watchdog said "interrupted by SIGHUP" here and exited 129
""" + AROUND_THE_LINE


def test_a_signal_as_the_runs_handlers_are_installed_stops_the_watchdog_first():
    """Campaign (bursts of 3-6 signals): 'interrupted: nothing written' then 'interrupted by
    SIGHUP: nothing written', exit 129. A signal landing as the run's handlers were being
    installed was raised before the block that restores them: the watchdog kept running,
    and the next signal made it print its own line while the run printed its."""
    result = run_child(SIGNAL_AS_THE_HANDLERS_ARE_INSTALLED)
    assert (result.returncode, result.stderr) == (130, "interrupted: nothing written\n"), result


INSIDE_FLIGHT_MIDDLEWARE = """
import os, signal, sys, threading, time
import pyarrow as pa
import pyarrow.flight as flight
from micromegas_perfetto import _signals
from micromegas_perfetto.errors import Interrupted

class Server(flight.FlightServerBase):
    def do_get(self, context, ticket):
        return flight.RecordBatchStream(pa.table({"x": list(range(1000))}))

class Middleware(flight.ClientMiddleware):  # as micromegas' official client's
    def sending_headers(self):
        if threading.current_thread() is threading.main_thread():
            os.kill(os.getpid(), signal.SIGINT)  # lands inside the middleware, called from C++
        return {}
    def received_headers(self, headers):
        pass
    def call_completed(self, exception):
        pass

class Factory(flight.ClientMiddlewareFactory):
    def start_call(self, info):
        return Middleware()

server = Server("grpc://127.0.0.1:0")
client = flight.connect(f"grpc://127.0.0.1:{server.port}", middleware=[Factory()])
outcome = "not interrupted"
with _signals.installed():
    try:
        client.do_get(flight.Ticket(b"t")).read_all()
        for _ in range(3_000_000):  # the interruption comes at the next safe point, if not at once
            pass
    except Interrupted as e:
        outcome = f"interrupted {e.signum}"
print(outcome)
server.shutdown()
"""


def test_an_interruption_inside_a_flight_middleware_is_raised_out_of_it():
    """Campaign (the official client's connection): a SIGINT landing in its middleware's
    sending_headers, which pyarrow's C++ calls, was logged on stderr ("Python client
    middleware failed in StartCall: ... Traceback ... Interrupted: 2") and dropped: the run
    went on and exited 0. It is raised a moment later, out of the middleware."""
    result = run_child(INSIDE_FLIGHT_MIDDLEWARE)
    assert (result.stdout.strip(), result.returncode) == (f"interrupted {int(signal.SIGINT)}", 0), result
    assert "middleware failed" not in result.stderr and "Traceback" not in result.stderr, result.stderr


WHILE_THE_ENTRY_POINT_IMPORTS_SIGNAL = """
import _signal
_signal.signal(_signal.SIGINT, _signal.default_int_handler)  # Python's own, as at start-up
import builtins, os
real = builtins.__import__
def hooked(name, globals=None, locals=None, fromlist=(), level=0):
    if name == "signal" and (globals or {}).get("__name__") == "micromegas_perfetto._entry":
        os.kill(os.getpid(), _signal.SIGINT)  # lands as the entry point imports signal.py
    return real(name, globals, locals, fromlist, level)
builtins.__import__ = hooked
import micromegas_perfetto._entry
os.kill(os.getpid(), _signal.SIGINT)  # (an entry point that does not import it is interrupted here)
"""


def test_a_ctrl_c_while_the_entry_point_imports_signal_is_the_usual_line():
    """Campaign: a SIGINT as the entry point imported signal.py (not loaded at start-up; its
    enums take a millisecond or more) was Python's KeyboardInterrupt traceback, exit -2: the
    handlers were put in place with signal.py's functions, after importing it. They go in
    first, with the interpreter's own _signal."""
    result = subprocess.run([sys.executable, "-c", WHILE_THE_ENTRY_POINT_IMPORTS_SIGNAL], capture_output=True,
                            text=True, timeout=60)
    assert (result.returncode, result.stderr) == (130, "interrupted: nothing written\n"), result


WHILE_MICROMEGAS_MAIN_IMPORTS_THE_ENTRY_POINT = """
import _signal
_signal.signal(_signal.SIGINT, _signal.default_int_handler)  # Python's own, as at start-up
import builtins, os, runpy, sys
real = builtins.__import__
def hooked(name, globals=None, locals=None, fromlist=(), level=0):
    if name == "micromegas_perfetto._entry" and (globals or {}).get("__name__") == "__main__":
        builtins.__import__ = real
        os.kill(os.getpid(), _signal.{sig})  # as `python -m micromegas` starts importing the package
    return real(name, globals, locals, fromlist, level)
builtins.__import__ = hooked
sys.argv = ["micromegas", "--version"]
runpy.run_module("micromegas", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_as_python_m_micromegas_imports_the_package_is_the_usual_line(sig):
    """Kill campaign (python/tools/kill_campaign.py): a SIGINT 28 ms into `python -m
    micromegas`, as its __main__ imported micromegas_perfetto (the package, then _entry,
    before _entry's handlers were in place), was Python's KeyboardInterrupt traceback, exit
    -2 (SIGTERM and SIGHUP: killed, nothing said). micromegas/__main__.py puts the same
    handlers in first."""
    result = run_child(WHILE_MICROMEGAS_MAIN_IMPORTS_THE_ENTRY_POINT.replace("{sig}", sig))
    signum = getattr(signal, sig)
    assert (result.returncode, result.stderr) == (128 + signum, interruption_message(signum) + "\n"), result
