"""Which source `write_perfetto` and `list-processes` read, case by case (environment controlled),
and a client object with micromegas' `query_stream` as a source of the Python API."""
import socket
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.flight as flight
import pytest

from conftest import run_cli
from flight_fixture import LakeFlightServer
from micromegas_perfetto import generate_trace_chunks, write_process_trace
from micromegas_perfetto.flightsql import statement_ticket

CLEAN = {"MICROMEGAS_LAKE": None, "MICROMEGAS_ANALYTICS_URI": None, "MICROMEGAS_PROFILE": None,
         "MICROMEGAS_TOKEN": None}
BEGIN, END = "2023-11-14T22:13:20.01Z", "2023-11-14T22:13:20.02Z"


@pytest.fixture
def server(small_lake):
    s = LakeFlightServer(small_lake[0])
    yield s
    s.shutdown()


@pytest.fixture
def reference(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    out = tmp_path / "reference.perfetto"
    done = run_cli("write_perfetto", pid, "--lake", lake, "--begin", BEGIN, "--end", END, "--filename", out,
                   "--quiet", env=CLEAN)
    assert done.returncode == 0, done.stderr
    return pid, out.read_bytes()


def _write(tmp_path, pid, *args, env, name="t.perfetto"):
    out = tmp_path / name
    done = run_cli("write_perfetto", pid, "--begin", BEGIN, "--end", END, "--filename", out, "--quiet", *args,
                   env={**CLEAN, **env})
    return done, (out.read_bytes() if out.exists() else None)


def test_lake_option(small_lake, server, reference, tmp_path):
    pid, expected = reference
    done, data = _write(tmp_path, pid, "--lake", small_lake[0], env={})
    assert done.returncode == 0 and data == expected and not server.calls


def test_lake_environment(small_lake, server, reference, tmp_path):
    pid, expected = reference
    done, data = _write(tmp_path, pid, env={"MICROMEGAS_LAKE": str(small_lake[0])})
    assert done.returncode == 0 and data == expected and not server.calls


def test_lake_environment_before_a_server(small_lake, server, reference, tmp_path):
    """$MICROMEGAS_LAKE comes first in the rule; the ignored --uri is said on stderr."""
    pid, expected = reference
    done, data = _write(tmp_path, pid, "--uri", server.uri, env={"MICROMEGAS_LAKE": str(small_lake[0])})
    assert done.returncode == 0 and data == expected and not server.calls
    assert "MICROMEGAS_LAKE" in done.stderr


def test_uri_option(server, reference, tmp_path):
    pid, expected = reference
    done, data = _write(tmp_path, pid, "--uri", server.uri, env={})
    assert done.returncode == 0, done.stderr
    assert data == expected and server.calls


def test_uri_environment(server, reference, tmp_path):
    pid, expected = reference
    done, data = _write(tmp_path, pid, env={"MICROMEGAS_ANALYTICS_URI": server.uri})
    assert done.returncode == 0, done.stderr
    assert data == expected and server.calls


def test_token_goes_to_the_server(small_lake, reference, tmp_path):
    pid, expected = reference
    guarded = LakeFlightServer(small_lake[0], token="t0k")
    try:
        done, data = _write(tmp_path, pid, "--uri", guarded.uri, env={"MICROMEGAS_TOKEN": "t0k"})
        assert done.returncode == 0 and data == expected
        done, data = _write(tmp_path, pid, "--uri", guarded.uri, "--token", "bad", env={}, name="refused.perfetto")
        assert done.returncode == 1 and data is None and "authentication refused" in done.stderr
    finally:
        guarded.shutdown()


def test_profile_without_the_official_client(server, reference, tmp_path):
    try:  # the suite's own environment has no official client
        import micromegas
        if callable(getattr(micromegas, "connect_with_profile", None)):
            pytest.skip("the official client is installed here (its profiles are tested in a venv)")
    except ImportError:
        pass
    pid, _ = reference
    for args, env in ((["--profile", "prod"], {}), ([], {"MICROMEGAS_PROFILE": "prod"})):
        done, data = _write(tmp_path, pid, *args, env=env)
        assert done.returncode == 2 and data is None, done.stderr
        assert "pip install micromegas" in done.stderr and "Traceback" not in done.stderr


def test_lake_and_uri_together_is_a_mistake(small_lake, server, reference, tmp_path):
    pid, _ = reference
    done, data = _write(tmp_path, pid, "--lake", small_lake[0], "--uri", server.uri, env={})
    assert done.returncode == 2 and data is None and "choose one" in done.stderr


def test_nothing_given_reads_the_sample_lake(tmp_path):
    cache = tmp_path / "cache"
    listed = run_cli("list-processes", "--ids", env={**CLEAN, "MICROMEGAS_CACHE": str(cache)})
    assert listed.returncode == 0, listed.stderr
    assert "built-in sample lake" in listed.stderr and "--uri" in listed.stderr
    pid = listed.stdout.split()[0]
    done = run_cli("write_perfetto", pid, "--spans", "thread", "--quiet", "--filename", tmp_path / "s.perfetto",
                   env={**CLEAN, "MICROMEGAS_CACHE": str(cache)})
    assert done.returncode == 0 and "built-in sample lake" in done.stderr
    assert (tmp_path / "s.perfetto").stat().st_size > 0
    # Where the README says it is: micromegas/ under $MICROMEGAS_CACHE (it said $MICROMEGAS_CACHE
    # itself), as under $XDG_CACHE_HOME or ~/.cache.
    assert [p.name for p in cache.iterdir()] == ["micromegas"] and (cache / "micromegas").is_dir()
    assert str(cache / "micromegas") in listed.stderr
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "`micromegas/` under `$MICROMEGAS_CACHE`, else `$XDG_CACHE_HOME`, else `~/.cache`" in \
        " ".join(readme.split())


def _default_port_free() -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 50051))
        except OSError:
            return False
    return True


def test_a_token_alone_asks_for_the_server(small_lake, reference, tmp_path):
    """`--token` with no lake and no address is a server's credential: the server at the
    default address is read (it read the built-in sample lake without a word about the
    token); with --lake it is a usage error; $MICROMEGAS_TOKEN alone, often exported for every
    shell, still reads the sample lake, and its line says the token is not used."""
    pid, expected = reference
    if not _default_port_free():
        pytest.skip("grpc://localhost:50051 is in use on this machine")
    guarded = LakeFlightServer(small_lake[0], token="s3cret", port=50051)
    try:
        done, data = _write(tmp_path, pid, "--token", "s3cret", env={})
        assert done.returncode == 0, done.stderr
        assert data == expected and guarded.calls and "sample lake" not in done.stderr
        listed = run_cli("list-processes", "--ids", "--token", "s3cret", env=CLEAN)
        assert listed.returncode == 0 and pid in listed.stdout.split(), listed.stderr
        assert "sample lake" not in listed.stderr
    finally:
        guarded.shutdown()
    both, data = _write(tmp_path, pid, "--lake", small_lake[0], "--token", "s3cret", env={}, name="both.perfetto")
    assert both.returncode == 2 and data is None
    assert "--token" in both.stderr and "choose one" in both.stderr
    cache = tmp_path / "cache"
    listed = run_cli("list-processes", "--ids", env={**CLEAN, "MICROMEGAS_TOKEN": "s3cret",
                                                     "MICROMEGAS_CACHE": str(cache)})
    assert listed.returncode == 0, listed.stderr
    assert "built-in sample lake" in listed.stderr and "$MICROMEGAS_TOKEN is for a server, so not used" in listed.stderr


def test_list_processes_from_a_server(small_lake, server):
    lake, processes = small_lake
    done = run_cli("list-processes", "--uri", server.uri, "--limit", "2", env=CLEAN)
    assert done.returncode == 0, done.stderr
    rows = done.stdout.strip().splitlines()
    assert len(rows) == 2
    sql = [c["sql"] for c in server.calls if "FROM processes" in c["sql"]]
    # One more than --limit tells whether the list was cut (the small lake has 3 processes).
    assert sql and "ORDER BY start_time DESC" in sql[0] and "LIMIT 3" in sql[0]
    assert "more processes than --limit 2" in done.stderr, done.stderr
    starts = sorted(((p["start_time"], p["process_id"]) for p in processes if p.get("start_time")), reverse=True)
    if starts:
        assert rows[0].split()[0] == starts[0][1]


class QueryStreamClient:
    """A stand-in for micromegas' FlightSQLClient: only `query_stream(sql, begin, end)`."""

    def __init__(self, uri):
        self.flight = flight.FlightClient(uri)
        self.ranges = []

    def query_stream(self, sql, begin=None, end=None):
        assert isinstance(begin, datetime) and begin.tzinfo is not None
        assert isinstance(end, datetime) and end.tzinfo is not None
        self.ranges.append((begin, end))
        headers = [(b"query_range_begin", begin.isoformat().encode()), (b"query_range_end", end.isoformat().encode()),
                   (b"preserve_dictionary", b"true")]
        reader = self.flight.do_get(flight.Ticket(statement_ticket(sql)), flight.FlightCallOptions(headers=headers))
        for chunk in reader:
            yield chunk.data


def test_a_query_stream_client_is_a_source(server, reference, tmp_path):
    pid, expected = reference
    client = QueryStreamClient(server.uri)
    begin = datetime(2023, 11, 14, 22, 13, 20, 10000, tzinfo=timezone.utc)
    end = datetime(2023, 11, 14, 22, 13, 20, 20000, tzinfo=timezone.utc)
    summary = write_process_trace(client, pid, begin, end, tmp_path / "c.perfetto")
    assert (tmp_path / "c.perfetto").read_bytes() == expected
    assert summary.thread_spans > 0 and summary.filename == str(tmp_path / "c.perfetto")
    # The range reaches the client's headers (rounded outwards to microseconds).
    assert any(b <= begin and e >= end for b, e in client.ranges)
    chunks = list(generate_trace_chunks(client, pid, BEGIN, END, chunk_size=10_000))
    assert [i for i, _ in chunks] == list(range(len(chunks)))
    assert b"".join(data for _, data in chunks) == expected
    # Server-side generation through the same client: the server's perfetto_trace_chunks.
    server_side = write_process_trace(client, pid, begin, end, tmp_path / "s.perfetto", server_side=True)
    assert server_side.chunks and (tmp_path / "s.perfetto").stat().st_size > 0
    assert any("perfetto_trace_chunks" in c["sql"] for c in server.calls)


def test_official_signature_positional(small_lake, reference, tmp_path):
    """The official client's positional order: (client, process_id, begin, end, trace_filepath, span_types)."""
    pid, _ = reference
    summary = write_process_trace(str(small_lake[0]), pid, BEGIN, END, tmp_path / "t.perfetto", "thread")
    assert summary.async_spans == 0 and summary.thread_spans > 0
    with pytest.raises(TypeError):
        write_process_trace(str(small_lake[0]), pid, BEGIN, END, tmp_path / "t.perfetto", "thread", "lanes")


def test_a_query_stream_clients_failures_read_as_this_packages_own(small_lake, tmp_path):
    """A refused login or an unreachable server through the user's client is the same
    SourceError this package's own client gives (it said only "the process query failed
    through micromegas client ..."); no file is left."""
    from micromegas_perfetto.errors import SourceError
    from micromegas_perfetto.flightsql import ClientQueries
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    guarded = LakeFlightServer(lake, token="s3cret")
    try:
        with pytest.raises(SourceError, match=r"^authentication refused by the analytics server of micromegas "
                                              r"client .*QueryStreamClient \(process query\)"):
            write_process_trace(QueryStreamClient(guarded.uri), pid, None, None, tmp_path / "t.perfetto")
    finally:
        guarded.shutdown()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"grpc://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(SourceError, match=r"^cannot reach the analytics server of micromegas client "):
        write_process_trace(QueryStreamClient(closed), pid, None, None, tmp_path / "t.perfetto")
    # Told the server's address (the command line is), the message names it.
    queries = ClientQueries(QueryStreamClient(closed), closed)
    with pytest.raises(SourceError, match=f"^cannot reach the analytics server at {closed} \\(process query\\)"):
        queries.read_all("SELECT 1", 0, 1, kind="process")
    assert list(tmp_path.iterdir()) == []


def test_a_token_with_a_profile(small_lake, reference, tmp_path):
    """A token selects this package's client. `--profile` with one is a usage error naming
    both (it said the official client was missing, even where it is installed), and a
    $MICROMEGAS_PROFILE left in the environment does not stop --uri --token (it did)."""
    pid, expected = reference
    guarded = LakeFlightServer(small_lake[0], token="s3cret")
    try:
        for args, env in ((["--profile", "prod", "--token", "s3cret"], {}),
                          (["--profile", "prod", "--uri", guarded.uri], {"MICROMEGAS_TOKEN": "s3cret"})):
            done, data = _write(tmp_path, pid, *args, env=env)
            assert done.returncode == 2 and data is None, done.stderr
            which = "--token" if "--token" in args else "$MICROMEGAS_TOKEN"
            assert done.stderr == (f"error: --profile logs in with the profile's own credentials and {which} is a "
                                   "bearer token for this package's client: give one of them\n"), done.stderr
        done, data = _write(tmp_path, pid, "--uri", guarded.uri, "--token", "s3cret", env={"MICROMEGAS_PROFILE": "prod"})
        assert done.returncode == 0 and data == expected, done.stderr
        assert guarded.calls and all(c["headers"]["authorization"] == "Bearer s3cret" for c in guarded.calls)
    finally:
        guarded.shutdown()


def test_list_processes_refuses_a_reversed_range(small_lake, server):
    """--begin after --end listed nothing and exited 0; it is the same mistake as for
    write_perfetto: exit 2, one line, nothing asked of the server."""
    for source in (["--lake", str(small_lake[0])], ["--uri", server.uri]):
        done = run_cli("list-processes", *source, "--begin", "2023-11-14T22:13:22Z", "--end", "2023-11-14T22:13:20Z",
                       env=CLEAN)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert done.stderr == ("error: begin (2023-11-14T22:13:22.000000000Z) is after end "
                               "(2023-11-14T22:13:20.000000000Z)\n"), done.stderr
    assert not server.calls


def test_a_query_stream_clients_mid_stream_status_is_the_servers_failure(small_lake, server, tmp_path):
    """A status the server sends after the first batches, through the user's client, is the
    server failing (it read 'connection lost'); an empty perfetto_trace_chunks result is an
    error, not an empty file."""
    import pyarrow as pa
    from micromegas_perfetto.errors import SourceError
    pid = small_lake[1][0]["process_id"]
    server.rows_per_batch = 100
    server.fault = (pa.ArrowInvalid("Execution error: bad partition"), "mid", "view_instance('async_events'")
    with pytest.raises(SourceError, match=r"^the async events query failed while its result was sent, through "
                                          r"micromegas client .*QueryStreamClient: Execution error: bad partition$"):
        write_process_trace(QueryStreamClient(server.uri), pid, BEGIN, END, tmp_path / "t.perfetto")
    server.fault = None
    server.trace_chunks = lambda *args: pa.table({"chunk_id": pa.array([], pa.int32()),
                                                  "chunk_data": pa.array([], pa.binary())})
    with pytest.raises(SourceError, match="returned no trace chunks for process"):
        write_process_trace(QueryStreamClient(server.uri), pid, BEGIN, END, tmp_path / "t.perfetto",
                            server_side=True)
    assert list(tmp_path.iterdir()) == []
