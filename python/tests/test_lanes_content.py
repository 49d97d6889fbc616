"""The lanes layouts' Perfetto-native content (issue 12): explicit merge keys on lane tracks,
span ids as args, parent -> child flows, the `thread-lanes` layout; decoded with the
official protos and checked against the lake's async events."""
from collections import Counter
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace, TrackDescriptor

from conftest import run_cli
from trace_check import expected_async, partial_overlaps, rebuild_slices, Event

from micromegas_perfetto.lake import LocalLake

BY_KEY = TrackDescriptor.SIBLING_MERGE_BEHAVIOR_BY_SIBLING_MERGE_KEY


def write(lake, pid, out, *args):
    done = run_cli("write_perfetto", pid, "--lake", lake, "--filename", out, "--quiet", *args)
    assert done.returncode == 0, done.stderr
    return Path(out).read_bytes()


def lake_spans(lake, pid, begin, end):
    """span id -> (parent span id, stream of the begin event or None) for the events in range."""
    table = ds.dataset(f"{lake}/async_events/{pid}.parquet").to_table(
        columns=["time", "event_type", "span_id", "parent_span_id", "stream_id"])
    spans = {}
    for t, kind, sid, parent, stream in zip(table.column("time").cast("int64").to_pylist(),
                                            table.column("event_type").cast("string").to_pylist(),
                                            table.column("span_id").to_pylist(),
                                            table.column("parent_span_id").to_pylist(),
                                            table.column("stream_id").cast("string").to_pylist()):
        if not begin <= t <= end:
            continue
        s = spans.setdefault(sid, {"parent": parent, "stream": None, "begin": None})
        if kind == "begin" and (s["begin"] is None or t < s["begin"]):
            s.update(parent=parent, stream=stream, begin=t)
    return spans


class Decoded:
    """Tracks, and each async slice (its begin packet and end time), from the official protos."""

    def __init__(self, data: bytes):
        trace = Trace.FromString(data)
        self.tracks = {}
        self.process = None
        self.arg_names = {}
        self.names = {}
        self.slices = []  # (track, begin ts, end ts, name, args, flow_ids, terminating_flow_ids)
        self.events = []  # slice begin/end events in packet order
        pending = {}
        for p in trace.packet:
            if p.HasField("track_descriptor"):
                d = p.track_descriptor
                self.tracks[d.uuid] = d
                if d.HasField("process"):
                    self.process = d
                continue
            for n in p.interned_data.event_names:
                self.names[n.iid] = n.name
            for a in p.interned_data.debug_annotation_names:
                assert a.iid == len(self.arg_names) + 1 and a.name not in self.arg_names.values()
                self.arg_names[a.iid] = a.name
            e = p.track_event
            if e.type in (e.TYPE_SLICE_BEGIN, e.TYPE_SLICE_END):
                self.events.append(Event(e.track_uuid, e.type, p.timestamp, "", "", "", 0))
            if e.type == e.TYPE_SLICE_BEGIN:
                pending[e.track_uuid] = (p.timestamp, e)
            elif e.type == e.TYPE_SLICE_END:
                ts, b = pending.pop(e.track_uuid)
                args = {self.arg_names[a.name_iid]: a.int_value for a in b.debug_annotations}
                self.slices.append((e.track_uuid, ts, p.timestamp, self.names[b.name_iid], args, list(b.flow_ids),
                                    list(b.terminating_flow_ids)))

    def lanes(self):
        return {u: d for u, d in self.tracks.items() if d.name == "Async Operations"}

    def async_slices(self):
        lanes = self.lanes()
        return [s for s in self.slices if s[0] in lanes]


@pytest.mark.parametrize("layout", ["lanes", "thread-lanes"])
def test_merge_keys_args_and_flows(small_lake, tmp_path, layout):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    info = LocalLake(lake).process_info(pid)
    begin, end = info.start_ns, info.end_ns
    trace = Decoded(write(lake, pid, tmp_path / "t.perfetto", "--async-layout", layout))
    lanes = trace.lanes()
    # Merge fields on exactly the lane tracks.
    for uuid, d in trace.tracks.items():
        has = d.sibling_merge_behavior == BY_KEY and d.sibling_merge_key == "async_lanes"
        assert has == (uuid in lanes), d
        if uuid not in lanes:
            assert not d.HasField("sibling_merge_behavior") and not d.HasField("sibling_merge_key")
    # Args: each slice's span ids.
    spans = lake_spans(lake, pid, begin, end)
    slices = trace.async_slices()
    assert len(slices) == len(spans) > 1000
    by_id = {}
    for track, b, e, name, args, flows, terminating in slices:
        assert set(args) == {"span_id", "parent_span_id"}
        assert args["parent_span_id"] == spans[args["span_id"]]["parent"]
        by_id[args["span_id"]] = (flows, terminating)
    assert len(by_id) == len(slices)
    # Flows: one per child whose parent is in the trace, from the parent's slice; none dangles.
    starts = {}
    for sid, (flows, _) in by_id.items():
        for f in flows:
            assert f not in starts
            starts[f] = sid
    children = 0
    for sid, (_, terminating) in by_id.items():
        parent = spans[sid]["parent"]
        if parent in by_id and parent != sid:
            assert len(terminating) == 1 and starts[terminating[0]] == parent
            children += 1
        else:
            assert terminating == []
    assert children == len(starts) > 100
    # Exact recovery and the lanes invariant, as Perfetto pairs the events.
    # Rebuild from the packets in their order, each begin named by its slice (begin packets
    # and `slices` come in the same order: each end follows its begin).
    begins = iter(slices)
    named = []
    for ev in (ev for ev in trace.events if ev.track in lanes):
        if ev.type == 1:
            s = next(begins)
            named.append(Event(ev.track, 1, ev.ts, s[3], "", "", 0))
        else:
            named.append(ev)
    rebuilt = rebuild_slices(named)
    assert partial_overlaps(rebuilt) == 0
    expected, _ = expected_async(lake, pid, begin, end)
    assert Counter((n, b, e) for _, b, e, n in rebuilt) == Counter(expected)


def test_thread_lanes_parents(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    info = LocalLake(lake).process_info(pid)
    trace = Decoded(write(lake, pid, tmp_path / "t.perfetto", "--async-layout", "thread-lanes"))
    threads = {d.uuid: d for d in trace.tracks.values() if d.HasField("thread")}
    stream_track = {t.stream_id: None for t in LocalLake(lake).threads(pid, 0, 0)}
    names = {t.stream_id: t.name for t in LocalLake(lake).threads(pid, 0, 0)}
    by_name = {d.thread.thread_name: u for u, d in threads.items()}
    for sid in stream_track:
        stream_track[sid] = by_name[names[sid]]
    spans = lake_spans(lake, pid, info.start_ns, info.end_ns)
    lanes = trace.lanes()
    per_parent = Counter()
    for track, *_rest in trace.async_slices():
        args = _rest[3]
        s = spans[args["span_id"]]
        want = stream_track.get(s["stream"]) if s["begin"] is not None else None
        want = want or trace.process.uuid
        assert lanes[track].parent_uuid == want
        per_parent[want] += 1
    assert len(per_parent) >= 3, "spans under several threads"
    # Each thread's lanes are its own: names and merge keys as at process level.
    for uuid, d in lanes.items():
        assert d.parent_uuid in threads or d.parent_uuid == trace.process.uuid


def test_options_off_and_thread_only_bytes(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    plain = Decoded(write(lake, pid, tmp_path / "a.perfetto", "--no-span-args", "--no-flows"))
    assert all(args == {} and flows == [] and term == [] for *_, args, flows, term in plain.async_slices())
    assert plain.arg_names == {}
    no_flows = Decoded(write(lake, pid, tmp_path / "b.perfetto", "--no-flows"))
    assert all(flows == [] and term == [] and set(args) == {"span_id", "parent_span_id"}
               for *_, args, flows, term in no_flows.async_slices())
    no_args = Decoded(write(lake, pid, tmp_path / "c.perfetto", "--no-span-args"))
    assert all(args == {} for *_, args, _, _ in no_args.async_slices())
    assert any(flows for *_, flows, _ in no_args.async_slices())
    # The same slices whatever the options.
    strip = lambda t: [s[:4] for s in t.slices]  # noqa: E731
    assert strip(plain) == strip(no_flows) == strip(no_args)
    # Thread-only traces are byte-identical in every layout; micromegas has none of it.
    thread_only = {layout: write(lake, pid, tmp_path / f"t-{layout}.perfetto", "--spans", "thread",
                                 "--async-layout", layout) for layout in ("lanes", "micromegas", "thread-lanes")}
    assert len(set(thread_only.values())) == 1
    mm = Decoded(write(lake, pid, tmp_path / "m.perfetto", "--async-layout", "micromegas"))
    assert all(not d.HasField("sibling_merge_key") for d in mm.tracks.values())
    assert all(args == {} and flows == [] and term == [] for *_, args, flows, term in mm.slices)


def test_thread_recursion_deeper_than_perfetto_goes_on_depth_bands(tmp_path):
    """A thread span nested 512 deep or deeper is never pushed by Perfetto (its end then closes
    a shallower `recurse` early): the lanes layouts put it on a depth-band track under the
    thread, where it nests again, and `validate` finds nothing; micromegas' layout keeps
    every span on the thread track, as micromegas writes it, and `validate` reports it."""
    from test_spec_rules import PID, make_lake
    depth = 700
    spans = [(1_000 + k, 9_000 - k, "recurse") for k in range(depth)] + [(9_500, 9_600, "after")]
    lake = make_lake(tmp_path / "lake", [("s1", ["cpu"], {"thread-name": "main", "thread-id": "9"})],
                     spans={"s1": spans})
    for layout in ("lanes", "thread-lanes", "micromegas"):
        out = tmp_path / f"{layout}.perfetto"
        data = write(lake, PID, out, "--spans", "thread", "--async-layout", layout)
        trace = Trace.FromString(data)
        tracks = {p.track_descriptor.uuid: p.track_descriptor for p in trace.packet if p.HasField("track_descriptor")}
        thread = next(d for d in tracks.values() if d.HasField("thread"))
        begins = Counter(p.track_event.track_uuid for p in trace.packet
                         if p.HasField("track_event") and p.track_event.type == 1)
        checked = run_cli("validate", out)
        if layout == "micromegas":
            assert begins == {thread.uuid: depth + 1}
            assert not [d for d in tracks.values() if d.parent_uuid == thread.uuid]
            assert checked.returncode == 1 and "depth_limit" in checked.stdout
            continue
        band = next(d for d in tracks.values() if d.parent_uuid == thread.uuid)
        assert band.name == "main-9 depth 512+" and not band.HasField("thread")
        assert begins == {thread.uuid: 512 + 1, band.uuid: depth - 512}
        assert checked.returncode == 0 and "no problems" in checked.stdout, checked.stdout


@pytest.mark.parametrize("layout", ["lanes", "thread-lanes"])
def test_thread_recursion_across_chunk_groups_still_goes_on_depth_bands(tmp_path, layout):
    """generate_trace_chunks hands a thread's spans to the library in groups of about 65,536
    rows, one call each. The open-span stack was emptied at each call, so a recursion whose
    first 300 calls were in one group and the rest in the next was counted from depth 0 again
    there: 700 deep on the thread track (depth_limit, wrong durations), and a trace other than
    write_perfetto's. The chunks must be write_perfetto's trace, which validates clean."""
    import pyarrow.parquet as pq
    from micromegas_perfetto import generate_trace_chunks, validate
    from test_spec_rules import PID, make_lake, span_table
    flat = 65_700  # 66 batches of 1,000 rows make the first group: 300 of the recursion's calls
    depth = 700
    spans = [(1_000 + 2 * k, 1_001 + 2 * k, "tick") for k in range(flat)]
    start = 1_000 + 2 * flat
    spans += [(start + k, start + 10_000 - k, "recurse") for k in range(depth)]
    lake = make_lake(tmp_path / "lake", [("s1", ["cpu"], {"thread-name": "main", "thread-id": "9"})],
                     end=start + 20_000)
    pq.write_table(span_table(spans), lake / "thread_spans" / "s1.parquet", row_group_size=1_000)
    chunks = b"".join(data for _, data in generate_trace_chunks(str(lake), PID, span_types="thread",
                                                                async_layout=layout))
    report = validate(chunks)
    assert report.clean, report.summary()
    assert chunks == write(lake, PID, tmp_path / "t.perfetto", "--spans", "thread", "--async-layout", layout)
