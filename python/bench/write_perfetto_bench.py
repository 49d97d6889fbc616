"""End-to-end benchmark of `python -m micromegas write_perfetto` (run by `make bench`).

Sample lakes with 1,000,000 thread spans (8 threads) and 200,000 async spans, and with 4x
the thread spans (8 threads x 500,000), are generated once into the given folder. Each run
is a fresh interpreter, so the wall time includes its start and the imports; the peak RSS
is that process's own (os.wait4; this process imports no pyarrow and the Flight server runs
in a process of its own, so no child inherits a larger high-water mark). Each write_perfetto
writes a new file: the previous run's trace is removed first, outside the timing. Prints `BENCH <name> <value> <unit>` lines, and the
same-run ratios of issue 14: write_perfetto over a bare pyarrow scan of the columns it reads
(also a fresh interpreter importing pyarrow.parquet), and a tiny write_perfetto (startup to
the first batch, and the trace) over `python -c "import pyarrow.parquet"`, and the FlightSQL
path: `write_perfetto --uri` (client-side) against the fixture server (python/tests/
flight_fixture.py, serving the 1x lake from its own process) over a bare pyarrow.flight `do_get`
of the same statements with the same headers (recorded by that server), from the same server.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def lake(folder: Path, spans_per_thread: int, async_spans: int = 200_000) -> Path:
    path = folder / f"lake-{spans_per_thread}-{async_spans}"
    if not (path / "streams.parquet").exists():
        subprocess.run([sys.executable, "-m", "micromegas_perfetto", "sample-lake", str(path), "--threads", "8",
                        "--spans-per-thread", str(spans_per_thread), "--async-spans", str(async_spans), "--quiet"],
                       check=True)
    return path


# A bare scan: the thread_spans columns of the process's cpu streams, then its async_events
# columns, batch by batch, as the library reads them; nothing done with them. pandas is kept
# out: where it is installed (make python-deps installs it for the tests), pq.read_table
# imports it (0.19 s, 30 MB) though the scan never uses it, and the command line does not
# import it; the reference is the scan on a machine without pandas, as on every run before.
SCAN = """
import sys
class NoPandas:  # as if pandas were not installed (pyarrow's shim then does without it)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pandas":
            raise ModuleNotFoundError("No module named 'pandas'", name=name)
sys.meta_path.insert(0, NoPandas())
import pyarrow.parquet as pq
lake, pid = sys.argv[1], sys.argv[2]
streams = pq.read_table(lake + "/streams.parquet", columns=["stream_id", "process_id", "tags"]).to_pylist()
ids = sorted(s["stream_id"] for s in streams if s["process_id"] == pid and "cpu" in (s["tags"] or []))
def scan(path, columns):
    f = pq.ParquetFile(path)
    for batch in f.iter_batches(batch_size=65536, columns=[c for c in columns if c in f.schema_arrow.names]):
        pass
for stream in ids:
    scan(lake + "/thread_spans/" + stream + ".parquet", ["begin", "end", "name", "target", "filename", "line"])
scan(lake + "/async_events/" + pid + ".parquet", ["stream_id", "time", "event_type", "span_id", "parent_span_id",
                                                   "depth", "name", "filename", "target", "line"])
"""


# A bare Flight transfer: each recorded statement's DoGet, read chunk by chunk, in order;
# nothing done with the batches.
BARE_DO_GET = """
import json, sys
import pyarrow.flight as flight
uri, calls = sys.argv[1], json.load(open(sys.argv[2]))
client = flight.FlightClient(uri)
for call in calls:
    options = flight.FlightCallOptions(headers=[(k.encode(), v.encode()) for k, v in call["headers"]])
    reader = client.do_get(flight.Ticket(bytes.fromhex(call["ticket"])), options)
    while True:
        try:
            reader.read_chunk()
        except StopIteration:
            break
"""


# The same reads with the command line's own import setup (cli._set_up_pyarrow: Arrow's
# system allocator, pyarrow without numpy, no collection over the import) and its exit
# without teardown (_entry.run): the `*_same_setup_ratio` lines are then what the tool adds
# to the read itself, not what its setup saves over pyarrow's defaults.
SAME_SETUP = """
import gc, os, sys
os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
sys.modules["numpy"] = None
gc.disable()
import pyarrow
pyarrow.default_memory_pool()
gc.enable()
del sys.modules["numpy"]
"""


def same_setup(code: str) -> str:
    return SAME_SETUP + code + "\nsys.stdout.flush()\nos._exit(0)\n"


# The fixture server, in its own process: the bench process stays small (no pyarrow), so the
# children it starts do not inherit a large RSS high-water mark (Linux keeps ru_maxrss across
# exec, and subprocess starts children with vfork). It prints its URI, then on each "calls"
# line the statements it has served so far (tickets and the headers the bare client resends).
SERVE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from flight_fixture import LakeFlightServer
from micromegas_perfetto.flightsql import statement_ticket
server = LakeFlightServer(sys.argv[2])
print(server.uri, flush=True)
for line in sys.stdin:
    with server.lock:
        calls = [{"ticket": statement_ticket(c["sql"]).hex(),
                  "headers": [[k, v] for k, v in c["headers"].items()
                              if k in ("query_range_begin", "query_range_end", "preserve_dictionary")]}
                 for c in server.calls]
    print(json.dumps(calls), flush=True)
server.shutdown()
"""


def flightsql_ratio(folder: Path, path: Path, pid: str) -> None:
    """write_perfetto --uri over a bare do_get of the same statements, same server, same run."""
    tests = Path(__file__).resolve().parents[1] / "tests"
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(tests), str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    out = folder / "bench-flightsql.perfetto"
    calls_file = folder / "bench-flightsql-calls.json"
    try:
        uri = server.stdout.readline().strip()
        if not uri:
            raise SystemExit("benchmark: the fixture Flight server did not start")
        args = ["write_perfetto", pid, "--uri", uri, "--filename", str(out), "--quiet"]
        run(args, remove=out)  # warm-up; records the statements and headers
        server.stdin.write("calls\n")
        server.stdin.flush()
        calls = json.loads(server.stdout.readline())
        calls_file.write_text(json.dumps(calls))
        clients, bares, tuned = [], [], []
        for _ in range(RUNS):  # interleaved, so both see the same machine and server
            clients.append(run(args, remove=out))
            bares.append(run(["-c", BARE_DO_GET, uri, str(calls_file)], module=False))
            tuned.append(run(["-c", same_setup(BARE_DO_GET), uri, str(calls_file)], module=False))
        wall, bare = min(clients)[0], min(bares)[0]
        print(f"BENCH python_flightsql_queries {len(calls)} queries")
        print(f"BENCH python_flightsql_bare_do_get_wall_seconds {bare:.3f} s")
        print(f"BENCH python_flightsql_bare_do_get_peak_rss_mb {max(b[1] for b in bares):.1f} MB")
        print(f"BENCH python_flightsql_write_perfetto_wall_seconds {wall:.3f} s")
        print(f"BENCH python_flightsql_write_perfetto_peak_rss_mb {max(c[1] for c in clients):.1f} MB")
        print(f"BENCH python_flightsql_ratio {wall / bare:.3f} x")
        print(f"BENCH python_flightsql_median_ratio {median(clients) / median(bares):.3f} x")
        print(f"BENCH python_flightsql_same_setup_ratio {wall / min(tuned)[0]:.3f} x")
        print(f"BENCH python_flightsql_same_setup_median_ratio {median(clients) / median(tuned):.3f} x")
    finally:
        server.stdin.close()
        server.wait()
        server.stdout.close()
        out.unlink(missing_ok=True)
        calls_file.unlink(missing_ok=True)


# Interleaved runs of each measured command: the best is reported (and the ratio of the
# bests); the ratio of the medians is printed too (the machine is shared: both say how noisy).
RUNS = 5


def median(results) -> float:
    walls = sorted(r[0] for r in results)
    return walls[len(walls) // 2]


def run(args, module=True, remove=None):
    """Wall seconds and peak RSS (MB) of one fresh `python -m micromegas_perfetto ARGS`
    (or `python ARGS` when not `module`). `remove`: a file deleted first, outside the timing
    (each run writes a new trace, not over the previous run's)."""
    if remove is not None:
        remove.unlink(missing_ok=True)
    started = time.monotonic()
    command = [sys.executable, "-m", "micromegas_perfetto", *args] if module else [sys.executable, *args]
    child = subprocess.Popen(command, stdout=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    output = child.stdout.read().decode()
    child.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark run failed: {args}")
    return wall, usage.ru_maxrss / 1024, output


def main():
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".build/bench-lakes")
    folder.mkdir(parents=True, exist_ok=True)
    peaks = {}  # label -> the peak RSS of each run
    for label, spans in (("1x", 125_000), ("4x", 500_000)):
        path = lake(folder, spans)
        pid = subprocess.run([sys.executable, "-m", "micromegas_perfetto", "list-processes", "--lake", str(path), "--ids"],
                             check=True, capture_output=True, text=True).stdout.split()[0]
        out = folder / f"bench-{label}.perfetto"
        runs, scans, tuned = [], [], []
        for _ in range(RUNS):  # interleaved, so both see the same machine
            runs.append(run(["write_perfetto", pid, "--lake", str(path), "--filename", str(out), "--quiet"], remove=out))
            scans.append(run(["-c", SCAN, str(path), pid], module=False))
            tuned.append(run(["-c", same_setup(SCAN), str(path), pid], module=False))
        wall, rss, _ = min(runs)
        scan_wall = min(scans)[0]
        print(f"BENCH python_bare_scan_{label}_wall_seconds {scan_wall:.3f} s")
        print(f"BENCH python_write_perfetto_{label}_ratio {wall / scan_wall:.3f} x")
        print(f"BENCH python_write_perfetto_{label}_median_ratio {median(runs) / median(scans):.3f} x")
        print(f"BENCH python_bare_scan_same_setup_{label}_wall_seconds {min(tuned)[0]:.3f} s")
        print(f"BENCH python_write_perfetto_{label}_same_setup_ratio {wall / min(tuned)[0]:.3f} x")
        print(f"BENCH python_write_perfetto_{label}_same_setup_median_ratio {median(runs) / median(tuned):.3f} x")
        print(f"BENCH python_bare_scan_{label}_peak_rss_mb {max(r[1] for r in scans):.1f} MB")
        print(f"BENCH python_write_perfetto_{label}_wall_seconds {wall:.3f} s")
        print(f"BENCH python_write_perfetto_{label}_peak_rss_mb {max(r[1] for r in runs):.1f} MB")
        print(f"BENCH python_write_perfetto_{label}_thread_spans {8 * spans} spans")
        print(f"BENCH python_write_perfetto_{label}_trace_mb {out.stat().st_size / 1e6:.1f} MB")
        peaks[label] = sorted(r[1] for r in runs)
        if label == "4x":
            # Flat memory: the 4x lake's peak over the 1x lake's, as medians of the runs
            # (the peak of one run varies by a few MB) and as the maxima printed above.
            middle = {k: v[len(v) // 2] for k, v in peaks.items()}
            print(f"BENCH python_write_perfetto_peak_rss_ratio_4x_over_1x {middle['4x'] / middle['1x']:.3f} x")
            print(f"BENCH python_write_perfetto_max_peak_rss_ratio_4x_over_1x {peaks['4x'][-1] / peaks['1x'][-1]:.3f} x")
        out.unlink()
        if label == "1x":
            flightsql_ratio(folder, path, pid)
    bare = run(["--version"])
    print(f"BENCH python_interpreter_and_import_seconds {bare[0]:.3f} s")
    # Startup: a write_perfetto of a process with a handful of spans (interpreter, imports,
    # the lake's small tables, first batch, trace) over importing pyarrow.parquet alone.
    tiny = lake(folder, 10, 10)
    pid = subprocess.run([sys.executable, "-m", "micromegas_perfetto", "list-processes", "--lake", str(tiny), "--ids"],
                         check=True, capture_output=True, text=True).stdout.split()[0]
    out = folder / "bench-tiny.perfetto"
    starts, imports, tuned = [], [], []
    for _ in range(5):
        starts.append(run(["write_perfetto", pid, "--lake", str(tiny), "--filename", str(out), "--quiet"], remove=out)[0])
        imports.append(run(["-c", "import pyarrow.parquet"], module=False)[0])
        tuned.append(run(["-c", same_setup("import pyarrow.parquet")], module=False)[0])
    out.unlink()
    print(f"BENCH python_startup_write_perfetto_tiny_seconds {min(starts):.3f} s")
    print(f"BENCH python_import_pyarrow_parquet_seconds {min(imports):.3f} s")
    print(f"BENCH python_startup_ratio {min(starts) / min(imports):.3f} x")
    print(f"BENCH python_startup_same_setup_ratio {min(starts) / min(tuned):.3f} x")


if __name__ == "__main__":
    main()
