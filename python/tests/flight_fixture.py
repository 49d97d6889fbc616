"""A FlightSQL server for the tests that serves a local lake like a micromegas analytics server.

pyarrow.flight on loopback, with DataFusion (which micromegas runs on) as the SQL engine.
It accepts the statements trace generation makes: the `processes` and `blocks` tables
(derived from the lake), `view_instance('thread_spans' | 'async_events' | 'log_entries' |
'measures', id)`,
`property_get`, `array_has`, and `perfetto_trace_chunks` (backed by this project's
generator with the `micromegas` layout). Like the real server (docs/flightsql.md):
ticket-style DoGet with an Any-packed TicketStatementQuery; GetFlightInfo answers with an
empty schema and a bare ticket; prepared statements are not executable; dictionaries are
hydrated unless `preserve_dictionary: true` is sent; trace chunks are small and split
packets. It checks a bearer token when one is configured, records every call's SQL and
headers, and can drop a stream after N batches or corrupt chunk ids on request.
"""
import re
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pyarrow.parquet as pq
from datafusion import SessionConfig, SessionContext, udf

import micromegas_reference
from micromegas_perfetto.flightsql import TICKET_TYPE_URL
from micromegas_perfetto.timeutil import to_ns
from trace_check import lake_table, ns

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII)
COMMAND_TYPE_URL = "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
PROPERTIES = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
TIME = pa.timestamp("ns", tz="+00:00")
STRING = pa.dictionary(pa.int32(), pa.string())
# The view schemas micromegas serves (for a thread or process without data).
EMPTY_VIEWS = {
    "thread_spans": pa.schema([("id", pa.int64()), ("parent", pa.int64()), ("depth", pa.uint32()),
                               ("hash", pa.uint32()), ("begin", TIME), ("end", TIME), ("duration", pa.int64()),
                               ("name", STRING), ("target", STRING), ("filename", STRING), ("line", pa.uint32())]),
    "async_events": pa.schema([("stream_id", STRING), ("block_id", STRING), ("time", TIME), ("event_type", STRING),
                               ("span_id", pa.int64()), ("parent_span_id", pa.int64()), ("depth", pa.uint32()),
                               ("hash", pa.uint32()), ("name", STRING), ("filename", STRING), ("target", STRING),
                               ("line", pa.uint32())]),
    "log_entries": pa.schema([("process_id", STRING), ("stream_id", STRING), ("block_id", STRING), ("time", TIME),
                              ("target", STRING), ("level", pa.int32()), ("msg", pa.string())]),
    "measures": pa.schema([("process_id", STRING), ("stream_id", STRING), ("block_id", STRING), ("time", TIME),
                           ("target", STRING), ("name", STRING), ("unit", STRING), ("value", pa.float64())]),
}


def parse_fields(data: bytes) -> Dict[int, bytes]:
    """The length-delimited fields of a protobuf message (enough for tickets and commands)."""
    fields, i = {}, 0
    while i < len(data):
        tag, i = _varint(data, i)
        if tag & 7 != 2:
            raise flight.FlightServerError(f"unexpected wire type in ticket: {tag & 7}")
        length, i = _varint(data, i)
        fields[tag >> 3] = data[i:i + length]
        i += length
    return fields


def _varint(data: bytes, i: int):
    result = shift = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _field(number: int, payload: bytes) -> bytes:
    out, n = bytearray(), number << 3 | 2
    for value in (n, len(payload)):
        while value >= 0x80:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out) + payload


def statement_from(data: bytes, expected_type: str) -> str:
    """The SQL of an Any-packed (or bare) TicketStatementQuery / CommandStatementQuery."""
    fields = parse_fields(data)
    if fields.get(1, b"").startswith(b"type.googleapis.com/"):
        if fields[1].decode() != expected_type:
            raise flight.FlightServerError(f"unexpected message type {fields[1].decode()}")
        fields = parse_fields(fields.get(2, b""))
    return fields.get(1, b"").decode("utf-8")


class _FailsMidStream(Exception):
    """A result whose stream fails after its schema (and `table`'s batches) with `error`."""

    def __init__(self, error: Exception, table: pa.Table):
        super().__init__(str(error))
        self.error, self.table = error, table


class _Headers(flight.ServerMiddleware):
    def __init__(self, headers):
        self.headers = headers


class _Auth(flight.ServerMiddlewareFactory):
    def __init__(self, server: "LakeFlightServer"):
        self.server = server

    def start_call(self, info, headers):
        if self.server.token is not None:
            given = (headers.get("authorization") or [None])[0]
            if given != f"Bearer {self.server.token}":
                raise flight.FlightUnauthenticatedError("invalid or missing bearer token")
        return _Headers(headers)


class LakeFlightServer(flight.FlightServerBase):
    def __init__(self, lake, token: Optional[str] = None, port: int = 0, tls: Optional[tuple] = None):
        """`tls`: (certificate PEM, key PEM) to serve grpc+tls:// on localhost."""
        self.scheme, host = ("grpc+tls", "localhost") if tls else ("grpc", "127.0.0.1")
        certificates = [flight.CertKeyPair(*tls)] if tls else []
        super().__init__(f"{self.scheme}://{host}:{port}", middleware={"auth": _Auth(self)},
                         tls_certificates=certificates)
        self.host = host
        self.lake = Path(lake)
        self.token = token
        self.calls: List[dict] = []
        self.lock = threading.Lock()
        self.rows_per_batch = 1000
        self.drop_after_batches: Optional[int] = None  # then fail the stream, as a lost connection would
        self.chunk_fault: Optional[str] = None  # "gap" or "repeat"
        self.drop_column: Optional[str] = None  # removed from view_instance results
        self.fail_views = False  # view_instance queries fail
        self.chunk_bytes = 1000
        self.time_type: Optional[pa.DataType] = None  # view_instance time columns sent as this type
        # String columns sent as this type whatever preserve_dictionary says (a server that
        # does not honour it, or DataFusion's string views): pa.string(), large_string(), string_view().
        self.string_type: Optional[pa.DataType] = None
        self.empty_batches = False  # zero-row batches before the first batch, between batches and after the last
        # (exception, "first" | "mid", SQL substring): the matching queries fail with that gRPC status,
        # at the DoGet call or after the first batch (as DataFusion errors while executing do).
        self.fault: Optional[tuple] = None
        self.delay = 0.0  # seconds each DoGet waits before answering (a slow server)
        self.batch_delay = 0.0  # seconds before each batch after the first (a slow result)
        # Print each query's SQL, and "sent N" per batch (main(), for a server in another process).
        self.log_calls = False
        self.blocks_table: Optional[pa.Table] = None  # the `blocks` rows (None: one block per stream, see blocks())
        self._blocks: Optional[pa.Table] = None

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    # -- Flight ------------------------------------------------------------------------------

    def do_get(self, context, ticket):
        sql = statement_from(ticket.ticket, TICKET_TYPE_URL)
        headers = context.get_middleware("auth").headers
        with self.lock:
            self.calls.append({"sql": sql, "headers": {k: v[0] for k, v in headers.items()}})
        if self.log_calls:
            print("call", " ".join(sql.split()), flush=True)
        preserve = (headers.get("preserve_dictionary") or ["false"])[0].lower() == "true"
        if self.delay:
            time.sleep(self.delay)
        fault = self.fault if self.fault is not None and self.fault[2] in sql else None
        if fault is not None and fault[1] == "first":
            raise fault[0]
        try:
            table = self.execute(sql, self.query_range(headers))
        except _FailsMidStream as e:
            table, fault = e.table, (e.error, "mid", "")
        batches = [self.shape(b, preserve) for b in table.to_batches(max_chunksize=self.rows_per_batch)]
        schema = batches[0].schema if batches else self.shape_schema(table.schema, preserve)
        if self.empty_batches:
            empty = schema.empty_table().to_batches() or [pa.RecordBatch.from_pylist([], schema=schema)]
            batches = [x for b in batches for x in (empty[0], b)] + [empty[0]] if batches else [empty[0]] * 2
        drop = self.drop_after_batches

        def stream():
            for i, batch in enumerate(batches):
                if drop is not None and i >= drop:
                    raise flight.FlightUnavailableError("the server stopped")
                if fault is not None and i >= 1:
                    raise fault[0]
                if i and self.log_calls:
                    print("sent", i, flush=True)  # batch i - 1 has been taken for sending
                if i and self.batch_delay:
                    time.sleep(self.batch_delay)
                yield batch
            if fault is not None:  # a result of one batch fails after it
                raise fault[0]
        # A reader-backed stream: pyarrow's GeneratorStream does not send dictionary batches.
        return flight.RecordBatchStream(pa.RecordBatchReader.from_batches(schema, stream()))

    @staticmethod
    def query_range(headers) -> Optional[tuple]:
        """(begin_ns, end_ns) from the query_range_* headers, as micromegas reads them: both
        present and non-empty, else no range; text that is not RFC 3339 is an INTERNAL status
        ("Unable to parse query_range_begin as a rfc3339 datetime")."""
        values = []
        for name in ("query_range_begin", "query_range_end"):
            text = (headers.get(name) or [""])[0]
            if text and not _RFC3339.match(text):
                raise flight.FlightInternalError(f"Unable to parse {name} as a rfc3339 datetime: {text!r}")
            values.append(to_ns(text) if text else None)
        return tuple(values) if None not in values else None

    def get_flight_info(self, context, descriptor):
        sql = statement_from(descriptor.command, COMMAND_TYPE_URL)
        ticket = flight.Ticket(_field(1, sql.encode()))  # bare, not Any-packed
        return flight.FlightInfo(pa.schema([]), descriptor, [flight.FlightEndpoint(ticket, [])], -1, -1)

    def do_action(self, context, action):
        raise NotImplementedError(f"action {action.type} is not implemented")  # gRPC UNIMPLEMENTED

    # -- SQL -----------------------------------------------------------------------------------

    def context(self, query_range: Optional[tuple] = None) -> SessionContext:
        """The tables; `blocks` restricted to the blocks overlapping `query_range` (micromegas
        opens only the partitions overlapping the range: a stream with no block in it is not
        seen)."""
        config = SessionConfig().set("datafusion.execution.parquet.schema_force_view_types", "false")
        ctx = SessionContext(config)
        ctx.register_parquet("processes", str(self.lake / "processes.parquet"))
        ctx.register_parquet("streams", str(self.lake / "streams.parquet"))
        ctx.register_udf(udf(_property_get, [PROPERTIES, pa.string()], pa.string(), "immutable", name="property_get"))
        if self._blocks is None:
            self._blocks = self.blocks_table if self.blocks_table is not None else self.blocks()
        blocks = self._blocks
        if query_range is not None:
            begin = pa.scalar(query_range[0], pa.int64()).cast(TIME)
            end = pa.scalar(query_range[1], pa.int64()).cast(TIME)
            blocks = blocks.filter(pc.and_(pc.less_equal(blocks.column("begin_time"), end),
                                           pc.greater_equal(blocks.column("end_time"), begin)))
        ctx.register_record_batches("blocks", [blocks.to_batches()] if blocks.num_rows else
                                    [[pa.RecordBatch.from_pylist([], schema=blocks.schema)]])
        return ctx

    def blocks(self) -> pa.Table:
        """One block per thread stream (and one per other stream), spanning its process: from
        start_time to end_time, or to the process's last event when end_time is missing or null."""
        processes = pq.read_table(self.lake / "processes.parquet")
        ids = processes.column("process_id").to_pylist()
        starts = ns(processes.column("start_time"))
        ends = ns(processes.column("end_time")) if "end_time" in processes.column_names else [None] * len(ids)
        streams = pq.read_table(self.lake / "streams.parquet").to_pylist()
        rows = []
        for stream in streams:
            i = ids.index(stream["process_id"]) if stream["process_id"] in ids else None
            if i is None:
                continue
            end = ends[i] if ends[i] is not None else self.last_event(stream["process_id"], streams)
            rows.append({"stream_id": stream["stream_id"], "process_id": stream["process_id"],
                         "streams.properties": stream["properties"], "streams.tags": stream["tags"],
                         "begin_time": starts[i], "end_time": end})
        schema = pa.schema([("stream_id", pa.string()), ("process_id", pa.string()),
                            ("streams.properties", PROPERTIES), ("streams.tags", pa.list_(pa.string())),
                            ("begin_time", TIME), ("end_time", TIME)])
        return pa.Table.from_pylist(rows, schema=schema)

    def last_event(self, process_id: str, streams) -> Optional[int]:
        times = []
        for stream in streams:
            if stream["process_id"] == process_id and "cpu" in (stream["tags"] or []):
                table = lake_table(self.lake, "thread_spans", stream["stream_id"], columns=["end"])
                times += ns(table.column("end")) if table is not None else []
        table = lake_table(self.lake, "async_events", process_id, columns=["time"])
        times += ns(table.column("time")) if table is not None else []
        return max(times) if times else None

    def execute(self, sql: str, query_range: Optional[tuple] = None) -> pa.Table:
        # Any spacing: micromegas' own write_process_trace sends this statement over several lines.
        chunks = re.fullmatch(r"\s*SELECT\s+chunk_id,\s*chunk_data\s+FROM\s+perfetto_trace_chunks\(\s*'([^']*)',\s*"
                              r"'([^']*)',\s*TIMESTAMP\s+'([^']*)',\s*TIMESTAMP\s+'([^']*)'\s*\)\s*", sql)
        if chunks:
            return self.trace_chunks(*chunks.groups())
        return self.run_sql(sql, faults=True, query_range=query_range)

    def run_sql(self, sql: str, faults: bool = False, query_range: Optional[tuple] = None) -> pa.Table:
        """Runs `sql` with the lake's tables and view_instance (with the configured faults
        and time type when `faults`)."""
        ctx = self.context(query_range)
        views = []

        def view(match):
            kind, key = match.group(1), match.group(2)
            if faults and self.fail_views:
                raise flight.FlightServerError(f"view_instance('{kind}', '{key}'): partition read failed")
            if kind not in EMPTY_VIEWS:
                raise flight.FlightServerError(f"unknown view {kind}")
            name = f"view_{len(views)}"
            views.append(name)
            table = lake_table(self.lake, kind, key)
            if table is None:
                table = EMPTY_VIEWS[kind].empty_table()
            if faults and self.time_type is not None:
                for column in ("begin", "end", "time"):
                    if column in table.column_names:
                        index = table.schema.get_field_index(column)
                        table = table.set_column(index, column, table.column(column).cast(self.time_type))
            ctx.register_record_batches(name, [table.to_batches()] if table.num_rows else
                                        [[pa.RecordBatch.from_pylist([], schema=table.schema)]])
            return name
        try:
            rewritten = re.sub(r"view_instance\('(\w+)',\s*'([^']*)'\)", view, sql)
            table = ctx.sql(rewritten).to_arrow_table()
        except flight.FlightError:
            raise
        except Exception as e:  # DataFusion errors: a bad query
            raise flight.FlightServerError(f"query failed: {e}") from None
        if faults and views and self.drop_column in table.column_names:
            table = table.drop_columns([self.drop_column])
        return table

    def trace_chunks(self, process_id: str, span_types: str, begin: str, end: str) -> pa.Table:
        try:
            # Its queries run in a context restricted to the function's range, as micromegas' do.
            scope = (to_ns(begin), to_ns(end))
            trace = micromegas_reference.perfetto_trace(lambda q: self.run_sql(q, query_range=scope), process_id,
                                                        span_types, *scope)
        except LookupError as e:  # micromegas' generation runs in the result's stream: the schema, then the error
            raise _FailsMidStream(flight.FlightInternalError(f"Trace generation failed: {e}"),
                                  pa.table({"chunk_id": pa.array([], pa.int32()),
                                            "chunk_data": pa.array([], pa.binary())})) from None
        # Small chunks whose boundaries fall anywhere, even inside a packet.
        pieces = [trace[i:i + self.chunk_bytes] for i in range(0, len(trace), self.chunk_bytes)]
        ids = list(range(len(pieces)))
        if self.chunk_fault == "gap" and len(ids) > 3:
            del ids[2], pieces[2]
        elif self.chunk_fault == "repeat" and len(ids) > 3:
            ids[2] = 1
        self.rows_per_batch = 10
        return pa.table({"chunk_id": pa.array(ids, pa.int32()), "chunk_data": pa.array(pieces, pa.binary())})

    def shape_schema(self, schema: pa.Schema, preserve: bool) -> pa.Schema:
        if self.string_type is not None:
            def text(t):
                t = t.value_type if pa.types.is_dictionary(t) else t
                return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
            return pa.schema([f.with_type(self.string_type) if text(f.type) else f for f in schema])
        if preserve:
            return schema
        return pa.schema([f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema])

    def shape(self, batch: pa.RecordBatch, preserve: bool) -> pa.RecordBatch:
        """Dictionaries stay only when the client asked for them (preserve_dictionary)."""
        schema = self.shape_schema(batch.schema, preserve)
        if schema == batch.schema:
            return batch
        # Dictionaries hydrate to their values first (pyarrow casts no dictionary to a string view).
        columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) and not pa.types.is_dictionary(f.type)
                   else c for c, f in zip(batch.columns, schema)]
        return pa.RecordBatch.from_arrays(columns, names=batch.schema.names).cast(schema)


def _property_get(properties: pa.Array, key) -> pa.Array:
    """micromegas' property_get(properties, key): the value of the first entry whose key is
    `key`, ASCII case ignored (Rust's eq_ignore_ascii_case), or null."""
    wanted = key[0].as_py() if isinstance(key, (pa.Array, pa.ChunkedArray)) else key.as_py()

    def fold(text):
        return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text or "")
    values = []
    for entry in properties.to_pylist():
        values.append(next((kv["value"] for kv in entry or [] if kv and fold(kv["key"]) == fold(wanted)), None))
    return pa.array(values, pa.string())


def main() -> None:
    """Serves a lake until Ctrl-C: python python/tests/flight_fixture.py LAKE [--port N] [--token T]."""
    import argparse
    parser = argparse.ArgumentParser(description="A FlightSQL server on loopback serving a local lake "
                                                 "like a micromegas analytics server (for trying --uri).")
    parser.add_argument("lake", help="a lake folder (python -m micromegas sample-lake DIR writes one)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--token", help="require this bearer token")
    parser.add_argument("--rows-per-batch", type=int, default=1000, help="rows per result batch")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each query waits before its first batch")
    parser.add_argument("--batch-delay", type=float, default=0.0, help="seconds before each batch but the first")
    parser.add_argument("--log-calls", action="store_true",
                        help="print 'call <SQL>' on stdout for each query, and 'sent N' when its batch N is asked for")
    args = parser.parse_args()
    server = LakeFlightServer(args.lake, token=args.token, port=args.port)
    server.rows_per_batch, server.batch_delay, server.log_calls = args.rows_per_batch, args.batch_delay, args.log_calls
    server.delay = args.delay
    print(f"serving {args.lake} at {server.uri} (Ctrl-C to stop)", flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
