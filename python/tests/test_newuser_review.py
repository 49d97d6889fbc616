"""Messages a new user met on the way (a review of the README's commands as a first-time user):
each names what the user gave and why it cannot be done."""
from conftest import run_cli
from micromegas_perfetto import validate, write_process_trace
from micromegas_perfetto.errors import InvalidTimeError

CLEAN = {"MICROMEGAS_LAKE": None, "MICROMEGAS_ANALYTICS_URI": None, "MICROMEGAS_PROFILE": None,
         "MICROMEGAS_TOKEN": None}


def test_server_side_with_the_lake_variable_names_the_variable(small_lake, tmp_path):
    """$MICROMEGAS_LAKE comes before --uri: --server-side with --uri then said it needed
    "a server (--uri or --profile)", which the user had given; the line names the variable."""
    lake, processes = small_lake
    out = tmp_path / "t.perfetto"
    done = run_cli("write_perfetto", processes[0]["process_id"], "--uri", "grpc://127.0.0.1:9", "--server-side",
                   "--filename", out, "--quiet", env={**CLEAN, "MICROMEGAS_LAKE": str(lake)})
    assert done.returncode == 2, done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "$MICROMEGAS_LAKE" in error[0] and "unset it" in error[0], done.stderr
    assert not out.exists()


def test_begin_before_1970_is_said_as_the_time_given(small_lake, tmp_path):
    """`--begin 1969-12-31T00:00:00Z` said "begin -86400000000000 ns is before 1970": the user's
    time, in nanoseconds they never typed."""
    lake, processes = small_lake
    done = run_cli("write_perfetto", processes[0]["process_id"], "--lake", lake, "--begin", "1969-12-31T00:00:00Z",
                   "--filename", tmp_path / "t.perfetto", "--quiet", env=CLEAN)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == ("error: begin (1969-12-31T00:00:00.000000000Z) is before 1970-01-01T00:00:00Z: "
                                   "a trace range cannot begin before the Unix epoch"), done.stderr
    try:
        write_process_trace(lake, processes[0]["process_id"], -1, None, tmp_path / "u.perfetto")
    except InvalidTimeError as e:
        assert str(e).startswith("begin (1969-12-31T23:59:59.999999999Z) is before 1970"), e
    else:
        raise AssertionError("a begin before 1970 was accepted")
    assert not (tmp_path / "t.perfetto").exists() and not (tmp_path / "u.perfetto").exists()


def test_validate_summary_counts_in_the_singular(small_lake, tmp_path):
    """A one-slice trace was '1 packets, 1 slices on 1 tracks ... 1 problems'."""
    from micromegas_perfetto import PerfettoWriter
    with PerfettoWriter("34d7c06d-3163-4111-863e-c5fc09d22d51") as w:
        w.emit_process_descriptor("app")
        w.emit_thread_descriptor("0b4c7a9e-0000-0000-0000-000000000000", 1, "main-1")
        w.set_current_thread("0b4c7a9e-0000-0000-0000-000000000000")
        w.emit_span(1000, 9000, "frame", "game", "src/game.rs", 10)
        data = w.getvalue()
    summary = validate(data).summary()
    assert "1 slice on 1 track," in summary and "0 instants" in summary and "0 counter values" in summary, summary
    cut = validate(data[:-3]).summary()  # a cut packet: one problem
    assert "1 problem," in cut and "0 slices shown with a wrong duration" in cut, cut
    assert "bytes, 4 packets," in summary, summary  # plural for more than one


def test_list_processes_says_when_the_limit_cut_the_list(small_lake):
    """`--limit` (default 100) cut the list silently: a lake or server with more processes
    showed the first 100 as if they were all."""
    lake, processes = small_lake
    assert len(processes) == 3
    cut = run_cli("list-processes", "--lake", lake, "--ids", "--limit", "2", env=CLEAN)
    assert cut.returncode == 0 and len(cut.stdout.split()) == 2, cut.stderr
    assert "note: more processes than --limit 2: only the first 2 are listed" in cut.stderr, cut.stderr
    one = run_cli("list-processes", "--lake", lake, "--ids", "--limit", "1", env=CLEAN)
    assert one.stdout.split() == cut.stdout.split()[:1] and "only the first is listed" in one.stderr, one.stderr
    whole = run_cli("list-processes", "--lake", lake, "--ids", "--limit", "3", env=CLEAN)
    assert whole.returncode == 0 and len(whole.stdout.split()) == 3 and whole.stderr == "", whole.stderr
    biggest = run_cli("list-processes", "--lake", lake, "--ids", "--limit", str(2 ** 63 - 1), env=CLEAN)
    assert biggest.returncode == 0 and len(biggest.stdout.split()) == 3 and biggest.stderr == "", biggest.stderr


def test_validate_quiet_prints_nothing_for_a_clean_trace(small_lake, tmp_path):
    """`--validate --quiet` printed the 'validated ...' report line anyway; with --quiet a
    clean trace is said by the exit status alone (without --quiet the line stays)."""
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    quiet = run_cli("write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "q.perfetto", "--validate",
                    "--quiet", env=CLEAN)
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == "", (quiet.stdout, quiet.stderr)
    loud = run_cli("write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "l.perfetto", "--validate",
                   env=CLEAN)
    assert loud.returncode == 0 and f"validated {tmp_path / 'l.perfetto'}: " in loud.stdout, loud.stdout
    assert (tmp_path / "q.perfetto").read_bytes() == (tmp_path / "l.perfetto").read_bytes()


def test_generate_trace_chunks_takes_0_as_the_default_chunk_size(small_lake):
    """write_process_trace took chunk_size=0 as its default; generate_trace_chunks refused it
    ('must be an integer in [1, ...]'). Both now read 0 as the default, 1 MiB."""
    from micromegas_perfetto import generate_trace_chunks
    from micromegas_perfetto.errors import ArgumentError
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    zero = list(generate_trace_chunks(lake, pid, chunk_size=0))
    default = list(generate_trace_chunks(lake, pid))
    mib = list(generate_trace_chunks(lake, pid, chunk_size=1 << 20))
    assert zero == default == mib and len(zero) >= 1
    try:
        next(generate_trace_chunks(lake, pid, chunk_size=-1))
    except ArgumentError as e:
        assert "[0, " in str(e), e
    else:
        raise AssertionError("chunk_size=-1 was accepted")


def test_writing_a_trace_again_keeps_the_file_mode(small_lake, tmp_path):
    """A trace made group-readable (or read-only) came back 0644 when written again: the
    atomic replace links a new file. Its permission bits are now the replaced file's."""
    import os
    import stat
    lake, processes = small_lake
    out = tmp_path / "t.perfetto"
    for mode in (0o640, 0o444):
        out.write_bytes(b"old")
        os.chmod(out, mode)
        done = run_cli("write_perfetto", processes[0]["process_id"], "--lake", lake, "--filename", out, "--quiet",
                       env=CLEAN)
        assert done.returncode == 0, done.stderr
        assert stat.S_IMODE(out.stat().st_mode) == mode and out.read_bytes()[:3] != b"old"
    fresh = tmp_path / "new.perfetto"
    write_process_trace(lake, processes[0]["process_id"], None, None, fresh)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


def test_a_braced_or_urn_process_id_for_a_server_gets_the_plain_id(tmp_path):
    """'{uuid}' or 'urn:uuid:uuid' (as copied from a Windows tool or a log) was only 'not a
    UUID' on a server; the lake already suggested the id. No query is sent for it."""
    plain = "1b7e0000-0000-0000-0000-000000000001"
    for given in ("{" + plain + "}", "urn:uuid:" + plain, " " + plain):
        done = run_cli("write_perfetto", given, "--uri", "grpc://127.0.0.1:9", "--flightsql",
                       "--filename", tmp_path / "t.perfetto", env=CLEAN)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == f"error: process id {given!r} is not a UUID (did you mean {plain}?)", done.stderr
    done = run_cli("write_perfetto", "nope", "--uri", "grpc://127.0.0.1:9", "--flightsql", env=CLEAN)
    assert done.stderr.strip() == "error: process id 'nope' is not a UUID", done.stderr
    assert not (tmp_path / "t.perfetto").exists()


def test_sample_lake_line_names_the_configured_default_profile(tmp_path):
    """A user of the official client with a `default_profile` in ~/.micromegas/config.json ran
    a plain `write_perfetto PID` and got the sample lake (the source rule asks for an option or
    a variable), with no word of the profile they most likely meant; the line now names it."""
    home = tmp_path / "home"
    (home / ".micromegas").mkdir(parents=True)
    env = {**CLEAN, "HOME": str(home), "MICROMEGAS_CACHE": str(tmp_path / "cache")}
    plain = run_cli("list-processes", "--ids", env=env)
    assert plain.returncode == 0 and "default_profile" not in plain.stderr, plain.stderr
    (home / ".micromegas" / "config.json").write_text(
        '{"default_profile": "prod eu", "profiles": {"prod eu": {"uri": "grpc://127.0.0.1:9"}}}')
    named = run_cli("list-processes", "--ids", env=env)
    assert named.returncode == 0 and named.stdout == plain.stdout, named.stderr
    line = [x for x in named.stderr.splitlines() if x.startswith("reading the built-in sample lake")]
    assert len(line) == 1 and line[0].endswith("default_profile is used only when asked: --profile 'prod eu')"), \
        named.stderr
    for broken in ("{not json", '["a list"]', '{"default_profile": 3}'):
        (home / ".micromegas" / "config.json").write_text(broken)
        done = run_cli("list-processes", "--ids", env=env)
        assert done.returncode == 0 and "default_profile" not in done.stderr, (broken, done.stderr)
