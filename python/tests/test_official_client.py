"""micromegas-perfetto beside micromegas' official client (PyPI `micromegas==0.32.0`).

Two fresh virtual environments, one per install order, each with the official client from
PyPI and this project's binary wheel (`make wheel`; $MICROMEGAS_PERFETTO_WHEEL), run with no
Swift toolchain on PATH. They check that neither package removes, replaces or shadows a file
of the other, that both command lines work, that the official client's objects (plain
`connect()` and a profile with an API key file) drive `write_process_trace` against the
FlightSQL fixture server with the same bytes as the lake, and that uninstalling either
package leaves the other working.
"""
import base64
import hashlib
import json
import socket
import textwrap
from pathlib import Path

import pytest

from conftest import run_cli
import official_venvs
from flight_fixture import LakeFlightServer
from official_venvs import OFFICIAL, WHEEL

OFFICIAL_SCRIPTS = ["micromegas-grants", "micromegas-groups", "micromegas-logout", "micromegas-query",
                    "micromegas-screens", "micromegas-setup-telemetry", "micromegas-views"]
# Within the served process's data (it ends 4.1 ms after its start): the server lists only the
# threads with a block in the range (the fixture's blocks honour the range headers, as
# micromegas' do), a lake every cpu stream, so a range past the data would differ by design.
BEGIN, END = "2023-11-14T22:13:20.001000000+00:00", "2023-11-14T22:13:20.003000000+00:00"

pytestmark = pytest.mark.skipif(not WHEEL, reason="needs $MICROMEGAS_PERFETTO_WHEEL (make test sets it)")


def _digest(path: Path) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()


def _assert_record_intact(rows) -> None:
    missing = [str(p) for p, _ in rows if not p.is_file()]
    changed = [str(p) for p, d in rows if p.is_file() and _digest(p) != d]
    assert not missing and not changed, f"missing {missing}, changed {changed}"


@pytest.fixture(scope="module")
def venvs():
    """{"client-first": Venv, "ours-first": Venv} with both packages installed in that order
    (prepared in the background from the start of the session: see official_venvs)."""
    return official_venvs.prepared()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A small lake, the fixture server on it (requiring a token), and the lake's reference trace."""
    from micromegas_perfetto.sample_lake import write_sample_lake
    lake = tmp_path_factory.mktemp("client-lake")
    processes = write_sample_lake(lake, seed=11, threads=3, spans_per_thread=800, async_spans=600)
    server = LakeFlightServer(lake, token="s3cret-key")
    pid = processes[0]["process_id"]
    reference = tmp_path_factory.mktemp("ref") / "lake.perfetto"
    done = run_cli("write_perfetto", pid, "--lake", lake, "--begin", BEGIN, "--end", END, "--filename", reference,
                   "--quiet")
    assert done.returncode == 0, done.stderr
    yield {"lake": lake, "server": server, "pid": pid, "reference": reference.read_bytes()}
    server.shutdown()


@pytest.mark.parametrize("order", ["client-first", "ours-first"])
def test_both_packages_intact_and_working(venvs, order):
    venv = venvs[order]
    _assert_record_intact(venv.record("micromegas"))
    _assert_record_intact(venv.record("micromegas_perfetto"))
    ours = {str(p.relative_to(venv.site())) for p, _ in venv.record("micromegas_perfetto")}
    assert {p for p in ours if p.startswith("micromegas/")} == {"micromegas/__main__.py"}
    venv.run(venv.python, "-c", "import micromegas, micromegas.flightsql.client, micromegas.auth; "
                                "assert callable(micromegas.connect) and callable(micromegas.connect_with_profile)")
    for script in OFFICIAL_SCRIPTS:
        venv.run(str(venv.path / "bin" / script), "--help")
    for command in ([venv.python, "-m", "micromegas", "write_perfetto", "--help"],
                    [venv.python, "-m", "micromegas_perfetto", "--help"],
                    [str(venv.path / "bin" / "micromegas-perfetto"), "--help"]):
        assert "write_perfetto" in venv.run(*command).stdout


@pytest.mark.parametrize("order", ["client-first", "ours-first"])
def test_official_connect_drives_write_process_trace(venvs, served, tmp_path, order):
    venv = venvs[order]
    out = tmp_path / "client.perfetto"
    script = textwrap.dedent(f"""
        from micromegas.auth import StaticTokenAuthProvider
        from micromegas.flightsql.client import FlightSQLClient
        from micromegas_perfetto import write_process_trace
        client = FlightSQLClient({served['server'].uri!r}, preserve_dictionary=True,
                                 auth_provider=StaticTokenAuthProvider("s3cret-key"))
        write_process_trace(client, {served['pid']!r}, {BEGIN!r}, {END!r}, {str(out)!r})
    """)
    venv.run(venv.python, "-c", script)
    assert out.read_bytes() == served["reference"]
    # micromegas.connect(uri, preserve_dictionary=True) is the one-liner of the README: it sends
    # no token, so this server (which requires one) refuses it with a clear error.
    refused = venv.run(venv.python, "-c", textwrap.dedent(f"""
        import micromegas
        from micromegas_perfetto import write_process_trace, errors
        try:
            write_process_trace(micromegas.connect({served['server'].uri!r}, preserve_dictionary=True),
                                {served['pid']!r}, None, None, {str(tmp_path / 'refused.perfetto')!r})
        except errors.SourceError as e:
            print("refused:", e)
    """))
    assert "refused:" in refused.stdout and not (tmp_path / "refused.perfetto").exists()


def test_plain_connect_one_liner(venvs, served, tmp_path):
    """`write_process_trace(micromegas.connect(uri, preserve_dictionary=True), pid, begin, end,
    path)` against a server without authentication gives the lake's bytes."""
    open_server = LakeFlightServer(served["lake"])
    try:
        venv = venvs["client-first"]
        out = tmp_path / "oneliner.perfetto"
        venv.run(venv.python, "-c", textwrap.dedent(f"""
            import datetime, micromegas
            from micromegas_perfetto import write_process_trace
            begin = datetime.datetime(2023, 11, 14, 22, 13, 20, 1000, tzinfo=datetime.timezone.utc)  # BEGIN, END
            end = datetime.datetime(2023, 11, 14, 22, 13, 20, 3000, tzinfo=datetime.timezone.utc)
            write_process_trace(micromegas.connect({open_server.uri!r}, preserve_dictionary=True),
                                {served['pid']!r}, begin, end, {str(out)!r})
        """))
        assert out.read_bytes() == served["reference"]
        headers = [c["headers"] for c in open_server.calls]
        assert headers and all("query_range_begin" in h and "query_range_end" in h for h in headers)
        assert all(h.get("preserve_dictionary") == "true" for h in headers)
        # The command line with --uri goes through the official client too (its x-client-type).
        open_server.calls.clear()
        by_cli = tmp_path / "cli.perfetto"
        venv.run(venv.python, "-m", "micromegas", "write_perfetto", served["pid"], "--uri", open_server.uri,
                 "--begin", BEGIN, "--end", END, "--filename", str(by_cli), "--quiet")
        assert by_cli.read_bytes() == served["reference"]
        assert open_server.calls and all(c["headers"].get("x-client-type") == "python" for c in open_server.calls)
        assert all(c["headers"].get("x-client-entrypoint") == "micromegas-perfetto" for c in open_server.calls)
    finally:
        open_server.shutdown()


def test_micromegas_own_write_process_trace_gives_the_micromegas_layouts_bytes(venvs, served, tmp_path):
    """micromegas' own `write_process_trace` (server-side, through the fixture server) and this
    package's, given the same pandas Timestamps from the client's `query()`, write the same
    bytes with async_layout="micromegas", as the README says (the fixture matched only this
    package's one-line perfetto_trace_chunks statement; micromegas sends it over several lines)."""
    open_server = LakeFlightServer(served["lake"])
    pid = served["pid"]
    try:
        venv = venvs["client-first"]
        venv.run(venv.python, "-c", textwrap.dedent(f"""
            import contextlib, io, micromegas, micromegas.perfetto
            from micromegas_perfetto import write_process_trace
            client = micromegas.connect({open_server.uri!r}, preserve_dictionary=True)
            row = client.query("SELECT start_time, end_time FROM processes WHERE process_id = '{pid}'").iloc[0]
            for spans in ("both", "thread", "async"):
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    micromegas.perfetto.write_process_trace(client, {pid!r}, row.start_time, row.end_time,
                                                            {str(tmp_path)!r} + f"/official-{{spans}}.perfetto", spans)
                write_process_trace(client, {pid!r}, row.start_time, row.end_time,
                                    {str(tmp_path)!r} + f"/ours-{{spans}}.perfetto", spans, async_layout="micromegas")
        """))
        for spans in ("both", "thread", "async"):
            official = (tmp_path / f"official-{spans}.perfetto").read_bytes()
            assert official and official == (tmp_path / f"ours-{spans}.perfetto").read_bytes(), spans
    finally:
        open_server.shutdown()


def test_pandas_timestamps_from_the_client_keep_their_nanoseconds(venvs, served, tmp_path):
    """A notebook's range: the official client's `query()` gives pandas Timestamps; passed as
    begin/end they keep their nanoseconds (they were cut to microseconds, dropping the spans
    that end in the range's last nanoseconds): the same bytes as the same range in ns."""
    open_server = LakeFlightServer(served["lake"])
    try:
        venv = venvs["client-first"]
        out = tmp_path / "pandas.perfetto"
        printed = venv.run(venv.python, "-c", textwrap.dedent(f"""
            import micromegas
            from micromegas_perfetto import write_process_trace
            client = micromegas.connect({open_server.uri!r}, preserve_dictionary=True)
            df = client.query("SELECT start_time, end_time FROM processes WHERE process_id = '{served['pid']}'")
            begin, end = df["start_time"][0], df["end_time"][0]
            assert type(begin).__name__ == "Timestamp" and end.nanosecond != 0, (begin, end)
            write_process_trace(client, {served['pid']!r}, begin, end, {str(out)!r})
            print(begin.value, end.value)
        """)).stdout.split()
        reference = tmp_path / "ns.perfetto"
        done = run_cli("write_perfetto", served["pid"], "--lake", served["lake"], "--begin", printed[0], "--end",
                       printed[1], "--filename", reference, "--quiet")
        assert done.returncode == 0, done.stderr
        assert out.read_bytes() == reference.read_bytes()
    finally:
        open_server.shutdown()


def test_cli_uses_the_users_profile(venvs, served, tmp_path):
    """`python -m micromegas write_perfetto PID --profile NAME`: the profile's URI and API key
    file (~/.micromegas/config.json) authenticate, through the official connect_with_profile."""
    venv = venvs["client-first"]
    # A home of its own: profiles left in the venvs' home would be read by the other tests'
    # commands through the official client ("no profile selected; pass --profile ...").
    home = tmp_path / "home"
    config = home / ".micromegas"
    config.mkdir(parents=True)
    key = config / "test.key"
    key.write_text("s3cret-key\n")
    wrong = config / "wrong.key"
    wrong.write_text("not-the-key\n")
    (config / "config.json").write_text(json.dumps({"profiles": {
        "test": {"uri": served["server"].uri, "api_key_file": str(key)},
        "wrong": {"uri": served["server"].uri, "api_key_file": str(wrong)}}}))
    out = tmp_path / "profile.perfetto"
    args = ["write_perfetto", served["pid"], "--begin", BEGIN, "--end", END, "--quiet"]
    own_home = {"HOME": str(home)}
    venv.run(venv.python, "-m", "micromegas", *args, "--profile", "test", "--filename", str(out), env=own_home)
    assert out.read_bytes() == served["reference"]
    by_env = tmp_path / "profile-env.perfetto"
    venv.run(venv.python, "-m", "micromegas_perfetto", *args, "--filename", str(by_env),
             env={**own_home, "MICROMEGAS_PROFILE": "test"})
    assert by_env.read_bytes() == served["reference"]
    refused = venv.run(venv.python, "-m", "micromegas", *args, "--profile", "wrong", "--filename",
                       str(tmp_path / "no.perfetto"), env=own_home, check=False)
    assert refused.returncode == 1, refused.stderr
    # One line, naming the profile's server, as with this package's own client (the official
    # client's middleware also printed the exception itself: two lines, the first unexplained).
    assert refused.stderr.startswith(f"error: authentication refused by {served['server'].uri} (process query)"), \
        refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "no.perfetto").exists()
    # --uri with the official client and no profile: connect_with_profile's defaults, the URI
    # from --uri; a token (here $MICROMEGAS_TOKEN) selects this package's own client instead.
    by_uri = tmp_path / "uri.perfetto"
    venv.run(venv.python, "-m", "micromegas", *args, "--uri", served["server"].uri, "--filename", str(by_uri),
             env={**own_home, "MICROMEGAS_TOKEN": "s3cret-key"})
    assert by_uri.read_bytes() == served["reference"]
    unknown = venv.run(venv.python, "-m", "micromegas", *args, "--profile", "nope", "--filename",
                       str(tmp_path / "no.perfetto"), env=own_home, check=False)
    assert unknown.returncode == 2 and "profile" in unknown.stderr and "Traceback" not in unknown.stderr
    # --uri alone still reads the config's default_profile (as micromegas' tools do): a broken one
    # failed with only the client's words, about a profile the user never named; the line says why.
    other = tmp_path / "other-home"
    (other / ".micromegas").mkdir(parents=True)
    (other / ".micromegas" / "config.json").write_text(json.dumps({"default_profile": "gone", "profiles": {
        "test": {"uri": served["server"].uri, "api_key_file": str(key)}}}))
    broken = venv.run(venv.python, "-m", "micromegas", *args, "--uri", served["server"].uri, "--filename",
                      str(tmp_path / "no.perfetto"), env={"HOME": str(other)}, check=False)
    assert broken.returncode == 2 and len(broken.stderr.strip().splitlines()) == 1, broken.stderr
    assert "'gone'" in broken.stderr and broken.stderr.rstrip().endswith(
        "; --uri connects with the default_profile of ~/.micromegas/config.json, as micromegas' tools do: fix it, "
        "or choose a profile with --profile"), broken.stderr
    named = venv.run(venv.python, "-m", "micromegas", *args, "--profile", "gone", "--filename",
                     str(tmp_path / "no.perfetto"), env={"HOME": str(other)}, check=False)
    assert named.returncode == 2 and "--uri connects" not in named.stderr, named.stderr
    # A profile and a token: two logins, a usage error saying so (it said the official client
    # was not installed).
    both = venv.run(venv.python, "-m", "micromegas", *args, "--profile", "test", "--token", "s3cret-key",
                    "--filename", str(tmp_path / "no.perfetto"), env=own_home, check=False)
    assert both.returncode == 2 and "give one of them" in both.stderr and "pip install" not in both.stderr, \
        both.stderr
    assert not (tmp_path / "no.perfetto").exists()


def test_cli_server_mistakes_through_the_official_client_are_one_line(venvs, served, tmp_path):
    """Through the official client, as through this package's own: an unreachable server is
    one line naming it (exit 1), an unusable URI a usage error (exit 2, nothing sent; it was a
    raw ArrowKeyError, exit 1), an unknown process names the server (exit 2)."""
    venv = venvs["client-first"]
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"grpc://127.0.0.1:{s.getsockname()[1]}"
    args = ["write_perfetto", served["pid"], "--quiet", "--filename", str(tmp_path / "no.perfetto")]
    home = {"HOME": str(tmp_path)}  # no ~/.micromegas/config.json (another test writes profiles there)
    down = venv.run(venv.python, "-m", "micromegas", *args, "--uri", closed, env=home, check=False)
    assert down.returncode == 1, down.stderr
    assert down.stderr.startswith(f"error: cannot reach the analytics server at {closed} (process query)"), \
        down.stderr
    assert len(down.stderr.strip().splitlines()) == 1, down.stderr
    for bad in (["--uri", "bogus://host:1"], []):
        env = dict(home) if bad else dict(home, MICROMEGAS_ANALYTICS_URI="bogus://host:1")
        wrong = venv.run(venv.python, "-m", "micromegas", *args, *bad, env=env, check=False)
        assert wrong.returncode == 2, wrong.stderr
        assert wrong.stderr == "error: unsupported analytics server URI 'bogus://host:1': use grpc://HOST:PORT or " \
                               "grpc+tls://HOST:PORT\n", wrong.stderr
    open_server = LakeFlightServer(served["lake"])
    try:
        unknown = venv.run(venv.python, "-m", "micromegas", "write_perfetto", "00000000-0000-4000-8000-000000000000",
                           "--uri", open_server.uri, "--quiet", "--filename", str(tmp_path / "no.perfetto"),
                           env=home, check=False)
        assert unknown.returncode == 2, unknown.stderr
        assert unknown.stderr == (f"error: process 00000000-0000-4000-8000-000000000000 not found on analytics "
                                  f"server {open_server.uri} (through micromegas' client)\n"), unknown.stderr
    finally:
        open_server.shutdown()
    assert not (tmp_path / "no.perfetto").exists()


def test_uninstalling_either_leaves_the_other_working(venvs, served, tmp_path):
    # The venvs are the module's: what is uninstalled here is installed again afterwards (in
    # the venv's order), so the tests that run after this one, in any order, find both.
    first, second = venvs["client-first"], venvs["ours-first"]
    try:
        _uninstall_each_and_use_the_other(first, second, served, tmp_path)
    finally:
        first.pip("install", WHEEL)
        second.pip("install", OFFICIAL)


def _uninstall_each_and_use_the_other(first, second, served, tmp_path):
    # Without ours, the official client is whole and works.
    official_files = first.record("micromegas")
    first.pip("uninstall", "-y", "micromegas-perfetto")
    _assert_record_intact(official_files)
    first.run(first.python, "-c", "import micromegas; micromegas.connect")
    first.run(str(first.path / "bin" / "micromegas-query"), "--help")
    gone = first.run(first.python, "-c", "import micromegas_perfetto", check=False)
    assert gone.returncode != 0

    # Without the official client, ours works, `python -m micromegas` included.
    our_files = second.record("micromegas_perfetto")
    second.pip("uninstall", "-y", "micromegas")
    _assert_record_intact(our_files)
    out = tmp_path / "alone.perfetto"
    second.run(second.python, "-m", "micromegas", "write_perfetto", served["pid"], "--lake", str(served["lake"]),
               "--begin", BEGIN, "--end", END, "--filename", str(out), "--quiet")
    assert out.read_bytes() == served["reference"]
    second.run(str(second.path / "bin" / "micromegas-perfetto"), "--help")
    # And the sample lake, as a new user without a server runs it.
    listed = second.run(second.python, "-m", "micromegas_perfetto", "list-processes", "--ids",
                        env={"MICROMEGAS_CACHE": str(tmp_path / "cache")})
    pid = listed.stdout.split()[0]
    second.run(second.python, "-m", "micromegas", "write_perfetto", pid, "--quiet", cwd=str(tmp_path),
               env={"MICROMEGAS_CACHE": str(tmp_path / "cache")})
    assert (tmp_path / f"{pid}.perfetto").stat().st_size > 0
