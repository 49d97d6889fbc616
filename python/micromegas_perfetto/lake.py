"""The local lake: a folder of Parquet files laid out as docs/lake-format.md describes.

    LAKE/processes.parquet
    LAKE/streams.parquet
    LAKE/thread_spans/<stream_id>.parquet    (a file, a folder <id>.parquet/ or a folder <id>/)
    LAKE/async_events/<process_id>.parquet   (the same three layouts)

Spans and events are read batch by batch (plain reads, no memory mapping: a file truncated
while it is read is an error, not a SIGBUS). The time filter is pushed into the scan: row
groups whose min/max statistics fall outside the range are never read. libperfetto_mm
applies the exact per-row rule to what remains.
"""
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .errors import DataError, InvalidTimeError, LakeNotFoundError, ProcessNotFoundError
from .sources import (ASYNC_EVENT_COLUMNS, ASYNC_EVENT_TYPES, THREAD_SPAN_COLUMNS, THREAD_SPAN_TYPES, ProcessInfo,
                      Source, ThreadInfo, check_schema, empty_reader, thread_display)


class LocalLake(Source):
    """A local lake folder (see the module documentation)."""

    def __init__(self, path):
        self.path = Path(path).expanduser()
        self.description = f"lake {self.path}"
        if not self.path.is_dir():
            raise LakeNotFoundError(f"lake folder {self.path} does not exist")
        for name in ("processes.parquet", "streams.parquet"):
            if not (self.path / name).exists():
                raise LakeNotFoundError(f"{self.path} is not a micromegas lake: {name} is missing")

    # -- processes and threads ---------------------------------------------------------------

    def _read_small(self, name: str, required: Dict[str, str], process_id: str, columns: List[str]) -> pa.Table:
        path = self.path / name
        try:
            dataset = ds.dataset(path, format="parquet")
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"cannot read {path}: {e}") from None
        check_schema(dataset.schema, required, str(path))
        present = [c for c in columns if c in dataset.schema.names]
        return dataset.to_table(columns=present, filter=ds.field("process_id") == process_id)

    def process_info(self, process_id: str) -> ProcessInfo:
        table = self._read_small("processes.parquet", {"process_id": "string", "exe": "string"}, process_id,
                                 ["process_id", "exe", "start_time", "end_time"])
        if table.num_rows == 0:
            raise ProcessNotFoundError(f"process {process_id} not found in {self.description}")
        exe = table.column("exe")[0].as_py()
        return ProcessInfo(process_id=process_id, exe=exe or "",
                           start_ns=self._ns(table, "start_time"), end_ns=self._ns(table, "end_time"))

    @staticmethod
    def _ns(table: pa.Table, column: str) -> Optional[int]:
        if column not in table.column_names or table.column(column).null_count == table.num_rows:
            return None
        value = table.column(column).cast(pa.int64())[0]
        return value.as_py()

    def time_range(self, info: ProcessInfo) -> Tuple[int, int]:
        begin, end = info.start_ns, info.end_ns
        if begin is None or end is None:
            low, high = self._data_bounds(info.process_id)
            begin = low if begin is None else begin
            end = high if end is None else end
        if begin is None or end is None:
            raise InvalidTimeError(f"process {info.process_id} has no start time and no events: give --begin and --end")
        return begin, end

    def _data_bounds(self, process_id: str) -> Tuple[Optional[int], Optional[int]]:
        """Earliest and latest times in the process's spans and events (reads their time columns)."""
        low = high = None
        files = [(self.path / "async_events" / f"{process_id}.parquet", "time", "time")]
        for thread in self.threads(process_id, 0, 0):
            path = self.path / "thread_spans" / f"{thread.stream_id}.parquet"
            files.append((path, "begin", "end"))
        for path, low_column, high_column in files:
            if not path.exists():
                continue
            dataset = ds.dataset(path, format="parquet")
            if low_column not in dataset.schema.names:
                continue
            table = dataset.to_table(columns=[low_column, high_column])
            if table.num_rows == 0:
                continue
            a = pc.min(table.column(low_column).cast(pa.int64())).as_py()
            b = pc.max(table.column(high_column).cast(pa.int64())).as_py()
            low = a if low is None else min(low, a)
            high = b if high is None else max(high, b)
        return low, high

    def threads(self, process_id: str, begin_ns: int, end_ns: int) -> List[ThreadInfo]:
        table = self._read_small("streams.parquet", {"stream_id": "string", "process_id": "string"}, process_id,
                                 ["stream_id", "tags", "properties"])
        threads = []
        for row in sorted(table.to_pylist(), key=lambda r: r["stream_id"]):
            if "cpu" not in (row.get("tags") or []):
                continue
            properties = {p["key"]: p["value"] for p in (row.get("properties") or []) if p and p.get("key")}
            threads.append(thread_display(row["stream_id"], properties.get("thread-name"), properties.get("thread-id")))
        return threads

    # -- spans and events ----------------------------------------------------------------------

    def thread_spans(self, stream_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        path = self.path / "thread_spans" / f"{stream_id}.parquet"
        if not path.exists():
            return empty_reader(THREAD_SPAN_TYPES)
        # A row group may hold spans of the range when min(begin) <= end and max(end) >= begin.
        return _parquet_reader(path, THREAD_SPAN_COLUMNS, THREAD_SPAN_TYPES,
                               lambda stats: stats("begin")[0] <= end_ns and stats("end")[1] >= begin_ns)

    def async_events(self, process_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        path = self.path / "async_events" / f"{process_id}.parquet"
        if not path.exists():
            return empty_reader(ASYNC_EVENT_TYPES)
        return _parquet_reader(path, ASYNC_EVENT_COLUMNS, ASYNC_EVENT_TYPES,
                               lambda stats: stats("time")[0] <= end_ns and stats("time")[1] >= begin_ns)

    # -- listing ---------------------------------------------------------------------------------

    def processes(self, begin_ns: Optional[int] = None, end_ns: Optional[int] = None,
                  limit: Optional[int] = None) -> List[dict]:
        """The lake's processes in file order (those started within [begin, end] when given):
        id, exe, start and end (ns), thread count."""
        path = self.path / "processes.parquet"
        try:
            table = pq.read_table(path)
            streams = pq.read_table(self.path / "streams.parquet", columns=["process_id", "tags"]).to_pylist()
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"cannot read the lake {self.path}: {e}") from None
        check_schema(table.schema, {"process_id": "string", "exe": "string"}, str(path))
        counts: Dict[str, int] = {}
        for s in streams:
            if "cpu" in (s.get("tags") or []):
                counts[s["process_id"]] = counts.get(s["process_id"], 0) + 1
        rows = []
        for i, row in enumerate(table.select([c for c in ("process_id", "exe") if c in table.column_names]).to_pylist()):
            start = self._ns(table.slice(i, 1), "start_time")
            if start is not None and ((begin_ns is not None and start < begin_ns)
                                      or (end_ns is not None and start > end_ns)):
                continue
            rows.append({**row, "threads": counts.get(row["process_id"], 0), "start_ns": start,
                         "end_ns": self._ns(table.slice(i, 1), "end_time")})
        return rows[:limit] if limit is not None else rows


Stats = Callable[[str], Tuple[float, float]]


def _parquet_reader(path: Path, columns: List[str], required: Dict[str, str],
                    keep: Callable[[Stats], bool]) -> pa.RecordBatchReader:
    """The `columns` of a Parquet file (or a folder of them), batch by batch, skipping row
    groups for which `keep(stats)` is false; `stats(column)` gives a row group's (min, max)."""
    files = sorted(p for p in path.rglob("*.parquet") if p.is_file()) if path.is_dir() else [path]
    opened = []
    for file in files:
        try:
            parquet = pq.ParquetFile(file, memory_map=False)
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"cannot read {file}: {e}") from None
        check_schema(parquet.schema_arrow, required, str(file))
        opened.append(parquet)
    if not opened:
        return empty_reader(required)
    first = opened[0].schema_arrow
    present = [c for c in columns if c in first.names]
    schema = pa.schema([first.field(c) for c in present])

    def batches() -> Iterator[pa.RecordBatch]:
        for parquet in opened:
            groups = [i for i in range(parquet.num_row_groups) if keep(_row_group_stats(parquet, i))]
            if not groups:
                continue
            for batch in parquet.iter_batches(batch_size=65_536, row_groups=groups, columns=present, use_threads=True):
                yield batch if batch.schema == schema else batch.cast(schema)
    return pa.RecordBatchReader.from_batches(schema, batches())


def _row_group_stats(parquet: pq.ParquetFile, index: int) -> Stats:
    """(min, max) of a column's raw integer values in row group `index`; (-inf, inf) if unknown."""
    group = parquet.metadata.row_group(index)
    names = {group.column(j).path_in_schema: j for j in range(group.num_columns)}

    def stats(column: str) -> Tuple[float, float]:
        j = names.get(column)
        s = group.column(j).statistics if j is not None else None
        if s is None or not s.has_min_max or not isinstance(s.min_raw, int):
            return float("-inf"), float("inf")
        return s.min_raw, s.max_raw
    return stats
