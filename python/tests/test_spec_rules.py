"""Rules of the team's spec (shared/spec: LAKE_FORMAT.md, ASYNC_SPANS.md,
MICROMEGAS_FLIGHTSQL.md) that no other test pins down on its own, each on a lake built here
by hand with pyarrow, column for column as the spec gives it, and the trace decoded with
Perfetto's official protos: thread ids parsed as Rust's `str::parse::<i64>` then `as i32`
and threads named and ordered as micromegas' `get_process_thread_list` does, the packet order
of a trace for each span type, the micromegas layout's tie order, both ends of the range,
zero-row data files, and the FlightSQL ticket as a protobuf `Any`."""
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace

from conftest import run_cli
from trace_check import decode, written_slices

from micromegas_perfetto.generation import Progress, write_process_trace

TS = pa.timestamp("ns", tz="+00:00")  # as micromegas writes times
DICT = pa.dictionary(pa.int32(), pa.string())
PID = "11111111-2222-4333-8444-555555555555"
PROPERTIES = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))


def strings(values):
    return pa.array(values, pa.string()).dictionary_encode().cast(DICT)


def times(values, unit="ns"):
    return pa.array(values, pa.int64()).cast(pa.timestamp(unit, tz="+00:00"))


def make_lake(root: Path, streams, spans=None, events=None, start=1000, end=10_000):
    """A lake of one process: `streams` = [(stream_id, tags, {property: value})] (written in
    that order), `spans` = {stream_id: [(begin, end, name)]}, `events` = [(time, type,
    span_id, name)]."""
    root.mkdir(parents=True)
    pq.write_table(pa.table({"process_id": [PID], "exe": ["exe"], "username": ["u"], "computer": ["c"],
                             "start_time": times([start]), "end_time": times([end])}), root / "processes.parquet")
    pq.write_table(pa.table({
        "stream_id": [s for s, _, _ in streams], "process_id": [PID] * len(streams),
        "tags": pa.array([t for _, t, _ in streams], pa.list_(pa.string())),
        "properties": pa.array([[{"key": k, "value": v} for k, v in p.items()] for _, _, p in streams], PROPERTIES),
    }), root / "streams.parquet")
    (root / "thread_spans").mkdir()
    (root / "async_events").mkdir()
    for stream_id, rows in (spans or {}).items():
        pq.write_table(span_table(rows), root / "thread_spans" / f"{stream_id}.parquet", row_group_size=1)
    if events is not None:
        n = len(events)
        pq.write_table(pa.table({
            "stream_id": strings(["s"] * n), "block_id": strings(["b"] * n),
            "time": times([e[0] for e in events]), "event_type": strings([e[1] for e in events]),
            "span_id": pa.array([e[2] for e in events], pa.int64()), "parent_span_id": pa.array([0] * n, pa.int64()),
            "depth": pa.array([0] * n, pa.uint32()), "hash": pa.array([0] * n, pa.uint32()),
            "name": strings([e[3] for e in events]), "filename": strings(["f.rs"] * n), "target": strings(["t"] * n),
            "line": pa.array([2] * n, pa.uint32())}), root / "async_events" / f"{PID}.parquet")
    return root


def span_table(rows, unit="ns"):
    n = len(rows)
    return pa.table({
        "id": pa.array(range(n), pa.int64()), "parent": pa.array([0] * n, pa.int64()),
        "depth": pa.array([1] * n, pa.uint32()), "hash": pa.array([0] * n, pa.uint32()),
        "begin": times([r[0] for r in rows], unit), "end": times([r[1] for r in rows], unit),
        "duration": pa.array([r[1] - r[0] for r in rows], pa.int64()),
        "name": strings([r[2] for r in rows]), "target": strings(["t"] * n), "filename": strings(["f.rs"] * n),
        "line": pa.array([1] * n, pa.uint32())})


class Notes(Progress):
    def __init__(self):
        self.notes = []

    def note(self, text):
        self.notes.append(text)


def descriptors(data: bytes):
    """("process" | "thread" | "track" | "event", ...) per packet, in packet order."""
    out = []
    for packet in Trace.FromString(data).packet:
        if packet.HasField("track_descriptor"):
            d = packet.track_descriptor
            if d.HasField("process"):
                out.append(("process", d.process.process_name))
            elif d.HasField("thread"):
                out.append(("thread", d.thread.thread_name, d.thread.tid))
            else:
                out.append(("track", d.name, d.uuid, d.parent_uuid))
        else:
            out.append(("event", packet.track_event.track_uuid, packet.timestamp))
    return out


# -- the thread list: ids, names, order -------------------------------------------------------

# thread-id text -> tid, as Rust's `"...".parse::<i64>()` then `as i32` (0 when parse fails).
THREAD_IDS = [
    ("+5", 5), ("-0", 0), ("007", 7), (" 5", 0), ("5 ", 0), ("5\n", 0), ("1_000", 0), ("0x10", 0), ("+-5", 0),
    ("--5", 0), ("+", 0), ("-", 0),
    ("9223372036854775807", -1), ("9223372036854775808", 0),             # i64::MAX; one past it does not parse
    ("-9223372036854775808", 0), ("-9223372036854775809", 0),            # i64::MIN truncates to 0
    ("4294967296", 0), ("4294967297", 1), ("2147483648", -2147483648), ("-2147483649", 2147483647),
    ("\uff15", 0), ("\u0665", 0), ("\U0001d7d3", 0),                     # full-width, Arabic-Indic, maths digits
    ("0" * 30 + "42", 42), ("-" + "0" * 30 + "1", -1), ("0" * 25, 0),   # leading zeros do not count
    ("9" * 5000, 0), ("0" * 5000 + "5", 5),                             # beyond what Python's int() parses
]


def test_thread_ids_names_and_order_as_micromegas_lists_threads(tmp_path):
    """Streams written out of order, with every kind of thread-id text, some properties
    missing or empty, non-thread streams among them: the trace's thread descriptors are the
    `cpu` streams ordered by stream_id, tid as Rust parses then truncates, named
    "<thread-name>-<thread-id or stream_id>" or the shown id alone."""
    streams, expected = [], []
    for i, (text, tid) in enumerate(THREAD_IDS):
        stream_id = f"00000000-0000-4000-8000-{len(THREAD_IDS) - i:012d}"  # written in reverse order
        streams.append((stream_id, ["cpu"], {"thread-name": "w", "thread-id": text}))
        expected.append((stream_id, f"w-{text}", tid))
    odd = [
        ("00000000-0000-4000-8000-100000000001", ["cpu"], {"thread-id": "12"}, "12", 12),  # no name
        ("00000000-0000-4000-8000-100000000002", ["cpu"], {"thread-name": "worker"},
         "worker-00000000-0000-4000-8000-100000000002", 0),  # no id: the stream id stands in
        ("00000000-0000-4000-8000-100000000003", ["cpu"], {}, "00000000-0000-4000-8000-100000000003", 0),  # neither
        ("00000000-0000-4000-8000-100000000004", ["cpu"], {"thread-name": "", "thread-id": ""},
         "00000000-0000-4000-8000-100000000004", 0),  # both empty: as missing
        ("00000000-0000-4000-8000-100000000005", ["log", "cpu"], {"thread-name": "x", "thread-id": "3"}, "x-3", 3),
    ]
    for stream_id, tags, props, name, tid in odd:
        streams.insert(0, (stream_id, tags, props))
        expected.append((stream_id, name, tid))
    streams.append(("00000000-0000-4000-8000-000000000000", ["log"], {"thread-name": "L", "thread-id": "1"}))
    streams.append(("00000000-0000-4000-8000-000000000099", [], {"thread-name": "M", "thread-id": "2"}))
    first = expected[0][0]
    lake = make_lake(tmp_path / "lake", streams, spans={first: [(2000, 3000, "a")]})
    notes = Notes()
    summary = write_process_trace(lake, PID, None, None, tmp_path / "t.perfetto", "thread", progress=notes)
    threads = [d[1:] for d in descriptors((tmp_path / "t.perfetto").read_bytes()) if d[0] == "thread"]
    assert threads == [(name, tid) for _, name, tid in sorted(expected)]
    assert summary.threads == len(expected) and summary.thread_spans == 1
    # Every listed thread without a file has a note (20 by name, then one counting the rest).
    assert len(notes.notes) == 21 and notes.notes[-1].startswith(f"{len(expected) - 21} more threads")


# -- the packet order of a trace ------------------------------------------------------------------


@pytest.mark.parametrize("spans", ["thread", "async", "both"])
@pytest.mark.parametrize("layout", ["lanes", "micromegas"])
def test_packet_order(tmp_path, spans, layout):
    """Process descriptor; every thread's descriptor whatever the span types; the async track
    descriptor only when async spans are asked for (lanes: the first lane, with micromegas'
    uuid; the other lanes before their first slice); thread spans thread by thread, each as
    begin then end; then async spans."""
    streams = [("00000000-0000-4000-8000-000000000002", ["cpu"], {"thread-name": "b", "thread-id": "2"}),
               ("00000000-0000-4000-8000-000000000001", ["cpu"], {"thread-name": "a", "thread-id": "1"})]
    lake = make_lake(tmp_path / "lake", streams,
                     spans={"00000000-0000-4000-8000-000000000001": [(1000, 5000, "a1"), (2000, 3000, "a2")],
                            "00000000-0000-4000-8000-000000000002": [(1500, 1600, "b1")]},
                     events=[(1100, "begin", 1, "x"), (4000, "end", 1, "x"), (1200, "begin", 2, "y"),
                             (4500, "end", 2, "y")])
    write_process_trace(lake, PID, None, None, tmp_path / "t.perfetto", spans, async_layout=layout)
    data = (tmp_path / "t.perfetto").read_bytes()
    packets = descriptors(data)
    trace = decode(data)
    assert packets[:3] == [("process", "exe"), ("thread", "a-1", 1), ("thread", "b-2", 2)]
    rest = packets[3:]
    thread_tracks = [trace.threads["a-1"].uuid, trace.threads["b-2"].uuid]
    thread_events = [(trace.threads["a-1"].uuid, t) for t in (1000, 5000, 2000, 3000)] + \
                    [(trace.threads["b-2"].uuid, t) for t in (1500, 1600)]
    if spans == "thread":
        assert [p[1:] for p in rest] == thread_events
        return
    assert rest[0][:2] == ("track", "Async Operations") and rest[0][3] == trace.process.uuid
    first_lane = rest[0][2]
    rest = rest[1:]
    if spans == "both":
        assert [p[1:] for p in rest[:6]] == thread_events
        rest = rest[6:]
    assert all(p[0] != "event" or p[1] not in thread_tracks for p in rest)
    if layout == "micromegas":
        assert [p[1:] for p in rest] == [(first_lane, 1100), (first_lane, 4000), (first_lane, 1200), (first_lane, 4500)]
    else:  # x and y overlap without nesting: two lanes, the second described before its slice
        assert rest[0][1:] == (first_lane, 1100) and rest[1][1:] == (first_lane, 4000)
        assert rest[2][:2] == ("track", "Async Operations") and rest[2][3] == trace.process.uuid
        assert [p[1:] for p in rest[3:]] == [(rest[2][2], 1200), (rest[2][2], 4500)]
    # The first lane is micromegas' async track: the same uuid in both layouts.
    other = "micromegas" if layout == "lanes" else "lanes"
    write_process_trace(lake, PID, None, None, tmp_path / "o.perfetto", spans, async_layout=other)
    assert [p for p in descriptors((tmp_path / "o.perfetto").read_bytes()) if p[0] == "track"][0][2] == first_lane


# -- the micromegas layout: inner join, order by begin then span_id ---------------------------------


def test_micromegas_layout_orders_equal_begins_by_span_id(tmp_path):
    """Spans beginning at one instant are written in span_id order (signed), whatever the
    event order; zero-duration, unmatched and backwards spans are dropped; a duplicated begin
    is resolved to the earliest, written once."""
    events = [(3000, "begin", 5, "five"), (4000, "end", 5, "five"), (3000, "begin", -7, "minus-seven"),
              (3500, "end", -7, "minus-seven"), (3000, "begin", 2, "two"), (3100, "end", 2, "two"),
              (2600, "begin", 11, "late-begin"), (2400, "begin", 11, "early-begin"), (2900, "end", 11, "e"),
              (5000, "begin", 12, "zero"), (5000, "end", 12, "zero"), (6000, "begin", 13, "open"),
              (1500, "end", 14, "begun-before"), (7000, "begin", 15, "backwards"), (6500, "end", 15, "backwards")]
    streams = [("00000000-0000-4000-8000-000000000001", ["cpu"], {"thread-name": "a", "thread-id": "1"})]
    lake = make_lake(tmp_path / "lake", streams, events=events)
    summary = write_process_trace(lake, PID, None, None, tmp_path / "t.perfetto", "async", async_layout="micromegas")
    trace = decode((tmp_path / "t.perfetto").read_bytes())
    assert [(b, e, n) for _, b, e, n in written_slices(trace.events)] == [
        (2400, 2900, "early-begin"), (3000, 3500, "minus-seven"), (3000, 3100, "two"), (3000, 4000, "five")]
    assert summary.async_spans == 4 and len(trace.named_tracks) == 1
    assert summary.matcher["async_duplicates"] == 1 and summary.matcher["async_dropped"] == 1
    assert summary.matcher["async_open_at_end"] == 1 and summary.matcher["async_begun_before_range"] == 1


# -- both ends of the range, with row groups pruned by statistics ---------------------------------


@pytest.mark.parametrize("unit", ["ns", "us"])
def test_both_ends_of_a_window_are_included(tmp_path, unit):
    """A thread span that ends exactly at the window's begin, one that begins exactly at its
    end (each alone in its row group, so statistics pruning sees the edge), and async events
    exactly at either end are kept, not clamped; one unit (or nanosecond) beyond is not."""
    stream = "00000000-0000-4000-8000-000000000001"
    lake = make_lake(tmp_path / "lake", [(stream, ["cpu"], {"thread-name": "a", "thread-id": "1"})],
                     events=[(20_000, "begin", 1, "at-begin"), (30_000, "end", 1, "at-begin"),
                             (19_000, "begin", 2, "before"), (40_000, "end", 2, "at-end"),
                             (40_000, "begin", 3, "begins-at-end"), (41_000, "end", 3, "begins-at-end")],
                     start=0, end=100_000)
    rows = [(5_000, 19_000, "ends-before"), (10_000, 20_000, "ends-at-begin"), (40_000, 45_000, "begins-at-end"),
            (41_000, 42_000, "begins-after")]
    factor = 1000 if unit == "us" else 1
    scaled = [(b // factor, e // factor, n) for b, e, n in rows]
    pq.write_table(span_table(scaled, unit), lake / "thread_spans" / f"{stream}.parquet", row_group_size=1)
    begin, end = 20_000, 40_000
    run = run_cli("write_perfetto", PID, "--lake", lake, "--begin", begin, "--end", end, "--filename",
                  tmp_path / "t.perfetto", "--quiet")
    assert run.returncode == 0, run.stderr
    trace = decode((tmp_path / "t.perfetto").read_bytes())
    track = trace.threads["a-1"].uuid
    assert [(b, e, n) for _, b, e, n in written_slices([e for e in trace.events if e.track == track])] == \
        [(10_000, 20_000, "ends-at-begin"), (40_000, 45_000, "begins-at-end")]
    slices = {(b, e, n) for _, b, e, n in written_slices([e for e in trace.events if e.track != track])}
    assert slices == {(20_000, 30_000, "at-begin"), (20_000, 40_000, "at-end"), (40_000, 40_000, "begins-at-end")}


# -- a data file with no rows is a thread without spans: a note, not an error ----------------------


def test_zero_row_data_files_are_noted_like_missing_ones(tmp_path):
    """A thread stream whose spans file (or every part of its folder) has no rows, like one
    without a file, gets a note on stderr and an empty track; so does a process whose async
    events file has no rows. A file with rows outside the window gets no note."""
    a, b, c, d = (f"00000000-0000-4000-8000-00000000000{i}" for i in range(1, 5))
    streams = [(s, ["cpu"], {"thread-name": n, "thread-id": str(i)}) for i, (s, n) in enumerate(
        [(a, "a"), (b, "b"), (c, "c"), (d, "d")], 1)]
    lake = make_lake(tmp_path / "lake", streams, spans={a: [(1000, 2000, "x")], b: [], d: [(9000, 9500, "late")]},
                     events=[])
    (lake / "thread_spans" / c).mkdir()
    pq.write_table(span_table([]), lake / "thread_spans" / c / "part-0.parquet")
    pq.write_table(span_table([]), lake / "thread_spans" / c / "part-1.parquet")
    run = run_cli("write_perfetto", PID, "--lake", lake, "--filename", tmp_path / "t.perfetto", "--quiet",
                  "--begin", 1000, "--end", 5000)
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == [
        f"note: thread b-2 (stream {b}) has no thread spans in lake {lake}: its track is empty",
        f"note: thread c-3 (stream {c}) has no thread spans in lake {lake}: its track is empty",
        f"note: process {PID} has no async events in lake {lake}: the trace has no async spans"]
    trace = decode((tmp_path / "t.perfetto").read_bytes())
    assert sorted(trace.threads) == ["a-1", "b-2", "c-3", "d-4"] and len(trace.events) == 2


# -- FlightSQL: the ticket is an Any packing a TicketStatementQuery ---------------------------------


def test_ticket_is_an_any_packing_a_ticket_statement_query():
    """Decoded with protobuf's own Any: the type URL of FlightSQL's TicketStatementQuery, and
    a value whose only field is 1 (statement_handle, bytes) holding the SQL in UTF-8."""
    from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

    from micromegas_perfetto.flightsql import statement_ticket
    sql = "SELECT 'é' FROM processes WHERE process_id = '" + PID + "'" + " " * 200  # a length over 127
    ticket = any_pb2.Any.FromString(statement_ticket(sql))
    assert ticket.type_url == "type.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery"
    # TicketStatementQuery as FlightSql.proto declares it: `bytes statement_handle = 1;`.
    file = descriptor_pb2.FileDescriptorProto(name="spec_ticket.proto", package="arrow.flight.protocol.sql")
    message = file.message_type.add(name="TicketStatementQuery")
    message.field.add(name="statement_handle", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
                      label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("arrow.flight.protocol.sql.TicketStatementQuery"))
    query = cls.FromString(ticket.value)
    assert query.statement_handle == sql.encode("utf-8")
    assert query.SerializeToString() == ticket.value  # nothing but that field


# -- a time that does not fit in int64 ns is an error naming its column, window or not ---------------


@pytest.mark.parametrize("table, column", [("thread_spans", "end"), ("thread_spans", "begin"),
                                           ("async_events", "time"), ("log_entries", "time"), ("measures", "time")])
@pytest.mark.parametrize("window", [False, True])
def test_a_time_beyond_int64_ns_is_an_error_even_in_a_row_group_outside_the_window(tmp_path, table, column, window):
    """The value alone in its row group, whose statistics put it outside the range asked for:
    the group was skipped and the value never reported (exit 0, a trace without it)."""
    stream = "00000000-0000-4000-8000-000000000001"
    lake = make_lake(tmp_path / "lake", [(stream, ["cpu"], {"thread-name": "a", "thread-id": "1"})],
                     events=[(2 * 10**9, "begin", 1, "x"), (3 * 10**9, "end", 1, "x")], start=0, end=10**18)
    huge = 10**14  # ms: year ~5100
    rows = [(1000, 2000, "a"), (3000, 4000, "b")]
    if table == "thread_spans":
        rows.append((5000, huge, "late") if column == "end" else (-huge, -huge + 1, "early"))
    pq.write_table(span_table(rows, "ms"), lake / "thread_spans" / f"{stream}.parquet", row_group_size=1)
    if table == "async_events":
        events = pq.read_table(lake / "async_events" / f"{PID}.parquet")
        events = events.set_column(events.schema.get_field_index("time"), "time",
                                   pa.array([2000, huge], pa.int64()).cast(pa.timestamp("ms", tz="UTC")))
        pq.write_table(events, lake / "async_events" / f"{PID}.parquet", row_group_size=1)
    if table in ("log_entries", "measures"):
        (lake / table).mkdir()
        rows = pa.array([2000, huge], pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
        columns = {"target": strings(["a", "b"]), "level": pa.array([1, 2], pa.int32()), "msg": ["x", "y"]} \
            if table == "log_entries" else {"name": strings(["a", "b"]), "unit": strings(["", ""]), "value": [1.0, 2.0]}
        pq.write_table(pa.table({"time": rows, **columns}), lake / table / f"{PID}.parquet", row_group_size=1)
    window_args = ["--begin", 10**9, "--end", 4 * 10**9] if window else []
    run = run_cli("write_perfetto", PID, "--lake", lake, "--filename", tmp_path / "t.perfetto", "--quiet", "--logs",
                  "--metrics", *window_args)
    assert run.returncode == 1, run.stderr
    assert f"column '{column}'" in run.stderr and "int64 nanoseconds" in run.stderr, run.stderr
    assert not (tmp_path / "t.perfetto").exists()


# -- logs and metrics: the columns readers need, levels, one metric per (name, unit) ---------------


def test_logs_and_metrics_from_their_needed_columns_only(tmp_path):
    """log_entries of time, target, level, msg only and measures of time, name, unit, value
    only (the columns the spec says readers need): levels 1..6 are fatal..trace, entries and
    measures exactly at either end of the window are kept and one nanosecond beyond are not;
    one counter track per (name, unit) pair, an empty or null unit being one unit."""
    stream = "00000000-0000-4000-8000-000000000001"
    lake = make_lake(tmp_path / "lake", [(stream, ["cpu"], {"thread-name": "a", "thread-id": "1"})],
                     spans={stream: [(2000, 3000, "a")]}, events=[], start=0, end=100_000)
    (lake / "log_entries").mkdir()
    (lake / "measures").mkdir()
    begin, end = 1000, 9000
    log_times = [begin - 1, begin, 2000, 3000, 4000, 5000, end, end + 1]
    levels = [4, 1, 2, 3, 4, 5, 6, 4]
    pq.write_table(pa.table({"time": times(log_times), "target": strings(["t"] * 8), "level": pa.array(levels, pa.int32()),
                             "msg": [f"m{i}" for i in range(8)]}), lake / "log_entries" / f"{PID}.parquet")
    measures = [(begin - 1, "x", "ms", 0.5), (begin, "x", "ms", 1.0), (2000, "x", "bytes", 2.0), (3000, "x", "", 3.0),
                (4000, "y", "", 4.0), (5000, "y", None, 5.0), (end, "x", "ms", 6.0), (end + 1, "y", "", 7.0)]
    pq.write_table(pa.table({"time": times([m[0] for m in measures]), "name": strings([m[1] for m in measures]),
                             "unit": pa.array([m[2] for m in measures], pa.string()).dictionary_encode(),
                             "value": pa.array([m[3] for m in measures], pa.float64())}),
                   lake / "measures" / f"{PID}.parquet")
    run = run_cli("write_perfetto", PID, "--lake", lake, "--logs", "--metrics", "--begin", begin, "--end", end,
                  "--filename", tmp_path / "t.perfetto")
    assert run.returncode == 0, run.stderr
    assert "6 log entries, 6 measures on 4 counter tracks" in run.stdout, run.stdout
    trace = decode((tmp_path / "t.perfetto").read_bytes())
    assert [(i.ts, i.args["level"], i.name) for i in trace.instants] == [
        (1000, "fatal", "m1"), (2000, "error", "m2"), (3000, "warn", "m3"), (4000, "info", "m4"), (5000, "debug", "m5"),
        (9000, "trace", "m6")]
    tracks = {d.uuid: d for d in trace.counter_tracks}
    assert len(tracks) == 4 and all(d.parent_uuid == trace.process.uuid for d in tracks.values())
    by_track = {}
    for track, ts, value in trace.counters:
        by_track.setdefault(track, []).append((ts, value))
    assert sorted(by_track.values()) == sorted([[(1000, 1.0), (9000, 6.0)], [(2000, 2.0)], [(3000, 3.0)],
                                                [(4000, 4.0), (5000, 5.0)]])


def test_logs_and_metrics_with_every_column_of_micromegas_schemas(tmp_path):
    """The log and measure tables as micromegas' log_table_schema and measures schema have
    them: ids, insert_time, exe, username, computer, JSONB `properties` and
    `process_properties` (dictionary<int32, binary>), which readers may ignore; in the
    folder form, with parts that have those columns and parts that do not."""
    stream = "00000000-0000-4000-8000-000000000001"
    lake = make_lake(tmp_path / "lake", [(stream, ["cpu"], {"thread-name": "a", "thread-id": "1"})],
                     spans={stream: [(2000, 3000, "a")]}, events=[], start=0, end=100_000)
    jsonb = pa.dictionary(pa.int32(), pa.binary())

    def extra(n):
        return {"process_id": strings([PID] * n), "stream_id": strings(["s"] * n), "block_id": strings(["b"] * n),
                "insert_time": times([50_000] * n), "exe": strings(["exe"] * n), "username": strings(["u"] * n),
                "computer": strings(["c"] * n),
                "properties": pa.array([b"\x01\x02"] * n, pa.binary()).dictionary_encode().cast(jsonb),
                "process_properties": pa.array([b"\x03"] * n, pa.binary()).dictionary_encode().cast(jsonb)}
    for kind in ("log_entries", "measures"):
        (lake / kind / PID).mkdir(parents=True)
    logs = [(1000, "t1", 2, "first"), (4000, "t2", 5, "second")]
    for i, (t, target, level, msg) in enumerate(logs):
        columns = {"time": times([t]), "target": strings([target]), "level": pa.array([level], pa.int32()),
                   "msg": pa.array([msg], pa.string())}
        pq.write_table(pa.table({**(extra(1) if i == 0 else {}), **columns}), lake / "log_entries" / PID / f"{i}.parquet")
    measures = [(1500, "frame_time", "ms", 16.5), (4500, "frame_time", "ms", 33.0)]
    for i, (t, name, unit, value) in enumerate(measures):
        columns = {"time": times([t]), "target": strings(["m"]), "name": strings([name]), "unit": strings([unit]),
                   "value": pa.array([value], pa.float64())}
        pq.write_table(pa.table({**(extra(1) if i == 1 else {}), **columns}), lake / "measures" / PID / f"{i}.parquet")
    run = run_cli("write_perfetto", PID, "--lake", lake, "--logs", "--metrics", "--filename", tmp_path / "t.perfetto",
                  "--quiet")
    assert run.returncode == 0, run.stderr
    trace = decode((tmp_path / "t.perfetto").read_bytes())
    assert [(i.ts, i.category, i.args["level"], i.name) for i in trace.instants] == [
        (1000, "t1", "error", "first"), (4000, "t2", "debug", "second")]
    assert [d.name for d in trace.counter_tracks] == ["frame_time (ms)"]
    assert [(ts, v) for _, ts, v in trace.counters] == [(1500, 16.5), (4500, 33.0)]
