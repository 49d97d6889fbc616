"""The command line as a CI job or a shell script uses it: outputs that would destroy the
run's own input, process ids as people paste them, environment problems named in one line."""
import shutil
from pathlib import Path

import pytest

from conftest import GOLDEN, run_cli

from micromegas_perfetto.errors import OutputError
from micromegas_perfetto.generation import write_process_trace
from micromegas_perfetto.lake import LocalLake


@pytest.fixture
def lake_copy(small_lake, tmp_path):
    """A copy of the small lake (a test that fails must not damage the shared one)."""
    lake, processes = small_lake
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    return copy, processes[0]["process_id"]


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", ["processes.parquet", "streams.parquet", "thread spans file", "async events file",
                                    "symlink to streams.parquet", "new file in a table folder"])
def test_output_that_is_a_file_of_the_lake_read_exits_2_and_keeps_the_lake(lake_copy, tmp_path, target):
    """`--filename lake/processes.parquet` (a slip of the shell's completion) replaced the lake's
    own table by the trace, exit 0: the lake was gone. It is now a usage mistake, exit 2, one
    line, and every file of the lake keeps its bytes."""
    lake, pid = lake_copy
    stream = LocalLake(lake).threads(pid, 0, 0)[0].stream_id
    link = tmp_path / "trace.perfetto"
    link.symlink_to(lake / "streams.parquet")
    out = {"processes.parquet": lake / "processes.parquet", "streams.parquet": lake / "streams.parquet",
           "thread spans file": lake / "thread_spans" / f"{stream}.parquet",
           "async events file": lake / "async_events" / f"{pid}.parquet",
           "symlink to streams.parquet": link,
           "new file in a table folder": lake / "thread_spans" / "t.perfetto"}[target]
    before = _snapshot(lake)
    result = run_cli("write_perfetto", pid, "--lake", lake, "--filename", out, "--quiet")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "destroy its input" in result.stderr
    assert _snapshot(lake) == before
    assert link.is_symlink()


def test_output_beside_the_lake_tables_is_written(lake_copy):
    """The lake's root folder itself may take the trace (`cd lake && ... --lake .`)."""
    lake, pid = lake_copy
    result = run_cli("write_perfetto", pid, "--lake", ".", "--quiet", cwd=lake)
    assert result.returncode == 0, result.stderr
    assert (lake / f"{pid}.perfetto").stat().st_size > 0


def test_library_refuses_to_write_over_the_lake_it_reads(lake_copy):
    lake, pid = lake_copy
    before = (lake / "processes.parquet").read_bytes()
    with pytest.raises(OutputError, match="destroy its input"):
        write_process_trace(LocalLake(lake), pid, None, None, lake / "processes.parquet")
    assert (lake / "processes.parquet").read_bytes() == before


def test_write_scenario_onto_its_own_scenario_file_exits_2(tmp_path):
    """`write_scenario s.json s.json` replaced the scenario by its trace, exit 0."""
    scenario = tmp_path / "basic.json"
    shutil.copy(GOLDEN / "basic.json", scenario)
    before = scenario.read_bytes()
    result = run_cli("write_scenario", "basic.json", "./basic.json", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and "scenario file itself" in result.stderr, result.stderr
    assert scenario.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["basic.json"]


@pytest.mark.parametrize("given, hint", [
    ("upper case", "did you mean {pid}?"),
    ("braces", "did you mean {pid}?"),
    ("urn", "did you mean {pid}?"),
    ("prefix", "did you mean {pid}? give the whole process id"),
    ("unknown", None),
])
def test_process_id_as_pasted_is_not_found_with_the_id_meant(small_lake, tmp_path, given, hint):
    """An id in upper case (as some tools show uuids), within braces, as a urn, or cut to the
    first 8 characters was "not found" with nothing to go on; the line now names the id of
    the lake it matches (ids are still compared as written: nothing else is chosen)."""
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    asked = {"upper case": pid.upper(), "braces": "{" + pid + "}", "urn": f"urn:uuid:{pid}", "prefix": pid[:8],
             "unknown": "00000000-0000-4000-8000-000000000000"}[given]
    result = run_cli("write_perfetto", asked, "--lake", lake, "--quiet", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"process {asked} not found in lake" in result.stderr
    if hint is None:
        assert "did you mean" not in result.stderr
    else:
        assert hint.format(pid=pid) in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_process_id_hint_for_an_ambiguous_prefix():
    from micromegas_perfetto.sources import process_id_hint
    ids = [f"abcd{i}000-0000-4000-8000-000000000000" for i in range(5)]
    assert process_id_hint("ABCD", ids) == f" (5 process ids start with it: {ids[0]}, {ids[1]}, {ids[2]}, ...; " \
                                           "give the whole id)"
    assert process_id_hint("abc", ids) == ""  # too short to mean anything
    assert process_id_hint("", ids) == "" and process_id_hint("{}", ids) == ""


def test_server_says_process_ids_are_lower_case():
    from micromegas_perfetto.errors import ProcessNotFoundError
    from micromegas_perfetto.flightsql import FlightSQLSource
    import pyarrow as pa

    class NoProcess:
        description = "server grpc://test"
        uri = "grpc://test"

        def read_all(self, sql, *args, **kwargs):
            return pa.table({"exe": pa.array([], pa.string()), "start_time": pa.array([], pa.timestamp("ns"))})

    pid = "BDD640FB-0667-4AD1-9C80-317FA3B1799D"
    with pytest.raises(ProcessNotFoundError, match=f"lower case: {pid.lower()}"):
        FlightSQLSource(queries=NoProcess()).process_info(pid)


def _file_size_limit(limit):
    def apply():
        import resource
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("folder_exists", [False, True])
def test_sample_lake_failing_to_write_is_one_line_and_leaves_no_half_lake(tmp_path, folder_exists):
    """A full disk (here a file size limit) while `sample-lake DIR` wrote was
    `error: [Errno 28] Error writing bytes to file. Detail: ...` and left DIR with some tables
    (and, when it failed after processes.parquet, a "lake" a new run refused as existing)."""
    import subprocess
    import sys
    lake = tmp_path / "lake"
    if folder_exists:
        lake.mkdir()
        (lake / "notes.txt").write_text("mine")
    result = subprocess.run([sys.executable, "-m", "micromegas", "sample-lake", str(lake), "--quiet", "--threads", "2",
                             "--spans-per-thread", "20000"], capture_output=True, text=True, timeout=120,
                            preexec_fn=_file_size_limit(64 << 10))
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == f"error: file too large writing the sample lake {lake}"
    if folder_exists:
        assert sorted(p.name for p in lake.iterdir()) == ["notes.txt"]
    else:
        assert list(tmp_path.iterdir()) == []


def test_unusable_cache_folder_for_the_sample_lake_is_one_line_with_the_way_out(tmp_path):
    """$MICROMEGAS_CACHE (or the home cache) that cannot take the built-in sample lake (read-only,
    full, under a file) printed a bare `error: [Errno 30] Read-only file system: '...'`."""
    (tmp_path / "file").write_text("x")
    cache = tmp_path / "file" / "cache"
    result = run_cli("list-processes", env={"MICROMEGAS_CACHE": str(cache), "MICROMEGAS_LAKE": None,
                                            "MICROMEGAS_ANALYTICS_URI": None, "MICROMEGAS_PROFILE": None,
                                            "MICROMEGAS_TOKEN": None})
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert f"writing the built-in sample lake in {cache}" in lines[0]
    assert "set $MICROMEGAS_CACHE to a writable folder, or give --lake DIR" in lines[0]
    assert "Errno" not in lines[0]


def _run_with(args, stdout=None, stderr=None, close=(), cwd=None):
    """`python -m micromegas ARGS` with stdout/stderr sent to the files given, or with the
    descriptors in `close` closed, as `cmd >&-` or `2>&-` start it."""
    import os
    import subprocess
    import sys

    def closing():
        for fd in close:
            os.close(fd)
    return subprocess.run([sys.executable, "-m", "micromegas", *map(str, args)], text=True, timeout=120, cwd=cwd,
                          stdout=stdout if stdout is not None else subprocess.PIPE,
                          stderr=stderr if stderr is not None else subprocess.PIPE, preexec_fn=closing)


@pytest.mark.parametrize("command", ["list-processes", "write_perfetto", "validate", "--version"])
def test_stdout_on_a_full_disk_is_one_line_exit_1(small_lake, tmp_path, command):
    """`... > /dev/full` (standard output on a full disk) printed `error: [Errno 28] No space
    left on device`, and `--version` a traceback."""
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    trace = tmp_path / "t.perfetto"
    if command in ("write_perfetto", "validate"):
        assert run_cli("write_perfetto", pid, "--lake", lake, "--filename", trace, "--quiet").returncode == 0
    args = {"list-processes": ["list-processes", "--lake", lake],
            "write_perfetto": ["write_perfetto", pid, "--lake", lake, "--filename", trace],
            "validate": ["validate", trace], "--version": ["--version"]}[command]
    with open("/dev/full", "w") as full:
        result = _run_with(args, stdout=full)
    assert result.returncode == 1, result.stderr
    assert result.stderr == "error: disk full writing standard output\n"


def test_started_with_stdout_closed(small_lake, tmp_path):
    """`cmd >&-`: the trace file is written (its summary goes nowhere) without the traceback
    "'NoneType' object has no attribute 'flush'"; `--filename -` is a usage mistake."""
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    reference = tmp_path / "reference.perfetto"
    assert run_cli("write_perfetto", pid, "--lake", lake, "--filename", reference, "--quiet").returncode == 0
    result = _run_with(["write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "t.perfetto"], close=(1,))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert (tmp_path / "t.perfetto").read_bytes() == reference.read_bytes()
    result = _run_with(["write_perfetto", pid, "--lake", lake, "--filename", "-"], close=(1,), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == "error: standard output is closed: there is nowhere to write the trace (--filename -)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference.perfetto", "t.perfetto"]


def test_started_with_stderr_closed_still_exits_with_the_status(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    result = _run_with(["write_perfetto", pid, "--lake", lake, "--begin", "soon", "--filename", tmp_path / "t"],
                       close=(2,))
    assert result.returncode == 2 and result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_empty_source_variables_are_named_when_the_sample_lake_is_read(tmp_path):
    """`MICROMEGAS_LAKE=$LAKE` with $LAKE unset: the variable is empty, so the built-in sample
    lake is read (as documented: a variable that is empty is not used); the stderr line says
    which variables were empty, so the CI log shows why the job's lake was not read."""
    result = run_cli("list-processes", "--ids", env={"MICROMEGAS_LAKE": "", "MICROMEGAS_ANALYTICS_URI": None,
                                                     "MICROMEGAS_PROFILE": "", "MICROMEGAS_TOKEN": None,
                                                     "MICROMEGAS_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == 3
    line = result.stderr.splitlines()[-1]
    assert line.startswith("reading the built-in sample lake"), result.stderr
    assert "$MICROMEGAS_LAKE and $MICROMEGAS_PROFILE are empty, so not used" in line


@pytest.fixture
def reference_trace(small_lake, tmp_path_factory):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    out = tmp_path_factory.mktemp("reference") / "t.perfetto"
    assert run_cli("write_perfetto", pid, "--lake", lake, "--filename", out, "--quiet").returncode == 0
    return lake, pid, out.read_bytes()


@pytest.mark.parametrize("name", ["/dev/stdout", "/proc/self/fd/1", "/dev/fd/1"])
def test_dev_stdout_into_a_pipe_is_the_trace(reference_trace, tmp_path, name):
    """`--filename /dev/stdout | ...` (for tools without `-`) was `error: cannot create
    /dev/stdout: No such file or directory`, exit 2: the name resolved to /proc/PID/fd/pipe:[N].
    Now it is `-`: the trace on the pipe, the summary on stderr."""
    lake, pid, reference = reference_trace
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "micromegas", "write_perfetto", pid, "--lake", str(lake),
                             "--filename", name], capture_output=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == reference
    assert result.stderr.decode().startswith(f"wrote {name}: ")
    assert list(tmp_path.iterdir()) == []


def test_dev_stdout_appended_by_the_shell_keeps_what_the_shell_wrote(reference_trace, tmp_path):
    """`{ echo header; ... --filename /dev/stdout; } >> log`: the name was resolved to the log
    file, which was replaced (what was before it lost, the shell's later writes going to the
    replaced file). Now the trace goes where the shell's descriptor is."""
    lake, pid, reference = reference_trace
    log = tmp_path / "log"
    log.write_bytes(b"header\n")
    with open(log, "ab") as out:
        result = _run_with(["write_perfetto", pid, "--lake", lake, "--filename", "/dev/stdout", "--quiet"], stdout=out)
    assert result.returncode == 0, result.stderr
    assert log.read_bytes() == b"header\n" + reference


def test_dev_fd_of_a_pipe_is_written(reference_trace, tmp_path):
    """bash's process substitution, `--filename >(gzip > t.gz)`, names /dev/fd/63."""
    import os
    import subprocess
    import sys
    lake, pid, reference = reference_trace
    read_end, write_end = os.pipe()
    process = subprocess.Popen([sys.executable, "-m", "micromegas", "write_perfetto", pid, "--lake", str(lake),
                                "--filename", f"/dev/fd/{write_end}", "--quiet"], pass_fds=(write_end,),
                               stderr=subprocess.PIPE)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    assert process.wait(timeout=120) == 0, process.stderr.read()
    assert data == reference


@pytest.mark.parametrize("case", ["missing folder", "existing file"])
def test_output_name_ending_with_a_slash_is_a_folder_and_exits_2(small_lake, tmp_path, case):
    """`--filename out/` (meaning a folder) wrote a file named `out`; `t.perfetto/` replaced
    t.perfetto. Both are one line, exit 2, nothing written."""
    lake, processes = small_lake
    (tmp_path / "t.perfetto").write_bytes(b"keep")
    name = {"missing folder": "out/", "existing file": "t.perfetto/"}[case]
    result = run_cli("write_perfetto", processes[0]["process_id"], "--lake", lake, "--filename", name, "--quiet",
                     cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: output {name} ends with /, so it names a folder"), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.perfetto"]
    assert (tmp_path / "t.perfetto").read_bytes() == b"keep"


@pytest.mark.parametrize("case, message", [
    ("a folder", "scenario file {path} is a folder"),
    ("a JSON array", "scenario file {path} holds a JSON list, not an object"),
])
def test_write_scenario_input_mistakes_exit_2_with_one_line(tmp_path, case, message):
    """A folder as the scenario was `error: [Errno 21] Is a directory: '...'`, exit 1; a JSON
    array "lacked" every key."""
    path = tmp_path / "s"
    if case == "a folder":
        path.mkdir()
    else:
        path.write_text("[1, 2]")
    result = run_cli("write_scenario", path, tmp_path / "t.perfetto")
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {message.format(path=path)}\n"
    assert not (tmp_path / "t.perfetto").exists()


def test_sample_lake_refuses_an_unknown_time_zone(tmp_path):
    """`--time-zone Mars/Phobos` wrote a lake whose time columns carry a zone no reader knows
    (pyarrow's to_pandas, DuckDB fail on it), exit 0. Offsets and database zones still work."""
    result = run_cli("sample-lake", tmp_path / "lake", "--time-zone", "Mars/Phobos", "--quiet", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == ("error: sample lake: time zone 'Mars/Phobos' is neither an offset (+HH:MM) nor a zone of "
                             "the time zone database (e.g. Europe/Paris, UTC)\n")
    assert list(tmp_path.iterdir()) == []
    from micromegas_perfetto.sample_lake import LakeVariant
    for zone in ("+00:00", "-05:30", "UTC", "Europe/Paris", None):
        LakeVariant(time_zone=zone)


def test_validate_that_cannot_load_the_library_is_no_verdict_exit_2(tmp_path):
    """`validate` exits 1 for "problems found": a library that cannot be loaded gave 1 too, so a
    CI job read a broken installation as a broken trace. It is exit 2, as an unreadable file."""
    trace = tmp_path / "t.perfetto"
    shutil.copy(GOLDEN / "basic_thread.perfetto", trace)
    not_a_library = tmp_path / "libperfetto_mm.so"
    not_a_library.write_text("not ELF")
    result = run_cli("validate", trace, env={"MICROMEGAS_PERFETTO_LIB": str(not_a_library)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: cannot load {not_a_library}") and result.stderr.count("\n") == 1
    assert run_cli("validate", trace).returncode == 0


@pytest.mark.parametrize("given, message", [
    (["--begin", "2030-01-01"], "begin (2030-01-01T00:00:00.000000000Z) is after the process's end ({end})"),
    (["--end", "2020-01-01"], "the process's start ({start}) is after end (2020-01-01T00:00:00.000000000Z)"),
])
def test_one_bound_beyond_the_process_names_the_process_bound(small_lake, tmp_path, given, message):
    """`--begin` after the process's end (no --end) said "begin (...) is after end (...)", an end
    the user never gave."""
    from micromegas_perfetto.timeutil import ns_to_iso
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    info = LocalLake(lake).process_info(pid)
    start, end = LocalLake(lake).time_range(info)
    result = run_cli("write_perfetto", pid, "--lake", lake, *given, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {message.format(start=ns_to_iso(start), end=ns_to_iso(end))}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error, line", [
    ("library", "error: out of memory: a narrower range (--begin, --end) or fewer --spans need less"),
    ("pyarrow", "error: out of memory (malloc of size 524288 failed): a narrower range (--begin, --end) or fewer "
                "--spans need less"),
])
def test_running_out_of_memory_is_one_line_saying_so_not_a_bug(monkeypatch, capsys, error, line):
    """The library's OutOfMemoryError (a ulimit -v, a container limit) and pyarrow's
    ArrowMemoryError are MemoryErrors: one line, exit 1. pyarrow's used to be reported as a
    bug ("error: ArrowMemoryError: ... (run with --debug for details)")."""
    import argparse
    import pyarrow as pa
    from micromegas_perfetto import cli
    from micromegas_perfetto.errors import OutOfMemoryError

    def command(args):
        raise OutOfMemoryError("out of memory") if error == "library" else pa.ArrowMemoryError(
            "malloc of size 524288 failed")
    monkeypatch.setitem(cli.COMMANDS, "write_perfetto", command)
    assert cli._run(argparse.Namespace(command="write_perfetto"), debug=False) == 1
    assert capsys.readouterr().err.strip() == line


@pytest.mark.parametrize("env, bar", [({"CI": None, "TERM": "xterm"}, True), ({"CI": "true", "TERM": "xterm"}, False),
                                      ({"CI": "false", "TERM": "xterm"}, True), ({"CI": None, "TERM": "dumb"}, False)])
def test_progress_bar_on_a_terminal_but_not_under_ci_or_a_dumb_terminal(small_lake, tmp_path, env, bar):
    """Some CI runners give the job a terminal, whose log then keeps every redraw of the bar;
    they set $CI. There was no way to leave the bar out but --quiet, which drops the summary too."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios
    lake, processes = small_lake
    environment = dict(os.environ)
    for key, value in env.items():
        environment.pop(key, None) if value is None else environment.__setitem__(key, value)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 x 0
    child = subprocess.Popen([sys.executable, "-m", "micromegas", "write_perfetto", processes[0]["process_id"], "--lake",
                              str(lake), "--filename", str(tmp_path / "t.perfetto")],
                             stdout=subprocess.PIPE, stderr=slave, env=environment)
    os.close(slave)
    err = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        err += data
    out, _ = child.communicate(timeout=120)
    os.close(master)
    assert child.returncode == 0 and out.startswith(b"wrote "), (out, err)
    assert (f"trace {processes[0]['process_id'][:8]}".encode() in err) == bar, err


def test_paths_given_as_option_equals_tilde_are_under_home(small_lake, tmp_path):
    """The shell leaves `--filename=~/t.perfetto` as it is: "output folder ~ does not exist",
    exit 2. Every path argument starting with ~ is now the shell's ~."""
    lake, processes = small_lake
    home = tmp_path / "home"
    home.mkdir()
    shutil.copytree(lake, home / "lake")
    env = {"HOME": str(home)}
    pid = processes[0]["process_id"]
    result = run_cli("write_perfetto", pid, "--lake=~/lake", "--filename=~/t.perfetto", "--quiet", env=env,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (home / "t.perfetto").stat().st_size > 0 and not (tmp_path / "~").exists()
    assert run_cli("validate", "~/t.perfetto", env=env, cwd=tmp_path).returncode == 0
    result = run_cli("sample-lake", "~/sample", "--threads", "1", "--spans-per-thread", "10", "--async-spans", "0",
                     env=env, cwd=tmp_path)
    assert result.returncode == 0 and (home / "sample" / "processes.parquet").exists(), result.stderr
    scenario = GOLDEN / "minimal.json"
    shutil.copy(scenario, home / "s.json")
    result = run_cli("write_scenario", "~/s.json", "~/s.perfetto", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (home / "s.perfetto").read_bytes() == (GOLDEN / "minimal.perfetto").read_bytes()


@pytest.mark.parametrize("case", ["> t 2>&1", "2>&1 |", "--filename /dev/stderr 2> t"])
def test_trace_and_messages_on_one_descriptor_exit_2_before_writing(small_lake, tmp_path, case):
    """`--filename - > t 2>&1` (or `2>&1 | ...`, or `--filename /dev/stderr`) put this
    command's notes, and the official client's login prompts, inside the trace, which then did
    not parse. It is now a usage mistake, exit 2, one line, and no trace byte is written."""
    import subprocess
    import sys
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    name = "/dev/stderr" if "/dev/stderr" in case else "-"
    args = [sys.executable, "-m", "micromegas", "write_perfetto", pid, "--lake", str(lake), "--filename", name]
    out = tmp_path / "t"
    if case == "2>&1 |":
        result = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        written = result.stdout
    else:
        with open(out, "wb") as f:
            result = subprocess.run(args, stdout=f if case == "> t 2>&1" else subprocess.DEVNULL, stderr=f,
                                    timeout=120)
        written = out.read_bytes()
    assert result.returncode == 2, written
    text = written.decode()
    assert text.startswith("error: --filename ") and "standard error goes to the same place" in text, text
    assert len(text.strip().splitlines()) == 1


def test_trace_to_a_terminal_exits_2(small_lake):
    """A binary trace written to a terminal (`--filename -` typed without a redirection) filled
    it with garbage; it is now exit 2 and one line, as gzip refuses to."""
    import os
    import pty
    import subprocess
    import sys
    lake, processes = small_lake
    primary, secondary = pty.openpty()
    try:
        result = subprocess.run([sys.executable, "-m", "micromegas", "write_perfetto", processes[0]["process_id"],
                                 "--lake", str(lake), "--filename", "-"], stdout=secondary, stderr=subprocess.PIPE,
                                timeout=120)
        os.close(secondary)
        secondary = -1
        os.set_blocking(primary, False)
        try:
            shown = os.read(primary, 1 << 16)
        except OSError:  # nothing written (EAGAIN), or EIO once the terminal's last writer is gone
            shown = b""
    finally:
        if secondary >= 0:
            os.close(secondary)
        os.close(primary)
    assert result.returncode == 2, result.stderr
    assert b"is a terminal" in result.stderr and len(result.stderr.decode().strip().splitlines()) == 1
    assert shown == b""


def test_trace_and_messages_both_to_dev_null_is_fine(small_lake):
    """`--filename - > /dev/null 2>&1` (a dry run) is not refused: nothing is lost there."""
    import subprocess
    import sys
    lake, processes = small_lake
    result = subprocess.run([sys.executable, "-m", "micromegas", "write_perfetto", processes[0]["process_id"],
                             "--lake", str(lake), "--filename", "-"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 0
