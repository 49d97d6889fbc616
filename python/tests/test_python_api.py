"""The Python API as a notebook or script uses it: every exported function and class with
the argument types users pass (paths, times from pandas/numpy/pyarrow, file objects, the
official client's objects, Source subclasses), the wrong ones (each a typed exception or a
plain TypeError/ValueError naming what is wrong, never an internal error, a crash or a
leftover file), and the objects' lifecycle."""
import gc
import io
import os
import re

import pytest

from micromegas_perfetto import PerfettoWriter, errors, validate
from trace_check import decode

PID = "34d7c06d-3163-4111-863e-c5fc09d22d51"


def _write_some(writer: PerfettoWriter) -> None:
    writer.emit_process_descriptor("my-app")
    writer.emit_thread_descriptor("s1", 4242, "main-4242")
    writer.set_current_thread("s1")
    writer.emit_span(1000, 9000, "frame", "game", "src/game.rs", 10)


def _memory_trace() -> bytes:
    with PerfettoWriter(PID) as w:
        _write_some(w)
        return w.getvalue()


def test_writer_keeps_the_file_object_it_writes_to(tmp_path):
    """`PerfettoWriter(pid, open(path, "wb"))`: the file object was not kept, so it was
    collected and closed at once; the next file opened got its descriptor number and received
    the trace (a.bin stayed empty, b.bin got the bytes)."""
    writer = PerfettoWriter(PID, open(tmp_path / "a.bin", "wb"))
    gc.collect()
    with open(tmp_path / "b.bin", "wb") as other:
        _write_some(writer)
        writer.close()
        other.write(b"mine")
    assert (tmp_path / "a.bin").read_bytes() == _memory_trace()
    assert (tmp_path / "b.bin").read_bytes() == b"mine"
    assert decode((tmp_path / "a.bin").read_bytes()).process is not None


@pytest.mark.parametrize("output", [io.BytesIO(), io.StringIO()])
def test_writer_output_without_a_descriptor_is_a_clear_error(output):
    """io.BytesIO has fileno() but raises io.UnsupportedOperation('fileno'), which came out as is."""
    with pytest.raises(errors.InvalidArgumentError, match="has no file descriptor.*None to keep the trace in memory"):
        PerfettoWriter(PID, output)


def test_writer_output_closed_file_is_a_clear_error(tmp_path):
    f = open(tmp_path / "c.bin", "wb")
    f.close()
    with pytest.raises(errors.InvalidArgumentError, match="BufferedWriter is closed"):
        PerfettoWriter(PID, f)


@pytest.mark.parametrize("token, shown", [("s3cret\n", "a newline at position 6"), ("caf\u00e9", "U+00E9 at position 3"),
                                          ("a\tb", "a tab at position 1")])
def test_flightsql_token_that_cannot_go_in_a_header_is_refused_before_any_call(small_lake, tmp_path, token, shown,
                                                                               monkeypatch):
    """A token read from a file keeps its newline (`open("token").read()`); with pyarrow 23
    (what micromegas 0.32 installs) gRPC aborted the whole process on it ('Check failed' in
    call_op_set.h), with pyarrow 26 it was a server failure after a gRPC log line. Refused
    here as a RequestError (exit 2 on the command line), the token not shown, nothing sent."""
    from flight_fixture import LakeFlightServer
    from micromegas_perfetto import FlightSQLClient, write_process_trace
    server = LakeFlightServer(small_lake[0], token="s3cret")
    try:
        with pytest.raises(errors.RequestError, match=re.escape(f"token holds {shown}: a bearer token is printable ASCII")) as e:
            write_process_trace(FlightSQLClient(server.uri, token=token), small_lake[1][0]["process_id"], None, None,
                                tmp_path / "t.perfetto")
        assert token not in str(e.value)
        monkeypatch.setenv("MICROMEGAS_TOKEN", token)
        with pytest.raises(errors.RequestError, match=r"\$MICROMEGAS_TOKEN holds"):
            FlightSQLClient(server.uri)
        assert server.calls == [] and not (tmp_path / "t.perfetto").exists()
    finally:
        server.shutdown()


def test_flightsql_client_arguments_of_the_wrong_type():
    from micromegas_perfetto import FlightSQLClient
    with pytest.raises(TypeError, match="URI must be a str"):
        FlightSQLClient(50051)
    with pytest.raises(TypeError, match="token must be a str, not int"):
        FlightSQLClient("grpc://127.0.0.1:1", token=5)


def test_writer_takes_numpy_integers_and_refuses_bools_and_floats():
    """Values taken from a DataFrame are numpy integers: `emit_span(df.begin[i], ...)` was
    'begin must be an integer in [0, 18446744073709551615], got np.int64(1000)'."""
    np = pytest.importorskip("numpy")
    with PerfettoWriter(PID) as w:
        w.emit_process_descriptor("my-app")
        w.emit_thread_descriptor("s1", np.int32(4242), "main-4242")
        w.set_current_thread("s1")
        w.emit_span(np.int64(1000), np.uint64(9000), "frame", "game", "src/game.rs", np.int16(10))
        assert w.getvalue() == _memory_trace()
        for bad in (True, np.True_, 1000.0, np.float64(1000), "1000", None):
            with pytest.raises(errors.ArgumentError, match="begin must be an integer in"):
                w.emit_span(bad, 9000, "frame", "game", "src/game.rs", 10)
        with pytest.raises(errors.ArgumentError, match=r"begin must be an integer in \[0, 18446744073709551615\]"):
            w.emit_span(np.int64(-1), 9000, "frame", "game", "src/game.rs", 10)


def test_chunk_size_takes_numpy_integers(small_lake):
    np = pytest.importorskip("numpy")
    from micromegas_perfetto import generate_trace_chunks
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    chunks = list(generate_trace_chunks(lake, pid, chunk_size=np.int64(1 << 16)))
    assert b"".join(d for _, d in chunks) == b"".join(d for _, d in generate_trace_chunks(lake, pid, chunk_size=1 << 16))
    assert len(chunks) > 1
    for bad in (-1, True, 1.5, 1 << 63):  # 0 is the default (test_newuser_review)
        with pytest.raises(errors.ArgumentError, match=r"chunk_size must be an integer in \[0, "):
            next(generate_trace_chunks(lake, pid, chunk_size=bad))


# -- Source subclasses -----------------------------------------------------------------------

import pyarrow as pa  # noqa: E402

from micromegas_perfetto import ProcessInfo, Progress, Source, ThreadInfo, write_process_trace  # noqa: E402

SPAN_SCHEMA = pa.schema([("begin", pa.int64()), ("end", pa.int64()), ("name", pa.string()), ("target", pa.string()),
                         ("filename", pa.string()), ("line", pa.int32())])
EVENT_SCHEMA = pa.schema([("time", pa.int64()), ("event_type", pa.string()), ("span_id", pa.int64()),
                          ("parent_span_id", pa.int64()), ("name", pa.string()), ("filename", pa.string()),
                          ("target", pa.string()), ("line", pa.int32())])
SPANS = {"begin": [10, 40], "end": [30, 50], "name": ["a", "b"], "target": ["t", "t"], "filename": ["f", "f"],
         "line": [1, 2]}
LOGS = pa.table({"time": pa.array([20], pa.int64()), "target": ["t"], "level": pa.array([3], pa.int32()),
                 "msg": ["hello"]})


class MySource(Source):
    """A user's own source, as docs describe: readers of the view columns."""

    def __init__(self, tables=lambda kind: pa.RecordBatchReader.from_batches(
            SPAN_SCHEMA, [pa.record_batch(SPANS, schema=SPAN_SCHEMA)])):
        self.tables = tables

    def process_info(self, process_id):
        if process_id != "p1":
            raise errors.ProcessNotFoundError(f"process {process_id} not found")
        return ProcessInfo("p1", "my-exe", 0, 100)

    def time_range(self, info):
        return info.start_ns, info.end_ns

    def threads(self, process_id, begin_ns, end_ns):
        return [ThreadInfo("s1", 7, "main-7")]

    def thread_spans(self, stream_id, begin_ns, end_ns):
        return self.tables("thread_spans")

    def async_events(self, process_id, begin_ns, end_ns):
        return pa.RecordBatchReader.from_batches(EVENT_SCHEMA, [])

    def log_entries(self, process_id, begin_ns, end_ns):
        return self.tables("log_entries")


def test_source_tables_may_be_pyarrow_tables_or_batches(tmp_path):
    """A Source returning `pq.read_table(...)` (a Table) from thread_spans: the Table was
    iterated as columns ("AttributeError: 'pyarrow.lib.ChunkedArray' object has no attribute
    'num_rows'"); async events took a Table, thread spans and log entries did not. The trace
    is the same as from readers."""
    reference = tmp_path / "reader.perfetto"
    write_process_trace(MySource(lambda kind: pa.table(SPANS, schema=SPAN_SCHEMA).to_reader() if kind == "thread_spans"
                                 else LOGS.to_reader()), "p1", None, None, reference, logs=True)
    decoded = decode(reference.read_bytes())
    assert [(e.ts, e.name) for e in decoded.events] == [(10, "a"), (30, "a"), (40, "b"), (50, "b")]
    assert [i.name for i in decoded.instants] == ["hello"]
    class ArrowStream:  # any object of the Arrow C stream interface (Polars, DuckDB results)
        def __init__(self, table):
            self.table = table

        def __arrow_c_stream__(self, requested_schema=None):
            return self.table.__arrow_c_stream__(requested_schema)
    shapes = [lambda t: t, lambda t: t.to_batches()[0]]
    if hasattr(pa.RecordBatchReader, "from_stream"):
        shapes.append(ArrowStream)
    for as_value in shapes:
        out = tmp_path / "t.perfetto"
        write_process_trace(MySource(lambda kind: as_value(pa.table(SPANS, schema=SPAN_SCHEMA) if kind == "thread_spans"
                                                           else LOGS)), "p1", None, None, out, logs=True)
        assert out.read_bytes() == reference.read_bytes()


class _Bad(MySource):
    def __init__(self, method, value):
        super().__init__()
        self.method, self.value = method, value

    def __getattribute__(self, name):
        if name in ("process_info", "time_range", "threads", "thread_spans") and name == object.__getattribute__(
                self, "method"):
            return lambda *args: object.__getattribute__(self, "value")
        return object.__getattribute__(self, name)


@pytest.mark.parametrize("method, value, message", [
    ("thread_spans", [1, 2], "_Bad.thread_spans returned list: a Source's tables are pyarrow.RecordBatchReader"),
    ("threads", [("s1", 7, "main")], "_Bad.threads returned a list holding tuple, expected ThreadInfo items"),
    ("threads", None, "_Bad.threads returned NoneType, expected a list of ThreadInfo"),
    ("process_info", {"exe": "x"}, "_Bad.process_info returned dict, expected ProcessInfo"),
    ("time_range", 5, "_Bad.time_range returned 5, expected (begin_ns, end_ns)"),
])
def test_source_returning_the_wrong_type_is_a_type_error_naming_the_method(tmp_path, method, value, message):
    """Each was an AttributeError from inside the generation ('tuple' object has no attribute
    'stream_id', 'dict' object has no attribute 'start_ns', 'list' object has no attribute 'schema')."""
    with pytest.raises(TypeError, match=re.escape(message)):
        write_process_trace(_Bad(method, value), "p1", None, None, tmp_path / "t.perfetto")
    assert os.listdir(tmp_path) == []


def test_a_stream_listed_twice_by_a_source_is_one_thread(tmp_path):
    """A Source (or a server's thread list) naming a stream twice gives one thread, the first
    listing's, as the lake reads a streams table; since the library refuses a thread list
    that repeats a stream, the generation failed with InvalidArgumentError."""
    class Twice(MySource):
        def threads(self, process_id, begin_ns, end_ns):
            return [ThreadInfo("s1", 7, "main-7"), ThreadInfo("s2", 8, "io-8"), ThreadInfo("s1", 9, "other-9")]
    once = tmp_path / "once.perfetto"
    write_process_trace(Twice(), "p1", None, None, once)
    decoded = decode(once.read_bytes())
    assert sorted(decoded.threads) == ["io-8", "main-7"]
    assert decoded.threads["main-7"].thread.tid == 7
    assert [(e.ts, e.name) for e in decoded.events if e.track == decoded.threads["main-7"].uuid] == [
        (10, "a"), (30, "a"), (40, "b"), (50, "b")]


def test_source_subclass_missing_a_method_says_which():
    class Half(Source):
        def process_info(self, process_id):
            return ProcessInfo(process_id, "x", 0, 10)
    with pytest.raises(NotImplementedError, match=r"Half does not define time_range\(\): a Source subclass defines"):
        next(__import__("micromegas_perfetto").generate_trace_chunks(Half(), "p1"))


def test_keyboard_interrupt_inside_a_source_generator_leaves_nothing(tmp_path):
    def interrupted(kind):
        def batches():
            yield pa.record_batch(SPANS, schema=SPAN_SCHEMA)
            raise KeyboardInterrupt
        return pa.RecordBatchReader.from_batches(SPAN_SCHEMA, batches())
    with pytest.raises(KeyboardInterrupt):
        write_process_trace(MySource(interrupted), "p1", None, None, tmp_path / "t.perfetto")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"span_types": ["thread"]}, "span types must be one of thread, async, both, got ['thread']"),
    ({"async_layout": {"lanes"}}, "async layout must be one of lanes, micromegas, thread-lanes, got {'lanes'}"),
])
def test_unhashable_choices_are_request_errors(tmp_path, kwargs, message):
    """A list as span_types was "TypeError: unhashable type: 'list'"."""
    with pytest.raises(errors.RequestError, match=re.escape(message)):
        write_process_trace(MySource(), "p1", None, None, tmp_path / "t.perfetto", **kwargs)


def test_progress_of_the_wrong_type_is_refused_before_anything(tmp_path):
    """progress=5 was "AttributeError: 'int' object has no attribute 'start'" once the
    generation had begun."""
    with pytest.raises(TypeError, match=r"progress must be a micromegas_perfetto.Progress \(subclass it\), not int"):
        write_process_trace(MySource(), "p1", None, None, tmp_path / "t.perfetto", progress=5)
    events = []

    class Mine(Progress):
        def start(self, threads, process_id):
            events.append(("start", threads, process_id))
    write_process_trace(MySource(), "p1", None, None, tmp_path / "t.perfetto", progress=Mine())
    assert events == [("start", 1, "p1")]


def test_read_table_with_an_unknown_column_kind(small_lake):
    from micromegas_perfetto import LocalLake
    lake, processes = small_lake
    source = LocalLake(lake)
    stream = source.threads(processes[0]["process_id"], 0, 0)[0].stream_id
    assert source.read_table("thread_spans", stream, ["begin"], {"begin": "time"}).read_all().num_rows > 0
    with pytest.raises(ValueError, match="unknown column kind 'timestamp' for 'begin' \\(one of time, string"):
        source.read_table("thread_spans", stream, ["begin"], {"begin": "timestamp"})


# -- the package as a notebook sees it -------------------------------------------------------


def test_dir_lists_the_exports():
    """Tab completion (dir()) did not list write_process_trace and the other exports, which
    are imported on first use."""
    import micromegas_perfetto
    listed = dir(micromegas_perfetto)
    assert set(micromegas_perfetto.__all__) <= set(listed) and "__version__" in listed


def test_standard_output_without_a_descriptor(tmp_path, monkeypatch):
    """write_process_trace(..., "-") where sys.stdout is not a file (a notebook's stream, a
    StringIO) raised io.UnsupportedOperation: fileno."""
    import sys
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    with pytest.raises(errors.OutputError, match="standard output has no file descriptor here"):
        write_process_trace(MySource(), "p1", None, None, "-")


def test_write_process_trace_takes_the_official_keywords(small_lake, tmp_path):
    """A call written for micromegas.perfetto.write_process_trace with keywords names the
    source `client=`: it was "unexpected keyword argument 'client'", so the migration was not
    only the import. The signature shown (help, inspect) is still the function's own."""
    import inspect
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    positional = tmp_path / "positional.perfetto"
    write_process_trace(lake, pid, None, None, positional, "thread")
    keywords = tmp_path / "keywords.perfetto"
    write_process_trace(client=lake, process_id=pid, begin=None, end=None, trace_filepath=keywords, span_types="thread")
    assert keywords.read_bytes() == positional.read_bytes()
    assert list(inspect.signature(write_process_trace).parameters)[:6] == [
        "source", "process_id", "begin", "end", "trace_filepath", "span_types"]
    with pytest.raises(TypeError, match="got the source twice"):
        write_process_trace(lake, client=lake, process_id=pid, begin=None, end=None, trace_filepath=keywords)


def test_processes_limit_is_checked(small_lake):
    """LocalLake.processes(limit=-1) dropped the last process (rows[:-1]); on a server it was
    a SQL error ('LIMIT -1')."""
    from micromegas_perfetto import LocalLake
    lake = LocalLake(small_lake[0])
    everything = lake.processes()
    assert len(everything) == 3 and lake.processes(limit=2) == everything[:2] and lake.processes(limit=0) == []
    with pytest.raises(ValueError, match="limit must be >= 0, got -1"):
        lake.processes(limit=-1)
    with pytest.raises(TypeError, match="limit must be an int or None, not bool"):
        lake.processes(limit=True)
    from flight_fixture import LakeFlightServer
    from micromegas_perfetto import FlightSQLSource
    server = LakeFlightServer(small_lake[0])
    try:
        remote = FlightSQLSource(server.uri)
        assert len(remote.processes(limit=2)) == 2
        calls = len(server.calls)
        with pytest.raises(ValueError, match="limit must be >= 0, got -1"):
            remote.processes(limit=-1)
        assert len(server.calls) == calls
    finally:
        server.shutdown()


@pytest.mark.parametrize("shape, kind", [("pylist", "process"), ("later ints", "thread spans"),
                                         ("tables", None)])
def test_query_stream_yielding_other_objects(small_lake, tmp_path, shape, kind):
    """A client whose query_stream yields what is not a RecordBatch (lists, dicts, a
    DataFrame: a user's wrapper) was an AttributeError ("'list' object has no attribute
    'schema'") or pyarrow's "Could not unwrap RecordBatch from Python object of type 'dict'";
    it is a SourceError naming the query and the type, nothing written. Tables still work."""
    from test_source_selection import QueryStreamClient
    from flight_fixture import LakeFlightServer
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    server = LakeFlightServer(lake)

    class Wrapper(QueryStreamClient):
        def query_stream(self, sql, begin=None, end=None):
            batches = list(super().query_stream(sql, begin, end))
            if shape == "pylist":
                return [b.to_pylist() for b in batches]
            if shape == "later ints":  # the first batch, then not batches
                return batches[:1] + [b.num_rows for b in batches[1:]]
            return [pa.Table.from_batches([b]) for b in batches]
    try:
        out = tmp_path / "t.perfetto"
        if kind is None:
            write_process_trace(Wrapper(server.uri), pid, None, None, out)
            write_process_trace(lake, pid, None, None, tmp_path / "lake.perfetto")
            assert out.read_bytes() == (tmp_path / "lake.perfetto").read_bytes()
            return
        with pytest.raises(errors.SourceError, match=f"the {kind} result through .*Wrapper: query_stream yielded "
                                                     f"(list|int), expected pyarrow RecordBatches"):
            write_process_trace(Wrapper(server.uri), pid, None, None, out)
        assert os.listdir(tmp_path) == []
    finally:
        server.shutdown()


def test_lake_named_by_an_empty_string_or_bytes(small_lake, tmp_path, monkeypatch):
    """LocalLake("") read the current folder (Path("") is "."), with the message '. is not a
    micromegas lake'; a lake path as bytes (as os.listdir(b'.') gives) was refused by
    write_process_trace as 'source must be a lake folder ...' although output paths take bytes."""
    from micromegas_perfetto import LocalLake
    lake, processes = small_lake
    monkeypatch.chdir(lake)
    for empty in ("", b""):
        with pytest.raises(errors.LakeNotFoundError, match="the lake folder name is empty"):
            write_process_trace(empty, processes[0]["process_id"], None, None, tmp_path / "t.perfetto")
    assert os.listdir(tmp_path) == []
    write_process_trace(os.fsencode(lake), processes[0]["process_id"], None, None, tmp_path / "b.perfetto")
    write_process_trace(LocalLake(str(lake)), processes[0]["process_id"], None, None, tmp_path / "s.perfetto")
    assert (tmp_path / "b.perfetto").read_bytes() == (tmp_path / "s.perfetto").read_bytes()
