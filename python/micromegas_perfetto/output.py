"""Output targets: files that appear whole or not at all, and the other things a name can be.

`atomic_output(target)` opens what `target` names for writing:

- `-`: standard output, written directly; so are `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`
  and `/proc/self/fd/N`, through that descriptor (`descriptor_named`);
- a name ending with `/` that is not a folder: an `OutputError` (it names a folder);
- an existing file that is not a regular file (a FIFO, a character or block device such as
  `/dev/null`, a socket): written into directly, never replaced;
- a symbolic link: resolved; its final target is written as below, the link itself is kept;
- anything else (a new name or an existing regular file): the trace goes into an unnamed
  file (`O_TMPFILE`) in the target's folder, which is synced and linked into place
  (`linkat`) only once complete. The kernel discards an unnamed file when its process ends,
  so no signal, not even SIGKILL, leaves a partial file. A new name is linked directly; an
  existing file is replaced atomically by linking under a hidden temporary name and
  renaming over it: the only moment a SIGKILL could leave that name behind is between
  those two consecutive system calls;
- where the file system cannot make unnamed files (NFS, FUSE, vfat...) or /proc is
  missing: a hidden named temporary in the folder, renamed when complete and removed on any
  error; the command line also removes it on SIGTERM, SIGHUP and SIGINT
  (`remove_temporaries`), not on SIGKILL.

A missing or unwritable output folder, or a target that is a folder, is an `OutputError`
(nothing is created). New files get the usual mode, 0666 less the umask; a replaced file's
permission bits are kept.
"""
import errno
import os
import re
import stat
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Set, Tuple

from .errors import OutputError

__all__ = ["Output", "atomic_output", "remove_temporaries"]

# Named temporaries that exist right now (fallback files, link names before their rename).
_temporaries: Set[str] = set()
# Signals that arrived while a file was being put in place (see `critical` below).
_deferred = []
_critical = 0
# The last file this process put in place (for the command line's interruption message).
last_committed: Optional[str] = None
# The last output written directly (standard output, a descriptor, a FIFO or device), as
# (shown name, whether its trace was written whole): an interruption then says so.
last_direct: Optional[Tuple[str, bool]] = None
# When False, named temporaries are used even where unnamed files work (tests of the fallback).
use_unnamed = True


class Output:
    """An open output: `fd` to write to; `path` the file written (symlinks resolved; None for
    standard output); `replaced` whether it is put in place atomically; after the block,
    `size` in bytes (None when the target is not a regular file)."""

    def __init__(self, fd: int, path: Optional[Path], replaced: bool, shown: str):
        self.fd, self.path, self.replaced, self.shown = fd, path, replaced, shown
        self.size: Optional[int] = None


def remove_temporaries() -> None:
    """Removes this process's named temporaries (from a signal handler, before exiting)."""
    for name in list(_temporaries):
        try:
            os.unlink(name)
        except OSError:
            pass
        _temporaries.discard(name)


def in_critical_section() -> bool:
    """True while a finished file is being put in place: a signal handler should call
    `defer(signum)` instead of interrupting, so the file is either in place or absent."""
    return _critical > 0


def defer(signum: int) -> None:
    _deferred.append(signum)


@contextmanager
def _putting_in_place():
    global _critical
    _critical += 1
    try:
        yield
    finally:
        _critical -= 1
    if _critical == 0 and _deferred:
        from .errors import Interrupted
        signum = _deferred[0]
        _deferred.clear()
        raise Interrupted(signum)


@contextmanager
def uninterrupted():
    """A block that SIGINT, SIGTERM and SIGHUP do not cut short under the command line, not
    even a second one (the watchdog of _signals waits too): a signal during it is raised as
    the block ends. For a clean-up that must finish once begun, such as removing a half-written
    sample lake (a second Ctrl-C during it left the half lake); not for long work."""
    with _putting_in_place():
        yield


def _fail(shown: str, e: OSError, doing: str) -> OutputError:
    reason = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
              errno.EROFS: "read-only file system", errno.ENOTDIR: "a component of the path is not a folder",
              errno.ENAMETOOLONG: "name too long", errno.ELOOP: "too many levels of symbolic links",
              errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}.get(e.errno, e.strerror)
    return OutputError(f"cannot {doing} {shown}: {reason}")


def _open_unnamed(folder: Path) -> Optional[int]:
    """An unnamed file in `folder` that /proc lets us link later, or None where impossible."""
    if not use_unnamed or not hasattr(os, "O_TMPFILE"):
        return None
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None
        raise
    try:
        os.stat(f"/proc/self/fd/{fd}")
    except OSError:
        os.close(fd)
        return None
    return fd


def _temporary_name(path: Path) -> str:
    return str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")


def _claim_temporary(path: Path, create):
    """Calls `create(temp)` with fresh temporary names beside `path` until one is free (it
    raises FileExistsError for a taken one); returns `(temp, what create returned)`, `temp`
    registered in `_temporaries` (so a signal removes it) before it exists."""
    while True:
        temp = _temporary_name(path)
        _temporaries.add(temp)
        try:
            return temp, create(temp)
        except FileExistsError:
            _temporaries.discard(temp)
        except BaseException:  # also an interruption landing just after `create` made the file
            try:
                os.unlink(temp)
            except OSError:
                pass
            _temporaries.discard(temp)
            raise


def _keep_mode(fd: int, replaced: os.stat_result) -> None:
    """Gives the new file the permission bits of the file it replaces (a trace made readable
    by the group, or read-only, stays so when written again), not the set-id bits. Where the
    file system refuses (vfat, some FUSE), the new file keeps the usual mode."""
    try:
        os.fchmod(fd, stat.S_IMODE(replaced.st_mode) & 0o777)
    except OSError:
        pass


def _link_into_place(fd: int, path: Path, folder_fd: int) -> None:
    """Gives the unnamed file `fd` the name `path`, replacing what is there atomically."""
    source = f"/proc/self/fd/{fd}"
    # linkat(AT_SYMLINK_FOLLOW): os.link calls linkat (not link) when given a dir_fd.
    try:
        os.link(source, path.name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd, follow_symlinks=True)
        return
    except FileExistsError:
        pass
    temp, _ = _claim_temporary(path, lambda temp: os.link(source, os.path.basename(temp), src_dir_fd=folder_fd,
                                                          dst_dir_fd=folder_fd, follow_symlinks=True))
    try:
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    finally:
        _temporaries.discard(temp)


class _WriteBack:
    """Starts the kernel's write-back of a file while it is still being written, from a
    thread: every few milliseconds, what was appended since the last time (a few MB at
    least) is handed to `sync_file_range(SYNC_FILE_RANGE_WRITE)`, which only starts the
    writes. The final fsync then mostly waits for the tail instead of writing the whole
    trace. Durability is unchanged (the fsync still comes before the file is linked); where
    sync_file_range is missing (not Linux) nothing is done."""

    STEP = 4 << 20  # bytes appended before a write-back is started
    PERIOD = 0.005  # seconds between looks at the file's size

    def __init__(self, fd: int):
        import threading

        self._fd = fd
        self._stop = threading.Event()
        self._thread = None
        call = _sync_file_range()
        if call is not None:
            thread = threading.Thread(target=self._run, args=(call,), name="micromegas-write-back", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no thread can be made (RLIMIT_NPROC, memory): the fsync does it all
                return
            self._thread = thread

    def _run(self, call) -> None:
        started = 0
        while not self._stop.wait(self.PERIOD):
            try:
                size = os.fstat(self._fd).st_size
            except OSError:
                return
            if size - started >= self.STEP:
                if call(self._fd, started, size - started, 2) != 0:  # SYNC_FILE_RANGE_WRITE
                    return  # not supported here (EINVAL, ESPIPE...): the fsync does it all
                started = size

    def stop(self) -> None:
        """Stops the thread (before the file descriptor is synced or closed)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None


_SYNC_FILE_RANGE = []


def _sync_file_range():
    """libc's sync_file_range(fd, offset, nbytes, flags), or None where there is none."""
    if not _SYNC_FILE_RANGE:
        call = None
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                call = ctypes.CDLL(None, use_errno=True).sync_file_range
                call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
                call.restype = ctypes.c_int
            except (OSError, AttributeError):
                call = None
        _SYNC_FILE_RANGE.append(call)
    return _SYNC_FILE_RANGE[0]


def _sync_folder(folder_fd: int) -> None:
    try:
        os.fsync(folder_fd)
    except OSError:  # some file systems cannot sync a folder; the file itself is synced
        pass


_DESCRIPTOR_NAME = re.compile(r"^/(?:dev/fd|proc/self/fd)/(\d+)$")


def descriptor_named(name: str) -> Optional[int]:
    """The open descriptor that `name` stands for: 1 for `-` and `/dev/stdout`, 2 for
    `/dev/stderr`, N for `/dev/fd/N` and `/proc/self/fd/N` (bash's `>(gzip > t.gz)` names
    /dev/fd/63); None for any other name, or a descriptor that is not open. Such a name is
    written through the descriptor itself, as `-` is: opening the name again would fail for
    a pipe or socket (`/proc/self/fd/1 -> pipe:[N]`) and, for a file the shell opened, start
    at its beginning or replace it instead of appending where the shell's redirection says."""
    if name == "-":
        return 1
    fd = {"/dev/stdout": 1, "/dev/stderr": 2}.get(name)
    if fd is None:
        match = _DESCRIPTOR_NAME.match(name)
        fd = int(match.group(1)) if match and len(match.group(1)) < 10 else None
    if fd is None:
        return None
    try:
        os.fstat(fd)
    except OSError:
        return None
    return fd


@contextmanager
def _direct(out: Output) -> Iterator[Output]:
    """`out`, written directly: `last_direct` names it, incomplete until the block ends well."""
    global last_direct
    last_direct = (out.shown, False)
    yield out
    last_direct = (out.shown, True)


@contextmanager
def atomic_output(target) -> Iterator[Output]:
    """Opens `target` for writing as the module documentation describes; yields an `Output`.
    On any error or interruption inside the block, a file being created is discarded."""
    global last_committed
    shown = os.fspath(target) if not isinstance(target, bytes) else os.fsdecode(target)
    if shown == "":
        raise OutputError("the output file name is empty")
    if shown == "-":
        if sys.stdout is None:  # the process was started with standard output closed
            raise OutputError("standard output is closed: there is nowhere to write the trace")
        try:
            fd = sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is OSError and ValueError
            raise OutputError("standard output has no file descriptor here (a notebook, or sys.stdout "
                              f"replaced by {type(sys.stdout).__name__}): write to a file name, or use "
                              "generate_trace_chunks") from None
        sys.stdout.flush()
        with _direct(Output(fd, None, False, "standard output")) as out:
            yield out
        return
    fd = descriptor_named(shown)
    if fd is not None:  # /dev/stdout, /dev/fd/N: the descriptor itself, as for "-"
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        with _direct(Output(fd, None, False, shown)) as out:
            yield out
        return
    if shown.endswith(os.sep) and not os.path.isdir(shown):  # Path() drops the slash: "out/" became a file "out"
        raise OutputError(f"output {shown} ends with {os.sep}, so it names a folder, and "
                          f"{'that is a file' if os.path.lexists(shown.rstrip(os.sep)) else 'none exists'}: "
                          "give a file name")
    path = Path(shown)
    try:
        if path.is_symlink():
            path = Path(os.path.realpath(path))
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as e:
        raise _fail(shown, e, "write") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OutputError(f"output {shown} is a folder")
    if info is not None and not stat.S_ISREG(info.st_mode):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
        except OSError as e:
            raise _fail(shown, e, "open") from None
        try:
            with _direct(Output(fd, path, False, shown)) as out:
                yield out
        finally:
            os.close(fd)
        return
    folder = path.parent
    try:
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        # "~/t.perfetto" from Python (no shell expands it) named a folder "~" that does not exist
        tilde = (f" (~ is not expanded here: os.path.expanduser gives {os.path.expanduser(str(path))!r})"
                 if str(path).startswith("~") and os.path.expanduser(str(path)) != str(path) else "")
        raise OutputError(f"output folder {folder} does not exist{tilde}") from None
    except NotADirectoryError:
        raise OutputError(f"output folder {folder} is not a folder") from None
    except OSError as e:
        raise _fail(str(folder), e, "open the output folder") from None
    try:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"output folder {folder} is not writable")
        try:
            fd = _open_unnamed(folder)
            temp = None
            if fd is None:
                temp, fd = _claim_temporary(
                    path, lambda temp: os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
        except OSError as e:
            raise _fail(shown, e, "create") from None
        if info is not None:
            _keep_mode(fd, info)
        out = Output(fd, path, True, shown)
        write_back = None
        try:
            try:
                write_back = _WriteBack(fd)  # inside the try: an interruption here removes the temporary
                yield out
            finally:
                if write_back is not None:
                    write_back.stop()
            os.fsync(fd)
            out.size = os.fstat(fd).st_size
            with _putting_in_place():
                if temp is None:
                    _link_into_place(fd, path, folder_fd)
                else:
                    os.replace(temp, path)
                    _temporaries.discard(temp)
                    temp = None
                last_committed = str(path)
            _sync_folder(folder_fd)
        finally:
            os.close(fd)
            if temp is not None:
                try:
                    os.unlink(temp)
                except OSError:
                    pass
                _temporaries.discard(temp)
    finally:
        os.close(folder_fd)
