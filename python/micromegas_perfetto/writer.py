"""`PerfettoWriter`: micromegas' Perfetto writer calls over libperfetto_mm (ctypes), byte for byte.

One writer may be shared between Python threads: each call into the library holds the
writer's lock, and `close()` waits for a call in progress.
"""
import ctypes
import threading
import warnings
from typing import Optional

from . import _args, _native
from ._args import StrOrBytes, utf8
from ._native import check, lib
from .errors import InvalidArgumentError, SinkError, WriterStoppedError

__all__ = ["PerfettoWriter"]


def _fileno(output) -> int:
    """The descriptor of a file object; one without (io.BytesIO, a notebook's sys.stdout) is an
    InvalidArgumentError saying what to pass instead."""
    try:
        return output.fileno()
    except (OSError, ValueError) as e:  # io.UnsupportedOperation is both; a closed file: ValueError
        what = "is closed" if getattr(output, "closed", False) else "has no file descriptor"
        raise InvalidArgumentError(
            f"output {type(output).__name__} {what}: pass a file opened with open(), a descriptor, a callable "
            "output(chunk_id, data), or None to keep the trace in memory (getvalue())") from None


class PerfettoWriter:
    """A streaming Perfetto trace writer with micromegas' writer calls and bytes.

    `output` selects the sink:
      - None (default): the trace stays in memory; `getvalue()` returns it;
      - a callable `output(chunk_id, data)`: receives whole packets grouped into chunks of at
        least `chunk_size` bytes (ids 0, 1, 2...; every chunk parses alone as a trace);
      - an int file descriptor or a file object with a descriptor (`open(path, "wb")`): written
        there, not closed; the writer keeps the file object referenced until `close()`.

    Use it as a context manager, or call `close()`: that flushes the last chunk (a writer
    dropped without either is freed unflushed: what it buffered is not written, and a file or
    callable writer says so with a ResourceWarning, as an unclosed file does).
    Errors raise `PerfettoError` subclasses carrying the library's message.
    """

    def __init__(self, process_id: StrOrBytes, output=None, *, chunk_size: int = 0, capacity: int = 0):
        chunk_size = _args.size(chunk_size, "chunk_size")
        capacity = _args.size(capacity, "capacity")
        self._lib = lib()
        self._lock = threading.RLock()
        self._handle = ctypes.c_void_p()
        self._callback = None
        self._callback_error: Optional[BaseException] = None
        self._chunk_id = 0
        self._output = None
        self.is_memory = output is None
        pid = utf8(process_id, "process_id")
        self._process_id = pid.decode("utf-8", "replace")
        if output is None:
            check(self._lib.pmm_writer_new_buffer(pid, len(pid), capacity, ctypes.byref(self._handle)))
        elif callable(output):
            def on_chunk(_ctx, data, length):
                try:
                    output(self._chunk_id, ctypes.string_at(data, length))
                    self._chunk_id += 1
                    return 0
                except BaseException as e:  # re-raised by the writer call that triggered it
                    self._callback_error = e
                    return 1
            self._callback = _native.WRITE_FN(on_chunk)
            check(self._lib.pmm_writer_new_callback(pid, len(pid), chunk_size, self._callback, None,
                                                    ctypes.byref(self._handle)))
        else:
            if isinstance(output, bool) or not (isinstance(output, int) or hasattr(output, "fileno")):
                raise InvalidArgumentError(
                    f"output must be None, a callable, a file descriptor or a file object, not {type(output).__name__}")
            fd = _args.fd(output if isinstance(output, int) else _fileno(output))
            if hasattr(output, "flush"):
                output.flush()
            check(self._lib.pmm_writer_new_fd(pid, len(pid), fd, chunk_size, ctypes.byref(self._handle)))
            # The file object stays referenced while the writer may write to its descriptor:
            # dropped, it would close the descriptor, and a file opened next could get its number.
            self._output = output

    # -- writer calls ------------------------------------------------------------------------

    def emit_process_descriptor(self, exe: StrOrBytes) -> None:
        e = utf8(exe, "exe")
        self._call(self._lib.pmm_writer_emit_process_descriptor, e, len(e))

    def emit_thread_descriptor(self, stream_id: StrOrBytes, thread_id: int, thread_name: StrOrBytes) -> None:
        s, n = utf8(stream_id, "stream_id"), utf8(thread_name, "thread_name")
        self._call(self._lib.pmm_writer_emit_thread_descriptor, s, len(s), _args.int32(thread_id, "thread_id"),
                   n, len(n))

    def set_current_thread(self, stream_id: StrOrBytes) -> None:
        s = utf8(stream_id, "stream_id")
        self._call(self._lib.pmm_writer_set_current_thread, s, len(s))

    def emit_async_track_descriptor(self) -> None:
        self._call(self._lib.pmm_writer_emit_async_track_descriptor)

    def emit_span(self, begin: int, end: int, name: StrOrBytes, target: StrOrBytes, filename: StrOrBytes,
                  line: int) -> None:
        n, t, f = utf8(name, "name"), utf8(target, "target"), utf8(filename, "filename")
        self._call(self._lib.pmm_writer_emit_span, _args.uint64(begin, "begin"), _args.uint64(end, "end"),
                   n, len(n), t, len(t), f, len(f), _args.uint32(line, "line"))

    def emit_async_span_begin(self, timestamp: int, name: StrOrBytes, target: StrOrBytes, filename: StrOrBytes,
                              line: int) -> None:
        self._async_event(self._lib.pmm_writer_emit_async_span_begin, timestamp, name, target, filename, line)

    def emit_async_span_end(self, timestamp: int, name: StrOrBytes, target: StrOrBytes, filename: StrOrBytes,
                            line: int) -> None:
        self._async_event(self._lib.pmm_writer_emit_async_span_end, timestamp, name, target, filename, line)

    def flush(self) -> None:
        """Hands buffered packets to the sink and ends the current chunk."""
        self._call(self._lib.pmm_writer_flush)

    def getvalue(self) -> bytes:
        """Memory writers: the trace written since the last call."""
        data = ctypes.POINTER(ctypes.c_uint8)()
        length = ctypes.c_size_t()
        with self._lock:
            self._call(self._lib.pmm_writer_take_buffer, ctypes.byref(data), ctypes.byref(length))
            try:
                return ctypes.string_at(data, length.value) if length.value else b""
            finally:
                self._lib.pmm_buffer_free(data)

    @property
    def chunk_count(self) -> int:
        """Chunks handed to a callable output so far."""
        return self._chunk_id

    def close(self, flush: bool = True) -> None:
        """Flushes (unless `flush` is False) and frees the writer. Idempotent; waits for a call
        in progress on another thread."""
        with self._lock:
            if not self._handle:
                return
            try:
                if flush and not self.is_memory:
                    self.flush()
            finally:
                # Dropped before it is freed: a KeyboardInterrupt handled as the free returned
                # left it set, and __del__ freed it again (SIGSEGV).
                handle, self._handle = self._handle, ctypes.c_void_p()
                self._lib.pmm_writer_free(handle)
                self._output = None

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        self.close(flush=kind is None)

    def __del__(self):
        if getattr(self, "_handle", None):
            if not self.is_memory:
                # As Python does for an unclosed file: the buffered packets are lost, say so
                # (shown under -X dev, -W default and pytest).
                warnings.warn(f"unclosed PerfettoWriter of process {self._process_id}: what it buffered was not "
                              "written (use close() or a with block)", ResourceWarning, stacklevel=2, source=self)
            self._lib.pmm_writer_free(self._handle)

    # -- internals ---------------------------------------------------------------------------

    @property
    def handle(self) -> ctypes.c_void_p:
        if not self._handle:
            raise InvalidArgumentError("the writer is closed")
        return self._handle

    @property
    def lock(self) -> threading.RLock:
        """Held around every library call on this writer (and on generators over it)."""
        return self._lock

    def _async_event(self, function, timestamp, name, target, filename, line) -> None:
        n, t, f = utf8(name, "name"), utf8(target, "target"), utf8(filename, "filename")
        self._call(function, _args.uint64(timestamp, "timestamp"), n, len(n), t, len(t), f, len(f),
                   _args.uint32(line, "line"))

    def _call(self, function, *args) -> None:
        with self._lock:
            self._check(function(self.handle, *args))

    def _check(self, status: int) -> None:
        if status == _native.PMM_OK:
            return
        if self._callback_error is not None and status in (SinkError.status, WriterStoppedError.status):
            error, self._callback_error = self._callback_error, None
            raise error
        check(status)
