"""`python -m micromegas write_perfetto` on sample lakes, checked against the lake's rows."""
import os
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace

from conftest import run_cli
from trace_check import decode, expected_async, partial_overlaps, rebuild_slices, written_slices

from micromegas_perfetto.lake import LocalLake
from micromegas_perfetto.generation import generate_trace_chunks, write_process_trace


def lake_threads(lake, process_id):
    return LocalLake(lake).threads(process_id, 0, 0)


def expected_thread_spans(lake, stream_id, begin, end):
    table = ds.dataset(Path(lake) / "thread_spans" / f"{stream_id}.parquet").to_table(columns=["begin", "end", "name"])
    rows = zip(table.column("begin").cast("int64").to_pylist(), table.column("end").cast("int64").to_pylist(),
               table.column("name").cast("string").to_pylist())
    return [(b, e, n) for b, e, n in rows if b <= end and e >= begin]


def write(lake, process_id, out, *args):
    result = run_cli("write_perfetto", process_id, "--lake", lake, "--filename", out, "--quiet", *args)
    assert result.returncode == 0, result.stderr
    return decode(Path(out).read_bytes())


def check_trace(lake, process_id, trace, begin, end, spans="both"):
    """Thread spans exactly as in the lake; async spans (lanes) as the pairing rules give them."""
    threads = lake_threads(lake, process_id)
    assert trace.process.process.process_name == LocalLake(lake).process_info(process_id).exe
    assert sorted(trace.threads) == sorted(t.name for t in threads)  # every thread, whatever --spans
    thread_tracks = {trace.threads[t.name].uuid: t for t in threads}
    thread_events = [e for e in trace.events if e.track in thread_tracks]
    async_events = [e for e in trace.events if e.track not in thread_tracks]
    if spans == "async":
        assert thread_events == []
    else:
        written = written_slices(thread_events)
        for t in threads:
            mine = [(b, e, n) for track, b, e, n in written if track == trace.threads[t.name].uuid]
            assert mine == expected_thread_spans(lake, t.stream_id, begin, end), t.name
    if spans == "thread":
        assert async_events == [] and trace.named_tracks == []
        return
    assert all(d.name == "Async Operations" and d.parent_uuid == trace.process.uuid for d in trace.named_tracks)
    expected, counts = expected_async(lake, process_id, begin, end)
    slices = rebuild_slices(async_events)  # as Perfetto pairs them
    assert partial_overlaps(slices) == 0
    assert Counter((n, b, e) for _, b, e, n in slices) == Counter(expected)
    assert 1 < len(trace.named_tracks) < len(expected)
    return counts


def process_range(lake, process_id):
    info = LocalLake(lake).process_info(process_id)
    return info.start_ns, info.end_ns


@pytest.mark.parametrize("spans", ["both", "thread", "async"])
def test_whole_process(small_lake, tmp_path, spans):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    trace = write(lake, pid, tmp_path / "t.perfetto", "--spans", spans)
    begin, end = process_range(lake, pid)
    check_trace(lake, pid, trace, begin, end, spans)


def test_window_in_the_middle(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    start, stop = process_range(lake, pid)
    begin, end = start + (stop - start) * 3 // 10, start + (stop - start) * 6 // 10
    trace = write(lake, pid, tmp_path / "w.perfetto", "--begin", str(begin), "--end", str(end))
    counts = check_trace(lake, pid, trace, begin, end)
    assert counts.get("open_at_end", 0) > 10 and counts.get("begun_before_range", 0) > 10
    # ISO times give the same trace.
    from micromegas_perfetto.timeutil import ns_to_iso
    write(lake, pid, tmp_path / "iso.perfetto", "--begin", ns_to_iso(begin), "--end", ns_to_iso(end))
    assert (tmp_path / "iso.perfetto").read_bytes() == (tmp_path / "w.perfetto").read_bytes()


def test_micromegas_layout(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    trace = write(lake, pid, tmp_path / "m.perfetto", "--async-layout", "micromegas")
    begin, end = process_range(lake, pid)
    threads = {t.uuid for t in trace.threads.values()}
    written = written_slices([e for e in trace.events if e.track not in threads])
    assert len(trace.named_tracks) == 1 and {t for t, *_ in written} == {trace.named_tracks[0].uuid}
    # Only spans with both events in range and begin < end, in begin order.
    table = ds.dataset(Path(lake) / "async_events" / f"{pid}.parquet").to_table()
    events = {}
    for t, kind, sid, name in zip(table.column("time").cast("int64").to_pylist(),
                                  table.column("event_type").cast("string").to_pylist(),
                                  table.column("span_id").to_pylist(), table.column("name").cast("string").to_pylist()):
        events.setdefault(sid, {})[kind] = (t, name)
    expected = sorted((e["begin"][0], sid, e["begin"][1], e["end"][0]) for sid, e in events.items()
                      if "begin" in e and "end" in e and e["begin"][0] < e["end"][0])
    assert [(b, n, e) for _, b, e, n in written] == [(b, n, e) for b, _, n, e in expected]


def test_chunks_equal_the_file_and_parse_alone(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    summary = write_process_trace(lake, pid, None, None, tmp_path / "f.perfetto")
    chunks = list(generate_trace_chunks(lake, pid, chunk_size=50_000))
    assert [i for i, _ in chunks] == list(range(len(chunks))) and len(chunks) > 5
    assert b"".join(c for _, c in chunks) == (tmp_path / "f.perfetto").read_bytes()
    for _, c in chunks:
        assert len(Trace.FromString(c).packet) > 0
    assert summary.bytes == (tmp_path / "f.perfetto").stat().st_size
    assert summary.thread_spans == 4 * 3000 and summary.threads == 4
    expected, counts = expected_async(lake, pid, summary.begin_ns, summary.end_ns)
    assert summary.async_spans == len(expected)
    assert summary.matcher["async_open_at_end"] == counts.get("open_at_end", 0)


def test_default_filename_env_lake_and_summary(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[1]["process_id"]
    result = run_cli("write_perfetto", pid, env={"MICROMEGAS_LAKE": str(lake)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / f"{pid}.perfetto").is_file()
    assert "thread spans" in result.stdout and "async spans" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == [f"{pid}.perfetto"]  # no temporary left
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / f"{pid}.perfetto").stat().st_mode & 0o777 == 0o666 & ~umask


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("write_perfetto", "write_scenario", "sample-lake", "list-processes"):
        assert command in result.stdout
    result = run_cli("write_perfetto", "--help")
    assert "--async-layout" in result.stdout and "lanes" in result.stdout
    # The exit statuses the README gives, signals included (the help named only 130).
    assert "128 + signal when interrupted (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP" in " ".join(result.stdout.split())


def broken_lake(tmp_path, small_lake):
    lake, processes = small_lake
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("processes.parquet", "streams.parquet"):
        (broken / name).write_bytes((Path(lake) / name).read_bytes())
    (broken / "thread_spans").mkdir()
    threads = lake_threads(lake, processes[0]["process_id"])
    table = pq.read_table(Path(lake) / "thread_spans" / f"{threads[0].stream_id}.parquet")
    pq.write_table(table.drop_columns(["target"]), broken / "thread_spans" / f"{threads[0].stream_id}.parquet")
    return broken


@pytest.mark.parametrize("case, message", [
    ("unknown process", "not found"),
    ("unreadable time", "cannot read begin"),
    ("begin after end", "after end"),
    ("missing lake", "does not exist"),
    ("lake is a file", "is not a folder"),
    ("wrong columns", "missing column 'target'"),
    ("bad span types", "invalid choice"),
])
def test_user_mistakes_exit_2_with_one_line_and_no_file(small_lake, tmp_path, case, message):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    args = {
        "unknown process": ["00000000-0000-4000-8000-000000000000", "--lake", lake],
        "unreadable time": [pid, "--lake", lake, "--begin", "yesterday"],
        "begin after end": [pid, "--lake", lake, "--begin", "2023-11-14T22:13:21Z", "--end", "2023-11-14T22:13:20Z"],
        "missing lake": [pid, "--lake", tmp_path / "nowhere"],
        "lake is a file": [pid, "--lake", Path(lake) / "processes.parquet"],  # said "does not exist"
        "wrong columns": [pid, "--lake", broken_lake(tmp_path, small_lake)],
        "bad span types": [pid, "--lake", lake, "--spans", "some"],
    }[case]
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli("write_perfetto", *args, "--filename", out / "t.perfetto")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["write_perfetto"], "the following arguments are required: PROCESS_ID"),
    (["write_perfetto", "p", "--spans", "some"], "argument --spans: invalid choice: 'some'"),
    (["write_perfetto", "p", "--chunk-size", "0"], "argument --chunk-size: must be between 1"),
    (["write_perfetto", "p", "--open-timeout", "soon"], "argument --open-timeout: not a number"),
    (["write_perfetto", "p", "--bogus"], "unrecognized arguments: --bogus"),
    (["list-processes", "--limit", "-1"], "argument --limit: must be between 1"),
    (["sample-lake", "lake", "--threads", "0"], "argument --threads: must be between 1"),
    (["no-such-command"], "argument COMMAND: invalid choice: 'no-such-command'"),
])
def test_usage_mistakes_are_one_line_and_exit_2(tmp_path, args, message):
    """A mistake argparse finds is one `error:` line naming it and where the usage is shown,
    not the whole usage block; nothing is written."""
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--help" in result.stderr and result.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["empty", "a file", "under a file"])
def test_sample_lake_refuses_a_folder_it_cannot_use(tmp_path, case):
    """`sample-lake ""` once wrote a lake into the current folder, and a file as DIR gave a
    raw `[Errno 17]`: each is one line, exit 2, nothing written."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "file").write_text("x")
    folder = {"empty": "", "a file": "file", "under a file": "file/lake"}[case]
    result = run_cli("sample-lake", folder, "--quiet", "--threads", "1", "--spans-per-thread", "10",
                     "--async-spans", "10", cwd=work)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Errno" not in result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["file"]


def test_interrupted_write_leaves_no_file(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]

    class Interrupting(LocalLake):
        def thread_spans(self, stream_id, begin, end):
            reader = super().thread_spans(stream_id, begin, end)

            def batches():
                yield next(iter(reader))
                raise KeyboardInterrupt
            return pa.RecordBatchReader.from_batches(reader.schema, batches())

    with pytest.raises(KeyboardInterrupt):
        write_process_trace(Interrupting(lake), pid, None, None, tmp_path / "t.perfetto")
    assert list(tmp_path.iterdir()) == []


def test_failing_source_is_reported_as_itself(small_lake, tmp_path):
    lake, processes = small_lake

    class Failing(LocalLake):
        def async_events(self, process_id, begin, end):
            reader = super().async_events(process_id, begin, end)

            def batches():
                yield next(iter(reader))
                raise ConnectionError("connection lost")
            return pa.RecordBatchReader.from_batches(reader.schema, batches())

    with pytest.raises(ConnectionError, match="connection lost"):
        write_process_trace(Failing(lake), processes[0]["process_id"], None, None, tmp_path / "t.perfetto")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("string_type", ["string", "large_string", "string_view"])
def test_every_string_type_gives_the_same_trace(small_lake, tmp_path, string_type):
    """Dictionary (from the lake) or plain strings of any layout, exported by pyarrow itself."""
    lake, processes = small_lake
    target = getattr(pa, string_type)()

    class Hydrated(LocalLake):
        def thread_spans(self, stream_id, begin, end):
            return hydrate(super().thread_spans(stream_id, begin, end))

        def async_events(self, process_id, begin, end):
            return hydrate(super().async_events(process_id, begin, end))

    def hydrate(reader):
        def plain(t):  # pyarrow casts dictionaries to string_view only through string
            return pa.schema([f.with_type(t) if pa.types.is_dictionary(f.type) else f for f in reader.schema])
        schema = plain(target)
        return pa.RecordBatchReader.from_batches(schema, (b.cast(plain(pa.string())).cast(schema) for b in reader))

    pid = processes[0]["process_id"]
    write_process_trace(lake, pid, None, None, tmp_path / "dictionary.perfetto")
    write_process_trace(Hydrated(lake), pid, None, None, tmp_path / "plain.perfetto")
    assert (tmp_path / "plain.perfetto").read_bytes() == (tmp_path / "dictionary.perfetto").read_bytes()


def test_command_line_reads_a_lake_without_numpy_and_leaves_it_importable(small_lake, tmp_path):
    """The command line imports pyarrow without numpy when its own code reads the source (a
    lake here; pyarrow 16 and later run without it): same bytes as the library; numpy can
    still be imported afterwards, and the official client's path keeps it."""
    import subprocess
    import sys

    lake, processes = small_lake
    pid = processes[0]["process_id"]
    out = tmp_path / "cli.perfetto"
    script = (
        "import sys\n"
        "from micromegas_perfetto import _entry\n"
        "status = _entry.main(sys.argv[1:])\n"
        "hidden = 'numpy' not in sys.modules\n"
        "import numpy\n"
        "print(status, hidden, numpy.__name__)\n")
    result = subprocess.run([sys.executable, "-c", script, "write_perfetto", pid, "--lake", str(lake), "--filename",
                             str(out), "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "True" if int(pa.__version__.split(".")[0]) >= 16 else "False", "numpy"]
    library = tmp_path / "library.perfetto"
    write_process_trace(lake, pid, None, None, library)
    assert out.read_bytes() == library.read_bytes()

    from micromegas_perfetto import cli
    args = cli.build_parser().parse_args(["write_perfetto", pid, "--uri", "grpc://127.0.0.1:1"])
    official = cli._official_client() is not None
    assert cli._reads_with_own_code(args) is (not official or bool(os.environ.get("MICROMEGAS_TOKEN")))
    args = cli.build_parser().parse_args(["write_perfetto", pid, "--uri", "grpc://127.0.0.1:1", "--token", "t"])
    assert cli._reads_with_own_code(args)


def test_readme_synopsis_lists_every_write_perfetto_option():
    """The README's `write_perfetto PROCESS_ID [...]` synopsis names every option the command
    takes (it lacked --flightsql and --validate), and no option it does not take."""
    import re
    from micromegas_perfetto.cli import build_parser
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    synopsis = re.search(r"`write_perfetto PROCESS_ID (\[.*?)`:", readme, re.S).group(1)
    listed = set(re.findall(r"\[(--[a-z-]+)", synopsis))
    parser = build_parser()
    command = parser._subparsers._group_actions[0].choices["write_perfetto"]
    options = {o for a in command._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
    assert listed == options, f"missing {sorted(options - listed)}, unknown {sorted(listed - options)}"
    assert "'-' for standard output" in " ".join(command.format_help().split())


def test_summary_line_counts_in_words(small_lake, tmp_path):
    """The summary says '1 thread' and 'on 1 track' (it said '1 threads', 'on 1 tracks'), on
    stdout, and on stderr when the trace itself goes to standard output."""
    import subprocess
    import sys
    lake, processes = small_lake
    one_thread = next(p["process_id"] for p in processes if len(lake_threads(lake, p["process_id"])) == 1)
    done = run_cli("write_perfetto", one_thread, "--lake", lake, "--async-layout", "micromegas", "--filename",
                   tmp_path / "t.perfetto")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^wrote \S+: \d+ thread spans on 1 thread, \d+ async spans on 1 track \(async anomalies: ",
                     done.stdout), done.stdout
    to_stdout = subprocess.run([sys.executable, "-m", "micromegas", "write_perfetto", one_thread, "--lake", str(lake),
                                "--spans", "thread", "--filename", "-"], capture_output=True, timeout=300)
    assert to_stdout.returncode == 0 and to_stdout.stdout[:1] == b"\x0a"  # the trace: Trace.packet records
    assert re.search(r"^wrote standard output: \d+ thread spans on 1 thread, 0 async spans on 0 tracks ",
                     to_stdout.stderr.decode()), to_stdout.stderr


def test_readme_gives_write_process_traces_signature():
    """The README's `write_process_trace(...)` line is the function's signature, defaults
    included (it lacked logs, metrics, span_args and flows)."""
    import inspect
    import re
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    shown = " ".join(re.search(r"- `write_process_trace\((.*?)\)` and", readme, re.S).group(1).split())
    signature = inspect.signature(write_process_trace)
    actual = []
    for name, parameter in signature.parameters.items():
        if parameter.kind is parameter.KEYWORD_ONLY and "*" not in actual:
            actual.append("*")
        default = parameter.default
        actual.append(name if default is parameter.empty else f"{name}={default!r}".replace("'", '"'))
    assert shown == ", ".join(actual)


@pytest.mark.parametrize("command", ["write_perfetto", "list-processes"])
def test_text_printed_by_the_source_stays_out_of_stdout_data(small_lake, tmp_path, command):
    """The official client prints its OIDC login prompts ("No saved tokens found. Opening
    browser for authentication...") with print(): with `--filename -` they went into the
    trace (which then did not parse), and into `list-processes --ids` (a script's
    `| head -n 1` took the prompt for a process id). They go to stderr."""
    import subprocess
    import sys
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    script = (
        "import sys\n"
        "from micromegas_perfetto import _entry, lake\n"
        "opened = lake.LocalLake.__init__\n"
        "def noisy(self, path):\n"
        "    print('No saved tokens found. Opening browser for authentication...')\n"
        "    opened(self, path)\n"
        "lake.LocalLake.__init__ = noisy\n"
        "status = _entry.main(sys.argv[1:])\n"
        "sys.stdout.flush()\n"
        "sys.exit(status)\n")
    args = ([command, pid, "--filename", "-", "--quiet"] if command == "write_perfetto" else [command, "--ids"])
    done = subprocess.run([sys.executable, "-c", script, *args, "--lake", str(lake)], capture_output=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert b"Opening browser" in done.stderr and b"Opening browser" not in done.stdout
    if command == "write_perfetto":
        expected = tmp_path / "t.perfetto"
        assert run_cli("write_perfetto", pid, "--lake", lake, "--filename", expected, "--quiet").returncode == 0
        assert done.stdout == expected.read_bytes()
    else:
        assert done.stdout.decode().split() == [p["process_id"] for p in processes]


def test_an_empty_trace_of_a_range_outside_the_process_names_the_processs_range(small_lake, tmp_path):
    """A range that misses the process (a date off by a day, a zone off by hours) writes an
    empty trace, as asked, with a note giving the process's own range; a quiet moment inside
    the process's range gets no note, and neither does a trace with spans."""
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    out = tmp_path / "t.perfetto"
    day = 86_400 * 10**9
    listed = run_cli("list-processes", "--lake", lake)
    start = [line for line in listed.stdout.splitlines() if line.startswith(pid)][0].split()[-3]
    from micromegas_perfetto.timeutil import ns_to_iso, to_ns
    begin = to_ns(start)
    result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", out, "--quiet",
                     "--begin", begin - day, "--end", begin - day + 10**9)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0].startswith(
        f"note: nothing in {ns_to_iso(begin - day)} .. {ns_to_iso(begin - day + 10**9)}: the process's telemetry "
        f"runs from {ns_to_iso(begin)} to "), notes
    for args in (["--begin", begin, "--end", begin], ["--begin", begin]):
        result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", out, "--quiet", *args)
        assert result.returncode == 0 and "note: nothing in" not in result.stderr, result.stderr
