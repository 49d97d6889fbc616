"""Exceptions: one per C status code of libperfetto_mm, and user mistakes."""


class PerfettoError(Exception):
    """An error from libperfetto_mm (or loading it); `status` is the C status code."""

    status = -1

    def __init__(self, message: str, status: int = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidArgumentError(PerfettoError, ValueError):
    status = 1


class InvalidUTF8Error(PerfettoError, ValueError):
    status = 2


class CallOrderError(PerfettoError):
    status = 3


class SinkError(PerfettoError):
    status = 4


class WriteError(PerfettoError, OSError):
    status = 5


class OutOfMemoryError(PerfettoError, MemoryError):
    status = 6


class WriterStoppedError(PerfettoError):
    status = 7


class InvalidDataError(PerfettoError, ValueError):
    """Input data (an Arrow stream, a scenario) is malformed or of an unsupported type."""

    status = 8


_BY_STATUS = {cls.status: cls for cls in (
    InvalidArgumentError, InvalidUTF8Error, CallOrderError, SinkError, WriteError, OutOfMemoryError,
    WriterStoppedError, InvalidDataError)}


def error_for_status(status: int, message: str) -> PerfettoError:
    cls = _BY_STATUS.get(status, PerfettoError)
    return cls(message, status)


class UserError(Exception):
    """A mistake in what the user asked for (unknown process, bad time, missing lake...).

    The command line prints its message on one line and exits with status 2.
    """


class SourceError(Exception):
    """A telemetry server failed: unreachable, refused, a query error, a lost connection, a
    result with missing or mistyped columns. The command line prints it on one line, exit 1."""
