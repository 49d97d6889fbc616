"""Shared test fixtures: the repository paths (goldens, pmm-scenario), running the CLI in a
fresh interpreter, and small sample lakes."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "Tests" / "Fixtures" / "golden"
GOLDEN_NAMES = ["minimal", "basic", "basic_thread", "basic_async", "interning", "long_strings", "many_threads", "large"]
PMM_SCENARIO = ROOT / ".build-release-static" / "release" / "pmm-scenario"

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The tests send SIGINT, SIGTERM and SIGHUP to the command lines they start, which inherit
# an ignored signal (`nohup make test`, `make test &` from a script): the command line leaves
# an ignored signal ignored, as it should, and those tests would fail. They start from the
# defaults instead.
for _name in ("SIGINT", "SIGTERM", "SIGHUP"):
    _signum = getattr(signal, _name, None)
    if _signum is not None and signal.getsignal(_signum) is signal.SIG_IGN:
        signal.signal(_signum, signal.default_int_handler if _name == "SIGINT" else signal.SIG_DFL)


@pytest.fixture(scope="session")
def small_lake(tmp_path_factory):
    """A small sample lake: 4 threads x 3,000 spans, 3,000 async spans, plus two small processes."""
    from micromegas_perfetto.sample_lake import write_sample_lake
    folder = tmp_path_factory.mktemp("lake")
    processes = write_sample_lake(folder, seed=7, threads=4, spans_per_thread=3000, async_spans=3000)
    return folder, processes


def run_cli(*args, env=None, cwd=None, timeout=300):
    """Runs `python -m micromegas ARGS` and returns the completed process (`env` entries that
    are None are removed from the environment); subprocess.TimeoutExpired after `timeout` s."""
    environment = dict(os.environ, **{k: v for k, v in (env or {}).items() if v is not None})
    for key, value in (env or {}).items():
        if value is None:
            environment.pop(key, None)
    return subprocess.run([sys.executable, "-m", "micromegas", *map(str, args)], capture_output=True, text=True,
                          env=environment, cwd=cwd, timeout=timeout)


def pytest_collection_finish(session):
    """Starts installing test_official_client's venvs in the background as soon as a test of
    it is selected: the other tests run meanwhile (see official_venvs)."""
    import official_venvs
    if session.config.option.collectonly or not official_venvs.WHEEL:
        return
    if any(getattr(item, "module", None) is not None and item.module.__name__ == "test_official_client"
           for item in session.items):
        official_venvs.start()


def pytest_sessionfinish(session, exitstatus):
    import official_venvs
    # An interrupted session does not wait for the installs still running.
    official_venvs.cleanup(wait=exitstatus != pytest.ExitCode.INTERRUPTED)
