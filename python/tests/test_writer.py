"""PerfettoWriter: C errors become Python exceptions with the library's message."""
import pytest

from micromegas_perfetto import errors
from micromegas_perfetto.writer import PerfettoWriter


def test_span_before_thread_is_a_call_order_error():
    with PerfettoWriter("p") as w:
        with pytest.raises(errors.CallOrderError, match="set_current_thread"):
            w.emit_span(1, 2, "n", "t", "f", 1)
        with pytest.raises(errors.CallOrderError, match="async"):
            w.emit_async_span_begin(1, "n", "t", "f", 1)
        assert w.getvalue() == b""


def test_invalid_utf8_and_bad_integers():
    with PerfettoWriter("p") as w:
        w.set_current_thread("s")
        with pytest.raises(errors.InvalidUTF8Error, match="name"):
            w.emit_span(1, 2, b"\xff", "t", "f", 1)
        with pytest.raises(errors.InvalidUTF8Error):
            w.emit_span(1, 2, "\udc80", "t", "f", 1)  # a lone surrogate
        with pytest.raises(errors.InvalidArgumentError, match="line"):
            w.emit_span(1, 2, "n", "t", "f", -1)
        with pytest.raises(errors.InvalidArgumentError, match="thread_id"):
            w.emit_thread_descriptor("s", 1 << 31, "n")
        with pytest.raises(TypeError):
            w.emit_span(1, 2, 3, "t", "f", 1)
        w.emit_span(1, 2, "n", "t", "f", 1)  # still usable
        assert len(w.getvalue()) > 0


def test_failing_callback_raises_its_own_exception_and_stops_the_writer():
    def sink(chunk_id, data):
        raise RuntimeError("disk full")

    w = PerfettoWriter("p", sink, chunk_size=1)
    with pytest.raises(RuntimeError, match="disk full"):
        w.emit_process_descriptor("exe")
    with pytest.raises(errors.WriterStoppedError, match="stopped"):
        w.emit_process_descriptor("exe")
    w.close(flush=False)


def test_closed_writer_and_memory_only_calls():
    w = PerfettoWriter("p", lambda i, d: None)
    with pytest.raises(errors.CallOrderError, match="memory sink"):
        w.getvalue()
    w.close()
    w.close()
    with pytest.raises(errors.InvalidArgumentError, match="closed"):
        w.emit_process_descriptor("exe")


def test_bad_file_descriptor_is_an_io_error():
    import os
    r, wfd = os.pipe()
    os.close(r)
    os.close(wfd)
    w = PerfettoWriter("p", wfd)
    w.emit_process_descriptor("exe")
    with pytest.raises(errors.WriteError, match="Bad file descriptor") as caught:
        w.flush()
    w.close(flush=False)
    # The library's whole message (errno set for callers, but str() is not OSError's bare
    # "[Errno 9] Bad file descriptor", which dropped which descriptor and what was done).
    assert caught.value.errno == 9
    assert str(caught.value) == (f"I/O error (errno 9): write to file descriptor {wfd} failed: Bad file descriptor; "
                                 "the writer is stopped"), str(caught.value)


def test_a_file_writer_dropped_unclosed_warns_as_an_unclosed_file_does(tmp_path):
    """What it buffered is lost (it is not flushed from __del__, where a callable output would
    run during garbage collection): a ResourceWarning says so, as Python's files do. A memory
    writer (read with getvalue()) and a closed one do not warn."""
    import gc
    import warnings
    with open(tmp_path / "t.perfetto", "wb") as f:
        w = PerfettoWriter("proc-1", f)
        w.emit_process_descriptor("exe")
        with pytest.warns(ResourceWarning, match="unclosed PerfettoWriter of process proc-1: what it buffered"):
            del w
            gc.collect()
    assert (tmp_path / "t.perfetto").read_bytes() == b""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        memory = PerfettoWriter("p")
        memory.emit_process_descriptor("exe")
        del memory
        with PerfettoWriter("p", lambda chunk_id, data: None) as closed:
            closed.emit_process_descriptor("exe")
        del closed
        gc.collect()
