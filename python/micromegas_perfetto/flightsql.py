"""A micromegas analytics server as a telemetry source, over Arrow Flight SQL.

Queries run the way micromegas' own Python client runs them (docs/flightsql.md): DoGet with a
ticket that is a `google.protobuf.Any` packing a `TicketStatementQuery` holding the SQL text
(no GetFlightInfo, no prepared statements), with the call headers `query_range_begin` /
`query_range_end` (so the server opens only the partitions it needs), `preserve_dictionary:
true` (strings stay dictionary-encoded) and `authorization: Bearer`. Results stream as Arrow
batches straight into libperfetto_mm.

Two ways to reach the server, one set of queries (`FlightSQLSource`):
- `FlightSQLClient`: this package's own pyarrow.flight client (`--uri`, `--token`);
- `ClientQueries`: any object with micromegas' `query_stream(sql, begin, end)`, such as the
  official client's `micromegas.connect()` / `connect_with_profile()`, so the user's own
  profile, OIDC login or API key authenticates.

Two modes: client-side (`FlightSQLSource` as a Source: the trace is written here, any
layout) and server-side (`FlightSQLSource.trace_chunks`: the server's
`perfetto_trace_chunks` writes it; chunk ids are checked as they arrive).
"""
import os
import re
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlparse

import pyarrow as pa

from .errors import ProcessNotFoundError, RequestError, SchemaError, SourceError
from .sources import (ASYNC_EVENT_TYPES, LOG_ENTRY_TYPES, MEASURE_TYPES, STOP_TIMEOUT, THREAD_SPAN_TYPES, Pipeline,
                      ProcessInfo, Source, ThreadInfo, check_limit, check_schema, empty_reader, read_ahead,
                      thread_display, time_ns)
from .timeutil import ns_to_iso

DEFAULT_URI = "grpc://localhost:50051"
TICKET_TYPE_URL = "type.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery"
READ_AHEAD_GROUP_ROWS = 16_384  # rows of a result's batches handed over together (sources.read_ahead)
# Thread-span queries in flight beyond the thread being written: a server takes a while to
# start each result (micromegas materializes the thread's view_instance), and traces have
# tens or hundreds of threads; each result's read-ahead still waits for the one before it.
THREAD_QUERIES_AHEAD = 3
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def resolve_uri(uri: Optional[str]) -> str:
    """--uri, else $MICROMEGAS_ANALYTICS_URI, else grpc://localhost:50051; http(s) mapped as
    micromegas' client maps them (http -> grpc, https -> grpc+tls)."""
    if uri is not None and not isinstance(uri, str):
        raise TypeError(f"the analytics server URI must be a str such as 'grpc://HOST:PORT', not {type(uri).__name__}")
    uri = uri or os.environ.get("MICROMEGAS_ANALYTICS_URI") or DEFAULT_URI
    parsed = urlparse(uri)
    scheme = {"http": "grpc", "https": "grpc+tls"}.get(parsed.scheme, parsed.scheme)
    if scheme not in ("grpc", "grpc+tls", "grpc+tcp") or not parsed.netloc:
        raise RequestError(f"unsupported analytics server URI {uri!r}: use grpc://HOST:PORT or grpc+tls://HOST:PORT")
    return f"{scheme}://{parsed.netloc}"


def check_uuid(value: str, what: str) -> str:
    """Ids go into SQL text: anything but a UUID is refused before a query is sent."""
    if not isinstance(value, str) or not _UUID.match(value):
        raise RequestError(f"{what} {value!r} is not a UUID{_uuid_hint(value)}")
    return value


def _uuid_hint(value) -> str:
    """" (did you mean X?)" when `value` is a UUID within braces, after `urn:uuid:` or with
    spaces around it (as copied from a log or a Windows tool); empty otherwise."""
    if not isinstance(value, str):
        return ""
    bare = value.strip()
    if bare.lower().startswith("urn:uuid:"):
        bare = bare[len("urn:uuid:"):]
    if bare.startswith("{") and bare.endswith("}"):
        bare = bare[1:-1].strip()
    return f" (did you mean {bare}?)" if bare != value and _UUID.match(bare) else ""


def check_token(token: Optional[str], what: str) -> Optional[str]:
    """A bearer token as it can go into the `authorization` header: gRPC allows printable
    ASCII only there, and a token holding anything else (a newline left by reading a token
    file, a non-ASCII character) aborted the process inside gRPC with some pyarrow versions
    (a failed check in call_op_set.h), or failed as a server error with others. The message
    names the first bad character's position, never the token itself."""
    if token is None:
        return None
    if not isinstance(token, str):
        raise TypeError(f"{what} must be a str, not {type(token).__name__}")
    for position, char in enumerate(token):
        if not " " <= char <= "~":
            shown = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab"}.get(char, f"U+{ord(char):04X}")
            hint = " (strip the end of line of a token read from a file)" if char in "\r\n" else ""
            raise RequestError(f"{what} holds {shown} at position {position}: a bearer token is printable ASCII{hint}")
    return token


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def statement_ticket(sql: str) -> bytes:
    """Any{type_url, value: TicketStatementQuery{statement_handle: sql}}, as micromegas' client packs it."""
    query = _field(1, sql.encode("utf-8"))
    return _field(1, TICKET_TYPE_URL.encode()) + _field(2, query)


def _sql_time(ns: int) -> str:
    return f"TIMESTAMP '{ns_to_iso(ns)}'"


class FlightSQLClient:
    """Runs SQL on a micromegas analytics server (pyarrow.flight) and streams the results."""

    def __init__(self, uri: Optional[str] = None, token: Optional[str] = None):
        from pyarrow import flight
        self.uri = resolve_uri(uri)
        self.description = f"analytics server {self.uri}"
        self.token = check_token(token, "token") if token is not None else \
            check_token(os.environ.get("MICROMEGAS_TOKEN"), "$MICROMEGAS_TOKEN")
        try:
            self.client = flight.FlightClient(self.uri)
        except (pa.ArrowException, ValueError) as e:
            raise RequestError(f"invalid analytics server URI {self.uri}: {e}") from None
        self._pipeline = Pipeline()

    def headers(self, begin_ns: int, end_ns: int) -> List[Tuple[bytes, bytes]]:
        headers = [
            (b"query_range_begin", ns_to_iso(begin_ns).encode()),
            (b"query_range_end", ns_to_iso(end_ns).encode()),
            (b"preserve_dictionary", b"true"),
            (b"x-client-type", b"micromegas-perfetto"),
            # The tool, as the official client is told when this package connects through it.
            (b"x-client-entrypoint", b"micromegas-perfetto"),
        ]
        if self.token:
            headers.append((b"authorization", f"Bearer {self.token}".encode()))
        return headers

    def query(self, sql: str, begin_ns: int, end_ns: int, kind: str,
              columns: Optional[Dict[str, str]] = None, start: bool = False,
              closers: Optional[list] = None) -> pa.RecordBatchReader:
        """Streams the result of `sql`; errors (now or mid-stream) become SourceError naming
        the server and the query kind. With `start`, the result is read ahead before its
        first batch is asked for, once the results started that way before it are read.
        `closers` gets a callable that stops the read-ahead and cancels the stream."""
        from pyarrow import flight
        options = flight.FlightCallOptions(headers=self.headers(begin_ns, end_ns))
        try:
            reader = self.client.do_get(flight.Ticket(statement_ticket(sql)), options)
            schema = reader.schema
        except (flight.FlightError, pa.ArrowException, OSError) as e:
            raise self.error(e, kind) from None

        def batches():
            try:
                while True:
                    try:
                        chunk = reader.read_chunk()
                    except StopIteration:
                        return
                    yield chunk.data
            except (flight.FlightError, pa.ArrowException, OSError) as e:
                raise self.error(e, kind, reading=True) from None

        def cancel():
            try:
                reader.cancel()
            except (flight.FlightError, pa.ArrowException, OSError):
                pass  # the stream is being abandoned anyway
        # The stream is read on a thread ahead of the library, which consumes the current
        # batches meanwhile (pyarrow releases the GIL while receiving and decoding); its small
        # batches are handed over in groups (two groups of ~16k rows ahead at most).
        ahead = read_ahead(batches(), on_stop=cancel, group_rows=READ_AHEAD_GROUP_ROWS)
        if closers is not None:
            closers.append(ahead.close)
        if start:
            self._pipeline.add(ahead)
        return pa.RecordBatchReader.from_batches(schema, ahead)

    def error(self, e: Exception, kind: str, reading: bool = False) -> SourceError:
        failure, message = _failure(e, reading)
        text = {"refused": f"authentication refused by {self.uri} ({kind} query)",
                "unreachable": f"cannot reach the analytics server at {self.uri} ({kind} query)",
                "lost": f"connection to {self.uri} lost while reading the {kind} result",
                "sending": f"the analytics server at {self.uri} failed while sending the {kind} result",
                "failed": f"the analytics server at {self.uri} failed the {kind} query"}[failure]
        return SourceError(f"{text}: {message}")

    def read_all(self, sql: str, begin_ns: int, end_ns: int, kind: str,
                 columns: Optional[Dict[str, str]] = None) -> pa.Table:
        try:
            return self.query(sql, begin_ns, end_ns, kind, columns).read_all()
        except SourceError:
            raise
        except (pa.ArrowException, OSError) as e:
            raise self.error(e, kind, reading=True) from None

    def close(self):
        self.client.close()


def _is_binary(t: pa.DataType) -> bool:
    """binary, large_binary or binary_view (DataFusion's view types)."""
    is_view = getattr(pa.types, "is_binary_view", lambda _: False)
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or is_view(t)


def _status_message(e: Exception) -> str:
    """The first line of a Flight error, without gRPC's debug context and the Python
    traceback a pyarrow server appends as the status detail."""
    message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return re.sub(r"\. (gRPC client debug context|Detail: Python exception): .*", "", message)


def _failure(e: Exception, reading: bool) -> Tuple[str, str]:
    """What a query's failure `e` was, for both clients' messages: "refused" (authentication),
    "unreachable" (before any result), "lost" (the connection, while reading), "sending" (a
    status the server sent after the result began: an error while executing) or "failed";
    with its one-line message."""
    from pyarrow import flight
    message = _status_message(e)
    if isinstance(e, flight.FlightUnauthenticatedError) or "UNAUTHENTICATED" in message.upper():
        return "refused", message
    if isinstance(e, flight.FlightUnavailableError) and not reading:
        return "unreachable", message
    if _connection_lost(e, reading):
        return "lost", message
    return ("sending" if reading else "failed"), message


def _connection_lost(e: Exception, reading: bool) -> bool:
    """Whether a failure while reading a result is the connection going (gRPC UNAVAILABLE:
    "Socket closed", a reset, the server gone) rather than a status the server sent: micromegas
    runs a query as a stream, so an error while executing it (a partition that cannot be
    read, perfetto_trace_chunks' "Process <id> not found") is a status (INTERNAL,
    INVALID_ARGUMENT...) after the first batches, not a lost connection."""
    from pyarrow import flight
    return reading and isinstance(e, (flight.FlightUnavailableError, OSError))


def _ns_to_datetime(ns: int, round_up: bool) -> datetime:
    """A timezone-aware UTC datetime (microseconds) for the official client's range headers;
    rounded outwards so the range still covers [begin, end]."""
    micros, rest = divmod(ns, 1000)
    if round_up and rest:
        micros += 1
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)


class ClientQueries:
    """Runs the queries through a user's client object with micromegas' `query_stream(sql,
    begin, end)` (the official `FlightSQLClient`): its connection and authentication are used."""

    def __init__(self, client, uri: Optional[str] = None):
        """`uri`: the server the client talks to, when the caller knows it (the command line
        does), named in messages; else the client's `uri` attribute, else its class."""
        self.client = client
        kind = f"micromegas client {type(client).__module__}.{type(client).__name__}"
        uri = uri or getattr(client, "uri", None)
        self.uri = uri or type(client).__name__
        self.description = f"analytics server {uri} (through micromegas' client)" if uri else kind
        self._by = uri or f"the analytics server of {kind}"  # "authentication refused by ..."
        self._server = f"the analytics server at {uri}" if uri else self._by  # "cannot reach ..."

    def query(self, sql: str, begin_ns: int, end_ns: int, kind: str,
              columns: Optional[Dict[str, str]] = None, start: bool = False,
              closers: Optional[list] = None) -> pa.RecordBatchReader:
        """The result, read through the client as it is consumed (`start` is ignored: the
        user's client is read on the thread that consumes it). `closers` gets a callable
        that closes the client's iterator (ending its stream)."""
        begin, end = _ns_to_datetime(begin_ns, False), _ns_to_datetime(end_ns, True)
        try:
            batches = iter(self.client.query_stream(sql, begin, end))
            if closers is not None and callable(getattr(batches, "close", None)):
                closers.append(batches.close)
            first = next(batches, None)
        except Exception as e:  # the user's client: whatever it raises is a server failure here
            raise self.error(e, kind) from None
        if first is None:
            return empty_reader(columns or {})
        # Tolerate clients yielding tables: their batches, in order.
        head = self._record_batches(first, kind)
        if not head:
            return empty_reader(columns or {})

        def rest() -> Iterator[pa.RecordBatch]:
            yield from head
            try:
                for item in batches:
                    yield from self._record_batches(item, kind)
            except SourceError:
                raise
            except Exception as e:
                raise self.error(e, kind, reading=True) from None
        return pa.RecordBatchReader.from_batches(head[0].schema, rest())

    def _record_batches(self, item, kind: str) -> List[pa.RecordBatch]:
        """What the client's query_stream yielded, as record batches (a Table's, combined); any
        other object (a DataFrame, a dict of lists) is a SourceError naming it (it was an
        AttributeError on .schema, or pyarrow's "Could not unwrap RecordBatch")."""
        if isinstance(item, pa.RecordBatch):
            return [item]
        if isinstance(item, pa.Table):
            return item.combine_chunks().to_batches() if item.num_rows else []
        raise SourceError(f"the {kind} result through {self.description}: query_stream yielded "
                          f"{type(item).__name__}, expected pyarrow RecordBatches")

    def read_all(self, sql: str, begin_ns: int, end_ns: int, kind: str,
                 columns: Optional[Dict[str, str]] = None) -> pa.Table:
        return self.query(sql, begin_ns, end_ns, kind, columns).read_all()

    def error(self, e: Exception, kind: str, reading: bool = False) -> SourceError:
        """What the user's client raised, as the one-line SourceError this package's own
        client gives for the same failure (refused login, unreachable server, ...)."""
        failure, message = _failure(e, reading)
        text = {"refused": f"authentication refused by {self._by} ({kind} query)",
                "unreachable": f"cannot reach {self._server} ({kind} query)",
                "lost": f"connection lost while reading the {kind} result through {self.description}",
                "sending": f"the {kind} query failed while its result was sent, through {self.description}",
                "failed": f"the {kind} query failed through {self.description}"}[failure]
        return SourceError(f"{text}: {message}")

    def close(self):
        pass  # the user's client stays open: it is theirs


def _everything() -> Tuple[int, int]:
    """The range sent with queries that precede knowing the trace's range."""
    return 0, int((time.time() + 86_400) * 1e9)


def _column(table: pa.Table, name: str, kind: str, uri: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise SourceError(f"the {kind} result from {uri} lacks column '{name}' (columns: {', '.join(table.column_names)})")
    return table.column(name)


def _ns_value(array: pa.ChunkedArray, kind: str, uri: str, column: str) -> Optional[int]:
    """The first value of a time column, in ns, by the one rule of time columns (any unit and
    zone, or int64 ns); None when empty or null."""
    if len(array) == 0 or not array[0].is_valid:
        return None
    try:
        return time_ns(array.slice(0, 1), column, f"the {kind} result from {uri}")[0].as_py()
    except SchemaError as e:
        raise SourceError(str(e)) from None


def _string(array: pa.ChunkedArray, row: int) -> Optional[str]:
    value = array[row]
    return value.as_py() if value.is_valid else None


def _sql_text(value: str) -> str:
    """A SQL string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


class _InBackground:
    """`call(*args)` run on a thread; `result()` waits for it and returns its value or raises
    its exception as it was raised (type, message, cause). Dropped without `result()` (a
    generation that stopped early), it waits (bounded) for the thread and drops the value
    (a read-ahead, which then stops): no thread is left inside pyarrow (a query being sent)
    when the interpreter exits, where it could abort the process."""

    def __init__(self, call, *args):
        import threading
        # The thread holds the outcome, not this object, so dropping this object is seen.
        self._outcome = outcome = [None, None]  # value, error
        self._thread = threading.Thread(target=_run_into, args=(outcome, call, args), name="micromegas-prefetch",
                                        daemon=True)
        self._thread.start()

    def result(self):
        self._thread.join()
        value, error = self._outcome
        self._outcome = [None, None]
        if error is not None:
            raise error
        return value

    def __del__(self):
        thread = getattr(self, "_thread", None)
        if thread is not None and thread.is_alive():
            thread.join(STOP_TIMEOUT)
        self._outcome = [None, None]


def _run_into(outcome, call, args) -> None:
    try:
        outcome[0] = call(*args)
    except BaseException as e:  # handed to result(), raised there
        outcome[1] = e


# The process views read with micromegas' view_instance query: view, columns, order,
# the query kind (in messages) and the required columns.
_PROCESS_VIEWS = {
    "async_events": ("async_events", "stream_id, time, event_type, span_id, parent_span_id, depth, name, filename, "
                     "target, line", "", "async events", ASYNC_EVENT_TYPES),
    "log_entries": ("log_entries", "time, target, level, msg", " ORDER BY time", "log entries", LOG_ENTRY_TYPES),
    "measures": ("measures", "time, name, unit, value", " ORDER BY time", "measures", MEASURE_TYPES),
}


class FlightSQLSource(Source):
    """Client-side generation: micromegas' own trace-generation SQL, the trace written here.

    `queries` is a `FlightSQLClient`, a `ClientQueries`, or None for a `FlightSQLClient` on
    `uri` with `token`."""

    def __init__(self, uri: Optional[str] = None, token: Optional[str] = None, prefetch: bool = True,
                 queries=None):
        self.client = queries if queries is not None else FlightSQLClient(uri, token)
        self.description = self.client.description
        self.prefetch = prefetch

    def process_info(self, process_id: str) -> ProcessInfo:
        check_uuid(process_id, "process id")
        table = self.client.read_all(
            f"SELECT exe, start_time FROM processes WHERE process_id = '{process_id}' LIMIT 1", *_everything(),
            kind="process")
        if table.num_rows == 0:
            # micromegas writes process ids in lower case, and compares them as text.
            hint = f" (micromegas process ids are lower case: {process_id.lower()})" \
                if process_id != process_id.lower() else ""
            raise ProcessNotFoundError(f"process {process_id} not found on {self.description}{hint}")
        exe = _column(table, "exe", "process", self.client.uri)
        start = _ns_value(table.column("start_time"), "process", self.client.uri, "start_time") \
            if "start_time" in table.column_names else None
        return ProcessInfo(process_id=process_id, exe=_string(exe, 0) or "", start_ns=start)

    def time_range(self, info: ProcessInfo) -> Tuple[int, int]:
        begin, end = _everything()
        table = self.client.read_all(
            f"SELECT MIN(begin_time), MAX(end_time) FROM blocks WHERE process_id = '{info.process_id}'",
            info.start_ns if info.start_ns is not None else begin, end, kind="time range")
        if table.num_columns != 2:
            raise SourceError(f"the time range result from {self.client.uri} has {table.num_columns} columns, expected 2")
        low = _ns_value(table.column(0), "time range", self.client.uri, table.column_names[0]) \
            if table.num_rows else None
        high = _ns_value(table.column(1), "time range", self.client.uri, table.column_names[1]) \
            if table.num_rows else None
        if low is None or high is None:
            raise RequestError(f"process {info.process_id} has no data on {self.description}: give begin and end")
        return low, high

    def threads(self, process_id: str, begin_ns: int, end_ns: int) -> List[ThreadInfo]:
        check_uuid(process_id, "process id")
        table = self.client.read_all(
            "SELECT stream_id, property_get(\"streams.properties\", 'thread-name') AS thread_name, "
            "property_get(\"streams.properties\", 'thread-id') AS thread_id "
            f"FROM blocks WHERE process_id = '{process_id}' AND array_has(\"streams.tags\", 'cpu') "
            "GROUP BY stream_id, thread_name, thread_id ORDER BY stream_id", begin_ns, end_ns, kind="thread list")
        if table.num_rows == 0:
            return []
        ids, names, tids = (_column(table, c, "thread list", self.client.uri)
                            for c in ("stream_id", "thread_name", "thread_id"))
        threads = []
        for row in range(table.num_rows):
            stream_id = _string(ids, row)
            check_uuid(stream_id, "stream id")
            threads.append(thread_display(stream_id, _string(names, row), _string(tids, row)))
        return threads

    def thread_spans(self, stream_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        return self._read("thread_spans", stream_id, begin_ns, end_ns)

    def async_events(self, process_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        return self._read("async_events", process_id, begin_ns, end_ns)

    def log_entries(self, process_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        return self._read("log_entries", process_id, begin_ns, end_ns)

    def measures(self, process_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        return self._read("measures", process_id, begin_ns, end_ns)

    def _read(self, kind: str, key: str, begin_ns: int, end_ns: int, start: bool = False) -> pa.RecordBatchReader:
        """Table `kind` of `key` (Source.open_ahead's kinds); `start`: see FlightSQLClient.query."""
        if kind == "thread_spans":
            check_uuid(key, "stream id")
            reader = self.client.query(
                f"SELECT \"begin\", \"end\", name, filename, target, line FROM view_instance('thread_spans', '{key}') "
                f"WHERE begin <= {_sql_time(end_ns)} AND end >= {_sql_time(begin_ns)} ORDER BY begin",
                begin_ns, end_ns, kind="thread spans", columns=THREAD_SPAN_TYPES, start=start)
            return self._checked(reader, THREAD_SPAN_TYPES, "thread spans")
        view, columns, order, what, required = _PROCESS_VIEWS[kind]
        return self._process_view(view, columns, key, begin_ns, end_ns, order, what, required, start)

    def _process_view(self, view: str, columns: str, process_id: str, begin_ns: int, end_ns: int, order: str,
                      kind: str, required, start: bool = False) -> pa.RecordBatchReader:
        """A process's rows of `view` with time in [begin, end] (micromegas' view_instance query)."""
        check_uuid(process_id, "process id")
        reader = self.client.query(
            f"SELECT {columns} FROM view_instance('{view}', '{process_id}') "
            f"WHERE time >= {_sql_time(begin_ns)} AND time <= {_sql_time(end_ns)}{order}", begin_ns, end_ns,
            kind=kind, columns=required, start=start)
        return self._checked(reader, required, kind)

    def _checked(self, reader: pa.RecordBatchReader, required, kind: str) -> pa.RecordBatchReader:
        try:
            check_schema(reader.schema, required, f"the {kind} result from {self.client.uri}")
        except SchemaError as e:
            raise SourceError(str(e)) from None
        return reader

    def open_ahead(self, kind: str, key: str, begin_ns: int, end_ns: int):
        """The query is sent now, on a thread (do_get waits for the server to start the
        result), unless `prefetch` is off."""
        if kind not in _PROCESS_VIEWS and kind != "thread_spans":
            raise ValueError(f"unknown table {kind!r}")
        if not self._own(kind):  # a subclass's own reader: called when asked, as Source does
            return super().open_ahead(kind, key, begin_ns, end_ns)
        if not self.prefetch:
            return lambda: self._read(kind, key, begin_ns, end_ns)
        return _InBackground(self._read, kind, key, begin_ns, end_ns, True).result

    def _own(self, kind: str) -> bool:
        """Whether table `kind` is read by this class's method (not a subclass's override)."""
        return getattr(type(self), kind) is getattr(FlightSQLSource, kind)

    def iter_thread_spans(self, threads: List[ThreadInfo], begin_ns: int, end_ns: int
                          ) -> Iterator[Tuple[ThreadInfo, pa.RecordBatchReader]]:
        """Each thread's spans; the next THREAD_QUERIES_AHEAD threads' queries are sent (each
        on a thread: the call waits for the server to start the result) while this one is
        written, so the server's time to start each result overlaps the others' and the
        writing, and each result is read ahead (bounded) once the one before it is read."""
        if not threads:
            return
        own = self._own("thread_spans")

        def read(stream_id: str, ahead: bool):
            return self._read("thread_spans", stream_id, begin_ns, end_ns, True) if own and ahead \
                else self.thread_spans(stream_id, begin_ns, end_ns)
        upcoming = read(threads[0].stream_id, self.prefetch)
        sent = deque()  # the queries sent ahead, in thread order
        for i, thread in enumerate(threads):
            current = upcoming
            while self.prefetch and len(sent) < THREAD_QUERIES_AHEAD and i + 1 + len(sent) < len(threads):
                sent.append(_InBackground(read, threads[i + 1 + len(sent)].stream_id, True))
            yield thread, current
            if not self.prefetch and i + 1 < len(threads):
                upcoming = read(threads[i + 1].stream_id, False)
            elif sent:
                upcoming = sent.popleft().result()

    def trace_chunks(self, process_id: str, span_types: str, begin_ns: int, end_ns: int
                     ) -> Iterator[bytes]:
        """Server-side generation: the chunks of `perfetto_trace_chunks`, in order. Chunk ids
        must be 0, 1, 2...: a missing, repeated or out-of-order id is a SourceError, and so is
        a result without any chunk (micromegas' trace always has the process descriptor; an
        empty result was written as an empty file, exit 0)."""
        check_uuid(process_id, "process id")
        sql = (f"SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('{process_id}', {_sql_text(span_types)}, "
               f"{_sql_time(begin_ns)}, {_sql_time(end_ns)})")
        try:
            yield from self._chunks(sql, process_id, begin_ns, end_ns)
        except SourceError as e:
            # micromegas' generation fails in the result's stream: "Trace generation failed:
            # Process <id> not found" (its process lookup found nothing for the range asked).
            if f"Process {process_id} not found" not in str(e):
                raise
            raise ProcessNotFoundError(f"process {process_id} not found by the perfetto_trace_chunks of "
                                       f"{self.description} for the range asked ({e})") from None

    def _chunks(self, sql: str, process_id: str, begin_ns: int, end_ns: int) -> Iterator[bytes]:
        closers: list = []
        reader = self.client.query(sql, begin_ns, end_ns, kind="trace chunks", closers=closers)
        try:
            yield from self._checked_chunks(reader, process_id)
        finally:
            # Now, not when the exception's traceback is dropped: a result refused here (a
            # chunk id fault, a mistyped column) kept its stream open on the server, and its
            # read-ahead thread blocked, for as long as the caller held the exception.
            for close in closers:
                close()

    def _checked_chunks(self, reader: pa.RecordBatchReader, process_id: str) -> Iterator[bytes]:
        uri = self.client.uri
        empty = SourceError(f"the {self.description} returned no trace chunks for process {process_id} "
                            "(an empty perfetto_trace_chunks result: no trace written)")
        if not reader.schema.names:  # no batch at all from a client that gives no schema: no chunks
            raise empty
        for name, test in (("chunk_id", pa.types.is_integer),
                           ("chunk_data", _is_binary)):
            index = reader.schema.get_field_index(name)
            if index < 0 or not test(reader.schema.field(index).type):
                raise SourceError(f"the trace chunks result from {uri} lacks an {name} column of the "
                                  f"expected type (schema: {reader.schema})")
        expected = 0
        for batch in reader:
            ids = batch.column("chunk_id").to_pylist()
            data = batch.column("chunk_data")
            for row, chunk_id in enumerate(ids):
                if chunk_id != expected:
                    what = "missing" if chunk_id is not None and chunk_id > expected else "repeated or out of order"
                    raise SourceError(f"the trace chunks from {uri} are {what}: got chunk {chunk_id}, "
                                      f"expected {expected}")
                piece = data[row].as_buffer()
                yield piece.to_pybytes() if piece is not None else b""
                expected += 1
        if expected == 0:
            raise empty

    def processes(self, begin_ns: Optional[int] = None, end_ns: Optional[int] = None,
                  limit: Optional[int] = None) -> List[dict]:
        """The server's processes started within [begin, end] (default: all), newest first."""
        limit = check_limit(limit)
        low, high = _everything()
        begin_ns = low if begin_ns is None else begin_ns
        end_ns = high if end_ns is None else end_ns
        limit_sql = f" LIMIT {int(limit)}" if limit is not None else ""
        table = self.client.read_all(
            "SELECT process_id, exe, start_time FROM processes "
            f"WHERE start_time >= {_sql_time(begin_ns)} AND start_time <= {_sql_time(end_ns)} "
            f"ORDER BY start_time DESC{limit_sql}", begin_ns, end_ns, kind="process list")
        if table.num_rows == 0:
            return []
        ids, exes = (_column(table, c, "process list", self.client.uri) for c in ("process_id", "exe"))
        starts = _column(table, "start_time", "process list", self.client.uri)
        rows = []
        for row in range(table.num_rows):
            rows.append({"process_id": _string(ids, row), "exe": _string(exes, row),
                         "start_ns": _ns_value(starts.slice(row, 1), "process list", self.client.uri,
                                               "start_time")})
        return rows

    def close(self):
        self.client.close()
