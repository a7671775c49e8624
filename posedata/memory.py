"""How posedata's large jobs use the machine's memory: the label file streamed to disk without a
page cache its size, and a job's arrays in 4 kB pages rather than NumPy's huge pages.

Both answer the same cost, measured on the bench VM (bench/README.md, "convert"): memory first
touched is expensive kernel time there, and more so the less recently any process freed it, so a
300k-annotation convert paid 3-6x the system time of a 150k one for 2x the data.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, BinaryIO

# the chunk StreamingWriter sends to disk at a time: ~2 chunks of page cache are alive at once.
# Writing 268 MB (`bench_convert.py --write-chunks`, three runs at load 4.3-5.3): 2 and 4 MB chunks
# 0.07-0.20 s of system time, 16 MB chunks 0.09-0.51 s, a plain write 0.07-1.37 s; the fewer pages
# in flight, the likelier the next chunk gets the ones just dropped
STREAM_CHUNK = 4 << 20
_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4  # sync_file_range's flags (linux/fs.h)


class StreamingWriter:
    """A file written front to back whose pages leave the page cache once they are on disk.

    Why: the page cache a large write fills is memory first touched, and on a VM whose host takes
    back memory the guest has not used lately (this project's bench machine runs DAMON pageout),
    first-touching 268 MB of page cache cost 0.15-0.95 s of system time for the label file of a
    268 MB COCO file, varying with what other processes had freed just before (bench/README.md,
    "convert"). Here every STREAM_CHUNK written starts that chunk's writeback (sync_file_range,
    asynchronous), waits for the previous chunk's and drops it (posix_fadvise DONTNEED), so the
    next chunk's page cache reuses pages just freed: ~0.1 s, whatever the machine's state.
    Durability is unchanged: atomic_writer still fsyncs before the rename. Where sync_file_range
    is missing (not Linux) or refused by the file system it writes as a plain file does. Writes
    that seek back (zipfile rewrites each member's local header) go through unchanged."""

    def __init__(self, f: BinaryIO, chunk: int | None = None):
        self._f = f
        self._fd = f.fileno()
        self._chunk = chunk or STREAM_CHUNK
        self._sync = _sync_file_range()
        self._started = 0  # writeback started for [0, started)
        self._dropped = 0  # [0, dropped) on disk and out of the cache

    def write(self, data: Any) -> int:
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        n = len(view)
        for i in range(0, n, self._chunk):  # a 268 MB write would otherwise fill the cache whole
            self._f.write(view[i:i + self._chunk])
            self._advance()
        return n

    def _advance(self) -> None:
        if self._sync is None:
            return
        pos = self._f.tell()
        if pos - self._started < self._chunk:
            return
        self._f.flush()
        if not self._range(self._started, pos - self._started, _WRITE):
            return
        if self._started > self._dropped:
            if not self._range(self._dropped, self._started - self._dropped, _WAIT_BEFORE | _WRITE | _WAIT_AFTER):
                return
            drop_cache(self._fd, self._dropped, self._started - self._dropped)
            self._dropped = self._started
        self._started = pos

    def _range(self, offset: int, size: int, flags: int) -> bool:
        assert self._sync is not None
        if self._sync(self._fd, offset, size, flags) == 0:
            return True
        import ctypes
        import errno

        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EINVAL, errno.ESPIPE, errno.EOPNOTSUPP):
            self._sync = None  # this file system does not do it: write as a plain file does
            return False
        # an I/O error it reports is consumed (the kernel advances the file's error mark), so a
        # later fsync would not see it: it is the write's error
        raise OSError(err, os.strerror(err))

    def flush(self) -> None:
        self._f.flush()

    def __getattr__(self, name: str) -> Any:  # tell, seek, fileno, ... as the file has them
        return getattr(self._f, name)


@lru_cache(maxsize=1)
def _sync_file_range() -> Any:
    """libc's sync_file_range (Linux), or None; os has no wrapper for it."""
    if not sys.platform.startswith("linux") or not hasattr(os, "posix_fadvise"):
        return None
    import ctypes

    try:
        f = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    f.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    f.restype = ctypes.c_int
    return f


def drop_cache(fd: int, offset: int, size: int) -> None:
    """Drop a written range's clean pages from the page cache (a hint: failure changes nothing)."""
    if _sync_file_range() is None:
        return
    try:
        os.posix_fadvise(fd, offset, size, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass


@contextmanager
def small_pages() -> Iterator[None]:
    """NumPy's new arrays without madvise(MADV_HUGEPAGE) for the block, then as before.

    Why: with transparent huge pages on "madvise" (this project's bench VM, a common default),
    NumPy's advice makes the kernel fault each large array in 2 MB pages, compacting memory for
    them when none is free; on a COCO file of 300k annotations that system time grew 3-6x for 2x
    the file, varying with the machine's memory state, and user time gained nothing measurable
    from the larger pages (bench/README.md, "convert", stop 24). NumPy reads its environment
    variable NUMPY_MADVISE_HUGEPAGE only at import; its runtime switch is the function below
    (numpy >= 1.19), and without it the block runs as NumPy is set."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:
        try:
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:  # pragma: no cover - numpy < 1.19
            yield
            return
    was = _set_madvise_hugepage(False)
    try:
        yield
    finally:
        _set_madvise_hugepage(was)
