"""Issue 11 from Python: no file left behind (signals at random moments, with real processes),
odd output targets, errors that keep their cause, one exit-code rule, and writers shared
between threads."""
import errno
import os
import random
import resource
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from micromegas_perfetto import errors, output
from micromegas_perfetto.generation import generate_trace_chunks, write_process_trace
from micromegas_perfetto.lake import LocalLake
from micromegas_perfetto.writer import PerfettoWriter
from trace_check import decode

ENTRY = "import micromegas_perfetto._entry as entry; {setup}; entry.run()"


def pid_of(lake):
    return lake[1][0]["process_id"]


@pytest.fixture(scope="module")
def reference(small_lake, tmp_path_factory):
    """The small lake's trace, written to a plain new file."""
    path = tmp_path_factory.mktemp("reference") / "t.perfetto"
    write_process_trace(small_lake[0], pid_of(small_lake), None, None, path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def big_lake(tmp_path_factory):
    """Large enough that writing its trace takes a while (4 threads x 60,000 spans)."""
    from micromegas_perfetto.sample_lake import write_sample_lake
    folder = tmp_path_factory.mktemp("big-lake")
    processes = write_sample_lake(folder, seed=3, threads=4, spans_per_thread=60_000, async_spans=20_000)
    return folder, processes


# -- output targets ------------------------------------------------------------------------------


def test_new_file_has_the_usual_mode_and_nothing_else_appears(small_lake, reference, tmp_path):
    umask = os.umask(0o027)
    try:
        summary = write_process_trace(small_lake[0], pid_of(small_lake), None, None, tmp_path / "t.perfetto")
    finally:
        os.umask(umask)
    assert [p.name for p in tmp_path.iterdir()] == ["t.perfetto"]
    assert stat.S_IMODE((tmp_path / "t.perfetto").stat().st_mode) == 0o640
    assert (tmp_path / "t.perfetto").read_bytes() == reference
    assert summary.bytes == len(reference)


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temporary"])
def test_existing_file_is_replaced_atomically(small_lake, reference, tmp_path, monkeypatch, unnamed):
    monkeypatch.setattr(output, "use_unnamed", unnamed)
    target = tmp_path / "t.perfetto"
    target.write_bytes(b"old trace")
    old_inode = target.stat().st_ino
    keep = open(target, "rb")  # a reader of the old file keeps seeing it whole
    write_process_trace(small_lake[0], pid_of(small_lake), None, None, target)
    assert keep.read() == b"old trace"
    keep.close()
    assert target.read_bytes() == reference and target.stat().st_ino != old_inode
    assert [p.name for p in tmp_path.iterdir()] == ["t.perfetto"]


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temporary"])
def test_failure_inside_the_block_leaves_nothing(tmp_path, monkeypatch, unnamed):
    monkeypatch.setattr(output, "use_unnamed", unnamed)
    (tmp_path / "kept").write_bytes(b"kept")
    for target in (tmp_path / "new.perfetto", tmp_path / "kept"):
        with pytest.raises(RuntimeError):
            with output.atomic_output(target) as out:
                os.write(out.fd, b"partial")
                assert len(list(tmp_path.iterdir())) == (1 if unnamed else 2)  # O_TMPFILE has no name
                raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert (tmp_path / "kept").read_bytes() == b"kept"
    assert output._temporaries == set()


def test_symlink_keeps_the_link_and_replaces_its_target(small_lake, reference, tmp_path):
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "trace.perfetto"
    real.write_bytes(b"old")
    link = tmp_path / "link.perfetto"
    link.symlink_to(Path("real") / "trace.perfetto")
    chain = tmp_path / "chain.perfetto"
    chain.symlink_to(link.name)
    write_process_trace(small_lake[0], pid_of(small_lake), None, None, chain)
    assert chain.is_symlink() and link.is_symlink()
    assert os.readlink(link) == str(Path("real") / "trace.perfetto")
    assert real.read_bytes() == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.perfetto", "link.perfetto", "real"]
    assert [p.name for p in (tmp_path / "real").iterdir()] == ["trace.perfetto"]


def test_fifo_is_written_into(small_lake, reference, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, "rb").read()))
    reader.start()
    summary = write_process_trace(small_lake[0], pid_of(small_lake), None, None, fifo)
    reader.join(30)
    assert received == [reference]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and summary.bytes is None
    assert [p.name for p in tmp_path.iterdir()] == ["fifo"]


def test_dev_null_stays_a_character_device(small_lake):
    before = os.stat("/dev/null")
    assert stat.S_ISCHR(before.st_mode)
    write_process_trace(small_lake[0], pid_of(small_lake), None, None, "/dev/null")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino


def test_dash_is_standard_output(small_lake, reference):
    result = subprocess.run([sys.executable, "-m", "micromegas", "write_perfetto", pid_of(small_lake), "--lake",
                             small_lake[0], "--filename", "-"], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == reference
    assert b"wrote standard output" in result.stderr


DIRECT_INTERRUPTION = """
import contextlib, os, signal, sys, time
import micromegas_perfetto.generation as generation
real, when = generation.atomic_output, sys.argv[1]
@contextlib.contextmanager
def hooked(target):
    with real(target) as out:
        if when == "during":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        yield out
    if when == "after":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
generation.atomic_output = hooked
import micromegas_perfetto._entry as entry
sys.argv[1:2] = ["write_perfetto"]
entry.run()
"""


@pytest.mark.parametrize("when", ["during", "after"])
@pytest.mark.parametrize("target", ["-", "/dev/stdout"])
def test_an_interruption_of_a_trace_to_standard_output_says_whether_it_is_whole(small_lake, reference, when,
                                                                                 target):
    """Standard output is written directly, so its line cannot be "nothing written": a Ctrl-C
    after the whole trace went out said so, and one in the middle hid a cut trace."""
    result = subprocess.run([sys.executable, "-c", DIRECT_INTERRUPTION, when, pid_of(small_lake), "--lake",
                             small_lake[0], "--filename", target], capture_output=True, timeout=120)
    shown = "standard output" if target == "-" else target
    assert result.returncode == 130, result.stderr
    if when == "after":
        assert result.stdout == reference
        assert result.stderr.decode().strip() == f"interrupted after the whole trace was written to {shown}"
    else:
        assert result.stdout != reference
        assert result.stderr.decode().strip() == f"interrupted: the trace on {shown} is incomplete"


@pytest.mark.parametrize("case", ["missing folder", "a folder", "folder is a file", "empty", "unwritable folder"])
def test_output_folder_problems_exit_2_with_one_line(small_lake, tmp_path, case):
    if case == "unwritable folder" and os.geteuid() == 0:
        pytest.skip("root writes into any folder")
    (tmp_path / "file").write_bytes(b"")
    (tmp_path / "locked").mkdir(mode=0o500)
    target = {"missing folder": tmp_path / "nowhere" / "t.perfetto", "a folder": tmp_path,
              "folder is a file": tmp_path / "file" / "t.perfetto", "empty": "",
              "unwritable folder": tmp_path / "locked" / "t.perfetto"}[case]
    result = run_cli("write_perfetto", pid_of(small_lake), "--lake", small_lake[0], "--filename", target)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "locked"]
    with pytest.raises(errors.OutputError):
        write_process_trace(small_lake[0], pid_of(small_lake), None, None, target)


# -- signals at random moments, real processes ------------------------------------------------


def _writing(pid: int, folder: Path) -> bool:
    """True once process `pid` has a file of `folder` open (the trace being written)."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(folder) + "/"):
                    return True
            except OSError:
                pass
    except OSError:
        pass
    return False


def _kill_while_writing(command, folder: Path, sig: int, rng: random.Random):
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _writing(child.pid, folder) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.02))
    child.send_signal(sig)
    _, err = child.communicate(timeout=60)
    return child.returncode, err


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temporary"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=lambda s: signal.Signals(s).name)
def test_signal_while_writing_leaves_no_file(big_lake, tmp_path, sig, unnamed):
    if sig == signal.SIGKILL and not unnamed:
        pytest.skip("a named temporary cannot be removed on SIGKILL: that is what O_TMPFILE is for")
    setup = "pass" if unnamed else "import micromegas_perfetto.output as o; o.use_unnamed = False"
    command = [sys.executable, "-c", ENTRY.format(setup=setup), "write_perfetto", pid_of(big_lake), "--lake",
               str(big_lake[0]), "--quiet", "--filename", str(tmp_path / "t.perfetto")]
    rng = random.Random(sig * 10 + unnamed)
    completed = 0
    for _ in range(3):
        code, err = _kill_while_writing(command, tmp_path, sig, rng)
        entries = list(tmp_path.iterdir())
        assert "Traceback" not in err
        if entries:  # only a whole trace, when the signal came after it was put in place
            assert [e.name for e in entries] == ["t.perfetto"], (code, err)
            # 0 or -signal: it came during the interpreter's exit, which restores default handlers
            assert code in (0, -sig, 128 + sig)
            assert "after" in err or code in (0, -sig)
            completed += 1
            entries[0].unlink()
        else:
            assert code == (-9 if sig == signal.SIGKILL else 128 + sig), err
            if sig != signal.SIGKILL:
                assert err.strip().splitlines()[-1].endswith("nothing written"), err
                assert len(err.strip().splitlines()) == 1, err
    assert completed < 3  # at least one signal landed mid-write


def test_sigint_during_imports_exits_130_without_traceback(small_lake, tmp_path):
    """SIGINT delivered while pyarrow is being imported (the slowest import)."""
    setup = textwrap.dedent("""\
        import builtins, os, signal
        real = builtins.__import__
        def hooked(name, *args, **kw):
            if name == "pyarrow" and not getattr(hooked, "done", False):
                hooked.done = True
                os.kill(os.getpid(), signal.SIGINT)
            return real(name, *args, **kw)
        builtins.__import__ = hooked
    """)
    script = setup + "import micromegas_perfetto._entry as entry\nentry.run()\n"
    for command in ("write_perfetto", "list-processes"):
        args = [pid_of(small_lake), "--filename", str(tmp_path / "t.perfetto")] if command == "write_perfetto" else []
        result = subprocess.run([sys.executable, "-c", script, command, "--lake", str(small_lake[0]), *args],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 130, result.stderr
        assert result.stderr.strip() == "interrupted: nothing written"
    assert list(tmp_path.iterdir()) == []


def test_sigint_before_anything_exits_130():
    result = subprocess.run([sys.executable, "-c", "import micromegas_perfetto._entry, os, signal; "
                             "os.kill(os.getpid(), signal.SIGTERM)"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 143 and result.stderr.strip() == "interrupted by SIGTERM: nothing written"


# -- errors keep their cause -------------------------------------------------------------------


def _limited(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_file_size_limit_mid_write_is_one_line_naming_the_file(big_lake, tmp_path):
    target = tmp_path / "t.perfetto"
    result = subprocess.run([sys.executable, "-m", "micromegas", "write_perfetto", pid_of(big_lake), "--lake",
                             str(big_lake[0]), "--quiet", "--filename", str(target)], capture_output=True, text=True,
                            timeout=120, preexec_fn=_limited(3 << 20))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: file too large writing {target}"
    assert list(tmp_path.iterdir()) == []


def test_disk_full_is_one_line_and_the_device_stays(small_lake):
    """/dev/full: every write fails with ENOSPC (a device: written into, never replaced)."""
    before = os.stat("/dev/full")
    result = run_cli("write_perfetto", pid_of(small_lake), "--lake", small_lake[0], "--quiet",
                     "--filename", "/dev/full")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: disk full writing /dev/full"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode) and os.stat("/dev/full").st_ino == before.st_ino
    with pytest.raises(errors.OutputWriteError, match="disk full writing /dev/full") as caught:
        write_process_trace(small_lake[0], pid_of(small_lake), None, None, "/dev/full")
    assert caught.value.errno == errno.ENOSPC


@pytest.fixture(scope="module")
def null_row_lake(small_lake, tmp_path_factory):
    """The small lake with one thread of 75,000 spans whose row 70,000 has a null begin (in
    the second batch the lake reader produces)."""
    lake, processes = small_lake
    folder = tmp_path_factory.mktemp("null-row")
    for name in ("processes.parquet", "streams.parquet"):
        (folder / name).write_bytes((Path(lake) / name).read_bytes())
    (folder / "thread_spans").mkdir()
    stream = LocalLake(lake).threads(processes[0]["process_id"], 0, 0)[0].stream_id
    first = Path(lake) / "thread_spans" / f"{stream}.parquet"
    table = pq.read_table(first)
    table = pa.concat_tables([table] * (75_000 // table.num_rows + 1)).slice(0, 75_000)
    index = table.schema.get_field_index("begin")
    begin = table.column("begin").cast(pa.int64()).to_pylist()
    begin[70_000] = None
    field = table.schema.field(index)
    table = table.set_column(index, field.with_nullable(True), pa.array(begin, pa.int64()).cast(field.type))
    pq.write_table(table, folder / "thread_spans" / first.name)
    return folder, first.stem


def test_bad_value_deep_in_the_data_is_reported_at_its_row(small_lake, null_row_lake, tmp_path):
    folder, stream = null_row_lake
    pid = pid_of(small_lake)
    result = run_cli("write_perfetto", pid, "--lake", folder, "--quiet", "--filename", tmp_path / "t.perfetto")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and "GeneratorExit" not in result.stderr
    assert f"thread spans of stream '{stream}'" in lines[0] and "null in column 'begin' at row 70000" in lines[0]
    assert list(tmp_path.iterdir()) == []
    # the same row through generate_trace_chunks, which hands a thread's batches over in groups
    with pytest.raises(errors.InvalidDataError, match="at row 70000"):
        for _ in generate_trace_chunks(folder, pid):
            pass


def test_failure_after_the_first_batch_keeps_its_cause(small_lake, tmp_path):
    class Failing(LocalLake):
        def thread_spans(self, stream_id, begin, end):
            reader = super().thread_spans(stream_id, begin, end)

            def batches():
                yield next(iter(reader))
                raise OSError(errno.EIO, "Input/output error", "spans.parquet")
            return pa.RecordBatchReader.from_batches(reader.schema, batches())

    with pytest.raises(OSError, match="Input/output error") as caught:
        write_process_trace(Failing(small_lake[0]), pid_of(small_lake), None, None, tmp_path / "t.perfetto")
    assert caught.value.errno == errno.EIO
    assert list(tmp_path.iterdir()) == []


# -- exit codes and range checks ---------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--chunk-size", str(1 << 70)], "--chunk-size"),
    (["--lake", ""], "--lake is empty"),
    (["--filename", ""], "--filename is empty"),
    (["--begin", str(1 << 70), "--end", str((1 << 70) + 10)], "outside the range of int64 nanoseconds"),
    (["--end", "3000-01-01"], "end '3000-01-01' is outside the range"),
    (["--begin", "9" * 5000], "outside the range"),
    (["--begin", "-" + "9" * 40], "outside the range"),
])
def test_out_of_range_and_empty_arguments_exit_2(small_lake, tmp_path, args, message):
    base = ["write_perfetto", pid_of(small_lake), "--lake", small_lake[0], "--filename", tmp_path / "t.perfetto"]
    result = run_cli(*base, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_non_utf8_process_id_exits_2(small_lake, tmp_path):
    result = subprocess.run([sys.executable, "-m", "micromegas", "write_perfetto", b"\xff\xfe", "--lake",
                             str(small_lake[0]), "--filename", str(tmp_path / "t.perfetto")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "cannot be encoded as UTF-8" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_python_integers_are_checked_against_their_c_types(small_lake):
    with pytest.raises(errors.ArgumentError, match="file descriptor"):
        PerfettoWriter("p", 2 ** 32 + 1)
    with pytest.raises(errors.ArgumentError, match="chunk_size"):
        PerfettoWriter("p", lambda i, d: None, chunk_size=2 ** 70)
    with pytest.raises(errors.ArgumentError, match="capacity"):
        PerfettoWriter("p", capacity=-1)
    with PerfettoWriter("p") as w:
        w.set_current_thread("s")
        for begin, end, line in ((2 ** 64, 1, 1), (-1, 1, 1), (1, 2, 2 ** 32)):
            with pytest.raises(errors.InvalidArgumentError) as caught:
                w.emit_span(begin, end, "n", "t", "f", line)
            assert isinstance(caught.value, errors.RequestError)
        w.emit_async_track_descriptor()
        with pytest.raises(errors.ArgumentError, match="timestamp"):
            w.emit_async_span_begin(2 ** 64, "n", "t", "f", 1)
    with pytest.raises(errors.InvalidTimeError):
        next(generate_trace_chunks(small_lake[0], pid_of(small_lake), begin=2 ** 70, end=2 ** 70 + 10))
    with pytest.raises(errors.RequestError, match="chunk_size"):
        next(generate_trace_chunks(small_lake[0], pid_of(small_lake), chunk_size=2 ** 70))


# -- threads -------------------------------------------------------------------------------------


def test_two_threads_on_one_writer(tmp_path):
    """Each thread writes its spans on its own track (set_current_thread and emit_span under
    the writer's lock, as a pair); a third hammers calls without the pair lock. The trace
    holds every span, whole."""
    n = 3000
    w = PerfettoWriter("p")
    w.emit_process_descriptor("exe")
    for s in ("a", "b"):
        w.emit_thread_descriptor(s, 1 if s == "a" else 2, f"thread-{s}")
    chunks = []

    def work(s):
        for i in range(n):
            with w.lock:
                w.set_current_thread(s)
                w.emit_span(10 * i, 10 * i + 5, f"{s}{i % 7}", "t", "f", i)

    def drain():  # takes the buffer while the others write
        for _ in range(200):
            chunks.append(w.getvalue())

    threads = [threading.Thread(target=work, args=(s,)) for s in ("a", "b")] + [threading.Thread(target=drain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    chunks.append(w.getvalue())
    w.close()
    decoded = decode(b"".join(chunks))
    by_track = {}
    for e in decoded.events:
        by_track.setdefault(e.track, []).append(e)
    tracks = {name: d.uuid for name, d in decoded.threads.items()}
    for s in ("a", "b"):
        events = by_track[tracks[f"thread-{s}"]]
        assert len(events) == 2 * n
        assert [e.name for e in events[::2]] == [f"{s}{i % 7}" for i in range(n)]


def test_close_while_another_thread_emits():
    for _ in range(3):
        chunks = []
        w = PerfettoWriter("p", lambda i, d: chunks.append(d), chunk_size=1024)
        w.emit_process_descriptor("exe")
        w.emit_thread_descriptor("a", 1, "thread-a")
        w.set_current_thread("a")
        outcome = []

        def work():
            try:
                for i in range(1_000_000):
                    w.emit_span(i, i + 1, "n", "t", "f", i)
            except errors.InvalidArgumentError as e:
                outcome.append(str(e))

        t = threading.Thread(target=work)
        t.start()
        time.sleep(0.01)
        w.close()
        t.join(30)
        assert outcome == ["the writer is closed"]
        data = b"".join(chunks)
        assert len(decode(data).events) % 2 == 0 and len(data) > 0


def test_two_generations_at_once_give_identical_traces(small_lake, reference, tmp_path):
    results = {}

    def run(name):
        write_process_trace(small_lake[0], pid_of(small_lake), None, None, tmp_path / name)
        results[name] = (tmp_path / name).read_bytes()

    threads = [threading.Thread(target=run, args=(f"{i}.perfetto",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(data == reference for data in results.values()) and len(results) == 3


@pytest.mark.parametrize("unnamed", [True, False])
def test_no_write_back_thread_still_writes_the_file_and_leaves_nothing_else(tmp_path, monkeypatch, unnamed):
    # The write-back thread (output._WriteBack) is an optimisation: when no thread can be
    # made, the file is still written whole (the fsync does all the writing), and a named
    # temporary is not left behind by the failure.
    monkeypatch.setattr(output, "use_unnamed", unnamed)
    real_start = threading.Thread.start

    def start(thread):
        if thread.name == "micromegas-write-back":
            raise RuntimeError("can't start new thread")
        real_start(thread)
    monkeypatch.setattr(threading.Thread, "start", start)
    target = tmp_path / "t.perfetto"
    with output.atomic_output(target) as out:
        os.write(out.fd, b"x" * 100)
    assert target.read_bytes() == b"x" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.perfetto"]


def test_sigint_while_the_entry_point_imports_its_wording_exits_130_with_one_line():
    # The entry point's handlers are installed before it imports anything of this package
    # (errors, for the interruption line): a signal then is already one line and 128 + signal.
    setup = textwrap.dedent("""\
        import builtins, os, signal
        real = builtins.__import__
        def hooked(name, globals=None, locals=None, fromlist=(), level=0):
            if name == "errors" and level == 1 and not getattr(hooked, "done", False):
                hooked.done = True
                os.kill(os.getpid(), signal.SIGINT)
            return real(name, globals, locals, fromlist, level)
        builtins.__import__ = hooked
    """)
    # (and if it does not import it, the signal comes once it is imported: the handler then
    # imports the wording itself)
    script = setup + "import micromegas_perfetto._entry\nos.kill(os.getpid(), signal.SIGINT)\n"
    result = subprocess.run([sys.executable, "-c", script],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip() == "interrupted: nothing written"


UNRAISABLE = """
import os, signal, sys, weakref
from micromegas_perfetto import _signals
from micromegas_perfetto.errors import Interrupted

class Held:
    pass

def callback(ref):  # a weakref callback: Python cannot propagate an exception raised here
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(200_000):
        pass  # the handler runs here, inside the callback

caught = None
with _signals.installed():
    held = Held()
    ref = weakref.ref(held, callback)
    try:
        del held
        for _ in range(2_000_000):
            pass
    except Interrupted as e:
        caught = e.signum
print(caught)
"""


def test_an_interruption_inside_a_weakref_callback_is_raised_again_not_printed():
    """A SIGINT whose handler ran inside a weakref callback (seen in a thread's cleanup) was
    printed as "Exception ignored ... Traceback" and lost; it is raised at the next safe point."""
    result = subprocess.run([sys.executable, "-c", UNRAISABLE], capture_output=True, text=True, timeout=60)
    assert result.stderr == "" and result.stdout.strip() == str(int(signal.SIGINT)), result


BROKEN_ON_THE_WAY_OUT = """
import os, signal, sys, time
from micromegas_perfetto import cli

def broken(args):  # a lock released by a `with` whose acquire the signal interrupted
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    finally:
        raise RuntimeError("release unlocked lock")

def swallowed(args):  # the interruption caught on the way, another failure later
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(5)
    except KeyboardInterrupt:
        pass
    raise OSError("[Errno 5] Input/output error")

cli.COMMANDS["validate"] = {"broken": broken, "swallowed": swallowed}[sys.argv[1]]
sys.exit(cli.main(["validate", "t.perfetto"]))
"""


@pytest.mark.parametrize("case, sig", [("broken", signal.SIGTERM), ("swallowed", signal.SIGHUP)])
def test_a_failure_that_follows_an_interruption_is_reported_as_the_interruption(case, sig):
    """A SIGTERM landing in queue's lock handoff made the `with` release an unlocked lock: the
    run said "error: RuntimeError: release unlocked lock (run with --debug ...)", exit 1."""
    result = subprocess.run([sys.executable, "-c", BROKEN_ON_THE_WAY_OUT, case],
                            capture_output=True, text=True, timeout=60)
    expected = f"interrupted by {signal.Signals(sig).name}: nothing written"
    assert (result.returncode, result.stderr.strip()) == (128 + sig, expected), result
