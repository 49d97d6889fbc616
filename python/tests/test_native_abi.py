"""include/perfetto_mm.h = the Python bindings: every `pmm_*` function, struct and constant of
the header is parsed from the header itself and compared with `_native.py` and `errors.py`
(return and argument types, struct fields in order with their types, status codes, span types,
layouts, the ABI version), and the loaded library agrees (pmm_version, pmm_abi_version).

The parser is general: a function added to the header must be declared in `_native.py` or
listed in UNBOUND below, and a struct it uses must have a ctypes class naming it (`_c_name_`).
"""
import ctypes
import re
from pathlib import Path

import pytest

from micromegas_perfetto import _native, errors

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "include" / "perfetto_mm.h"

# Header functions not bound in Python, each with the reason ({"pmm_x": "why"}). Structs used
# only by these need no ctypes class.
UNBOUND = {
}


def _strip_comments(text: str) -> str:
    """The header's declarations only: no comments, no preprocessor lines, no extern "C"."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r'extern\s+"C"\s*\{', " ", text)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


RAW = HEADER.read_text(encoding="utf-8")
SOURCE = _strip_comments(RAW)
DEFINES = re.sub(r"/\*.*?\*/", " ", RAW, flags=re.S)


def _normalize(c_type: str) -> str:
    """`const  char*` -> `const char *`: one spelling per type."""
    c_type = re.sub(r"\s*\*\s*", " * ", c_type.strip())
    return re.sub(r"\s+", " ", c_type).replace("* *", "**").strip()


def _split_declaration(declaration: str):
    """`const char *name` -> ('const char *', 'name'); a function pointer gives ('fnptr', name);
    an array `uint64_t name[N]` gives ('uint64_t[N]', name) with N a number or a PMM_ macro."""
    declaration = declaration.strip()
    pointer = re.match(r"^.*\(\s*\*\s*(\w+)\s*\)\s*\(.*\)$", declaration, re.S)
    if pointer:
        return "fnptr", pointer.group(1)
    array = re.match(r"^(.*?)(\w+)\s*\[\s*(\w+)\s*\]$", declaration, re.S)
    if array:
        return f"{_normalize(array.group(1))}[{array.group(3)}]", array.group(2)
    match = re.match(r"^(.*?)(\w+)$", declaration, re.S)
    assert match, f"cannot parse declaration {declaration!r}"
    return _normalize(match.group(1)), match.group(2)


def header_functions():
    """{name: (return type, [argument types])} of every pmm_ function prototype."""
    functions = {}
    for match in re.finditer(r"(?:^|(?<=[;}]))\s*([\w\s\*]+?)\b(pmm_\w+)\s*\(([^()]*)\)\s*;", SOURCE):
        restype, name, params = _normalize(match.group(1)), match.group(2), match.group(3).strip()
        if restype.startswith("typedef"):
            continue
        args = [] if params in ("", "void") else [_split_declaration(p)[0] for p in params.split(",")]
        functions[name] = (restype, args)
    return functions


def header_structs():
    """{C name: [(field type, field name)]} of every struct defined in the header."""
    structs = {}
    for match in re.finditer(r"(typedef\s+)?struct\s+(\w+)\s*\{(.*?)\}\s*(\w*)\s*;", SOURCE, re.S):
        typedef, tag, body, alias = match.groups()
        name = alias if typedef and alias else f"struct {tag}"
        fields = []
        for declaration in body.split(";"):
            if declaration.strip():
                c_type, field = _split_declaration(declaration)
                fields.append((c_type, field))
        structs[name] = fields
    return structs


def header_function_pointers():
    """{typedef name: (return type, [argument types])} of the function-pointer typedefs."""
    pointers = {}
    for match in re.finditer(r"typedef\s+([\w\s\*]+?)\(\s*\*\s*(\w+)\s*\)\s*\(([^()]*)\)\s*;", SOURCE):
        params = match.group(3).strip()
        args = [] if params in ("", "void") else [_split_declaration(p)[0] for p in params.split(",")]
        pointers[match.group(2)] = (_normalize(match.group(1)), args)
    return pointers


def header_constants():
    """{name: int value} of every integer PMM_ macro."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"#define\s+(PMM_\w+)\s+(-?\d+)\b", DEFINES)}


def header_string_constants():
    return {m.group(1): m.group(2) for m in re.finditer(r'#define\s+(PMM_\w+)\s+"([^"]*)"', DEFINES)}


STRUCT_CLASSES = {cls._c_name_: cls for cls in vars(_native).values()
                  if isinstance(cls, type) and issubclass(cls, ctypes.Structure) and hasattr(cls, "_c_name_")}
POINTERS = header_function_pointers()
OPAQUE = set(re.findall(r"typedef\s+struct\s+(\w+)\s+\1\s*;", SOURCE))  # pmm_writer, pmm_generator

SCALARS = {
    "void": None, "int": ctypes.c_int, "int32_t": ctypes.c_int32, "pmm_status": ctypes.c_int32,
    "int64_t": ctypes.c_int64, "uint32_t": ctypes.c_uint32, "uint64_t": ctypes.c_uint64, "size_t": ctypes.c_size_t,
    "uint8_t": ctypes.c_uint8,
}


def binds(c_type: str, bound) -> bool:
    """Whether the ctypes type `bound` binds the header type `c_type`. A `char *` may be bound
    as c_char_p (a NUL-terminated string) or POINTER(c_char) (bytes read with a length)."""
    if c_type.replace("const ", "").strip() == "char *" and bound is ctypes.POINTER(ctypes.c_char):
        return True
    return bound is expected_ctype(c_type)


def expected_ctype(c_type: str):
    """The ctypes type that binds `c_type` (a normalized header type)."""
    if c_type == "fnptr":
        return ctypes.c_void_p
    array = re.match(r"^(.*)\[(\w+)\]$", c_type)
    if array:
        count = array.group(2)
        length = int(count) if count.isdigit() else header_constants()[count]
        return expected_ctype(array.group(1)) * length
    bare = c_type.replace("const ", "").strip()
    if bare in ("char *",):
        return ctypes.c_char_p
    if bare == "void *":
        return ctypes.c_void_p
    if bare in POINTERS:
        return FUNCTION_TYPES[bare]
    if bare.endswith("**"):
        inner = bare[:-2].strip()
        if inner in OPAQUE:
            return ctypes.POINTER(ctypes.c_void_p)
        return ctypes.POINTER(ctypes.POINTER(expected_ctype(inner)))
    if bare.endswith("*"):
        inner = bare[:-1].strip()
        if inner in OPAQUE:
            return ctypes.c_void_p
        if inner in SCALARS:
            return ctypes.POINTER(SCALARS[inner])
        assert inner in STRUCT_CLASSES, f"no ctypes class with _c_name_ = {inner!r} in _native.py"
        return ctypes.POINTER(STRUCT_CLASSES[inner])
    assert bare in SCALARS, f"no ctypes equivalent known for C type {c_type!r}"
    return SCALARS[bare]


FUNCTION_TYPES = {"pmm_write_fn": _native.WRITE_FN}


def test_the_parser_sees_the_header():
    """The parse is not vacuous: known functions, structs and constants are found as declared."""
    functions = header_functions()
    assert functions["pmm_writer_emit_span"] == ("pmm_status", [
        "pmm_writer *", "uint64_t", "uint64_t", "const char *", "size_t", "const char *", "size_t", "const char *",
        "size_t", "uint32_t"])
    assert functions["pmm_writer_free"] == ("void", ["pmm_writer *"])
    assert functions["pmm_version"] == ("const char *", [])
    assert functions["pmm_writer_take_buffer"][1] == ["pmm_writer *", "uint8_t **", "size_t *"]
    structs = header_structs()
    assert structs["pmm_thread"][0] == ("const char *", "stream_id")
    assert structs["struct ArrowArrayStream"][0] == ("fnptr", "get_schema")
    assert "pmm_generator_stats" in structs and "pmm_generator_options" in structs
    assert header_constants()["PMM_ERR_INVALID_DATA"] == 8
    assert POINTERS["pmm_write_fn"] == ("int32_t", ["void *", "const uint8_t *", "size_t"])
    assert OPAQUE >= {"pmm_writer", "pmm_generator"}
    assert len(functions) >= 20


def test_every_function_is_bound_with_the_header_signature():
    functions = header_functions()
    unbound = set(functions) - set(_native._SIGNATURES)
    assert unbound <= set(UNBOUND), (
        f"declared in perfetto_mm.h but not in _native._SIGNATURES: {sorted(unbound - set(UNBOUND))}; "
        "bind them, or list them in UNBOUND with the reason")
    stale = set(UNBOUND) - unbound
    assert not stale, f"UNBOUND lists functions that are bound or no longer declared: {sorted(stale)}; remove them"
    extra = set(_native._SIGNATURES) - set(functions)
    assert not extra, f"_native._SIGNATURES declares functions the header does not: {sorted(extra)}"
    for name in sorted(set(functions) & set(_native._SIGNATURES)):
        c_restype, c_args = functions[name]
        restype, argtypes = _native._SIGNATURES[name]
        assert binds(c_restype, restype), f"{name}: returns {c_restype}, bound as {restype}"
        assert len(argtypes) == len(c_args), f"{name}: {len(c_args)} arguments in the header, {len(argtypes)} bound"
        for i, (c_arg, arg) in enumerate(zip(c_args, argtypes)):
            assert binds(c_arg, arg), f"{name}: argument {i} is {c_arg}, bound as {arg}"


def test_function_pointer_types_match():
    for name, (c_restype, c_args) in POINTERS.items():
        assert name in FUNCTION_TYPES, f"function pointer type {name} has no ctypes CFUNCTYPE in _native.py"
        bound = FUNCTION_TYPES[name]
        assert bound._restype_ is expected_ctype(c_restype)
        assert list(bound._argtypes_) == [expected_ctype(a) for a in c_args], name


def _structs_named(types):
    return {t.replace("const ", "").rstrip("* ").strip() for t in types}


def test_every_struct_matches_field_by_field():
    structs = header_structs()
    functions = header_functions()
    bound_types = _structs_named(t for n, (r, args) in functions.items() if n not in UNBOUND for t in [r, *args])
    unbound_types = _structs_named(t for n, (r, args) in functions.items() if n in UNBOUND for t in [r, *args])
    only_unbound = unbound_types - bound_types
    pmm_structs = {name for name in structs if name.startswith("pmm_") and name not in only_unbound}
    missing = pmm_structs - set(STRUCT_CLASSES)
    assert not missing, f"structs of perfetto_mm.h without a ctypes class (_c_name_) in _native.py: {sorted(missing)}"
    for c_name, cls in STRUCT_CLASSES.items():
        assert c_name in structs, f"{cls.__name__}._c_name_ = {c_name!r} is not a struct of the header"
        header_fields = structs[c_name]
        python_fields = list(cls._fields_)
        assert [f for _, f in header_fields] == [f for f, _ in python_fields], f"{c_name}: field names or order differ"
        for (c_type, field), (_, bound) in zip(header_fields, python_fields):
            assert binds(c_type, bound), f"{c_name}.{field} is {c_type}, bound as {bound}"


def test_status_codes_match_the_error_classes():
    constants = header_constants()
    codes = {name: value for name, value in constants.items() if name.startswith("PMM_ERR_")}
    assert constants["PMM_OK"] == _native.PMM_OK == 0
    # (ArgumentError and ArgumentUTF8Error are Python's own checks before a call: request errors.)
    classes = [cls for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, errors.PerfettoError) and cls is not errors.PerfettoError
               and not issubclass(cls, errors.RequestError)]
    by_name = {cls.status_name: cls for cls in classes}
    assert set(by_name) == set(codes), (
        f"PMM_ERR_* without an error class: {sorted(set(codes) - set(by_name))}; "
        f"error classes naming no PMM_ERR_*: {sorted(set(by_name) - set(codes))}")
    for name, value in codes.items():
        cls = by_name[name]
        assert cls.status == value, f"{cls.__name__}.status = {cls.status}, but {name} = {value}"
        raised = errors.error_for_status(value, "message")
        assert type(raised) is cls and raised.status == value and str(raised) == "message"


def test_every_constant_in_the_bindings_has_the_header_value():
    constants = header_constants()
    mirrored = {name: value for name, value in vars(_native).items() if name.startswith("PMM_") and isinstance(value, int)}
    assert {"PMM_OK", "PMM_ABI_VERSION"} <= set(mirrored)
    for name, value in mirrored.items():
        assert name in constants, f"_native.{name} is not a constant of perfetto_mm.h"
        assert value == constants[name], f"_native.{name} = {value}, the header says {constants[name]}"


def test_span_types_layouts_and_versions_match():
    constants = header_constants()
    spans = {n[len("PMM_SPANS_"):].lower(): v for n, v in constants.items() if n.startswith("PMM_SPANS_")}
    layouts = {n[len("PMM_LAYOUT_"):].lower().replace("_", "-"): v for n, v in constants.items()
               if n.startswith("PMM_LAYOUT_")}
    assert spans == _native.PMM_SPANS
    assert layouts == _native.PMM_LAYOUTS
    assert constants["PMM_ABI_VERSION"] == _native.PMM_ABI_VERSION
    from micromegas_perfetto import generation
    assert generation.SPAN_TYPES == tuple(spans) and generation.ASYNC_LAYOUTS == tuple(layouts)


def test_the_loaded_library_reports_the_header_versions():
    lib = _native.lib()
    assert lib.pmm_abi_version() == header_constants()["PMM_ABI_VERSION"]
    version = header_string_constants()["PMM_VERSION"]
    assert _native.version() == version
    import micromegas_perfetto
    assert micromegas_perfetto.__version__ == version
    from importlib.metadata import version as distribution_version
    assert distribution_version("micromegas-perfetto") == version


def test_a_library_with_another_abi_is_refused(tmp_path, monkeypatch):
    """Loading checks pmm_abi_version(): a library built for another ABI is an error, not a crash later."""
    class Fake:
        def __init__(self, abi):
            self.pmm_abi_version = ctypes.CFUNCTYPE(ctypes.c_int32)(lambda: abi)
    path = tmp_path / "libperfetto_mm.so"
    with pytest.raises(errors.PerfettoError, match=f"ABI version 99, this package needs {_native.PMM_ABI_VERSION}"):
        _native._check_abi(Fake(99), path)
    _native._check_abi(Fake(_native.PMM_ABI_VERSION), path)

    class Old:
        pass
    with pytest.raises(errors.PerfettoError, match=r"no pmm_abi_version"):
        _native._check_abi(Old(), path)


def test_the_library_exports_exactly_the_header_functions():
    """The loaded library's global dynamic symbols are the header's functions: nothing
    internal leaks into the ABI (CThreadSupport's pmm_usable_cpu_count was exported, and
    about 900 of the Swift modules' own symbols before the linker's version script)."""
    import shutil
    import subprocess
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("needs nm (binutils)")
    listing = subprocess.run([nm, "-D", "--defined-only", _native.library_path()], capture_output=True, text=True,
                             check=True).stdout
    # "T" (global) and "W"/"V" (weak) are exported; lowercase kinds are local entries.
    exported = {fields[-1] for fields in map(str.split, listing.splitlines())
                if len(fields) >= 3 and fields[-2] in ("T", "D", "B", "R", "W", "V", "i", "u")}
    declared = set(header_functions())
    assert "pmm_writer_emit_span" in exported
    assert exported == declared, (f"exported, not in the header: {sorted(exported - declared)}; "
                                  f"in the header, not exported: {sorted(declared - exported)}")


def test_a_wrong_library_override_is_named_as_such(small_lake, tmp_path):
    """$MICROMEGAS_PERFETTO_LIB naming no file: one line saying the variable is what is wrong
    (it said to install the package or set the variable that was set), exit 1, nothing written."""
    from conftest import run_cli
    lake, processes = small_lake
    missing = tmp_path / "nowhere.so"
    done = run_cli("write_perfetto", processes[0]["process_id"], "--lake", lake, "--filename", tmp_path / "t.perfetto",
                   env={"MICROMEGAS_PERFETTO_LIB": str(missing)})
    assert done.returncode == 1, done.stderr
    assert done.stderr == (f"error: $MICROMEGAS_PERFETTO_LIB names {missing}, which is not a file: point it at a "
                           "libperfetto_mm.so, or unset it to load the bundled library\n"), done.stderr
    assert not (tmp_path / "t.perfetto").exists()
