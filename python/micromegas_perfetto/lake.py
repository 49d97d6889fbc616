"""The local lake: a folder of Parquet files laid out as docs/lake-format.md describes.

    LAKE/processes.parquet
    LAKE/streams.parquet
    LAKE/thread_spans/<stream_id>...         one table per thread stream
    LAKE/async_events/<process_id>...        one table per process
    LAKE/log_entries/<process_id>..., LAKE/measures/<process_id>...   (optional)

Each per-stream or per-process table is stored one of four ways (`LocalLake.table_files`):
a file `<id>.parquet`, a folder `<id>.parquet/` or a folder `<id>/` of Parquet files (as
Spark, DuckDB or pyarrow's dataset writer partition), or `stream_id=<id>/` / `process_id=<id>/`
(the whole table partitioned by its id), read recursively in sorted path order (digit runs as
numbers; names starting with `_` or `.` skipped); hive-style `key=value/` folders give the
columns such writers leave out of the files.

Spans and events are read batch by batch (plain reads, no memory mapping: a file truncated
while it is read is an error, not a SIGBUS). The time filter is pushed into the scan: row
groups whose min/max statistics (converted from the file's time unit) fall outside the range
are never read. libperfetto_mm applies the exact per-row rule to what remains.

Time columns may be timestamps of any unit and zone, or int64 nanoseconds (docs/lake-format.md,
"Types accepted everywhere"); batches go to the library as they are (it converts them), unless the
files of one table disagree on a column's type: then that column is cast to one type.
"""
import json
import os
import re
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import DataError, InvalidTimeError, LakeNotFoundError, ProcessNotFoundError, SchemaError
from .sources import (ASYNC_EVENT_COLUMNS, ASYNC_EVENT_TYPES, LOG_ENTRY_COLUMNS, LOG_ENTRY_TYPES, MEASURE_COLUMNS,
                      MEASURE_TYPES, THREAD_SPAN_COLUMNS, THREAD_SPAN_TYPES, TIME_NS, Pipeline, ProcessInfo, Source,
                      ThreadInfo, check_limit, check_schema, empty_reader, is_string, is_uuid, opened_now, process_id_hint,
                      read_ahead, thread_display, time_ns, uuid_text)
from .timeutil import NS_MAX, NS_MIN

TABLES = ("thread_spans", "async_events", "log_entries", "measures")
# The column each table is keyed by: its `<id>` is a stream id or a process id.
_ID_COLUMNS = {"thread_spans": "stream_id", "async_events": "process_id", "log_entries": "process_id",
               "measures": "process_id"}
# Each table's columns, required columns and types, and the time columns of its row-group filter.
_READS = {"thread_spans": (THREAD_SPAN_COLUMNS, THREAD_SPAN_TYPES, "begin", "end"),
          "async_events": (ASYNC_EVENT_COLUMNS, ASYNC_EVENT_TYPES, "time", "time"),
          "log_entries": (LOG_ENTRY_COLUMNS, LOG_ENTRY_TYPES, "time", "time"),
          "measures": (MEASURE_COLUMNS, MEASURE_TYPES, "time", "time")}


class LocalLake(Source):
    """A local lake folder (see the module documentation)."""

    def __init__(self, path):
        if isinstance(path, (str, bytes)) and not path:  # Path("") is the current folder
            raise LakeNotFoundError("the lake folder name is empty")
        self.path = Path(os.fsdecode(path) if isinstance(path, bytes) else path).expanduser()
        self._pipeline = Pipeline()
        self.description = f"lake {self.path}"
        if not self.path.is_dir():
            raise LakeNotFoundError(f"lake {self.path} is not a folder" if self.path.exists()
                                    else f"lake folder {self.path} does not exist")
        for name in ("processes.parquet", "streams.parquet"):
            if not (self.path / name).exists():
                raise LakeNotFoundError(f"{self.path} is not a micromegas lake: {name} is missing")

    # -- per-stream and per-process tables -----------------------------------------------------

    def table_files(self, kind: str, key: str) -> List[Path]:
        """The Parquet files of table `kind` ("thread_spans", "async_events", "log_entries",
        "measures") for `key` (a stream or process id), in reading order: the file
        `<key>.parquet`, else the `*.parquet` files under the folder `<key>.parquet/`, else
        under `<key>/`, else under `stream_id=<key>/` (thread spans) or `process_id=<key>/`
        (recursively, sorted by path). Empty when there is none (no rows)."""
        return [file for file, _ in self.table_parts(kind, key)]

    def table_parts(self, kind: str, key: str) -> List[Tuple[Path, Dict[str, Optional[str]]]]:
        """`table_files(kind, key)`, each with the hive-style partition values of the folders
        it is in below the table's folder (`level=2/part-0.parquet`: {"level": "2"}; Spark's
        and DuckDB's partitioned writes keep a partition column out of the files)."""
        if kind not in TABLES:
            raise ValueError(f"unknown lake table {kind!r} (one of {', '.join(TABLES)})")
        if not key or "/" in key or "\\" in key or key in (".", ".."):
            return []
        folder = self.path / kind
        # The third form is the table of every stream or process partitioned by its id column, as
        # DuckDB's `COPY ... TO 'LAKE/async_events' (PARTITION_BY process_id)` or Spark's
        # partitionBy("process_id") write it: `process_id=<id>/` (URL-escaped).
        hive = f"{_ID_COLUMNS[kind]}={quote(key, safe='')}"
        for candidate in (folder / f"{key}.parquet", folder / key, folder / hive):
            if candidate.is_file():
                return [(candidate, {})]
            if candidate.is_dir():
                return [(file, _partition_values(file, candidate)) for file in _folder_files(candidate)]
        return []

    def holds(self, path) -> bool:
        """Whether `path` (symlinks resolved) is `processes.parquet`, `streams.parquet` or
        anything under a table folder of this lake: what a run reads, for this process or
        another. The lake's root itself may hold other files (a trace written there)."""
        try:
            target = Path(os.path.realpath(path))
            root = Path(os.path.realpath(self.path))
        except (OSError, ValueError):
            return False
        if target.parent == root:
            return target.name in ("processes.parquet", "streams.parquet") or target.name in TABLES
        return any(folder in target.parents for folder in (root / kind for kind in TABLES))

    def has_no_data(self, kind: str, key: str) -> bool:
        """No file for the table, or files that hold no rows at all (a zero-row Parquet file,
        as a writer leaves for a stream without spans): either way the table has no rows.
        A file whose footer cannot be read is not "no data": reading it reports the error."""
        if kind not in TABLES:
            return False
        for file in self.table_files(kind, key):
            try:
                if pq.read_metadata(file).num_rows > 0:
                    return False
            except (pa.ArrowException, OSError):
                return False
        return True

    def read_table(self, kind: str, key: str, columns: List[str], required: Dict[str, str],
                   time_range: Optional[Tuple[str, str, int, int]] = None, start: bool = False
                   ) -> pa.RecordBatchReader:
        """The `columns` (those present) of table `kind` for `key`, batch by batch, across its
        files. `required` columns are checked in every file (SchemaError naming the file).
        With `time_range` = (low column, high column, begin, end), row groups whose
        statistics show min(low) > end or max(high) < begin are skipped (rows are not
        filtered: the reader's consumer applies the exact rule). With `start`, decoding
        begins before the first batch is asked for: as soon as the table opened that way
        before it is decoded (bounded read-ahead, one table at a time)."""
        keep = None
        if time_range is not None:
            low, high, begin_ns, end_ns = time_range
            # A group is also read when either column's statistics are unknown, or hold a value
            # that does not fit in int64 ns (`_row_group_stats`): the library reports that one.
            keep = lambda stats: (stats(low)[0] <= end_ns and stats(high)[1] >= begin_ns) or \
                stats(low)[1] == float("inf") or stats(high)[0] == float("-inf")  # noqa: E731
        return _parquet_reader(self.table_parts(kind, key), columns, required, keep,
                               self._pipeline if start else None)

    # -- processes and threads ---------------------------------------------------------------

    def _read_small(self, name: str, required: Dict[str, str], process_id: str, columns: List[str]) -> pa.Table:
        """The rows of `process_id` in a small table. A single file is read with the Parquet
        reader alone (pyarrow.dataset and pyarrow.compute cost startup time, issue 14); a
        folder of files goes through pyarrow.dataset."""
        path = self.path / name
        try:
            if path.is_file():
                parquet = _open(path)
                check_schema(_typed_nulls(parquet.schema_arrow, required), required, str(path))
                present = [c for c in columns if c in parquet.schema_arrow.names]
                _check_int96_file(path, present, parquet)
                table = _ids_as_text(parquet.read(columns=list(dict.fromkeys(present + ["process_id"]))))
                return _rows_of(table, process_id, path).select(present)
            # A folder (as Spark or DuckDB write a table): its *.parquet files, as for the
            # per-stream tables (markers such as _SUCCESS or .crc files are not data).
            import pyarrow.dataset as ds
            dataset = _folder_dataset(path)
            check_schema(_typed_nulls(dataset.schema, required), required, str(path))
            present = [c for c in columns if c in dataset.schema.names]
            for file in _folder_files(path):
                _check_int96_file(file, present)
            if is_uuid(dataset.schema.field("process_id").type):  # compared as text
                table = _ids_as_text(dataset.to_table(columns=list(dict.fromkeys(present + ["process_id"]))))
                return _rows_of(table, process_id, path).select(present)
            return _ids_as_text(dataset.to_table(columns=present, filter=ds.field("process_id") == process_id))
        except (pa.ArrowException, OSError) as e:  # ArrowTypeError too: files that cannot be one table
            raise DataError(f"cannot read {path}: {_first_line(e)}") from None

    def process_info(self, process_id: str) -> ProcessInfo:
        table = self._read_small("processes.parquet", {"process_id": "id", "exe": "string"}, process_id,
                                 ["process_id", "exe", "start_time", "end_time"])
        if table.num_rows == 0:
            # An id with spaces or a newline around it (a DataFrame cell, a pasted line) is shown
            # quoted: as is, its newline broke the one-line message in two.
            shown = process_id if process_id.isprintable() and process_id == process_id.strip() else repr(process_id)
            raise ProcessNotFoundError(f"process {shown} not found in {self.description}"
                                       f"{self._process_id_hint(process_id)}")
        exe = _pylist(table.column("exe").slice(0, 1), "exe", self.path / "processes.parquet")[0]
        return ProcessInfo(process_id=process_id, exe=exe or "",
                           start_ns=self._ns(table, "start_time"), end_ns=self._ns(table, "end_time"))

    def _process_id_hint(self, process_id: str) -> str:
        """`process_id_hint` over the lake's process ids (empty when they cannot be read: the
        lookup that just ran reported any problem of the table)."""
        try:
            ids = [p["process_id"] for p in self.processes()]
        except (DataError, SchemaError):
            return ""
        return process_id_hint(process_id, ids)

    def _ns(self, table: pa.Table, column: str) -> Optional[int]:
        """The first row's time in `column` (ns), None if the column is missing or null."""
        if column not in table.column_names or table.num_rows == 0:
            return None
        return time_ns(table.column(column).slice(0, 1), column, str(self.path / "processes.parquet"))[0].as_py()

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
        """Earliest and latest times in the process's spans, events, log entries and measures
        (all its telemetry, as the server's range is that of all the process's blocks), from
        row-group statistics where the files have them, else from their time columns."""
        low = high = None
        tables = [(kind, process_id, "time", "time") for kind in ("async_events", "log_entries", "measures")]
        tables += [("thread_spans", t.stream_id, "begin", "end") for t in self.threads(process_id, 0, 0)]
        for kind, key, low_column, high_column in tables:
            for file in self.table_files(kind, key):
                a, b = _file_bounds(file, low_column, high_column)
                if a is not None:
                    low = a if low is None else min(low, a)
                if b is not None:
                    high = b if high is None else max(high, b)
        return low, high

    def threads(self, process_id: str, begin_ns: int, end_ns: int) -> List[ThreadInfo]:
        table = self._read_small("streams.parquet", {"stream_id": "id", "process_id": "id"}, process_id,
                                 ["stream_id", "tags", "properties"])
        where = self.path / "streams.parquet"
        rows = _stream_rows(table, where)
        threads, seen = [], set()
        # Sorted by stream id (a stable sort: a stream listed twice keeps its first row, and
        # is one thread, as micromegas' GROUP BY makes it).
        for stream_id, tags, properties in sorted(rows, key=lambda r: r[0]):
            if "cpu" not in tags or stream_id in seen:
                continue
            seen.add(stream_id)
            threads.append(thread_display(stream_id, properties.get("thread-name"), properties.get("thread-id")))
        return threads

    # -- spans and events ----------------------------------------------------------------------

    def thread_spans(self, stream_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        return self._read("thread_spans", stream_id, begin_ns, end_ns)

    def async_events(self, process_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        return self._read("async_events", process_id, begin_ns, end_ns)

    def log_entries(self, process_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        return self._read("log_entries", process_id, begin_ns, end_ns)

    def measures(self, process_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        return self._read("measures", process_id, begin_ns, end_ns)

    def _read(self, kind: str, key: str, begin_ns: int, end_ns: int, start: bool = False) -> pa.RecordBatchReader:
        # A row group may hold rows of the range when min(low) <= end and max(high) >= begin
        # (thread spans: low = begin, high = end; the others: both time).
        columns, required, low, high = _READS[kind]
        if not start:  # the documented call: a subclass's read_table(kind, id, columns, required, time_range)
            return self.read_table(kind, key, columns, required, (low, high, begin_ns, end_ns))
        return self.read_table(kind, key, columns, required, (low, high, begin_ns, end_ns), start=True)

    def _own(self, kind: str) -> bool:
        """Whether table `kind` is read by this class's methods (not a subclass's override of
        its method or of `read_table`, which may not take `start`)."""
        return getattr(type(self), kind) is getattr(LocalLake, kind) and type(self).read_table is LocalLake.read_table

    def open_ahead(self, kind: str, key: str, begin_ns: int, end_ns: int):
        """Opens the table now and starts decoding its first batches (two at most) on a
        thread; errors opening it are raised when it is asked for. (A subclass's own
        `thread_spans`, `async_events`... is called when asked, as Source does.)"""
        if kind not in _READS:
            raise ValueError(f"unknown lake table {kind!r} (one of {', '.join(TABLES)})")
        if not self._own(kind):
            return super().open_ahead(kind, key, begin_ns, end_ns)
        return opened_now(lambda: self._read(kind, key, begin_ns, end_ns, start=True))

    def iter_thread_spans(self, threads: List[ThreadInfo], begin_ns: int, end_ns: int
                          ) -> Iterator[Tuple[ThreadInfo, pa.RecordBatchReader]]:
        """Each thread's spans; the next thread's file is opened and its first batches
        decoded while this one is written."""
        if not self._own("thread_spans"):
            yield from super().iter_thread_spans(threads, begin_ns, end_ns)
            return
        upcoming = self.open_ahead("thread_spans", threads[0].stream_id, begin_ns, end_ns) if threads else None
        for i, thread in enumerate(threads):
            current = upcoming()
            upcoming = self.open_ahead("thread_spans", threads[i + 1].stream_id, begin_ns, end_ns) \
                if i + 1 < len(threads) else None
            yield thread, current

    # -- listing ---------------------------------------------------------------------------------

    def processes(self, begin_ns: Optional[int] = None, end_ns: Optional[int] = None,
                  limit: Optional[int] = None) -> List[dict]:
        """The lake's processes in file order (those started within [begin, end] when given):
        id, exe, start and end (ns), thread count."""
        limit = check_limit(limit)
        path = self.path / "processes.parquet"
        streams_path = self.path / "streams.parquet"
        try:
            table = _read_whole(path)
            streams = _read_whole(streams_path, ["stream_id", "process_id", "tags"])
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"cannot read the lake {self.path}: {_first_line(e)}") from None
        check_schema(_typed_nulls(table.schema, {"exe": "string"}), {"process_id": "id", "exe": "string"}, str(path))
        check_schema(streams.schema, {"stream_id": "id", "process_id": "id"}, str(streams_path))
        table, streams = _ids_as_text(table), _ids_as_text(streams)
        counts: Dict[str, int] = {}
        listed = set()
        owners = _pylist(streams.column("process_id"), "process_id", streams_path)
        for (stream_id, tags, _), owner in zip(_stream_rows(streams, streams_path), owners):
            if "cpu" in tags and (owner, stream_id) not in listed:
                listed.add((owner, stream_id))
                counts[owner] = counts.get(owner, 0) + 1
        rows = []
        names = [c for c in ("process_id", "exe") if c in table.column_names]
        columns = [_pylist(table.column(c), c, path) for c in names]
        starts, ends = self._times(table, "start_time"), self._times(table, "end_time")
        for i, values in enumerate(zip(*columns)):
            row = dict(zip(names, values))
            if row["process_id"] is None:  # no process can be asked for by it
                continue
            start = starts[i] if starts is not None else self._ns(table.slice(i, 1), "start_time")
            if start is not None and ((begin_ns is not None and start < begin_ns)
                                      or (end_ns is not None and start > end_ns)):
                continue
            rows.append({**row, "threads": counts.get(row["process_id"], 0), "start_ns": start,
                         "end_ns": ends[i] if ends is not None else self._ns(table.slice(i, 1), "end_time")})
        return rows[:limit] if limit is not None else rows

    def _times(self, table: pa.Table, column: str) -> Optional[List[Optional[int]]]:
        """Every row's time in `column` (ns; None where missing or null), converted at once;
        None when some value cannot be converted: then each row's is read by itself (`_ns`),
        so that only a row that is listed fails."""
        if column not in table.column_names:
            return [None] * table.num_rows
        try:
            return time_ns(table.column(column), column, str(self.path / "processes.parquet")).to_pylist()
        except (DataError, SchemaError):
            return None


Stats = Callable[[str], Tuple[float, float]]


def _folder_files(folder: Path) -> List[Path]:
    """The `*.parquet` files under `folder`, recursively, in sorted path order, a run of
    digits compared as a number (pyarrow's dataset writer names parts `part-0` ... `part-10`
    unpadded: `part-10` after `part-9`). Other files (`_SUCCESS`, `.crc`, `_metadata`) are not
    data, nor is anything whose name below `folder` starts with `_` or `.` (Spark's
    `_temporary/` task attempts, hidden files), as Spark, Hive and pyarrow's datasets skip them."""
    files = []
    for path in folder.rglob("*.parquet"):
        parts = path.relative_to(folder).parts
        if not any(part.startswith(("_", ".")) for part in parts) and path.is_file():
            files.append((_path_order(parts), path))
    return [path for _, path in sorted(files)]


def _path_order(parts: Tuple[str, ...]) -> list:
    """Sort key of a relative path: per component, text runs compared as text and digit runs as
    numbers (then as text: `01` and `1` keep an order)."""
    key = []
    for part in parts:
        runs = re.split(r"([0-9]+)", part)  # text, digits, text, ...: every odd run is digits
        key.append([(int(run), run) if i % 2 else run for i, run in enumerate(runs)])
    return key


def _folder_dataset(path: Path):
    """A folder's `*.parquet` files as one dataset, hive-style partition folders
    (`process_id=.../`) giving, as text, the columns the files leave out. A column the files
    keep as well (polars' partitioned write) is read from the files: as a partition field it
    clashed with the files' own type (large_string vs string)."""
    import pyarrow.dataset as ds
    files = _folder_files(path)
    stored = set(pq.read_schema(files[0]).names) if files else set()
    keys = dict.fromkeys(key for file in files for key in _partition_values(file, path) if key not in stored)
    partitioning = ds.partitioning(pa.schema([(key, pa.string()) for key in keys]), flavor="hive") if keys else None
    return ds.dataset(files, format="parquet", partitioning=partitioning, partition_base_dir=str(path))


def _read_whole(path: Path, columns: Optional[List[str]] = None) -> pa.Table:
    """A small table (processes, streams): the file, or a folder's `*.parquet` files."""
    if path.is_file():
        schema = pq.read_schema(path)
        return pq.read_table(path, columns=[c for c in columns if c in schema.names] if columns else None)
    dataset = _folder_dataset(path)
    return dataset.to_table(columns=[c for c in columns if c in dataset.schema.names] if columns else None)


_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def _partition_values(file: Path, folder: Path) -> Dict[str, Optional[str]]:
    """The `key=value` folders between `folder` and `file` (URL-escaped as Spark, DuckDB and
    pyarrow write them; Hive's default partition is null); a deeper folder wins."""
    from urllib.parse import unquote
    values: Dict[str, Optional[str]] = {}
    for part in file.parent.relative_to(folder).parts:
        key, sep, value = part.partition("=")
        if sep and key:
            values[unquote(key)] = None if value == _HIVE_NULL else unquote(value)
    return values


# Kinds of the optional columns read when present (the required ones have theirs).
_OPTIONAL_KINDS = {"stream_id": "string", "depth": "integer", "target": "string"}


def _partition_column(name: str, value: Optional[str], kind: str, rows: int, file: Path) -> pa.Array:
    """A column of `rows` copies of partition value `value`, of the column's kind: strings
    dictionary-encoded, integers int64, times nanoseconds (integer or ISO 8601 text).
    SchemaError naming the file when the value is not of that kind."""
    import struct
    types = {"string": pa.dictionary(pa.int32(), pa.string()), "integer": pa.int64(), "float64": pa.float64(),
             "time": TIME_NS}
    if value is None:
        return pa.nulls(rows, types[kind])
    try:
        if kind == "string":
            zeros = pa.Array.from_buffers(pa.int32(), rows, [None, pa.py_buffer(bytes(4 * rows))])
            return pa.DictionaryArray.from_arrays(zeros, pa.array([value], pa.string()))
        if kind == "float64":
            raw = struct.pack("<d", float(value))
        else:
            number = int(value, 10) if kind == "integer" else _partition_time(value)
            raw = struct.pack("<q", number)
    except (ValueError, OverflowError, struct.error, InvalidTimeError):
        raise SchemaError(f"{file}: partition folder {name}={value} gives column '{name}' a value that is not "
                          f"{'a time' if kind == 'time' else 'an integer' if kind == 'integer' else 'a number'}") from None
    return pa.Array.from_buffers(types[kind], rows, [None, pa.py_buffer(raw * rows)])


def _partition_time(value: str) -> int:
    from .timeutil import to_ns
    return to_ns(value, "partition value")


def _ids_as_text(table: pa.Table) -> pa.Table:
    """`table` with its UUID-typed columns (DuckDB's UUID, pyarrow's `arrow.uuid`) as the
    uuid text the rest of the lake and micromegas use."""
    for i, field in enumerate(table.schema):
        if is_uuid(field.type):
            table = table.set_column(i, field.name, uuid_text(table.column(i)))
    return table


def _rows_of(table: pa.Table, process_id: str, where: Path) -> pa.Table:
    """The rows of `table` whose process_id is `process_id`: one slice per run of
    consecutive such rows (a table of 100,000 streams of one process is one slice, not
    100,000 one-row tables concatenated)."""
    ids = _pylist(table.column("process_id"), "process_id", where)
    runs, start = [], None
    for i, value in enumerate(ids):
        if value == process_id:
            if start is None:
                start = i
        elif start is not None:
            runs.append(table.slice(start, i - start))
            start = None
    if start is not None:
        runs.append(table.slice(start, len(ids) - start))
    return pa.concat_tables(runs) if runs else table.slice(0, 0)


def _pylist(values, column: str, where) -> list:
    """A column's values as Python objects; text that is not UTF-8 is a DataError naming
    the file and the column."""
    try:
        return values.to_pylist()
    except UnicodeDecodeError:
        raise DataError(f"{where}: column '{column}' holds text that is not valid UTF-8") from None


def _is_list(t: pa.DataType) -> bool:
    is_view = getattr(pa.types, "is_list_view", lambda _: False)
    is_large_view = getattr(pa.types, "is_large_list_view", lambda _: False)
    return (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) or is_view(t)
            or is_large_view(t))


def _check_stream_columns(schema: pa.Schema, where: Path) -> None:
    """`tags` is a list of strings; `properties` a list of {key, value} strings (or a map of
    strings to strings, as DuckDB or Spark may store it). SchemaError naming the column
    otherwise, or when `tags` is missing (no stream would be a thread: an empty trace)."""
    if "tags" not in schema.names:
        raise SchemaError(f"{where}: missing column 'tags' (list<string>; thread streams carry 'cpu')")
    # A column of None only (pandas' and polars' null type) is no tags or no properties.
    if "tags" in schema.names and not pa.types.is_null(schema.field("tags").type):
        t = schema.field("tags").type
        if not (_is_list(t) and is_string(t.value_type)):
            raise SchemaError(f"{where}: column 'tags' has type {t}, expected list<string>")
    if "properties" in schema.names and not pa.types.is_null(schema.field("properties").type):
        t = schema.field("properties").type
        if pa.types.is_map(t):
            ok = is_string(t.key_type) and is_string(t.item_type)
        elif _is_list(t) and pa.types.is_struct(t.value_type):
            item = t.value_type
            names = [item.field(i).name for i in range(item.num_fields)]
            ok = all(n in names and is_string(item.field(n).type) for n in ("key", "value"))
        else:
            ok = False
        if not ok:
            raise SchemaError(f"{where}: column 'properties' has type {t}, "
                              "expected list<struct<key: string, value: string>>")


def _stream_rows(table: pa.Table, where: Path) -> List[Tuple[str, List[str], Dict[str, str]]]:
    """(stream_id, tags, properties) of each row of a streams table: a missing or null
    `tags` is no tag, a missing property is absent; properties are keyed in ASCII lower case,
    the first of a key kept (as micromegas' `property_get` reads them). A null stream_id is
    a DataError."""
    _check_stream_columns(table.schema, where)
    ids = _pylist(table.column("stream_id"), "stream_id", where)
    for i, stream_id in enumerate(ids):
        if stream_id is None:
            raise DataError(f"{where}: null in column 'stream_id' at row {i}")
    n = len(ids)
    tags = _pylist(table.column("tags"), "tags", where) if "tags" in table.column_names else [None] * n
    properties = (_pylist(table.column("properties"), "properties", where) if "properties" in table.column_names
                  else [None] * n)
    rows = []
    for stream_id, row_tags, row_properties in zip(ids, tags, properties):
        pairs = ((p[0], p[1]) if isinstance(p, tuple) else (p.get("key"), p.get("value"))
                 for p in (row_properties or []) if p)
        found: Dict[str, str] = {}
        for key, value in pairs:
            # micromegas' property_get: the first entry whose key matches, ASCII case ignored.
            if key and key.translate(_ASCII_LOWER) not in found:
                found[key.translate(_ASCII_LOWER)] = value
        rows.append((stream_id, [t for t in (row_tags or []) if t is not None], found))
    return rows


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _open(file: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(file, memory_map=False)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"cannot read {file}: not a readable Parquet file ({_first_line(e)})") from None


def _unified(schemas: List[pa.Schema], columns: List[str], required: Dict[str, str]) -> pa.Schema:
    """One schema for the `columns` of several files: the first file's types, except where the
    files disagree: then nanosecond UTC timestamps for a time column, large strings for a string
    column, int64 for an integer column. Optional columns are kept only when every file has them."""
    fields = []
    for name in columns:
        types = [s.field(name).type for s in schemas if name in s.names]
        if len(types) < len(schemas):
            continue
        if any(is_uuid(t) for t in types):  # as text (each distinct id formatted once)
            fields.append(pa.field(name, pa.dictionary(pa.int32(), pa.string())))
            continue
        if all(t == types[0] for t in types):
            fields.append(pa.field(name, types[0]))
            continue
        kind = required.get(name)
        if kind == "time" or all(pa.types.is_timestamp(t) or pa.types.is_int64(t) for t in types):
            fields.append(pa.field(name, TIME_NS))
        elif kind == "string" or any(pa.types.is_dictionary(t) or pa.types.is_string(t) for t in types):
            fields.append(pa.field(name, pa.large_string()))
        else:
            fields.append(pa.field(name, pa.int64()))
    return pa.schema(fields)


# What an all-null column of Arrow's null type (pandas' and polars' type for a column of None
# only) is read as, by kind: the same rows as a typed column of nulls.
_NULL_AS = {"string": pa.string(), "integer": pa.int64(), "float64": pa.float64()}


def _typed_nulls(schema: pa.Schema, kinds: Dict[str, str]) -> pa.Schema:
    """`schema` with its null-typed string, integer and float64 columns typed (`_NULL_AS`),
    and a float64 column stored as another number (float32 as polars' Float32 or DuckDB's
    REAL, an integer as a count metric, a decimal) as float64: a batch is then cast to it
    (`_conform`). A null-typed time column stays a mistyped one."""
    for i, field in enumerate(schema):
        kind = kinds.get(field.name)
        if pa.types.is_null(field.type) and kind in _NULL_AS:
            schema = schema.set(i, pa.field(field.name, _NULL_AS[kind]))
        elif kind == "float64" and (pa.types.is_floating(field.type) or pa.types.is_integer(field.type)
                                    or pa.types.is_decimal(field.type)):
            schema = schema.set(i, pa.field(field.name, pa.float64()))
    return schema


def _conform(batch: pa.RecordBatch, schema: pa.Schema, file: Path) -> pa.RecordBatch:
    """`batch` with `schema`'s types: time columns converted exactly to ns (an out-of-range
    value is a DataError naming the column), other columns cast."""
    arrays = []
    for field in schema:
        array = batch.column(field.name)
        if array.type == field.type:
            arrays.append(array)
        elif is_uuid(array.type):
            arrays.append(uuid_text(array, dictionary=True).cast(field.type))
        elif field.type == TIME_NS:
            arrays.append(time_ns(array, field.name, str(file)).cast(TIME_NS))
        else:
            try:
                arrays.append(array.cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:  # an integer past 2**53 as float64
                raise DataError(f"{file}: column '{field.name}' cannot be read as {field.type}: {_first_line(e)}") \
                    from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _parquet_reader(files: List[Tuple[Path, Dict[str, Optional[str]]]], columns: List[str],
                    required: Dict[str, str], keep: Optional[Callable[[Stats], bool]],
                    pipeline: Optional[Pipeline] = None) -> pa.RecordBatchReader:
    """The `columns` of Parquet `files` (in order, each with its partition values), batch by
    batch, skipping row groups for which `keep(stats)` is false; `stats(column)` gives a row
    group's (min, max) in ns. A column a file leaves out is taken from its partition value,
    if it has one. A file that cannot be read is a DataError naming it."""
    opened = []
    for file, partitions in files:
        parquet = _open(file)
        stored = parquet.schema_arrow
        kinds = {**_OPTIONAL_KINDS, **required}
        # (name, value, kind) of the wanted columns the file leaves to its folders.
        given = [(name, partitions[name], kinds.get(name, "string")) for name in columns
                 if name in partitions and name not in stored.names]
        full = stored
        for name, value, kind in given:
            full = full.append(pa.field(name, _partition_column(name, value, kind, 0, file).type))
        full = _typed_nulls(full, kinds)
        check_schema(full, required, str(file))
        # Closed until read (its footer kept): a table of thousands of part files must not
        # hold a file descriptor per part (EMFILE past `ulimit -n`, often 1,024).
        opened.append((file, parquet.metadata, full, given))
        parquet.close()
    if not opened:
        return empty_reader(required)
    schema = _unified([full for _, _, full, _ in opened], columns, required)

    def batches() -> Iterator[pa.RecordBatch]:
        for file, metadata, full, given in opened:
            try:
                parquet = pq.ParquetFile(file, memory_map=False, metadata=metadata)
            except (pa.ArrowException, OSError) as e:
                raise DataError(f"cannot read {file}: not a readable Parquet file ({_first_line(e)})") from None
            try:
                groups = list(range(parquet.num_row_groups))
                if keep is not None:
                    groups = [i for i in groups if keep(_row_group_stats(parquet, i))]
                if not groups:
                    continue
                read = [name for name in schema.names if name not in {g[0] for g in given}]
                int96 = _Int96Check(file, parquet, read)
                # One reader per row group: a single reader over all of a file's row groups
                # keeps memory that grows with them until it is done (pyarrow 26: 37 MB left
                # allocated after 31 row groups of log entries, 3 MB read group by group).
                for group in groups:
                    int96.check(group)
                    for batch in parquet.iter_batches(batch_size=65_536, row_groups=[group], columns=read,
                                                      use_threads=True):
                        if given:
                            batch = _with_partitions(batch, given, schema, file)
                        yield batch if batch.schema == schema else _conform(batch, schema, file)
            except (pa.ArrowException, OSError) as e:
                raise DataError(f"cannot read {file}: {_first_line(e)}") from None
            finally:
                parquet.close()
    ahead = read_ahead(batches())
    if pipeline is not None:
        pipeline.add(ahead)
    return pa.RecordBatchReader.from_batches(schema, ahead)


def _with_partitions(batch: pa.RecordBatch, given, schema: pa.Schema, file: Path) -> pa.RecordBatch:
    """`batch` with the partition columns `given` added, in `schema`'s column order."""
    added = {name: _partition_column(name, value, kind, batch.num_rows, file) for name, value, kind in given}
    arrays = [added[name] if name in added else batch.column(name) for name in schema.names]
    return pa.RecordBatch.from_arrays(arrays, names=schema.names)


_PARQUET_UNITS = {"seconds": 1_000_000_000, "milliseconds": 1_000_000, "microseconds": 1_000, "nanoseconds": 1}


def _stats_factor(parquet: pq.ParquetFile, j: int) -> int:
    """Nanoseconds per raw statistics value of column `j`: the unit of its Parquet timestamp
    type (what the statistics are in, whatever Arrow type a reader restores), else 1."""
    column = parquet.metadata.schema.column(j)
    try:
        logical = json.loads(column.logical_type.to_json())
    except (ValueError, AttributeError):
        logical = {}
    if logical.get("Type") == "Timestamp":
        return _PARQUET_UNITS.get(logical.get("timeUnit"), 1)
    return {"TIMESTAMP_MILLIS": 1_000_000, "TIMESTAMP_MICROS": 1_000}.get(column.converted_type, 1)


def _row_group_stats(parquet: pq.ParquetFile, index: int) -> Stats:
    """(min, max) of a column's values in row group `index`, in ns for time columns (raw
    integers otherwise); (-inf, inf) if unknown."""
    group = parquet.metadata.row_group(index)
    names = {group.column(j).path_in_schema: j for j in range(group.num_columns)}

    def stats(column: str) -> Tuple[float, float]:
        j = names.get(column)
        s = group.column(j).statistics if j is not None else None
        if s is None or not s.has_min_max or not isinstance(s.min_raw, int):
            return float("-inf"), float("inf")
        factor = _stats_factor(parquet, j)
        low, high = s.min_raw * factor, s.max_raw * factor  # Python ints: exact, no overflow
        if low < NS_MIN or high > NS_MAX:
            # A value that does not fit in int64 ns is an error naming its column: the group is
            # read (not skipped as outside the range) so that the library reports it.
            return float("-inf"), float("inf")
        return low, high
    return stats


class _Int96Check:
    """Legacy INT96 timestamps (Spark, Impala, Hive) hold nanoseconds over a range wider than
    int64 nanoseconds; pyarrow reads them as int64 ns and silently wraps a value outside it
    (9999-12-31 reads as a date of 1816). `check(group)` reads the row group's INT96 columns
    again in microseconds (which never wrap) and raises a DataError naming the column when
    the two disagree, or when the value does not fit in int64 ns. Files without INT96
    columns cost nothing."""

    def __init__(self, file: Path, parquet: pq.ParquetFile, columns: List[str]):
        schema = parquet.metadata.schema
        self.file = file
        self.columns = [schema.column(j).path for j in range(len(schema))
                        if schema.column(j).physical_type == "INT96" and schema.column(j).path in columns]
        self.parquet = parquet
        self.micros: Optional[pq.ParquetFile] = None

    def check(self, group: int) -> None:
        if not self.columns:
            return
        import pyarrow.compute as pc  # only for INT96 files

        if self.micros is None:
            self.micros = pq.ParquetFile(self.file, memory_map=False, coerce_int96_timestamp_unit="us")
        read_ns = self.parquet.read_row_group(group, columns=self.columns)
        read_us = self.micros.read_row_group(group, columns=self.columns)
        for column in self.columns:
            ns = read_ns.column(column).cast(pa.int64())
            try:
                us_ns = pc.multiply_checked(read_us.column(column).cast(pa.int64()), 1000)
                below = pc.subtract_checked(ns, us_ns)  # 0 ..< 1000 when ns did not wrap
            except pa.ArrowInvalid:
                below = None
            if below is None or (below.null_count < len(below) and
                                 (pc.min(below).as_py() < 0 or pc.max(below).as_py() >= 1000)):
                raise DataError(f"{self.file}: column '{column}' has a value outside the range of int64 "
                                "nanoseconds (years 1678 to 2262)")


def _check_int96_file(file: Path, columns: List[str], parquet: Optional[pq.ParquetFile] = None) -> None:
    """_Int96Check over every row group of a small table's file."""
    parquet = parquet or _open(file)
    check = _Int96Check(file, parquet, columns)
    if check.columns:
        for group in range(parquet.num_row_groups):
            check.check(group)


def _file_bounds(file: Path, low_column: str, high_column: str) -> Tuple[Optional[int], Optional[int]]:
    """min(low_column) and max(high_column) of a file, in ns (None when it has no rows): row
    group statistics where present, else the row group's columns."""
    parquet = _open(file)
    names = parquet.schema_arrow.names
    if low_column not in names or high_column not in names:
        return None, None
    low = high = None
    int96 = _Int96Check(file, parquet, [low_column, high_column])
    for i in range(parquet.num_row_groups):
        if parquet.metadata.row_group(i).num_rows == 0:
            continue
        a, b = _row_group_stats(parquet, i)(low_column)[0], _row_group_stats(parquet, i)(high_column)[1]
        if a == float("-inf") or b == float("inf"):
            try:
                int96.check(i)
                table = parquet.read_row_group(i, columns=[low_column, high_column])
            except (pa.ArrowException, OSError) as e:
                raise DataError(f"cannot read {file}: {_first_line(e)}") from None
            import pyarrow.compute as pc  # only for files without usable statistics

            a = pc.min(time_ns(table.column(low_column), low_column, str(file))).as_py()
            b = pc.max(time_ns(table.column(high_column), high_column, str(file))).as_py()
            if a is None or b is None:
                continue
        for value, column in ((a, low_column), (b, high_column)):
            if not NS_MIN <= value <= NS_MAX:
                raise DataError(f"{file}: column '{column}' has a value outside the range of int64 nanoseconds "
                                "(years 1678 to 2262)")
        low = a if low is None else min(low, a)
        high = b if high is None else max(high, b)
    return low, high
