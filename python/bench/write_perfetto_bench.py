"""End-to-end benchmark of `python -m micromegas write_perfetto` (run by `make bench`).

Sample lakes with 1,000,000 thread spans (8 threads) and 200,000 async spans, and with 4x
the thread spans (8 threads x 500,000), are generated once into the given folder. Each run
is a fresh interpreter, so the wall time includes its start and the imports; the peak RSS
is that process's own (os.wait4). Prints `BENCH <name> <value> <unit>` lines.
"""
import os
import subprocess
import sys
import time
from pathlib import Path


def lake(folder: Path, spans_per_thread: int) -> Path:
    path = folder / f"lake-{spans_per_thread}"
    if not (path / "streams.parquet").exists():
        subprocess.run([sys.executable, "-m", "micromegas", "sample-lake", str(path), "--threads", "8",
                        "--spans-per-thread", str(spans_per_thread), "--async-spans", "200000", "--quiet"],
                       check=True)
    return path


def run(args):
    """Wall seconds and peak RSS (MB) of one fresh `python -m micromegas ARGS`."""
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "micromegas", *args], stdout=subprocess.PIPE)
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
    for label, spans in (("1x", 125_000), ("4x", 500_000)):
        path = lake(folder, spans)
        pid = subprocess.run([sys.executable, "-m", "micromegas", "list-processes", "--lake", str(path), "--ids"],
                             check=True, capture_output=True, text=True).stdout.split()[0]
        out = folder / f"bench-{label}.perfetto"
        runs = [run(["write_perfetto", pid, "--lake", str(path), "--filename", str(out), "--quiet"]) for _ in range(3)]
        wall, rss, _ = min(runs)
        print(f"BENCH python_write_perfetto_{label}_wall_seconds {wall:.3f} s")
        print(f"BENCH python_write_perfetto_{label}_peak_rss_mb {max(r[1] for r in runs):.1f} MB")
        print(f"BENCH python_write_perfetto_{label}_thread_spans {8 * spans} spans")
        print(f"BENCH python_write_perfetto_{label}_trace_mb {out.stat().st_size / 1e6:.1f} MB")
        out.unlink()
    bare = run(["--version"])
    print(f"BENCH python_interpreter_and_import_seconds {bare[0]:.3f} s")


if __name__ == "__main__":
    main()
