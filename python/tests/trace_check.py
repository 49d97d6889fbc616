"""Test helpers: decode traces with the official Perfetto protobuf bindings and rebuild
slices the way Perfetto's trace processor does; the pairing rules as a Python oracle."""
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import pyarrow as pa
import pyarrow.parquet as pq
from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace


@dataclass(frozen=True)
class Event:
    track: int
    type: int  # 1 begin, 2 end
    ts: int
    name: str
    category: str
    filename: str
    line: int


@dataclass(frozen=True)
class Instant:
    """A log entry as written: an instant event with its debug annotations."""
    track: int
    ts: int
    name: str
    category: str
    args: Dict[str, object]
    interned_name: bool


@dataclass
class Decoded:
    process: object  # TrackDescriptor of the process
    threads: Dict[str, object]  # thread name -> TrackDescriptor
    named_tracks: List[object]  # async tracks / lanes, in order
    events: List[Event]
    packets: int
    log_tracks: List[object] = field(default_factory=list)  # the Logs track
    counter_tracks: List[object] = field(default_factory=list)  # in order of description
    instants: List[Instant] = field(default_factory=list)
    counters: List[Tuple[int, int, float]] = field(default_factory=list)  # (track, ts, value)
    arg_names: Dict[int, str] = field(default_factory=dict)


def _arg_value(a):
    kind = a.WhichOneof("value")
    return getattr(a, kind) if kind else None


def decode(data: bytes) -> Decoded:
    trace = Trace.FromString(data)
    names, categories, locations, arg_names = {}, {}, {}, {}
    process, threads, named, events = None, {}, [], []
    log_tracks, counter_tracks, instants, counters = [], [], [], []
    described = set()
    for i, packet in enumerate(trace.packet):
        assert packet.trusted_packet_sequence_id == 1
        assert packet.sequence_flags == (3 if i == 0 else 2)
        if packet.HasField("track_descriptor"):
            d = packet.track_descriptor
            assert d.uuid not in described, f"track {d.uuid} described twice"
            described.add(d.uuid)
            if d.HasField("process"):
                process = d
            elif d.HasField("thread"):
                threads[d.thread.thread_name] = d
            elif d.HasField("counter"):
                counter_tracks.append(d)
            elif d.name == "Logs":
                log_tracks.append(d)
            else:
                named.append(d)
            continue
        for c in packet.interned_data.event_categories:
            assert c.iid not in categories
            categories[c.iid] = c.name
        for n in packet.interned_data.event_names:
            assert n.iid not in names
            names[n.iid] = n.name
        for loc in packet.interned_data.source_locations:
            assert loc.iid not in locations
            locations[loc.iid] = (loc.file_name, loc.line_number)
        for a in packet.interned_data.debug_annotation_names:
            assert a.iid == len(arg_names) + 1, "annotation name ids from 1, in order"
            arg_names[a.iid] = a.name
        e = packet.track_event
        assert e.track_uuid in described, "event on a track not described yet"
        if e.type == e.TYPE_COUNTER:
            assert e.HasField("double_counter_value")
            counters.append((e.track_uuid, packet.timestamp, e.double_counter_value))
            continue
        if e.type == e.TYPE_INSTANT:
            assert e.HasField("name_iid") != e.HasField("name")
            args = {arg_names[a.name_iid]: _arg_value(a) for a in e.debug_annotations}
            instants.append(Instant(e.track_uuid, packet.timestamp, names[e.name_iid] if e.HasField("name_iid")
                                    else e.name, categories[e.category_iids[0]], args, e.HasField("name_iid")))
            continue
        file, line = locations[e.source_location_iid]
        events.append(Event(e.track_uuid, e.type, packet.timestamp, names[e.name_iid],
                            categories[e.category_iids[0]], file, line))
    return Decoded(process, threads, named, events, len(trace.packet), log_tracks, counter_tracks, instants, counters,
                   arg_names)


def rebuild_slices(events: List[Event]) -> List[Tuple[int, int, int, str]]:
    """(track, begin, end, name) as trace processor pairs them: events sorted by timestamp
    (stable), one stack per track, an end closing the innermost open slice."""
    stacks = defaultdict(list)
    slices = []
    for e in sorted(events, key=lambda e: e.ts):  # sorted() is stable
        if e.type == 1:
            stacks[e.track].append(e)
        else:
            begin = stacks[e.track].pop()
            slices.append((e.track, begin.ts, e.ts, begin.name))
    assert all(not s for s in stacks.values()), "unclosed slices"
    return slices


def written_slices(events: List[Event]) -> List[Tuple[int, int, int, str]]:
    """(track, begin, end, name) as written: each begin packet followed by its end packet."""
    assert len(events) % 2 == 0
    out = []
    for b, e in zip(events[0::2], events[1::2]):
        assert (b.type, e.type) == (1, 2) and b.track == e.track and b.name == e.name
        out.append((b.track, b.ts, e.ts, b.name))
    return out


def partial_overlaps(slices) -> int:
    """Pairs of slices on one track that overlap without nesting."""
    count = 0
    by_track = defaultdict(list)
    for track, b, e, _ in slices:
        by_track[track].append((b, e))
    for intervals in by_track.values():
        stack = []
        for b, e in sorted(intervals, key=lambda x: (x[0], -x[1])):
            while stack and stack[-1] <= b:
                stack.pop()
            if stack and e > stack[-1]:
                count += 1
            stack.append(e)
    return count


def lake_table(lake, kind: str, key: str, columns=None) -> pa.Table:
    """A per-stream or per-process lake table, read independently of the package: the file
    `<key>.parquet`, else the `*.parquet` files under `<key>.parquet/` or `<key>/` (recursive,
    sorted by path), concatenated; None when there is no file."""
    folder = Path(lake) / kind
    for candidate in (folder / f"{key}.parquet", folder / key):
        if candidate.is_file():
            return pq.read_table(candidate, columns=columns)
        if candidate.is_dir():
            files = sorted(candidate.rglob("*.parquet"), key=lambda p: p.relative_to(candidate).as_posix())
            tables = [pq.read_table(f, columns=columns) for f in files]
            if any(t.schema != tables[0].schema for t in tables):  # parts from different writers
                tables = [_plain(t) for t in tables]
            return pa.concat_tables(tables, promote_options="permissive")
    return None


def _plain(table: pa.Table) -> pa.Table:
    """Times as timestamp[ns] (no zone: UTC), strings plain, integers int64."""
    for i, field in enumerate(table.schema):
        t = field.type
        target = (pa.timestamp("ns") if pa.types.is_timestamp(t) else pa.string() if pa.types.is_dictionary(t)
                  else pa.int64() if pa.types.is_integer(t) else None)
        if target is not None:
            table = table.set_column(i, field.name, table.column(i).cast(target))
    return table


def ns(column) -> List[int]:
    """A time column (timestamp of any unit or zone, or int64 ns) as integer nanoseconds, by
    pyarrow's own conversion."""
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("ns"))
    return column.cast(pa.int64()).to_pylist()


def expected_async(lake, process_id: str, begin: int, end: int):
    """The pairing rules of docs/async-spans.md, independently: (name, begin, end) per span,
    and the counts."""
    table = lake_table(lake, "async_events", process_id, columns=["time", "event_type", "span_id", "name"])
    if table is None:
        return [], {}
    times = ns(table.column("time"))
    types = table.column("event_type").cast("string").to_pylist()
    ids = table.column("span_id").to_pylist()
    names = table.column("name").cast("string").to_pylist()
    spans = {}
    counts = defaultdict(int)
    for t, kind, span_id, name in zip(times, types, ids, names):
        if not begin <= t <= end:
            continue
        s = spans.setdefault(span_id, {})
        if kind in s:
            counts["duplicates"] += 1
            if t >= s[kind][0]:
                continue
        s[kind] = (t, name)
    result = []
    for s in spans.values():
        if "begin" in s and "end" in s:
            if s["end"][0] < s["begin"][0]:
                counts["dropped"] += 1
                continue
            counts["complete"] += 1
            result.append((s["begin"][1], s["begin"][0], s["end"][0]))
        elif "begin" in s:
            counts["open_at_end"] += 1
            result.append((s["begin"][1], s["begin"][0], end))
        else:
            counts["begun_before_range"] += 1
            result.append((s["end"][1], begin, s["end"][0]))
    return result, dict(counts)
