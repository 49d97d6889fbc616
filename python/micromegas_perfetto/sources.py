"""Where telemetry comes from: the `Source` interface trace generation reads through, and the
column contract every source's tables follow (docs/lake-format.md).

A source answers questions about a process: its description, its threads, each thread's
spans, its async events, and (optionally) its log entries and measures, the last four as
Arrow record-batch readers with the columns of the micromegas views `thread_spans`,
`async_events`, `log_entries` and `measures`.
"""
import queue
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pyarrow as pa

from .errors import DataError, SchemaError, interruption_in

# -- the column contract ----------------------------------------------------------------------

THREAD_SPAN_COLUMNS = ["begin", "end", "name", "target", "filename", "line"]
ASYNC_EVENT_COLUMNS = ["stream_id", "time", "event_type", "span_id", "parent_span_id", "depth", "name", "filename",
                       "target", "line"]

# Required columns and their kind (optional columns, such as async `stream_id` and `depth`, are
# read when present).
THREAD_SPAN_TYPES = {"begin": "time", "end": "time", "name": "string", "target": "string", "filename": "string",
                     "line": "integer"}
ASYNC_EVENT_TYPES = {"time": "time", "event_type": "string", "span_id": "integer", "parent_span_id": "integer",
                     "name": "string", "filename": "string", "target": "string", "line": "integer"}

# Logs and metrics (micromegas' `log_entries` and `measures` views): the columns read.
LOG_ENTRY_COLUMNS = ["time", "target", "level", "msg"]
LOG_ENTRY_TYPES = {"time": "time", "target": "string", "level": "integer", "msg": "string"}
MEASURE_COLUMNS = ["time", "name", "unit", "value"]
MEASURE_TYPES = {"time": "time", "name": "string", "unit": "string", "value": "float64"}


def _is_time(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or pa.types.is_int64(t)


# -- time columns (docs/lake-format.md, "Types accepted everywhere") --------------------------

NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
TIME_NS = pa.timestamp("ns", tz="UTC")


def ns_per_unit(t: pa.DataType) -> int:
    """Nanoseconds in one raw value of a time column: its unit for a timestamp (any zone or
    none: the instant is UTC either way), 1 for int64 nanoseconds."""
    return NS_PER_UNIT[t.unit] if pa.types.is_timestamp(t) else 1


def time_ns(values, column: str, where: str) -> pa.Array:
    """The values of a time column (timestamp of any unit and zone, or int64 ns) as int64
    nanoseconds since the epoch, converted exactly; a value that does not fit in int64 ns is
    a DataError naming `where` and the column."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_null(values.type):  # a column of None only, as pandas and polars type it: no times
        return pa.nulls(len(values), pa.int64())
    if not _is_time(values.type):
        raise SchemaError(f"{where}: column '{column}' has type {values.type}, expected a timestamp or int64")
    # A timestamp's raw values, in its unit: a view of the same buffers (a cast would import
    # pyarrow.compute, which costs startup time).
    raw = values if values.type == pa.int64() else pa.Array.from_buffers(
        pa.int64(), len(values), values.buffers(), null_count=values.null_count, offset=values.offset)
    factor = ns_per_unit(values.type)
    if factor == 1:
        return raw
    import pyarrow.compute as pc  # imported only when a unit other than ns is met (startup time)

    try:
        return pc.multiply_checked(raw, pa.scalar(factor, pa.int64()))
    except pa.ArrowInvalid:
        raise DataError(f"{where}: column '{column}' has a value outside the range of int64 nanoseconds "
                        "(years 1678 to 2262)") from None


def is_string(t: pa.DataType) -> bool:
    """A text column: utf8, large_utf8 or string_view, or a dictionary of any of them."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    is_view = getattr(pa.types, "is_string_view", lambda _: False)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or is_view(t)


def is_uuid(t: pa.DataType) -> bool:
    """A UUID column as DuckDB or pyarrow write one (Parquet's UUID type): Arrow's
    `arrow.uuid` extension type, or the 16-byte fixed-size binary it is stored as."""
    if getattr(t, "extension_name", None) == "arrow.uuid":
        return True
    return pa.types.is_fixed_size_binary(t) and t.byte_width == 16


def uuid_text(values, dictionary: bool = False) -> pa.Array:
    """A UUID column's values as their canonical text (lower-case 8-4-4-4-12 hex, as
    micromegas writes ids), nulls kept; `dictionary`: dictionary-encoded, each distinct id
    formatted once (a large table of events has few distinct stream ids)."""
    import uuid

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    storage = values.storage if isinstance(values, pa.ExtensionArray) else values
    if not dictionary:
        return pa.array([None if b is None else str(uuid.UUID(bytes=b)) for b in storage.to_pylist()], pa.string())
    encoded = storage.dictionary_encode()
    texts = pa.array([str(uuid.UUID(bytes=b)) for b in encoded.dictionary.to_pylist()], pa.string())
    return pa.DictionaryArray.from_arrays(encoded.indices, texts)


def _is_id(t: pa.DataType) -> bool:
    return is_string(t) or is_uuid(t)


_KINDS = {"time": (_is_time, "timestamp or int64"), "string": (is_string, "string, string_view or dictionary<string>"),
          "id": (_is_id, "string, string_view, dictionary<string> or uuid"),
          "integer": (pa.types.is_integer, "an integer type"), "float64": (pa.types.is_float64, "float64")}
_EMPTY_TYPES = {"time": pa.timestamp("ns", tz="UTC"), "string": pa.string(), "id": pa.string(), "integer": pa.int64(),
                "float64": pa.float64()}


def check_schema(schema: pa.Schema, required: Dict[str, str], where: str) -> None:
    """Raises SchemaError naming `where` and the column when a required column is missing or mistyped."""
    for name, kind in required.items():
        index = schema.get_field_index(name)
        if index < 0:
            raise SchemaError(f"{where}: missing column '{name}' (columns: {', '.join(schema.names)})")
        if kind not in _KINDS:
            raise ValueError(f"unknown column kind {kind!r} for '{name}' (one of {', '.join(_KINDS)})")
        test, expected = _KINDS[kind]
        if not test(schema.field(index).type):
            raise SchemaError(f"{where}: column '{name}' has type {schema.field(index).type}, expected {expected}")


def empty_reader(columns: Dict[str, str]) -> pa.RecordBatchReader:
    """A reader with no rows and the given columns (a thread or process with no data)."""
    schema = pa.schema([(name, _EMPTY_TYPES[kind]) for name, kind in columns.items()])
    return pa.RecordBatchReader.from_batches(schema, [])


# -- processes and threads --------------------------------------------------------------------


def check_limit(limit) -> Optional[int]:
    """`processes(limit=...)`: None (all) or an int >= 0 (a negative one dropped rows from
    the end of a lake's list, and was a SQL error on a server; a bool was a number)."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int or None, not {type(limit).__name__}")
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    return limit


@dataclass
class ProcessInfo:
    process_id: str
    exe: str
    start_ns: Optional[int] = None
    end_ns: Optional[int] = None


@dataclass
class ThreadInfo:
    stream_id: str
    thread_id: int
    name: str


_RUST_I64 = re.compile(r"[+-]?[0-9]+\Z")


def parse_thread_id(text: Optional[str]) -> int:
    """`thread-id` as micromegas reads it: Rust's `str::parse::<i64>` (an optional sign, ASCII
    digits only, within i64; anything else is 0), then truncated to int32 like `as i32`."""
    if not text or not _RUST_I64.match(text):
        return 0
    # Leading zeros are digits Rust accepts ("007" is 7); past them, more than 19 digits is
    # out of the i64 range (and Python's int() refuses a text of over 4,300 digits).
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 19:
        return 0
    value = -int(digits) if text[0] == "-" else int(digits)
    if not -(1 << 63) <= value < (1 << 63):
        return 0
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


def thread_display(stream_id: str, thread_name: Optional[str], thread_id: Optional[str]) -> ThreadInfo:
    """micromegas' thread naming (`get_process_thread_list`): a missing property is ""; the
    shown id is `thread-id`, else the stream id; the name is "<thread-name>-<shown id>", or the
    shown id alone without a thread name."""
    name = thread_name or ""
    shown = thread_id or stream_id
    return ThreadInfo(stream_id=stream_id, thread_id=parse_thread_id(thread_id),
                      name=f"{name}-{shown}" if name else shown)


def process_id_hint(process_id: str, known: List[str]) -> str:
    """What to add to "process X not found" when `known` (the ids there are) holds what was
    meant: the same id in another case, within braces or as a `urn:uuid:`, or the start of
    one or more ids (as a listing cut it, or as git's short ids are typed). Empty otherwise."""
    wanted = process_id.strip().lower()
    if wanted.startswith("urn:uuid:"):
        wanted = wanted[len("urn:uuid:"):]
    if wanted.startswith("{") and wanted.endswith("}"):
        wanted = wanted[1:-1]
    if not wanted:
        return ""
    same = [k for k in known if k.lower() == wanted]
    if same:
        return f" (did you mean {same[0]}?)"
    starting = [k for k in known if k.lower().startswith(wanted)] if len(wanted) >= 4 else []
    if len(starting) == 1:
        return f" (did you mean {starting[0]}? give the whole process id)"
    if starting:
        shown = ", ".join(starting[:3]) + (", ..." if len(starting) > 3 else "")
        return f" ({len(starting)} process ids start with it: {shown}; give the whole id)"
    return ""


def _not_implemented(source, method: str) -> NotImplementedError:
    return NotImplementedError(f"{type(source).__name__} does not define {method}(): a Source subclass defines "
                               "process_info, time_range, threads, thread_spans and async_events")


class Source:
    """Base class of telemetry sources: a subclass defines `process_info`, `time_range`,
    `threads`, `thread_spans` and `async_events` (and may define `log_entries`, `measures`,
    `has_no_data`, `close`). Tables are pyarrow RecordBatchReaders (a Table works too) with
    the columns of docs/lake-format.md."""

    description = "source"

    def process_info(self, process_id: str) -> ProcessInfo:
        """The process's description; raises ProcessNotFoundError for an unknown process."""
        raise _not_implemented(self, "process_info")

    def time_range(self, info: ProcessInfo) -> Tuple[int, int]:
        """The process's whole time range, in ns: the default trace range."""
        raise _not_implemented(self, "time_range")

    def threads(self, process_id: str, begin_ns: int, end_ns: int) -> List[ThreadInfo]:
        """The process's thread streams, ordered by stream id, with display names."""
        raise _not_implemented(self, "threads")

    def thread_spans(self, stream_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        """Spans of one thread that overlap [begin, end]: begin, end, name, target, filename, line."""
        raise _not_implemented(self, "thread_spans")

    def async_events(self, process_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        """Async events of the process with time in [begin, end]."""
        raise _not_implemented(self, "async_events")

    def has_no_data(self, kind: str, key: str) -> bool:
        """True when the source knows it holds no data at all for table `kind`
        ("thread_spans", "async_events", ...) of `key` (a stream or process id), such as a lake
        without the file; False when it has some or cannot tell (a server). For thread spans it
        is asked only of a thread that gave no row."""
        return False

    def holds(self, path) -> bool:
        """True when a file written at `path` (symlinks resolved) would replace or land among
        the data the source reads, such as a lake's own Parquet files: the trace would destroy
        its input. False when it cannot (a server)."""
        return False

    def log_entries(self, process_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        """Log entries of the process with time in [begin, end]: time, target, level, msg.
        A source without logs has none."""
        return empty_reader(LOG_ENTRY_TYPES)

    def measures(self, process_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        """Measures (metric values) of the process with time in [begin, end]: time, name,
        unit, value. A source without metrics has none."""
        return empty_reader(MEASURE_TYPES)

    def iter_thread_spans(self, threads: List[ThreadInfo], begin_ns: int, end_ns: int
                          ) -> Iterator[Tuple[ThreadInfo, pa.RecordBatchReader]]:
        """Each thread with its spans reader, in order. Sources may prefetch the next one."""
        for thread in threads:
            yield thread, self.thread_spans(thread.stream_id, begin_ns, end_ns)

    def open_ahead(self, kind: str, key: str, begin_ns: int, end_ns: int) -> Callable[[], pa.RecordBatchReader]:
        """Table `kind` ("thread_spans", "async_events", "log_entries" or "measures") of `key`
        (a stream or process id), to be read after the current one: a callable that returns
        its reader. A source may start on it now (send the query, decode its first batches:
        bounded), so it is ready when asked; an error opening it is raised by the callable,
        where it would have been without this. Here: opened when asked."""
        read = self._reads()[kind]
        return lambda: read(key, begin_ns, end_ns)

    def _reads(self) -> Dict[str, Callable[[str, int, int], pa.RecordBatchReader]]:
        return {"thread_spans": self.thread_spans, "async_events": self.async_events,
                "log_entries": self.log_entries, "measures": self.measures}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def opened_now(call: Callable[[], pa.RecordBatchReader]) -> Callable[[], pa.RecordBatchReader]:
    """Runs `call()` now; returns a callable giving its result, or raising the Exception it
    raised (an open_ahead that opens at once but reports errors where they belong)."""
    try:
        reader = call()
    except Exception as e:  # raised when the reader is asked for
        error = e

        def fail() -> pa.RecordBatchReader:
            raise error
        return fail
    return lambda: reader


def read_ahead(batches: Iterator[pa.RecordBatch], depth: int = 2,
               on_stop: Optional[Callable[[], None]] = None, group_rows: int = 0) -> "ReadAhead":
    """`batches`, produced on another thread up to `depth` batches ahead of the consumer
    (pyarrow releases the GIL while decoding Parquet or reading a Flight stream, so that
    overlaps the library's writing; memory stays bounded). An error of the producer is
    raised at the batch it stopped at, as it was raised (type, message, cause); a consumer
    that stops early (or drops the iterator unread) stops the producer, calling `on_stop`
    (e.g. to cancel a stream the producer may be blocked on) once the consumer is done. The
    producer starts with the first batch asked for, or before: `start()`, `start_after()`;
    a consumer that stops early waits for the producer to end.
    With `group_rows`, small batches (a Flight stream's, often 1,000 rows) are handed over
    in groups of about that many rows (GROUP_BATCHES at most), not one by one: `depth`
    groups ahead. Each hand-over between the threads costs some 15 microseconds."""
    return ReadAhead(batches, depth, on_stop, group_rows)


GROUP_BATCHES = 64  # batches handed over together at most (read_ahead's group_rows)


_DONE = object()
# How long a consumer that stops early waits for the producer to stop (it ends within one
# batch's decode, or at once when `on_stop` cancels the stream it is blocked on).
STOP_TIMEOUT = 10.0


class _Production:
    """What a ReadAhead shares with its producer thread (not the ReadAhead itself, so
    dropping that stops the thread): the queue, the stop flag, and the read-ahead to start
    once this one has decoded everything (`then`, a weak reference)."""

    def __init__(self, depth: int):
        self.items: "queue.Queue" = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.decoded = False
        self.then = None

    def all_decoded(self) -> None:
        with self.lock:
            self.decoded = True
            then, self.then = self.then, None
        follower = then() if then is not None else None
        if follower is not None:
            follower.start()


def _produce(batches: Iterator[pa.RecordBatch], state: _Production, group_rows: int) -> None:
    """The producer thread of a ReadAhead: hands over lists of batches (one batch each
    without `group_rows`), then `_DONE` or the exception that stopped it."""
    def put(item) -> bool:
        while not state.stop.is_set():
            try:
                state.items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    group: List[pa.RecordBatch] = []
    rows = 0
    try:
        for batch in batches:
            group.append(batch)
            rows += batch.num_rows
            if rows >= group_rows or len(group) >= GROUP_BATCHES:
                if not put((group, None)):
                    return
                group, rows = [], 0
        last = (_DONE, None)
    except BaseException as e:  # handed to the consumer, raised there (after the batches before it)
        last = (None, e)
    try:
        state.all_decoded()
    except BaseException:  # the next table's producer could not start (no thread left): it
        pass  # starts when its first batch is asked for, and fails there if it still cannot
    if group and not put((group, None)):
        return
    put(last)


class ReadAhead:
    """The iterator `read_ahead` returns (see there); `close()` stops the producer."""

    def __init__(self, batches: Iterator[pa.RecordBatch], depth: int, on_stop: Optional[Callable[[], None]],
                 group_rows: int = 0):
        self._batches: Optional[Iterator[pa.RecordBatch]] = batches
        self._state = _Production(depth)
        self._on_stop = on_stop
        self._group_rows = group_rows
        self._group: List[pa.RecordBatch] = []  # handed over, not yet given to the consumer (reversed)
        self._producer = None
        self._closed = False

    def start(self) -> None:
        """Starts the producer (from any thread; once)."""
        with self._state.lock:
            if self._producer is not None or self._closed:
                return
            self._producer = threading.Thread(target=_produce, args=(self._batches, self._state, self._group_rows),
                                              name="micromegas-read-ahead", daemon=True)
            self._batches = None
            self._producer.start()

    def start_after(self, previous: Optional["ReadAhead"]) -> None:
        """Starts the producer once `previous` has decoded all its batches (now if it has,
        or if there is none): one read after the other, so no more than one table's batches
        are read ahead at a time (memory stays flat)."""
        if previous is not None:
            with previous._state.lock:
                if not previous._state.decoded and not previous._closed:
                    previous._state.then = weakref.ref(self)
                    return
        self.start()

    def __iter__(self) -> "ReadAhead":
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._group:  # the rest of a group handed over
            return self._group.pop()
        if self._closed:
            raise StopIteration
        self.start()
        try:
            group, error = self._state.items.get()
        except BaseException as e:  # interrupted while waiting
            self.close()
            raise interruption_in(e) or e
        if error is not None:
            self.close()
            raise error
        if group is _DONE:
            self.close()
            raise StopIteration
        group.reverse()
        self._group = group
        return self._group.pop()

    def close(self) -> None:
        """Stops the producer and waits for it to end (bounded): calls `on_stop` first when
        it is still running (it may be blocked on a stream)."""
        if self._closed:
            return
        with self._state.lock:  # a producer starting it now (start_after) sees it closed
            self._closed = True
        self._group = []
        self._state.stop.set()
        producer = self._producer
        if producer is not None and producer.is_alive() and producer is not threading.current_thread():
            if self._on_stop is not None:
                self._on_stop()
            # Not left decoding on its own: a daemon thread still inside pyarrow when the
            # interpreter finalizes can crash it (seen as SIGSEGV after an interrupted run).
            producer.join(STOP_TIMEOUT)

    def __del__(self):
        self.close()


class Pipeline:
    """The tables a source reads ahead, read one after the other: each read-ahead added
    starts when the one added before it has produced everything (ReadAhead.start_after),
    or when its first batch is asked for. (Thread-safe: reads may be opened on threads.)"""

    def __init__(self):
        self._lock = threading.Lock()
        self._last = None  # a weak reference to the last read-ahead added

    def add(self, ahead: ReadAhead) -> None:
        with self._lock:
            previous = self._last() if self._last is not None else None
            self._last = weakref.ref(ahead)
        ahead.start_after(previous)
