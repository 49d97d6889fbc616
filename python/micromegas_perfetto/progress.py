"""`Progress`: what a generation reports while it runs (a light module: the command line
imports it before anything heavy)."""
import os
import sys
import warnings

from .errors import NoDataWarning

__all__ = ["Progress"]


class Progress:
    """What a generation reports while it runs. The default does nothing; the command line
    draws a progress bar from it."""

    def start(self, threads: int, process_id: str) -> None:
        """Generation of `threads` threads' spans begins."""

    def rows(self, n: int) -> None:
        """`n` more rows went into the library."""

    def thread_done(self) -> None:
        """One thread's spans are written."""

    def phase(self, text: str) -> None:
        """A new phase begins (async spans, server-side chunks)."""

    def bytes(self, n: int) -> None:
        """`n` more bytes of trace were received (server-side generation)."""

    def note(self, text: str) -> None:
        """Something the user should know that is not an error: a listed thread, or the
        process, has no data at all for spans that were asked for. The default issues a
        `NoDataWarning` (`warnings.warn`); the command line prints one line on stderr."""
        warnings.warn(text, NoDataWarning, stacklevel=_outside_the_package())

    def close(self) -> None:
        """Generation ended, successfully or not."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _outside_the_package() -> int:
    """The `stacklevel` of the first caller of `note` outside this package: the warning
    names the user's line (their write_process_trace call), not the generation's."""
    frame, level = sys._getframe(1), 1  # note's frame is level 1
    while frame.f_back is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _PACKAGE:
        frame, level = frame.f_back, level + 1
    return level
