"""A data scientist's notebook migrating from micromegas' official client: process ids and
output targets as a DataFrame gives them, argument mistakes the official function's callers
make, an empty trace of a range beside the process's, and micromegas' own statement against
the fixture server. Each test fails on the code before it."""
import io
import os
import uuid
import warnings

import pytest

from flight_fixture import LakeFlightServer
from micromegas_perfetto import errors, generate_trace_chunks, write_process_trace
from micromegas_perfetto.flightsql import FlightSQLClient
from micromegas_perfetto.lake import LocalLake
from micromegas_perfetto.timeutil import ns_to_iso


def _pid(small_lake):
    lake, processes = small_lake
    return lake, processes[0]["process_id"]


def test_a_uuid_object_is_a_process_id(small_lake, tmp_path):
    """`uuid.UUID(...)` (a DataFrame's UUID column, or `uuid.UUID(text)`) was "process id must
    be a non-empty string, got UUID('...')"; the official function formats it into its SQL as
    its text. It gives the trace of that text."""
    lake, pid = _pid(small_lake)
    by_text = write_process_trace(lake, pid, None, None, tmp_path / "text.perfetto")
    by_uuid = write_process_trace(lake, uuid.UUID(pid), None, None, tmp_path / "uuid.perfetto")
    assert by_uuid.process_id == pid and by_uuid.thread_spans == by_text.thread_spans > 0
    assert (tmp_path / "uuid.perfetto").read_bytes() == (tmp_path / "text.perfetto").read_bytes()
    chunks = b"".join(data for _, data in generate_trace_chunks(lake, uuid.UUID(pid)))
    assert chunks == (tmp_path / "text.perfetto").read_bytes()


def test_a_series_as_process_id_is_one_line(small_lake, tmp_path):
    """`df.process_id` (a column, not a cell) put the whole printed Series, over several
    lines, into the message; a one-row selection gets the way out."""
    pd = pytest.importorskip("pandas")
    lake, pid = _pid(small_lake)
    for value, tail in ((pd.Series([pid, pid]), "got a Series"),
                        (pd.Series([pid]), "got a Series of one value (take it out: .iloc[0])")):
        with pytest.raises(errors.RequestError) as raised:
            write_process_trace(lake, value, None, None, tmp_path / "t.perfetto")
        assert "\n" not in str(raised.value) and str(raised.value).endswith(tail), str(raised.value)
    assert os.listdir(tmp_path) == []


class _Client:
    """Stands for micromegas' client: what open_source knows it by."""

    def query_stream(self, sql, begin=None, end=None):
        raise AssertionError("not to be queried")


def test_source_and_process_id_swapped_say_so(tmp_path):
    """`write_process_trace(process_id, client, ...)` was "lake folder <the id> does not
    exist": the id read as a lake folder before the process id was looked at."""
    pid = str(uuid.uuid4())
    with pytest.raises(errors.RequestError, match="the source and the process id look swapped") as raised:
        write_process_trace(pid, _Client(), None, None, tmp_path / "t.perfetto")
    assert not isinstance(raised.value, errors.LakeNotFoundError)
    with pytest.raises(errors.RequestError, match="look swapped"):
        list(generate_trace_chunks(pid, _Client()))
    assert os.listdir(tmp_path) == []


def test_span_types_and_trace_filepath_swapped_say_so(small_lake, tmp_path, monkeypatch):
    """micromegas' `write_process_trace_from_chunks(client, pid, begin, end, span_types,
    trace_filepath)` order was "span types must be one of thread, async, both, got
    't.perfetto'", not saying that the two were swapped."""
    lake, pid = _pid(small_lake)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(errors.RequestError, match="trace_filepath 'both' and span_types 't.perfetto' look swapped"):
        write_process_trace(lake, pid, None, None, "both", "t.perfetto")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("target", [io.BytesIO(), io.StringIO()], ids=["BytesIO", "StringIO"])
def test_a_file_object_as_trace_filepath_names_the_parameter(small_lake, tmp_path, target):
    """A BytesIO was os.fspath's "expected str, bytes or os.PathLike object, not BytesIO",
    naming no parameter and no way to get the bytes."""
    lake, pid = _pid(small_lake)
    with pytest.raises(TypeError, match=r"^trace_filepath must be a file name .* not " + type(target).__name__
                       + r": for the trace in memory, b\"\"\.join\(data for _, data in generate_trace_chunks"):
        write_process_trace(lake, pid, None, None, target)


@pytest.mark.parametrize("function", [write_process_trace, generate_trace_chunks])
def test_a_mistyped_keyword_gets_the_near_name(small_lake, tmp_path, function):
    lake, pid = _pid(small_lake)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'spantypes' \(did you mean 'span_types'\?\)"):
        function(lake, pid, None, None, tmp_path / "t.perfetto", spantypes="thread")
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'xyzzy'$"):
        function(lake, pid, xyzzy=1)


def test_generate_trace_chunks_takes_client_as_write_process_trace_does(small_lake, tmp_path):
    lake, pid = _pid(small_lake)
    write_process_trace(client=lake, process_id=pid, begin=None, end=None, trace_filepath=tmp_path / "t.perfetto")
    data = b"".join(d for _, d in generate_trace_chunks(client=lake, process_id=pid))
    assert data == (tmp_path / "t.perfetto").read_bytes()


def test_an_empty_trace_of_a_range_beside_the_process_warns_with_the_processs_range(small_lake, tmp_path):
    """The README's `end = now; begin = end - 5 minutes` on a process of another day wrote an
    empty trace without a word from the API (only the command line said so): now a
    NoDataWarning names the process's range, from write_process_trace and generate_trace_chunks;
    the process's own range, or part of it, gets none."""
    lake, pid = _pid(small_lake)
    begin, end = LocalLake(lake).time_range(LocalLake(lake).process_info(pid))
    day = 86_400 * 10**9
    expected = (f"nothing in {ns_to_iso(begin - day)} .. {ns_to_iso(begin - day + 10**9)}: the process's telemetry "
                f"runs from {ns_to_iso(begin)} to {ns_to_iso(end)}")
    with pytest.warns(errors.NoDataWarning) as caught:
        summary = write_process_trace(lake, pid, begin - day, begin - day + 10**9, tmp_path / "t.perfetto")
    assert summary.thread_spans == 0 and [str(w.message) for w in caught] == [expected]
    with pytest.warns(errors.NoDataWarning) as caught:
        list(generate_trace_chunks(lake, pid, begin - day, begin - day + 10**9))
    assert [str(w.message) for w in caught] == [expected]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_process_trace(lake, pid, begin, None, tmp_path / "t.perfetto")
        write_process_trace(lake, pid, None, None, tmp_path / "t.perfetto")


# micromegas 0.32.0's write_process_trace_from_chunks sends this statement, verbatim.
_OFFICIAL_SQL = """
    SELECT chunk_id, chunk_data
    FROM perfetto_trace_chunks(
        '{process_id}',
        '{span_types}',
        TIMESTAMP '{begin}',
        TIMESTAMP '{end}'
    )
    """


def test_the_official_functions_statement_equals_the_micromegas_layout(small_lake, tmp_path):
    """The README: byte-identical to micromegas' with async_layout="micromegas". The fixture
    server knew only this package's one-line statement, so micromegas' own function (whose
    statement spans lines) got "table function 'perfetto_trace_chunks' not found" from it."""
    lake, pid = _pid(small_lake)
    begin, end = LocalLake(lake).time_range(LocalLake(lake).process_info(pid))
    server = LakeFlightServer(lake)
    try:
        client = FlightSQLClient(server.uri)
        try:
            for spans in ("both", "thread", "async"):
                sql = _OFFICIAL_SQL.format(process_id=pid, span_types=spans, begin=ns_to_iso(begin),
                                           end=ns_to_iso(end))
                reader = client.query(sql, begin, end, "trace chunks")
                table = reader.read_all()
                assert table.column("chunk_id").to_pylist() == list(range(table.num_rows))
                official = b"".join(table.column("chunk_data").to_pylist())
                ours = tmp_path / f"{spans}.perfetto"
                write_process_trace(client, pid, begin, end, ours, spans, async_layout="micromegas")
                assert official and official == ours.read_bytes(), spans
        finally:
            client.close()
    finally:
        server.shutdown()


def test_a_padded_process_id_in_a_lake_is_one_line(small_lake, tmp_path):
    """A DataFrame cell with a newline after the id gave a two-line message from a lake
    ("process  <id>\\n not found in lake ..."); it is shown quoted, with the hint."""
    lake, pid = _pid(small_lake)
    with pytest.raises(errors.ProcessNotFoundError) as raised:
        write_process_trace(lake, f" {pid}\n", None, None, tmp_path / "t.perfetto")
    assert str(raised.value) == f"process {f' {pid}' + chr(10)!r} not found in lake {lake} (did you mean {pid}?)"


def test_a_tilde_path_says_it_is_not_expanded(small_lake, tmp_path, monkeypatch):
    """`"~/traces/t.perfetto"` from Python is a folder named "~" (no shell expands it): "output
    folder ~/traces does not exist" left the user looking in their home folder."""
    lake, pid = _pid(small_lake)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(errors.OutputError) as raised:
        write_process_trace(lake, pid, None, None, "~/t.perfetto")
    assert str(raised.value) == (f"output folder ~ does not exist (~ is not expanded here: "
                                 f"os.path.expanduser gives {str(tmp_path / 't.perfetto')!r})")
    assert os.listdir(tmp_path) == []


def test_a_client_as_process_id_after_a_lake_is_not_called_swapped(small_lake, tmp_path):
    lake, _ = _pid(small_lake)
    with pytest.raises(errors.RequestError) as raised:
        write_process_trace(lake, _Client(), None, None, tmp_path / "t.perfetto")
    assert str(raised.value).startswith("process id must be a non-empty string or uuid.UUID, got <")
    assert "swapped" not in str(raised.value)


def test_a_null_time_from_numpy_or_pyarrow_is_nat(small_lake, tmp_path):
    """`df.end_time.values[0]` of a process still running (a null end_time) is numpy's NaT:
    it was "cannot read end np.datetime64('NaT','ns'): use ISO 8601 ...", as if its format
    were wrong; now the message pandas' NaT gets."""
    np = pytest.importorskip("numpy")
    import pyarrow as pa
    lake, pid = _pid(small_lake)
    for value in (np.datetime64("NaT"), np.datetime64("NaT", "ns"), pa.scalar(None, pa.timestamp("us", tz="UTC"))):
        with pytest.raises(errors.InvalidTimeError) as raised:
            write_process_trace(lake, pid, None, value, tmp_path / "t.perfetto")
        assert str(raised.value) == "end is NaT (not a time): give a time, or None for the process's range"
    assert os.listdir(tmp_path) == []


def test_a_file_name_given_to_generate_trace_chunks_says_it_writes_none(small_lake, tmp_path):
    """`generate_trace_chunks(c, pid, begin, end, "t.perfetto")`, write_process_trace's
    arguments, was "span types must be one of thread, async, both, got 't.perfetto'"."""
    lake, pid = _pid(small_lake)
    for name in ("t.perfetto", tmp_path / "t.perfetto"):
        with pytest.raises(errors.RequestError, match="looks like a file name: generate_trace_chunks yields the "
                                                      "trace's chunks and writes no file; write_process_trace"):
            next(generate_trace_chunks(lake, pid, None, None, name))
    assert os.listdir(tmp_path) == []
