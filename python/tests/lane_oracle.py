"""An exact, independent oracle for async span pairing and lane placement, written from the
normative rules of docs/async-spans.md (pairing, lanes, micromegas layout), not from the Swift code:
random (seeded) lakes with hostile shapes, the product run on them, the trace decoded with
Perfetto's official protos and compared with the oracle slice for slice.

Used by test_lane_oracle.py (a seeded subset) and runnable as a campaign:

    python python/tests/lane_oracle.py FIRST_SEED COUNT
"""
import heapq
import random
import struct
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pyarrow as pa
import pyarrow.parquet as pq
from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace, TrackDescriptor

from micromegas_reference import xxh64  # the tests' own xxh64, not the package's
from trace_check import Event, lake_table, ns, partial_overlaps, rebuild_slices, expected_async

PID = "0a0a0a0a-1111-4222-8333-444444444444"
TS = pa.timestamp("ns", tz="+00:00")
DICT = pa.dictionary(pa.int32(), pa.string())
PROPERTIES = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
I64_MIN, I64_MAX = -2 ** 63, 2 ** 63 - 1
MAX_NESTING = 512  # Perfetto's trace processor pushes no slice at depth 512 or deeper
BY_KEY = TrackDescriptor.SIBLING_MERGE_BEHAVIOR_BY_SIBLING_MERGE_KEY


def flow_id(child_span_id: int, process_uuid: int) -> int:
    h = xxh64(struct.pack("<q", child_span_id), process_uuid ^ 0x666C6F77)
    return h or 1


# -- the oracle: pairing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ev:
    time: int
    kind: str  # "begin" | "end"
    span_id: int
    parent: int
    depth: int
    name: str
    target: str
    filename: str
    line: int
    stream: str


@dataclass(frozen=True)
class Span:
    span_id: int
    begin: int
    end: int
    parent: int
    depth: int
    name: str
    target: str
    filename: str
    line: int
    stream: Optional[str]  # the stream of its begin event; None without one
    kind: str  # complete | open | before


def pair(events: List[Ev], rb: int, re: int):
    """ASYNC_SPANS.md, Pairing: (spans in no particular order, counts). `events` in read order
    (files in sorted path order, rows in order): of equally early duplicates the first read
    wins (the spec says "the earliest"; ties are left open, see the report)."""
    halves: Dict[int, Dict[str, Ev]] = {}
    c = Counter()
    for ev in events:
        if not rb <= ev.time <= re:
            c["async_events_outside_range"] += 1
            continue
        c["async_events"] += 1
        h = halves.setdefault(ev.span_id, {})
        if ev.kind in h:
            c["async_duplicates"] += 1
            if ev.time >= h[ev.kind].time:
                continue
        h[ev.kind] = ev
    spans = []
    for sid, h in halves.items():
        b, e = h.get("begin"), h.get("end")
        if b and e:
            if e.time < b.time:
                c["async_dropped"] += 1
                continue
            c["async_complete"] += 1
            begin, end, a = b.time, e.time, b
        elif b:
            c["async_open_at_end"] += 1
            begin, end, a = b.time, re, b
        else:
            c["async_begun_before_range"] += 1
            begin, end, a = rb, e.time, e
        spans.append(Span(sid, begin, end, a.parent, a.depth, a.name, a.target, a.filename, a.line,
                          b.stream if b else None, "complete" if b and e else "open" if b else "before"))
    for k in ("async_events", "async_events_outside_range", "async_complete", "async_open_at_end",
              "async_begun_before_range", "async_duplicates", "async_dropped"):
        c.setdefault(k, 0)
    return spans, dict(c)


def lanes_order(spans: List[Span]) -> List[Span]:
    """docs: by begin, then longer first, then shallower (`depth`), then by span id."""
    return sorted(spans, key=lambda s: (s.begin, -s.end, s.depth, s.span_id))


class Lanes:
    """One group of lanes (docs, layout `lanes`). Each lane is a stack of the slices open on it;
    a slice that ended at or before time t is not open at t (Perfetto pops it before a begin
    at t, as the writer writes its end first)."""

    def __init__(self):
        self.stacks: List[List[Span]] = []
        self.lane_of: Dict[int, int] = {}  # span id -> lane

    def _open_at(self, lane: int, t: int) -> List[Span]:
        st = self.stacks[lane]
        while st and st[-1].end <= t:
            st.pop()
        return st

    def place(self, s: Span, parent: Optional[Span]) -> Tuple[int, bool]:
        t = s.begin
        if parent is not None and parent.span_id in self.lane_of:
            lane = self.lane_of[parent.span_id]
            st = self._open_at(lane, t)
            # within the parent, the parent still open, nests with the innermost open slice
            # (which lies within the parent), fewer than 512 open on the lane
            if (parent.begin <= s.begin and s.end <= parent.end and any(x is parent for x in st)
                    and s.end <= st[-1].end and len(st) < MAX_NESTING):
                st.append(s)
                self.lane_of[s.span_id] = lane
                return lane, False
        for lane in range(len(self.stacks)):
            if not self._open_at(lane, t):  # free: its outermost slice has ended
                self.stacks[lane].append(s)
                self.lane_of[s.span_id] = lane
                return lane, False
        self.stacks.append([s])
        self.lane_of[s.span_id] = len(self.stacks) - 1
        return len(self.stacks) - 1, True


class FastLanes(Lanes):
    """The same rules, the free lanes kept in heaps (for the cases with thousands of lanes);
    checked against `Lanes` on the small cases."""

    def __init__(self):
        super().__init__()
        self.busy: List[Tuple[int, int]] = []  # (end of the outermost slice, lane)
        self.free: List[int] = []

    def place(self, s: Span, parent: Optional[Span]) -> Tuple[int, bool]:
        t = s.begin
        while self.busy and self.busy[0][0] <= t:
            _, lane = heapq.heappop(self.busy)
            self.stacks[lane].clear()
            heapq.heappush(self.free, lane)
        if parent is not None and parent.span_id in self.lane_of:
            lane = self.lane_of[parent.span_id]
            if self.stacks[lane]:
                st = self._open_at(lane, t)
                if (parent.begin <= s.begin and s.end <= parent.end and st and any(x is parent for x in st)
                        and s.end <= st[-1].end and len(st) < MAX_NESTING):
                    st.append(s)
                    self.lane_of[s.span_id] = lane
                    return lane, False
        if self.free:
            lane, new = heapq.heappop(self.free), False
        else:
            self.stacks.append([])
            lane, new = len(self.stacks) - 1, True
        self.stacks[lane].append(s)
        heapq.heappush(self.busy, (s.end, lane))
        self.lane_of[s.span_id] = lane
        return lane, new


@dataclass
class Slice:
    track: int
    begin: int
    end: int
    name: str
    category: str
    filename: str
    line: int
    args: Dict[str, int]
    flows: List[int]
    terminating: List[int]


@dataclass
class Expected:
    items: List[tuple]  # ("D", uuid, parent) lane descriptors and ("S", Slice) slices, in written order
    counts: Dict[str, int]
    async_spans: int
    async_tracks: int
    lane_count: int


def expect(events: List[Ev], rb: int, re: int, layout: str, process_uuid: int, thread_uuid: Dict[str, int],
           span_args=True, flows=True, fast=False) -> Expected:
    """What a trace's async part must be: lane descriptors and slices in written order.
    `thread_uuid`: stream id -> thread track uuid for the thread streams."""
    spans, counts = pair(events, rb, re)
    if layout == "micromegas":
        kept = sorted((s for s in spans if s.kind == "complete" and s.end > s.begin),
                      key=lambda s: (s.begin, s.span_id))
        track = xxh64(b"async_track", process_uuid)
        items = [("S", Slice(track, s.begin, s.end, s.name, s.target, s.filename, s.line, {}, [], [])) for s in kept]
        return Expected(items, counts, len(kept), 1, 1)
    order = lanes_order(spans)
    by_id = {s.span_id: s for s in order}
    groups: Dict[int, Lanes] = {}
    group_of: Dict[int, int] = {}
    items: List[tuple] = []
    slices: Dict[int, Slice] = {}
    written_at: Dict[int, int] = {}
    process_lane0 = xxh64(b"async_track", process_uuid)
    for k, s in enumerate(order):
        g = process_uuid
        if layout == "thread-lanes" and s.stream is not None and s.stream in thread_uuid:
            g = thread_uuid[s.stream]
        group_of[s.span_id] = g
        lanes = groups.setdefault(g, (FastLanes if fast else Lanes)())
        parent = by_id.get(s.parent)
        if parent is s or (parent is not None and group_of.get(parent.span_id) != g):
            parent = None
        lane, new = lanes.place(s, parent)
        if g == process_uuid:
            uuid = process_lane0 if lane == 0 else xxh64(f"async_track_lane_{lane}".encode(), process_uuid)
        else:
            uuid = xxh64(f"async_thread_lane_{lane}".encode(), g)
        if new and not (g == process_uuid and lane == 0):
            items.append(("D", uuid, g))
        args = {"span_id": s.span_id, "parent_span_id": s.parent} if span_args else {}
        terminating = []
        p = by_id.get(s.parent)
        if flows and p is not None and p is not s and p.span_id in written_at:
            fid = flow_id(s.span_id, process_uuid)
            terminating = [fid]
            slices[p.span_id].flows.append(fid)
        sl = Slice(uuid, s.begin, s.end, s.name, s.target, s.filename, s.line, args, [], terminating)
        slices[s.span_id] = sl
        written_at[s.span_id] = k
        items.append(("S", sl))
    lane_count = sum(len(l.stacks) for l in groups.values())
    tracks = lane_count if layout == "thread-lanes" else max(1, lane_count)
    if layout == "thread-lanes" and process_uuid not in groups:
        tracks += 1  # the process-level lane 0 is described even when no span uses it
    return Expected(items, counts, len(order), tracks, lane_count)


def _complete_ids(events, rb, re):
    have = defaultdict(set)
    for ev in events:
        if rb <= ev.time <= re:
            have[ev.span_id].add(ev.kind)
    return {sid for sid, k in have.items() if k == {"begin", "end"}}


# -- decoding -----------------------------------------------------------------------------------


@dataclass
class Got:
    process_uuid: int
    threads: Dict[str, int]  # thread name -> uuid
    items: List[tuple]  # after the thread descriptors: ("D", uuid, parent), ("S", Slice)
    descriptors: Dict[int, object]
    first_async: Optional[object]  # the descriptor right after the threads'
    events: List[Event]  # every slice begin/end, packet order


def decode_async(data: bytes) -> Got:
    trace = Trace.FromString(data)
    names, cats, locs, argn = {}, {}, {}, {}
    process, threads, descriptors = None, {}, {}
    items, events = [], []
    first_async = None
    pending = None
    for p in trace.packet:
        if p.HasField("track_descriptor"):
            d = p.track_descriptor
            assert d.uuid not in descriptors
            descriptors[d.uuid] = d
            if d.HasField("process"):
                process = d
            elif d.HasField("thread"):
                assert not items, "thread descriptor after the async part"
                threads[d.thread.thread_name] = d.uuid
            elif first_async is None:
                first_async = d
            else:
                items.append(("D", d.uuid, d.parent_uuid))
            continue
        for n in p.interned_data.event_names:
            names[n.iid] = n.name
        for c in p.interned_data.event_categories:
            cats[c.iid] = c.name
        for loc in p.interned_data.source_locations:
            locs[loc.iid] = (loc.file_name, loc.line_number)
        for a in p.interned_data.debug_annotation_names:
            argn[a.iid] = a.name
        e = p.track_event
        assert e.track_uuid in descriptors
        if e.type == e.TYPE_SLICE_BEGIN:
            assert pending is None
            file, line = locs[e.source_location_iid]
            pending = Slice(e.track_uuid, p.timestamp, None, names[e.name_iid], cats[e.category_iids[0]], file, line,
                            {argn[a.name_iid]: a.int_value for a in e.debug_annotations}, list(e.flow_ids),
                            list(e.terminating_flow_ids))
            events.append(Event(e.track_uuid, 1, p.timestamp, pending.name, "", "", 0))
        elif e.type == e.TYPE_SLICE_END:
            assert pending is not None and pending.track == e.track_uuid
            pending.end = p.timestamp
            items.append(("S", pending))
            events.append(Event(e.track_uuid, 2, p.timestamp, "", "", "", 0))
            pending = None
        else:
            raise AssertionError(f"unexpected event type {e.type}")
    assert pending is None
    return Got(process.uuid, threads, items, descriptors, first_async, events)


def perfetto_rebuild(events: List[Event]):
    """trace_check.rebuild_slices with names carried to the end, and the deepest stack."""
    stacks = defaultdict(list)
    out, deepest = [], 0
    for e in sorted(events, key=lambda e: e.ts):
        if e.type == 1:
            stacks[e.track].append(e)
            deepest = max(deepest, len(stacks[e.track]))
        else:
            b = stacks[e.track].pop()
            out.append((e.track, b.ts, e.ts, b.name))
    assert all(not s for s in stacks.values())
    return out, deepest


# -- lakes ---------------------------------------------------------------------------------------


@dataclass
class Case:
    seed: int
    shape: str
    streams: List[Tuple[str, List[str], Dict[str, str]]]
    events: List[Ev]
    start: int  # process start / end
    end: int
    begin_arg: Optional[int]  # --begin / --end, None: the process's
    end_arg: Optional[int]
    files: int  # how many parquet files the events are split over (0: one <pid>.parquet)
    layout: str
    row_group: int

    @property
    def rb(self):
        return self.start if self.begin_arg is None else self.begin_arg

    @property
    def re(self):
        return self.end if self.end_arg is None else self.end_arg


def thread_name(props: Dict[str, str], stream_id: str) -> str:
    shown = props.get("thread-id", "") or stream_id
    return f"{props['thread-name']}-{shown}" if props.get("thread-name", "") else shown


def _strings(values):
    return pa.array(values, pa.string()).dictionary_encode().cast(DICT)


def _event_table(evs: List[Ev]) -> pa.Table:
    n = len(evs)
    return pa.table({
        "stream_id": _strings([e.stream for e in evs]), "block_id": _strings(["blk"] * n),
        "time": pa.array([e.time for e in evs], pa.int64()).cast(TS),
        "event_type": _strings([e.kind for e in evs]),
        "span_id": pa.array([e.span_id for e in evs], pa.int64()),
        "parent_span_id": pa.array([e.parent for e in evs], pa.int64()),
        "depth": pa.array([e.depth for e in evs], pa.uint32()), "hash": pa.array([0] * n, pa.uint32()),
        "name": _strings([e.name for e in evs]), "filename": _strings([e.filename for e in evs]),
        "target": _strings([e.target for e in evs]), "line": pa.array([e.line for e in evs], pa.uint32())})


def write_lake(case: Case, root: Path) -> Path:
    root.mkdir(parents=True)
    pq.write_table(pa.table({"process_id": [PID], "exe": ["oracle.exe"], "username": ["u"], "computer": ["c"],
                             "start_time": pa.array([case.start], pa.int64()).cast(TS),
                             "end_time": pa.array([case.end], pa.int64()).cast(TS)}), root / "processes.parquet")
    st = case.streams
    pq.write_table(pa.table({
        "stream_id": pa.array([s for s, _, _ in st], pa.string()), "process_id": pa.array([PID] * len(st), pa.string()),
        "tags": pa.array([t for _, t, _ in st], pa.list_(pa.string())),
        "properties": pa.array([[{"key": k, "value": v} for k, v in p.items()] for _, _, p in st], PROPERTIES),
    }), root / "streams.parquet")
    (root / "thread_spans").mkdir()
    folder = root / "async_events"
    folder.mkdir()
    if case.files == 0:
        pq.write_table(_event_table(case.events), folder / f"{PID}.parquet", row_group_size=case.row_group)
    else:
        # split at random points; parts named so that sorted path order is the events' order
        rng = random.Random(case.seed ^ 0x5EED)
        cuts = sorted(rng.randrange(0, len(case.events) + 1) for _ in range(case.files - 1))
        bounds = [0] + cuts + [len(case.events)]
        base = folder / (f"{PID}.parquet" if case.seed % 2 else PID)
        for k in range(case.files):
            part = case.events[bounds[k]:bounds[k + 1]]
            sub = base / f"d{k // 3:03d}" if k % 2 else base  # some in subfolders
            path = sub / f"part-{k:04d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(_event_table(part), path, row_group_size=case.row_group)
    return root


def read_order_events(lake: Path) -> List[Ev]:
    """The lake's async events in the order readers read them (sorted path order), read back
    independently of the package."""
    t = lake_table(lake, "async_events", PID)
    if t is None:
        return []
    cols = {name: (ns(t.column(name)) if name == "time" else
                   t.column(name).cast(pa.string()).to_pylist() if pa.types.is_dictionary(t.column(name).type)
                   else t.column(name).to_pylist()) for name in t.column_names}
    return [Ev(cols["time"][i], cols["event_type"][i], cols["span_id"][i], cols["parent_span_id"][i],
               cols["depth"][i], cols["name"][i], cols["target"][i], cols["filename"][i], cols["line"][i],
               cols["stream_id"][i]) for i in range(t.num_rows)]


# -- random workloads -----------------------------------------------------------------------------

SHAPES = ["random", "trees", "equal", "extremes", "dups", "outside", "streams", "ids", "deep", "wide", "mixed"]
NAMES = ["a", "b", "load", "ünï", "x" * 40]
TARGETS = ["t1", "t2", "core::io"]
FILES = ["f.rs", "g.rs", "src/h.rs"]


def make_case(seed: int, shape: Optional[str] = None, layout: Optional[str] = None) -> Case:
    rng = random.Random(seed)
    shape = shape or SHAPES[seed % len(SHAPES)]
    layout = layout or rng.choice(["lanes", "lanes", "thread-lanes", "thread-lanes", "micromegas"])
    nthreads = rng.randint(0, 4) if shape != "streams" else rng.randint(3, 12)
    streams = []
    for i in range(nthreads):
        streams.append((f"{i:08x}-0000-4000-8000-00000000000{rng.randint(0, 9)}", ["cpu"],
                        {"thread-name": f"w{i}", "thread-id": str(100 + i)}))
    streams.append(("ffffffff-0000-4000-8000-00000000log0", ["log"], {"thread-name": "logger"}))
    thread_ids = [s for s, _, _ in streams[:-1]]
    stream_pool = thread_ids + ["ffffffff-0000-4000-8000-00000000log0", "not-a-listed-stream"]

    # the range
    if shape == "extremes":
        where = rng.choice(["zero", "max", "both"])
        start = 0 if where in ("zero", "both") else I64_MAX - rng.randint(50, 1000)
        end = I64_MAX if where in ("max", "both") else rng.randint(100, 1000)
        if where == "both":
            end = I64_MAX
    else:
        start = rng.choice([0, 1000, 1_700_000_000_000_000_000])
        end = start + rng.choice([0, 1, 10, 1000, 10 ** 9])
    if shape in ("deep", "wide"):
        end = start + rng.choice([10 ** 4, 10 ** 9])
    begin_arg = end_arg = None
    if rng.random() < 0.3 and end > start and shape not in ("deep", "wide"):
        begin_arg = rng.randint(start, end)
        end_arg = rng.randint(begin_arg, end)

    rb, re = (start if begin_arg is None else begin_arg), (end if end_arg is None else end_arg)
    width = re - rb

    def t_in(lo=None, hi=None):
        lo = rb if lo is None else lo
        hi = re if hi is None else hi
        if shape == "equal":
            return rng.choice([lo, hi, (lo + hi) // 2])
        r = rng.random()
        if r < 0.15:
            return lo
        if r < 0.3:
            return hi
        if r < 0.38 and shape != "outside":  # just outside, or far
            return rng.choice([rb - 1, re + 1, I64_MIN, I64_MAX, -1, 0])
        if shape in ("random", "dups", "ids", "streams", "mixed") and rng.random() < 0.5:
            # a coarse grid: many equal times
            steps = rng.randint(1, 6)
            return lo + (hi - lo) * rng.randint(0, steps) // steps
        return rng.randint(lo, hi)

    def sid_pool():
        if shape == "ids" or rng.random() < 0.1:
            return rng.choice([0, -1, 1, I64_MIN, I64_MAX, I64_MAX - 1, I64_MIN + 1, rng.randint(I64_MIN, I64_MAX),
                               -rng.randint(1, 50)])
        return None

    n = {"deep": rng.randint(513, 700), "wide": rng.randint(600, 2500), "mixed": rng.randint(50, 400)}.get(
        shape, rng.randint(0, 40))
    used = set()
    ids = []
    for k in range(n):
        sid = sid_pool()
        if sid is None or sid in used:
            sid = k * rng.choice([1, 1, 7, -3]) + 1
        if sid in used:
            sid = 10 ** 9 + k
        used.add(sid)
        ids.append(sid)

    events: List[Ev] = []

    def ev(time, kind, sid, parent, depth, stream=None):
        time = min(max(time, I64_MIN), I64_MAX)
        depth = min(max(depth, 0), 2 ** 32 - 1)
        events.append(Ev(time, kind, sid, parent, depth, rng.choice(NAMES), rng.choice(TARGETS), rng.choice(FILES),
                         rng.choice([0, 1, 7, 2 ** 32 - 1]), stream or rng.choice(stream_pool)))

    times: Dict[int, Tuple[int, int]] = {}
    for k, sid in enumerate(ids):
        # parent: an earlier span, a later one, missing, itself, 0
        r = rng.random()
        if shape == "deep":
            parent = ids[k - 1] if k else 0
        elif k and r < 0.55:
            parent = ids[rng.randrange(k)]
        elif r < 0.65 and k + 1 < n:
            parent = ids[rng.randrange(k + 1, n)]
        elif r < 0.72:
            parent = sid
        elif r < 0.8:
            parent = rng.choice([0, -1, 424242, I64_MIN])
        else:
            parent = 0
        depth = (k if shape == "deep" else rng.choice([0, 0, 1, 2, 3, 2 ** 32 - 1]))
        if shape == "deep":
            b, e = rb + min(k, width), max(rb + min(k, width), re - min(k, width))
            if rng.random() < 0.002:
                e = re
        elif shape == "wide":
            b = rb + rng.randint(0, min(width, 5))
            e = re - rng.randint(0, min(width, 5))
            e = max(b, e)
        elif shape in ("trees", "mixed") and parent in times and rng.random() < 0.8:
            pb, pe = times[parent]
            pb, pe = min(pb, pe), max(pb, pe)
            b = rng.randint(pb, pe)
            e = rng.randint(b, pe) if rng.random() < 0.8 else b + rng.randint(0, max(1, width))  # may outlive
            if rng.random() < 0.1:
                b = pb - rng.randint(0, 3)  # begins before its parent
        else:
            b, e = t_in(), t_in()
            if rng.random() < 0.8 and b > e:
                b, e = e, b
        times[sid] = (b, e)
        missing = 0.0 if shape == "deep" else 0.15
        has_b, has_e = rng.random() >= missing, rng.random() >= missing
        if not (has_b or has_e):
            has_b = True
        bstream = rng.choice(stream_pool) if shape != "streams" else rng.choice(thread_ids or stream_pool)
        if shape == "deep" and rng.random() < 0.97:
            bstream = stream_pool[0]
        if has_b:
            ev(b, "begin", sid, parent, depth, bstream)
        if has_e:
            ev(e, "end", sid, parent if rng.random() < 0.8 else rng.choice([0, sid, 7]), depth + rng.choice([0, 0, 1]))
        dups = rng.randint(1, 4) if shape == "dups" else (1 if rng.random() < (0.0 if shape == "deep" else 0.08) else 0)
        for _ in range(dups):
            kind = rng.choice(["begin", "end"])
            base = b if kind == "begin" else e
            t = rng.choice([base, base + rng.randint(0, 3), base - rng.randint(0, 3), t_in()])
            ev(t, kind, sid, rng.choice([parent, 0, sid]), rng.choice([depth, 5]))
    if shape == "outside":
        for k in range(rng.randint(0, 20)):
            ev(rng.choice([rb - rng.randint(1, 10), re + rng.randint(1, 10), I64_MIN, I64_MAX, -5]),
               rng.choice(["begin", "end"]), rng.randint(-5, 30), 0, 0)
        events = [e for e in events if not rb <= e.time <= re] if rng.random() < 0.6 else events
    # clamp what pyarrow cannot hold (every int64 is fine as ns) -- and order
    order = rng.choice(["shuffle", "time", "reverse", "asis"])
    if order == "shuffle":
        rng.shuffle(events)
    elif order == "time":
        events.sort(key=lambda e: e.time)
    elif order == "reverse":
        events.reverse()
    files = rng.choice([0, 0, 1, 2, 5]) if shape not in ("deep", "wide") else rng.choice([0, 3])
    if shape == "mixed" and rng.random() < 0.5:
        files = rng.randint(5, 30)
    return Case(seed, shape, streams, events, start, end, begin_arg, end_arg, files, layout,
                rng.choice([1, 3, 64, 10 ** 6]))


# -- running and comparing ------------------------------------------------------------------------


def thread_uuids(case: Case, got: Got) -> Dict[str, int]:
    """stream id -> thread track uuid, from the decoded thread descriptors by the spec's names."""
    out = {}
    for sid, tags, props in case.streams:
        if "cpu" in tags:
            out[sid] = got.threads[thread_name(props, sid)]
    return out


def check(case: Case, data: bytes, summary: Dict[str, int], span_args=True, flows=True) -> Expected:
    """Compares the trace `data` and the reported counts with the oracle; AssertionError names
    the first difference."""
    got = decode_async(data)
    rb, re = case.rb, case.re
    events = read_order_events_cache(case)
    exp = expect(events, rb, re, case.layout, got.process_uuid, thread_uuids(case, got), span_args, flows,
                 fast=len(events) > 3000)
    # lane 0 (micromegas' async track) right after the threads
    lane0 = got.first_async
    assert lane0 is not None and lane0.uuid == xxh64(b"async_track", got.process_uuid), lane0
    assert lane0.parent_uuid == got.process_uuid and lane0.name == "Async Operations"
    lanes_layout = case.layout != "micromegas"
    for d in [lane0] + [got.descriptors[u] for kind, u, *_ in got.items if kind == "D"]:
        assert d.name == "Async Operations"
        if lanes_layout:
            assert d.sibling_merge_behavior == BY_KEY and d.sibling_merge_key == "async_lanes", d
        else:
            assert not d.HasField("sibling_merge_key")
    # exact: descriptors and slices in written order
    e_items = [(i[0], i[1], i[2]) if i[0] == "D" else ("S", vars(i[1])) for i in exp.items]
    g_items = [(i[0], i[1], i[2]) if i[0] == "D" else ("S", vars(i[1])) for i in got.items]
    if g_items != e_items:
        for k, (a, b) in enumerate(zip(g_items, e_items)):
            if a != b:
                raise AssertionError(f"item {k} of {len(e_items)}: got {a}, expected {b}")
        raise AssertionError(f"{len(g_items)} items, expected {len(e_items)}")
    # counts as reported
    for key, value in exp.counts.items():
        if key == "async_events_outside_range":
            # The Python sources skip row groups wholly outside the range (lake.py), so the
            # library counts only the outside events of the row groups it was given.
            assert summary.get(key, 0) <= value, (key, summary.get(key), value)
            continue
        assert summary.get(key) == value, (key, summary.get(key), value)
    assert summary["async_spans"] == exp.async_spans, (summary["async_spans"], exp.async_spans)
    assert summary["async_tracks"] == exp.async_tracks, (summary["async_tracks"], exp.async_tracks)
    # and as Perfetto reads it: nest or disjoint on every track, depth within the limit
    slices_ = [i[1] for i in got.items if i[0] == "S"]
    if lanes_layout:
        rebuilt, deepest = perfetto_rebuild(got.events)
        assert partial_overlaps(rebuilt) == 0
        assert deepest <= MAX_NESTING
        assert Counter(rebuilt) == Counter((s.track, s.begin, s.end, s.name) for s in slices_)
        # cross-check the pairing with trace_check.expected_async (names and times)
        if not case.files:
            want, _ = expected_async(case_lake[case.seed], PID, rb, re)
            assert Counter(want) == Counter((s.name, s.begin, s.end) for s in slices_)
    return exp


case_lake: Dict[int, Path] = {}
_events_cache: Dict[int, List[Ev]] = {}


def read_order_events_cache(case):
    return _events_cache[case.seed]


def prepare(case: Case, root: Path) -> Path:
    lake = write_lake(case, root)
    case_lake[case.seed] = lake
    events = read_order_events(lake)
    assert sorted(events, key=repr) == sorted(case.events, key=repr)
    _events_cache[case.seed] = events
    return lake


def run_api(case: Case, lake: Path, out: Path, span_args=True, flows=True):
    from micromegas_perfetto.generation import write_process_trace
    s = write_process_trace(str(lake), PID, case.begin_arg, case.end_arg, str(out), "async",
                            async_layout=case.layout, span_args=span_args, flows=flows)
    summary = dict(s.matcher, async_spans=s.async_spans, async_tracks=s.async_tracks)
    assert (s.begin_ns, s.end_ns) == (case.rb, case.re)
    return out.read_bytes(), summary


def run_cli_case(case: Case, lake: Path, out: Path, span_args=True, flows=True):
    import re as regex
    from conftest import run_cli
    args = ["write_perfetto", PID, "--lake", lake, "--filename", out, "--spans", "async", "--async-layout", case.layout]
    if case.begin_arg is not None:
        args += ["--begin", case.begin_arg, "--end", case.end_arg]
    if not span_args:
        args.append("--no-span-args")
    if not flows:
        args.append("--no-flows")
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    text = done.stdout + done.stderr
    m = regex.search(r"(\d+) async spans? on (\d+) tracks? \(async anomalies: open at end (\d+), begun before range "
                     r"(\d+), duplicates (\d+), dropped (\d+)\)", text)
    assert m, text
    spans, tracks, open_, before, dups, dropped = map(int, m.groups())
    summary = {"async_spans": spans, "async_tracks": tracks, "async_open_at_end": open_,
               "async_begun_before_range": before, "async_duplicates": dups, "async_dropped": dropped}
    return out.read_bytes(), summary


def check_cli(case: Case, lake: Path, out: Path, data: bytes, summary: Dict[str, int], span_args=True, flows=True):
    """The CLI on the same lake and options writes the API's bytes, and its summary line gives the
    API's counts (the API's trace and counts were checked against the oracle)."""
    cli_data, cli_summary = run_cli_case(case, lake, out, span_args=span_args, flows=flows)
    assert cli_data == data
    for key, value in cli_summary.items():
        assert summary[key] == value, (key, summary[key], value)


def main(argv):
    import os
    import warnings
    warnings.simplefilter("ignore")
    import shutil
    import sys
    import tempfile
    import time
    first, count = int(argv[1]), int(argv[2])
    cli_every = int(argv[3]) if len(argv) > 3 else 0
    root = Path(tempfile.mkdtemp(prefix="lane-oracle-"))
    failures = Counter()
    shapes = Counter()
    started = time.monotonic()
    for seed in range(first, first + count):
        case = make_case(seed)
        shapes[(case.shape, case.layout)] += 1
        folder = root / str(seed)
        try:
            if os.environ.get("ORACLE_SKIP_MAX_BEGIN") and any(
                    s.begin == I64_MAX for s in pair(case.events, case.rb, case.re)[0]):
                shapes[("skipped", "max-begin")] += 1
                continue
            lake = prepare(case, folder / "lake")
            opts = dict(span_args=seed % 5 != 0, flows=seed % 7 != 0)
            data, summary = run_api(case, lake, folder / "t.perfetto", **opts)
            check(case, data, summary, **opts)
            if cli_every and seed % cli_every == 0:
                check_cli(case, lake, folder / "c.perfetto", data, summary, **opts)
        except Exception as e:  # noqa: BLE001
            failures[(case.shape, type(e).__name__)] += 1
            print(f"seed {seed} shape {case.shape} layout {case.layout}: {type(e).__name__}: {str(e)[:600]}",
                  flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            _events_cache.pop(seed, None)
            case_lake.pop(seed, None)
    print(f"{count} cases in {time.monotonic() - started:.1f} s; shapes {dict(shapes)}; failures {dict(failures)}")
    shutil.rmtree(root, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main(sys.argv))
