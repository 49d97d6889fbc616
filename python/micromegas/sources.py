"""Where telemetry comes from: the interface trace generation reads through.

A source answers four questions about a process: its description, its threads, each
thread's spans and its async events, the last two as Arrow record-batch readers with the
columns of the micromegas views `thread_spans` and `async_events`.
"""
import os
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple, Union

import pyarrow as pa


@dataclass
class ProcessInfo:
    process_id: str
    exe: str
    start_ns: Optional[int] = None
    end_ns: Optional[int] = None


@dataclass
class ThreadInfo:
    stream_id: str
    thread_id: int
    name: str


def thread_display(stream_id: str, thread_name: Optional[str], thread_id: Optional[str]) -> ThreadInfo:
    """micromegas' thread naming rule: tid = thread-id as an integer (0 if missing or not a
    number, truncated to int32); name = "<thread-name>-<thread-id>", or the thread id alone
    without a name, or the stream id without either."""
    name = thread_name or ""
    tid_text = thread_id or ""
    try:
        tid = int(tid_text.strip())
    except ValueError:
        tid = 0
    tid = (tid + (1 << 31)) % (1 << 32) - (1 << 31)
    display = f"{name}-{tid_text}" if name else tid_text
    return ThreadInfo(stream_id=stream_id, thread_id=tid, name=display or stream_id)


class Source:
    """Base class of telemetry sources."""

    description = "source"

    def process_info(self, process_id: str) -> ProcessInfo:
        """The process's description; raises UserError for an unknown process."""
        raise NotImplementedError

    def time_range(self, info: ProcessInfo) -> Tuple[int, int]:
        """The process's whole time range, in ns: the default trace range."""
        raise NotImplementedError

    def threads(self, process_id: str, begin_ns: int, end_ns: int) -> List[ThreadInfo]:
        """The process's thread streams, ordered by stream id, with display names."""
        raise NotImplementedError

    def thread_spans(self, stream_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        """Spans of one thread that overlap [begin, end]: begin, end, name, target, filename, line."""
        raise NotImplementedError

    def async_events(self, process_id: str, begin_ns: int, end_ns: int) -> pa.RecordBatchReader:
        """Async events of the process with time in [begin, end]."""
        raise NotImplementedError

    def iter_thread_spans(self, threads: List[ThreadInfo], begin_ns: int, end_ns: int
                          ) -> Iterator[Tuple[ThreadInfo, pa.RecordBatchReader]]:
        """Each thread with its spans reader, in order. Sources may prefetch the next one."""
        for thread in threads:
            yield thread, self.thread_spans(thread.stream_id, begin_ns, end_ns)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_source(source: Union[Source, str, os.PathLike]) -> Tuple[Source, bool]:
    """A Source for `source` (a lake folder path opens a LocalLake) and whether the caller owns it."""
    if isinstance(source, Source):
        return source, False
    from .lake import LocalLake
    return LocalLake(source), True
