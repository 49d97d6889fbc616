"""Perfetto traces from micromegas telemetry, written by libperfetto_mm (Swift, via ctypes).

- `PerfettoWriter`: the writer calls of micromegas' own Perfetto writer, byte for byte.
- `generate_trace_chunks(source, process_id, ...)`: a process's trace as `(chunk_id, bytes)`.
- `write_process_trace(source, process_id, filename, ...)`: a process's trace to a file.

Tables cross into the library through the Arrow C Stream Interface, batch by batch.
"""
import ctypes
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import pyarrow as pa

from . import _native
from ._native import check, lib
from .errors import InvalidArgumentError, InvalidUTF8Error, SinkError, UserError, WriterStoppedError
from .output import atomic_output
from .sources import Source, ThreadInfo, open_source
from .timeutil import TimeLike, ns_to_iso, to_ns

__all__ = [
    "PerfettoWriter", "TraceSummary", "generate_trace_chunks", "write_process_trace", "SPAN_TYPES", "ASYNC_LAYOUTS",
]

SPAN_TYPES = tuple(_native.PMM_SPANS)
ASYNC_LAYOUTS = tuple(_native.PMM_LAYOUTS)
DEFAULT_CHUNK_SIZE = 1 << 20

StrOrBytes = Union[str, bytes, bytearray, memoryview]


def _utf8(value: StrOrBytes, what: str) -> bytes:
    """A string argument as UTF-8 bytes (bytes pass through: the library validates them)."""
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidUTF8Error(f"{what} cannot be encoded as UTF-8: {e}") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


class PerfettoWriter:
    """A streaming Perfetto trace writer with micromegas' writer calls and bytes.

    `output` selects the sink:
      - None (default): the trace stays in memory; `getvalue()` returns it;
      - a callable `output(chunk_id, data)`: receives whole packets grouped into chunks of at
        least `chunk_size` bytes (ids 0, 1, 2...; every chunk parses alone as a trace);
      - an int file descriptor or an object with `fileno()`: written there (not closed).

    Use it as a context manager, or call `close()`: that flushes the last chunk.
    Errors raise `PerfettoError` subclasses carrying the library's message.
    """

    def __init__(self, process_id: StrOrBytes, output=None, *, chunk_size: int = 0, capacity: int = 0):
        if chunk_size < 0 or capacity < 0:
            raise InvalidArgumentError("chunk_size and capacity must be >= 0")
        self._lib = lib()
        self._handle = ctypes.c_void_p()
        self._callback = None
        self._callback_error: Optional[BaseException] = None
        self._chunk_id = 0
        self.is_memory = output is None
        pid = _utf8(process_id, "process_id")
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
            fd = output if isinstance(output, int) else output.fileno()
            if hasattr(output, "flush"):
                output.flush()
            check(self._lib.pmm_writer_new_fd(pid, len(pid), fd, chunk_size, ctypes.byref(self._handle)))

    # -- writer calls ------------------------------------------------------------------------

    def emit_process_descriptor(self, exe: StrOrBytes) -> None:
        e = _utf8(exe, "exe")
        self._call(self._lib.pmm_writer_emit_process_descriptor, e, len(e))

    def emit_thread_descriptor(self, stream_id: StrOrBytes, thread_id: int, thread_name: StrOrBytes) -> None:
        s, n = _utf8(stream_id, "stream_id"), _utf8(thread_name, "thread_name")
        self._call(self._lib.pmm_writer_emit_thread_descriptor, s, len(s), _int32(thread_id, "thread_id"), n, len(n))

    def set_current_thread(self, stream_id: StrOrBytes) -> None:
        s = _utf8(stream_id, "stream_id")
        self._call(self._lib.pmm_writer_set_current_thread, s, len(s))

    def emit_async_track_descriptor(self) -> None:
        self._call(self._lib.pmm_writer_emit_async_track_descriptor)

    def emit_span(self, begin: int, end: int, name: StrOrBytes, target: StrOrBytes, filename: StrOrBytes,
                  line: int) -> None:
        n, t, f = _utf8(name, "name"), _utf8(target, "target"), _utf8(filename, "filename")
        self._call(self._lib.pmm_writer_emit_span, _uint64(begin, "begin"), _uint64(end, "end"),
                   n, len(n), t, len(t), f, len(f), _uint32(line, "line"))

    def emit_async_span_begin(self, timestamp: int, name: StrOrBytes, target: StrOrBytes, filename: StrOrBytes,
                              line: int) -> None:
        n, t, f = _utf8(name, "name"), _utf8(target, "target"), _utf8(filename, "filename")
        self._call(self._lib.pmm_writer_emit_async_span_begin, _uint64(timestamp, "timestamp"),
                   n, len(n), t, len(t), f, len(f), _uint32(line, "line"))

    def emit_async_span_end(self, timestamp: int, name: StrOrBytes, target: StrOrBytes, filename: StrOrBytes,
                            line: int) -> None:
        n, t, f = _utf8(name, "name"), _utf8(target, "target"), _utf8(filename, "filename")
        self._call(self._lib.pmm_writer_emit_async_span_end, _uint64(timestamp, "timestamp"),
                   n, len(n), t, len(t), f, len(f), _uint32(line, "line"))

    def flush(self) -> None:
        """Hands buffered packets to the sink and ends the current chunk."""
        self._call(self._lib.pmm_writer_flush)

    def getvalue(self) -> bytes:
        """Memory writers: the trace written since the last call."""
        data = ctypes.POINTER(ctypes.c_uint8)()
        length = ctypes.c_size_t()
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
        """Flushes (unless `flush` is False) and frees the writer. Idempotent."""
        if not self._handle:
            return
        try:
            if flush and not self.is_memory:
                self.flush()
        finally:
            self._lib.pmm_writer_free(self._handle)
            self._handle = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        self.close(flush=kind is None)

    def __del__(self):
        if getattr(self, "_handle", None):
            self._lib.pmm_writer_free(self._handle)

    # -- internals ---------------------------------------------------------------------------

    @property
    def handle(self) -> ctypes.c_void_p:
        if not self._handle:
            raise InvalidArgumentError("the writer is closed")
        return self._handle

    def _call(self, function, *args) -> None:
        self._check(function(self.handle, *args))

    def _check(self, status: int) -> None:
        if status == _native.PMM_OK:
            return
        if self._callback_error is not None and status in (SinkError.status, WriterStoppedError.status):
            error, self._callback_error = self._callback_error, None
            raise error
        check(status)


def _int_in(value: int, low: int, high: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidArgumentError(f"{what} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _int32(value, what):
    return _int_in(value, -(1 << 31), (1 << 31) - 1, what)


def _uint32(value, what):
    return _int_in(value, 0, (1 << 32) - 1, what)


def _uint64(value, what):
    return _int_in(value, 0, (1 << 64) - 1, what)


# -- trace generation -------------------------------------------------------------------------


@dataclass
class TraceSummary:
    """What a trace generation wrote."""

    process_id: str
    exe: str
    begin_ns: int
    end_ns: int
    threads: int
    thread_spans: int
    async_spans: int
    async_tracks: int
    matcher: Dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    seconds: float = 0.0
    filename: Optional[str] = None
    chunks: Optional[int] = None  # server-side generation: the chunks received

    def describe(self) -> str:
        where = f"{self.filename}: " if self.filename else ""
        if self.chunks is not None:
            return (f"{where}server-side trace of {self.threads} threads, {self.chunks} chunks, "
                    f"{self.bytes} bytes in {self.seconds:.2f} s")
        m = self.matcher
        anomalies = (f"open at end {m.get('async_open_at_end', 0)}, begun before range "
                     f"{m.get('async_begun_before_range', 0)}, duplicates {m.get('async_duplicates', 0)}, "
                     f"dropped {m.get('async_dropped', 0)}")
        return (f"{where}{self.thread_spans} thread spans on {self.threads} threads, {self.async_spans} async spans "
                f"on {self.async_tracks} tracks (async anomalies: {anomalies}), {self.bytes} bytes in {self.seconds:.2f} s")


class _Generator:
    """libperfetto_mm's trace generator over a PerfettoWriter."""

    def __init__(self, writer: PerfettoWriter, exe: str, threads: List[ThreadInfo], span_types: str,
                 begin_ns: int, end_ns: int, async_layout: str):
        self._lib = lib()
        self._writer = writer
        self._handle = ctypes.c_void_p()
        encoded = [(_utf8(t.stream_id, "stream_id"), _utf8(t.name, "thread name"), t.thread_id) for t in threads]
        array = (_native.Thread * max(len(threads), 1))()
        for i, (sid, name, tid) in enumerate(encoded):
            array[i] = _native.Thread(sid, len(sid), _int32(tid, "thread_id"), name, len(name))
        e = _utf8(exe, "exe")
        options = _native.GeneratorOptions(
            e, len(e), array, len(threads), _native.PMM_SPANS[span_types], _native.PMM_LAYOUTS[async_layout],
            begin_ns, end_ns)
        writer._check(self._lib.pmm_generator_new(writer.handle, ctypes.byref(options), ctypes.byref(self._handle)))

    def add_thread_spans(self, stream_id: str, reader: pa.RecordBatchReader) -> None:
        sid = _utf8(stream_id, "stream_id")
        self._consume(reader, lambda stream: self._lib.pmm_generator_add_thread_spans(
            self._handle, sid, len(sid), ctypes.byref(stream)))

    def add_async_events(self, reader: pa.RecordBatchReader) -> None:
        self._consume(reader, lambda stream: self._lib.pmm_generator_add_async_events(self._handle, ctypes.byref(stream)))

    def _consume(self, reader, call) -> None:
        """Hands `reader` to the library. An exception raised while the library pulls batches
        (Ctrl-C, a lost connection) reaches Arrow as a stream error; it is re-raised as itself."""
        raised: List[BaseException] = []
        status = call(_export(_guarded(reader, raised)))
        if status != _native.PMM_OK and raised:
            raise raised[0]
        self._writer._check(status)

    def finish(self) -> Dict[str, int]:
        stats = _native.GeneratorStats()
        self._writer._check(self._lib.pmm_generator_finish(self._handle, ctypes.byref(stats)))
        return stats.as_dict()

    def close(self) -> None:
        if self._handle:
            self._lib.pmm_generator_free(self._handle)
            self._handle = ctypes.c_void_p()


def _export(reader: pa.RecordBatchReader) -> _native.ArrowArrayStream:
    """Exports a RecordBatchReader through the Arrow C Stream Interface."""
    stream = _native.ArrowArrayStream()
    reader._export_to_c(ctypes.addressof(stream))
    return stream


def _guarded(reader, raised: List[BaseException]) -> pa.RecordBatchReader:
    """`reader`, recording in `raised` any exception raised while reading it."""
    if isinstance(reader, pa.Table):
        reader = reader.to_reader()

    def batches():
        try:
            yield from reader
        except BaseException as e:
            raised.append(e)
            raise
    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _counting(reader: pa.RecordBatchReader, on_rows: Callable[[int], None]) -> pa.RecordBatchReader:
    """`reader`, calling `on_rows(n)` as each batch is pulled (for progress bars)."""
    def batches():
        for batch in reader:
            on_rows(batch.num_rows)
            yield batch
    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _batch_groups(reader: pa.RecordBatchReader, max_rows: int) -> Iterator[pa.RecordBatchReader]:
    """Consecutive groups of whole batches of about `max_rows` rows, as readers."""
    group, rows = [], 0
    for batch in reader:
        group.append(batch)
        rows += batch.num_rows
        if rows >= max_rows:
            yield pa.RecordBatchReader.from_batches(reader.schema, group)
            group, rows = [], 0
    if group:
        yield pa.RecordBatchReader.from_batches(reader.schema, group)


@dataclass
class _Plan:
    process_id: str
    exe: str
    begin_ns: int
    end_ns: int
    threads: List[ThreadInfo]
    span_types: str
    async_layout: str


def _plan(source: Source, process_id: str, span_types: str, begin: TimeLike, end: TimeLike,
          async_layout: str) -> _Plan:
    if span_types not in _native.PMM_SPANS:
        raise UserError(f"span types must be one of {', '.join(SPAN_TYPES)}, got {span_types!r}")
    if async_layout not in _native.PMM_LAYOUTS:
        raise UserError(f"async layout must be one of {', '.join(ASYNC_LAYOUTS)}, got {async_layout!r}")
    info = source.process_info(process_id)
    begin_ns = to_ns(begin, "begin") if begin is not None else None
    end_ns = to_ns(end, "end") if end is not None else None
    if begin_ns is None or end_ns is None:
        default_begin, default_end = source.time_range(info)
        begin_ns = default_begin if begin_ns is None else begin_ns
        end_ns = default_end if end_ns is None else end_ns
    if begin_ns < 0:
        raise UserError(f"begin {begin_ns} ns is before 1970")
    if begin_ns > end_ns:
        raise UserError(f"begin ({ns_to_iso(begin_ns)}) is after end ({ns_to_iso(end_ns)})")
    threads = source.threads(info.process_id, begin_ns, end_ns)
    return _Plan(info.process_id, info.exe, begin_ns, end_ns, threads, span_types, async_layout)


class _Progress:
    """A tqdm bar on stderr over threads, counting spans; silent when disabled."""

    def __init__(self, enabled: bool, threads: int, description: str):
        self.bar = None
        self.spans = 0
        if enabled:
            from tqdm import tqdm
            # disable=None: no bar when stderr is not a terminal (CI logs, pipes).
            self.bar = tqdm(total=threads, unit="thread", desc=description, leave=False, dynamic_ncols=True,
                            disable=None)

    def rows(self, n: int) -> None:
        self.spans += n
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.spans:,} spans", refresh=False)

    def thread_done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def phase(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _generate(plan: _Plan, source: Source, writer: PerfettoWriter, progress: bool,
              group_rows: Optional[int] = None) -> Iterator[Optional[TraceSummary]]:
    """Runs a generation step by step: yields None after each library call (so a chunk
    consumer can hand over what was produced), then the summary.

    With `group_rows`, a thread's batches go to the library in groups of about that many
    rows, which bounds what one call produces.
    """
    started = time.monotonic()
    bar = _Progress(progress, len(plan.threads), f"trace {plan.process_id[:8]}")
    generator = _Generator(writer, plan.exe, plan.threads, plan.span_types, plan.begin_ns, plan.end_ns,
                           plan.async_layout)
    try:
        yield None
        if plan.span_types != "async":
            for thread, reader in source.iter_thread_spans(plan.threads, plan.begin_ns, plan.end_ns):
                if progress:
                    reader = _counting(reader, bar.rows)
                for group in (_batch_groups(reader, group_rows) if group_rows else [reader]):
                    generator.add_thread_spans(thread.stream_id, group)
                    yield None
                bar.thread_done()
        if plan.span_types != "thread":
            bar.phase("async spans")
            generator.add_async_events(source.async_events(plan.process_id, plan.begin_ns, plan.end_ns))
        stats = generator.finish()
    finally:
        generator.close()
        bar.close()
    yield TraceSummary(
        process_id=plan.process_id, exe=plan.exe, begin_ns=plan.begin_ns, end_ns=plan.end_ns,
        threads=len(plan.threads), thread_spans=stats["thread_spans"], async_spans=stats["async_spans"],
        async_tracks=stats["async_tracks"] if plan.span_types != "thread" else 0,
        matcher={k: v for k, v in stats.items() if k.startswith("async_") and k not in ("async_spans", "async_tracks")},
        seconds=time.monotonic() - started)


def generate_trace_chunks(source: Union[Source, str, os.PathLike], process_id: str, span_types: str = "both",
                          begin: TimeLike = None, end: TimeLike = None, async_layout: str = "lanes",
                          chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = False
                          ) -> Iterator[Tuple[int, bytes]]:
    """Yields a process's trace as `(chunk_id, chunk_data)`: ids 0, 1, 2..., each chunk whole
    packets (it parses alone as a trace) of at least `chunk_size` bytes but the last.

    `source` is a Source (local lake, FlightSQL) or a lake folder. `begin`/`end` are
    nanoseconds since the epoch, datetimes or ISO 8601 text; by default the process's whole
    time range. Chunks are yielded as they are produced: memory stays bounded.
    """
    if chunk_size <= 0:
        raise UserError(f"chunk size must be positive, got {chunk_size}")
    source, owned = open_source(source)
    try:
        plan = _plan(source, process_id, span_types, begin, end, async_layout)
        pending: List[Tuple[int, bytes]] = []
        with PerfettoWriter(plan.process_id, lambda i, data: pending.append((i, data)), chunk_size=chunk_size) as writer:
            for _ in _generate(plan, source, writer, progress, group_rows=1 << 16):
                yield from pending
                pending.clear()
        yield from pending  # the last chunk, flushed when the writer closed
    finally:
        if owned:
            source.close()


def write_process_trace(source: Union[Source, str, os.PathLike], process_id: str, filename: Union[str, os.PathLike],
                        span_types: str = "both", begin: TimeLike = None, end: TimeLike = None,
                        async_layout: str = "lanes", chunk_size: int = 0, progress: bool = False) -> TraceSummary:
    """Writes a process's trace to `filename` and returns a summary.

    The trace goes to a temporary file in the target folder, renamed when complete: on any
    error (or interruption) no file is left behind.
    """
    source, owned = open_source(source)
    try:
        plan = _plan(source, process_id, span_types, begin, end, async_layout)
        target = Path(filename)
        with atomic_output(target) as fd:
            with PerfettoWriter(plan.process_id, fd, chunk_size=chunk_size) as writer:
                *_, summary = _generate(plan, source, writer, progress)
        summary.bytes = target.stat().st_size
        summary.filename = str(target)
        return summary
    finally:
        if owned:
            source.close()
