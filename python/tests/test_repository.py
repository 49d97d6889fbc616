"""The repository's own references resolve: every `docs/...` or `spec/...` path named in a
source, build or documentation file, and every relative link of a Markdown file, points at a
file or folder of the checkout. Runs from the repository checkout (found from this file's path).
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What is scanned: source, build and documentation files. Build output and fixtures are not.
SCANNED_SUFFIXES = {".swift", ".c", ".h", ".py", ".md", ".toml", ".modulemap", ".txt", ".cfg"}
SCANNED_NAMES = {"Makefile", "run"}
SKIPPED_DIRS = {".git", "__pycache__", "Fixtures", "node_modules"}

# A path starting at a docs/ or spec/ folder, not preceded by another path character (so
# `foo/docs/x` or `https://.../spec/x` are not references to this repository).
REFERENCE = re.compile(r"(?<![\w./:-])((?:\.\./)*(?:docs|spec)/[\w./-]*)")
# A Markdown link target: [text](target).
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def scanned_files():
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS or part.startswith(".build") for part in relative.parts):
            continue
        if relative.parts[0] not in (".ci",) and any(part.startswith(".") for part in relative.parts):
            continue
        if path == Path(__file__).resolve():  # this file names references as examples
            continue
        if path.is_file() and (path.suffix in SCANNED_SUFFIXES or path.name in SCANNED_NAMES):
            yield path


def references(path: Path):
    """(line number, reference text, resolved path) for each reference in `path`."""
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        for match in REFERENCE.finditer(line):
            ref = match.group(1).rstrip(".,:;")
            yield number, ref, ROOT / ref
        if path.suffix == ".md":
            for match in MARKDOWN_LINK.finditer(line):
                target = match.group(1).split("#", 1)[0]
                if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):  # anchors, URLs
                    continue
                yield number, target, path.parent / target


def all_references():
    return [(path, number, ref, resolved) for path in scanned_files() for number, ref, resolved in references(path)]


def test_scanner_sees_the_known_references():
    """The scan itself works: it finds the README's links to docs/ and code comments naming docs/."""
    found = {(path.relative_to(ROOT).as_posix(), ref) for path, _, ref, _ in all_references()}
    assert ("README.md", "docs/architecture.md") in found
    assert ("Sources/PerfettoCore/PacketEncoder.swift", "docs/byte-format.md") in found
    assert ("python/micromegas_perfetto/lake.py", "docs/lake-format.md") in found
    assert ("docs/async-spans.md", "byte-format.md") in found


def test_scanner_flags_a_missing_file(tmp_path):
    """A reference to a file that does not exist is reported (the check can fail)."""
    probe = ROOT / "docs" / "architecture.md"
    refs = list(references(probe))
    assert refs, "docs/architecture.md names other files"
    bad = tmp_path / "bad.md"
    bad.write_text("see spec/ASYNC_SPANS.md and [x](nowhere.md)\n")
    resolved = [(ref, target.exists()) for _, ref, target in references(bad)]
    assert ("spec/ASYNC_SPANS.md", False) in resolved
    assert ("nowhere.md", False) in resolved


@pytest.mark.parametrize("required", ["README.md", "CONTRIBUTING.md", "docs/architecture.md", "docs/lake-format.md",
                                      "docs/async-spans.md", "docs/flightsql.md", "docs/byte-format.md",
                                      "docs/benchmarks.md"])
def test_documentation_exists(required):
    assert (ROOT / required).is_file()


def test_every_reference_resolves():
    broken = [f"{path.relative_to(ROOT)}:{number}: {ref}" for path, number, ref, resolved in all_references()
              if not resolved.exists()]
    assert not broken, "references to files that do not exist:\n" + "\n".join(broken)


def test_readme_links_every_doc():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{doc.name})" in readme, f"README.md does not link docs/{doc.name}"


def _opens_with_a_comment(path: Path) -> bool:
    """Python: a module docstring. Swift, C: a comment before the first declaration (after
    imports and preprocessor lines)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".py":
        import ast
        return bool(ast.get_docstring(ast.parse(text)))
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or (path.suffix == ".swift" and stripped.startswith(("import ", "@testable import ", "#"))):
            continue
        return stripped.startswith(("//", "/*"))
    return False


def test_every_source_file_says_what_it_owns():
    """Each module opens with a comment saying what it owns (CONTRIBUTING.md, Rules)."""
    roots = ["Sources", "Tests", "examples", "include", "python"]
    sources = [p for p in scanned_files() if p.suffix in (".swift", ".py", ".c", ".h")
               and p.relative_to(ROOT).parts[0] in roots]
    assert len(sources) > 50
    silent = [str(p.relative_to(ROOT)) for p in sources if not _opens_with_a_comment(p)]
    assert not silent, "files without an opening comment saying what they own:\n" + "\n".join(silent)


def _section(path: Path, heading: str) -> str:
    """The text of a Markdown section, from `heading` to the next heading of its level."""
    text = path.read_text(encoding="utf-8")
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n")
    end = text.find(f"\n{level} ", start + len(heading) + 2)
    return text[start:end if end >= 0 else len(text)]


@pytest.mark.parametrize("page, heading", [
    ("README.md", "## Layout"), ("CONTRIBUTING.md", "## Layout"), ("docs/architecture.md", "### Swift (`Package.swift`)"),
])
def test_every_source_target_is_in_the_layout_tables(page, heading):
    """Each folder of Sources/ (a target of Package.swift) has its row in the layout tables a
    maintainer reads (CThreadSupport, added with the two-thread phase, was in none of them)."""
    section = _section(ROOT / page, heading)
    targets = sorted(p.name for p in (ROOT / "Sources").iterdir() if p.is_dir())
    assert targets and "PerfettoCore" in targets
    missing = [t for t in targets if f"`Sources/{t}`" not in section and f"`Sources/{t}`," not in section]
    assert not missing, f"{page} ({heading}) has no row for {missing}"


def test_every_python_module_is_in_the_architecture_table():
    section = _section(ROOT / "docs" / "architecture.md", "### Python (`python/micromegas_perfetto`)")
    modules = sorted(p.stem for p in (ROOT / "python" / "micromegas_perfetto").glob("*.py")
                     if p.stem not in ("__init__", "__main__"))
    assert "cli" in modules
    missing = [m for m in modules if f"`{m}`" not in section]
    assert not missing, f"docs/architecture.md's Python table has no row for {missing}"


def test_make_demo_reads_the_sample_lake_whatever_the_environment():
    """`make demo` promises a trace of the sample data: its commands unset every variable that
    would choose another source (it unset only $MICROMEGAS_LAKE, so an exported
    $MICROMEGAS_ANALYTICS_URI, as micromegas users have, sent it to their server)."""
    import shutil
    import subprocess
    make = shutil.which("make")
    if make is None:
        pytest.skip("needs make")
    dry = subprocess.run([make, "-n", "--no-print-directory", "demo"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert dry.returncode == 0, dry.stderr
    runs = re.compile(r"-m micromegas (list-processes|write_perfetto)")
    commands = [line for line in dry.stdout.splitlines() if runs.search(line)]
    assert any("list-processes" in c for c in commands) and any("write_perfetto" in c for c in commands), dry.stdout
    for variable in ("MICROMEGAS_LAKE", "MICROMEGAS_ANALYTICS_URI", "MICROMEGAS_PROFILE", "MICROMEGAS_TOKEN"):
        for command in commands:
            for part in re.split(r"\$\(|&&|\|", command):
                if runs.search(part):
                    assert f"-u {variable}" in part, f"make demo runs {part.strip()!r} with ${variable} as it is"


def test_every_c_test_is_in_the_architecture_table():
    """Each file of Tests/c has its row in docs/architecture.md's C table (async_oom.c, run by
    make test-c, had none)."""
    section = _section(ROOT / "docs" / "architecture.md", "### C")
    files = sorted(p.name for p in (ROOT / "Tests" / "c").iterdir() if p.is_file())
    assert "abi_misuse.c" in files
    missing = [f for f in files if f"`Tests/c/{f}`" not in section]
    assert not missing, f"docs/architecture.md's C table has no row for {missing}"


def test_the_fuzz_library_is_rebuilt_when_anything_it_is_built_from_changes():
    """make builds the instrumented fuzz library once and rebuilds it only when a prerequisite
    changed: those are every file it is built from, the public header among them (the core
    imports its constants and struct layouts through CPerfettoMM; it was left out, so a changed
    header left fuzzers built against it linked to a library built from the old one)."""
    import shutil
    import subprocess
    make = shutil.which("make")
    if make is None:
        pytest.skip("needs make")
    # -p prints make's database, -q runs no recipe (its status says whether fuzz-build is up to date).
    database = subprocess.run([make, "-pq", "--no-print-directory", "fuzz-build"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
    rule = [line for line in database.stdout.splitlines()
            if ":" in line and line.split(":", 1)[0].endswith("/.build-fuzz/release/libperfetto_mm.so")]
    assert len(rule) == 1, database.stderr
    prerequisites = set(rule[0].split(":", 1)[1].split())
    built_from = {"Package.swift", "include/perfetto_mm.h"}
    built_from |= {str(p.relative_to(ROOT)) for p in (ROOT / "Sources").rglob("*") if p.is_file()}
    assert "Sources/PerfettoCore/TraceGenerator.swift" in built_from
    missing = sorted(built_from - prerequisites)
    assert not missing, f"the fuzz library is not rebuilt when these change: {missing}"
