"""ctypes bindings of libperfetto_mm.so (include/perfetto_mm.h), one declaration per C function
and struct, and the header's constants. `python/tests/test_native_abi.py` parses the header and
checks that every function, struct field and constant here matches it.

The library is the one bundled in the package (micromegas_perfetto/lib/libperfetto_mm.so), unless the
environment variable MICROMEGAS_PERFETTO_LIB names another file. Loading it checks that its
`pmm_abi_version()` is the PMM_ABI_VERSION these bindings were written for.
"""
import ctypes
import os
from ctypes import POINTER, c_char_p, c_int, c_int32, c_int64, c_size_t, c_uint8, c_uint32, c_uint64, c_void_p
from pathlib import Path

from .errors import PerfettoError, error_for_status

# The header's constants (PMM_ABI_VERSION, PMM_OK, PMM_SPANS_*, PMM_LAYOUT_*). The span-type and
# layout names are the keys: the Python API and the command line take them from here.
PMM_ABI_VERSION = 2
PMM_OK = 0
PMM_SPANS = {"thread": 1, "async": 2, "both": 3}
PMM_LAYOUTS = {"lanes": 0, "micromegas": 1, "thread-lanes": 2}  # PMM_LAYOUT_<NAME>, "_" as "-"
PMM_FLAG_NO_SPAN_ARGS = 1
PMM_FLAG_NO_FLOWS = 2

# int32_t (*pmm_write_fn)(void *ctx, const uint8_t *data, size_t len)
WRITE_FN = ctypes.CFUNCTYPE(c_int32, c_void_p, POINTER(c_uint8), c_size_t)


class ArrowArrayStream(ctypes.Structure):
    """struct ArrowArrayStream of the Arrow C Stream Interface (filled by pyarrow's _export_to_c)."""

    _c_name_ = "struct ArrowArrayStream"
    _fields_ = [
        ("get_schema", c_void_p),
        ("get_next", c_void_p),
        ("get_last_error", c_void_p),
        ("release", c_void_p),
        ("private_data", c_void_p),
    ]


class Thread(ctypes.Structure):
    _c_name_ = "pmm_thread"
    _fields_ = [
        ("stream_id", c_char_p),
        ("stream_id_len", c_size_t),
        ("thread_id", c_int32),
        ("thread_name", c_char_p),
        ("thread_name_len", c_size_t),
    ]


class GeneratorOptions(ctypes.Structure):
    _c_name_ = "pmm_generator_options"
    _fields_ = [
        ("exe", c_char_p),
        ("exe_len", c_size_t),
        ("threads", POINTER(Thread)),
        ("thread_count", c_size_t),
        ("span_types", c_int32),
        ("async_layout", c_int32),
        ("range_begin_ns", c_int64),
        ("range_end_ns", c_int64),
        ("flags", c_uint32),
    ]


class GeneratorStats(ctypes.Structure):
    _c_name_ = "pmm_generator_stats"
    _fields_ = [
        ("thread_spans", c_uint64),
        ("thread_spans_outside_range", c_uint64),
        ("async_spans", c_uint64),
        ("async_tracks", c_uint64),
        ("async_events", c_uint64),
        ("async_events_outside_range", c_uint64),
        ("async_complete", c_uint64),
        ("async_open_at_end", c_uint64),
        ("async_begun_before_range", c_uint64),
        ("async_duplicates", c_uint64),
        ("async_dropped", c_uint64),
        ("log_entries", c_uint64),
        ("log_entries_outside_range", c_uint64),
        ("measures", c_uint64),
        ("measures_outside_range", c_uint64),
        ("counter_tracks", c_uint64),
    ]

    def as_dict(self):
        return {name: getattr(self, name) for name, _ in self._fields_}


PMM_PROBLEM_KIND_COUNT = 22


class ValidationStats(ctypes.Structure):
    """pmm_validation_stats."""

    _c_name_ = "pmm_validation_stats"
    _fields_ = [
        ("is_trace", c_int32),
        ("problems_total", c_uint64),
        ("wrong_duration_slices", c_uint64),
        ("misplaced_end_events", c_uint64),
        ("bytes", c_uint64),
        ("packets", c_uint64),
        ("track_descriptors", c_uint64),
        ("track_events", c_uint64),
        ("slices", c_uint64),
        ("slice_ends", c_uint64),
        ("instants", c_uint64),
        ("counters", c_uint64),
        ("flows", c_uint64),
        ("debug_annotations", c_uint64),
        ("slice_tracks", c_uint64),
        ("open_at_end", c_uint64),
        ("max_depth", c_uint64),
        ("out_of_order_events", c_uint64),
        ("problems", c_uint64 * PMM_PROBLEM_KIND_COUNT),
    ]


class ValidationExample(ctypes.Structure):
    """pmm_validation_example."""

    _c_name_ = "pmm_validation_example"
    _fields_ = [
        ("kind", c_int32),
        ("packet_offset", c_uint64),
        ("message", POINTER(ctypes.c_char)),  # message_len bytes (a NUL among them is kept), then a NUL
        ("message_len", c_size_t),
    ]


_SIGNATURES = {
    "pmm_version": (c_char_p, []),
    "pmm_abi_version": (c_int32, []),
    "pmm_last_error": (c_char_p, []),
    "pmm_writer_new_buffer": (c_int32, [c_char_p, c_size_t, c_size_t, POINTER(c_void_p)]),
    "pmm_writer_new_callback": (c_int32, [c_char_p, c_size_t, c_size_t, WRITE_FN, c_void_p, POINTER(c_void_p)]),
    "pmm_writer_new_fd": (c_int32, [c_char_p, c_size_t, c_int, c_size_t, POINTER(c_void_p)]),
    "pmm_writer_free": (None, [c_void_p]),
    "pmm_writer_emit_process_descriptor": (c_int32, [c_void_p, c_char_p, c_size_t]),
    "pmm_writer_emit_thread_descriptor": (c_int32, [c_void_p, c_char_p, c_size_t, c_int32, c_char_p, c_size_t]),
    "pmm_writer_set_current_thread": (c_int32, [c_void_p, c_char_p, c_size_t]),
    "pmm_writer_emit_async_track_descriptor": (c_int32, [c_void_p]),
    "pmm_writer_emit_span": (
        c_int32, [c_void_p, c_uint64, c_uint64, c_char_p, c_size_t, c_char_p, c_size_t, c_char_p, c_size_t, c_uint32]),
    "pmm_writer_emit_async_span_begin": (
        c_int32, [c_void_p, c_uint64, c_char_p, c_size_t, c_char_p, c_size_t, c_char_p, c_size_t, c_uint32]),
    "pmm_writer_emit_async_span_end": (
        c_int32, [c_void_p, c_uint64, c_char_p, c_size_t, c_char_p, c_size_t, c_char_p, c_size_t, c_uint32]),
    "pmm_writer_flush": (c_int32, [c_void_p]),
    "pmm_writer_take_buffer": (c_int32, [c_void_p, POINTER(POINTER(c_uint8)), POINTER(c_size_t)]),
    "pmm_buffer_free": (None, [POINTER(c_uint8)]),
    "pmm_generator_new": (c_int32, [c_void_p, POINTER(GeneratorOptions), POINTER(c_void_p)]),
    "pmm_generator_add_thread_spans": (c_int32, [c_void_p, c_char_p, c_size_t, POINTER(ArrowArrayStream)]),
    "pmm_generator_add_async_events": (c_int32, [c_void_p, POINTER(ArrowArrayStream)]),
    "pmm_generator_add_log_entries": (c_int32, [c_void_p, POINTER(ArrowArrayStream)]),
    "pmm_generator_add_measures": (c_int32, [c_void_p, POINTER(ArrowArrayStream)]),
    "pmm_generator_get_stats": (c_int32, [c_void_p, POINTER(GeneratorStats)]),
    "pmm_generator_finish": (c_int32, [c_void_p, POINTER(GeneratorStats)]),
    "pmm_generator_free": (None, [c_void_p]),
    "pmm_validator_new": (c_int32, [POINTER(c_void_p)]),
    "pmm_validator_feed": (c_int32, [c_void_p, POINTER(c_uint8), c_size_t]),
    "pmm_validator_finish": (c_int32, [c_void_p, POINTER(ValidationStats)]),
    "pmm_validator_example_count": (c_int32, [c_void_p, POINTER(c_size_t)]),
    "pmm_validator_get_example": (c_int32, [c_void_p, c_size_t, POINTER(ValidationExample)]),
    "pmm_validator_free": (None, [c_void_p]),
    "pmm_validate_buffer": (c_int32, [POINTER(c_uint8), c_size_t, POINTER(ValidationStats), POINTER(c_void_p)]),
    "pmm_validate_fd": (c_int32, [c_int, POINTER(ValidationStats), POINTER(c_void_p)]),
    "pmm_problem_name": (c_char_p, [c_int32]),
}


def library_path() -> Path:
    """The libperfetto_mm.so to load: $MICROMEGAS_PERFETTO_LIB, else the bundled one."""
    override = os.environ.get("MICROMEGAS_PERFETTO_LIB")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent / "lib" / "libperfetto_mm.so"


_lib = None


def lib():
    """The loaded library, with every function's signature declared."""
    global _lib
    if _lib is None:
        path = library_path()
        if not path.is_file():
            if os.environ.get("MICROMEGAS_PERFETTO_LIB"):  # the user's override is what is wrong
                raise PerfettoError(f"$MICROMEGAS_PERFETTO_LIB names {path}, which is not a file: point it at a "
                                    "libperfetto_mm.so, or unset it to load the bundled library")
            raise PerfettoError(
                f"libperfetto_mm.so not found at {path}: install the package with `pip install ./python` "
                "(which builds it) or set MICROMEGAS_PERFETTO_LIB")
        try:
            loaded = ctypes.CDLL(str(path))
        except OSError as e:
            raise PerfettoError(f"cannot load {path}: {e}") from None
        _check_abi(loaded, path)
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(loaded, name)
            function.restype = restype
            function.argtypes = argtypes
        _lib = loaded
    return _lib


def _check_abi(loaded, path: Path) -> None:
    """Refuses a library whose ABI is not the one these bindings declare."""
    try:
        abi_version = loaded.pmm_abi_version
    except AttributeError:
        raise PerfettoError(f"{path} has no pmm_abi_version(): a library older than this package "
                            f"(ABI {PMM_ABI_VERSION}); rebuild it or reinstall the package") from None
    abi_version.restype, abi_version.argtypes = c_int32, []
    found = abi_version()
    if found != PMM_ABI_VERSION:
        raise PerfettoError(f"{path} has ABI version {found}, this package needs {PMM_ABI_VERSION}: "
                            "rebuild the library or reinstall the package")


def check(status: int) -> None:
    """Raises the exception for a non-zero status, with the library's message."""
    if status != PMM_OK:
        message = lib().pmm_last_error()
        raise error_for_status(status, message.decode("utf-8", "replace") if message else "")


def version() -> str:
    """The library's version, pmm_version(): also the package's (`micromegas_perfetto.__version__`)."""
    return lib().pmm_version().decode()
