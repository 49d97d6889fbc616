"""Checking a Perfetto trace the way Perfetto's trace processor reads it (libperfetto_mm's
streaming validator, include/perfetto_mm.h `pmm_validate_*`):

    from micromegas_perfetto import validate
    report = validate("trace.perfetto")        # a path, bytes, or an open binary file
    print(report.wrong_duration_slices, report.problems)
    for p in report.examples: print(p.kind, p.packet_offset, p.message)

Framing, sequences and interning, track references, and slice nesting as Perfetto rebuilds
it (misplaced_end_event, the depth limit of 512): see docs/validation.md. A file is read in
1 MiB pieces, never whole.
"""
import ctypes
import errno
import io
import os
import stat
from dataclasses import dataclass, field
from typing import Dict, List, Union

from . import _args, _native

# The counters of pmm_validation_stats kept in ValidationReport.stats (all but the problems).
STAT_NAMES = ("bytes", "packets", "track_descriptors", "track_events", "slices", "slice_ends", "instants",
              "counters", "flows", "debug_annotations", "slice_tracks", "open_at_end", "max_depth",
              "out_of_order_events")


@dataclass(frozen=True)
class Problem:
    """One example of a problem: its kind (e.g. "misplaced_end_event"), the byte offset of
    the packet's record in the trace, and what is wrong."""

    kind: str
    packet_offset: int
    message: str


@dataclass(frozen=True)
class ValidationReport:
    """What the validation found. `problems` maps each kind found to its exact count;
    `examples` holds the first few of each kind (in the order found)."""

    is_trace: bool
    problems: Dict[str, int] = field(default_factory=dict)
    examples: List[Problem] = field(default_factory=list)
    stats: Dict[str, int] = field(default_factory=dict)

    @property
    def problem_count(self) -> int:
        return sum(self.problems.values())

    @property
    def clean(self) -> bool:
        """A trace with no problem at all."""
        return self.is_trace and not self.problems

    @property
    def wrong_duration_slices(self) -> int:
        """Slices Perfetto shows with another duration than the trace's own begin/end pairing."""
        return self.problems.get("wrong_duration", 0)

    @property
    def misplaced_end_events(self) -> int:
        """Perfetto's `misplaced_end_event` stat for this trace."""
        return self.problems.get("misplaced_end_event", 0)

    def to_dict(self) -> dict:
        return {"is_trace": self.is_trace, "clean": self.clean, "problem_count": self.problem_count,
                "wrong_duration_slices": self.wrong_duration_slices,
                "misplaced_end_events": self.misplaced_end_events, "problems": dict(self.problems),
                "examples": [{"kind": p.kind, "packet_offset": p.packet_offset, "message": p.message}
                             for p in self.examples],
                "stats": dict(self.stats)}

    def summary(self) -> str:
        """One line: what the trace holds and what is wrong with it."""
        s = self.stats
        if not self.is_trace:
            return "not a Perfetto trace"
        holds = (f"{_count(s['bytes'], 'byte')}, {_count(s['packets'], 'packet')}, {_count(s['slices'], 'slice')} on "
                 f"{_count(s['slice_tracks'], 'track')}, {_count(s['instants'], 'instant')}, "
                 f"{_count(s['counters'], 'counter value')}")
        if self.clean:
            return f"{holds}: no problems"
        return (f"{holds}: {_count(self.problem_count, 'problem')}, {_count(self.wrong_duration_slices, 'slice')} "
                f"shown with a wrong duration")


def _count(n: int, noun: str) -> str:
    """`n noun`, the noun plural unless n is 1, n with thousands separators: '1 track', '2,048 slices'."""
    return f"{n:,} {noun if n == 1 else noun + 's'}"


def _report(stats: "_native.ValidationStats", handle) -> ValidationReport:
    lib = _native.lib()
    problems = {}
    for kind in range(1, _native.PMM_PROBLEM_KIND_COUNT):
        if stats.problems[kind]:
            problems[lib.pmm_problem_name(kind).decode()] = int(stats.problems[kind])
    examples = []
    count = ctypes.c_size_t(0)
    _native.check(lib.pmm_validator_example_count(handle, ctypes.byref(count)))
    for i in range(count.value):
        e = _native.ValidationExample()
        _native.check(lib.pmm_validator_get_example(handle, i, ctypes.byref(e)))
        # All message_len bytes: a name in the trace may hold a NUL, where c_char_p would cut it.
        message = ctypes.string_at(e.message, e.message_len).decode("utf-8", "replace") if e.message_len else ""
        examples.append(Problem(lib.pmm_problem_name(e.kind).decode(), int(e.packet_offset), message))
    return ValidationReport(is_trace=bool(stats.is_trace), problems=problems, examples=examples,
                            stats={name: int(getattr(stats, name)) for name in STAT_NAMES})


def _run(call) -> ValidationReport:
    stats = _native.ValidationStats()
    handle = ctypes.c_void_p()
    _native.check(call(ctypes.byref(stats), ctypes.byref(handle)))
    try:
        return _report(stats, handle)
    finally:
        _native.lib().pmm_validator_free(handle)


def validate(trace: Union[str, "os.PathLike", bytes, bytearray, memoryview]) -> ValidationReport:
    """Validates a Perfetto trace: a file path, the trace's bytes, or an open binary file
    (read from its current position to the end; any object with a binary read(), such as
    io.BytesIO or gzip.open(path)). Raises OSError when a file cannot be read (a folder:
    IsADirectoryError); anything readable gives a report (`is_trace` is False when it is
    not a trace)."""
    lib = _native.lib()
    if isinstance(trace, bytes) and trace:  # read in place (c_char_p points into the bytes object), no copy
        pointer = ctypes.cast(ctypes.c_char_p(trace), ctypes.POINTER(ctypes.c_uint8))
        return _run(lambda stats, out: lib.pmm_validate_buffer(pointer, len(trace), stats, out))
    if isinstance(trace, (bytes, bytearray, memoryview)):
        view = memoryview(trace).cast("B")
        if view.nbytes == 0:
            return _run(lambda stats, out: lib.pmm_validate_buffer(None, 0, stats, out))
        buffer = (ctypes.c_uint8 * view.nbytes).from_buffer_copy(view) if view.readonly else \
            (ctypes.c_uint8 * view.nbytes).from_buffer(view)
        return _run(lambda stats, out: lib.pmm_validate_buffer(buffer, view.nbytes, stats, out))
    if (hasattr(trace, "read") or hasattr(trace, "fileno")) and not isinstance(trace, (str, os.PathLike)):
        return _validate_file_object(trace, lib)
    if not isinstance(trace, (str, os.PathLike)):
        raise TypeError(f"validate() takes a path, bytes or a binary file, not {type(trace).__name__}")
    fd = os.open(os.fspath(trace), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):  # read() would fail with EISDIR, reported as a write error
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a trace", os.fspath(trace))
        return _run(lambda stats, out: lib.pmm_validate_fd(fd, stats, out))
    finally:
        os.close(fd)


def _validate_file_object(trace, lib) -> ValidationReport:
    """An open binary file, read from its own position (a buffered reader's position, not the
    OS offset under it, which is ahead by what it has buffered) to the end, where it is left."""
    if isinstance(trace, io.TextIOBase):
        raise TypeError("validate() takes a binary file, not a text one: open it with 'rb'")
    if getattr(trace, "closed", False):
        raise ValueError("validate(): the file is closed")
    if not _reads_its_descriptor(trace):
        # Its read() is not what its descriptor holds (io.BytesIO has none; gzip.open()'s
        # fileno() is the compressed file's): the object itself is read, in pieces.
        if not hasattr(trace, "read"):
            raise TypeError(f"validate() takes a path, bytes or a binary file, not {type(trace).__name__}")
        return _validate_relayed(trace, lib)
    if hasattr(trace, "flush"):
        trace.flush()
    seekable = getattr(trace, "seekable", None)
    if seekable is not None and seekable():
        position = trace.tell()
        fd = _args.fd(trace.fileno())
        os.lseek(fd, position, os.SEEK_SET)
        try:
            return _run(lambda stats, out: lib.pmm_validate_fd(fd, stats, out))
        finally:
            trace.seek(0, os.SEEK_END)  # consumed to the end, as a read() would leave it
    if isinstance(trace, io.BufferedIOBase) or not hasattr(trace, "readinto"):
        # A pipe behind a buffer: what the buffer holds is not in the descriptor any more, so
        # the object itself is read, in 1 MiB pieces relayed through a pipe (never whole).
        return _validate_relayed(trace, lib)
    fd = _args.fd(trace.fileno())
    return _run(lambda stats, out: lib.pmm_validate_fd(fd, stats, out))


def _reads_its_descriptor(trace) -> bool:
    """Whether the object's bytes are those of its descriptor: a file of open(path, "rb")
    (FileIO, or a buffered reader over one), sys.stdin.buffer."""
    raw = getattr(trace, "raw", None) if isinstance(trace, (io.BufferedReader, io.BufferedRandom)) else trace
    return isinstance(raw, io.FileIO)


RELAY_PIECE = 1 << 20


def _validate_relayed(trace, lib) -> ValidationReport:
    """Validates what `trace.read(n)` gives, piece by piece: a thread writes the pieces into
    a pipe whose other end the validator reads; an error reading `trace` is raised here."""
    import threading

    read_fd, write_fd = os.pipe()
    failure = []

    def relay() -> None:
        try:
            while True:
                piece = trace.read(RELAY_PIECE)
                if not piece:
                    return
                if not isinstance(piece, (bytes, bytearray, memoryview)):
                    raise TypeError(f"validate(): the file's read() gave {type(piece).__name__}, not bytes")
                view = memoryview(piece).cast("B")
                while view:
                    view = view[os.write(write_fd, view):]
        except BrokenPipeError:  # the validator stopped reading (not a trace, or an error)
            pass
        except BaseException as e:  # raised by validate()
            failure.append(e)
        finally:
            os.close(write_fd)
    thread = threading.Thread(target=relay, name="micromegas-validate-relay", daemon=True)
    thread.start()
    try:
        report = _run(lambda stats, out: lib.pmm_validate_fd(read_fd, stats, out))
    finally:
        os.close(read_fd)  # a relay still writing gets EPIPE and ends
        thread.join()
    if failure:
        raise failure[0]
    return report


class _CallableModule(type(os)):
    """Importing this module sets `micromegas_perfetto.validate` to the module (Python binds
    submodules on their package), so the module itself calls `validate`: both
    `micromegas_perfetto.validate(trace)` and `from micromegas_perfetto import validate` work."""

    def __call__(self, trace):
        return validate(trace)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
