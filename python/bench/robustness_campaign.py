"""The hostile-user campaign of issue 11, Python/CLI side: signals at random moments, mid-stream
failures, odd output targets, out-of-range values and shared writers. Prints one figure per
line (`CAMPAIGN name value`), so runs before and after a change compare line by line.

    python bench/robustness_campaign.py WORKDIR [--trials N]

Runs `python -m micromegas_perfetto` from whatever is importable (PYTHONPATH). Needs root only
for the tmpfs disk-full case (skipped otherwise). Device targets are device nodes made in
WORKDIR (mknod), never the system's /dev/null: an old version replaces its target.
"""
import argparse
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

PY = sys.executable
CLI = [PY, "-m", "micromegas_perfetto"]


def say(name, value):
    print(f"CAMPAIGN {name} {value}", flush=True)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


def one_line(result):
    lines = result.stderr.strip().splitlines()
    return (lines[-1] if lines else "")[:150]


def make_lake(work: Path, name: str, threads: int, spans: int) -> Path:
    lake = work / name
    if not (lake / "streams.parquet").exists():
        shutil.rmtree(lake, ignore_errors=True)
        subprocess.run([*CLI, "sample-lake", str(lake), "--threads", str(threads), "--spans-per-thread", str(spans),
                        "--quiet"], check=True)
    return lake


def main_process(lake: Path) -> str:
    return run([*CLI, "list-processes", "--lake", str(lake), "--ids"]).stdout.split()[0]


def signals(work: Path, lake: Path, pid: str, trials: int):
    write = [*CLI, "write_perfetto", pid, "--lake", str(lake), "--quiet"]
    out = work / "signals"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    started = time.monotonic()
    run([*write, "--filename", str(out / "t.perfetto")], check=True)
    duration = time.monotonic() - started
    full = (out / "t.perfetto").stat().st_size
    (out / "t.perfetto").unlink()
    say("signals.full_run_seconds", f"{duration:.2f}")
    rng = random.Random(11)
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        left = tracebacks = completed = wrong_code = startup = 0
        largest = 0
        for _ in range(trials):
            child = subprocess.Popen([*write, "--filename", str(out / "t.perfetto")], stderr=subprocess.PIPE,
                                     text=True)
            time.sleep(rng.uniform(0.0, duration))
            child.send_signal(sig)
            _, err = child.communicate()
            entries = list(out.iterdir())
            if [e.name for e in entries] == ["t.perfetto"] and entries[0].stat().st_size == full:
                completed += 1  # the signal came after the trace was complete and in place
            else:
                if entries:
                    left += 1
                    largest = max(largest, max(e.stat().st_size for e in entries))
                expected = -9 if sig == signal.SIGKILL else 128 + sig
                if child.returncode != expected:
                    wrong_code += 1
            if "Traceback" in err:
                tracebacks += 1
                startup += "micromegas" not in err  # in the interpreter's own start (site), before any package code
            for e in entries:
                e.unlink()
        name = signal.Signals(sig).name
        say(f"signals.{name}.trials", trials)
        say(f"signals.{name}.complete_trace_in_place", completed)
        say(f"signals.{name}.left_files", left)
        say(f"signals.{name}.largest_left_bytes", largest)
        say(f"signals.{name}.tracebacks", tracebacks)
        say(f"signals.{name}.tracebacks_in_interpreter_startup", startup)
        say(f"signals.{name}.wrong_exit_code", wrong_code)
    # SIGINT early (interpreter start and imports)
    tracebacks = wrong = startup = 0
    for _ in range(trials):
        child = subprocess.Popen([*write, "--filename", str(out / "t.perfetto")], stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.02, 0.3))
        child.send_signal(signal.SIGINT)
        _, err = child.communicate()
        tracebacks += "Traceback" in err
        startup += "Traceback" in err and "micromegas" not in err
        wrong += child.returncode not in (0, 130)
        for e in out.iterdir():
            e.unlink()
    say("signals.SIGINT_early.trials", trials)
    say("signals.SIGINT_early.tracebacks", tracebacks)
    say("signals.SIGINT_early.tracebacks_in_interpreter_startup", startup)
    say("signals.SIGINT_early.wrong_exit_code", wrong)


def null_row_lake(work: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    base = make_lake(work, "lake-200k", 2, 200_000)
    broken = work / "lake-null-row"
    shutil.rmtree(broken, ignore_errors=True)
    shutil.copytree(base, broken)
    first = sorted((broken / "thread_spans").iterdir())[0]
    table = pq.read_table(first)
    begin = table.column("begin").cast(pa.int64()).to_pylist()
    begin[150_000] = None
    index = table.schema.get_field_index("begin")
    table = table.set_column(index, table.schema.field(index).with_nullable(True),
                             pa.array(begin, pa.int64()).cast(table.schema.field(index).type))
    pq.write_table(table, first, row_group_size=1 << 20)
    return broken


def failures(work: Path, lake: Path, pid: str):
    write = [*CLI, "write_perfetto", pid, "--lake", str(lake), "--quiet"]

    def report(name, result, folder=None):
        say(f"failure.{name}.exit", result.returncode)
        say(f"failure.{name}.stderr_lines", len(result.stderr.strip().splitlines()))
        say(f"failure.{name}.traceback", int("Traceback" in result.stderr))
        say(f"failure.{name}.message", repr(one_line(result)))
        if folder is not None:
            say(f"failure.{name}.left_files", len(list(folder.iterdir())))

    small = work / "tmpfs"
    small.mkdir(exist_ok=True)
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)],
                                                   capture_output=True).returncode == 0
    if mounted:
        try:
            report("disk_full_tmpfs", run([*write, "--filename", str(small / "t.perfetto")]), small)
        finally:
            subprocess.run(["umount", str(small)])
    folder = work / "fsize"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    limit = textwrap.dedent("""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))
        sys.argv[0] = "micromegas-perfetto"
        from micromegas_perfetto.cli import main
        sys.exit(main())
    """)
    report("file_size_limit", run([PY, "-c", limit, "write_perfetto", pid, "--lake", str(lake), "--quiet",
                                   "--filename", str(folder / "t.perfetto")]), folder)
    device = work / "devices"
    shutil.rmtree(device, ignore_errors=True)
    device.mkdir()
    if os.geteuid() == 0:
        os.mknod(device / "full", 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        report("dev_full", run([*write, "--filename", str(device / "full")]))
        say("failure.dev_full.still_char_device", int(stat.S_ISCHR(os.lstat(device / "full").st_mode)))
    broken = null_row_lake(work)
    out = work / "null-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    report("null_begin_row_150000", run([*CLI, "write_perfetto", main_process(broken), "--lake", str(broken),
                                         "--quiet", "--filename", str(out / "t.perfetto")]), out)


def targets(work: Path, lake: Path, pid: str):
    write = [*CLI, "write_perfetto", pid, "--lake", str(lake), "--quiet", "--spans", "thread"]
    folder = work / "targets"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    reference = folder / "reference.perfetto"
    run([*write, "--filename", str(reference)], check=True)
    expected = reference.read_bytes()
    fifo = folder / "fifo"
    os.mkfifo(fifo)
    received = folder / "received"
    with open(received, "wb") as sink:
        reader = subprocess.Popen(["cat", str(fifo)], stdout=sink)
    result = run([*write, "--filename", str(fifo)])
    try:
        reader.wait(timeout=10)
    except subprocess.TimeoutExpired:  # the writer never opened the FIFO
        reader.kill()
        reader.wait()
    data = received.read_bytes()
    say("target.fifo.exit", result.returncode)
    say("target.fifo.still_fifo", int(stat.S_ISFIFO(os.lstat(fifo).st_mode)))
    say("target.fifo.reader_got_the_trace", int(data == expected))
    if os.geteuid() == 0:
        null = folder / "null"
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        result = run([*write, "--filename", str(null)])
        say("target.char_device.exit", result.returncode)
        say("target.char_device.still_char_device", int(stat.S_ISCHR(os.lstat(null).st_mode)))
    real = folder / "real.perfetto"
    real.write_bytes(b"old")
    link = folder / "link.perfetto"
    link.symlink_to(real.name)
    result = run([*write, "--filename", str(link)])
    say("target.symlink.exit", result.returncode)
    say("target.symlink.link_kept", int(link.is_symlink()))
    say("target.symlink.target_has_the_trace", int(real.read_bytes() == expected))
    stdout = subprocess.run([*write, "--filename", "-"], capture_output=True)
    say("target.stdout.exit", stdout.returncode)
    say("target.stdout.trace_on_stdout", int(stdout.stdout == expected))
    say("target.stdout.left_file_named_dash", int((Path.cwd() / "-").exists()))
    for name, path in (("missing_folder", folder / "nowhere" / "t.perfetto"), ("folder", folder),
                       ("empty", "")):
        result = run([*write, "--filename", str(path)])
        say(f"target.{name}.exit", result.returncode)
        say(f"target.{name}.message", repr(one_line(result)))


def ranges(work: Path, lake: Path, pid: str):
    write = [*CLI, "write_perfetto", pid, "--lake", str(lake), "--quiet", "--filename", str(work / "r.perfetto")]
    cases = {
        "begin_2^70": ["--begin", str(1 << 70), "--end", str((1 << 70) + 10)],
        "end_year_3000": ["--end", "3000-01-01"],
        "chunk_size_2^70": ["--chunk-size", str(1 << 70)],
        "begin_5000_digits": ["--begin", "1" * 5000],
        "begin_huge_negative": ["--begin", "-" + "9" * 30],
        "empty_lake": ["--lake", ""],
        "empty_filename": ["--filename", ""],
    }
    for name, extra in cases.items():
        result = run([*write, *extra])
        say(f"range.{name}.exit", result.returncode)
        say(f"range.{name}.message", repr(one_line(result)))
        (work / "r.perfetto").unlink(missing_ok=True)
    result = run([*CLI, "write_perfetto", os.fsdecode(b"\xff\xfe"), "--lake", str(lake), "--quiet",
                  "--filename", str(work / "r.perfetto")])
    say("range.non_utf8_process_id.exit", result.returncode)
    say("range.non_utf8_process_id.message", repr(one_line(result)))
    api = textwrap.dedent(f"""
        import sys
        from micromegas_perfetto import PerfettoWriter, generate_trace_chunks
        cases = {{
            "writer_fd_2^32+1": lambda: PerfettoWriter("p", 2**32 + 1).close(),
            "writer_chunk_size_2^70": lambda: PerfettoWriter("p", lambda i, d: None, chunk_size=2**70).close(),
            "chunks_begin_2^70": lambda: sum(len(c) for _, c in generate_trace_chunks({str(lake)!r}, {pid!r},
                                                                                    begin=2**70, end=2**70 + 10)),
        }}
        for name, case in cases.items():
            try:
                value = case()
                print(name, "accepted", repr(value)[:80])
            except Exception as e:
                print(name, "refused", type(e).__name__, str(e)[:100])
    """)
    for line in run([PY, "-c", api]).stdout.splitlines():
        name, rest = line.split(" ", 1)
        say(f"api.{name}", repr(rest))


def threads(work: Path, trials: int):
    hammer = textwrap.dedent("""
        import sys, threading
        from micromegas_perfetto import PerfettoWriter
        w = PerfettoWriter("p", lambda i, d: None, chunk_size=4096)
        w.emit_process_descriptor("exe")
        for s in ("a", "b"):
            w.emit_thread_descriptor(s, 1, s)
        def work(s):
            for i in range(20000):
                w.set_current_thread(s)
                w.emit_span(i, i + 1, "name%d" % (i % 50), "t", "f", i)
        ts = [threading.Thread(target=work, args=(s,)) for s in ("a", "b")]
        [t.start() for t in ts]
        [t.join() for t in ts]
        w.close()
    """)
    closing = textwrap.dedent("""
        import threading, time
        from micromegas_perfetto import PerfettoWriter, errors
        w = PerfettoWriter("p", lambda i, d: None, chunk_size=4096)
        w.set_current_thread("a")
        def work():
            try:
                for i in range(200000):
                    w.emit_span(i, i + 1, "n", "t", "f", i)
            except errors.PerfettoError:
                pass
        t = threading.Thread(target=work)
        t.start()
        time.sleep(0.02)
        w.close()
        t.join()
    """)
    for name, script, n in (("two_threads_one_writer", hammer, trials), ("close_during_emit", closing, trials)):
        crashed = 0
        for _ in range(n):
            result = run([PY, "-c", script])
            crashed += result.returncode != 0
        say(f"threads.{name}.trials", n)
        say(f"threads.{name}.failed_runs", crashed)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("work")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--only", default="signals,failures,targets,ranges,threads")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    lake = make_lake(work, "lake-1M", 8, 125_000)
    pid = main_process(lake)
    only = args.only.split(",")
    if "signals" in only:
        signals(work, lake, pid, args.trials)
    if "failures" in only:
        failures(work, lake, pid)
    if "targets" in only:
        targets(work, lake, pid)
    if "ranges" in only:
        ranges(work, lake, pid)
    if "threads" in only:
        threads(work, min(args.trials, 10))


if __name__ == "__main__":
    main()
