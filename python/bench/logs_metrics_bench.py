"""Benchmark of `write_perfetto --logs --metrics` (run by `make bench`): memory must not grow
with the number of log entries and measures.

A small sample lake (one thread) gets 500,000 log entries (distinct messages, all levels) and
500,000 measures over 4 metrics spread over 10 s (1x), or 4x as many of each. Each run is a
fresh interpreter; the peak RSS is that process's own (os.wait4). Prints `BENCH` lines,
including the same-run ratio of the 4x peak RSS to the 1x one.

This process imports no pyarrow (nor, through pq.read_table, pandas where it is installed):
Linux keeps ru_maxrss across exec and subprocess starts children with vfork, so each child's
peak RSS would count this process's pages. Only the child that makes a lake imports it.
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BASE = 500_000
SPREAD_NS = 10_000_000_000


def lake(folder: Path, scale: int) -> tuple:
    """The lake of `scale`, made in a child process: building it takes memory, which a child of
    this process would otherwise start with (its peak RSS counts the pages shared at fork)."""
    path = folder / f"logs-lake-{scale}x"
    marker = path / "lake.txt"  # "<process id> <start ns>", written last by the child
    if not marker.exists():
        shutil.rmtree(path, ignore_errors=True)  # unfinished, or made before the marker said more
        subprocess.run([sys.executable, __file__, "--make-lake", str(path), str(scale)], check=True)
    pid, start = marker.read_text().split()
    return path, pid, int(start)


def make_lake(path: Path, scale: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from micromegas_perfetto.sample_lake import write_sample_lake
    marker = path / "lake.txt"
    if not marker.exists():
        write_sample_lake(path, seed=3, threads=1, spans_per_thread=100, async_spans=0)
        pid = pq.read_table(path / "processes.parquet").column("process_id")[0].as_py()
        start = pq.read_table(path / "processes.parquet").column("start_time").cast(pa.int64())[0].as_py()
        n = BASE * scale
        times = pa.array([start + i * SPREAD_NS // n for i in range(n)], pa.timestamp("ns", tz="UTC"))
        targets = pa.DictionaryArray.from_arrays(pa.array([i % 7 for i in range(n)], pa.int32()),
                                                 pa.array([f"module::{k}" for k in range(7)]))
        pq.write_table(pa.table({
            "time": times, "target": targets,
            "level": pa.array([1 + i % 6 for i in range(n)], pa.int32()),
            "msg": pa.array([f"request {i} answered in {i % 97} ms by worker {i % 13}" for i in range(n)]),
        }), path / "log_entries" / f"{pid}.parquet", row_group_size=65_536)
        names = ["frame_time", "memory", "queue_depth", "latency"]
        units = ["ms", "bytes", "count", "ns"]
        pq.write_table(pa.table({
            "time": times,
            "name": pa.DictionaryArray.from_arrays(pa.array([i % 4 for i in range(n)], pa.int32()), pa.array(names)),
            "unit": pa.DictionaryArray.from_arrays(pa.array([i % 4 for i in range(n)], pa.int32()), pa.array(units)),
            "value": pa.array([float(i % 1000) * 0.5 for i in range(n)], pa.float64()),
        }), path / "measures" / f"{pid}.parquet", row_group_size=65_536)
        marker.write_text(f"{pid} {start}")


def run(args):
    """Wall seconds and peak RSS (MB) of one fresh `python -m micromegas ARGS`."""
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "micromegas", *args], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark run failed: {args}")
    return time.monotonic() - started, usage.ru_maxrss / 1024


def main():
    if sys.argv[1:2] == ["--make-lake"]:
        make_lake(Path(sys.argv[2]), int(sys.argv[3]))
        return
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".build/bench-lakes")
    folder.mkdir(parents=True, exist_ok=True)
    rss = {}
    for scale in (1, 4):
        path, pid, start = lake(folder, scale)
        out = folder / f"logs-{scale}x.perfetto"
        common = ["write_perfetto", pid, "--lake", str(path), "--filename", str(out), "--quiet",
                  "--begin", str(start), "--end", str(start + SPREAD_NS)]
        plain = min(run(common) for _ in range(2))
        runs = [run(common + ["--logs", "--metrics"]) for _ in range(3)]
        wall = min(r[0] for r in runs)
        # The median of the runs' peaks: one run's peak varies by several MB (the reading
        # thread's timing), which the ratio below should not take for growth.
        rss[scale] = sorted(r[1] for r in runs)[1]
        rows = 2 * BASE * scale
        print(f"BENCH logs_metrics_{scale}x_rows {rows} rows")
        print(f"BENCH logs_metrics_{scale}x_peak_rss_mb {rss[scale]:.1f} MB")
        print(f"BENCH logs_metrics_{scale}x_rows_per_second {rows / max(wall - plain[0], 1e-3):.0f} rows/s")
        print(f"BENCH logs_metrics_{scale}x_trace_bytes_per_row {out.stat().st_size / rows:.1f} bytes")
        out.unlink()
    print(f"BENCH logs_metrics_peak_rss_ratio_4x_over_1x {rss[4] / rss[1]:.2f} x")


if __name__ == "__main__":
    main()
