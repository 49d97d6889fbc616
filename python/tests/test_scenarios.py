"""Byte identity: Python (ctypes) = pmm-scenario (Swift) = micromegas' golden traces."""
import pytest
from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace

from conftest import GOLDEN, GOLDEN_NAMES, PMM_SCENARIO, run_cli
import subprocess

from micromegas_perfetto.writer import PerfettoWriter
from micromegas_perfetto.scenario import load, replay


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_write_scenario_matches_golden_and_swift(name, tmp_path):
    golden = (GOLDEN / f"{name}.perfetto").read_bytes()
    result = run_cli("write_scenario", GOLDEN / f"{name}.json", tmp_path / "py.perfetto")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "py.perfetto").read_bytes() == golden
    subprocess.run([PMM_SCENARIO, GOLDEN / f"{name}.json", tmp_path / "swift.perfetto"], check=True,
                   capture_output=True)
    assert (tmp_path / "swift.perfetto").read_bytes() == golden


@pytest.mark.parametrize("name", ["basic", "interning", "many_threads"])
@pytest.mark.parametrize("chunk_size", [1, 200, 5000])
def test_chunks_concatenate_to_the_whole_and_parse_alone(name, chunk_size):
    scenario = load(GOLDEN / f"{name}.json")
    chunks = []
    with PerfettoWriter(scenario["process_id"], lambda i, data: chunks.append((i, data)), chunk_size=chunk_size) as w:
        replay(scenario, w)
    assert [i for i, _ in chunks] == list(range(len(chunks)))
    assert b"".join(data for _, data in chunks) == (GOLDEN / f"{name}.perfetto").read_bytes()
    for i, data in chunks:
        packets = Trace.FromString(data).packet
        assert len(packets) >= 1
        if i < len(chunks) - 1:
            assert len(data) >= chunk_size
        if chunk_size == 1:
            assert len(packets) == 1


def test_memory_writer_equals_golden():
    scenario = load(GOLDEN / "basic.json")
    with PerfettoWriter(scenario["process_id"]) as w:
        replay(scenario, w)
        assert w.getvalue() == (GOLDEN / "basic.perfetto").read_bytes()
        assert w.getvalue() == b""  # taken


def test_file_writer_equals_golden(tmp_path):
    scenario = load(GOLDEN / "long_strings.json")
    with open(tmp_path / "out.perfetto", "wb") as f, PerfettoWriter(scenario["process_id"], f) as w:
        replay(scenario, w)
    assert (tmp_path / "out.perfetto").read_bytes() == (GOLDEN / "long_strings.perfetto").read_bytes()


def test_write_scenario_to_a_terminal_or_to_stderr_s_file_exits_2(tmp_path):
    """`write_scenario S.json -` to a terminal wrote binary there, and with `> t 2>&1` its
    `wrote -: N bytes` line went after the trace into t: both are exit 2 now, one line, no
    trace byte (as write_perfetto)."""
    import os
    import pty
    import sys
    scenario = GOLDEN / f"{GOLDEN_NAMES[0]}.json"
    args = [sys.executable, "-m", "micromegas", "write_scenario", str(scenario), "-"]
    primary, secondary = pty.openpty()
    try:
        result = subprocess.run(args, stdout=secondary, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(secondary)
        os.close(primary)
    assert result.returncode == 2 and b"OUT.perfetto -: standard output is a terminal" in result.stderr
    out = tmp_path / "t"
    with open(out, "wb") as f:
        result = subprocess.run(args, stdout=f, stderr=f, timeout=120)
    assert result.returncode == 2
    text = out.read_text()
    assert text.startswith("error: OUT.perfetto -: standard error goes to the same place") and text.count("\n") == 1
    with open(out, "wb") as f:  # the trace alone in the file: written, byte for byte the golden
        assert subprocess.run(args, stdout=f, stderr=subprocess.PIPE, timeout=120).returncode == 0
    assert out.read_bytes() == (GOLDEN / f"{GOLDEN_NAMES[0]}.perfetto").read_bytes()
