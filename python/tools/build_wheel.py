"""Builds the binary wheel of micromegas-perfetto (run by `make wheel`).

`pip wheel ./python` builds libperfetto_mm.so (Swift, -static-stdlib) and a wheel tagged for
this interpreter (cp311-cp311-linux_x86_64). The library is loaded with ctypes, so the wheel
works with any Python 3: it is retagged `py3-none-<platform>`, where the platform is the
manylinux tag `auditwheel show` reports for it (the library links only glibc, libstdc++, libm
and libgcc_s, which auditwheel treats as provided by the system).

    python python/tools/build_wheel.py OUT_DIR     -> OUT_DIR/micromegas_perfetto-V-py3-none-manylinux_*.whl
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as raw:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        str(HERE), "-w", raw], check=True)
        (built,) = Path(raw).glob("micromegas_perfetto-*.whl")
        report = json.loads(run(sys.executable, "-m", "auditwheel", "show", "--json", str(built)))
        external = report.get("external_libs") or {}
        tag = report.get("overall_tag") or ""
        if external or not tag.startswith("manylinux"):
            print(f"build_wheel: the library needs libraries outside the manylinux policy: {external} "
                  f"(tag {tag!r})", file=sys.stderr)
            return 1
        for old in out.glob("micromegas_perfetto-*.whl"):
            old.unlink()
        subprocess.run([sys.executable, "-m", "wheel", "tags", "--python-tag", "py3", "--abi-tag", "none",
                        "--platform-tag", tag, "--remove", str(built)], check=True, capture_output=True)
        (tagged,) = Path(raw).glob("micromegas_perfetto-*.whl")
        target = out / tagged.name
        tagged.replace(target)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
