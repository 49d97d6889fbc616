"""The two virtual environments of test_official_client: micromegas' official client
(PyPI `micromegas==0.32.0`) and this project's wheel ($MICROMEGAS_PERFETTO_WHEEL), installed
in each order. Installing them is a minute of downloads and unpacking, mostly waiting: the
session starts it in the background (conftest) when a test of that module is selected, and
the module's fixture waits for it.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

WHEEL = os.environ.get("MICROMEGAS_PERFETTO_WHEEL")
OFFICIAL = "micromegas==0.32.0"
ORDERS = ("client-first", "ours-first")


class Venv:
    def __init__(self, path: Path, home: Path):
        self.path = path
        self.home = home
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        self.python = str(path / "bin" / "python")
        # No Swift toolchain, no user site: only what the venv holds.
        self.env = {"PATH": f"{path / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
                    "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_ROOT_USER_ACTION": "ignore", "LANG": "C.UTF-8"}
        for key in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CACHE_DIR", "XDG_CACHE_HOME"):
            if key in os.environ:
                self.env[key] = os.environ[key]
        self.env.setdefault("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))

    def run(self, *args, check=True, env=None, cwd=None):
        result = subprocess.run(list(args), capture_output=True, text=True, env={**self.env, **(env or {})},
                                cwd=cwd, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n"
                                 f"{result.stderr}")
        return result

    def pip(self, *args):
        return self.run(self.python, "-m", "pip", "-q", *args)

    def site(self) -> Path:
        out = self.run(self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
        return Path(out.stdout.strip())

    def record(self, distribution: str) -> list:
        """(path, sha256) of every file in a distribution's RECORD (hash-less entries skipped)."""
        site = self.site()
        (info,) = site.glob(f"{distribution.replace('-', '_')}-*.dist-info")
        rows = []
        for line in (info / "RECORD").read_text().splitlines():
            path, digest, _size = line.rsplit(",", 2)
            if digest:
                rows.append((site / path, digest))
        return rows


class _Preparation:
    """The venvs, built on a thread of their own; `result()` waits and returns them, or
    raises what building them raised."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="pmm-official-venvs-"))
        self.venvs = None
        self.error = None
        self.thread = threading.Thread(target=self._build, name="official-venvs", daemon=True)
        self.thread.start()

    def _build(self):
        try:
            home = self.root / "home"
            home.mkdir()
            result = {}
            for order in ORDERS:
                venv = Venv(self.root / order, home)
                steps = [[OFFICIAL], [WHEEL]] if order == "client-first" else [[WHEEL], [OFFICIAL]]
                for step in steps:
                    venv.pip("install", *step)
                result[order] = venv
            self.venvs = result
        except BaseException as error:  # re-raised in the test that waits for the venvs
            self.error = error

    def result(self):
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.venvs


_preparation = None


def start() -> None:
    """Starts building the venvs (once per session)."""
    global _preparation
    assert WHEEL, "needs $MICROMEGAS_PERFETTO_WHEEL (make test sets it)"
    if _preparation is None:
        assert shutil.which("swift", path="/usr/local/bin:/usr/bin:/bin") is None, \
            "swift must not be on the venv PATH"
        _preparation = _Preparation()


def prepared() -> dict:
    """{"client-first": Venv, "ours-first": Venv} with both packages installed in that order."""
    start()
    return _preparation.result()


def cleanup(wait: bool = True) -> None:
    """Removes the venvs' folder (at the session's end); without `wait`, only if their
    installs are over (they are left to finish otherwise)."""
    if _preparation is None:
        return
    if wait:
        _preparation.thread.join()
    if not _preparation.thread.is_alive():
        shutil.rmtree(_preparation.root, ignore_errors=True)
