"""micromegas_perfetto.validate and `validate` on the command line: reports checked against an
independent model of Perfetto's slice rebuilding over traces decoded with Perfetto's protos."""
import json
import io
import os
import threading
from collections import defaultdict

import pytest
from conftest import GOLDEN, GOLDEN_NAMES, run_cli
from trace_check import decode, written_slices

import micromegas_perfetto
from micromegas_perfetto import write_process_trace
from micromegas_perfetto.validate import ValidationReport


def written(events):
    """(track, begin, end, (name, category)) of each slice as written: its begin, then its end."""
    slices = written_slices(events)  # checks the begin/end pattern
    return [(track, b, e, (begin.name, begin.category)) for (track, b, e, _), begin in zip(slices, events[0::2])]


def perfetto_wrong_slices(slices):
    """(wrong, misplaced) for slices (track, begin, end, key) written begin-then-end in this
    order: sorted by (ts, file order), one stack per track, an end closing the topmost open
    slice of its name and category, a closed slice buried under open ones cutting them off
    when passed."""
    by_track = defaultdict(list)
    for i, (track, b, e, name) in enumerate(slices):
        by_track[track].append((b, 2 * i, False, i, name))
        by_track[track].append((e, 2 * i + 1, True, i, name))
    shown, wrong, misplaced = {}, 0, 0
    for events in by_track.values():
        stack = []  # [slice index, end or None]
        for ts, _, is_end, i, name in sorted(events):
            j, open_above = len(stack) - 1, False
            while j >= 0:
                end = stack[j][1]
                if end is None:
                    open_above = True
                elif open_above:
                    if ts > end:
                        misplaced += 1
                        for child in stack[j + 1:]:
                            shown[child[0]] = end
                        del stack[j:]
                        open_above = False
                elif end <= ts:
                    stack.pop()
                j -= 1
            if not is_end:
                if len(stack) < 512:
                    stack.append([i, None])
                continue
            for k in range(len(stack) - 1, -1, -1):
                if stack[k][1] is None and slices[stack[k][0]][3] == name:
                    stack[k][1] = ts
                    shown[stack[k][0]] = ts
                    if k == len(stack) - 1:
                        stack.pop()
                    break
    wrong = sum(1 for i, s in enumerate(slices) if shown.get(i) != s[2])
    return wrong, misplaced


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_goldens_report_exactly_the_wrong_slices(name):
    data = (GOLDEN / f"{name}.perfetto").read_bytes()
    decoded = decode(data)
    expected_wrong, expected_misplaced = perfetto_wrong_slices(written(decoded.events))
    report = micromegas_perfetto.validate(GOLDEN / f"{name}.perfetto")
    assert isinstance(report, ValidationReport) and report.is_trace
    assert report.wrong_duration_slices == expected_wrong
    assert report.misplaced_end_events == expected_misplaced
    assert set(report.problems) <= {"wrong_duration", "misplaced_end_event", "unmatched_end"}
    assert report.stats["slices"] == len(decoded.events) // 2
    assert report.stats["bytes"] == len(data) and report.stats["packets"] == decoded.packets
    assert report.clean == (expected_wrong == 0)
    if name in ("large", "many_threads"):
        assert expected_wrong > 0
    # Bytes, a path and a file object give the same report.
    assert micromegas_perfetto.validate(data) == report
    assert micromegas_perfetto.validate(bytearray(data)) == report
    with open(GOLDEN / f"{name}.perfetto", "rb") as f:
        assert micromegas_perfetto.validate(f) == report


def test_examples_point_at_packets():
    data = (GOLDEN / "large.perfetto").read_bytes()
    report = micromegas_perfetto.validate(data)
    kinds = [p.kind for p in report.examples]
    assert kinds.count("wrong_duration") == 5 and kinds.count("misplaced_end_event") == 5
    for p in report.examples:
        assert 0 <= p.packet_offset < len(data) and data[p.packet_offset] == 0x0A and p.message


def test_sample_lake_micromegas_layout_is_wrong_and_lanes_are_clean(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    write_process_trace(lake, pid, None, None, tmp_path / "m.perfetto", async_layout="micromegas")
    write_process_trace(lake, pid, None, None, tmp_path / "l.perfetto", async_layout="lanes")
    m = micromegas_perfetto.validate(tmp_path / "m.perfetto")
    decoded = decode((tmp_path / "m.perfetto").read_bytes())
    expected_wrong, expected_misplaced = perfetto_wrong_slices(written(decoded.events))
    assert m.wrong_duration_slices == expected_wrong > 0
    assert m.misplaced_end_events == expected_misplaced
    lanes = micromegas_perfetto.validate(tmp_path / "l.perfetto")
    assert lanes.clean, lanes.problems
    # Lanes keep the open and begun-before spans micromegas' layout drops.
    assert lanes.stats["slices"] >= m.stats["slices"] > 0


def test_not_a_trace_cut_and_unreadable(tmp_path):
    assert not micromegas_perfetto.validate(b"").is_trace
    garbage = micromegas_perfetto.validate(b"GIF89a...")
    assert not garbage.is_trace and "framing" in garbage.problems
    data = (GOLDEN / "basic.perfetto").read_bytes()
    cut = micromegas_perfetto.validate(data[:-5])
    assert cut.is_trace and cut.problems.get("truncated") == 1
    with pytest.raises(OSError):
        micromegas_perfetto.validate(tmp_path / "missing.perfetto")
    with pytest.raises(TypeError):
        micromegas_perfetto.validate(12.5)


def test_cli_exit_codes_and_json(tmp_path):
    clean = run_cli("validate", GOLDEN / "basic_thread.perfetto")
    assert clean.returncode == 0 and "no problems" in clean.stdout
    wrong = run_cli("validate", GOLDEN / "large.perfetto")
    assert wrong.returncode == 1
    assert "wrong_duration: " in wrong.stdout and "misplaced_end_event" in wrong.stdout
    as_json = run_cli("validate", GOLDEN / "large.perfetto", "--json")
    assert as_json.returncode == 1
    doc = json.loads(as_json.stdout)
    report = micromegas_perfetto.validate(GOLDEN / "large.perfetto")
    assert doc["wrong_duration_slices"] == report.wrong_duration_slices
    assert doc["problems"] == report.problems and len(doc["examples"]) == len(report.examples)
    (tmp_path / "cut.perfetto").write_bytes((GOLDEN / "basic_thread.perfetto").read_bytes()[:-3])
    assert run_cli("validate", tmp_path / "cut.perfetto").returncode == 1
    (tmp_path / "text.perfetto").write_text("not a trace at all")
    assert run_cli("validate", tmp_path / "text.perfetto").returncode == 2
    missing = run_cli("validate", tmp_path / "missing.perfetto")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert run_cli("validate", tmp_path).returncode == 2  # a folder
    with open(GOLDEN / "basic_thread.perfetto", "rb") as f:
        import subprocess
        import sys
        piped = subprocess.run([sys.executable, "-m", "micromegas", "validate", "-"], stdin=f, capture_output=True,
                               text=True, timeout=60)
    assert piped.returncode == 0, piped.stderr


def test_write_perfetto_validate(small_lake, tmp_path):
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    ok = run_cli("write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "l.perfetto", "--validate")
    assert ok.returncode == 0, ok.stderr
    assert "no problems" in ok.stdout
    bad = run_cli("write_perfetto", pid, "--lake", lake, "--filename", tmp_path / "m.perfetto", "--validate",
                  "--async-layout", "micromegas")
    assert bad.returncode == 1
    report = micromegas_perfetto.validate(tmp_path / "m.perfetto")
    assert f"{report.wrong_duration_slices:,} slices shown with a wrong duration" in bad.stdout
    assert os.path.getsize(tmp_path / "m.perfetto") > 0  # kept


def test_server_side_trace_is_reported_and_lanes_are_clean(small_lake, tmp_path):
    """The issue's check: a server-side trace (micromegas' layout, written by the server's
    perfetto_trace_chunks) of the sample lake, validated with --validate, reports the async
    slices Perfetto shows wrong; the lanes trace of the same data reports none."""
    from flight_fixture import LakeFlightServer
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    server = LakeFlightServer(lake)
    try:
        s = run_cli("write_perfetto", pid, "--uri", server.uri, "--server-side", "--filename",
                    tmp_path / "s.perfetto", "--validate")
        lanes = run_cli("write_perfetto", pid, "--uri", server.uri, "--filename", tmp_path / "l.perfetto",
                        "--validate")
    finally:
        server.shutdown()
    assert s.returncode == 1, s.stderr
    report = micromegas_perfetto.validate(tmp_path / "s.perfetto")
    decoded = decode((tmp_path / "s.perfetto").read_bytes())
    assert report.wrong_duration_slices == perfetto_wrong_slices(written(decoded.events))[0] > 0
    assert f"{report.wrong_duration_slices:,} slices shown with a wrong duration" in s.stdout
    assert lanes.returncode == 0 and "no problems" in lanes.stdout, lanes.stdout + lanes.stderr


def test_file_objects_are_read_from_their_own_position(tmp_path):
    """A buffered reader's position, not the OS offset under it; left at the end."""
    data = (GOLDEN / "large.perfetto").read_bytes()
    whole = micromegas_perfetto.validate(data)
    path = tmp_path / "prefixed.perfetto"
    path.write_bytes(b"JUNK" + data)
    with open(path, "rb") as f:
        assert f.read(4) == b"JUNK"  # the buffer now holds much more than 4 bytes
        assert micromegas_perfetto.validate(f) == whole
        assert f.read() == b""
    with open(path, "rb", buffering=0) as f:
        f.read(4)
        assert micromegas_perfetto.validate(f) == whole
    # A pipe behind a buffer: what the buffer already read is validated too.
    read_fd, write_fd = os.pipe()
    with open(read_fd, "rb") as reader:
        def feed():
            with open(write_fd, "wb") as writer:
                writer.write(b"JUNK" + data)
        feeder = threading.Thread(target=feed)
        feeder.start()
        assert reader.read(4) == b"JUNK"
        assert micromegas_perfetto.validate(reader) == whole
        feeder.join()
    with open(path, "r", encoding="latin-1") as f, pytest.raises(TypeError):
        micromegas_perfetto.validate(f)


def test_a_pipe_behind_a_buffer_is_validated_in_pieces(small_lake, tmp_path):
    """validate(buffered pipe) reads the object piece by piece: its peak memory is that of
    validating the file by name, not that plus the trace (it was read whole, and copied);
    the report is the file's. (VmHWM: a child's ru_maxrss starts at its parent's.)"""
    import subprocess
    import sys
    from micromegas_perfetto.generation import write_process_trace
    lake, processes = small_lake
    trace = tmp_path / "t.perfetto"
    write_process_trace(lake, processes[0]["process_id"], None, None, trace)
    copies = tmp_path / "big.perfetto"  # traces one after the other are still one trace
    with open(copies, "wb") as f:
        while f.tell() < 64 << 20:
            f.write(trace.read_bytes())
    script = (
        "import os, sys, threading\n"
        "import micromegas_perfetto\n"
        "if sys.argv[2] == 'name':\n"
        "    report = micromegas_perfetto.validate(sys.argv[1])\n"
        "else:\n"
        "    r, w = os.pipe()\n"
        "    def feed():\n"
        "        with open(sys.argv[1], 'rb') as src, open(w, 'wb') as dst:\n"
        "            while True:\n"
        "                piece = src.read(1 << 20)\n"
        "                if not piece: return\n"
        "                dst.write(piece)\n"
        "    threading.Thread(target=feed).start()\n"
        "    with open(r, 'rb') as reader:\n"
        "        report = micromegas_perfetto.validate(reader)\n"
        "peak = [line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')][0]\n"
        "print(peak, sorted(report.stats.items()), report.problems)\n")
    runs = {}
    for how in ("name", "pipe"):
        done = subprocess.run([sys.executable, "-c", script, str(copies), how], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        peak, report = done.stdout.split(" ", 1)
        runs[how] = int(peak), report
    assert runs["pipe"][1] == runs["name"][1]
    assert runs["pipe"][0] < runs["name"][0] + (16 << 10), f"peak KiB by name, through a pipe: {runs}"


def test_file_objects_whose_descriptor_is_not_their_bytes(tmp_path):
    """io.BytesIO (fileno() raises io.UnsupportedOperation, which came out as is) and
    gzip.open() (whose fileno() is the compressed file's: a gzipped trace read as 'not a
    Perfetto trace') are read through their read(). A closed file and a folder are plain
    errors (a folder was a WriteError, 'Is a directory', without its name)."""
    import bz2
    import gzip
    data = (GOLDEN / "large.perfetto").read_bytes()
    whole = micromegas_perfetto.validate(data)
    assert whole.is_trace and whole.stats["slices"] > 0
    buffer = io.BytesIO(b"JUNK" + data)
    buffer.read(4)
    assert micromegas_perfetto.validate(buffer) == whole
    for module, suffix in ((gzip, "gz"), (bz2, "bz2")):
        packed = tmp_path / f"t.perfetto.{suffix}"
        with module.open(packed, "wb") as f:
            f.write(data)
        with module.open(packed, "rb") as f:
            assert micromegas_perfetto.validate(f) == whole
    closed = open(tmp_path / f"t.perfetto.gz", "rb")
    closed.close()
    with pytest.raises(ValueError, match="the file is closed"):
        micromegas_perfetto.validate(closed)
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        micromegas_perfetto.validate(tmp_path)


def test_an_example_message_keeps_a_nul_in_a_name():
    """A slice name with a NUL in it: the example's message has all of it (message_len bytes),
    not the bytes before the NUL (ctypes' c_char_p cut it there)."""
    from micromegas_perfetto import PerfettoWriter
    with PerfettoWriter("p") as w:
        w.emit_process_descriptor("exe")
        w.emit_thread_descriptor("s", 7, "main")
        w.set_current_thread("s")
        w.emit_span(10, 30, "outer", "t", "f.rs", 1)
        w.emit_span(20, 40, "a\0b", "t", "f.rs", 2)  # Perfetto ends it at the outer's end
        data = w.getvalue()
    messages = [p.message for p in micromegas_perfetto.validate(data).examples]
    assert any("slice 'a\0b' at ts 20" in m for m in messages), messages
