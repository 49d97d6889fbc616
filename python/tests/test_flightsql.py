"""write_perfetto against a real FlightSQL server (the loopback fixture serving a lake)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import run_cli
from flight_fixture import COMMAND_TYPE_URL, LakeFlightServer, _FailsMidStream, _field
from micromegas_perfetto.flightsql import FlightSQLClient, resolve_uri, statement_ticket
from micromegas_perfetto import generate_trace_chunks
from micromegas_perfetto.lake import LocalLake


@pytest.fixture
def server(small_lake):
    lake, _ = small_lake
    s = LakeFlightServer(lake)
    yield s
    s.shutdown()


def pid_of(small_lake, index=0):
    return small_lake[1][index]["process_id"]


def write(out, process_id, *args, env=None):
    return run_cli("write_perfetto", process_id, "--filename", out, "--quiet", *args, env=env)


@pytest.mark.parametrize("options", [
    [], ["--spans", "thread"], ["--spans", "async"], ["--async-layout", "micromegas"],
    ["--begin", "2023-11-14T22:13:20.01Z", "--end", "2023-11-14T22:13:20.02Z"],
])
def test_client_side_equals_the_lake_source(small_lake, server, tmp_path, options):
    lake, _ = small_lake
    pid = pid_of(small_lake)
    remote = write(tmp_path / "remote.perfetto", pid, "--uri", server.uri, *options)
    assert remote.returncode == 0, remote.stderr
    local = write(tmp_path / "local.perfetto", pid, "--lake", lake, *options)
    assert local.returncode == 0, local.stderr
    assert (tmp_path / "remote.perfetto").read_bytes() == (tmp_path / "local.perfetto").read_bytes()


@pytest.mark.parametrize("spans", ["both", "thread", "async"])
def test_server_side_equals_client_side_with_the_servers_layout(small_lake, server, tmp_path, spans):
    pid = pid_of(small_lake)
    server_side = write(tmp_path / "s.perfetto", pid, "--uri", server.uri, "--server-side", "--spans", spans)
    assert server_side.returncode == 0, server_side.stderr
    client_side = write(tmp_path / "c.perfetto", pid, "--uri", server.uri, "--async-layout", "micromegas",
                        "--spans", spans)
    assert client_side.returncode == 0, client_side.stderr
    assert (tmp_path / "s.perfetto").read_bytes() == (tmp_path / "c.perfetto").read_bytes()
    chunk_calls = [c for c in server.calls if "perfetto_trace_chunks" in c["sql"]]
    assert len(chunk_calls) == 1 and f"'{spans}'" in chunk_calls[0]["sql"]


def test_every_query_carries_the_range_and_dictionary_headers(small_lake, server, tmp_path):
    pid = pid_of(small_lake)
    begin, end = "2023-11-14T22:13:20.010000000Z", "2023-11-14T22:13:20.020000000Z"
    assert write(tmp_path / "t.perfetto", pid, "--uri", server.uri, "--begin", begin, "--end", end).returncode == 0
    assert len(server.calls) >= 2 + 4 + 1  # process, threads, 4 threads' spans, async events
    for call in server.calls:
        headers = call["headers"]
        assert headers["preserve_dictionary"] == "true"
        assert "query_range_begin" in headers and "query_range_end" in headers
        assert "authorization" not in headers
        # The same entry point as through the official client (test_official_client), for
        # every command: list-processes is not write_perfetto.
        assert headers["x-client-type"] == headers["x-client-entrypoint"] == "micromegas-perfetto"
    data_calls = [c for c in server.calls if "view_instance" in c["sql"] or "GROUP BY" in c["sql"]]
    assert data_calls and all(c["headers"]["query_range_begin"] == begin and c["headers"]["query_range_end"] == end
                              for c in data_calls)
    spans_sql = [c["sql"] for c in server.calls if "view_instance('thread_spans'" in c["sql"]]
    assert len(spans_sql) == 4 and all(f"TIMESTAMP '{begin}'" in s and f"TIMESTAMP '{end}'" in s for s in spans_sql)


def test_bearer_token(small_lake, tmp_path):
    lake, _ = small_lake
    s = LakeFlightServer(lake, token="s3cret")
    try:
        pid = pid_of(small_lake)
        refused = run_cli("write_perfetto", pid, "--uri", s.uri, "--filename", tmp_path / "t.perfetto")
        assert refused.returncode == 1
        assert "authentication refused" in refused.stderr and s.uri in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
        wrong = write(tmp_path / "t.perfetto", pid, "--uri", s.uri, "--token", "nope")
        assert wrong.returncode == 1 and "authentication refused" in wrong.stderr
        assert not (tmp_path / "t.perfetto").exists()
        assert write(tmp_path / "t.perfetto", pid, "--uri", s.uri, "--token", "s3cret").returncode == 0
        assert write(tmp_path / "e.perfetto", pid, "--uri", s.uri, env={"MICROMEGAS_TOKEN": "s3cret"}).returncode == 0
        assert all(c["headers"]["authorization"] == "Bearer s3cret" for c in s.calls)
    finally:
        s.shutdown()


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_ahead_threads() -> set:
    """The read-ahead threads alive now (a test compares them with those alive before it:
    one an earlier test's garbage still holds is not this test's)."""
    import threading
    return {t for t in threading.enumerate() if t.name == "micromegas-read-ahead"}


def server_process(lake, *options):
    """The fixture server in a process of its own (that a test can kill), with --log-calls;
    returns it, serving, and its URI. The caller kills it. The server takes any free port
    and says which ("serving LAKE at URI ..."): a port found free here first could be taken
    by another process before the server bound it."""
    fixture = os.path.join(os.path.dirname(__file__), "flight_fixture.py")
    server = subprocess.Popen([sys.executable, fixture, str(lake), "--port", "0", *options, "--log-calls"],
                              stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("serving ") and " at grpc://127.0.0.1:" in line, line
        uri = line.rsplit(" at ", 1)[1].split()[0]
    except BaseException:
        server.kill()
        server.wait()
        raise
    return server, uri


@pytest.mark.parametrize("server_side", [False, True])
def test_server_gone_mid_stream_is_a_lost_connection_and_leaves_no_file(small_lake, tmp_path, server_side):
    """The server process killed while a result streams (gRPC UNAVAILABLE, "Socket closed")."""
    server, uri = server_process(small_lake[0], "--rows-per-batch", "50", "--batch-delay", "0.2")
    try:
        args = ["--server-side"] if server_side else []
        client = subprocess.Popen([sys.executable, "-m", "micromegas", "write_perfetto", pid_of(small_lake), "--uri",
                                   uri, "--filename", tmp_path / "t.perfetto", *args],
                                  stderr=subprocess.PIPE, text=True)
        streaming = "perfetto_trace_chunks" if server_side else "view_instance('thread_spans'"
        for line in server.stdout:
            if streaming in line:
                break
        for line in server.stdout:  # the result has begun (not only the query: under load its first
            if line.startswith("sent 2"):  # batch can take longer than a fixed wait): batches come every 0.2 s
                break
        server.kill()
        _, stderr = client.communicate(timeout=60)
    finally:
        server.kill()
        server.wait()
    assert client.returncode == 1, stderr
    assert "lost while reading" in stderr and uri in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sig, code, line", [(signal.SIGINT, 130, "interrupted: nothing written"),
                                            (signal.SIGTERM, 143, "interrupted by SIGTERM: nothing written")])
def test_a_signal_during_a_first_query_that_is_never_answered_ends_the_run_at_once(small_lake, tmp_path, sig, code,
                                                                                 line):
    """The main thread waits inside pyarrow's do_get, where Python runs no signal handler: the
    watchdog ends the run in well under a second (it used to wait its 5 s grace), exit 128 +
    signal, one line, no file."""
    server, uri = server_process(small_lake[0], "--delay", "60")
    try:
        client = subprocess.Popen([sys.executable, "-m", "micromegas", "write_perfetto", pid_of(small_lake), "--uri",
                                   uri, "--filename", tmp_path / "t.perfetto"], stderr=subprocess.PIPE, text=True)
        assert server.stdout.readline().startswith("call ")  # the first query is waiting
        time.sleep(0.2)
        sent = time.monotonic()
        client.send_signal(sig)
        _, stderr = client.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        server.kill()
        server.wait()
    assert client.returncode == code and stderr.strip() == line, stderr
    assert took < 3.0, took
    assert list(tmp_path.iterdir()) == []


ERRORS = {"INVALID_ARGUMENT": lambda: pa.ArrowInvalid("Execution error: cannot cast 'x' to a timestamp"),
          "UNIMPLEMENTED": lambda: NotImplementedError("not implemented: view_instance of this view"),
          "INTERNAL": lambda: flight.FlightInternalError("error reading partition: object store timeout"),
          "UNAUTHENTICATED": lambda: flight.FlightUnauthenticatedError("token expired")}


@pytest.mark.parametrize("status", sorted(ERRORS))
@pytest.mark.parametrize("query, server_side", [("view_instance('thread_spans'", False),
                                                ("view_instance('async_events'", False),
                                                ("perfetto_trace_chunks", True)])
def test_a_status_mid_stream_is_the_servers_failure_not_a_lost_connection(small_lake, server, tmp_path, status,
                                                                         query, server_side):
    """micromegas runs a query as a stream: an execution error (a partition that cannot be
    read, perfetto_trace_chunks' generation failing) is a gRPC status after the first
    batches. It was reported as 'connection ... lost while reading'."""
    server.rows_per_batch = 100
    server.fault = (ERRORS[status](), "mid", query)
    args = ["--server-side"] if server_side else []
    result = run_cli("write_perfetto", pid_of(small_lake), "--uri", server.uri, *args,
                     "--filename", tmp_path / "t.perfetto")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "lost" not in lines[0] and server.uri in lines[0], lines[0]
    kind = {"perfetto_trace_chunks": "trace chunks", "view_instance('async_events'": "async events"}.get(
        query, "thread spans")
    assert f"failed while sending the {kind} result" in lines[0], lines[0]
    assert str(ERRORS[status]()).split(":")[0] in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("status", sorted(ERRORS))
def test_a_status_at_the_first_call_is_one_line(small_lake, server, tmp_path, status):
    server.fault = (ERRORS[status](), "first", "view_instance('thread_spans'")
    result = run_cli("write_perfetto", pid_of(small_lake), "--uri", server.uri, "--filename", tmp_path / "t.perfetto")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    expected = "authentication refused by" if status == "UNAUTHENTICATED" else "failed the thread spans query"
    assert expected in result.stderr and server.uri in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_non_uuid_process_id_sends_no_query(server, tmp_path):
    result = run_cli("write_perfetto", "x' OR '1'='1", "--uri", server.uri, "--filename", tmp_path / "t.perfetto")
    assert result.returncode == 2 and "not a UUID" in result.stderr
    assert server.calls == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fault, word", [("gap", "missing"), ("repeat", "repeated")])
def test_chunk_id_faults_are_errors(small_lake, server, tmp_path, fault, word):
    server.chunk_fault = fault
    result = run_cli("write_perfetto", pid_of(small_lake), "--uri", server.uri, "--server-side",
                     "--filename", tmp_path / "t.perfetto")
    assert result.returncode == 1 and word in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server(small_lake, tmp_path):
    uri = f"grpc://127.0.0.1:{free_port()}"
    result = run_cli("write_perfetto", pid_of(small_lake), "--uri", uri, "--filename", tmp_path / "t.perfetto")
    assert result.returncode == 1 and "cannot reach" in result.stderr and uri in result.stderr
    assert "process query" in result.stderr and list(tmp_path.iterdir()) == []


def test_query_error_and_missing_column(small_lake, server, tmp_path):
    server.fail_views = True
    result = run_cli("write_perfetto", pid_of(small_lake), "--uri", server.uri, "--filename", tmp_path / "t.perfetto")
    assert result.returncode == 1 and "failed the thread spans query" in result.stderr, result.stderr
    server.fail_views = False
    server.drop_column = "line"
    result = run_cli("write_perfetto", pid_of(small_lake), "--uri", server.uri, "--filename", tmp_path / "t.perfetto")
    assert result.returncode == 1 and "missing column 'line'" in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_process_on_the_server(server, tmp_path):
    result = run_cli("write_perfetto", "00000000-0000-4000-8000-000000000000", "--uri", server.uri,
                     "--filename", tmp_path / "t.perfetto")
    assert result.returncode == 2 and "not found" in result.stderr


def test_uri_resolution(monkeypatch):
    monkeypatch.delenv("MICROMEGAS_ANALYTICS_URI", raising=False)
    assert resolve_uri(None) == "grpc://localhost:50051"
    assert resolve_uri("https://example.com:443") == "grpc+tls://example.com:443"
    assert resolve_uri("http://h:1") == "grpc://h:1"
    monkeypatch.setenv("MICROMEGAS_ANALYTICS_URI", "grpc://a:2")
    assert resolve_uri(None) == "grpc://a:2"


def test_fixture_behaves_like_the_real_server(small_lake, server):
    """Empty FlightInfo schema with a bare ticket; no prepared statements; dictionaries only on request."""
    client = flight.FlightClient(server.uri)
    sql = "SELECT exe FROM processes"
    command = _field(1, COMMAND_TYPE_URL.encode()) + _field(2, _field(1, sql.encode()))
    info = client.get_flight_info(flight.FlightDescriptor.for_command(command))
    assert info.schema == pa.schema([])
    assert client.do_get(info.endpoints[0].ticket).read_all().num_rows == 3
    with pytest.raises(pa.ArrowNotImplementedError, match="not implemented"):
        list(client.do_action(flight.Action("CreatePreparedStatement", b"")))
    stream = LocalLake(small_lake[0]).threads(pid_of(small_lake), 0, 0)[0].stream_id
    spans = f"SELECT name FROM view_instance('thread_spans', '{stream}')"
    plain = client.do_get(flight.Ticket(statement_ticket(spans))).read_all()
    assert plain.schema.field("name").type == pa.string()
    preserved = FlightSQLClient(server.uri).read_all(spans, 0, 1, "test")
    assert pa.types.is_dictionary(preserved.schema.field("name").type)


def test_read_ahead_is_bounded_keeps_the_cause_and_cancels_an_abandoned_stream():
    """The Flight stream's read-ahead (shared with the lake reader): at most `depth` batches
    (plus the one being handed over) are pulled ahead of the consumer; a producer error is
    raised at the consumer as it was raised, cause included; a consumer that stops early
    stops the producer and calls on_stop."""
    import threading
    import time as _time
    from micromegas_perfetto.sources import read_ahead

    before = read_ahead_threads()
    pulled = []

    def batches(n, fail_at=None):
        for i in range(n):
            if i == fail_at:
                try:
                    raise OSError("socket closed")
                except OSError as cause:
                    raise ValueError("lost at batch 3") from cause
            pulled.append(i)
            yield pa.record_batch([pa.array([i])], names=["x"])

    stream = read_ahead(batches(100), depth=2)
    assert next(stream).column(0)[0].as_py() == 0
    _time.sleep(0.3)
    assert len(pulled) <= 4, pulled  # 1 consumed + 2 queued + 1 waiting to be queued
    stopped = threading.Event()
    stream = read_ahead(batches(100), depth=2, on_stop=stopped.set)
    next(stream)
    stream.close()
    assert stopped.is_set()
    # ...and waits for it: no read-ahead thread is left running (a daemon thread still inside
    # pyarrow at interpreter exit aborted interrupted runs: "terminate called without an
    # active exception").
    assert not read_ahead_threads() - before

    def slow(n):
        for i in range(n):
            _time.sleep(0.05)  # a producer in the middle of decoding when the consumer stops
            yield pa.record_batch([pa.array([i])], names=["x"])

    stream = read_ahead(slow(100), depth=2)
    next(stream)
    stream.close()
    assert not read_ahead_threads() - before

    with pytest.raises(ValueError, match="lost at batch 3") as raised:
        list(read_ahead(batches(10, fail_at=3)))
    assert isinstance(raised.value.__cause__, OSError)


def test_own_flightsql_client_is_a_source(small_lake, tmp_path):
    """`micromegas_perfetto.FlightSQLClient(uri, token)` (exported beside write_process_trace)
    drives write_process_trace and generate_trace_chunks like the official client: the lake's
    bytes; it stays the caller's (open, usable again); a refused token is a SourceError."""
    from micromegas_perfetto import generate_trace_chunks, write_process_trace
    from micromegas_perfetto.errors import SourceError
    lake, _ = small_lake
    s = LakeFlightServer(lake, token="s3cret")
    try:
        pid = pid_of(small_lake)
        local = tmp_path / "local.perfetto"
        write_process_trace(lake, pid, None, None, local)
        client = FlightSQLClient(s.uri, token="s3cret")
        remote = tmp_path / "remote.perfetto"
        write_process_trace(client, pid, None, None, remote)
        assert remote.read_bytes() == local.read_bytes()
        chunks = b"".join(data for _, data in generate_trace_chunks(client, pid, None, None))
        assert chunks == local.read_bytes()
        with pytest.raises(SourceError, match="authentication refused"):
            write_process_trace(FlightSQLClient(s.uri, token="nope"), pid, None, None, tmp_path / "no.perfetto")
        assert not (tmp_path / "no.perfetto").exists()
    finally:
        s.shutdown()


def test_tls_to_a_plain_server_is_one_line(small_lake, server, tmp_path):
    """grpc+tls:// to a server without TLS: one line, exit 1 (gRPC's own log lines, an absl
    warning and 'I0000 ... Handshake failed', went to stderr before it); --debug keeps them."""
    pid = pid_of(small_lake)
    tls = server.uri.replace("grpc://", "grpc+tls://")
    done = run_cli("write_perfetto", pid, "--uri", tls, "--filename", tmp_path / "t.perfetto",
                   env={"GRPC_VERBOSITY": None})
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"error: cannot reach the analytics server at {tls} (process query)"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "t.perfetto").exists()


@pytest.mark.parametrize("layout", ["lanes", "thread-lanes"])
def test_server_side_refuses_a_lanes_layout_asked_for(small_lake, server, tmp_path, layout):
    """--server-side writes micromegas' layout: an explicit --async-layout lanes was silently
    dropped (a one-track trace written). Now exit 2, one line, nothing sent or written;
    --async-layout micromegas (what it writes) and no --async-layout still work."""
    pid = pid_of(small_lake)
    refused = write(tmp_path / "t.perfetto", pid, "--uri", server.uri, "--server-side", "--async-layout", layout)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: --server-side writes micromegas' one-track layout") and \
        f"--async-layout {layout} needs client-side generation" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not server.calls
    assert not (tmp_path / "t.perfetto").exists()
    for args in (["--async-layout", "micromegas"], []):
        done = write(tmp_path / "t.perfetto", pid, "--uri", server.uri, "--server-side", *args)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "t.perfetto").read_bytes()[:1] == b"\x0a"


@pytest.mark.parametrize("layout", ["lanes", "thread-lanes"])
def test_api_server_side_refuses_a_lanes_layout_asked_for(small_lake, server, tmp_path, layout):
    """The API as the command line: write_process_trace/generate_trace_chunks with
    server_side=True and an explicit lanes layout silently wrote the one-track layout (the
    default was "lanes", so it could not be told from a request). Now a RequestError before
    any query, nothing written; the default (None) and "micromegas" give the server's trace."""
    from micromegas_perfetto import FlightSQLClient, errors, generate_trace_chunks, write_process_trace
    pid = pid_of(small_lake)
    client = FlightSQLClient(server.uri)
    with pytest.raises(errors.RequestError, match=f"async_layout='{layout}' needs the client-side generation"):
        write_process_trace(client, pid, None, None, tmp_path / "t.perfetto", server_side=True, async_layout=layout)
    with pytest.raises(errors.RequestError, match="server_side=True writes the micromegas layout"):
        next(generate_trace_chunks(client, pid, server_side=True, async_layout=layout))
    assert not server.calls and os.listdir(tmp_path) == []
    default = write_process_trace(client, pid, None, None, tmp_path / "d.perfetto", server_side=True)
    explicit = write_process_trace(client, pid, None, None, tmp_path / "m.perfetto", server_side=True,
                                   async_layout="micromegas")
    assert default.chunks and (tmp_path / "d.perfetto").read_bytes() == (tmp_path / "m.perfetto").read_bytes()
    lanes = write_process_trace(client, pid, None, None, tmp_path / "l.perfetto")  # client-side default: lanes
    assert lanes.async_tracks > 1


class _NoChunks(LakeFlightServer):
    def trace_chunks(self, *args):
        return pa.table({"chunk_id": pa.array([], pa.int32()), "chunk_data": pa.array([], pa.binary())})


@pytest.mark.parametrize("empty_batches", [False, True])
def test_an_empty_trace_chunks_result_is_an_error_not_an_empty_file(small_lake, tmp_path, empty_batches):
    """A result with the schema and no row (or only zero-row batches) was written as a 0-byte
    trace, exit 0, nothing said: micromegas' trace always starts with the process descriptor."""
    s = _NoChunks(small_lake[0])
    s.empty_batches = empty_batches
    try:
        result = run_cli("write_perfetto", pid_of(small_lake), "--uri", s.uri, "--server-side",
                         "--filename", tmp_path / "t.perfetto")
        assert result.returncode == 1, result.stderr
        assert "returned no trace chunks" in result.stderr and s.uri in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert list(tmp_path.iterdir()) == []
        from micromegas_perfetto.errors import SourceError
        with pytest.raises(SourceError, match="returned no trace chunks"):
            list(generate_trace_chunks(FlightSQLClient(s.uri), pid_of(small_lake), server_side=True))
    finally:
        s.shutdown()


@pytest.mark.parametrize("string_type, empty_batches", [
    (pa.string(), False), (pa.large_string(), False), (pa.string_view(), False), (None, True),
    (pa.string_view(), True)])
def test_strings_of_any_type_and_zero_row_batches_give_the_lakes_bytes(small_lake, server, tmp_path, string_type,
                                                                       empty_batches):
    """A server that does not honour preserve_dictionary (plain strings), sends large strings
    or DataFusion's string views, or zero-row batches first, between and last: every layout's
    trace (with logs and metrics) is the lake's, byte for byte, and server-side too."""
    from micromegas_perfetto import write_process_trace
    lake, _ = small_lake
    pid = pid_of(small_lake)
    server.string_type, server.empty_batches = string_type, empty_batches
    for layout in ("lanes", "thread-lanes", "micromegas"):
        options = dict(async_layout=layout, logs=True, metrics=True)
        write_process_trace(str(lake), pid, None, None, tmp_path / "lake.perfetto", **options)
        write_process_trace(FlightSQLClient(server.uri), pid, None, None, tmp_path / "remote.perfetto", **options)
        assert (tmp_path / "remote.perfetto").read_bytes() == (tmp_path / "lake.perfetto").read_bytes(), layout
    write_process_trace(str(lake), pid, None, None, tmp_path / "lake.perfetto", async_layout="micromegas")
    write_process_trace(FlightSQLClient(server.uri), pid, None, None, tmp_path / "server.perfetto", server_side=True)
    assert (tmp_path / "server.perfetto").read_bytes() == (tmp_path / "lake.perfetto").read_bytes()
    if string_type is not None:
        spans = [c for c in server.calls if "view_instance('thread_spans'" in c["sql"]]
        assert spans and all(c["headers"]["preserve_dictionary"] == "true" for c in spans)


def test_a_thread_with_no_block_in_the_range_is_not_listed_client_side_or_server_side(small_lake, server, tmp_path):
    """The server lists threads from the `blocks` it opens for the query range: a thread whose
    blocks all end before the range is not in the trace, client-side (its thread-list query
    carries the range) as server-side, and the two give the same bytes."""
    from trace_check import decode
    lake, _ = small_lake
    pid = pid_of(small_lake)
    threads = LocalLake(lake).threads(pid, 0, 0)
    blocks = server.blocks()
    gone = threads[1]
    import pyarrow.compute as pc
    early = pa.scalar(1_600_000_000_000_000_000, pa.int64()).cast(blocks.schema.field("end_time").type)
    mine = pc.equal(blocks.column("stream_id"), gone.stream_id)
    for column in ("begin_time", "end_time"):  # its one block, years before the range
        index = blocks.schema.get_field_index(column)
        blocks = blocks.set_column(index, column, pc.if_else(mine, early, blocks.column(column)))
    server.blocks_table = blocks
    begin, end = "2023-11-14T22:13:20.01Z", "2023-11-14T22:13:20.02Z"
    client = write(tmp_path / "c.perfetto", pid, "--uri", server.uri, "--async-layout", "micromegas",
                   "--begin", begin, "--end", end)
    assert client.returncode == 0, client.stderr
    server_side = write(tmp_path / "s.perfetto", pid, "--uri", server.uri, "--server-side", "--begin", begin,
                        "--end", end)
    assert server_side.returncode == 0, server_side.stderr
    assert (tmp_path / "c.perfetto").read_bytes() == (tmp_path / "s.perfetto").read_bytes()
    listed = decode((tmp_path / "c.perfetto").read_bytes()).threads
    assert gone.name not in listed and len(listed) == len(threads) - 1, sorted(listed)
    # The whole range lists it again (its block is in it).
    whole = write(tmp_path / "w.perfetto", pid, "--uri", server.uri, "--async-layout", "micromegas",
                  "--begin", "2020-01-01T00:00:00Z", "--end", "2024-01-01T00:00:00Z")
    assert whole.returncode == 0, whole.stderr
    assert gone.name in decode((tmp_path / "w.perfetto").read_bytes()).threads
    # Every call's range headers are RFC 3339 (the fixture refuses any other text, as micromegas does).
    assert all(c["headers"]["query_range_begin"] and c["headers"]["query_range_end"] for c in server.calls)


def test_process_not_found_by_the_servers_generation_is_a_process_not_found(small_lake, tmp_path):
    """micromegas' perfetto_trace_chunks fails in its result's stream (the schema, then the
    status "Trace generation failed: Process <id> not found"): that is the process not found
    (exit 2, ProcessNotFoundError), not a server failure or a lost connection."""
    from micromegas_perfetto.errors import ProcessNotFoundError
    from micromegas_perfetto import write_process_trace
    pid = pid_of(small_lake)

    class NotInRange(LakeFlightServer):
        def trace_chunks(self, process_id, *args):  # the generation's lookup of the process finds nothing
            raise _FailsMidStream(flight.FlightInternalError(f"Trace generation failed: Process {process_id} not found"),
                                  pa.table({"chunk_id": pa.array([], pa.int32()), "chunk_data": pa.array([], pa.binary())}))
    s = NotInRange(small_lake[0])
    try:
        result = run_cli("write_perfetto", pid, "--uri", s.uri, "--server-side", "--filename", tmp_path / "t.perfetto")
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        assert f"process {pid} not found by the perfetto_trace_chunks of analytics server {s.uri}" in result.stderr
        with pytest.raises(ProcessNotFoundError, match="Trace generation failed"):
            write_process_trace(FlightSQLClient(s.uri), pid, None, None, tmp_path / "t.perfetto", server_side=True)
        assert list(tmp_path.iterdir()) == []
    finally:
        s.shutdown()


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl to make a certificate authority")
def test_tls_server_with_a_private_certificate_authority(small_lake, tmp_path):
    """grpc+tls:// to a server whose certificate a private CA signed: refused in one line
    (certificate verify failed), and trusted with GRPC_DEFAULT_SSL_ROOTS_FILE_PATH (what
    docs/flightsql.md tells), giving the lake's bytes."""
    lake, _ = small_lake
    pid = pid_of(small_lake)

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost")
    (tmp_path / "ext").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "srv.pem", "-days", "2", "-extfile", "ext")
    s = LakeFlightServer(lake, tls=((tmp_path / "srv.pem").read_bytes(), (tmp_path / "srv.key").read_bytes()))
    out = tmp_path / "out"
    out.mkdir()
    try:
        assert s.uri.startswith("grpc+tls://localhost:")
        refused = write(out / "t.perfetto", pid, "--uri", s.uri, env={"GRPC_VERBOSITY": None})
        assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert f"cannot reach the analytics server at {s.uri}" in refused.stderr
        assert "certificate verify failed" in refused.stderr and list(out.iterdir()) == []
        https = s.uri.replace("grpc+tls://", "https://")
        trusted = write(out / "t.perfetto", pid, "--uri", https,
                        env={"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(tmp_path / "ca.pem")})
        assert trusted.returncode == 0, trusted.stderr
        assert write(out / "l.perfetto", pid, "--lake", lake).returncode == 0
        assert (out / "t.perfetto").read_bytes() == (out / "l.perfetto").read_bytes()
    finally:
        s.shutdown()


@pytest.mark.parametrize("id_type, data_type", [(pa.int64(), pa.large_binary()), (pa.int32(), pa.binary_view()),
                                                (pa.uint16(), pa.binary())])
def test_trace_chunks_of_other_arrow_types_give_the_same_trace(small_lake, server, tmp_path, id_type, data_type):
    """chunk_id of any integer type and chunk_data as large_binary or binary_view (DataFusion's
    view types; binary_view was 'lacks a chunk_data column of the expected type')."""
    from micromegas_perfetto import write_process_trace
    pid = pid_of(small_lake)
    write_process_trace(FlightSQLClient(server.uri), pid, None, None, tmp_path / "a.perfetto", server_side=True)
    plain = LakeFlightServer.trace_chunks

    class Typed(LakeFlightServer):
        def trace_chunks(self, *args):
            table = plain(self, *args)
            return pa.table({"chunk_id": table.column("chunk_id").cast(id_type),
                             "chunk_data": table.column("chunk_data").cast(data_type)})
    s = Typed(small_lake[0])
    try:
        write_process_trace(FlightSQLClient(s.uri), pid, None, None, tmp_path / "b.perfetto", server_side=True)
    finally:
        s.shutdown()
    assert (tmp_path / "a.perfetto").read_bytes() == (tmp_path / "b.perfetto").read_bytes()


@pytest.mark.parametrize("fault", ["gap", "repeat"])
def test_a_refused_chunk_result_is_closed_at_once_not_when_the_exception_goes(small_lake, server, tmp_path, fault):
    """A chunk-id fault raised to an API caller who keeps the exception (a notebook's last
    traceback) left the stream open and its read-ahead thread blocked: the server could not
    even shut down. Both end when the error is raised."""
    import threading
    from micromegas_perfetto import write_process_trace
    from micromegas_perfetto.errors import SourceError
    server.chunk_fault = fault
    server.chunk_bytes = 64  # thousands of chunks: more than the read-ahead holds
    before = read_ahead_threads()
    with pytest.raises(SourceError) as kept:
        write_process_trace(FlightSQLClient(server.uri), pid_of(small_lake), None, None, tmp_path / "t.perfetto",
                            server_side=True)
    assert kept.value is not None
    assert not read_ahead_threads() - before
    done = threading.Thread(target=server.shutdown, daemon=True)
    done.start()
    done.join(20)
    assert not done.is_alive(), "the server is still streaming the refused result"


@pytest.fixture(scope="module")
def eight_thread_lake(tmp_path_factory):
    from micromegas_perfetto.sample_lake import write_sample_lake
    folder = tmp_path_factory.mktemp("eight-threads")
    processes = write_sample_lake(folder, seed=11, threads=8, spans_per_thread=200, async_spans=100)
    return folder, processes


def test_thread_queries_run_ahead_bounded_and_in_order(eight_thread_lake):
    """While a thread's spans are written, the next THREAD_QUERIES_AHEAD threads' queries are
    already at the server (a server's time to start each result overlapped; it was one at a
    time: 40 threads from a server taking 20 ms a query, 1.3 s, now 0.55 s), never more, and
    each thread still gets its own rows, in thread order."""
    from micromegas_perfetto import flightsql
    from micromegas_perfetto.flightsql import FlightSQLSource
    lake, processes = eight_thread_lake
    pid = processes[0]["process_id"]
    local = LocalLake(lake)
    begin, end = local.time_range(local.process_info(pid))
    threads = local.threads(pid, begin, end)
    assert len(threads) == 8
    server = LakeFlightServer(lake)
    server.delay = 0.1
    try:
        source = FlightSQLSource(server.uri)

        def spans_queries():
            return [c["sql"] for c in server.calls if "view_instance('thread_spans'" in c["sql"]]
        seen = []
        for thread, reader in source.iter_thread_spans(threads, begin, end):
            time.sleep(0.3)  # the queries sent ahead are all at the server by now
            # (the queries sent ahead, each from a thread of its own, reach the server in any order)
            sent = {next(t.stream_id for t in threads if t.stream_id in q) for q in spans_queries()}
            ahead = threads[:len(seen) + 1 + flightsql.THREAD_QUERIES_AHEAD]
            assert sent == {t.stream_id for t in ahead} and len(spans_queries()) == len(ahead), sent
            got = reader.read_all()
            want = local.thread_spans(thread.stream_id, begin, end).read_all()
            assert got.num_rows == want.num_rows > 0
            assert got.column("begin").cast(pa.int64()) == want.column("begin").cast(pa.int64())
            seen.append(thread.stream_id)
        assert seen == [t.stream_id for t in threads]
    finally:
        server.shutdown()


def test_thread_queries_sent_ahead_of_a_generation_that_stops_leave_no_thread(eight_thread_lake):
    import gc
    import threading
    from micromegas_perfetto.flightsql import FlightSQLSource
    lake, processes = eight_thread_lake
    pid = processes[0]["process_id"]
    local = LocalLake(lake)
    begin, end = local.time_range(local.process_info(pid))
    threads = local.threads(pid, begin, end)
    server = LakeFlightServer(lake)
    server.delay = 0.2
    try:
        spans = FlightSQLSource(server.uri).iter_thread_spans(threads, begin, end)
        next(spans)  # three queries go out ahead, still waiting for the server
        spans.close()
        gc.collect()
        assert not [t for t in threading.enumerate() if t.name == "micromegas-prefetch" and t.is_alive()]
    finally:
        server.shutdown()
