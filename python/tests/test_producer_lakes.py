"""Lakes as other producers write them (pyarrow's dataset writer, Spark, DuckDB, polars, pandas),
built here with pyarrow alone: the same telemetry must give the same trace bytes as the sample
lake it was rewritten from, or one error line naming the file and the column."""
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from micromegas_perfetto.generation import write_process_trace
from micromegas_perfetto.lake import LocalLake
from micromegas_perfetto.sample_lake import write_sample_lake


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A small sample lake and the bytes of its main process's trace (logs and metrics too)."""
    folder = tmp_path_factory.mktemp("producers") / "ref"
    processes = write_sample_lake(folder, seed=5, threads=2, spans_per_thread=400, async_spans=300)
    pid = processes[0]["process_id"]
    out = folder.parent / "ref.perfetto"
    write_process_trace(folder, pid, None, None, out, logs=True, metrics=True)
    return folder, pid, out.read_bytes()


def rewritten(reference, tmp_path: Path, rewrite) -> Path:
    """A copy of the reference lake where `rewrite(kind, file)` replaced each per-stream or
    per-process table file (it removes `file` and writes what it wants instead)."""
    lake = tmp_path / "lake"
    shutil.copytree(reference[0], lake)
    for kind in ("thread_spans", "async_events", "log_entries", "measures"):
        for file in sorted((lake / kind).glob("*.parquet")):
            rewrite(kind, file)
    return lake


def trace(lake: Path, pid: str, tmp_path: Path) -> bytes:
    out = tmp_path / "t.perfetto"
    write_process_trace(lake, pid, None, None, out, logs=True, metrics=True)
    return out.read_bytes()


def test_unpadded_part_numbers_are_read_in_number_order(reference, tmp_path):
    """pyarrow's dataset writer names a table's files part-0 ... part-12, unpadded (so does
    DuckDB: data_0 ... data_12): part-10 comes after part-9, not after part-1 (read in text
    order, thread spans were out of begin order: a different, out-of-order trace)."""
    def rewrite(kind, file):
        table = pq.read_table(file)
        file.unlink()
        ds.write_dataset(table, file.with_suffix(""), format="parquet", basename_template="part-{i}.parquet",
                         max_rows_per_file=30, max_rows_per_group=30)
    lake = rewritten(reference, tmp_path, rewrite)
    folder = next(p for p in (lake / "thread_spans").iterdir() if len(list(p.iterdir())) > 10)
    names = [f.name for f in LocalLake(lake).table_files("thread_spans", folder.name)]
    assert names == [f"part-{i}.parquet" for i in range(len(names))]
    assert trace(lake, reference[1], tmp_path) == reference[2]


def test_spark_temporary_attempts_and_hidden_files_are_not_data(reference, tmp_path):
    """A Spark output folder holds committed part files and, while a job runs or after it
    failed, task attempts under `_temporary/` (and `.crc` side files): only the committed
    parts are the table (the attempts were read too: every span twice)."""
    def rewrite(kind, file):
        table = pq.read_table(file)
        file.unlink()
        folder = file.with_suffix("")
        folder.mkdir()
        half = table.num_rows // 2
        job = "5f0c6ab1-93a8-4b1e-9b0e-2f3b1c6f7d10"
        for i, part in enumerate((table.slice(0, half), table.slice(half))):
            name = f"part-{i:05d}-{job}.c000.snappy.parquet"
            pq.write_table(part, folder / name, use_deprecated_int96_timestamps=True)
            (folder / f".{name}.crc").write_bytes(b"crc")
        (folder / "_SUCCESS").write_bytes(b"")
        attempt = folder / "_temporary" / "0" / "_temporary" / "attempt_202611302200_0001_m_000000_0"
        attempt.mkdir(parents=True)
        pq.write_table(table, attempt / f"part-00000-{job}.c000.snappy.parquet")
        pq.write_table(table, folder / ".part-00002.parquet")
    lake = rewritten(reference, tmp_path, rewrite)
    stream = next((lake / "thread_spans").iterdir()).name
    assert [f.name[:10] for f in LocalLake(lake).table_files("thread_spans", stream)] == ["part-00000", "part-00001"]
    assert trace(lake, reference[1], tmp_path) == reference[2]


def large_strings(table: pa.Table) -> pa.Table:
    """`table` as polars hands it to Parquet: every string a large_string."""
    def wide(t):
        if pa.types.is_string(t):
            return pa.large_string()
        if pa.types.is_list(t):
            item = t.value_type
            return pa.large_list(pa.struct([(f.name, wide(f.type)) for f in item]) if pa.types.is_struct(item)
                                 else wide(item))
        return t
    return table.cast(pa.schema([pa.field(f.name, wide(f.type)) for f in table.schema]))


def test_small_tables_partitioned_by_polars_keep_the_partition_column(reference, tmp_path):
    """polars' `write_parquet(..., partition_by="process_id")` writes `process_id=<id>/00000000.parquet`
    folders whose files keep the column, as large_string: the folder's partition field (text)
    clashed with it ('ArrowTypeError: Unable to merge', exit 1, for every command)."""
    lake = tmp_path / "lake"
    shutil.copytree(reference[0], lake)
    for name in ("processes.parquet", "streams.parquet"):
        table = large_strings(pq.read_table(lake / name))
        (lake / name).unlink()
        for pid in dict.fromkeys(table.column("process_id").to_pylist()):
            part = lake / name / f"process_id={pid}"
            part.mkdir(parents=True)
            pq.write_table(table.filter(pa.compute.equal(table.column("process_id"), pid)), part / "00000000.parquet")
    assert trace(lake, reference[1], tmp_path) == reference[2]
    listed = {p["process_id"]: (p["exe"], p["threads"]) for p in LocalLake(lake).processes()}
    assert listed == {p["process_id"]: (p["exe"], p["threads"]) for p in LocalLake(reference[0]).processes()}


def with_nulls(file: Path, column: str, null_type: bool, parts: int = 1) -> None:
    """Rewrites a table file with `column` all null: typed as it was, or of Arrow's null type
    (pandas' and polars' type for a column of None only), in `parts` part files of a folder."""
    table = pq.read_table(file)
    i = table.schema.get_field_index(column)
    table = table.set_column(i, column, pa.nulls(table.num_rows, pa.null() if null_type else table.schema[i].type))
    file.unlink()
    if parts == 1:
        pq.write_table(table, file)
        return
    file.mkdir()
    step = -(-table.num_rows // parts)
    for p in range(parts):
        part = table.slice(p * step, step)
        if p % 2:  # every other part typed: part files of one table may differ in type
            part = part.set_column(i, column, pa.nulls(part.num_rows, pa.string()))
        pq.write_table(part, file / f"part-{p}.parquet")


@pytest.mark.parametrize("kind, column", [("measures", "unit"), ("log_entries", "target"), ("log_entries", "msg"),
                                          ("thread_spans", "target"), ("async_events", "filename")])
def test_all_null_columns_of_the_null_type_read_as_typed_nulls(reference, tmp_path, kind, column):
    """A column of None only is of Arrow's null type when pandas (`to_parquet`) or polars
    writes it: it reads as the same column of nulls typed string (it was a schema error,
    'has type null', exit 2, where the typed column gave a trace)."""
    traces = []
    for name, null_type, parts in (("typed", False, 1), ("null", True, 1), ("mixed", True, 3)):
        def rewrite(k, file):
            if k == kind:
                with_nulls(file, column, null_type, parts)
        (tmp_path / name).mkdir()
        lake = rewritten(reference, tmp_path / name, rewrite)
        traces.append(trace(lake, reference[1], tmp_path / name))
    assert traces[0] != reference[2]
    assert traces[1] == traces[0] and traces[2] == traces[0]


@pytest.mark.parametrize("value_type", [pa.float32(), pa.int64(), pa.uint32(), pa.decimal128(18, 3)], ids=str)
def test_measure_values_of_another_number_type_read_as_float64(reference, tmp_path, value_type):
    """A measure's value stored as float32 (polars' Float32, DuckDB's REAL), an integer (a
    count metric from DuckDB or polars) or a decimal (DuckDB's DECIMAL) reads as float64, the
    same trace as the values stored as float64 (it was 'has type float, expected float64',
    exit 2). An integer that float64 cannot hold exactly is an error naming the column."""
    import decimal

    def python_value(v):
        return decimal.Decimal(repr(v)).quantize(decimal.Decimal("0.001")) if pa.types.is_decimal(value_type) else v

    traces = []
    for name, stored in (("float64", pa.float64()), ("other", value_type)):
        def rewrite(kind, file):
            if kind == "measures":
                table = pq.read_table(file)
                i = table.schema.get_field_index("value")
                values = [python_value(abs(round(v))) if not pa.types.is_floating(value_type) else v
                          for v in table.column(i).to_pylist()]
                column = pa.array(values, value_type)  # the values the other type holds
                pq.write_table(table.set_column(i, "value", column.cast(stored)), file)
        (tmp_path / name).mkdir()
        lake = rewritten(reference, tmp_path / name, rewrite)
        traces.append(trace(lake, reference[1], tmp_path / name))
    assert traces[1] == traces[0]
    if pa.types.is_integer(value_type) and value_type.bit_width == 64:
        file = next((lake / "measures").glob("*.parquet"))
        table = pq.read_table(file)
        i = table.schema.get_field_index("value")
        pq.write_table(table.set_column(i, "value", pa.array([2**53 + 1] * table.num_rows, value_type)), file)
        from micromegas_perfetto.errors import DataError
        pid = file.stem
        with pytest.raises(DataError, match=r"measures/.*\.parquet: column 'value' cannot be read as double"):
            write_process_trace(lake, pid, None, None, tmp_path / "bad.perfetto", metrics=True)


def test_tables_partitioned_by_their_id_column(reference, tmp_path):
    """The whole table partitioned by its id, as DuckDB's `COPY async_events TO 'LAKE/async_events'
    (PARTITION_BY process_id)` or Spark's partitionBy write it: `async_events/process_id=<id>/`,
    `thread_spans/stream_id=<id>/`, the id column left out of the files. The same trace, no
    note (it was 'has no async events' and a trace without them)."""
    from conftest import run_cli

    def rewrite(kind, file):
        table = pq.read_table(file)
        column = "stream_id" if kind == "thread_spans" else "process_id"
        folder = file.parent / f"{column}={file.stem}"
        folder.mkdir()
        if column in table.column_names:
            table = table.drop_columns([column])
        pq.write_table(table.slice(0, 50), folder / "data_0.parquet")
        pq.write_table(table.slice(50), folder / "data_1.parquet")
        file.unlink()
    lake = rewritten(reference, tmp_path, rewrite)
    assert not list((lake / "async_events").glob("*.parquet"))
    result = run_cli("write_perfetto", reference[1], "--lake", lake, "--logs", "--metrics", "--quiet",
                     "--filename", tmp_path / "cli.perfetto")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert (tmp_path / "cli.perfetto").read_bytes() == reference[2]


def test_small_table_columns_of_none_only(reference, tmp_path):
    """pandas and polars type a column of None only as Arrow's null type: a processes table
    without end times (`df["end_time"] = None`) reads as end_time null (the range ends at the
    last event), one without exe names as exe null, and a streams table whose streams have no
    properties as threads without names (all were 'has type null', exit 2, for every command)."""
    lake, typed = tmp_path / "lake", tmp_path / "typed"
    for folder, null_type in ((lake, pa.null()), (typed, None)):
        shutil.copytree(reference[0], folder)
        for name, column in (("processes.parquet", "end_time"), ("processes.parquet", "exe"),
                             ("streams.parquet", "properties")):
            table = pq.read_table(folder / name)
            i = table.schema.get_field_index(column)
            pq.write_table(table.set_column(i, column, pa.nulls(table.num_rows, null_type or table.schema[i].type)),
                           folder / name)
    assert trace(lake, reference[1], tmp_path) == trace(typed, reference[1], tmp_path / "typed")
    assert [p["end_ns"] for p in LocalLake(lake).processes()] == [None, None, None]
    assert LocalLake(lake).processes() == LocalLake(typed).processes()
    threads = LocalLake(lake).threads(reference[1], 0, 0)
    assert threads and all(t.name == t.stream_id for t in threads)
