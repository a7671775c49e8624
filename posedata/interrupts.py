"""How a command ends when it is stopped from outside: SIGINT, SIGTERM, a closed pipe.

SIGTERM is turned into an exception (errors.Interrupted) in the main thread, as Python already
does for SIGINT (KeyboardInterrupt), so every `finally` and context manager runs: atomic writers
delete their temp files, output claims remove their staging folders and locks. The CLI then
prints one line and exits with the shell's code for the signal (130 for SIGINT, 143 for SIGTERM).
A reader that closes the pipe (`posedata ... | head`) ends the command quietly with 141, the code
of a process stopped by SIGPIPE, after the same cleanup: never 1, which means "the data has errors".
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from .errors import Interrupted

EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises Interrupted in the main thread (elsewhere: no change).
    The previous handler is restored after, so an embedding program (or a test) keeps its own."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_signal(exc: BaseException) -> Interrupted | None:
    """The Interrupted an exception stands for: SIGTERM's own, SIGINT's KeyboardInterrupt."""
    if isinstance(exc, Interrupted):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted(signal.SIGINT)
    return None


def silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's last flush does not
    print 'Exception ignored ... BrokenPipeError' (https://docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's captured output)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


class PipeConsole(Console):
    """A rich Console whose broken pipe raises BrokenPipeError, so the CLI ends quietly with 141
    after the usual cleanup (rich's own answer is SystemExit(1), the code for 'the data has errors')."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(32, "Broken pipe")
