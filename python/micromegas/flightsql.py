"""A micromegas analytics server as a telemetry source, over Arrow Flight SQL.

Queries run the way micromegas' own Python client runs them (spec/MICROMEGAS_FLIGHTSQL.md):
DoGet with a ticket that is a `google.protobuf.Any` packing a `TicketStatementQuery` holding
the SQL text (no GetFlightInfo, no prepared statements), with the call headers
`query_range_begin` / `query_range_end` (so the server opens only the partitions it needs),
`preserve_dictionary: true` (strings stay dictionary-encoded) and `authorization: Bearer`.
Results stream as Arrow batches straight into libperfetto_mm.

Two modes:
- client-side (`FlightSQLSource`): the SQL micromegas runs for its own trace generation,
  with the trace written here (any async layout);
- server-side (`write_server_side_trace`): the server's `perfetto_trace_chunks` table
  function writes the trace; chunks are checked and written as they arrive.
"""
import os
import re
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple
from urllib.parse import urlparse

import pyarrow as pa
from pyarrow import flight

from .errors import SourceError, UserError
from .output import atomic_output
from .lake import ASYNC_EVENT_TYPES, THREAD_SPAN_TYPES, check_schema
from .sources import ProcessInfo, Source, ThreadInfo, thread_display
from .timeutil import ns_to_iso

DEFAULT_URI = "grpc://localhost:50051"
TICKET_TYPE_URL = "type.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def resolve_uri(uri: Optional[str]) -> str:
    """--uri, else $MICROMEGAS_ANALYTICS_URI, else grpc://localhost:50051; http(s) mapped as
    micromegas' client maps them (http -> grpc, https -> grpc+tls)."""
    uri = uri or os.environ.get("MICROMEGAS_ANALYTICS_URI") or DEFAULT_URI
    parsed = urlparse(uri)
    scheme = {"http": "grpc", "https": "grpc+tls"}.get(parsed.scheme, parsed.scheme)
    if scheme not in ("grpc", "grpc+tls", "grpc+tcp") or not parsed.netloc:
        raise UserError(f"unsupported analytics server URI {uri!r}: use grpc://HOST:PORT or grpc+tls://HOST:PORT")
    return f"{scheme}://{parsed.netloc}"


def check_uuid(value: str, what: str) -> str:
    """Ids go into SQL text: anything but a UUID is refused before a query is sent."""
    if not isinstance(value, str) or not _UUID.match(value):
        raise UserError(f"{what} {value!r} is not a UUID")
    return value


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
    """Runs SQL on a micromegas analytics server and streams the results."""

    def __init__(self, uri: Optional[str] = None, token: Optional[str] = None):
        self.uri = resolve_uri(uri)
        self.token = token if token is not None else os.environ.get("MICROMEGAS_TOKEN")
        try:
            self.client = flight.FlightClient(self.uri)
        except (pa.ArrowException, ValueError) as e:
            raise UserError(f"invalid analytics server URI {self.uri}: {e}") from None

    def headers(self, begin_ns: int, end_ns: int) -> List[Tuple[bytes, bytes]]:
        headers = [
            (b"query_range_begin", ns_to_iso(begin_ns).encode()),
            (b"query_range_end", ns_to_iso(end_ns).encode()),
            (b"preserve_dictionary", b"true"),
            (b"x-client-type", b"micromegas-perfetto"),
            (b"x-client-entrypoint", b"write_perfetto"),
        ]
        if self.token:
            headers.append((b"authorization", f"Bearer {self.token}".encode()))
        return headers

    def query(self, sql: str, begin_ns: int, end_ns: int, kind: str) -> pa.RecordBatchReader:
        """Streams the result of `sql`; errors (now or mid-stream) become SourceError naming
        the server and the query kind."""
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
        return pa.RecordBatchReader.from_batches(schema, batches())

    def error(self, e: Exception, kind: str, reading: bool = False) -> SourceError:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        message = re.sub(r"\. gRPC client debug context: .*", "", message)
        if isinstance(e, flight.FlightUnauthenticatedError) or "UNAUTHENTICATED" in message.upper():
            return SourceError(f"authentication refused by {self.uri} ({kind} query): {message}")
        if isinstance(e, flight.FlightUnavailableError) and not reading:
            return SourceError(f"cannot reach the analytics server at {self.uri} ({kind} query): {message}")
        if reading:
            return SourceError(f"connection to {self.uri} lost while reading the {kind} result: {message}")
        return SourceError(f"the analytics server at {self.uri} failed the {kind} query: {message}")

    def read_all(self, sql: str, begin_ns: int, end_ns: int, kind: str) -> pa.Table:
        try:
            return self.query(sql, begin_ns, end_ns, kind).read_all()
        except SourceError:
            raise
        except (pa.ArrowException, OSError) as e:
            raise self.error(e, kind, reading=True) from None

    def close(self):
        self.client.close()


def _everything() -> Tuple[int, int]:
    """The range sent with queries that precede knowing the trace's range."""
    return 0, int((time.time() + 86_400) * 1e9)


def _column(table: pa.Table, name: str, kind: str, uri: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise SourceError(f"the {kind} result from {uri} lacks column '{name}' (columns: {', '.join(table.column_names)})")
    return table.column(name)


def _ns_value(array: pa.ChunkedArray, kind: str, uri: str) -> Optional[int]:
    if len(array) == 0 or not array[0].is_valid:
        return None
    if not (pa.types.is_timestamp(array.type) or pa.types.is_integer(array.type)):
        raise SourceError(f"the {kind} result from {uri} has a {array.type} time, expected a timestamp")
    return array.cast(pa.timestamp("ns", tz="UTC") if pa.types.is_timestamp(array.type) else pa.int64()) \
        .cast(pa.int64())[0].as_py()


def _string(array: pa.ChunkedArray, row: int) -> Optional[str]:
    value = array[row]
    return value.as_py() if value.is_valid else None


class FlightSQLSource(Source):
    """Client-side generation: micromegas' own trace-generation SQL, the trace written here."""

    def __init__(self, uri: Optional[str] = None, token: Optional[str] = None, prefetch: bool = True):
        self.client = FlightSQLClient(uri, token)
        self.description = f"analytics server {self.client.uri}"
        self.prefetch = prefetch

    def process_info(self, process_id: str) -> ProcessInfo:
        check_uuid(process_id, "process id")
        table = self.client.read_all(
            f"SELECT exe, start_time FROM processes WHERE process_id = '{process_id}' LIMIT 1", *_everything(),
            kind="process")
        exe = _column(table, "exe", "process", self.client.uri)
        if table.num_rows == 0:
            raise UserError(f"process {process_id} not found on {self.description}")
        start = _ns_value(table.column("start_time"), "process", self.client.uri) \
            if "start_time" in table.column_names else None
        return ProcessInfo(process_id=process_id, exe=_string(exe, 0) or "", start_ns=start)

    def time_range(self, info: ProcessInfo) -> Tuple[int, int]:
        begin, end = _everything()
        table = self.client.read_all(
            f"SELECT MIN(begin_time), MAX(end_time) FROM blocks WHERE process_id = '{info.process_id}'",
            info.start_ns if info.start_ns is not None else begin, end, kind="time range")
        if table.num_columns != 2:
            raise SourceError(f"the time range result from {self.client.uri} has {table.num_columns} columns, expected 2")
        low = _ns_value(table.column(0), "time range", self.client.uri)
        high = _ns_value(table.column(1), "time range", self.client.uri)
        if low is None or high is None:
            raise UserError(f"process {info.process_id} has no data on {self.description}: give --begin and --end")
        return low, high

    def threads(self, process_id: str, begin_ns: int, end_ns: int) -> List[ThreadInfo]:
        check_uuid(process_id, "process id")
        table = self.client.read_all(
            "SELECT stream_id, property_get(\"streams.properties\", 'thread-name') AS thread_name, "
            "property_get(\"streams.properties\", 'thread-id') AS thread_id "
            f"FROM blocks WHERE process_id = '{process_id}' AND array_has(\"streams.tags\", 'cpu') "
            "GROUP BY stream_id, thread_name, thread_id ORDER BY stream_id", begin_ns, end_ns, kind="thread list")
        ids, names, tids = (_column(table, c, "thread list", self.client.uri)
                            for c in ("stream_id", "thread_name", "thread_id"))
        threads = []
        for row in range(table.num_rows):
            stream_id = _string(ids, row)
            check_uuid(stream_id, "stream id")
            threads.append(thread_display(stream_id, _string(names, row), _string(tids, row)))
        return threads

    def thread_spans(self, stream_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        check_uuid(stream_id, "stream id")
        reader = self.client.query(
            f"SELECT \"begin\", \"end\", name, filename, target, line FROM view_instance('thread_spans', '{stream_id}') "
            f"WHERE begin <= {_sql_time(end_ns)} AND end >= {_sql_time(begin_ns)} ORDER BY begin",
            begin_ns, end_ns, kind="thread spans")
        return self._checked(reader, THREAD_SPAN_TYPES, "thread spans")

    def async_events(self, process_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        check_uuid(process_id, "process id")
        reader = self.client.query(
            "SELECT stream_id, time, event_type, span_id, parent_span_id, depth, name, filename, target, line "
            f"FROM view_instance('async_events', '{process_id}') "
            f"WHERE time >= {_sql_time(begin_ns)} AND time <= {_sql_time(end_ns)}", begin_ns, end_ns,
            kind="async events")
        return self._checked(reader, ASYNC_EVENT_TYPES, "async events")

    def _checked(self, reader: pa.RecordBatchReader, required, kind: str) -> pa.RecordBatchReader:
        try:
            check_schema(reader.schema, required, f"the {kind} result from {self.client.uri}")
        except UserError as e:
            raise SourceError(str(e)) from None
        return reader

    def iter_thread_spans(self, threads: List[ThreadInfo], begin_ns: int, end_ns: int
                          ) -> Iterator[Tuple[ThreadInfo, pa.RecordBatchReader]]:
        """Each thread's spans; the next thread's query starts while this one is written."""
        if not threads:
            return
        upcoming = self.thread_spans(threads[0].stream_id, begin_ns, end_ns)
        for i, thread in enumerate(threads):
            current = upcoming
            if self.prefetch and i + 1 < len(threads):
                upcoming = self.thread_spans(threads[i + 1].stream_id, begin_ns, end_ns)
            yield thread, current
            if not self.prefetch and i + 1 < len(threads):
                upcoming = self.thread_spans(threads[i + 1].stream_id, begin_ns, end_ns)

    def close(self):
        self.client.close()


def write_server_side_trace(source: FlightSQLSource, process_id: str, filename, span_types: str = "both",
                            begin=None, end=None, progress: bool = False):
    """Writes the trace the server generates (`perfetto_trace_chunks`) to `filename`.

    Chunks are written as they arrive; chunk ids must be 0, 1, 2... in order (a missing,
    repeated or out-of-order id is an error). No file is left behind on error.
    """
    from .perfetto import TraceSummary, _plan
    started = time.monotonic()
    plan = _plan(source, process_id, span_types, begin, end, "micromegas")
    target = Path(filename)
    sql = (f"SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('{plan.process_id}', '{span_types}', "
           f"{_sql_time(plan.begin_ns)}, {_sql_time(plan.end_ns)})")
    client = source.client
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(unit="B", unit_scale=True, desc="server-side trace", leave=False, disable=None)
    chunks = 0
    try:
        with atomic_output(target) as fd, open(fd, "wb", closefd=False) as out:
            reader = client.query(sql, plan.begin_ns, plan.end_ns, kind="trace chunks")
            for name, test in (("chunk_id", pa.types.is_integer),
                               ("chunk_data", lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t))):
                index = reader.schema.get_field_index(name)
                if index < 0 or not test(reader.schema.field(index).type):
                    raise SourceError(f"the trace chunks result from {client.uri} lacks an {name} column of the "
                                      f"expected type (schema: {reader.schema})")
            for batch in reader:
                ids = batch.column("chunk_id").to_pylist()
                data = batch.column("chunk_data")
                for row, chunk_id in enumerate(ids):
                    if chunk_id != chunks:
                        what = "missing" if chunk_id is not None and chunk_id > chunks else "repeated or out of order"
                        raise SourceError(f"the trace chunks from {client.uri} are {what}: got chunk {chunk_id}, "
                                          f"expected {chunks}")
                    piece = data[row].as_buffer()
                    out.write(piece if piece is not None else b"")
                    chunks += 1
                    if bar is not None:
                        bar.update(len(piece) if piece is not None else 0)
    finally:
        if bar is not None:
            bar.close()
    return TraceSummary(process_id=plan.process_id, exe=plan.exe, begin_ns=plan.begin_ns, end_ns=plan.end_ns,
                        threads=len(plan.threads), thread_spans=-1, async_spans=-1, async_tracks=-1,
                        bytes=target.stat().st_size, seconds=time.monotonic() - started, filename=str(target),
                        chunks=chunks)
