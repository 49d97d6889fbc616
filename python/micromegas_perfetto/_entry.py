"""The command line's entry point (`micromegas-perfetto`, `python -m micromegas_perfetto`,
`python -m micromegas`). Before importing anything else it makes SIGINT, SIGTERM and SIGHUP
exit at once with one line and 128 + signal: nothing is open for writing yet, so there is
nothing to clean up. `cli.main` then installs the handlers of `_signals` for the run. (A
signal during the interpreter's own start-up, before this module runs, keeps Python's
default behaviour; `python -m micromegas` has the same start-up handlers from its
__main__'s first lines, before the package is imported.)
"""
import os
import sys

# The interpreter's own signal module, loaded at start-up: the handlers go in before anything
# is imported, signal.py itself included (its enums take a millisecond or more, and a Ctrl-C
# then was Python's KeyboardInterrupt traceback).
import _signal

_NAMES = {_signal.SIGINT: "SIGINT", _signal.SIGTERM: "SIGTERM", getattr(_signal, "SIGHUP", None): "SIGHUP"}


def _early(signum, frame):
    signals = sys.modules.get("micromegas_perfetto._signals")
    if getattr(signals, "reporting", None):  # the run is printing its interruption's line: it exits next
        return
    done = getattr(signals, "reported", None)
    if done:  # the run was interrupted and has said so: a second line would contradict it
        os._exit(done[0])
    try:
        # Imported here, so the handlers are in place before anything else is imported.
        from .errors import interruption_message
        output = sys.modules.get("micromegas_perfetto.output")
        line = interruption_message(signum, getattr(output, "last_committed", None),
                                    getattr(output, "last_direct", None))
    except BaseException:  # the signal landed while `errors` itself was being imported
        line = _line_before_errors(signum)
    try:
        os.write(2, (line + "\n").encode())
    finally:
        os._exit(128 + signum)


def _line_before_errors(signum) -> str:
    """errors.interruption_message's line for a signal that lands while `errors` is being
    imported (half run, it cannot be imported from: "interrupted" alone was printed). Nothing
    can have been written then (output needs errors), so it is the "nothing written" wording;
    test_kills checks that both say the same."""
    name = "" if signum == _signal.SIGINT else f" by {_NAMES.get(signum) or f'signal {signum}'}"
    return f"interrupted{name}: nothing written"


for _signum in (_signal.SIGINT, _signal.SIGTERM, getattr(_signal, "SIGHUP", None)):
    if _signum is not None and _signal.getsignal(_signum) != _signal.SIG_IGN:
        _signal.signal(_signum, _early)


# A standard descriptor the command line was started without (`cmd >&-`) is opened on /dev/null
# (Python has already made sys.stdout or sys.stderr None for it): otherwise the first file
# opened, such as the trace being written, would get descriptor 1 or 2, and whatever is then
# written to "standard output" would land in it.
for _fd in (0, 1, 2):
    try:
        os.fstat(_fd)
    except OSError:
        try:
            _null = os.open(os.devnull, os.O_RDWR)
            if _null != _fd:
                os.dup2(_null, _fd)
                os.close(_null)
        except OSError:
            pass
if sys.stderr is None:  # started with stderr closed: messages go nowhere, never to stdout (print's fallback)
    try:
        sys.stderr = open(2, "w", closefd=False)
    except OSError:
        pass


def main(argv=None, prog=None) -> int:
    from .cli import main as cli_main
    return cli_main(argv, prog)


def run(prog=None) -> None:
    """Runs the command line and exits with its status, without the interpreter's teardown:
    by then the trace is in place (written, fsynced, linked) and only stdout and stderr can
    hold anything, so they are flushed first. The teardown of pyarrow and the loaded modules
    costs about 25 ms, and a library thread still running in C code during it can crash it."""
    code = main(prog=prog)
    try:
        if sys.stdout is not None:  # None when started with standard output closed
            sys.stdout.flush()
    except BrokenPipeError:  # `... | head` closed early: what it wanted was read
        pass
    except OSError as e:
        code = code or 1
        try:
            from .errors import output_write_error
            sys.stderr.write(f"error: {output_write_error(e.errno, 'standard output')}\n")
        except (OSError, AttributeError):
            pass
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except OSError:
        pass
    os._exit(code)
