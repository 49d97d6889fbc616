"""The fixture server's `perfetto_trace_chunks` is an independent implementation of
micromegas' generation (micromegas_reference.py): it reproduces the golden bytes by itself,
and `--server-side` against it gives the bytes of client-side `--async-layout micromegas`,
on lakes of every layout and time unit, with threads named by micromegas' rule."""
import json

import pyarrow as pa
import pytest

import micromegas_reference
from conftest import GOLDEN, GOLDEN_NAMES, run_cli
from flight_fixture import LakeFlightServer
from trace_check import decode

from micromegas_perfetto.flightsql import FlightSQLSource
from micromegas_perfetto.generation import write_process_trace
from micromegas_perfetto.lake import LocalLake
from micromegas_perfetto.sample_lake import LakeVariant, write_sample_lake


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_reference_writer_reproduces_the_goldens(name):
    scenario = json.loads((GOLDEN / f"{name}.json").read_text())
    assert micromegas_reference.write_scenario(scenario) == (GOLDEN / f"{name}.perfetto").read_bytes()


def test_reference_xxh64_known_values():
    # Published XXH64 test values.
    assert micromegas_reference.xxh64(b"") == 0xEF46DB3751D8E999
    assert micromegas_reference.xxh64(b"a") == 0xD24EC4F1A98C6E5B
    assert micromegas_reference.xxh64(b"abc") == 0x44BC2CF5AD770999
    assert micromegas_reference.xxh64(b"Nobody inspects the spammish repetition") == 0xFBCEA83C8A378BF1


@pytest.mark.parametrize("text, tid", [("42", 42), ("", 0), (" 42", 0), ("+7", 7), ("-7", -7), ("1_0", 0),
                                       (str(1 << 63), 0), (str(1 << 32 | 9), 9), (str(-(1 << 63)), 0)])
def test_reference_tid_parsing(text, tid):
    assert micromegas_reference.parse_thread_id(text) == tid


VARIANTS = [
    LakeVariant(thread_properties="partial"),
    LakeVariant(layout="folder", time_unit="us", time_zone="UTC", thread_properties="partial", end_time="missing"),
    LakeVariant(layout="parquet-folder", time_unit="ms", time_zone=None, end_time="null"),
    LakeVariant(layout="folder", time_unit="s", time_zone="+00:00", thread_properties="partial"),
]


def write(out, pid, source, spans="both", **options) -> bytes:
    """The trace written in-process (the CLI's path, without a subprocess per trace)."""
    if isinstance(source, LakeFlightServer):
        source = FlightSQLSource(uri=source.uri)
    with source:
        write_process_trace(source, pid, None, None, out, spans, **options)
    return out.read_bytes()


def test_cli_server_side_equals_client_side(tmp_path):
    lake = tmp_path / "lake"
    pid = write_sample_lake(lake, seed=5, threads=3, spans_per_thread=100, async_spans=100,
                            variant=LakeVariant(layout="folder", thread_properties="partial"))[0]["process_id"]
    server = LakeFlightServer(lake)
    try:
        for args in (["--server-side"], ["--async-layout", "micromegas"]):
            result = run_cli("write_perfetto", pid, "--uri", server.uri, "--filename", tmp_path / args[0][2:],
                             "--quiet", *args)
            assert result.returncode == 0, result.stderr
        assert (tmp_path / "server-side").read_bytes() == (tmp_path / "async-layout").read_bytes()
    finally:
        server.shutdown()


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v.layout}-{v.time_unit}-{v.thread_properties}-"
                                                           f"{v.end_time}")
def test_server_side_equals_client_side(tmp_path, variant):
    lake = tmp_path / "lake"
    pid = write_sample_lake(lake, seed=5, threads=4, spans_per_thread=150, async_spans=200,
                            variant=variant)[0]["process_id"]
    server = LakeFlightServer(lake)
    try:
        for spans in ("both", "thread", "async"):
            server_side = write(tmp_path / f"s-{spans}.perfetto", pid, server, spans, server_side=True)
            client_side = write(tmp_path / f"c-{spans}.perfetto", pid, server, spans, async_layout="micromegas")
            assert server_side == client_side, spans
            assert write(tmp_path / f"l-{spans}.perfetto", pid, LocalLake(lake), spans,
                         async_layout="micromegas") == client_side
        trace = decode(server_side)
        assert trace.events and trace.named_tracks
        if variant.thread_properties == "partial":  # a thread with a name and no id: <name>-<stream_id>, tid 0
            named_only = [d for name, d in trace.threads.items() if name.startswith("render-")]
            assert len(named_only) == 1 and named_only[0].thread.tid == 0
            assert len(named_only[0].thread.thread_name) == len("render-") + 36
        # The lanes layout, client-side, equals the lake's.
        assert write(tmp_path / "c.perfetto", pid, server) == write(tmp_path / "l.perfetto", pid, LocalLake(lake))
    finally:
        server.shutdown()


@pytest.mark.parametrize("time_type", [pa.timestamp("s"), pa.timestamp("ms", tz="UTC"), pa.timestamp("us", tz="+00:00")])
def test_client_accepts_every_time_unit_from_a_server(tmp_path, time_type):
    """A server sending time columns in s, ms or us (any zone): the same trace as the lake's."""
    lake = tmp_path / "lake"
    pid = write_sample_lake(lake, seed=5, threads=2, spans_per_thread=150, async_spans=200,
                            variant=LakeVariant(time_unit="s", time_zone=None))[0]["process_id"]
    server = LakeFlightServer(lake)
    server.time_type = time_type
    try:
        for layout in ("lanes", "micromegas"):
            remote = write(tmp_path / "r.perfetto", pid, server, async_layout=layout)
            assert remote == write(tmp_path / "l.perfetto", pid, LocalLake(lake), async_layout=layout)
        assert len(decode(remote).events) > 300
    finally:
        server.shutdown()
