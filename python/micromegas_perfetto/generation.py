"""Trace generation: a process's telemetry, read from a source, through libperfetto_mm's
generator into a file or chunks.

- `write_process_trace(source, process_id, begin, end, trace_filepath, span_types="both")`:
  the same positional parameters as the official client's
  `micromegas.perfetto.write_process_trace`, so switching the import is the whole migration;
- `generate_trace_chunks(source, process_id, begin, end, span_types="both")`: the trace as
  `(chunk_id, bytes)`, produced as it is consumed.

`source` is a lake folder, a `Source`, this package's `FlightSQLClient(uri, token)`, or a
client object with micromegas' `query_stream` (the official `micromegas.connect()` /
`connect_with_profile()` client). Tables cross into the library as Arrow C streams, batch by
batch.
"""
import contextlib
import ctypes
import functools
import os
import re
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import pyarrow as pa

from . import _args, _native, errors
from ._args import utf8
from ._native import lib
from .errors import (InvalidArgumentError, InvalidDataError, InvalidTimeError, OutputError, RequestError, WriteError,
                     output_write_error)
from .output import atomic_output
from .progress import Progress
from .sources import ProcessInfo, Source, ThreadInfo
from .timeutil import TimeLike, ns_to_iso, to_ns
from .writer import PerfettoWriter

__all__ = ["TraceSummary", "Progress", "generate_trace_chunks", "write_process_trace", "open_source",
           "SPAN_TYPES", "ASYNC_LAYOUTS"]

SPAN_TYPES = tuple(_native.PMM_SPANS)
ASYNC_LAYOUTS = tuple(_native.PMM_LAYOUTS)
DEFAULT_CHUNK_SIZE = 1 << 20

SourceLike = Union[Source, str, os.PathLike, object]


@dataclass
class TraceSummary:
    """What a trace generation wrote. Server-side (`server_side=True`), the span and track
    counts are -1 (the server does not report them) and `chunks` is set; `bytes` is None when
    the target is not a regular file (standard output, a FIFO, a device)."""

    process_id: str
    exe: str
    begin_ns: int
    end_ns: int
    threads: int
    thread_spans: int
    async_spans: int
    async_tracks: int
    matcher: Dict[str, int] = field(default_factory=dict)
    logs: bool = False  # log entries were asked for
    metrics: bool = False  # measures were asked for
    log_entries: int = 0  # written
    measures: int = 0  # written
    counter_tracks: int = 0
    bytes: Optional[int] = 0
    seconds: float = 0.0
    filename: Optional[str] = None
    chunks: Optional[int] = None  # server-side generation: the chunks received (span counts unknown)


def open_source(source: SourceLike) -> Tuple[Source, bool]:
    """A Source for `source` and whether the caller owns (must close) it: a Source is used as
    is; this package's `FlightSQLClient` and an object with `query_stream` (micromegas'
    client) run micromegas' queries; a path is a lake folder."""
    if isinstance(source, Source):
        return source, False
    flightsql = sys.modules.get(f"{__package__}.flightsql")  # imported if the caller made one of its clients
    if flightsql is not None and isinstance(source, flightsql.FlightSQLClient):
        return flightsql.FlightSQLSource(queries=source), False  # the caller's client: not closed here
    if callable(getattr(source, "query_stream", None)):
        from .flightsql import ClientQueries, FlightSQLSource
        return FlightSQLSource(queries=ClientQueries(source)), True
    if isinstance(source, (str, bytes, os.PathLike)):
        from .lake import LocalLake
        return LocalLake(source), True
    raise TypeError(f"source must be a lake folder, a Source, a FlightSQLClient or a client with "
                    f"query_stream, not {type(source).__name__}")


class _Generator:
    """libperfetto_mm's trace generator over a PerfettoWriter (calls hold the writer's lock)."""

    def __init__(self, writer: PerfettoWriter, exe: str, threads: List[ThreadInfo], span_types: str,
                 begin_ns: int, end_ns: int, async_layout: str, span_args: bool = True, flows: bool = True):
        self._lib = lib()
        self._writer = writer
        self._handle = ctypes.c_void_p()
        encoded = [(utf8(t.stream_id, "stream_id"), utf8(t.name, "thread name"), t.thread_id) for t in threads]
        array = (_native.Thread * max(len(threads), 1))()
        for i, (sid, name, tid) in enumerate(encoded):
            array[i] = _native.Thread(sid, len(sid), _args.int32(tid, "thread_id"), name, len(name))
        e = utf8(exe, "exe")
        options = _native.GeneratorOptions(
            e, len(e), array, len(threads), _native.PMM_SPANS[span_types], _native.PMM_LAYOUTS[async_layout],
            _args.int64(begin_ns, "range begin"), _args.int64(end_ns, "range end"),
            (0 if span_args else _native.PMM_FLAG_NO_SPAN_ARGS) | (0 if flows else _native.PMM_FLAG_NO_FLOWS))
        self._rows: Dict[tuple, int] = {}  # rows pulled so far per stream (thread spans, async events)
        with writer.lock:
            writer._check(self._lib.pmm_generator_new(writer.handle, ctypes.byref(options),
                                                      ctypes.byref(self._handle)))

    def add_thread_spans(self, stream_id: str, reader: pa.RecordBatchReader) -> None:
        sid = utf8(stream_id, "stream_id")
        self._consume(reader, lambda stream: self._lib.pmm_generator_add_thread_spans(
            self._handle, sid, len(sid), ctypes.byref(stream)), ("thread", stream_id))

    def thread_rows(self, stream_id: str) -> int:
        """Rows of `stream_id`'s thread spans the library has pulled so far."""
        return self._rows.get(("thread", stream_id), 0)

    def add_async_events(self, reader: pa.RecordBatchReader) -> None:
        self._consume(reader, lambda stream: self._lib.pmm_generator_add_async_events(self._handle, ctypes.byref(stream)),
                      ("async",))

    def add_log_entries(self, reader: pa.RecordBatchReader) -> None:
        self._consume(reader, lambda stream: self._lib.pmm_generator_add_log_entries(self._handle, ctypes.byref(stream)),
                      ("logs",))

    def add_measures(self, reader: pa.RecordBatchReader) -> None:
        self._consume(reader, lambda stream: self._lib.pmm_generator_add_measures(self._handle, ctypes.byref(stream)),
                      ("measures",))

    def _consume(self, reader, call, key) -> None:
        """Hands `reader` to the library. An exception raised while the library pulls batches
        (Ctrl-C, a lost connection, an unreadable file) reaches Arrow as a stream error; it is
        re-raised as itself. A bad value the library finds in a batch is reported at its row
        in the whole stream (the library counts rows within a batch)."""
        raised: List[BaseException] = []
        interrupted = len(errors.interruptions)
        rows = _Rows(self._rows.get(key, 0))
        try:
            with self._writer.lock:
                if not self._handle:
                    raise InvalidArgumentError("the generator is closed")
                status = call(_export(_guarded(reader, raised, rows)))
        finally:
            self._rows[key] = rows.pulled
        if status != _native.PMM_OK and raised:
            raise raised[0]
        if status != _native.PMM_OK and len(errors.interruptions) > interrupted:
            raise errors.interruptions[-1]  # it landed where the reader could not record it
        try:
            self._writer._check(status)
        except InvalidDataError as e:
            message = _ROW_IN_BATCH.sub(lambda m: f"at row {rows.before_last + int(m.group(1))}", str(e))
            if message == str(e):
                raise
            raise InvalidDataError(message, e.status) from None

    def finish(self) -> Dict[str, int]:
        stats = _native.GeneratorStats()
        with self._writer.lock:
            self._writer._check(self._lib.pmm_generator_finish(self._handle, ctypes.byref(stats)))
        return stats.as_dict()

    def close(self) -> None:
        with self._writer.lock:
            if self._handle:  # dropped before it is freed, as PerfettoWriter.close does
                handle, self._handle = self._handle, ctypes.c_void_p()
                self._lib.pmm_generator_free(handle)


def _export(reader: pa.RecordBatchReader) -> _native.ArrowArrayStream:
    """Exports a RecordBatchReader through the Arrow C Stream Interface."""
    stream = _native.ArrowArrayStream()
    reader._export_to_c(ctypes.addressof(stream))
    return stream


class _Rows:
    """Rows of a stream pulled by the library: all of them, and those before the last batch."""

    def __init__(self, pulled: int = 0):
        self.pulled = pulled
        self.before_last = pulled


# How the library names a row: "(row 18928 of a batch)".
_ROW_IN_BATCH = re.compile(r"\(row (\d+) of a batch\)")


def _guarded(reader, raised: List[BaseException], rows: Optional[_Rows] = None) -> pa.RecordBatchReader:
    """`reader`, recording in `raised` any exception raised while reading it (not the
    GeneratorExit of the library releasing the stream early), and counting `rows`."""
    if isinstance(reader, pa.Table):
        reader = reader.to_reader()
    rows = rows or _Rows()

    def batches():
        try:
            for batch in reader:
                rows.before_last = rows.pulled
                rows.pulled += batch.num_rows
                yield batch
        except GeneratorExit:  # the library released the stream (it stopped on its own error)
            raise
        except BaseException as e:
            raised.append(e)
            raise
    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _reader(value, source: Source, kind: str) -> pa.RecordBatchReader:
    """What a source's `thread_spans`, `async_events`, `log_entries` or `measures` returned, as
    a RecordBatchReader: a reader as is, a Table or a RecordBatch (what a Source subclass
    returns from pq.read_table), or any object of the Arrow C stream interface
    (`__arrow_c_stream__`: Polars, DuckDB); anything else is a TypeError naming the method (a
    Table was iterated as columns: "'ChunkedArray' object has no attribute 'num_rows'")."""
    if isinstance(value, pa.RecordBatchReader):
        return value
    if isinstance(value, pa.Table):
        return value.to_reader()
    if isinstance(value, pa.RecordBatch):
        return pa.RecordBatchReader.from_batches(value.schema, [value])
    if hasattr(value, "__arrow_c_stream__") and hasattr(pa.RecordBatchReader, "from_stream"):
        return pa.RecordBatchReader.from_stream(value)
    raise TypeError(f"{type(source).__name__}.{kind} returned {type(value).__name__}: a Source's tables are "
                    "pyarrow.RecordBatchReader (or Table) objects")


def _source_result(value, expected, source: Source, method: str, shown: str = ""):
    """`value`, returned by `source.method`, checked to be an `expected` (a ThreadInfo list,
    a ProcessInfo...): a Source subclass returning a tuple or a dict failed later as an
    AttributeError deep in the generation."""
    if not isinstance(value, expected):
        raise TypeError(f"{type(source).__name__}.{method} returned {type(value).__name__}, expected "
                        f"{shown or expected.__name__}")
    return value


def _counting(reader: pa.RecordBatchReader, on_rows: Callable[[int], None]) -> pa.RecordBatchReader:
    """`reader`, calling `on_rows(n)` as each batch is pulled (for progress)."""
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
class Plan:
    """What one generation will do: the process, the range and the threads."""

    process_id: str
    exe: str
    begin_ns: int
    end_ns: int
    threads: List[ThreadInfo]
    span_types: str
    async_layout: str
    logs: bool = False
    metrics: bool = False
    span_args: bool = True
    flows: bool = True
    range_given: bool = False  # begin or end was given (not both the process's own)


def _before_epoch(what: str, ns: int) -> str:
    """The message for a range beginning before the Unix epoch (Perfetto's packet timestamps
    are unsigned): the time in ISO 8601, whichever form it was given in."""
    return f"{what} ({ns_to_iso(ns)}) is before 1970-01-01T00:00:00Z: a trace range cannot begin before the Unix epoch"


def plan_trace(source: Source, process_id: str, span_types: str, begin: TimeLike, end: TimeLike,
               async_layout: str, logs: bool = False, metrics: bool = False, span_args: bool = True,
               flows: bool = True) -> Plan:
    """Checks the request and resolves its defaults (range, threads) from the source."""
    if not isinstance(span_types, str) or span_types not in _native.PMM_SPANS:  # (a list is unhashable)
        raise RequestError(f"span types must be one of {', '.join(SPAN_TYPES)}, got {span_types!r}")
    if not isinstance(async_layout, str) or async_layout not in _native.PMM_LAYOUTS:
        raise RequestError(f"async layout must be one of {', '.join(ASYNC_LAYOUTS)}, got {async_layout!r}")
    if not isinstance(process_id, str) or not process_id:
        raise RequestError(f"process id must be a non-empty string, got {process_id!r}")
    utf8(process_id, "process id")  # a lone surrogate (undecodable command-line bytes): ArgumentUTF8Error
    begin_ns = to_ns(begin, "begin") if begin is not None else None
    end_ns = to_ns(end, "end") if end is not None else None
    if begin_ns is not None and begin_ns < 0:
        raise InvalidTimeError(_before_epoch("begin", begin_ns))
    if begin_ns is not None and end_ns is not None and begin_ns > end_ns:
        raise InvalidTimeError(f"begin ({ns_to_iso(begin_ns)}) is after end ({ns_to_iso(end_ns)})")
    info = _source_result(source.process_info(process_id), ProcessInfo, source, "process_info")
    given = (begin_ns is not None, end_ns is not None)
    if begin_ns is None or end_ns is None:
        default_range = source.time_range(info)
        if not isinstance(default_range, (tuple, list)) or len(default_range) != 2:
            raise TypeError(f"{type(source).__name__}.time_range returned {default_range!r}, expected "
                            "(begin_ns, end_ns)")
        default_begin, default_end = default_range
        begin_ns = default_begin if begin_ns is None else begin_ns
        end_ns = default_end if end_ns is None else end_ns
    if begin_ns < 0:
        raise InvalidTimeError(_before_epoch("the process's start" if not given[0] else "begin", begin_ns))
    if begin_ns > end_ns:
        # One of them is the process's own (it was not given): say which.
        begin_text = f"begin ({ns_to_iso(begin_ns)})" if given[0] else f"the process's start ({ns_to_iso(begin_ns)})"
        end_text = f"end ({ns_to_iso(end_ns)})" if given[1] else f"the process's end ({ns_to_iso(end_ns)})"
        raise InvalidTimeError(f"{begin_text} is after {end_text}")
    threads = list(_source_result(source.threads(info.process_id, begin_ns, end_ns), (list, tuple), source,
                                  "threads", "a list of ThreadInfo"))
    for thread in threads:
        if not isinstance(thread, ThreadInfo):
            raise TypeError(f"{type(source).__name__}.threads returned a list holding {type(thread).__name__}, "
                            "expected ThreadInfo items")
    # A stream listed twice is one thread, the first listing's (as the lake reads its streams
    # table); the library refuses a thread list that repeats a stream.
    seen = set()
    threads = [t for t in threads if not (t.stream_id in seen or seen.add(t.stream_id))]
    return Plan(info.process_id, info.exe, begin_ns, end_ns, threads, span_types, async_layout, bool(logs),
                bool(metrics), bool(span_args), bool(flows), given != (False, False))


# Threads without thread spans named one note each; past these, one note counts the rest
# (a process of 50,000 streams may have thousands without spans).
THREAD_NOTES = 20


def _generate(plan: Plan, source: Source, writer: PerfettoWriter, progress: Progress,
              group_rows: Optional[int] = None, finisher=None) -> Iterator[Optional[TraceSummary]]:
    """Runs a generation step by step: yields None after each library call (so a chunk
    consumer can hand over what was produced), then the summary.

    With `group_rows`, a thread's batches go to the library in groups of about that many
    rows, which bounds what one call produces. `finisher(finish)`, a generator, runs the
    last call (which writes every async span) and yields None as its output comes.
    """
    started = time.monotonic()
    progress.start(len(plan.threads), plan.process_id)
    generator = _Generator(writer, plan.exe, plan.threads, plan.span_types, plan.begin_ns, plan.end_ns,
                           plan.async_layout, plan.span_args, plan.flows)
    # The tables read after the threads, in order; each is opened ahead (Source.open_ahead:
    # the query sent, the first batches decoded) while the one before it is read.
    later = ([("async_events", "async spans", None)] if plan.span_types != "thread" else [])
    later += [(kind, phase, add) for wanted, kind, phase, add in (
        (plan.logs, "log_entries", "log entries", generator.add_log_entries),
        (plan.metrics, "measures", "measures", generator.add_measures)) if wanted]
    upcoming = None

    def open_next(i: int):
        kind = later[i][0] if i < len(later) else None
        return source.open_ahead(kind, plan.process_id, plan.begin_ns, plan.end_ns) if kind else None
    try:
        yield None
        if plan.span_types != "async":
            last = len(plan.threads) - 1
            missing = 0
            for i, (thread, reader) in enumerate(source.iter_thread_spans(plan.threads, plan.begin_ns, plan.end_ns)):
                if i == last:
                    upcoming = open_next(0)
                reader = _counting(_reader(reader, source, "thread_spans"), progress.rows)
                for group in (_batch_groups(reader, group_rows) if group_rows else [reader]):
                    generator.add_thread_spans(thread.stream_id, group)
                    yield None
                # Asked only of a thread that gave no row (a lake reads file footers to tell).
                if (generator.thread_rows(thread.stream_id) == 0
                        and source.has_no_data("thread_spans", thread.stream_id)):
                    missing += 1
                    if missing <= THREAD_NOTES:
                        progress.note(f"thread {thread.name} (stream {thread.stream_id}) has no thread spans in "
                                      f"{source.description}: its track is empty")
                progress.thread_done()
            if missing > THREAD_NOTES:
                more = missing - THREAD_NOTES
                progress.note(f"{more:,} more threads have no thread spans in {source.description}: their tracks "
                              "are empty" if more > 1 else f"1 more thread has no thread spans in "
                              f"{source.description}: its track is empty")
        if upcoming is None:
            upcoming = open_next(0)
        for i, (kind, phase, add) in enumerate(later):
            current, upcoming = upcoming, None
            progress.phase(phase)
            if kind == "async_events":
                if source.has_no_data("async_events", plan.process_id):
                    progress.note(f"process {plan.process_id} has no async events in {source.description}: "
                                  "the trace has no async spans")
                reader = _reader(current(), source, "async_events")
                upcoming = open_next(i + 1)
                generator.add_async_events(reader)
                continue
            if source.has_no_data(kind, plan.process_id):  # asked for (--logs, --metrics): say why none came
                what = "log entries" if kind == "log_entries" else "measures"
                progress.note(f"process {plan.process_id} has no {what} in {source.description}: the trace has no "
                              + ("Logs track" if kind == "log_entries" else "counter tracks"))
            reader = _counting(_reader(current(), source, kind), progress.rows)
            upcoming = open_next(i + 1)
            for group in (_batch_groups(reader, group_rows) if group_rows else [reader]):
                add(group)
                yield None
        stats = (yield from finisher(generator.finish)) if finisher is not None else generator.finish()
        _note_range_outside_the_process(plan, source, stats, progress)
    finally:
        generator.close()
        progress.close()
    yield TraceSummary(
        process_id=plan.process_id, exe=plan.exe, begin_ns=plan.begin_ns, end_ns=plan.end_ns,
        threads=len(plan.threads), thread_spans=stats["thread_spans"], async_spans=stats["async_spans"],
        async_tracks=stats["async_tracks"] if plan.span_types != "thread" else 0,
        matcher={k: v for k, v in stats.items() if k.startswith("async_") and k not in ("async_spans", "async_tracks")},
        logs=plan.logs, metrics=plan.metrics, log_entries=stats["log_entries"], measures=stats["measures"],
        counter_tracks=stats["counter_tracks"],
        seconds=time.monotonic() - started)


def _note_range_outside_the_process(plan: Plan, source: Source, stats: Dict[str, int], progress: Progress) -> None:
    """A note when the trace of a range given is empty and the range misses the process's own
    (a mistyped date, a time zone off by hours, `now - 5 minutes` for an old process): the
    process's range, to pick from. Only for an empty trace, so the extra query costs nothing
    otherwise."""
    if not plan.range_given or any(stats.get(k) for k in ("thread_spans", "async_spans", "log_entries", "measures")):
        return
    try:
        begin, end = source.time_range(source.process_info(plan.process_id))
    except Exception:  # the note is a courtesy: the trace is written whatever its answer
        return
    if plan.end_ns < begin or plan.begin_ns > end:
        progress.note(f"nothing in {ns_to_iso(plan.begin_ns)} .. {ns_to_iso(plan.end_ns)}: the process's "
                      f"telemetry runs from {ns_to_iso(begin)} to {ns_to_iso(end)}")


def _server_source(source: Source):
    from .flightsql import FlightSQLSource
    if not isinstance(source, FlightSQLSource):
        raise RequestError("server-side generation needs a micromegas analytics server (a client or --uri), "
                           f"not {source.description}")
    return source


def _check_server_side(plan: Plan) -> None:
    if plan.logs or plan.metrics:
        raise RequestError("logs and metrics are not part of server-side generation (micromegas' "
                           "perfetto_trace_chunks has spans only): generate client-side")


def _server_chunks(plan: Plan, source: Source, progress: Progress) -> Iterator[bytes]:
    progress.phase("server-side trace")
    try:
        for chunk in _server_source(source).trace_chunks(plan.process_id, plan.span_types, plan.begin_ns,
                                                         plan.end_ns):
            progress.bytes(len(chunk))
            yield chunk
    finally:
        progress.close()


def _server_summary(plan: Plan, chunks: int, size: int, started: float) -> TraceSummary:
    return TraceSummary(process_id=plan.process_id, exe=plan.exe, begin_ns=plan.begin_ns, end_ns=plan.end_ns,
                        threads=len(plan.threads), thread_spans=-1, async_spans=-1, async_tracks=-1,
                        bytes=size, seconds=time.monotonic() - started, chunks=chunks)


def _process_id(value, source) -> str:
    """The process id as text: a `uuid.UUID` (as a DataFrame of UUID columns holds it) is its
    canonical lower-case text, as micromegas writes ids. Anything else but a non-empty string is
    a RequestError in one line (a pandas Series was shown whole, over several lines), saying
    when the source and the process id look swapped."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and value:
        return value
    shown = repr(value)
    if "\n" in shown or len(shown) > 80:  # a pandas Series, a DataFrame, a list of ids
        shown = f"a {type(value).__name__}"
        if getattr(value, "ndim", None) == 1 and len(value) == 1:
            shown += " of one value (take it out: .iloc[0])"
    hint = ""
    if isinstance(source, (str, os.PathLike, uuid.UUID)) and not os.path.isdir(str(source)) and (
            isinstance(value, Source) or callable(getattr(value, "query_stream", None))):
        hint = (": the source and the process id look swapped; the source (client or lake folder) comes first: "
                "write_process_trace(client, process_id, begin, end, trace_filepath)")
    raise RequestError(f"process id must be a non-empty string or uuid.UUID, got {shown}{hint}")


@contextlib.contextmanager
def _planned(source: SourceLike, process_id: str, span_types: str, begin: TimeLike, end: TimeLike, server_side: bool,
             async_layout: str, logs: bool, metrics: bool, span_args: bool, flows: bool
             ) -> Iterator[Tuple[Source, Plan]]:
    """The source (closed on exit if opened here) and the trace's plan, checked for the
    server-side path: what both entry points start with."""
    if server_side and async_layout is not None and async_layout != "micromegas":
        # The server writes its own one-track layout; lanes would be silently not what was asked.
        raise RequestError(f"server_side=True writes the micromegas layout: async_layout={async_layout!r} needs the "
                           "client-side generation (server_side=False)")
    layout = "micromegas" if server_side else "lanes" if async_layout is None else async_layout
    process_id = _process_id(process_id, source)  # before the source: a swapped pair named as such
    source, owned = open_source(source)
    try:
        plan = plan_trace(source, process_id, span_types, begin, end, layout, logs, metrics, span_args, flows)
        if server_side:
            _check_server_side(plan)
        yield source, plan
    finally:
        if owned:
            source.close()


def generate_trace_chunks(source: SourceLike, process_id: str, begin: TimeLike = None, end: TimeLike = None,
                          span_types: str = "both", *, async_layout: Optional[str] = None, server_side: bool = False,
                          chunk_size: int = DEFAULT_CHUNK_SIZE, progress: Optional[Progress] = None,
                          logs: bool = False, metrics: bool = False, span_args: bool = True, flows: bool = True
                          ) -> Iterator[Tuple[int, bytes]]:
    """Yields a process's trace as `(chunk_id, chunk_data)`: ids 0, 1, 2..., each chunk whole
    packets (it parses alone as a trace) of at least `chunk_size` bytes but the last (0: the
    default, 1 MiB).

    `begin`/`end` are datetimes (pandas Timestamps to the nanosecond; naive ones are UTC),
    numpy datetime64 or pyarrow timestamp scalars, ISO 8601 text or integer nanoseconds since
    the epoch (numpy integers too); None means the process's whole range (a range given that
    misses the process's own gives an empty trace and a NoDataWarning naming the process's
    range). `process_id` may be a `uuid.UUID`; `client=` is another name for `source`.
    With `server_side`, the server's own chunks are passed on as they come (micromegas layout; they may split packets: only their concatenation is
    a trace). `async_layout`: "lanes" (None, the default, client-side), "thread-lanes" or
    "micromegas"; server-side only "micromegas". Chunks are yielded as they are produced: memory stays bounded. `logs` adds the
    process's log entries (instant events on a `Logs` track), `metrics` its measures (one
    counter track per metric); neither is available server-side. In the lanes layouts each
    async slice carries its span ids as args (`span_args=False`: not) and a flow arrow joins
    each span to its parent (`flows=False`: not).
    """
    if isinstance(span_types, os.PathLike) or (isinstance(span_types, str) and span_types not in SPAN_TYPES
                                               and span_types.endswith(".perfetto")):
        raise RequestError(f"span_types {os.fspath(span_types)!r} looks like a file name: generate_trace_chunks "
                           "yields the trace's chunks and writes no file; write_process_trace(source, process_id, "
                           "begin, end, trace_filepath) writes one")
    # ArgumentError, a RequestError; 0 is the default, as for write_process_trace
    chunk_size = _args.int_in(chunk_size, 0, (1 << 63) - 1, "chunk_size") or DEFAULT_CHUNK_SIZE
    progress = _progress(progress)
    with _planned(source, process_id, span_types, begin, end, server_side, async_layout, logs, metrics, span_args,
                  flows) as (source, plan):
        if server_side:
            yield from enumerate(_server_chunks(plan, source, progress))
            return
        pending: List[Tuple[int, bytes]] = []
        handoff = _Handoff(pending)
        with PerfettoWriter(plan.process_id, handoff.sink, chunk_size=chunk_size) as writer:
            for _ in _generate(plan, source, writer, progress, group_rows=1 << 16, finisher=handoff.finish):
                yield from pending
                pending.clear()
        yield from pending  # the last chunk, flushed when the writer closed


class _ChunksAbandoned(Exception):
    """Raised by the chunk sink once the consumer of the chunks has gone: stops the library."""


_FINISHED = object()


class _Handoff:
    """The chunks of a generation for its consumer (`generate_trace_chunks`). Chunks go to
    `pending`, except during the last library call (`finish`, which writes every async span
    at once): that call runs on a thread of its own and hands its chunks over through a small
    queue, as they come, so the async part of a trace is never held whole."""

    def __init__(self, pending: List[Tuple[int, bytes]]):
        self._pending = pending
        self._queue: Optional[queue.Queue] = None
        self._abandoned = False

    def sink(self, chunk_id: int, data: bytes) -> None:
        if self._queue is None:
            self._pending.append((chunk_id, data))
            return
        if not self._put(self._queue, (chunk_id, data)):
            raise _ChunksAbandoned()

    def _put(self, chunks: queue.Queue, item) -> bool:
        """Puts `item`, waiting while the consumer is behind (at most 2 ahead); False, not put,
        once the consumer has gone (interrupted while draining the queue, it stops draining)."""
        while not self._abandoned:
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def finish(self, call: Callable[[], Dict[str, int]]) -> Iterator[None]:
        outcome: Dict[str, object] = {}
        chunks = self._queue = queue.Queue(maxsize=2)

        def run() -> None:
            try:
                outcome["stats"] = call()
            except BaseException as e:  # raised on the consumer's thread
                outcome["error"] = e
            finally:  # the marker the consumer waits for; a consumer gone waits in join() instead
                self._put(chunks, _FINISHED)

        worker = threading.Thread(target=run, name="micromegas-finish", daemon=True)
        worker.start()
        try:
            while True:
                item = chunks.get()
                if item is _FINISHED:
                    break
                self._pending.append(item)
                yield None
        except BaseException as e:  # the consumer stopped (closed the generator, Ctrl-C): stop the library
            self._abandoned = True
            while worker.is_alive():  # unblocks the sink; its next chunk stops the call
                try:
                    chunks.get(timeout=0.1)
                except queue.Empty:
                    pass
            raise errors.interruption_in(e) or e
        finally:
            worker.join()
            self._queue = None
        error = outcome.get("error")
        if error is not None:
            raise error
        return outcome["stats"]


_PROGRESS_METHODS = ("start", "rows", "thread_done", "phase", "bytes", "note", "close")


def _progress(progress: Optional[Progress]) -> Progress:
    """`progress`, or the default that reports nothing; an object without Progress's methods is
    a TypeError here (an int was an AttributeError once the generation had begun)."""
    if progress is None:
        return Progress()
    missing = [m for m in _PROGRESS_METHODS if not callable(getattr(progress, m, None))]
    if missing:
        raise TypeError(f"progress must be a micromegas_perfetto.Progress (subclass it), not "
                        f"{type(progress).__name__} (it lacks {', '.join(missing)})")
    return progress


def _write_all(out, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(out.fd, view):]
        except InterruptedError:
            continue
        except OSError as e:
            raise output_write_error(e.errno, out.shown) from e


def _client_keyword(function):
    """Lets `function` take its `source` by the official function's keyword, `client=`: a
    call written for `micromegas.perfetto.write_process_trace(client=..., process_id=...,
    begin=..., end=..., trace_filepath=...)` works with the import changed (it was
    "unexpected keyword argument 'client'"). The signature shown is `function`'s."""
    # Its parameter names, read from its code; difflib is imported only for a mistyped keyword,
    # not at every start of the command line.
    code = function.__code__
    names = list(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]) + ["client"]

    @functools.wraps(function)
    def call(*args, **kwargs):
        for name in kwargs:
            if name not in names:  # Python's own message offers no near name (3.11 and before)
                import difflib
                near = difflib.get_close_matches(name, names, n=1)
                raise TypeError(f"{function.__name__}() got an unexpected keyword argument {name!r}"
                                + (f" (did you mean {near[0]!r}?)" if near else ""))
        if "client" in kwargs:
            if args or "source" in kwargs:
                raise TypeError(f"{function.__name__}() got the source twice (client is another name for source)")
            kwargs["source"] = kwargs.pop("client")
        return function(*args, **kwargs)
    return call


generate_trace_chunks = _client_keyword(generate_trace_chunks)


@_client_keyword
def write_process_trace(source: SourceLike, process_id: str, begin: TimeLike, end: TimeLike,
                        trace_filepath: Union[str, os.PathLike], span_types: str = "both", *,
                        async_layout: Optional[str] = None, server_side: bool = False, chunk_size: int = 0,
                        progress: Optional[Progress] = None, logs: bool = False, metrics: bool = False,
                        span_args: bool = True, flows: bool = True) -> TraceSummary:
    """Writes a process's trace to `trace_filepath` and returns a summary.

    Same parameters as `micromegas.perfetto.write_process_trace` (`client=` is accepted as the
    keyword for `source`, as the official function names it; `process_id` may be a
    `uuid.UUID`); `begin`/`end` may be None for the process's whole range, and a range given
    that misses the process's own warns (NoDataWarning) with the process's range.
    `trace_filepath` "-" is standard output; a FIFO or a device is written into; a file appears only when complete (see `output.atomic_output`):
    on any error or interruption no file is left behind. Writing failures raise
    OutputWriteError ("disk full writing t.perfetto"). `chunk_size`: the file is written in
    pieces of at least that many bytes of whole packets (0: the default, 1 MiB).
    `logs`, `metrics`, `span_args` and `flows`: see generate_trace_chunks.
    """
    if isinstance(trace_filepath, str) and trace_filepath in SPAN_TYPES and span_types not in SPAN_TYPES:
        # The order of micromegas' write_process_trace_from_chunks: nothing named "both" is written
        raise RequestError(f"trace_filepath {trace_filepath!r} and span_types {span_types!r} look swapped: "
                           "write_process_trace takes (client, process_id, begin, end, trace_filepath, span_types) "
                           "(micromegas' write_process_trace_from_chunks takes span_types before trace_filepath)")
    if trace_filepath is not None and not isinstance(trace_filepath, (str, bytes, os.PathLike)):
        # os.fspath's "expected str, bytes or os.PathLike object, not BytesIO" named no parameter
        raise TypeError(f"trace_filepath must be a file name (str or os.PathLike; \"-\" for standard output), not "
                        f"{type(trace_filepath).__name__}: for the trace in memory, "
                        "b\"\".join(data for _, data in generate_trace_chunks(...))")
    if trace_filepath is None or os.fspath(trace_filepath) == "":
        raise OutputError("the output file name is empty")
    chunk_size = _args.size(chunk_size, "chunk_size")
    progress = _progress(progress)
    started = time.monotonic()
    with _planned(source, process_id, span_types, begin, end, server_side, async_layout, logs, metrics, span_args,
                  flows) as (source, plan):
        holds = getattr(source, "holds", None)
        shown = os.fsdecode(trace_filepath)
        if shown != "-" and callable(holds) and holds(shown):
            raise OutputError(f"output {shown} is a file of the {source.description} it reads: "
                              "writing the trace there would destroy its input; write it elsewhere")
        with atomic_output(trace_filepath) as out:
            if server_side:
                chunks = 0
                for chunk in _server_chunks(plan, source, progress):
                    _write_all(out, chunk)
                    chunks += 1
                summary = _server_summary(plan, chunks, 0, started)
            else:
                try:
                    with PerfettoWriter(plan.process_id, out.fd, chunk_size=chunk_size) as writer:
                        *_, summary = _generate(plan, source, writer, progress)
                except WriteError as e:
                    raise output_write_error(e.errno, out.shown) from e
        summary.bytes = out.size
        summary.filename = out.shown
        summary.seconds = time.monotonic() - started
        return summary
