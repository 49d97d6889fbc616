"""`write_perfetto --open` and `open_in_perfetto`: the trace served once on loopback for the
Perfetto UI, checked with real HTTP clients."""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import run_cli

from micromegas_perfetto import open_in_perfetto
from micromegas_perfetto.errors import OpenError
from micromegas_perfetto.open_ui import UI_ORIGIN

FETCHER = textwrap.dedent("""
    # A stand-in browser: loads what the Perfetto UI would, the url= target of the page's URL.
    import sys, urllib.parse, urllib.request
    page = sys.argv[1]
    target = urllib.parse.parse_qs(urllib.parse.urlsplit(page.split("#!/?", 1)[1]).path)["url"][0]
    with urllib.request.urlopen(target, timeout=20) as response:
        open(sys.argv[2], "wb").write(response.read())
        open(sys.argv[2] + ".headers", "w").write(response.headers["Access-Control-Allow-Origin"] or "")
    open(sys.argv[2] + ".page", "w").write(page)
""")


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def serve_in_thread(path, **kwargs):
    """Runs open_in_perfetto in a thread; returns (thread, result list, url when serving)."""
    ready = threading.Event()
    urls, results = [], []

    def run():
        results.append(open_in_perfetto(path, port=0, open_browser=False, on_serving=lambda u: (urls.append(u),
                                                                                                    ready.set()),
                                        out=open(os.devnull, "w"), **kwargs))
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    return thread, results, urls[0]


def test_serves_the_file_once_with_cors_and_404_elsewhere(tmp_path):
    trace = tmp_path / "my trace.perfetto"
    trace.write_bytes(os.urandom(300_000))
    thread, results, url = serve_in_thread(trace, timeout=30)
    assert url.startswith(f"{UI_ORIGIN}/#!/?url=http://127.0.0.1:") and url.endswith("/my%20trace.perfetto")
    file_url = url.split("url=", 1)[1]
    base = file_url.rsplit("/", 1)[0]
    for other in ("/", "/other.perfetto", "/../my%20trace.perfetto.bak", "/my%20trace.perfetto/x"):
        status, body, headers = get(base + other)
        assert status == 404 and body == b"", other
    assert thread.is_alive(), "a 404 does not stop serving"
    status, body, headers = get(file_url)
    assert status == 200 and body == trace.read_bytes()
    assert headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    thread.join(10)
    assert not thread.is_alive() and results[0].served and results[0].reason == "fetched"
    with pytest.raises(OSError):  # the server is gone
        urllib.request.urlopen(file_url, timeout=2)
    assert trace.exists()


def test_timeout_without_a_fetch(tmp_path):
    trace = tmp_path / "t.perfetto"
    trace.write_bytes(b"x")
    started = time.monotonic()
    thread, results, _ = serve_in_thread(trace, timeout=0.5)
    thread.join(10)
    assert results[0].reason == "timeout" and not results[0].served and time.monotonic() - started < 5
    assert trace.read_bytes() == b"x"


def test_busy_port_and_missing_file_are_clear_errors(tmp_path):
    trace = tmp_path / "t.perfetto"
    trace.write_bytes(b"x")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OpenError, match=f"127.0.0.1:{port}.*Open trace file"):
            open_in_perfetto(trace, port=port, open_browser=False, out=open(os.devnull, "w"))
    assert trace.exists()
    with pytest.raises(OpenError, match="cannot read"):
        open_in_perfetto(tmp_path / "missing.perfetto", port=0, open_browser=False)


def port_9001_free():
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is free
        try:
            s.bind(("127.0.0.1", 9001))
            return True
        except OSError:
            return False


@pytest.fixture
def lake_and_pid(small_lake):
    return small_lake[0], small_lake[1][1]["process_id"]


def test_cli_open_with_browser_env(lake_and_pid, tmp_path):
    if not port_9001_free():
        pytest.skip("127.0.0.1:9001 is in use on this machine")
    lake, pid = lake_and_pid
    fetcher = tmp_path / "fetch.py"
    fetcher.write_text(FETCHER)
    got = tmp_path / "fetched.bin"
    out = tmp_path / "t.perfetto"
    started = time.monotonic()
    done = run_cli("write_perfetto", pid, "--lake", lake, "--filename", out, "--open", "--open-timeout", "60",
                   env={"BROWSER": f"{sys.executable} {fetcher} %s {got}"})
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 50, "exits after one fetch, not at the timeout"
    url = f"{UI_ORIGIN}/#!/?url=http://127.0.0.1:9001/t.perfetto"
    assert url in done.stdout and "fetched" in done.stdout
    assert got.read_bytes() == out.read_bytes()
    assert Path(str(got) + ".headers").read_text() == UI_ORIGIN
    assert Path(str(got) + ".page").read_text() == url


def test_cli_open_without_a_browser_and_ctrl_c(lake_and_pid, tmp_path):
    if not port_9001_free():
        pytest.skip("127.0.0.1:9001 is in use on this machine")
    lake, pid = lake_and_pid
    out = tmp_path / "t.perfetto"
    done = run_cli("write_perfetto", pid, "--lake", lake, "--filename", out, "--quiet", "--open", "--open-timeout",
                   "1", env={"BROWSER": "/nonexistent/browser %s"})
    url = f"{UI_ORIGIN}/#!/?url=http://127.0.0.1:9001/t.perfetto"
    assert done.returncode == 0, done.stderr
    assert f"open {url} by hand" in done.stdout and "not fetched within 1 s" in done.stdout
    assert out.stat().st_size > 0
    # Ctrl-C while serving: stops, the file stays.
    process = subprocess.Popen([sys.executable, "-m", "micromegas", "write_perfetto", pid, "--lake", str(lake),
                                "--filename", str(out), "--quiet", "--open", "--open-timeout", "60"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, BROWSER="/nonexistent/browser %s"))
    first = process.stdout.readline()  # printed once the server accepts connections
    assert "serving" in first, first + process.stderr.read()
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=20)
    assert process.returncode == 0 and "interrupted; stopped serving" in stdout
    assert out.stat().st_size > 0


def test_cli_open_port_busy(lake_and_pid, tmp_path):
    if not port_9001_free():
        pytest.skip("127.0.0.1:9001 is in use on this machine")
    lake, pid = lake_and_pid
    out = tmp_path / "t.perfetto"
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", 9001))
        busy.listen()
        done = run_cli("write_perfetto", pid, "--lake", lake, "--filename", out, "--quiet", "--open")
    assert done.returncode == 1 and "127.0.0.1:9001" in done.stderr and "Open trace file" in done.stderr
    assert out.stat().st_size > 0, "the written file stays"


@pytest.mark.parametrize("kwargs, error, message", [
    ({"timeout": float("nan")}, ValueError, "timeout must be a number of seconds >= 0, got nan"),
    ({"timeout": -1}, ValueError, "timeout must be a number of seconds >= 0, got -1"),
    ({"timeout": "5"}, TypeError, "timeout must be a number of seconds (or None: no limit), not str"),
    ({"timeout": True}, TypeError, "not bool"),
    ({"port": True}, TypeError, "port must be an int, not bool"),
    ({"port": "9001"}, TypeError, "port must be an int, not str"),
    ({"port": -1}, ValueError, "port must be in 0..65535"),
    ({"port": 70000}, ValueError, "port must be in 0..65535"),
])
def test_arguments_checked_before_serving(tmp_path, kwargs, error, message):
    """timeout=nan served forever (no time is >= a NaN deadline), port=True served on port 1, and
    the others were internal errors ("'>' not supported between instances of 'int' and 'str'",
    "OverflowError: bind(): port must be 0-65535")."""
    trace = tmp_path / "t.perfetto"
    trace.write_bytes(b"x")
    done = []
    thread = threading.Thread(target=lambda: done.append(_outcome(trace, kwargs)), daemon=True)
    thread.start()
    thread.join(5)
    assert done, "open_in_perfetto did not return"
    assert isinstance(done[0], error) and message in str(done[0])
    assert trace.read_bytes() == b"x"


def _outcome(trace, kwargs):
    try:
        return open_in_perfetto(trace, open_browser=False, out=open(os.devnull, "w"), **{"port": 0, **kwargs})
    except Exception as e:
        return e


def test_timeout_none_serves_until_fetched(tmp_path):
    trace = tmp_path / "t.perfetto"
    trace.write_bytes(b"trace bytes")
    thread, results, url = serve_in_thread(trace, timeout=None)
    assert get(url.split("url=", 1)[1])[1] == b"trace bytes"
    thread.join(10)
    assert results and results[0].reason == "fetched"
