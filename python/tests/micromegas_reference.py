"""An implementation of micromegas' server-side trace generation (`perfetto_trace_chunks`)
independent of this package, for the fixture server and the tests.

It follows micromegas' own generation (its analytics crate's perfetto trace execution plan
and `micromegas-perfetto` writer, as docs/byte-format.md and docs/flightsql.md describe them):

- the same SQL: the process's exe from `processes`; the thread list from `blocks`
  (`property_get` of thread-name and thread-id, `array_has(tags, 'cpu')`, by stream id) named
  by micromegas' rule; each thread's `view_instance('thread_spans', stream)` ordered by
  begin; the async spans as a join of begin and end events of `view_instance('async_events',
  process)` within the range, ordered by begin, those with begin < end;
- the same call sequence: process descriptor, thread descriptors, async track, thread spans,
  async spans;
- packets built with Perfetto's official protobuf classes (`perfetto` pip package), each
  message serialized by protobuf, and the TracePacket fields laid out in prost's order
  (data field first), with xxh64 track uuids computed here.

Nothing here imports `micromegas_perfetto`.
"""
import re
from typing import Callable, Dict, List, Tuple

import pyarrow as pa
from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import InternedData, TrackDescriptor, TrackEvent

# -- xxh64 ---------------------------------------------------------------------------------------

_P1, _P2, _P3, _P4, _P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x85EBCA77C2B2AE63,
                           0x27D4EB2F165667C5)
_M = (1 << 64) - 1


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M


def _round(acc: int, lane: int) -> int:
    return (_rotl((acc + lane * _P2) & _M, 31) * _P1) & _M


def _merge(acc: int, value: int) -> int:
    return ((acc ^ _round(0, value)) * _P1 + _P4) & _M


def xxh64(data: bytes, seed: int = 0) -> int:
    """XXH64 of `data` (the reference algorithm)."""
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + _P1 + _P2) & _M, (seed + _P2) & _M, seed & _M, (seed - _P1) & _M]
        while i + 32 <= n:
            for k in range(4):
                v[k] = _round(v[k], int.from_bytes(data[i + 8 * k:i + 8 * k + 8], "little"))
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M
        for lane in v:
            h = _merge(h, lane)
    else:
        h = (seed + _P5) & _M
    h = (h + n) & _M
    while i + 8 <= n:
        h = (_rotl(h ^ _round(0, int.from_bytes(data[i:i + 8], "little")), 27) * _P1 + _P4) & _M
        i += 8
    if i + 4 <= n:
        h = (_rotl(h ^ (int.from_bytes(data[i:i + 4], "little") * _P1 & _M), 23) * _P2 + _P3) & _M
        i += 4
    while i < n:
        h = (_rotl(h ^ (data[i] * _P5 & _M), 11) * _P1) & _M
        i += 1
    h = ((h ^ (h >> 33)) * _P2) & _M
    h = ((h ^ (h >> 29)) * _P3) & _M
    return h ^ (h >> 32)


def _int32(value: int) -> int:
    """Truncation to int32, two's complement (Rust's `as i32`)."""
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


# -- the writer: micromegas' calls, prost's bytes -------------------------------------------------


def _varint(n: int) -> bytes:
    n &= _M
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _message(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _varint(len(payload)) + payload


class ReferenceWriter:
    """micromegas' Perfetto writer calls, producing its bytes."""

    def __init__(self, process_id: str):
        self.out = bytearray()
        self.process_uuid = xxh64(process_id.encode())
        self.pid = _int32(self.process_uuid)
        self.async_uuid = xxh64(b"async_track", self.process_uuid)
        self.thread_uuid = None
        self.first = True
        self.names: Dict[str, int] = {}
        self.categories: Dict[str, int] = {}
        self.locations: Dict[Tuple[str, int], int] = {}

    def _frame(self, packet: bytes) -> None:
        self.out += _message(1, packet)  # Trace.packet

    def _descriptor(self, descriptor: TrackDescriptor) -> None:
        # prost's TracePacket order: 60 track_descriptor, 10 trusted sequence id, 13 flags, 87 first.
        packet = _message(60, descriptor.SerializeToString()) + _key(10, 0) + _varint(1)
        packet += _key(13, 0) + _varint(3 if self.first else 2)
        if self.first:
            packet += _key(87, 0) + _varint(1)
            self.first = False
        self._frame(packet)

    def emit_process_descriptor(self, exe: str) -> None:
        d = TrackDescriptor()
        d.uuid = self.process_uuid
        d.process.pid = self.pid
        d.process.process_name = exe
        self._descriptor(d)

    def emit_thread_descriptor(self, stream_id: str, thread_id: int, thread_name: str) -> None:
        d = TrackDescriptor()
        d.uuid = xxh64(stream_id.encode())
        d.thread.pid = self.pid
        d.thread.tid = thread_id
        d.thread.thread_name = thread_name
        d.parent_uuid = self.process_uuid
        self._descriptor(d)

    def emit_async_track_descriptor(self) -> None:
        d = TrackDescriptor()
        d.uuid = self.async_uuid
        d.name = "Async Operations"
        d.parent_uuid = self.process_uuid
        self._descriptor(d)

    def set_current_thread(self, stream_id: str) -> None:
        self.thread_uuid = xxh64(stream_id.encode())

    def _event(self, track: int, kind: int, ts: int, name: str, target: str, filename: str, line: int) -> None:
        interned = InternedData()
        iids = []
        for table, key, add in ((self.categories, target, interned.event_categories),
                                (self.names, name, interned.event_names),
                                (self.locations, (filename, line), interned.source_locations)):
            if key not in table:
                table[key] = len(table) + 1
                entry = add.add()
                entry.iid = table[key]
                if isinstance(key, tuple):
                    entry.file_name, entry.line_number = key
                else:
                    entry.name = key
            iids.append(table[key])
        event = TrackEvent()
        event.category_iids.append(iids[0])
        event.type = kind
        event.name_iid = iids[1]
        event.track_uuid = track
        event.source_location_iid = iids[2]
        # prost's order: 11 track_event, 8 timestamp, 10 sequence id, 12 interned data, 13 flags.
        packet = _message(11, event.SerializeToString()) + _key(8, 0) + _varint(ts) + _key(10, 0) + _varint(1)
        if interned.ByteSize():
            packet += _message(12, interned.SerializeToString())
        packet += _key(13, 0) + _varint(2)
        self._frame(packet)

    def emit_span(self, begin: int, end: int, name: str, target: str, filename: str, line: int) -> None:
        self._event(self.thread_uuid, TrackEvent.TYPE_SLICE_BEGIN, begin, name, target, filename, line)
        self._event(self.thread_uuid, TrackEvent.TYPE_SLICE_END, end, name, target, filename, line)

    def emit_async_span_begin(self, ts: int, name: str, target: str, filename: str, line: int) -> None:
        self._event(self.async_uuid, TrackEvent.TYPE_SLICE_BEGIN, ts, name, target, filename, line)

    def emit_async_span_end(self, ts: int, name: str, target: str, filename: str, line: int) -> None:
        self._event(self.async_uuid, TrackEvent.TYPE_SLICE_END, ts, name, target, filename, line)


def write_scenario(scenario: dict) -> bytes:
    """The bytes of a golden scenario (docs/byte-format.md's call sequence)."""
    w = ReferenceWriter(scenario["process_id"])
    w.emit_process_descriptor(scenario["exe"])
    for t in scenario["threads"]:
        w.emit_thread_descriptor(t["stream_id"], t["thread_id"], t["thread_name"])
    kinds = scenario["span_types"]
    if kinds in ("async", "both"):
        w.emit_async_track_descriptor()
    if kinds in ("thread", "both"):
        for t in scenario["threads"]:
            w.set_current_thread(t["stream_id"])
            for s in t["spans"]:
                w.emit_span(s["begin"], s["end"], s["name"], s["target"], s["filename"], s["line"])
    if kinds in ("async", "both"):
        for s in scenario["async_spans"]:
            w.emit_async_span_begin(s["begin"], s["name"], s["target"], s["filename"], s["line"])
            w.emit_async_span_end(s["end"], s["name"], s["target"], s["filename"], s["line"])
    return bytes(w.out)


# -- the generation: micromegas' queries ---------------------------------------------------------


def parse_thread_id(text: str) -> int:
    """Rust's `str::parse::<i64>` (optional sign, ASCII digits, in range; else 0), `as i32`."""
    if not re.fullmatch(r"[+-]?[0-9]+", text or "", flags=re.ASCII):
        return 0
    digits = text.lstrip("+-").lstrip("0") or "0"  # int() refuses over 4,300 digits
    if len(digits) > 19:
        return 0
    value = -int(digits) if text[0] == "-" else int(digits)
    return _int32(value) if -(1 << 63) <= value < (1 << 63) else 0


def thread_name(stream_id: str, name: str, tid_text: str) -> str:
    shown = tid_text or stream_id
    return f"{name}-{shown}" if name else shown


def _ns(column) -> List[int]:
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("ns"))
    return column.cast(pa.int64()).to_pylist()


def _strings(column) -> List[str]:
    return [v or "" for v in column.cast(pa.string()).to_pylist()] if len(column) else []


def _rfc3339(ns: int) -> str:
    import datetime
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest:09d}+00:00"


def perfetto_trace(sql: Callable[[str], pa.Table], process_id: str, span_types: str, begin_ns: int,
                   end_ns: int) -> bytes:
    """micromegas' perfetto_trace_chunks trace (concatenated), running its queries with `sql`.
    Raises LookupError("Process <id> not found") for an unknown process."""
    begin, end = _rfc3339(begin_ns), _rfc3339(end_ns)
    exe = sql(f"SELECT arrow_cast(exe, 'Utf8') AS exe FROM processes WHERE process_id = '{process_id}' LIMIT 1")
    if exe.num_rows == 0:
        raise LookupError(f"Process {process_id} not found")
    w = ReferenceWriter(process_id)
    w.emit_process_descriptor(exe.column("exe")[0].as_py() or "")
    threads = sql(
        "SELECT arrow_cast(stream_id, 'Utf8') AS stream_id, "
        "arrow_cast(property_get(\"streams.properties\", 'thread-name'), 'Utf8') AS thread_name, "
        "arrow_cast(property_get(\"streams.properties\", 'thread-id'), 'Utf8') AS thread_id "
        f"FROM blocks WHERE process_id = '{process_id}' AND array_has(\"streams.tags\", 'cpu') "
        "GROUP BY stream_id, thread_name, thread_id ORDER BY stream_id")
    streams = _strings(threads.column("stream_id"))
    for stream, name, tid in zip(streams, _strings(threads.column("thread_name")),
                                 _strings(threads.column("thread_id"))):
        w.emit_thread_descriptor(stream, parse_thread_id(tid), thread_name(stream, name, tid))
    if span_types in ("async", "both"):
        w.emit_async_track_descriptor()
    if span_types in ("thread", "both"):
        for stream in streams:
            w.set_current_thread(stream)
            spans = sql(
                "SELECT \"begin\", \"end\", arrow_cast(name, 'Utf8') AS name, arrow_cast(filename, 'Utf8') AS filename, "
                "arrow_cast(target, 'Utf8') AS target, line "
                f"FROM view_instance('thread_spans', '{stream}') "
                f"WHERE \"begin\" <= TIMESTAMP '{end}' AND \"end\" >= TIMESTAMP '{begin}' ORDER BY \"begin\"")
            for row in zip(_ns(spans.column("begin")), _ns(spans.column("end")), _strings(spans.column("name")),
                           _strings(spans.column("target")), _strings(spans.column("filename")),
                           spans.column("line").to_pylist()):
                w.emit_span(row[0], row[1], row[2], row[3], row[4], row[5] or 0)
    if span_types in ("async", "both"):
        events = f"view_instance('async_events', '{process_id}')"
        window = f"time >= TIMESTAMP '{begin}' AND time <= TIMESTAMP '{end}'"
        spans = sql(
            "WITH begin_events AS (SELECT span_id, time AS begin_time, arrow_cast(name, 'Utf8') AS name, "
            "arrow_cast(filename, 'Utf8') AS filename, arrow_cast(target, 'Utf8') AS target, line "
            f"FROM {events} WHERE {window} AND event_type = 'begin'), "
            f"end_events AS (SELECT span_id, time AS end_time FROM {events} WHERE {window} AND event_type = 'end') "
            "SELECT b.span_id, b.begin_time, e.end_time, b.name, b.filename, b.target, b.line "
            "FROM begin_events b INNER JOIN end_events e ON b.span_id = e.span_id "
            "ORDER BY b.begin_time, b.span_id")  # micromegas orders by begin only; ties by span id here
        for b, e, name, target, filename, line in zip(
                _ns(spans.column("begin_time")), _ns(spans.column("end_time")), _strings(spans.column("name")),
                _strings(spans.column("target")), _strings(spans.column("filename")), spans.column("line").to_pylist()):
            if b < e:
                w.emit_async_span_begin(b, name, target, filename, line or 0)
                w.emit_async_span_end(e, name, target, filename, line or 0)
    return bytes(w.out)
