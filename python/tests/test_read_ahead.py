"""Reading ahead (sources.read_ahead, Source.open_ahead): bounded, in order, errors where
they belong, nothing left running when a read is abandoned."""
import gc
import subprocess
import sys
import threading
import time

import pyarrow as pa
import pytest

from conftest import run_cli
from micromegas_perfetto.errors import DataError
from micromegas_perfetto.lake import LocalLake
from micromegas_perfetto.sample_lake import LakeVariant, write_sample_lake
from micromegas_perfetto.sources import Pipeline, read_ahead


def numbered(n, rows=1000, pulled=None, fail_at=None):
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"lost at batch {i}")
        if pulled is not None:
            pulled.append(i)
        yield pa.record_batch([pa.array([i] * rows)], names=["x"])


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_groups_of_small_batches_stay_bounded_and_in_order():
    pulled = []
    stream = read_ahead(numbered(200, pulled=pulled), depth=2, group_rows=4000)
    assert next(stream).column(0)[0].as_py() == 0
    time.sleep(0.3)
    # the group being consumed, two queued, one being gathered: 4 groups of 4 batches
    assert len(pulled) <= 16, len(pulled)
    assert [b.column(0)[0].as_py() for b in stream] == list(range(1, 200))


def test_groups_keep_the_batches_before_an_error():
    seen = []
    with pytest.raises(ValueError, match="lost at batch 6"):
        for batch in read_ahead(numbered(10, fail_at=6), group_rows=4000):
            seen.append(batch.column(0)[0].as_py())
    assert seen == [0, 1, 2, 3, 4, 5]


def test_a_read_ahead_dropped_unread_stops_its_producer():
    pulled = []
    stream = read_ahead(numbered(100, pulled=pulled), depth=2)
    stream.start()
    assert wait_for(lambda: len(pulled) >= 2)
    producer = stream._producer
    del stream
    gc.collect()
    assert wait_for(lambda: not producer.is_alive()), "the producer kept running"
    assert len(pulled) <= 4


def test_a_pipeline_reads_one_table_after_the_other():
    first_pulled, second_pulled = [], []
    pipeline = Pipeline()
    first = read_ahead(numbered(6, pulled=first_pulled), depth=2)
    second = read_ahead(numbered(6, pulled=second_pulled), depth=2)
    pipeline.add(first)
    pipeline.add(second)
    assert wait_for(lambda: len(first_pulled) >= 2)
    time.sleep(0.2)
    assert second_pulled == []  # the first has batches left to produce: the second waits
    assert [b.column(0)[0].as_py() for b in first] == list(range(6))
    assert wait_for(lambda: len(second_pulled) >= 1)  # started when the first was all produced
    assert [b.column(0)[0].as_py() for b in second] == list(range(6))


def test_a_pipeline_member_asked_for_first_starts_at_once():
    pipeline = Pipeline()
    first = read_ahead(numbered(100), depth=2)
    second = read_ahead(numbered(3), depth=2)
    pipeline.add(first)
    pipeline.add(second)
    assert [b.column(0)[0].as_py() for b in second] == [0, 1, 2]
    first.close()


@pytest.fixture
def lake(tmp_path):
    folder = tmp_path / "lake"
    processes = write_sample_lake(folder, seed=3, threads=4, spans_per_thread=2000, async_spans=500,
                                  variant=LakeVariant(row_group_rows=500))
    return folder, processes[0]["process_id"]


def test_open_ahead_raises_an_open_error_when_asked(lake):
    folder, pid = lake
    path = folder / "async_events" / f"{pid}.parquet"
    path.write_bytes(bytes(range(256)) * 8)
    source = LocalLake(folder)
    with pytest.raises(DataError) as direct:
        source.async_events(pid, 0, 1 << 62)
    ahead = source.open_ahead("async_events", pid, 0, 1 << 62)  # no error yet
    with pytest.raises(DataError) as later:
        ahead()
    assert str(later.value) == str(direct.value) and str(path) in str(later.value)


def test_the_first_unreadable_file_in_reading_order_is_reported(lake, tmp_path):
    """Files are opened ahead of their turn; the error reported is still the first one met
    in reading order: a damaged page in thread 2's file, not the garbage in thread 3's
    (opened while thread 2 was read) nor in the async events file."""
    folder, pid = lake
    source = LocalLake(folder)
    threads = source.threads(pid, 0, 0)
    second, third = (source.table_files("thread_spans", t.stream_id)[0] for t in threads[1:3])
    data = second.read_bytes()
    middle = len(data) // 3
    second.write_bytes(data[:middle] + bytes(2000) + data[middle + 2000:])
    third.write_bytes(bytes(range(256)) * 8)
    (folder / "async_events" / f"{pid}.parquet").write_bytes(bytes(range(256)) * 8)
    result = run_cli("write_perfetto", pid, "--lake", folder, "--filename", tmp_path / "t.perfetto", "--quiet")
    assert result.returncode == 1, result.stderr
    assert str(second) in result.stderr and str(third) not in result.stderr, result.stderr
    assert not (tmp_path / "t.perfetto").exists()
    third.write_bytes(data)  # any readable file: thread 2 is still the first error
    result = run_cli("write_perfetto", pid, "--lake", folder, "--filename", tmp_path / "t.perfetto", "--quiet")
    assert result.returncode == 1 and str(second) in result.stderr, result.stderr


def test_no_read_ahead_thread_outlives_a_failed_generation(lake, tmp_path):
    from micromegas_perfetto.generation import write_process_trace
    folder, pid = lake
    source = LocalLake(folder)
    threads = source.threads(pid, 0, 0)
    source.table_files("thread_spans", threads[1].stream_id)[0].write_bytes(bytes(range(256)) * 8)
    before = {t for t in threading.enumerate() if t.name == "micromegas-read-ahead"}
    with pytest.raises(DataError):
        write_process_trace(folder, pid, None, None, tmp_path / "t.perfetto")
    gc.collect()
    assert wait_for(lambda: not ({t for t in threading.enumerate() if t.name == "micromegas-read-ahead"} - before))


def test_a_follower_that_cannot_start_does_not_stall_the_table_before_it():
    # The producer that finishes a table starts the next one's (Pipeline); when that start
    # fails (no thread can be made: RLIMIT_NPROC, memory), the finished table still ends
    # for its consumer, and the follower starts when it is asked for.
    pipeline = Pipeline()
    first, second = read_ahead(numbered(5)), read_ahead(numbered(3, rows=10))
    pipeline.add(first)
    pipeline.add(second)
    real_start = second.start
    failed = []

    def start_fails():
        if threading.current_thread() is not threading.main_thread():
            failed.append(True)
            raise RuntimeError("can't start new thread")
        real_start()
    second.start = start_fails
    got = []
    reader = threading.Thread(target=lambda: got.extend(b.column(0)[0].as_py() for b in first), daemon=True)
    reader.start()
    reader.join(5.0)
    assert not reader.is_alive(), "the consumer of the first table waits forever"
    assert failed and got == [0, 1, 2, 3, 4]
    assert [b.num_rows for b in second] == [10, 10, 10]


def test_a_read_ahead_alive_at_interpreter_exit_ends_quietly():
    # Held until the modules are torn down (a library user's global): its close() runs when
    # imports no longer work; nothing on stderr, no wait for the frozen producer.
    import subprocess
    import sys
    script = ("import sys, time, pyarrow as pa\n"
              "from micromegas_perfetto.sources import read_ahead\n"
              "batches = (pa.record_batch([pa.array([i] * 1000)], names=['x']) for i in range(100))\n"
              "stream = read_ahead(batches)\n"
              "next(stream)\n"
              "sys.modules['kept'] = type(sys)('kept')\n"
              "sys.modules['kept'].stream = stream\n"
              "del stream\n"
              "time.sleep(0.2)\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert time.monotonic() - started < 8


def test_a_query_sent_ahead_and_abandoned_leaves_no_thread_and_stops_its_read():
    # FlightSQLSource sends the next query on a thread (_InBackground); a generation that
    # stops before asking for it drops it: the thread (in do_get, inside pyarrow) is waited
    # for, and the read-ahead it made is closed, so nothing runs on at interpreter exit.
    from micromegas_perfetto.flightsql import _InBackground
    made = []

    def send():
        time.sleep(0.3)  # the server starting the result
        stream = read_ahead(numbered(100))
        stream.start()
        made.append(stream._producer)
        return stream
    pending = _InBackground(send)
    thread = pending._thread
    del pending
    gc.collect()
    assert not thread.is_alive(), "the query's thread was left running"
    assert made and wait_for(lambda: not made[0].is_alive()), "the read-ahead it made kept running"
    assert _InBackground(lambda: 7).result() == 7
    with pytest.raises(KeyError):
        _InBackground(lambda: {}["x"]).result()


def test_a_subclass_overriding_read_table_as_documented_still_works(lake, tmp_path):
    # README: read_table(kind, id, columns, required, time_range). A subclass overriding it
    # with that signature is called with it (no read-ahead `start` argument), and its rows
    # are what the trace holds.
    from micromegas_perfetto.generation import write_process_trace
    calls = []

    class Logged(LocalLake):
        def read_table(self, kind, key, columns, required, time_range=None):
            calls.append(kind)
            return super().read_table(kind, key, columns, required, time_range)

    path, pid = lake
    write_process_trace(Logged(path), pid, None, None, tmp_path / "sub.perfetto", logs=True, metrics=True)
    write_process_trace(LocalLake(path), pid, None, None, tmp_path / "own.perfetto", logs=True, metrics=True)
    assert (tmp_path / "sub.perfetto").read_bytes() == (tmp_path / "own.perfetto").read_bytes()
    assert {"thread_spans", "async_events", "log_entries", "measures"} <= set(calls)


INTERRUPTED_IN_THE_HANDOFF = """
import signal, threading, time
import pyarrow as pa
from micromegas_perfetto.sources import read_ahead

release = threading.Event()
def batches():
    release.wait(5)
    yield pa.record_batch([pa.array([1])], names=["x"])

stream = read_ahead(batches(), depth=2, on_stop=release.set)
items = stream._state.items
main = threading.get_ident()

def handler(signum, frame):  # the producer lets go of the queue's lock between the two
    items.mutex.release()
    raise KeyboardInterrupt

def meddle():
    while not items.not_empty._waiters:  # until the main thread waits in get()
        time.sleep(0.01)
    items.mutex.acquire()
    items.not_empty.notify()  # it wakes, and blocks taking the queue's lock back,
    time.sleep(0.3)
    signal.pthread_kill(main, signal.SIGINT)  # which the interrupt breaks off

signal.signal(signal.SIGINT, handler)
threading.Thread(target=meddle, daemon=True).start()
try:
    next(stream)
except BaseException as e:
    release.set()
    print(type(e).__name__)
"""


def test_an_interrupt_in_the_queue_handoff_is_raised_as_the_interrupt():
    """Queue.get's `with` then released a lock nobody held: the consumer got RuntimeError
    "release unlocked lock" for a Ctrl-C (the CLI said so, exit 1, instead of 130)."""
    result = subprocess.run([sys.executable, "-c", INTERRUPTED_IN_THE_HANDOFF], capture_output=True, text=True,
                            timeout=60)
    assert (result.stdout.strip(), result.stderr) == ("KeyboardInterrupt", ""), result
