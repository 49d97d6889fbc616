"""Build hook: compiles libperfetto_mm.so with the Swift toolchain and ships it in the wheel.

The Swift package is the repository root (the parent of this folder), or the folder named
by MICROMEGAS_SWIFT_PACKAGE_DIR. The library is built with -static-stdlib in its own scratch
path (.build-release-static, as `make build` does), so the wheel needs only the system C/C++
runtime.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent


def swift_package_dir() -> Path:
    configured = os.environ.get("MICROMEGAS_SWIFT_PACKAGE_DIR")
    root = Path(configured) if configured else HERE.parent
    if not (root / "Package.swift").is_file():
        raise SystemExit(
            f"micromegas-perfetto build: no Package.swift in {root}; build from the repository checkout "
            "or set MICROMEGAS_SWIFT_PACKAGE_DIR to the Swift package folder"
        )
    return root


def header_version(root: Path) -> str:
    """PMM_VERSION of include/perfetto_mm.h: the version of the library and of this package."""
    header = root / "include" / "perfetto_mm.h"
    match = re.search(r'^#define PMM_VERSION "([^"]+)"$', header.read_text(encoding="utf-8"), re.MULTILINE)
    if not match:
        raise SystemExit(f"micromegas-perfetto build: no PMM_VERSION in {header}")
    return match.group(1)


def find_swift() -> str:
    swift = shutil.which("swift") or ("/opt/swift/usr/bin/swift" if Path("/opt/swift/usr/bin/swift").exists() else None)
    if not swift:
        raise SystemExit("micromegas-perfetto build: the Swift toolchain (swift) is not on PATH")
    return swift


def check_no_swift_runtime(library: Path) -> None:
    """Refuses a library that needs the Swift runtime (DT_NEEDED libswift*), which the wheel
    does not carry."""
    try:
        needed = subprocess.run(["ldd", str(library)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return  # no ldd here: nothing to check with
    if "libswift" in needed:
        raise SystemExit(f"micromegas-perfetto build: {library} needs the Swift runtime:\n{needed}")


class BuildWithSwift(build_py):
    """Builds libperfetto_mm.so and copies it into micromegas_perfetto/lib/."""

    def run(self):
        super().run()
        root = swift_package_dir()
        # Its own scratch path (the Makefile's too): what a plain `swift build` left in .build
        # can never end up in the wheel, and everything there is built with -static-stdlib.
        scratch = root / ".build-release-static"
        # The version script (the Makefile passes it too) exports the header's pmm_* functions only;
        # the SONAME is the file's name, as the Makefile's.
        exports = root / "Sources" / "PerfettoMM" / "exports.map"
        command = [find_swift(), "build", "-c", "release", "-Xswiftc", "-static-stdlib",
                   "-Xlinker", f"--version-script={exports}", "-Xlinker", "-soname=libperfetto_mm.so", "--scratch-path", str(scratch), "--product", "perfetto_mm"]
        print("micromegas-perfetto build:", " ".join(command), f"(in {root})", flush=True)
        subprocess.run(command, cwd=root, check=True)
        library = scratch / "release" / "libperfetto_mm.so"
        check_no_swift_runtime(library)
        target = Path(self.build_lib) / "micromegas_perfetto" / "lib"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library, target / "libperfetto_mm.so")


class BinaryDistribution(Distribution):
    """The wheel carries a native library: platform-specific, not pure Python."""

    def has_ext_modules(self):
        return True


setup(version=header_version(swift_package_dir()), cmdclass={"build_py": BuildWithSwift},
      distclass=BinaryDistribution)
