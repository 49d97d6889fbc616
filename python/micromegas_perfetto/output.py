"""Output files that appear whole or not at all."""
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import OutputError


@contextmanager
def atomic_output(target) -> Iterator[int]:
    """A file descriptor of a temporary file in `target`'s folder. When the block succeeds the
    file is synced and renamed to `target`; on any error or interruption it is removed, so a
    partial trace is never left behind."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist")
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp creates the file 0600; give it the mode any new file gets (0666 less the umask).
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        yield fd
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(temp, target)
        temp = None
    finally:
        if fd >= 0:
            os.close(fd)
        if temp is not None:
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass
