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
    for bad in (0, -1, True, 1.5, 1 << 63):
        with pytest.raises(errors.ArgumentError, match=r"chunk_size must be an integer in \[1, "):
            next(generate_trace_chunks(lake, pid, chunk_size=bad))
