"""The exceptions the package raises: one class per kind of failure, so callers (and the CLI,
which alone maps them to exit codes) can tell a mistake in the request from a failure while
doing it.

- `PerfettoError` and its subclasses: a status code of libperfetto_mm, with its message.
- `RequestError` and its subclasses: the request cannot be done as asked (unknown process,
  bad or out-of-range time, missing lake, a lake file without the lake format's columns,
  an output path that cannot be written).
- `DataError`: well-formed request, but the data is unreadable (corrupt or changing files).
- `SourceError`: a telemetry server failed (unreachable, refused, query error, lost stream).
- `OutputWriteError`: writing the output failed (disk full, I/O error), naming the file.
- `Interrupted`: a SIGINT, SIGTERM or SIGHUP under the command line (a KeyboardInterrupt).

`NoDataWarning` is not an exception: it is what a generation reports (through its
`Progress.note`, which by default issues it with `warnings.warn`) when a listed thread or a
process has no data at all, or a range given misses the process's own, so the trace lacks
what was asked for without anything failing.
"""
import errno as _errno
import os as _os
import re as _re
import signal as _signal


class MicromegasPerfettoError(Exception):
    """Base class of every exception this package raises on purpose."""


class PerfettoError(MicromegasPerfettoError):
    """An error from libperfetto_mm (or loading it); `status` is the C status code.

    Each subclass stands for one PMM_ERR_* code of include/perfetto_mm.h: `status` is its
    value, `status_name` its name (python/tests/test_native_abi.py checks both)."""

    status, status_name = -1, None

    def __init__(self, message: str, status: int = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidArgumentError(PerfettoError, ValueError):
    status, status_name = 1, "PMM_ERR_INVALID_ARGUMENT"


class InvalidUTF8Error(PerfettoError, ValueError):
    status, status_name = 2, "PMM_ERR_INVALID_UTF8"


class CallOrderError(PerfettoError):
    status, status_name = 3, "PMM_ERR_CALL_ORDER"


class SinkError(PerfettoError):
    status, status_name = 4, "PMM_ERR_SINK"


class WriteError(PerfettoError, OSError):
    status, status_name = 5, "PMM_ERR_IO"

    def __str__(self) -> str:
        # The library's message, which names the errno and the file descriptor; with errno and
        # strerror set, OSError's own str would be only "[Errno 9] Bad file descriptor".
        return str(self.args[0]) if self.args else super().__str__()


class OutOfMemoryError(PerfettoError, MemoryError):
    status, status_name = 6, "PMM_ERR_OUT_OF_MEMORY"


class WriterStoppedError(PerfettoError):
    status, status_name = 7, "PMM_ERR_WRITER_STOPPED"


class InvalidDataError(PerfettoError, ValueError):
    """Input data (an Arrow stream, a scenario) is malformed or of an unsupported type."""

    status, status_name = 8, "PMM_ERR_INVALID_DATA"


_BY_STATUS = {cls.status: cls for cls in (
    InvalidArgumentError, InvalidUTF8Error, CallOrderError, SinkError, WriteError, OutOfMemoryError,
    WriterStoppedError, InvalidDataError)}


def error_for_status(status: int, message: str) -> PerfettoError:
    cls = _BY_STATUS.get(status, PerfettoError)
    error = cls(message, status)
    if cls is WriteError:  # the library's message carries the errno: "I/O error (errno 28): ..."
        match = _re.search(r"\(errno (\d+)\)", message)
        if match:
            error.errno = int(match.group(1))
            error.strerror = _os.strerror(error.errno)
    return error


class RequestError(MicromegasPerfettoError, ValueError):
    """The request cannot be done as asked; nothing was written."""


class ProcessNotFoundError(RequestError, LookupError):
    """The process is not in the lake, or not on the server."""


class InvalidTimeError(RequestError):
    """A time that cannot be read, is outside the int64-nanosecond range, or begin > end."""


class LakeNotFoundError(RequestError):
    """The lake folder does not exist or is not a lake."""


class SchemaError(RequestError):
    """A table lacks a column of the lake format, or has it with another type."""


class OutputError(RequestError):
    """The output path cannot be written as asked (missing folder, a folder, empty name)."""


class ArgumentError(InvalidArgumentError, RequestError):
    """A Python argument that its C type cannot hold (checked before any call into the
    library, so nothing wraps around): a request error and an InvalidArgumentError."""


class ArgumentUTF8Error(InvalidUTF8Error, RequestError):
    """A string argument that cannot be encoded as UTF-8 (a lone surrogate)."""


class DataError(MicromegasPerfettoError):
    """A data file exists but cannot be read (truncated, corrupt, not Parquet, changed while read)."""


class SourceError(MicromegasPerfettoError):
    """A telemetry server failed: unreachable, refused, a query error, a lost connection, a
    result with missing or mistyped columns."""


class OpenError(MicromegasPerfettoError):
    """The trace was written but could not be offered to the Perfetto UI (`--open`,
    `open_in_perfetto`): the file is unreadable or the port is busy."""


class NoDataWarning(UserWarning):
    """A listed thread has no data file, or a process no async events file, though its spans
    were asked for (or no log entries or measures, asked for): the trace is written without
    them. Also an empty trace of a range given that misses the process's own: the message
    names the process's range."""


class OutputWriteError(MicromegasPerfettoError, OSError):
    """Writing the output failed after it was opened (disk full, file too large, I/O error);
    the message names the cause and the file, e.g. "disk full writing t.perfetto". Nothing
    is left behind."""


_WRITE_REASONS = {_errno.ENOSPC: "disk full", _errno.EDQUOT: "disk quota exceeded", _errno.EFBIG: "file too large",
                  _errno.EIO: "I/O error", _errno.EPIPE: "broken pipe", _errno.EBADF: "bad file descriptor"}


def output_write_error(code, shown: str) -> OutputWriteError:
    """The OutputWriteError for errno `code` (None when unknown) while writing `shown`."""
    reason = _WRITE_REASONS.get(code) or (_os.strerror(code).lower() if code else "write failed")
    error = OutputWriteError(f"{reason} writing {shown}")
    error.errno = code
    return error


def interruption_message(signum: int, written=None, direct=None) -> str:
    """The one line printed when the command line is interrupted by `signum`: which signal
    (SIGINT goes unnamed, as a Ctrl-C), and what was written: the last file put in place, if
    any, or the output written directly, `direct` = (its name, whether its trace is whole)."""
    name = "" if signum == _signal.SIGINT else f" by {_signal.Signals(signum).name}"
    if direct is not None and not direct[1]:
        return f"interrupted{name}: the trace on {direct[0]} is incomplete"
    if written:
        return f"interrupted{name} after {written} was written"
    if direct is not None:
        return f"interrupted{name} after the whole trace was written to {direct[0]}"
    return f"interrupted{name}: nothing written"


class Interrupted(KeyboardInterrupt):
    """The command line got SIGINT, SIGTERM or SIGHUP (`signum`); it exits with 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        interruptions.append(self)


# Every Interrupted raised in this process, latest last: a signal can land at any bytecode, even
# before a reader's own exception handling starts, so a failed library call checks this too.
interruptions = []


def interruption_in(error: BaseException):
    """The KeyboardInterrupt `error` follows from (itself or one in its context chain), or
    None. An interrupt landing in a lock's handoff (inside queue's wait) surfaces as the
    RuntimeError "release unlocked lock" of the `with` around it, its context the interrupt."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return error
        seen.add(id(error))
        error = error.__context__
    return None
