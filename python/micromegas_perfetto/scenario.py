"""Writer scenarios (docs/byte-format.md, Scenarios) replayed through the C ABI, so every
path (Swift, C, Python) can be compared byte for byte."""
import json
import os

from .errors import OutputError, RequestError, WriteError, output_write_error
from .output import atomic_output
from .writer import PerfettoWriter


def replay(scenario: dict, writer: PerfettoWriter) -> None:
    """Makes a scenario's writer calls, in the documented order, then flushes."""
    span_types = scenario["span_types"]
    if span_types not in ("thread", "async", "both"):
        raise RequestError(f"span_types must be thread, async or both, got {span_types!r}")
    writer.emit_process_descriptor(scenario["exe"])
    for thread in scenario["threads"]:
        writer.emit_thread_descriptor(thread["stream_id"], thread["thread_id"], thread["thread_name"])
    if span_types != "thread":
        writer.emit_async_track_descriptor()
    if span_types != "async":
        for thread in scenario["threads"]:
            writer.set_current_thread(thread["stream_id"])
            for s in thread["spans"]:
                writer.emit_span(s["begin"], s["end"], s["name"], s["target"], s["filename"], s["line"])
    if span_types != "thread":
        for s in scenario["async_spans"]:
            writer.emit_async_span_begin(s["begin"], s["name"], s["target"], s["filename"], s["line"])
            writer.emit_async_span_end(s["end"], s["name"], s["target"], s["filename"], s["line"])
    writer.flush()


def load(path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            scenario = json.load(f)
    except FileNotFoundError:
        raise RequestError(f"scenario file {path} not found") from None
    except IsADirectoryError:
        raise RequestError(f"scenario file {path} is a folder") from None
    except OSError as e:  # permission denied, an I/O error: "[Errno 13] ..." said nothing of the file's role
        raise RequestError(f"cannot read the scenario file {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(f"scenario file {path} is not valid JSON: {e}") from None
    if not isinstance(scenario, dict):
        raise RequestError(f"scenario file {path} holds a JSON {type(scenario).__name__}, not an object")
    missing = [k for k in ("process_id", "exe", "span_types", "threads", "async_spans") if k not in scenario]
    if missing:
        raise RequestError(f"scenario file {path} lacks {', '.join(missing)}")
    return scenario


def write_scenario(scenario_path, output_path, chunk_size: int = 0) -> int:
    """Writes the trace of a scenario file to `output_path` (atomically); returns its size."""
    scenario = load(scenario_path)
    if os.fsdecode(output_path) != "-" and _same_file(scenario_path, output_path):
        raise OutputError(f"output {os.fsdecode(output_path)} is the scenario file itself: writing the trace there "
                          "would destroy it; write it elsewhere")
    with atomic_output(output_path) as out:
        try:
            with PerfettoWriter(scenario["process_id"], out.fd, chunk_size=chunk_size) as writer:
                replay(scenario, writer)
        except (KeyError, TypeError) as e:
            raise RequestError(f"scenario file {scenario_path} is malformed: {e!r}") from None
        except WriteError as e:
            raise output_write_error(e.errno, out.shown) from e
    return out.size


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # `b` does not exist yet (or a name the system refuses)
        return False
