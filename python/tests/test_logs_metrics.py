"""Logs and metrics on the trace timeline (`--logs --metrics`): every log entry and measure in
the range comes back exactly, decoded with Perfetto's official protos; none outside it."""
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from flight_fixture import LakeFlightServer
from trace_check import decode

from micromegas_perfetto.cli import describe
from micromegas_perfetto.errors import RequestError
from micromegas_perfetto.flightsql import statement_ticket
from micromegas_perfetto.generation import generate_trace_chunks, write_process_trace
from micromegas_perfetto.lake import LocalLake

LEVELS = {1: "fatal", 2: "error", 3: "warn", 4: "info", 5: "debug", 6: "trace"}
NAME_MAX_BYTES = 100  # TraceWriter.logNameMaxBytes
UNITS = {"ns": 1, "bytes": 3, "count": 2}  # CounterDescriptor.Unit


def expected_logs(lake, pid, begin, end):
    table = ds.dataset(Path(lake) / "log_entries" / f"{pid}.parquet").to_table(columns=["time", "target", "level", "msg"])
    rows = zip(table.column("time").cast("int64").to_pylist(), table.column("target").cast("string").to_pylist(),
               table.column("level").to_pylist(), table.column("msg").to_pylist())
    return [(t, target, level, msg or "") for t, target, level, msg in rows if begin <= t <= end]


def expected_measures(lake, pid, begin, end):
    table = ds.dataset(Path(lake) / "measures" / f"{pid}.parquet").to_table(columns=["time", "name", "unit", "value"])
    rows = zip(table.column("time").cast("int64").to_pylist(), table.column("name").cast("string").to_pylist(),
               table.column("unit").cast("string").to_pylist(), table.column("value").to_pylist())
    return [r for r in rows if begin <= r[0] <= end]


def cut(msg: str) -> str:
    data = msg.encode()
    if len(data) <= NAME_MAX_BYTES:
        return msg
    n = NAME_MAX_BYTES
    while n > 0 and data[n] & 0xC0 == 0x80:
        n -= 1
    return data[:n].decode()


def track_name(name, unit):
    return name if unit in UNITS or not unit else f"{name} ({unit})"


def check_content(lake, pid, trace, begin, end):
    """The trace's log entries and counters against the lake's rows in [begin, end]."""
    logs = expected_logs(lake, pid, begin, end)
    assert len(trace.log_tracks) == (1 if logs else 0)
    if logs:
        assert trace.log_tracks[0].parent_uuid == trace.process.uuid
    assert all(i.track == trace.log_tracks[0].uuid for i in trace.instants)
    got = [(i.ts, i.category, i.args["level"], i.args.get("message", i.name)) for i in trace.instants]
    assert got == [(t, target, LEVELS[level], msg) for t, target, level, msg in logs]
    for i, (_, target, _, msg) in zip(trace.instants, logs):
        assert i.args["target"] == target
        assert i.name == cut(msg)
        assert ("message" in i.args) == (len(msg.encode()) > NAME_MAX_BYTES)

    measures = expected_measures(lake, pid, begin, end)
    tracks = {d.uuid: d for d in trace.counter_tracks}
    assert all(d.parent_uuid == trace.process.uuid for d in tracks.values())
    # One track per metric, described (once: decode checks) in order of first value.
    first_seen = list(dict.fromkeys((n, u) for _, n, u, _ in measures))
    assert [d.name for d in trace.counter_tracks] == [track_name(n, u) for n, u in first_seen]
    assert [d.counter.unit for d in trace.counter_tracks] == [UNITS.get(u, 0) for _, u in first_seen]
    got = [(ts, tracks[track].name, value) for track, ts, value in trace.counters]
    assert got == [(t, track_name(n, u), v) for t, n, u, v in measures]
    for uuid in tracks:  # counters are monotonic in time per track
        times = [ts for track, ts, _ in trace.counters if track == uuid]
        assert times == sorted(times)
    return logs, measures


def write(lake, pid, out, *args):
    done = run_cli("write_perfetto", pid, "--lake", lake, "--filename", out, *args)
    assert done.returncode == 0, done.stderr
    return done, decode(Path(out).read_bytes())


def process_range(lake, pid):
    info = LocalLake(lake).process_info(pid)
    return info.start_ns, info.end_ns


def test_whole_process_with_logs_and_metrics(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    done, trace = write(lake, pid, tmp_path / "t.perfetto", "--logs", "--metrics")
    logs, measures = check_content(lake, pid, trace, *process_range(lake, pid))
    assert len(logs) > 100 and len(measures) > 100 and len(trace.counter_tracks) == 4
    assert {i.args["level"] for i in trace.instants} == set(LEVELS.values())
    assert any("message" in i.args for i in trace.instants) and any(not i.name.isascii() for i in trace.instants)
    assert f"{len(logs)} log entries, {len(measures)} measures on 4 counter tracks" in done.stdout
    assert trace.threads and trace.events  # the spans are still there


def test_window_keeps_only_what_is_inside(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    start, stop = process_range(lake, pid)
    begin, end = start + (stop - start) // 3, start + (stop - start) // 2
    _, trace = write(lake, pid, tmp_path / "t.perfetto", "--logs", "--metrics", "--begin", str(begin), "--end", str(end),
                     "--quiet")
    logs, measures = check_content(lake, pid, trace, begin, end)
    assert 0 < len(logs) < len(expected_logs(lake, pid, start, stop))
    assert 0 < len(measures) < len(expected_measures(lake, pid, start, stop))
    assert all(begin <= i.ts <= end for i in trace.instants) and all(begin <= ts <= end for _, ts, _ in trace.counters)


def test_off_by_default_and_traces_keep_their_bytes(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    bare = tmp_path / "bare-lake"
    shutil.copytree(lake, bare, ignore=shutil.ignore_patterns("log_entries", "measures"))
    for options in ([], ["--async-layout", "micromegas"]):
        _, with_files = write(lake, pid, tmp_path / "a.perfetto", "--quiet", *options)
        _, without = write(bare, pid, tmp_path / "b.perfetto", "--quiet", *options)
        assert (tmp_path / "a.perfetto").read_bytes() == (tmp_path / "b.perfetto").read_bytes()
        assert with_files.instants == [] and with_files.counters == [] and with_files.log_tracks == []
        assert set(with_files.arg_names.values()) <= {"span_id", "parent_span_id"}  # lanes: span args only
    # Asked for, but the lake has none: nothing added, the counts say 0.
    done, trace = write(bare, pid, tmp_path / "c.perfetto", "--logs", "--metrics")
    assert trace.log_tracks == [] and trace.counter_tracks == []
    assert "0 log entries, 0 measures on 0 counter tracks" in done.stdout
    write(bare, pid, tmp_path / "d.perfetto", "--quiet")
    assert (tmp_path / "c.perfetto").read_bytes() == (tmp_path / "d.perfetto").read_bytes()


def test_python_api_keywords_and_chunks(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[1]["process_id"]
    summary = write_process_trace(str(lake), pid, None, None, tmp_path / "t.perfetto", logs=True, metrics=True)
    begin, end = process_range(lake, pid)
    logs, measures = check_content(lake, pid, decode((tmp_path / "t.perfetto").read_bytes()), begin, end)
    assert (summary.log_entries, summary.measures, summary.counter_tracks) == (len(logs), len(measures), 4)
    assert f"{len(logs)} log entries" in describe(summary)
    chunks = list(generate_trace_chunks(str(lake), pid, logs=True, metrics=True, chunk_size=4096))
    assert b"".join(d for _, d in chunks) == (tmp_path / "t.perfetto").read_bytes()
    only_logs = write_process_trace(str(lake), pid, None, None, tmp_path / "l.perfetto", logs=True)
    trace = decode((tmp_path / "l.perfetto").read_bytes())
    assert only_logs.measures == 0 and trace.counter_tracks == [] and len(trace.instants) == len(logs)
    assert "measures" not in describe(only_logs)
    with pytest.raises(RequestError, match="server-side"):
        write_process_trace(str(lake), pid, None, None, tmp_path / "s.perfetto", logs=True, server_side=True)


def test_every_lake_layout(small_lake, tmp_path):
    """`<id>.parquet` as a file, a folder `<id>.parquet/` or a folder `<id>/` of several files."""
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    reference = tmp_path / "ref.perfetto"
    write(lake, pid, reference, "--logs", "--metrics", "--quiet")
    for layout in ("dotted", "plain"):
        copy = tmp_path / layout
        shutil.copytree(lake, copy)
        for table in ("log_entries", "measures"):
            source = copy / table / f"{pid}.parquet"
            rows = pq.read_table(source)
            source.unlink()
            folder = copy / table / (f"{pid}.parquet" if layout == "dotted" else pid)
            folder.mkdir()
            half = rows.num_rows // 2
            pq.write_table(rows.slice(0, half), folder / "part-0.parquet")
            pq.write_table(rows.slice(half), folder / "part-1.parquet")
        write(copy, pid, tmp_path / "t.perfetto", "--logs", "--metrics", "--quiet")
        assert (tmp_path / "t.perfetto").read_bytes() == reference.read_bytes(), layout


def test_bad_columns_are_named(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[2]["process_id"]
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    path = copy / "measures" / f"{pid}.parquet"
    table = pq.read_table(path)
    # (an integer or float32 value reads as float64: test_producer_lakes; text is no number)
    pq.write_table(table.set_column(table.schema.get_field_index("value"), "value",
                                    pa.array(["1"] * table.num_rows, pa.string())), path)
    done = run_cli("write_perfetto", pid, "--lake", copy, "--metrics", "--filename", tmp_path / "t.perfetto")
    assert done.returncode != 0 and "'value'" in done.stderr and "float64" in done.stderr
    assert not (tmp_path / "t.perfetto").exists()
    path = copy / "log_entries" / f"{pid}.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["msg"]), path)
    done = run_cli("write_perfetto", pid, "--lake", copy, "--logs", "--filename", tmp_path / "t.perfetto")
    assert done.returncode != 0 and "missing column 'msg'" in done.stderr


@pytest.fixture
def server(small_lake):
    s = LakeFlightServer(small_lake[0])
    yield s
    s.shutdown()


def test_flightsql_serves_the_two_views(small_lake, server, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    start, stop = process_range(lake, pid)
    begin, end = start + (stop - start) // 4, stop - (stop - start) // 4
    args = ["--logs", "--metrics", "--begin", str(begin), "--end", str(end), "--quiet"]
    write(lake, pid, tmp_path / "local.perfetto", *args)
    done = run_cli("write_perfetto", pid, "--uri", server.uri, "--filename", tmp_path / "remote.perfetto", *args)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "remote.perfetto").read_bytes() == (tmp_path / "local.perfetto").read_bytes()
    for view in ("log_entries", "measures"):
        calls = [c for c in server.calls if f"view_instance('{view}'" in c["sql"]]
        assert len(calls) == 1
        assert "WHERE time >= TIMESTAMP" in calls[0]["sql"] and "AND time <= TIMESTAMP" in calls[0]["sql"]
        assert "query_range_begin" in calls[0]["headers"] and "query_range_end" in calls[0]["headers"]
    check_content(lake, pid, decode((tmp_path / "remote.perfetto").read_bytes()), begin, end)


class QueryStreamClient:
    """A stand-in for the official client (micromegas' FlightSQLClient): `query_stream` only."""

    def __init__(self, uri):
        self.flight = flight.FlightClient(uri)

    def query_stream(self, sql, begin=None, end=None):
        headers = [(b"query_range_begin", begin.isoformat().encode()), (b"query_range_end", end.isoformat().encode()),
                   (b"preserve_dictionary", b"true")]
        for chunk in self.flight.do_get(flight.Ticket(statement_ticket(sql)), flight.FlightCallOptions(headers=headers)):
            yield chunk.data


def test_official_client_as_a_source(small_lake, server, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    start, stop = process_range(lake, pid)
    begin = datetime.fromtimestamp(start // 1_000_000_000, timezone.utc)
    end = datetime.fromtimestamp(stop // 1_000_000_000 + 1, timezone.utc)
    summary = write_process_trace(QueryStreamClient(server.uri), pid, begin, end, tmp_path / "c.perfetto", logs=True,
                                  metrics=True)
    logs, measures = check_content(lake, pid, decode((tmp_path / "c.perfetto").read_bytes()), start, stop)
    assert (summary.log_entries, summary.measures) == (len(logs), len(measures)) and logs and measures
