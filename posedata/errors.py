"""Typed errors. Library code raises these; the CLI turns them into a message and an exit code.

Exit codes: 0 success, 1 the data has errors, 2 usage error or unreadable input.
"""
from __future__ import annotations


class PosedataError(Exception):
    """Base error: a message located by file and, where known, a JSON path or line."""

    exit_code = 2

    def __init__(self, message: str, file: str | None = None, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = None if file is None else str(file)
        self.where = where

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.where) if p]
        return ": ".join(parts + [self.message])


class InputError(PosedataError):
    """Unreadable or structurally wrong input (exit 2)."""


class SkeletonError(InputError):
    """A skeleton file that cannot be loaded (exit 2)."""


class OutputExistsError(PosedataError):
    """An output exists and --force was not given, or may not be replaced at all: it is an input,
    holds one, or is a folder another command (or the user) made (exit 2)."""


class OutputBusyError(OutputExistsError):
    """Another process is writing the same output now (exit 2)."""


class OutputWriteError(PosedataError):
    """An output cannot be written: read-only folder, full disk, file-size limit... (exit 2)."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM: raised in the main thread so every cleanup (temp files, locks) runs.
    A BaseException, like KeyboardInterrupt, so no `except Exception` swallows it."""

    def __init__(self, signum: int):
        import signal

        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum  # the shell's code for a process ended by that signal


class DataError(PosedataError):
    """The data was read but has errors that block the requested work (exit 1)."""

    exit_code = 1

    def __init__(self, message: str, findings: list | None = None, file: str | None = None, where: str | None = None):
        super().__init__(message, file=file, where=where)
        self.findings = findings or []
