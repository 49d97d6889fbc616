"""Opening a trace in the Perfetto UI (ui.perfetto.dev) from the command line.

The UI can load a trace from a URL, and it trusts `http://127.0.0.1:9001` (the port
Perfetto's own `open_trace_in_ui` script serves on). `open_in_perfetto(path)` serves that one
file there, read-only, with the CORS header the UI needs, opens
`https://ui.perfetto.dev/#!/?url=http://127.0.0.1:9001/<file name>` with Python's
`webbrowser` (so `$BROWSER` is honoured) and returns once the UI has fetched the file, or
after `timeout` seconds, or on Ctrl-C. Only loopback is bound; any other path is a 404.
"""
import http.server
import numbers
import os
import stat
import sys
import threading
import time
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, TextIO, Union
from urllib.parse import quote, unquote, urlsplit

from .errors import OpenError

UI_ORIGIN = "https://ui.perfetto.dev"
HOST = "127.0.0.1"
PORT = 9001  # the local port the Perfetto UI accepts traces from
DEFAULT_TIMEOUT = 120.0

__all__ = ["open_in_perfetto", "OpenResult", "ui_url", "UI_ORIGIN", "PORT", "DEFAULT_TIMEOUT"]


@dataclass
class OpenResult:
    """What `open_in_perfetto` did."""

    url: str  # the UI URL (printed, and opened in the browser when one was found)
    served: bool  # the UI (or whatever fetched the URL) got the whole file
    browser: bool  # a browser was started
    reason: str  # "fetched", "timeout" or "interrupted"


def ui_url(name: str, port: int = PORT) -> str:
    """The Perfetto UI URL that loads `http://127.0.0.1:<port>/<name>`."""
    return f"{UI_ORIGIN}/#!/?url=http://{HOST}:{port}/{quote(name)}"


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # reuses a port left in TIME_WAIT; one in use (listening) still fails


def open_in_perfetto(path: Union[str, os.PathLike], *, timeout: float = DEFAULT_TIMEOUT, port: int = PORT,
                     open_browser: bool = True, out: Optional[TextIO] = None,
                     on_serving: Optional[Callable[[str], None]] = None) -> OpenResult:
    """Serves `path` to the Perfetto UI and opens it in a browser (see the module documentation).

    Prints the URL (and what happened) to `out` (stderr by default). Raises OpenError when the
    file cannot be read or the port is busy; the file is left as it is either way. `timeout`
    is seconds >= 0 (None or inf: until fetched or Ctrl-C). `port` 0 picks a free port (for
    tests: the UI itself only loads from 9001). `on_serving(url)` is
    called once the server accepts connections.
    """
    timeout = _check_timeout(timeout)
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535 (0: a free one), got {port}")
    out = out or sys.stderr
    target = Path(path)
    try:  # opened once and read per request with pread: the trace is never held whole in memory
        fd = os.open(target, os.O_RDONLY)
    except OSError as e:
        raise OpenError(f"cannot read {target}: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OpenError(f"cannot serve {target}: not a regular file")
        return _serve(fd, info.st_size, target, timeout, port, open_browser, out, on_serving)
    finally:
        os.close(fd)


def _check_timeout(timeout) -> float:
    """`timeout` as seconds: a real number >= 0 (inf: until fetched or Ctrl-C), None as inf. NaN
    served forever (no time is >= a NaN deadline); a str or a bool was an internal TypeError."""
    if timeout is None:
        return float("inf")
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"timeout must be a number of seconds (or None: no limit), not {type(timeout).__name__}")
    if not timeout >= 0:  # also NaN
        raise ValueError(f"timeout must be a number of seconds >= 0, got {timeout}")
    return float(timeout)


def _serve(fd: int, size: int, target: Path, timeout: float, port: int, open_browser: bool, out: TextIO,
           on_serving: Optional[Callable[[str], None]]) -> OpenResult:
    name = target.name
    fetched = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "micromegas-perfetto"

        def log_message(self, format, *args):  # no access log on stderr
            pass

        def _cors(self):
            self.send_header("Access-Control-Allow-Origin", UI_ORIGIN)
            self.send_header("Cache-Control", "no-cache")

        def do_OPTIONS(self):  # CORS preflight
            self.send_response(204)
            self._cors()
            self.send_header("Access-Control-Allow-Methods", "GET")
            self.send_header("Access-Control-Allow-Headers", "*")
            self.end_headers()

        def do_GET(self):
            if unquote(urlsplit(self.path).path) != f"/{name}":
                self.send_response(404)
                self._cors()
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self._cors()
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            try:
                sent = 0
                while sent < size:
                    piece = os.pread(fd, min(1 << 20, size - sent), sent)
                    if not piece:  # the file shrank meanwhile: not a whole fetch
                        return
                    self.wfile.write(piece)
                    sent += len(piece)
                self.wfile.flush()
            except OSError:  # the client went away: not fetched
                return
            fetched.set()

    try:
        server = _Server((HOST, port), Handler)
    except OSError as e:
        raise OpenError(f"cannot serve the trace on {HOST}:{port} ({e.strerror or e}): is another trace being "
                        f"served? Open {UI_ORIGIN} and use 'Open trace file' with {target}") from None
    url = ui_url(name, server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    reason = "timeout"
    browser = False
    try:
        print(f"serving {target} for the Perfetto UI: {url}", file=out, flush=True)
        if on_serving:
            on_serving(url)
        if open_browser:
            browser = _open_browser(url)
            if not browser:
                print(f"no browser found: open {url} by hand", file=out, flush=True)
        deadline = time.monotonic() + max(timeout, 0)
        while not fetched.wait(timeout=min(0.2, max(deadline - time.monotonic(), 0))):
            if time.monotonic() >= deadline:
                break
        if fetched.is_set():
            reason = "fetched"
            print("the trace was fetched; stopped serving", file=out, flush=True)
        else:
            print(f"not fetched within {timeout:g} s; stopped serving ({target} is written)", file=out, flush=True)
    except KeyboardInterrupt:
        reason = "interrupted"
        print(f"interrupted; stopped serving ({target} is written)", file=out, flush=True)
    finally:
        server.shutdown()
        server.server_close()
    return OpenResult(url=url, served=reason == "fetched", browser=browser, reason=reason)


def _open_browser(url: str) -> bool:
    """Opens `url` with webbrowser ($BROWSER first) in a thread, since a $BROWSER command runs
    to completion before webbrowser returns; True when a browser was found and started."""
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    result = []
    opener = threading.Thread(target=lambda: result.append(_try_open(url)), daemon=True)
    opener.start()
    opener.join(timeout=2.0)  # a browser that is still starting counts as started
    return result[0] if result else True


def _try_open(url: str) -> bool:
    try:
        return bool(webbrowser.open(url, new=2))
    except Exception:
        return False
