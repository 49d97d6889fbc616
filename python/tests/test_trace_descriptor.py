"""write_perfetto's trace through a descriptor (`--filename -`, /dev/stdout, /dev/fd/N): refused
(exit 2, nothing written) when the descriptor is a terminal or the file, pipe or socket standard
error goes to; every other arrangement writes the trace as a file name would."""
import os
import socket
import subprocess
import sys
import threading

import pytest


@pytest.fixture(scope="module")
def reference(small_lake, tmp_path_factory):
    from conftest import run_cli
    lake, processes = small_lake
    pid = processes[0]["process_id"]
    out = tmp_path_factory.mktemp("reference") / "t.perfetto"
    done = run_cli("write_perfetto", pid, "--lake", lake, "--filename", out, "--quiet")
    assert done.returncode == 0, done.stderr
    return lake, pid, out.read_bytes()


def command(lake, pid, *args):
    return [sys.executable, "-m", "micromegas", "write_perfetto", pid, "--lake", str(lake), *args]


def drain(fd):
    """Reads `fd` to its end on a thread (a pipe, socket or terminal that would otherwise fill
    up and stop the writer); join() the thread, then read .data."""
    class Reader(threading.Thread):
        data = b""

        def run(self):
            chunks = []
            while True:
                try:
                    chunk = os.read(fd, 1 << 16)
                except OSError:  # EIO: a terminal whose last writer is gone
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            self.data = b"".join(chunks)
    reader = Reader()
    reader.start()
    return reader


@pytest.mark.parametrize("quiet", [[], ["--quiet"]])
@pytest.mark.parametrize("stderr", ["file", "pipe", "devnull", "closed", "terminal"])
def test_trace_into_a_pipe_with_stderr_elsewhere_is_written(reference, tmp_path, stderr, quiet):
    """`--filename - | cat > t` with standard error to a file, another pipe, /dev/null, the
    terminal, or closed (`2>&-`): the trace, whole, on the pipe."""
    lake, pid, expected = reference
    read_end, write_end = os.pipe()
    err_path = tmp_path / "err"
    closers = []
    kwargs = {}
    err_reader = None
    if stderr == "file":
        kwargs["stderr"] = open(err_path, "wb")
        closers.append(kwargs["stderr"])
    elif stderr == "pipe":
        kwargs["stderr"] = subprocess.PIPE
    elif stderr == "devnull":
        kwargs["stderr"] = subprocess.DEVNULL
    elif stderr == "closed":
        kwargs["preexec_fn"] = lambda: os.close(2)
    else:
        import pty
        primary, secondary = pty.openpty()
        kwargs["stderr"] = secondary
        err_reader = drain(primary)
    process = subprocess.Popen(command(lake, pid, "--filename", "-", *quiet), stdout=write_end, **kwargs)
    os.close(write_end)
    if stderr == "terminal":
        os.close(secondary)
    reader = drain(read_end)
    if stderr == "pipe":
        err_data = process.stderr.read()
    assert process.wait(timeout=120) == 0
    reader.join()
    os.close(read_end)
    if err_reader is not None:
        err_reader.join()
        os.close(primary)
        err_data = err_reader.data
    for f in closers:
        f.close()
    if stderr == "file":
        err_data = err_path.read_bytes()
    assert reader.data == expected
    if stderr in ("file", "pipe", "terminal") and not quiet:
        assert b"wrote standard output: " in err_data, err_data


@pytest.mark.parametrize("arrangement", ["socket", "file", "devnull"])
def test_trace_to_stdout_with_stderr_elsewhere_is_written(reference, tmp_path, arrangement):
    """Standard output a socket (stderr a file), a file (stderr /dev/null), /dev/null (stderr
    a file): written."""
    lake, pid, expected = reference
    err = open(tmp_path / "err", "wb")
    if arrangement == "socket":
        ours, theirs = socket.socketpair()
        process = subprocess.Popen(command(lake, pid, "--filename", "-"), stdout=theirs.fileno(), stderr=err)
        theirs.close()
        reader = drain(ours.fileno())
        assert process.wait(timeout=120) == 0, (tmp_path / "err").read_text()
        reader.join()
        ours.close()
        assert reader.data == expected
    elif arrangement == "file":
        with open(tmp_path / "t", "wb") as out:
            result = subprocess.run(command(lake, pid, "--filename", "-"), stdout=out, stderr=subprocess.DEVNULL,
                                    timeout=120)
        assert result.returncode == 0
        assert (tmp_path / "t").read_bytes() == expected
    else:
        result = subprocess.run(command(lake, pid, "--filename", "-"), stdout=subprocess.DEVNULL, stderr=err,
                                timeout=120)
        assert result.returncode == 0, (tmp_path / "err").read_text()
    err.close()


def test_trace_and_stderr_on_one_socket_exit_2(reference):
    """A socket for both (a service manager's, `socat EXEC:...,stderr`): the messages would
    land inside the trace."""
    lake, pid, _ = reference
    ours, theirs = socket.socketpair()
    process = subprocess.Popen(command(lake, pid, "--filename", "-"), stdout=theirs.fileno(), stderr=theirs.fileno())
    theirs.close()
    reader = drain(ours.fileno())
    assert process.wait(timeout=120) == 2
    reader.join()
    ours.close()
    text = reader.data.decode()
    assert text.startswith("error: --filename -: standard error goes to the same place"), text
    assert len(text.strip().splitlines()) == 1


@pytest.mark.parametrize("prefix", ["/dev/fd/", "/proc/self/fd/"])
def test_dev_fd_of_another_file_is_written_and_of_stderr_exits_2(reference, tmp_path, prefix):
    """`--filename /dev/fd/N N> t 2> err` is written; `N>&2` (descriptor N is standard error's
    file) is refused, and nothing but the one line lands in that file."""
    lake, pid, expected = reference
    with open(tmp_path / "t", "wb") as out, open(tmp_path / "err", "wb") as err:
        name = f"{prefix}{out.fileno()}"
        result = subprocess.run(command(lake, pid, "--filename", name, "--quiet"), stdout=subprocess.DEVNULL,
                                stderr=err, pass_fds=(out.fileno(),), timeout=120)
    assert result.returncode == 0, (tmp_path / "err").read_text()
    assert (tmp_path / "t").read_bytes() == expected
    with open(tmp_path / "both", "wb") as err:
        name = f"{prefix}{err.fileno()}"
        result = subprocess.run(command(lake, pid, "--filename", name), stdout=subprocess.DEVNULL, stderr=err,
                                pass_fds=(err.fileno(),), timeout=120)
    assert result.returncode == 2
    text = (tmp_path / "both").read_text()
    assert text.startswith(f"error: --filename {name}: standard error goes to the same place"), text
    assert len(text.strip().splitlines()) == 1


@pytest.mark.parametrize("extra", [["--quiet"], ["--validate"], ["--open"]])
def test_trace_and_stderr_in_one_file_exit_2_whatever_the_options(reference, tmp_path, extra):
    """`--filename - > t 2>&1` with --quiet (notes and the client's prompts still go to stderr),
    --validate or --open: exit 2, the file holds the one line and no trace byte."""
    lake, pid, _ = reference
    with open(tmp_path / "t", "wb") as f:
        result = subprocess.run(command(lake, pid, "--filename", "-", *extra), stdout=f, stderr=f, timeout=120)
    assert result.returncode == 2
    text = (tmp_path / "t").read_text()
    assert text.startswith("error: --filename -: standard error goes to the same place"), text
    assert len(text.strip().splitlines()) == 1


def test_validate_and_open_with_a_trace_through_a_descriptor(reference, tmp_path):
    """--validate reads back a regular file named /dev/stdout (> t) and notes that `-` is not
    one; --open cannot serve standard output: exit 2, nothing written."""
    lake, pid, expected = reference
    with open(tmp_path / "t", "wb") as out:
        result = subprocess.run(command(lake, pid, "--filename", "/dev/stdout", "--validate"), stdout=out,
                                stderr=subprocess.PIPE, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "t").read_bytes() == expected
    assert b"validated /dev/stdout: " in result.stderr and b"no problems" in result.stderr, result.stderr
    with open(tmp_path / "t2", "wb") as out:
        result = subprocess.run(command(lake, pid, "--filename", "-", "--validate"), stdout=out,
                                stderr=subprocess.PIPE, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "t2").read_bytes() == expected
    assert b"--validate reads the trace back from a regular file; - is not one" in result.stderr
    with open(tmp_path / "t3", "wb") as out:
        result = subprocess.run(command(lake, pid, "--filename", "-", "--open"), stdout=out, stderr=subprocess.PIPE,
                                timeout=120)
    assert result.returncode == 2
    assert (tmp_path / "t3").read_bytes() == b""
    assert result.stderr.startswith(b"error: --open serves a written file"), result.stderr


@pytest.mark.parametrize("extra", [[], ["--validate"]])
def test_unwritable_stderr_does_not_fail_a_written_trace(reference, tmp_path, extra):
    """Standard error open but unwritable (`2</dev/null`; pyenv's `python3` shim run with
    `2>&-` leaves descriptor 2 on its own script, read-only): the trace was written whole to
    standard output, then the summary line (and --validate's verdict) failed with EBADF and the
    command exited 1, where a trace file name exits 0 (notes to such a stderr are dropped)."""
    lake, pid, expected = reference
    with open(tmp_path / "t", "wb") as out, open(os.devnull, "rb") as err:
        result = subprocess.run(command(lake, pid, "--filename", "/dev/stdout", *extra), stdout=out, stderr=err,
                                timeout=120)
    assert result.returncode == 0
    assert (tmp_path / "t").read_bytes() == expected
