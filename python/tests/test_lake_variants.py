"""Lakes as other tools write them (docs/lake-format.md): every layout, time unit and zone,
threads missing their properties, processes without end_time. Each variant's trace is
decoded with Perfetto's official protos and checked against the lake read independently:
thread descriptors as micromegas names them, every thread and async span exactly, over the
whole range and a window."""
import itertools
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from trace_check import decode, expected_async, lake_table, ns, partial_overlaps, rebuild_slices, written_slices

from micromegas_perfetto.generation import Progress, write_process_trace
from micromegas_perfetto.lake import LocalLake
from micromegas_perfetto.sample_lake import LAYOUTS, LakeVariant, write_sample_lake

TIMES = [(unit, zone) for unit in ("s", "ms", "us", "ns") for zone in ("+00:00", "UTC", None)] + [("int64", None)]
MATRIX = [LakeVariant(layout=layout, time_unit=unit, time_zone=zone, thread_properties=props, end_time=end,
                      row_group_rows=10)
          for layout, (unit, zone), props, end in itertools.product(LAYOUTS, TIMES, ("full", "partial"),
                                                                    ("present", "missing"))]


def variant_id(v: LakeVariant) -> str:
    return f"{v.layout}-{v.time_unit}-{v.time_zone or 'nozone'}-{v.thread_properties}-end_{v.end_time}"


class Notes(Progress):
    def __init__(self):
        self.notes = []

    def note(self, text):
        self.notes.append(text)


def make_lake(folder: Path, variant: LakeVariant):
    return write_sample_lake(folder, seed=11, threads=3, spans_per_thread=120, async_spans=150, variant=variant)


# -- the oracle: the lake read without the package ---------------------------------------------


def micromegas_threads(lake, process_id):
    """(stream_id, name, tid) per thread stream, by micromegas' rule (docs/lake-format.md)."""
    streams = pq.read_table(Path(lake) / "streams.parquet").to_pylist()
    out = []
    for s in sorted((s for s in streams if s["process_id"] == process_id and "cpu" in s["tags"]),
                    key=lambda s: s["stream_id"]):
        props = {p["key"]: p["value"] for p in s["properties"]}
        name, tid_text = props.get("thread-name", ""), props.get("thread-id", "")
        shown = tid_text or s["stream_id"]
        tid = int(tid_text) if re.fullmatch(r"[+-]?[0-9]+", tid_text) else 0
        out.append((s["stream_id"], f"{name}-{shown}" if name else shown, tid))
    return out


def expected_range(lake, process_id):
    processes = pq.read_table(Path(lake) / "processes.parquet")
    row = processes.column("process_id").to_pylist().index(process_id)
    start = ns(processes.column("start_time"))[row]
    end = ns(processes.column("end_time"))[row] if "end_time" in processes.column_names else None
    if end is None:
        times = []
        for stream_id, _, _ in micromegas_threads(lake, process_id):
            table = lake_table(lake, "thread_spans", stream_id)
            if table is not None:
                times += ns(table.column("end"))
        for kind in ("async_events", "log_entries", "measures"):  # the process's whole telemetry
            table = lake_table(lake, kind, process_id)
            if table is not None:
                times += ns(table.column("time"))
        end = max(times)
    return start, end


def expected_spans(lake, stream_id, begin, end):
    table = lake_table(lake, "thread_spans", stream_id, columns=["begin", "end", "name"])
    if table is None:
        return []
    rows = zip(ns(table.column("begin")), ns(table.column("end")), table.column("name").cast("string").to_pylist())
    return [(b, e, n) for b, e, n in rows if b <= end and e >= begin]


def check(lake, process_id, data: bytes, begin, end):
    trace = decode(data)
    threads = micromegas_threads(lake, process_id)
    assert {name: (d.thread.tid, d.thread.thread_name) for name, d in trace.threads.items()} == \
        {name: (tid, name) for _, name, tid in threads}
    tracks = {trace.threads[name].uuid: stream for stream, name, _ in threads}
    written = written_slices([e for e in trace.events if e.track in tracks])
    for stream, name, _ in threads:
        mine = [(b, e, n) for track, b, e, n in written if tracks[track] == stream]
        assert mine == expected_spans(lake, stream, begin, end), name
    assert written, "some thread spans"
    slices = rebuild_slices([e for e in trace.events if e.track not in tracks])
    expected, _ = expected_async(lake, process_id, begin, end)
    assert partial_overlaps(slices) == 0
    assert Counter((n, b, e) for _, b, e, n in slices) == Counter(expected)
    assert expected, "some async spans"


# -- the matrix ----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", MATRIX, ids=variant_id)
def test_variant_traces_exactly(variant, tmp_path):
    lake = tmp_path / "lake"
    processes = make_lake(lake, variant)
    pid = processes[0]["process_id"]
    begin, end = expected_range(lake, pid)
    notes = Notes()
    summary = write_process_trace(lake, pid, None, None, tmp_path / "whole.perfetto", progress=notes)
    assert (summary.begin_ns, summary.end_ns) == (begin, end)
    assert notes.notes == []
    check(lake, pid, (tmp_path / "whole.perfetto").read_bytes(), begin, end)

    w_begin, w_end = begin + (end - begin) * 3 // 10, begin + (end - begin) * 6 // 10
    write_process_trace(lake, pid, w_begin, w_end, tmp_path / "window.perfetto")
    check(lake, pid, (tmp_path / "window.perfetto").read_bytes(), w_begin, w_end)

    # Row groups outside the window are not read, in every layout.
    source = LocalLake(lake)
    stream = source.threads(pid, 0, 0)[0].stream_id
    read = source.thread_spans(stream, w_begin, w_end).read_all().num_rows
    total = lake_table(lake, "thread_spans", stream).num_rows
    assert 0 < read < total * 0.7


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("unit, zone", [("s", None), ("ms", "UTC"), ("us", "+00:00"), ("int64", None)])
def test_layouts_and_units_give_the_micromegas_bytes(tmp_path, layout, unit, zone):
    """The same telemetry in another layout and unit is the same trace as micromegas' own
    format, up to the time stretch: so for ns, the same bytes."""
    reference = LakeVariant(row_group_rows=40)
    variant = LakeVariant(layout=layout, time_unit=unit, time_zone=zone, row_group_rows=40)
    pid = make_lake(tmp_path / "a", reference)[0]["process_id"]
    assert make_lake(tmp_path / "b", variant)[0]["process_id"] == pid
    a = decode(write_and_read(tmp_path / "a", pid, tmp_path / "a.perfetto"))
    b = decode(write_and_read(tmp_path / "b", pid, tmp_path / "b.perfetto"))
    factor = {"s": 10**9, "ms": 10**6, "us": 10**3}.get(unit, 1)
    t0 = 1_700_000_000_000_000_000
    stretched = [e.__class__(e.track, e.type, t0 + (e.ts - t0) * factor, e.name, e.category, e.filename, e.line)
                 for e in a.events]
    assert b.events == stretched and b.threads == a.threads and b.named_tracks == a.named_tracks
    if factor == 1:
        assert (tmp_path / "a.perfetto").read_bytes() == (tmp_path / "b.perfetto").read_bytes()


def write_and_read(lake, pid, out) -> bytes:
    write_process_trace(lake, pid, None, None, out)
    return Path(out).read_bytes()


def test_null_end_time_is_the_last_event(tmp_path):
    lake = tmp_path / "lake"
    pid = make_lake(lake, LakeVariant(layout="folder", end_time="null", time_unit="us"))[0]["process_id"]
    begin, end = expected_range(lake, pid)
    summary = write_process_trace(lake, pid, None, None, tmp_path / "t.perfetto")
    assert (summary.begin_ns, summary.end_ns) == (begin, end)
    check(lake, pid, (tmp_path / "t.perfetto").read_bytes(), begin, end)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_no_start_or_end_time_is_the_data_range(tmp_path, layout):
    lake = tmp_path / "lake"
    pid = make_lake(lake, LakeVariant(layout=layout, end_time="missing", time_unit="ms"))[0]["process_id"]
    processes = pq.read_table(lake / "processes.parquet")
    pq.write_table(processes.drop_columns(["start_time"]), lake / "processes.parquet")
    first = [min(ns(lake_table(lake, "thread_spans", s).column("begin"))) for s, _, _ in micromegas_threads(lake, pid)]
    first += [min(ns(lake_table(lake, kind, pid).column("time"))) for kind in ("async_events", "log_entries", "measures")]
    assert min(first[-2:]) < min(first[:-2])  # the sample lake logs from the process start, before any span
    summary = write_process_trace(lake, pid, None, None, tmp_path / "t.perfetto")
    begin, end = min(first), expected_range_end(lake, pid)
    assert (summary.begin_ns, summary.end_ns) == (begin, end)
    check(lake, pid, (tmp_path / "t.perfetto").read_bytes(), begin, end)


def expected_range_end(lake, pid):
    times = [max(ns(lake_table(lake, "thread_spans", s).column("end"))) for s, _, _ in micromegas_threads(lake, pid)]
    return max(times + [max(ns(lake_table(lake, kind, pid).column("time")))
                        for kind in ("async_events", "log_entries", "measures")])


def test_sorted_path_order_across_nested_parts(tmp_path):
    """Part files are read in sorted path order, recursively: thread spans stay in begin order."""
    lake = tmp_path / "lake"
    processes = make_lake(lake, LakeVariant(layout="folder", parts=12, row_group_rows=7))
    pid = processes[0]["process_id"]
    source = LocalLake(lake)
    stream = source.threads(pid, 0, 0)[0].stream_id
    files = source.table_files("thread_spans", stream)
    assert [f.relative_to(lake / "thread_spans" / stream).as_posix() for f in files] == \
        [f"part={i:03d}/part-{i:05d}.parquet" for i in range(12)]
    begins = ns(source.thread_spans(stream, 0, 1 << 62).read_all().column("begin"))
    assert begins == sorted(begins) and len(begins) == 120


def test_part_files_of_one_table_may_differ_in_types(tmp_path):
    """Parts written by different tools: time units, zones, plain or dictionary strings, integer
    widths. The table reads as one, times exact."""
    lake = tmp_path / "lake"
    pid = make_lake(lake, LakeVariant(layout="folder", parts=3))[0]["process_id"]
    stream = LocalLake(lake).threads(pid, 0, 0)[0].stream_id
    parts = LocalLake(lake).table_files("thread_spans", stream)
    before = lake_table(lake, "thread_spans", stream)
    for part, (unit, zone) in zip(parts[1:], [("us", None), ("ns", "UTC")]):
        table = pq.read_table(part)
        for column in ("begin", "end"):
            values = table.column(column).cast(pa.int64())
            if unit == "us":
                values = pa.compute.divide(values, 1000)
            table = table.set_column(table.schema.get_field_index(column), column,
                                     values.cast(pa.timestamp(unit, tz=zone)))
        for column in ("name", "target"):
            table = table.set_column(table.schema.get_field_index(column), column, table.column(column).cast(pa.string()))
        table = table.set_column(table.schema.get_field_index("line"), "line", table.column("line").cast(pa.int64()))
        pq.write_table(table, part)
    after = lake_table(lake, "thread_spans", stream)
    assert ns(after.column("begin")) != ns(before.column("begin"))  # us lost the ns digits of one part
    begin, end = expected_range(lake, pid)
    write_process_trace(lake, pid, None, None, tmp_path / "t.perfetto")
    check(lake, pid, (tmp_path / "t.perfetto").read_bytes(), begin, end)


def test_table_files_layouts(tmp_path):
    lake = tmp_path / "lake"
    make_lake(lake, LakeVariant())
    source = LocalLake(lake)
    (lake / "log_entries").mkdir(exist_ok=True)  # the sample lake has logs and metrics
    (lake / "log_entries" / "p1.parquet").mkdir()
    pq.write_table(pa.table({"x": [1]}), lake / "log_entries" / "p1.parquet" / "b.parquet")
    pq.write_table(pa.table({"x": [1]}), lake / "log_entries" / "p1.parquet" / "a.parquet")
    (lake / "log_entries" / "p1.parquet" / "notes.txt").write_text("ignored")
    (lake / "measures").mkdir(exist_ok=True)
    (lake / "measures" / "p2" / "y").mkdir(parents=True)
    pq.write_table(pa.table({"x": [1]}), lake / "measures" / "p2" / "y" / "a.parquet")
    pq.write_table(pa.table({"x": [1]}), lake / "measures" / "p2" / "z.parquet")
    assert [p.name for p in source.table_files("log_entries", "p1")] == ["a.parquet", "b.parquet"]
    assert [p.relative_to(lake).as_posix() for p in source.table_files("measures", "p2")] == \
        ["measures/p2/y/a.parquet", "measures/p2/z.parquet"]
    assert source.table_files("measures", "p1") == [] and source.table_files("log_entries", "../x") == []
    with pytest.raises(ValueError):
        source.table_files("nope", "p1")


# -- notes on stderr: a listed thread or a process with no data file ----------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_missing_data_files_are_noted_once(tmp_path, layout):
    import shutil
    lake = tmp_path / "lake"
    pid = make_lake(lake, LakeVariant(layout=layout))[0]["process_id"]
    source = LocalLake(lake)
    gone = source.threads(pid, 0, 0)[1]
    for path in source.table_files("thread_spans", gone.stream_id):
        path.unlink()
    for path in list((lake / "thread_spans").glob(f"{gone.stream_id}*")):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "t.perfetto", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"note: thread {gone.name} (stream {gone.stream_id}) has no thread spans in lake {lake}: its track is empty"]
    trace = decode((tmp_path / "t.perfetto").read_bytes())
    assert gone.name in trace.threads  # listed, with an empty track

    for path in list((lake / "async_events").glob(f"{pid}*")):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "t.perfetto", "--spans", "async")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == [f"note: process {pid} has no async events in lake {lake}: the trace has no async spans"]
    result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "t.perfetto", "--spans", "thread",
                     "--quiet")
    assert result.returncode == 0 and result.stderr.count("note:") == 1  # the thread only: async not asked for


@pytest.mark.parametrize("kind, option, what, ending", [
    ("log_entries", "--logs", "log entries", "Logs track"),
    ("measures", "--metrics", "measures", "counter tracks"),
])
def test_missing_logs_or_measures_asked_for_are_noted(tmp_path, kind, option, what, ending):
    """--logs or --metrics on a lake without that table: a note says why the trace has none
    (it said nothing: '0 log entries' and no reason); not asked for, no note."""
    import shutil
    lake = tmp_path / "lake"
    pid = make_lake(lake, LakeVariant())[0]["process_id"]
    shutil.rmtree(lake / kind)
    result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "t.perfetto", option, "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"note: process {pid} has no {what} in lake {lake}: the trace has no {ending}"]
    result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "t.perfetto", "--quiet")
    assert result.returncode == 0 and result.stderr == ""


def test_library_notes_are_warnings(tmp_path):
    from micromegas_perfetto.errors import NoDataWarning
    lake = tmp_path / "lake"
    pid = make_lake(lake, LakeVariant())[0]["process_id"]
    (lake / "async_events" / f"{pid}.parquet").unlink()
    with pytest.warns(NoDataWarning, match="no async events") as caught:
        write_process_trace(lake, pid, None, None, tmp_path / "t.perfetto")
    # The warning names the user's call, not a line inside the package (generation.py:324).
    assert [w.filename for w in caught] == [__file__], [(w.filename, w.lineno) for w in caught]


# -- unreadable files and out-of-range times ----------------------------------------------------


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    elif how == "text":
        path.write_text("stream_id,begin,end\n")
    elif how == "empty":
        path.write_bytes(b"")
    else:  # a damaged page: the footer is intact, the data is not
        middle = len(data) // 3
        path.write_bytes(data[:middle] + bytes(200) + data[middle + 200:])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("how", ["truncated", "garbage", "text", "empty", "damaged"])
def test_unreadable_lake_file_is_a_data_failure(tmp_path, layout, how):
    lake = tmp_path / "lake"
    pid = make_lake(lake, LakeVariant(layout=layout))[0]["process_id"]
    source = LocalLake(lake)
    target = source.table_files("thread_spans", source.threads(pid, 0, 0)[0].stream_id)[-1]
    corrupt(target, how)
    result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "t.perfetto", "--quiet")
    if how == "damaged" and result.returncode == 0:
        pytest.skip("the damaged bytes fell where Parquet does not check them")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and str(target) in lines[0] and lines[0].startswith("error: "), result.stderr
    assert not (tmp_path / "t.perfetto").exists()


@pytest.mark.parametrize("name", ["processes.parquet", "streams.parquet"])
def test_unreadable_process_or_stream_table_is_a_data_failure(tmp_path, name):
    lake = tmp_path / "lake"
    pid = make_lake(lake, LakeVariant())[0]["process_id"]
    corrupt(lake / name, "garbage")
    result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "t.perfetto", "--quiet")
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1 and name in result.stderr, result.stderr


def test_request_mistakes_stay_exit_2(tmp_path):
    lake = tmp_path / "lake"
    pid = make_lake(lake, LakeVariant(layout="folder"))[0]["process_id"]
    out = tmp_path / "t.perfetto"
    cases = [
        (["write_perfetto", pid, "--lake", tmp_path / "nowhere"], "does not exist"),
        (["write_perfetto", "00000000-0000-4000-8000-000000000000", "--lake", lake], "not found"),
        (["write_perfetto", pid, "--lake", lake, "--begin", "yesterday"], "begin"),
        (["write_perfetto", pid, "--lake", lake, "--begin", "2030-01-01", "--end", "2029-01-01"], "after"),
    ]
    for args, text in cases:
        result = run_cli(*args, "--filename", out, "--quiet")
        assert result.returncode == 2 and text in result.stderr and len(result.stderr.splitlines()) == 1, \
            (args, result.stderr)
    # A part file with a mistyped column: a request the lake cannot serve, exit 2, naming the file.
    stream = LocalLake(lake).threads(pid, 0, 0)[0].stream_id
    part = LocalLake(lake).table_files("thread_spans", stream)[1]
    table = pq.read_table(part)
    pq.write_table(table.set_column(table.schema.get_field_index("begin"), "begin",
                                    table.column("begin").cast(pa.string())), part)
    result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", out, "--quiet")
    assert result.returncode == 2 and str(part) in result.stderr and "'begin'" in result.stderr, result.stderr


@pytest.mark.parametrize("column", ["end", "start_time"])
def test_time_outside_int64_ns_names_the_column(tmp_path, column):
    lake = tmp_path / "lake"
    pid = make_lake(lake, LakeVariant(time_unit="ms", end_time="missing"))[0]["process_id"]
    if column == "start_time":
        path = lake / "processes.parquet"
    else:
        path = LocalLake(lake).table_files("thread_spans", LocalLake(lake).threads(pid, 0, 0)[0].stream_id)[0]
    table = pq.read_table(path)
    values = table.column(column).cast(pa.int64()).to_pylist()
    values[0] = (1 << 62) // 1000 * 10  # ms: far beyond 2262
    table = table.set_column(table.schema.get_field_index(column), column,
                             pa.array(values, pa.int64()).cast(table.schema.field(column).type))
    pq.write_table(table, path)
    result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "t.perfetto", "--quiet")
    assert result.returncode == 1, result.stderr
    assert f"column '{column}'" in result.stderr and "int64 nanoseconds" in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_cli_sample_lake_variants(tmp_path):
    lake = tmp_path / "lake"
    result = run_cli("sample-lake", lake, "--threads", "2", "--spans-per-thread", "50", "--async-spans", "40",
                     "--layout", "parquet-folder", "--time-unit", "s", "--time-zone", "none", "--thread-properties",
                     "partial", "--end-time", "null", "--row-group-rows", "16", "--quiet")
    assert result.returncode == 0, result.stderr
    pid = run_cli("list-processes", "--lake", lake, "--ids").stdout.split()[0]
    stream = micromegas_threads(lake, pid)[0][0]
    parts = sorted((lake / "thread_spans" / f"{stream}.parquet").iterdir())
    assert len(parts) == 3 and pq.read_metadata(parts[0]).num_row_groups == 2
    assert pq.read_schema(parts[0]).field("begin").type in (pa.timestamp("s"), pa.timestamp("ms"))  # Parquet has no s
    assert "end_time" in pq.read_schema(lake / "processes.parquet").names
    result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "t.perfetto", "--quiet")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    begin, end = expected_range(lake, pid)
    check(lake, pid, (tmp_path / "t.perfetto").read_bytes(), begin, end)
    bad = run_cli("sample-lake", tmp_path / "other", "--time-unit", "minutes")
    assert bad.returncode == 2 and "--time-unit" in bad.stderr


def _as_uuid(table: pa.Table, names, uuid_type) -> pa.Table:
    import uuid
    for name in names:
        if name in table.column_names:
            raw = pa.array([None if v is None else uuid.UUID(v).bytes for v in table.column(name).to_pylist()],
                           pa.binary(16))
            column = raw if uuid_type == pa.binary(16) else pa.ExtensionArray.from_storage(uuid_type, raw)
            table = table.set_column(table.column_names.index(name), name, column)
    return table


UUID_TYPES = [pa.binary(16)] + ([pa.uuid()] if hasattr(pa, "uuid") else [])


@pytest.mark.parametrize("uuid_type", UUID_TYPES, ids=str)
@pytest.mark.parametrize("small_tables", ["file", "folder"])
def test_uuid_typed_ids_read_as_their_text(tmp_path, uuid_type, small_tables):
    """Ids stored with Parquet's UUID type (DuckDB's UUID, pyarrow's arrow.uuid, or their
    16-byte storage) read as the uuid text micromegas writes: the same bytes in every async
    layout, and list-processes shows the text (they were a schema error)."""
    reference, lake = tmp_path / "ref", tmp_path / "uuid"
    processes = make_lake(reference, LakeVariant(row_group_rows=40))
    make_lake(lake, LakeVariant(row_group_rows=40))
    for name in ("processes.parquet", "streams.parquet"):
        table = _as_uuid(pq.read_table(lake / name), ("process_id", "stream_id"), uuid_type)
        (lake / name).unlink()
        if small_tables == "folder":
            (lake / name).mkdir()
            pq.write_table(table.slice(0, 2), lake / name / "part-0.parquet")
            pq.write_table(table.slice(2), lake / name / "part-1.parquet")
        else:
            pq.write_table(table, lake / name)
    events = sorted((lake / "async_events").glob("*.parquet"))
    assert events
    for file in events:
        pq.write_table(_as_uuid(pq.read_table(file), ("stream_id",), uuid_type), file, row_group_size=50)
    assert is_uuid_column(lake / "async_events", "stream_id")
    pid = processes[0]["process_id"]
    for layout in ("lanes", "thread-lanes", "micromegas"):
        for where in (reference, lake):
            done = run_cli("write_perfetto", pid, "--lake", where, "--async-layout", layout, "--logs", "--metrics",
                           "--filename", tmp_path / f"{where.name}-{layout}.perfetto")
            assert done.returncode == 0, done.stderr
        assert ((tmp_path / f"ref-{layout}.perfetto").read_bytes()
                == (tmp_path / f"uuid-{layout}.perfetto").read_bytes()), layout
    listed = run_cli("list-processes", "--lake", lake)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [p["process_id"] for p in processes]
    # The listing's counts in their number ("1 thread", not "1 threads"), columns still aligned.
    assert "  1 thread   " in listed.stdout and "1 threads" not in listed.stdout, listed.stdout
    trace = decode((tmp_path / "uuid-lanes.perfetto").read_bytes())
    assert len(trace.threads) == 3 and trace.events


def is_uuid_column(folder: Path, name: str) -> bool:
    t = pq.read_schema(sorted(folder.glob("*.parquet"))[0]).field(name).type
    return pa.types.is_fixed_size_binary(t) or getattr(t, "extension_name", None) == "arrow.uuid"
