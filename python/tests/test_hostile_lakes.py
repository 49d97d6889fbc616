"""Lakes no fixture of ours writes, built column by column as other producers (Spark, DuckDB,
hand-made exports) could: the small tables (processes, streams) stored as folders with marker
files, streams listed twice or with null ids, properties as maps, text that is not UTF-8.
Each trace is decoded with Perfetto's official protos; each bad lake must give one error line,
the documented exit status and no file (docs/lake-format.md, README "Command line")."""
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from trace_check import decode, rebuild_slices

from micromegas_perfetto.errors import DataError, SchemaError
from micromegas_perfetto.generation import write_process_trace
from micromegas_perfetto.lake import LocalLake

PID = "11111111-2222-3333-4444-555555555555"
T0 = 1_700_000_000_000_000_000
TS = pa.timestamp("ns", tz="+00:00")
PROPERTY = pa.struct([("key", pa.string()), ("value", pa.string())])


def write_processes(lake: Path, exe=pa.array(["hostile.exe"])) -> None:
    pq.write_table(pa.table({"process_id": [PID], "exe": exe, "start_time": pa.array([T0], TS),
                             "end_time": pa.array([T0 + 10_000], TS)}), lake / "processes.parquet")


def streams_table(rows, as_map: bool = False) -> pa.Table:
    """rows: (stream_id, tags, {property: value}); properties as list<struct<key, value>>, or
    as map<string, string>."""
    properties = (pa.array([list(r[2].items()) for r in rows], pa.map_(pa.string(), pa.string())) if as_map else
                  pa.array([[{"key": k, "value": v} for k, v in r[2].items()] for r in rows], pa.list_(PROPERTY)))
    return pa.table({"stream_id": pa.array([r[0] for r in rows], pa.string()), "process_id": [PID] * len(rows),
                     "tags": pa.array([r[1] for r in rows], pa.list_(pa.string())), "properties": properties})


def spans(rows) -> pa.Table:
    """rows: (begin offset, end offset, name)."""
    n = len(rows)
    return pa.table({"begin": pa.array([T0 + r[0] for r in rows], pa.int64()).cast(TS),
                     "end": pa.array([T0 + r[1] for r in rows], pa.int64()).cast(TS),
                     "name": pa.array([r[2] for r in rows]).dictionary_encode(),
                     "target": pa.array(["t"] * n).dictionary_encode(),
                     "filename": pa.array(["f.rs"] * n).dictionary_encode(), "line": pa.array([1] * n, pa.uint32())})


def make_lake(folder: Path, stream_rows, streams=None) -> Path:
    folder.mkdir()
    for kind in ("thread_spans", "async_events", "log_entries", "measures"):
        (folder / kind).mkdir()
    write_processes(folder)
    pq.write_table(streams if streams is not None else streams_table(stream_rows), folder / "streams.parquet")
    for i, row in enumerate(stream_rows):
        pq.write_table(spans([(10 * i + 1, 10 * i + 5, f"span-{row[0]}")]), folder / "thread_spans" / f"{row[0]}.parquet")
    return folder


def threads_of(data: bytes):
    return [(d.thread.thread_name, d.thread.tid) for d in decode(data).threads.values()]


def one_error_line(result, status: int, *words: str) -> str:
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# -- streams.parquet -------------------------------------------------------------------------


def test_a_stream_listed_twice_is_one_thread(tmp_path):
    # A streams table concatenated from two exports lists a stream twice; micromegas' thread
    # list groups by stream, so it is one thread: described once, its spans written once.
    rows = [("s2", ["cpu"], {"thread-name": "b", "thread-id": "2"}), ("s1", ["cpu"], {"thread-name": "a", "thread-id": "1"})]
    lake = make_lake(tmp_path / "lake", rows, streams=streams_table(rows + rows[:1]))
    out = tmp_path / "t.perfetto"
    summary = write_process_trace(lake, PID, None, None, out, "thread")
    assert [t.stream_id for t in LocalLake(lake).threads(PID, 0, 0)] == ["s1", "s2"]
    trace = decode(out.read_bytes())  # asserts that no track is described twice
    assert sorted(trace.threads) == ["a-1", "b-2"]
    assert summary.threads == 2 and summary.thread_spans == 2
    assert sorted(s[3] for s in rebuild_slices(trace.events)) == ["span-s1", "span-s2"]
    listed = run_cli("list-processes", "--lake", lake)
    assert listed.returncode == 0 and " 2 threads" in listed.stdout, listed.stdout


def test_null_stream_id_is_one_data_error_line(tmp_path):
    rows = [("s1", ["cpu"], {"thread-name": "a", "thread-id": "1"}), ("s2", ["cpu"], {})]
    table = streams_table(rows)
    table = table.set_column(0, "stream_id", pa.array(["s1", None], pa.string()))
    lake = make_lake(tmp_path / "lake", rows, streams=table)
    out = tmp_path / "t.perfetto"
    result = run_cli("write_perfetto", PID, "--lake", lake, "--filename", out)
    one_error_line(result, 1, "streams.parquet", "null in column 'stream_id'", "row 1")
    assert not out.exists()


def test_properties_as_a_map_name_threads_like_key_value_lists(tmp_path):
    # DuckDB and Spark store a property set as map<string, string>: the same pairs.
    rows = [("s1", ["cpu"], {"thread-name": "main", "thread-id": "+12"}), ("s2", ["cpu"], {"thread-name": "w"}),
            ("s3", ["cpu"], {"thread-id": "99999999999"}), ("s4", ["log"], {"thread-name": "logger"})]
    as_lists = make_lake(tmp_path / "lists", rows)
    as_map = make_lake(tmp_path / "map", rows, streams=streams_table(rows, as_map=True))
    traces = []
    for lake in (as_lists, as_map):
        out = lake / "t.perfetto"
        write_process_trace(lake, PID, None, None, out, "thread")
        traces.append(out.read_bytes())
    assert traces[0] == traces[1]
    assert sorted(threads_of(traces[1])) == sorted([("main-+12", 12), ("w-s2", 0), ("99999999999", 1215752191)])


@pytest.mark.parametrize("column, values, expected", [
    ("tags", pa.array(["cpu", "cpu,log"]), "list<string>"),  # text: "cpu" in "cpu,log" must not make a thread
    ("tags", pa.array([[1], [2]], pa.list_(pa.int32())), "list<string>"),
    ("properties", pa.array(["thread-name=a", "x"]), "list<struct<key: string, value: string>>"),
    ("properties", pa.array([[{"k": "thread-name", "v": "a"}], []],
                            pa.list_(pa.struct([("k", pa.string()), ("v", pa.string())]))), "list<struct<key"),
])
def test_mistyped_tags_or_properties_are_schema_errors(tmp_path, column, values, expected):
    rows = [("s1", ["cpu"], {"thread-name": "a"}), ("s2", ["cpu"], {})]
    table = streams_table(rows)
    table = table.set_column(table.schema.get_field_index(column), column, values)
    lake = make_lake(tmp_path / "lake", rows, streams=table)
    with pytest.raises(SchemaError, match=f"streams.parquet: column '{column}' has type .*expected"):
        LocalLake(lake).threads(PID, 0, 0)
    out = tmp_path / "t.perfetto"
    one_error_line(run_cli("write_perfetto", PID, "--lake", lake, "--filename", out), 2, column, expected)
    assert not out.exists()


def test_a_streams_table_without_tags_is_a_schema_error(tmp_path):
    # Without `tags` no stream is a thread: the trace was written with no thread and exit 0.
    rows = [("s1", ["cpu"], {"thread-name": "a"}), ("s2", ["cpu"], {})]
    lake = make_lake(tmp_path / "lake", rows, streams=streams_table(rows).drop_columns(["tags"]))
    with pytest.raises(SchemaError, match="streams.parquet: missing column 'tags'"):
        LocalLake(lake).threads(PID, 0, 0)
    out = tmp_path / "t.perfetto"
    one_error_line(run_cli("write_perfetto", PID, "--lake", lake, "--filename", out), 2, "tags", "list<string>")
    assert not out.exists()
    one_error_line(run_cli("list-processes", "--lake", lake), 2, "missing column 'tags'")


# -- processes.parquet and streams.parquet stored as folders -----------------------------------


def spark_folder(path: Path, table: pa.Table) -> None:
    """`table` as Spark or DuckDB leave a table: parts in partition folders, an empty part,
    and files that are not data (markers, checksums, summary metadata)."""
    data = pq.read_table(path) if path.is_file() else table
    path.unlink()
    (path / "k=1").mkdir(parents=True)
    (path / "k=2" / "deeper").mkdir(parents=True)
    (path / "empty-folder").mkdir()
    pq.write_table(data.slice(0, 1), path / "k=1" / "part-00000.parquet")
    pq.write_table(data.slice(0, 0), path / "k=1" / "part-00001.parquet")
    pq.write_table(data.slice(1), path / "k=2" / "deeper" / "part-00000.parquet")
    (path / "_SUCCESS").write_text("")
    (path / "part-00000.crc").write_bytes(b"\x00\x01crc")
    (path / ".part-00000.parquet.crc").write_bytes(b"\x00\x01crc")
    (path / "_metadata").write_bytes(b"not a parquet file")
    (path / "README.txt").write_text("exported by hand")


@pytest.mark.parametrize("name", ["processes.parquet", "streams.parquet"])
def test_small_tables_as_folders_read_only_their_parquet_files(tmp_path, name):
    rows = [("s1", ["cpu"], {"thread-name": "a", "thread-id": "1"}), ("s2", ["cpu"], {"thread-name": "b", "thread-id": "2"})]
    reference = make_lake(tmp_path / "file", rows)
    out = tmp_path / "reference.perfetto"
    write_process_trace(reference, PID, None, None, out)
    lake = make_lake(tmp_path / "folder", rows)
    spark_folder(lake / name, None)
    result = run_cli("write_perfetto", PID, "--lake", lake, "--filename", tmp_path / "t.perfetto", "--quiet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "t.perfetto").read_bytes() == out.read_bytes()
    listed = run_cli("list-processes", "--lake", lake)
    assert listed.returncode == 0 and PID in listed.stdout and " 2 threads" in listed.stdout, listed.stderr


# -- text that is not UTF-8 in the small tables ------------------------------------------------


def not_utf8(*texts: bytes) -> pa.Array:
    return pa.array(list(texts), pa.binary()).view(pa.string())  # as a careless writer leaves it


def test_invalid_utf8_in_exe_or_thread_properties_names_the_file_and_column(tmp_path):
    rows = [("s1", ["cpu"], {"thread-name": "a", "thread-id": "1"})]
    lake = make_lake(tmp_path / "exe", rows)
    write_processes(lake, exe=not_utf8(b"game\xff.exe"))
    out = tmp_path / "t.perfetto"
    with pytest.raises(DataError, match="processes.parquet: column 'exe' holds text that is not valid UTF-8"):
        write_process_trace(lake, PID, None, None, out)
    one_error_line(run_cli("write_perfetto", PID, "--lake", lake, "--filename", out), 1, "processes.parquet", "'exe'")
    assert not out.exists()

    values = pa.StructArray.from_arrays([pa.array(["thread-name"]), not_utf8(b"render\xfe")], names=["key", "value"])
    table = streams_table(rows).set_column(3, "properties", pa.ListArray.from_arrays(pa.array([0, 1], pa.int32()), values))
    lake = make_lake(tmp_path / "properties", rows, streams=table)
    one_error_line(run_cli("write_perfetto", PID, "--lake", lake, "--filename", out), 1, "streams.parquet",
                   "'properties'", "UTF-8")
    assert not out.exists()


# -- async events from a careless producer -----------------------------------------------------


def async_events(rows) -> pa.Table:
    """rows: (stream_id, time offset, event type, span id, parent span id, name)."""
    n = len(rows)
    column = lambda i: [r[i] for r in rows]  # noqa: E731
    return pa.table({"stream_id": pa.array(column(0)).dictionary_encode(),
                     "block_id": pa.array(["b"] * n).dictionary_encode(),
                     "time": pa.array([T0 + t for t in column(1)], pa.int64()).cast(TS),
                     "event_type": pa.array(column(2)).dictionary_encode(),
                     "span_id": pa.array(column(3), pa.int64()), "parent_span_id": pa.array(column(4), pa.int64()),
                     "depth": pa.array([0] * n, pa.uint32()), "hash": pa.array([0] * n, pa.uint32()),
                     "name": pa.array(column(5)).dictionary_encode(), "filename": pa.array(["a.rs"] * n).dictionary_encode(),
                     "target": pa.array(["t"] * n).dictionary_encode(), "line": pa.array([3] * n, pa.uint32())})


def test_careless_async_events_give_lanes_perfetto_reads_right(tmp_path):
    # Random parents (often beginning after their children), spans ending on another stream,
    # duplicates, begins or ends alone, events outside the range, rows shuffled: the lanes
    # layouts must still be traces Perfetto reads as written, every flow connected.
    import random
    from trace_check import expected_async, partial_overlaps
    from collections import Counter
    rng = random.Random(11)
    span = 10_000
    rows = []
    for sid in range(1, 1500):
        b = rng.randint(-500, span + 100)
        d = rng.choice([0, 1, rng.randint(1, 1_000), rng.randint(1, 20_000)])
        parent = rng.choice([0, 0, rng.randint(1, sid)])
        s1, s2 = rng.choice(["s1", "s2", "unlisted"]), rng.choice(["s1", "s2", "unlisted"])
        r = rng.random()
        if r < 0.85:
            rows += [(s1, b, "begin", sid, parent, f"n{sid % 9}"), (s2, b + d, "end", sid, parent, f"n{sid % 9}")]
        elif r < 0.9:
            rows.append((s1, b, "begin", sid, parent, "open"))
        elif r < 0.95:
            rows.append((s2, b, "end", sid, parent, "before"))
        else:
            rows += [(s1, b, "begin", sid, parent, "dup"), (s1, b + 5, "begin", sid, parent, "dup-late"),
                     (s2, b + d, "end", sid, parent, "dup"), (s2, b + d - 1, "end", sid, parent, "dup")]
    rng.shuffle(rows)
    lake = make_lake(tmp_path / "lake", [("s1", ["cpu"], {"thread-name": "a"}), ("s2", ["cpu"], {"thread-id": "2"})])
    pq.write_table(async_events(rows), lake / "async_events" / f"{PID}.parquet", row_group_size=500)
    expected, counts = expected_async(lake, PID, T0, T0 + span)
    assert counts["begun_before_range"] > 30 and counts["duplicates"] > 30 and counts["dropped"] > 10
    for layout in ("lanes", "thread-lanes"):
        out = tmp_path / f"{layout}.perfetto"
        result = run_cli("write_perfetto", PID, "--lake", lake, "--filename", out, "--spans", "async",
                         "--async-layout", layout, "--validate")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "no problems" in result.stdout, result.stdout
        assert (f"(async anomalies: open at end {counts['open_at_end']}, begun before range "
                f"{counts['begun_before_range']}, duplicates {counts['duplicates']}, dropped {counts['dropped']})"
                in result.stdout), result.stdout
        trace = decode(out.read_bytes())
        slices = rebuild_slices(trace.events)
        assert Counter((s[3], s[1], s[2]) for s in slices) == Counter(expected)
        assert partial_overlaps(slices) == 0


@pytest.mark.parametrize("table, bad, message", [
    ("thread_spans", "utf8", "thread spans of stream 's1': invalid UTF-8 in column 'name' at row 70001"),
    ("async_events", "event_type", "async events: event_type must be 'begin' or 'end', got 'BEGIN' at row 70001"),
    ("async_events", "null event_type", "async events: null in column 'event_type' at row 70001"),
])
def test_bad_value_deep_in_a_table_is_named_with_its_table_and_row(tmp_path, table, bad, message):
    rows = [("s1", ["cpu"], {"thread-name": "a", "thread-id": "1"})]
    lake = make_lake(tmp_path / "lake", rows)
    n = 70_010
    if table == "thread_spans":
        names = [b"span"] * n
        names[70_001] = b"sp\xffan"
        data = spans([(i, i + 1, "x") for i in range(n)]).set_column(2, "name", not_utf8(*names))
        pq.write_table(data, lake / "thread_spans" / "s1.parquet", row_group_size=10_000)
    else:
        types = ["begin", "end"] * (n // 2)
        types[70_001] = None if bad.startswith("null") else "BEGIN"
        data = async_events([("s1", i, types[i], i // 2 + 1, 0, "a") for i in range(n)])
        data = data.set_column(3, "event_type", pa.array(types))
        pq.write_table(data, lake / "async_events" / f"{PID}.parquet", row_group_size=10_000)
    out = tmp_path / "t.perfetto"
    line = one_error_line(run_cli("write_perfetto", PID, "--lake", lake, "--filename", out, "--end", str(T0 + n + 5)),
                          1, message)
    assert line == f"error: invalid data: {message}"
    assert not out.exists()


# -- the default range of a process without end_time --------------------------------------------


def test_without_end_time_the_range_runs_to_the_last_log_entry_or_measure(tmp_path):
    # "If missing, the process range ends at its last event": log entries and measures are
    # events of the process too (the server's range is that of all its blocks, logs included).
    rows = [("s1", ["cpu"], {"thread-name": "a", "thread-id": "1"})]
    lake = make_lake(tmp_path / "lake", rows)  # one span, 1..5 ns after T0
    pq.write_table(pa.table({"process_id": [PID], "exe": ["x"], "start_time": pa.array([T0], TS)}),
                   lake / "processes.parquet")
    pq.write_table(async_events([("s1", 2, "begin", 1, 0, "open")]), lake / "async_events" / f"{PID}.parquet")
    pq.write_table(pa.table({"time": pa.array([T0 + 3, T0 + 900], TS), "target": ["t", "t"],
                             "level": pa.array([4, 2], pa.int32()), "msg": ["early", "late"]}),
                   lake / "log_entries" / f"{PID}.parquet")
    pq.write_table(pa.table({"time": pa.array([T0 + 4, T0 + 700], TS), "name": ["m", "m"], "unit": ["ms", "ms"],
                             "value": [1.0, 2.0]}), lake / "measures" / f"{PID}.parquet")
    out = tmp_path / "t.perfetto"
    summary = write_process_trace(lake, PID, None, None, out, logs=True, metrics=True)
    assert (summary.begin_ns, summary.end_ns) == (T0, T0 + 900)
    trace = decode(out.read_bytes())
    assert sorted((i.ts - T0, i.name) for i in trace.instants) == [(3, "early"), (900, "late")]
    assert sorted((ts - T0, v) for _, ts, v in trace.counters) == [(4, 1.0), (700, 2.0)]
    assert [(b - T0, e - T0, name) for _, b, e, name in rebuild_slices(trace.events) if name == "open"] == [(2, 900, "open")]
    # Without start_time too, the first of them begins it.
    pq.write_table(pa.table({"process_id": [PID], "exe": ["x"]}), lake / "processes.parquet")
    pq.write_table(pa.table({"time": pa.array([T0 - 50, T0 + 900], TS), "target": ["t", "t"],
                             "level": pa.array([4, 2], pa.int32()), "msg": ["first", "late"]}),
                   lake / "log_entries" / f"{PID}.parquet")
    summary = write_process_trace(lake, PID, None, None, out, "thread")
    assert (summary.begin_ns, summary.end_ns) == (T0 - 50, T0 + 900)


# -- hive-style partitions: a column kept out of the files, in the folder names ------------------


def test_partition_columns_come_from_the_folder_names(tmp_path):
    # Spark, DuckDB and pyarrow's dataset writer partition a table into key=value/ folders
    # and leave the key column out of the files: log entries by level, async events by
    # event_type, measures by unit (empty and null units, a unit that needs URL escaping).
    import pyarrow.dataset as ds
    from collections import Counter
    rows = [("s1", ["cpu"], {"thread-name": "a", "thread-id": "1"})]
    flat = make_lake(tmp_path / "flat", rows)
    events = async_events([("s1", 10, "begin", 1, 0, "x"), ("s1", 40, "end", 1, 0, "x"), ("s1", 20, "begin", 2, 1, "y"),
                           ("s1", 90, "end", 2, 1, "y"), ("s1", 30, "begin", 3, 0, "open")])
    logs = pa.table({"time": pa.array([T0 + t for t in (50, 5, 70, 60)], TS), "target": ["a::b"] * 4,
                     "level": pa.array([2, 4, 2, 6], pa.int32()), "msg": ["two", "four", "two again", "six"]})
    measures = pa.table({"time": pa.array([T0 + t for t in (1, 2, 3, 4, 5)], TS), "name": ["m"] * 5,
                         "unit": ["ms", "", None, "a/b c%", "ms"], "value": [1.0, 2.0, 3.0, 4.0, 5.0]})
    pq.write_table(events, flat / "async_events" / f"{PID}.parquet")
    pq.write_table(logs, flat / "log_entries" / f"{PID}.parquet")
    pq.write_table(measures, flat / "measures" / f"{PID}.parquet")
    partitioned = make_lake(tmp_path / "partitioned", rows)
    for table, kind, folder, key in ((events, "async_events", f"{PID}.parquet", "event_type"),
                                     (logs, "log_entries", PID, "level"), (measures, "measures", PID, "unit")):
        ds.write_dataset(table, partitioned / kind / folder, format="parquet", partitioning=[key],
                         partitioning_flavor="hive")
        assert all(key not in pq.read_schema(f).names for f in (partitioned / kind / folder).rglob("*.parquet"))
    (partitioned / "log_entries" / PID / "_SUCCESS").write_text("")

    def content(lake):
        out = lake / "t.perfetto"
        result = run_cli("write_perfetto", PID, "--lake", lake, "--filename", out, "--logs", "--metrics", "--quiet")
        assert result.returncode == 0, result.stderr
        trace = decode(out.read_bytes())
        names = {d.uuid: d.name for d in trace.counter_tracks}
        return (Counter((s[1] - T0, s[2] - T0, s[3]) for s in rebuild_slices(trace.events)),
                Counter((i.ts - T0, i.name, i.args["level"], i.args["target"]) for i in trace.instants),
                Counter((names[track], ts - T0, v) for track, ts, v in trace.counters))
    expected = content(flat)
    assert content(partitioned) == expected
    assert expected[1][(60, "six", "trace", "a::b")] == 1 and expected[2][("m (a/b c%)", 4, 4.0)] == 1
    assert expected[2][("m", 2, 2.0)] == 1 and expected[2][("m", 3, 3.0)] == 1  # empty and null unit: no unit


def test_a_partition_value_of_the_wrong_kind_is_a_schema_error(tmp_path):
    rows = [("s1", ["cpu"], {"thread-name": "a", "thread-id": "1"})]
    lake = make_lake(tmp_path / "lake", rows)
    folder = lake / "log_entries" / PID / "level=warn"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"time": pa.array([T0 + 1], TS), "target": ["t"], "msg": ["m"]}), folder / "part-0.parquet")
    out = tmp_path / "t.perfetto"
    one_error_line(run_cli("write_perfetto", PID, "--lake", lake, "--filename", out, "--logs", "--spans", "thread"), 2,
                   "level=warn/part-0.parquet", "column 'level'", "not an integer")
    assert not out.exists()


def test_small_tables_partitioned_by_process(tmp_path):
    # streams.parquet/ partitioned by process_id, the column only in the folder names.
    import pyarrow.dataset as ds
    rows = [("s1", ["cpu"], {"thread-name": "a", "thread-id": "1"}), ("s2", ["cpu"], {"thread-name": "b"})]
    lake = make_lake(tmp_path / "lake", rows)
    streams = pq.read_table(lake / "streams.parquet")
    (lake / "streams.parquet").unlink()
    ds.write_dataset(streams, lake / "streams.parquet", format="parquet", partitioning=["process_id"],
                     partitioning_flavor="hive")
    assert sorted(t.name for t in LocalLake(lake).threads(PID, 0, 0)) == ["a-1", "b-s2"]
    listed = run_cli("list-processes", "--lake", lake)
    assert listed.returncode == 0 and " 2 threads" in listed.stdout, listed.stdout + listed.stderr


# -- legacy INT96 timestamps (Spark, Impala, Hive) ------------------------------------------------


def test_int96_times_are_exact_and_out_of_range_ones_are_errors(tmp_path):
    rows = [("s1", ["cpu"], {"thread-name": "a", "thread-id": "1"})]
    data = spans([(1, 123_456_789, "outer"), (5, 999, "inner"), (200_000_000, 300_000_001, "later")])
    reference = make_lake(tmp_path / "int64", rows)
    pq.write_table(data, reference / "thread_spans" / "s1.parquet")
    legacy = make_lake(tmp_path / "int96", rows)
    pq.write_table(data, legacy / "thread_spans" / "s1.parquet", use_deprecated_int96_timestamps=True, row_group_size=2)
    assert pq.ParquetFile(legacy / "thread_spans" / "s1.parquet").metadata.schema.column(0).physical_type == "INT96"
    traces = []
    for lake in (reference, legacy):
        out = lake / "t.perfetto"
        write_process_trace(lake, PID, T0, T0 + 400_000_000, out, "thread")
        traces.append(out.read_bytes())
    assert traces[0] == traces[1]  # nanoseconds kept exactly

    # 9999-12-31, a common "no end" sentinel: pyarrow would read it wrapped, as a date of 1816.
    sentinel = pa.array([253402214400 * 10**6], pa.timestamp("us", tz="UTC"))
    late = data.slice(0, 1).set_column(1, "end", sentinel)
    for name, kind in (("with range", ["--begin", str(T0), "--end", str(T0 + 10**9)]), ("whole process", [])):
        lake = make_lake(tmp_path / f"sentinel-{len(kind)}", rows)
        pq.write_table(late, lake / "thread_spans" / "s1.parquet", use_deprecated_int96_timestamps=True)
        if not kind:  # no end_time: the range is read from the data
            pq.write_table(pa.table({"process_id": [PID], "exe": ["x"], "start_time": pa.array([T0], TS)}),
                           lake / "processes.parquet")
        out = tmp_path / "t.perfetto"
        one_error_line(run_cli("write_perfetto", PID, "--lake", lake, "--filename", out, "--spans", "thread", *kind), 1,
                       "s1.parquet", "column 'end'", "outside the range of int64 nanoseconds")
        assert not out.exists(), name


# -- a table of many part files ------------------------------------------------------------------


def test_a_table_of_more_part_files_than_open_file_descriptors(tmp_path):
    # Spark writes a part file per task and partition: one stream's table may have thousands.
    # They are read one at a time, never all open at once (EMFILE past `ulimit -n`).
    import resource
    import subprocess
    import sys
    rows = [("s1", ["cpu"], {"thread-name": "a", "thread-id": "1"})]
    lake = make_lake(tmp_path / "lake", rows)
    (lake / "thread_spans" / "s1.parquet").unlink()
    data = spans([(10 * i, 10 * i + 5, f"s{i % 3}") for i in range(300)])
    for i in range(300):
        folder = lake / "thread_spans" / "s1" / f"hour={i // 50:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(data.slice(i, 1), folder / f"part-{i:05d}.parquet")
    out = tmp_path / "t.perfetto"

    def limited():
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
    result = subprocess.run([sys.executable, "-m", "micromegas", "write_perfetto", PID, "--lake", str(lake),
                             "--filename", str(out), "--spans", "thread", "--quiet"],
                            capture_output=True, text=True, timeout=300, preexec_fn=limited)
    assert result.returncode == 0, result.stderr
    trace = decode(out.read_bytes())
    assert [(b - T0, e - T0) for _, b, e, _ in sorted(rebuild_slices(trace.events), key=lambda s: s[1])] == \
        [(10 * i, 10 * i + 5) for i in range(300)]


# -- property lookup as micromegas' property_get ----------------------------------------------


def test_thread_properties_are_read_as_micromegas_property_get_reads_them(tmp_path):
    # property_get (micromegas' analytics crate) takes the first entry whose key matches,
    # ASCII case ignored; the lake, the server's thread list and server-side generation agree.
    from flight_fixture import LakeFlightServer
    from micromegas_perfetto.flightsql import FlightSQLSource
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(5)]
    lake = tmp_path / "lake"
    make_lake(lake, [(i, ["cpu"], {}) for i in ids])
    properties = [
        [("THREAD-NAME", "Main"), ("thread-name", "second"), ("Thread-Id", "42"), ("thread-id", "7")],
        [("thread-name", None), ("thread-name", "later"), ("thread-id", "3")],  # the first is empty
        [("thread-ıd", "9"), ("thread-name", "dotless")],  # not ASCII: not thread-id
        [("thread_name", "x"), ("threadname", "y"), ("thread-id", "-5")],
        [],
    ]
    table = pa.table({"stream_id": ids, "process_id": [PID] * len(ids),
                      "tags": pa.array([["cpu"]] * len(ids), pa.list_(pa.string())),
                      "properties": pa.array([[{"key": k, "value": v} for k, v in p] for p in properties],
                                             pa.list_(PROPERTY))})
    pq.write_table(table, lake / "streams.parquet")
    expected = [("Main-42", 42), ("3", 3), (f"dotless-{ids[2]}", 0), ("-5", -5), (ids[4], 0)]
    assert [(t.name, t.thread_id) for t in LocalLake(lake).threads(PID, 0, 0)] == expected
    server = LakeFlightServer(lake)
    try:
        traces = []
        for source, server_side in ((LocalLake(lake), False), (FlightSQLSource(uri=server.uri), False),
                                    (FlightSQLSource(uri=server.uri), True)):
            out = tmp_path / f"{len(traces)}.perfetto"
            with source:
                write_process_trace(source, PID, None, None, out, "thread", async_layout="micromegas",
                                    server_side=server_side)
            traces.append(out.read_bytes())
    finally:
        server.shutdown()
    assert traces[0] == traces[1] == traces[2]
    assert sorted(threads_of(traces[0])) == sorted(expected)


def test_list_processes_skips_rows_without_a_process_id(tmp_path):
    lake = make_lake(tmp_path / "lake", [("s1", ["cpu"], {"thread-name": "a"})])
    pq.write_table(pa.table({"process_id": pa.array([PID, None, "p3"]), "exe": pa.array(["a", "b", None]),
                             "start_time": pa.array([T0, None, T0 + 5], TS)}), lake / "processes.parquet")
    listed = run_cli("list-processes", "--lake", lake, "--ids")
    assert listed.returncode == 0 and listed.stdout.split() == [PID, "p3"], listed.stdout + listed.stderr


@pytest.mark.parametrize("form", ["file", "folder"])
def test_an_int96_process_start_out_of_range_is_an_error(tmp_path, form):
    lake = make_lake(tmp_path / "lake", [("s1", ["cpu"], {"thread-name": "a"})])
    table = pa.table({"process_id": [PID], "exe": ["x"],
                      "start_time": pa.array([253402214400 * 10**6], pa.timestamp("us", tz="UTC"))})
    target = lake / "processes.parquet"
    if form == "folder":
        target.unlink()
        (target / "k=1").mkdir(parents=True)
        target = target / "k=1" / "part-0.parquet"
    pq.write_table(table, target, use_deprecated_int96_timestamps=True)
    out = tmp_path / "t.perfetto"
    one_error_line(run_cli("write_perfetto", PID, "--lake", lake, "--filename", out), 1,
                   "column 'start_time'", "outside the range of int64 nanoseconds")
    assert not out.exists()
