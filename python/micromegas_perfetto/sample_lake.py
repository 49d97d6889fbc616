"""A realistic sample lake (docs/lake-format.md), generated deterministically from a seed.

Three processes: a game-like app with `threads` threads of nested call trees and `async_spans`
async spans (heavily overlapping, 30% children of an open span, a quarter of those
outliving their parent, those in flight at the end still open, begin and end on different threads),
plus two small processes. Every process also has non-thread streams (log, metrics) with log
entries at every level (a few long or non-ASCII messages) and metrics (frame time in ms,
memory in bytes, queue depth as a count, CPU usage in %). Names include UTF-8. Strings are
dictionary-encoded, as micromegas stores them.

A `LakeVariant` writes the same telemetry the other ways a lake may hold it (for tests and for
trying readers): per-stream and per-process tables as a file, a `<id>.parquet/` folder or an
`<id>/` folder of part files; time columns in s, ms, us or ns with any zone or none, or int64
ns (coarser units stretch the timeline so every value stays exact); threads missing their
`thread-name` or `thread-id`; processes without `end_time`.
"""
import os
import random
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import MicromegasPerfettoError, OutputWriteError, output_write_error
from .output import uninterrupted

T0 = 1_700_000_000_000_000_000  # ns

FUNCTIONS = ["frame", "update", "render", "physics::step", "ai::think", "net::poll", "audio::mix", "ui::layout",
             "load_asset", "decompress", "parse_json", "build_mesh", "cull", "draw_calls", "present", "wait_vsync",
             "gc::collect", "sched::tick", "rendu_étape", "読み込み", "🚀launch", "ñandú::run", "io::read", "io::write"]
TARGETS = ["game", "render", "physics", "ai", "net", "audio", "ui", "assets", "io", "runtime", "moteur::rendu"]
FILES = ["src/main.rs", "src/game.rs", "src/render/mod.rs", "src/physics.rs", "src/ai.rs", "src/net.rs",
         "src/audio.rs", "src/ui/layout.rs", "src/assets.rs", "src/io.rs", "src/runtime.rs", "src/rendu/étape.rs"]
ASYNC_NAMES = ["http_request", "load_texture", "db_query", "stream_chunk", "upload", "resolve_dns", "décoder",
               "ダウンロード", "compile_shader", "fetch_manifest"]


LAYOUTS = ("file", "parquet-folder", "folder")
TIME_UNITS = ("s", "ms", "us", "ns", "int64")
THREAD_PROPERTIES = ("full", "partial")
END_TIMES = ("present", "missing", "null")
_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1, "int64": 1}


@dataclass(frozen=True)
class LakeVariant:
    """How a sample lake stores its telemetry (the default: as micromegas does).

    - layout: "file" (`<id>.parquet`), "parquet-folder" (`<id>.parquet/part-*.parquet`) or
      "folder" (`<id>/part=NNN/part-*.parquet`, with a `_SUCCESS` marker as Spark writes);
    - time_unit: "s", "ms", "us", "ns" or "int64" (nanoseconds, no timestamp type). A unit of
      u ns writes T0 + (t - T0) * u for an event at t ns: the timeline is stretched, exact;
    - time_zone: the timestamps' zone ("+00:00" as micromegas writes it, "UTC", any other) or
      None for none;
    - thread_properties: "full" (thread-name and thread-id, one thread unnamed) or
      "partial" (threads in turn: both, name only, id only, neither);
    - end_time: "present", "missing" (no column) or "null";
    - row_group_rows: rows per Parquet row group (small values exercise pruning);
    - parts: files per table in the folder layouts.
    """

    layout: str = "file"
    time_unit: str = "ns"
    time_zone: Optional[str] = "+00:00"
    thread_properties: str = "full"
    end_time: str = "present"
    row_group_rows: int = 65_536
    parts: int = 3

    def __post_init__(self):
        for value, allowed, what in ((self.layout, LAYOUTS, "layout"), (self.time_unit, TIME_UNITS, "time unit"),
                                     (self.thread_properties, THREAD_PROPERTIES, "thread properties"),
                                     (self.end_time, END_TIMES, "end time")):
            if value not in allowed:
                raise ValueError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
        if self.row_group_rows < 1 or self.parts < 1:
            raise ValueError("row_group_rows and parts must be >= 1")
        # pyarrow takes any text as a zone; readers of the lake then fail on it. An offset is
        # checked here; a name by pyarrow's time zone database (pyarrow.compute: imported then only).
        if self.time_zone is not None and not re.match(r"^[+-]([01]\d|2[0-3]):[0-5]\d$", self.time_zone):
            import pyarrow.compute as pc
            try:
                pc.hour(pa.array([0], pa.timestamp("s", tz=self.time_zone)))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise ValueError(f"time zone {self.time_zone!r} is neither an offset (+HH:MM) nor a zone of the time zone "
                                 "database (e.g. Europe/Paris, UTC)") from None

    @property
    def time_type(self) -> pa.DataType:
        if self.time_unit == "int64":
            return pa.int64()
        return pa.timestamp(self.time_unit, tz=self.time_zone)

    def times(self, values: List[Optional[int]]) -> pa.Array:
        """Event times (ns) as this variant's time column."""
        factor = _NS_PER_UNIT[self.time_unit]
        raw = [None if v is None else T0 // factor + (v - T0) for v in values]
        return pa.array(raw, pa.int64()).cast(self.time_type) if self.time_unit != "int64" else pa.array(raw, pa.int64())

    def write(self, table: pa.Table, folder: Path, key: str) -> None:
        """Writes one per-stream or per-process table under `folder` in this layout."""
        if self.layout == "file":
            pq.write_table(table, folder / f"{key}.parquet", row_group_size=self.row_group_rows)
            return
        target = folder / (f"{key}.parquet" if self.layout == "parquet-folder" else key)
        target.mkdir(parents=True, exist_ok=True)
        step = -(-table.num_rows // self.parts) if table.num_rows else 1
        for i in range(self.parts):
            part = table.slice(i * step, step)
            where = target if self.layout == "parquet-folder" else target / f"part={i:03d}"
            where.mkdir(exist_ok=True)
            pq.write_table(part, where / f"part-{i:05d}.parquet", row_group_size=self.row_group_rows)
        if self.layout == "folder":
            (target / "_SUCCESS").write_bytes(b"")


DEFAULT_VARIANT = LakeVariant()


def _dictionary(indices: List[int], pool: List[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(pool, pa.string()))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _thread_spans(rng: random.Random, count: int, start: int, folder: Path, key: str, variant: LakeVariant) -> int:
    """Writes `count` properly nested spans (call trees, depth <= 7) sorted by begin; returns the last end."""
    ids, parents, depths, begins, ends = [], [], [], [], []
    names, targets, files, lines = [], [], [], []
    n_functions, n_targets, n_files = len(FUNCTIONS), len(TARGETS), len(FILES)
    t = start
    randrange = rng.randrange
    append_begin, append_end = begins.append, ends.append

    def node(depth: int, parent: int) -> None:
        nonlocal t
        index = len(begins)
        ids.append(index + 1)
        parents.append(parent)
        depths.append(depth)
        f = randrange(n_functions)
        names.append(f)
        targets.append(f % n_targets)
        files.append(f % n_files)
        lines.append(10 + 7 * f + randrange(5))
        append_begin(t)
        append_end(0)
        t += 1 + randrange(2_000)
        if depth < 7:
            for _ in range(randrange(4)):
                if len(begins) >= count:
                    break
                node(depth + 1, index + 1)
                t += randrange(1_000)
        t += 1 + randrange(2_000)
        ends[index] = t

    while len(begins) < count:
        t += 1_000 + randrange(200_000)
        node(0, 0)
    durations = [e - b for b, e in zip(begins, ends)]
    table = pa.table({
        "id": pa.array(ids, pa.int64()), "parent": pa.array(parents, pa.int64()),
        "depth": pa.array(depths, pa.uint32()), "hash": pa.array(names, pa.uint32()),
        "begin": variant.times(begins), "end": variant.times(ends),
        "duration": pa.array([d * _NS_PER_UNIT[variant.time_unit] for d in durations], pa.int64()),
        "name": _dictionary(names, FUNCTIONS), "target": _dictionary(targets, TARGETS),
        "filename": _dictionary(files, FILES), "line": pa.array(lines, pa.uint32()),
    })
    variant.write(table, folder, key)
    return max(ends) if ends else start


def _async_events(rng: random.Random, count: int, start: int, end: int, streams: List[str], folder: Path, key: str,
                  variant: LakeVariant) -> int:
    """Writes the begin/end events of `count` async spans; returns the last event time."""
    rows = []  # (time, stream, type, span_id, parent, depth, name)
    open_spans = []  # (span_id, end, depth) of recent spans
    step = max((end - start) // max(count, 1), 1)
    t = start
    last = start
    for span_id in range(1, count + 1):
        t += rng.randrange(2 * step)
        duration = int(rng.expovariate(1 / (60 * step))) + 1  # heavy overlap: ~60 open at once
        parent, depth = 0, 0
        if open_spans and rng.random() < 0.3:
            candidate = open_spans[-1 - rng.randrange(min(len(open_spans), 32))]
            if candidate[1] > t:
                parent, depth = candidate[0], candidate[2] + 1
                if rng.random() < 0.75:  # most children end within their parent; the rest outlive it
                    duration = max(1, min(duration, candidate[1] - t))
        name = rng.randrange(len(ASYNC_NAMES))
        rows.append((t, rng.randrange(len(streams)), 0, span_id, parent, depth, name))
        if t + duration <= end:  # spans still in flight when the capture ends have no end event
            rows.append((t + duration, rng.randrange(len(streams)), 1, span_id, parent, depth, name))
            last = max(last, t + duration)
        open_spans.append((span_id, t + duration, depth))
        if len(open_spans) > 256:
            del open_spans[:128]
    # Not globally sorted by time: blocks of events arrive out of order, as from several streams.
    blocks = [rows[i:i + 512] for i in range(0, len(rows), 512)]
    for i in range(len(blocks) - 1):
        if rng.random() < 0.3:
            blocks[i], blocks[i + 1] = blocks[i + 1], blocks[i]
    rows = [r for block in blocks for r in block]
    table = pa.table({
        "stream_id": _dictionary([r[1] for r in rows], streams),
        "block_id": _dictionary([r[0] % 7 for r in rows], [_uuid(rng) for _ in range(7)]),
        "time": variant.times([r[0] for r in rows]),
        "event_type": _dictionary([r[2] for r in rows], ["begin", "end"]),
        "span_id": pa.array([r[3] for r in rows], pa.int64()),
        "parent_span_id": pa.array([r[4] for r in rows], pa.int64()),
        "depth": pa.array([r[5] for r in rows], pa.uint32()),
        "hash": pa.array([r[6] for r in rows], pa.uint32()),
        "name": _dictionary([r[6] for r in rows], ASYNC_NAMES),
        "filename": _dictionary([r[6] % len(FILES) for r in rows], FILES),
        "target": _dictionary([r[6] % len(TARGETS) for r in rows], TARGETS),
        "line": pa.array([100 + r[6] for r in rows], pa.uint32()),
    })
    variant.write(table, folder, key)
    return last


def _properties(variant: LakeVariant, index: int, k: int, thread_count: int, tid: int) -> List[dict]:
    name = ["main", "render", "worker", "io", "audio"][k % 5] + ("" if k < 5 else f"_{k}")
    if variant.thread_properties == "partial":
        has_name, has_id = [(True, True), (True, False), (False, True), (False, False)][k % 4]
    else:
        has_name, has_id = not (index == 0 and k == thread_count - 1 and thread_count > 1), True  # one unnamed
    return ([{"key": "thread-id", "value": str(tid)}] if has_id else []) + \
        ([{"key": "thread-name", "value": name}] if has_name else [])


LOG_LEVELS = [(1, 0.005), (2, 0.04), (3, 0.09), (4, 0.55), (5, 0.27), (6, 0.045)]  # micromegas' Level, weight
LOG_MESSAGES = [
    (4, "frame {n} presented in {ms:.1f} ms"), (5, "cache hit for asset #{n}"), (3, "frame {n} took {ms:.1f} ms, "
    "over the 16.7 ms budget"), (4, "loaded level 'forêt_{n}'"), (2, "connection to 10.0.{k}.{n} lost, retrying in "
    "{k} s"), (5, "polled {k} sockets"), (6, "enter render::cull ({n} objects)"), (3, "GC pause of {ms:.1f} ms"),
    (4, "プレイヤー {n} が参加しました"), (1, "device lost: GPU hang detected after frame {n}, shutting down"),
    (2, "request {n} failed: " + "timeout waiting for the upstream server to answer; " * 3),
]
METRICS = [("frame_time", "ms", 2_000), ("memory", "bytes", 400), ("queue_depth", "count", 800), ("cpu_usage", "%", 200)]


def _log_entries(rng: random.Random, count: int, start: int, end: int, process_id: str, stream_id: str,
                 folder: Path, variant: LakeVariant) -> None:
    """Writes `count` log entries between start and end, sorted by time, at every level."""
    levels = [lvl for lvl, _ in LOG_LEVELS]
    weights = [w for _, w in LOG_LEVELS]
    rows = []
    for i in range(count):
        level = levels[i] if i < len(levels) else rng.choices(levels, weights)[0]  # every level at least once
        candidates = [m for lvl, m in LOG_MESSAGES if lvl == level] or [LOG_MESSAGES[0][1]]
        text = rng.choice(candidates).format(n=rng.randrange(100_000), ms=rng.uniform(1, 40), k=rng.randrange(1, 9))
        rows.append((rng.randrange(start, max(end, start + 1)), rng.randrange(len(TARGETS)), level, text))
    rows.sort(key=lambda r: r[0])
    variant.write(pa.table({
        "process_id": _dictionary([0] * len(rows), [process_id]),
        "stream_id": _dictionary([0] * len(rows), [stream_id]),
        "block_id": _dictionary([i // 1024 for i in range(len(rows))],
                                [_uuid(rng) for _ in range(len(rows) // 1024 + 1)]),
        "time": variant.times([r[0] for r in rows]),
        "target": _dictionary([r[1] for r in rows], TARGETS),
        "level": pa.array([r[2] for r in rows], pa.int32()),
        "msg": pa.array([r[3] for r in rows], pa.string()),
    }), folder, process_id)


def _measures(rng: random.Random, start: int, end: int, scale: float, process_id: str, stream_id: str,
              folder: Path, variant: LakeVariant) -> None:
    """Writes each metric of METRICS (`scale` times its count of values, at least 20) evenly over
    [start, end], sorted by time."""
    rows = []
    for m, (name, unit, count) in enumerate(METRICS):
        step = max((end - start) // max(int(count * scale), 20), 1)
        value = {"frame_time": 16.6, "memory": 512e6, "queue_depth": 3.0, "cpu_usage": 35.0}[name]
        for t in range(start, end + 1, step):
            if name == "frame_time":
                value = 16.6 + rng.expovariate(0.3) * (3 if rng.random() < 0.05 else 1)
            elif name == "memory":
                value = max(64e6, value + rng.gauss(2e6, 8e6))
            elif name == "queue_depth":
                value = float(max(0, int(value) + rng.randrange(-2, 3)))
            else:
                value = min(100.0, max(0.0, value + rng.gauss(0, 5)))
            rows.append((t, m, value))
    rows.sort(key=lambda r: (r[0], r[1]))
    variant.write(pa.table({
        "process_id": _dictionary([0] * len(rows), [process_id]),
        "stream_id": _dictionary([0] * len(rows), [stream_id]),
        "block_id": _dictionary([0] * len(rows), [_uuid(rng)]),
        "time": variant.times([r[0] for r in rows]),
        "target": _dictionary([0] * len(rows), ["metrics"]),
        "name": _dictionary([r[1] for r in rows], [m[0] for m in METRICS]),
        "unit": _dictionary([r[1] for r in rows], [m[1] for m in METRICS]),
        "value": pa.array([r[2] for r in rows], pa.float64()),
    }), folder, process_id)


def write_sample_lake(folder, seed: int = 42, threads: int = 8, spans_per_thread: int = 25_000,
                      async_spans: int = 20_000, progress=None, variant: LakeVariant = DEFAULT_VARIANT) -> List[dict]:
    """Writes a sample lake into `folder` (created; must not hold a lake already) and returns
    its processes (start and end in ns, as written: stretched for coarse time units).
    `progress(text)` is called as each part is written; `variant` says how the lake stores
    the telemetry (the same for a given seed whatever the variant, up to the time stretch)."""
    if threads < 1 or spans_per_thread < 0 or async_spans < 0:
        raise ValueError("threads must be >= 1, spans and async spans >= 0")
    folder = Path(folder)
    existed = folder.is_dir()
    before = set(os.listdir(folder)) if existed else set()
    try:
        return _write_sample_lake(folder, seed, threads, spans_per_thread, async_spans, progress, variant)
    except BaseException as e:  # also an interruption: no half lake stays (a later run would refuse it)
        with uninterrupted():  # a second signal during the removal waits for it
            if existed:
                for name in set(os.listdir(folder)) - before:
                    _remove(folder / name)
            else:
                _remove(folder)
        if isinstance(e, OSError) and not isinstance(e, MicromegasPerfettoError):
            raise _write_failure(e, f"the sample lake {folder}") from None
        raise


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except OSError:
        pass


def _write_failure(e: OSError, what: str) -> OutputWriteError:
    """An OSError writing `what` (pyarrow's say "[Errno 28] Error writing bytes to file. Detail:
    ...") as the one-line OutputWriteError: "disk full writing the sample lake DIR"."""
    if not e.errno:
        return OutputWriteError(f"cannot write {what}: {e}")
    return output_write_error(e.errno, what)


def _write_sample_lake(folder: Path, seed: int, threads: int, spans_per_thread: int, async_spans: int, progress,
                       variant: LakeVariant) -> List[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thread_spans").mkdir(exist_ok=True)
    (folder / "async_events").mkdir(exist_ok=True)
    (folder / "log_entries").mkdir(exist_ok=True)
    (folder / "measures").mkdir(exist_ok=True)
    rng = random.Random(seed)
    say = progress or (lambda text: None)
    processes, stream_rows = [], []
    layouts = [("telemetry-game", threads, spans_per_thread, async_spans),
               ("asset-server", 2, max(spans_per_thread // 50, 10), max(async_spans // 20, 5)),
               ("crash-reporter", 1, max(spans_per_thread // 200, 5), 0)]
    for index, (exe, thread_count, span_count, async_count) in enumerate(layouts):
        process_id = _uuid(rng)
        start = T0 + index * 1_000_000_000
        thread_streams = []
        last = start
        for k in range(thread_count):
            stream_id = _uuid(rng)
            thread_streams.append(stream_id)
            properties = _properties(variant, index, k, thread_count, 1000 + 17 * index + k)
            stream_rows.append({"stream_id": stream_id, "process_id": process_id, "tags": ["cpu"],
                                "properties": properties})
            say(f"{exe}: thread {k + 1}/{thread_count}, {span_count:,} spans")
            last = max(last, _thread_spans(rng, span_count, start + k * 5_000, folder / "thread_spans", stream_id,
                                           variant))
        other_streams = {}
        for tag in ("log", "metrics"):
            other_streams[tag] = _uuid(rng)
            stream_rows.append({"stream_id": other_streams[tag], "process_id": process_id, "tags": [tag],
                                "properties": [{"key": "name", "value": tag}]})
        if async_count:
            say(f"{exe}: {async_count:,} async spans")
            last = max(last, _async_events(rng, async_count, start, last, thread_streams, folder / "async_events",
                                           process_id, variant))
        # Logs and metrics from their own generator, so the spans stay those of earlier versions.
        content_rng = random.Random(f"{seed}/{index}/logs-and-metrics")
        log_count = max(thread_count * span_count // 50, 20)
        say(f"{exe}: {log_count:,} log entries, {len(METRICS)} metrics")
        _log_entries(content_rng, log_count, start, last, process_id, other_streams["log"],
                     folder / "log_entries", variant)
        _measures(content_rng, start, last, thread_count * span_count / (8 * 25_000), process_id,
                  other_streams["metrics"], folder / "measures", variant)
        processes.append({"process_id": process_id, "exe": exe, "username": "sample", "computer": f"host-{index}",
                          "start_time": start, "end_time": last + 1_000})
    columns = {
        "process_id": pa.array([p["process_id"] for p in processes], pa.string()),
        "exe": pa.array([p["exe"] for p in processes], pa.string()),
        "username": pa.array([p["username"] for p in processes], pa.string()),
        "computer": pa.array([p["computer"] for p in processes], pa.string()),
        "start_time": variant.times([p["start_time"] for p in processes]),
        "end_time": variant.times([p["end_time"] if variant.end_time == "present" else None for p in processes]),
    }
    if variant.end_time == "missing":
        del columns["end_time"]
    pq.write_table(pa.table(columns), folder / "processes.parquet")
    property_type = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
    pq.write_table(pa.table({
        "stream_id": pa.array([s["stream_id"] for s in stream_rows], pa.string()),
        "process_id": pa.array([s["process_id"] for s in stream_rows], pa.string()),
        "tags": pa.array([s["tags"] for s in stream_rows], pa.list_(pa.string())),
        "properties": pa.array([s["properties"] for s in stream_rows], property_type),
    }), folder / "streams.parquet")
    factor = _NS_PER_UNIT[variant.time_unit]
    for p in processes:
        p["start_time"] = T0 + (p["start_time"] - T0) * factor
        p["end_time"] = T0 + (p["end_time"] - T0) * factor if variant.end_time == "present" else None
    return processes


SAMPLE_VERSION = "v2"


def cache_folder() -> Path:
    base = os.environ.get("MICROMEGAS_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "micromegas"


def default_sample_lake(progress=None) -> Path:
    """The built-in sample lake, generated on first use into the cache folder."""
    target = cache_folder() / f"sample-lake-{SAMPLE_VERSION}"
    if (target / "streams.parquet").exists():
        return target
    try:
        return _generate_default(target, progress)
    except OSError as e:  # a read-only, full or unwritable cache folder (OutputWriteError too): where, the way out
        failure = _write_failure(e, f"the built-in sample lake in {target.parent}")
        raise OutputWriteError(f"{failure} (set $MICROMEGAS_CACHE to a writable folder, or give --lake DIR)") from None


def _generate_default(target: Path, progress) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".sample-lake-", dir=target.parent))
    try:
        if progress:
            progress(f"generating the sample lake in {target} (first use)")
        write_sample_lake(staging)
        try:
            staging.rename(target)
        except OSError:  # another process won the race
            if not (target / "streams.parquet").exists():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target

