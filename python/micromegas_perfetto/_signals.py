"""SIGINT, SIGTERM and SIGHUP under the command line: one line and exit 128 + signal, nothing
left behind.

`installed()` (a context manager, main thread only) makes each of those signals raise
`Interrupted(signum)` (a KeyboardInterrupt) in the main thread, so every `finally` runs and a
file being written is discarded; while a finished file is being put in place the signal is
deferred until it is (output.in_critical_section). A watchdog thread, woken through
`signal.set_wakeup_fd`, covers a main thread stuck in a C call (a write into a FIFO nobody
reads, a query to a server that does not answer): on a second signal, or when the first
has not ended the process within GRACE seconds (STUCK seconds when the handler has not run
at all: the main thread is inside a C call, with no cleanup of its own under way), it removes
the named temporaries (output.remove_temporaries), says so and exits with os._exit(128 + signal). An interruption raised where Python cannot propagate it (a
weakref callback, a __del__) is raised again a moment later (`_unraisable`), not printed;
so is one landing inside a pyarrow.flight client middleware (the official client's), which
C++ calls and would log and drop it (`_in_flight_middleware`).

This module imports nothing heavy, so it is installed before pyarrow is imported.
"""
import os
import select
import signal
import sys
import threading
import time
from contextlib import contextmanager

from . import output
from .errors import Interrupted, interruption_in, interruption_message

SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)
GRACE = 5.0
STUCK = 0.5


def message(signum: int) -> str:
    """The line printed for an interruption by `signum`."""
    return interruption_message(signum, output.last_committed, output.last_direct)


_raised = []
_seen = []  # the handler ran (the main thread runs Python code): the watchdog gives it GRACE


def _handler(signum, frame):
    _seen.append(signum)
    if output.in_critical_section():
        output.defer(signum)
        return
    if _raised:  # unwinding from the first one already; the watchdog handles a stuck exit
        return
    _raised.append(signum)
    if _in_flight_middleware(frame) and hasattr(signal, "setitimer"):
        _pending[:] = [signum]  # raised a moment later, out of it (_raise_pending)
        signal.setitimer(signal.ITIMER_REAL, 0.001)
        return
    raise Interrupted(signum)


def _in_flight_middleware(frame) -> bool:
    """Whether `frame` runs inside a method of a pyarrow.flight client middleware (or its
    factory), such as micromegas' official client's sending_headers: C++ calls those, and
    an exception raised there is logged on stderr ("Python client middleware failed in
    StartCall: ... Traceback ...") and dropped, so the run went on to exit 0."""
    flight = sys.modules.get("pyarrow._flight")
    kinds = tuple(k for k in (getattr(flight, "ClientMiddleware", None), getattr(flight, "ClientMiddlewareFactory", None))
                  if isinstance(k, type))
    depth = 0
    while kinds and frame is not None and depth < 200:
        code = frame.f_code
        if code.co_argcount and code.co_varnames[0] == "self" and isinstance(frame.f_locals.get("self"), kinds):
            return True
        frame, depth = frame.f_back, depth + 1
    return False


def _die(signum: int) -> None:
    output.remove_temporaries()
    code = 128 + signum
    try:
        line = (message(signum) + "\n").encode()
        code = _print_the_line(code, lambda: os.write(2, line), timeout=1.0)
    finally:
        os._exit(code)


def _watch(read_fd: int) -> None:
    first = None
    while True:
        wait = GRACE if _seen else STUCK
        # (At least 50 ms: past the deadline inside a critical section, it polls, not spins.)
        timeout = None if first is None else max(0.05, first[1] + wait - time.monotonic())
        ready, _, _ = select.select([read_fd], [], [], timeout)
        if ready:
            try:
                data = os.read(read_fd, 64)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum not in SIGNALS:
                    continue
                if first is None:
                    first = (signum, time.monotonic())
                elif not output.in_critical_section():
                    _die(signum)
        elif first is not None and not output.in_critical_section():
            if _seen and time.monotonic() < first[1] + GRACE:
                continue  # the handler ran after all: the main thread is cleaning up
            _die(first[0])


_pending = []  # an interruption Python could not propagate, to raise again (see _unraisable)


def _unraisable(previous):
    """A `sys.unraisablehook` for the run: an Interrupted raised where Python cannot propagate
    it (inside a weakref callback or a __del__, e.g. a finished thread's cleanup) would be
    printed as "Exception ignored ... Traceback" and lost. It is raised again instead, by a
    SIGALRM a millisecond later (not from the hook itself, which is in that same context);
    if that lands in such a context too, it comes back here and is tried again. Anything
    else goes to the previous hook."""
    def hook(unraisable):
        error = unraisable.exc_value
        if isinstance(error, Interrupted) and threading.current_thread() is threading.main_thread():
            _pending[:] = [error.signum]
            signal.setitimer(signal.ITIMER_REAL, 0.001)
            return
        previous(unraisable)
    return hook


def _raise_pending(signum, frame):
    if not _pending:
        return
    if output.in_critical_section():
        output.defer(_pending.pop())
        return
    if _in_flight_middleware(frame):  # still (or again) inside one: a moment later
        signal.setitimer(signal.ITIMER_REAL, 0.001)
        return
    raise Interrupted(_pending.pop())


@contextmanager
def installed():
    """Installs the handlers (and the watchdog) for the block; restores the previous ones."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    watchdog = threading.Thread(target=_watch, args=(read_fd,), name="micromegas-perfetto-signals", daemon=True)
    watchdog.start()
    _raised.clear()
    _seen.clear()
    _pending.clear()
    reported.clear()
    reporting.clear()
    old_hook, alarm = sys.unraisablehook, hasattr(signal, "setitimer")
    old_alarm = None
    if alarm:
        old_alarm = signal.signal(signal.SIGALRM, _raise_pending)
        sys.unraisablehook = _unraisable(old_hook)
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    # Up to here a signal meets the handlers in place before (the entry point's exit at
    # once); from the first of ours on, what it raises is inside the try, so the watchdog is
    # stopped and the previous handlers restored (a signal raised as the last one was
    # installed left the watchdog running: it printed a line of its own beside the run's).
    try:
        for s in SIGNALS:
            if previous[s] is not signal.SIG_IGN:  # e.g. SIGHUP ignored under nohup stays ignored
                signal.signal(s, _handler)
        yield
    finally:
        for s, handler in previous.items():
            if handler is not None:
                signal.signal(s, handler)
        signal.set_wakeup_fd(old_wakeup)
        sys.unraisablehook = old_hook
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_alarm if old_alarm is not None else signal.SIG_DFL)
        os.close(write_fd)  # the watchdog sees end of file and returns
        watchdog.join(1.0)
        os.close(read_fd)


def interruption_behind(error: BaseException):
    """The interruption `error` follows from (errors.interruption_in), or the one raised during
    this run when the chain lost it; None when the run was not interrupted."""
    interruption = interruption_in(error)
    if interruption is None and _raised:
        interruption = Interrupted(_raised[0])
    return interruption


def exit_code(error: KeyboardInterrupt) -> int:
    return 128 + (error.signum if isinstance(error, Interrupted) else signal.SIGINT)


# The interruption's line is printed once, by the run (report) or by the watchdog (_die),
# whichever comes first; the other waits for it and prints nothing. `reported` holds the
# exit code once the line is out; `reporting` is set while the run prints it. A signal then
# (a double Ctrl-C as the run exits) meets the entry point's handler: it lets the run finish
# its line while `reporting`, and ends the process with that code, silently, once `reported`.
reported = []
reporting = []
_line = threading.Lock()


def _print_the_line(code: int, write, timeout: float = -1) -> int:
    """Calls `write()` unless the line is out already; returns the exit code to use."""
    if not _line.acquire(timeout=timeout):  # the run is stuck writing it (stderr blocked)
        return reported[0] if reported else code
    try:
        if reported:
            return reported[0]
        try:
            write()
        except (OSError, AttributeError, ValueError):  # stderr a closed pipe, or closed: the code says it
            pass
        reported[:] = [code]
        return code
    finally:
        _line.release()


def report(error: KeyboardInterrupt) -> int:
    """Prints the interruption's line (one write, so a signal cannot split it); returns its exit code."""
    signum = error.signum if isinstance(error, Interrupted) else signal.SIGINT
    line = message(signum) + "\n"

    def write():
        sys.stderr.write(line)
        sys.stderr.flush()
    reporting[:] = [True]
    try:
        return _print_the_line(128 + signum, write)
    finally:
        reporting.clear()
