"""The sample lake follows docs/lake-format.md and has the features traces must handle."""
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from conftest import run_cli
import pytest

from micromegas_perfetto.lake import LocalLake
from micromegas_perfetto.sample_lake import write_sample_lake
from micromegas_perfetto.sources import thread_display


def test_tables_have_the_lake_format_columns(small_lake):
    lake, processes = small_lake
    lake = Path(lake)
    p = pq.read_schema(lake / "processes.parquet")
    assert p.field("process_id").type == pa.string() and p.field("exe").type == pa.string()
    assert p.field("start_time").type == pa.timestamp("ns", tz="+00:00")
    s = pq.read_schema(lake / "streams.parquet")
    assert s.field("tags").type == pa.list_(pa.string())
    assert s.field("properties").type == pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
    streams = pq.read_table(lake / "streams.parquet").to_pylist()
    thread_streams = [x for x in streams if "cpu" in x["tags"]]
    assert len(thread_streams) == 4 + 2 + 1
    assert any("log" in x["tags"] for x in streams) and any("metrics" in x["tags"] for x in streams)
    t = pq.read_schema(lake / "thread_spans" / f"{thread_streams[0]['stream_id']}.parquet")
    for name in ("id", "parent", "duration"):
        assert t.field(name).type == pa.int64()
    for name in ("depth", "hash", "line"):
        assert t.field(name).type == pa.uint32()
    for name in ("name", "target", "filename"):
        assert t.field(name).type == pa.dictionary(pa.int32(), pa.string())
    a = pq.read_schema(lake / "async_events" / f"{processes[0]['process_id']}.parquet")
    for name in ("stream_id", "block_id", "event_type", "name", "filename", "target"):
        assert a.field(name).type == pa.dictionary(pa.int32(), pa.string())
    assert a.field("time").type == pa.timestamp("ns", tz="+00:00")


def test_thread_spans_nest_and_are_sorted(small_lake):
    lake, processes = small_lake
    for thread in LocalLake(lake).threads(processes[0]["process_id"], 0, 0):
        table = pq.read_table(Path(lake) / "thread_spans" / f"{thread.stream_id}.parquet")
        begins = table.column("begin").cast("int64").to_pylist()
        ends = table.column("end").cast("int64").to_pylist()
        assert begins == sorted(begins)
        stack = []
        for b, e in zip(begins, ends):
            while stack and stack[-1] <= b:
                stack.pop()
            assert not stack or e <= stack[-1], "spans must nest"
            stack.append(e)
        assert max(table.column("depth").to_pylist()) >= 3


def test_async_events_have_the_hard_cases(small_lake):
    lake, processes = small_lake
    table = pq.read_table(Path(lake) / "async_events" / f"{processes[0]['process_id']}.parquet")
    times = table.column("time").cast("int64").to_pylist()
    assert times != sorted(times), "not globally sorted"
    rows = zip(table.column("span_id").to_pylist(), table.column("event_type").cast("string").to_pylist(),
               table.column("stream_id").cast("string").to_pylist(), times,
               table.column("parent_span_id").to_pylist(), table.column("name").cast("string").to_pylist())
    spans = {}
    for sid, kind, stream, t, parent, name in rows:
        spans.setdefault(sid, {"parent": parent, "name": name})[kind] = (t, stream)
    assert any("end" in s and s["begin"][1] != s["end"][1] for s in spans.values()), "begin and end on other streams"
    assert any("end" not in s for s in spans.values()), "some still open"
    children = [s for s in spans.values() if s["parent"]]
    assert 0.2 < len(children) / len(spans) < 0.4
    outliving = [s for s in children if "end" in s and "end" in spans[s["parent"]]
                 and s["end"][0] > spans[s["parent"]]["end"][0]]
    assert outliving, "children that outlive their parent"
    assert any(not s["name"].isascii() for s in spans.values()), "UTF-8 names"


@pytest.mark.parametrize("name, tid_text, expected_name, expected_tid", [
    ("main", "42", "main-42", 42),                      # name and id
    ("worker", None, "worker-s", 0),                    # name only: the stream id stands in
    ("worker", "", "worker-s", 0),                      # an empty property is a missing one
    (None, "42", "42", 42),                             # id only
    ("", "42", "42", 42),
    (None, None, "s", 0),                               # neither
    ("w", " 42", "w- 42", 0),                           # Rust's parse::<i64> takes no spaces...
    ("w", "42 ", "w-42 ", 0),
    ("w", "+42", "w-+42", 42),                          # ...takes a leading +
    ("w", "-7", "w--7", -7),                            # negative
    ("w", "1_000", "w-1_000", 0),                       # no _ separators
    ("w", "abc", "w-abc", 0),
    ("w", "+", "w-+", 0), ("w", "-", "w--", 0),
    ("w", str(1 << 63), f"w-{1 << 63}", 0),             # out of i64 range: 0
    ("w", str(-(1 << 63)), f"w-{-(1 << 63)}", 0),       # i64::MIN truncates to 0 as i32
    ("w", str((1 << 63) - 1), f"w-{(1 << 63) - 1}", -1),
    ("w", str(1 << 32 | 5), f"w-{1 << 32 | 5}", 5),     # above i32: truncated like `as i32`
    ("w", str((1 << 31) + 1), f"w-{(1 << 31) + 1}", -(1 << 31) + 1),
    ("w", "٤٢", "w-٤٢", 0),                             # ASCII digits only
])
def test_thread_naming_rule(name, tid_text, expected_name, expected_tid):
    thread = thread_display("s", name, tid_text)
    assert (thread.stream_id, thread.name, thread.thread_id) == ("s", expected_name, expected_tid)


def test_unnamed_thread_is_listed_by_its_id(small_lake):
    lake, processes = small_lake
    names = [t.name for t in LocalLake(lake).threads(processes[0]["process_id"], 0, 0)]
    assert any(n.isdigit() for n in names) and any("-" in n for n in names)


def test_same_seed_same_lake(tmp_path):
    a = write_sample_lake(tmp_path / "a", seed=3, threads=2, spans_per_thread=500, async_spans=300)
    b = write_sample_lake(tmp_path / "b", seed=3, threads=2, spans_per_thread=500, async_spans=300)
    assert a == b
    for path in (tmp_path / "a").rglob("*.parquet"):
        assert pq.read_table(path).equals(pq.read_table(tmp_path / "b" / path.relative_to(tmp_path / "a")))


def test_cli_writes_and_lists_a_lake(tmp_path):
    result = run_cli("sample-lake", tmp_path / "lake", "--threads", "2", "--spans-per-thread", "100",
                     "--async-spans", "50", "--seed", "5")
    assert result.returncode == 0, result.stderr
    listed = run_cli("list-processes", "--lake", tmp_path / "lake", "--ids")
    assert len(listed.stdout.split()) == 3
    again = run_cli("sample-lake", tmp_path / "lake")
    assert again.returncode == 2 and "already holds a lake" in again.stderr
