"""Same-run speed ratio of two pmm-bench builds (run by `make bench`).

    compare_builds.py NAME PMM_BENCH_A PMM_BENCH_B [RUNS]

Runs the `memory` and `generator-memory` cases of each build in turn, A B A B ..., and
prints the median of the per-pair ratios A/B of their timed sections as
`BENCH NAME_<figure>_ratio <ratio> x` (below 1: A is faster), with min and max on the
next line. Pairing runs this way keeps a ratio meaningful while the machine's speed drifts.
"""
import statistics
import subprocess
import sys

FIGURES = {"memory": ["writer_memory_seconds"],
           "generator-memory": ["generator_memory_thread_seconds", "generator_memory_total_seconds"]}


def figures(binary, case):
    out = subprocess.run([binary, case], check=True, capture_output=True, text=True).stdout
    values = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "BENCH":
            values[parts[1]] = float(parts[2])
    return values


def main():
    name, a, b = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    for case, wanted in FIGURES.items():
        ratios = {figure: [] for figure in wanted}
        for _ in range(runs):
            fa, fb = figures(a, case), figures(b, case)
            for figure in wanted:
                ratios[figure].append(fa[figure] / fb[figure])
        for figure, values in ratios.items():
            short = figure.replace("_seconds", "")
            print(f"BENCH {name}_{short}_ratio {statistics.median(values):.3f} x")
            print(f"  ({runs} pairs: min {min(values):.3f}, max {max(values):.3f})")


if __name__ == "__main__":
    main()
