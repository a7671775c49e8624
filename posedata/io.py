"""Atomic writes and the output policy shared by every command that writes.

The policy (docs/reliability.md, "Nothing a user owns is destroyed"): an output is never an
input, never contains one and never lies inside an input folder, whatever the flags; an existing
output is replaced only with --force, and an existing output folder only if it carries the marker
the same command wrote when it made it; one process at a time writes an output (an flock held
for the command's life, released by the OS if the process dies); write errors name the path and
the OS reason.
"""
from __future__ import annotations

import fcntl
import gc
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from .errors import InputError, OutputBusyError, OutputExistsError, OutputWriteError
from .memory import StreamingWriter, drop_cache

# the file an output folder carries to say which command made it (its text is the command's name)
MARKER = ".posedata-output"


def write_error(path: str | os.PathLike, e: OSError) -> OutputWriteError:
    """A failed write as a usage error naming the path and the OS reason (exit 2)."""
    reason = e.strerror or os.strerror(e.errno) if e.errno else str(e)
    return OutputWriteError(f"cannot write: {reason}", file=str(path))


@contextmanager
def atomic_writer(path: str | os.PathLike, *, stream: bool = False) -> Iterator[BinaryIO]:
    """A binary file that appears at path only when the block ends without an error: written to a
    temp file in the same folder, fsynced, then renamed; readers never see half a file.

    stream=True (for outputs of hundreds of MB, the label file): the file goes to disk chunk by
    chunk as it is written and each chunk's page cache is dropped once on disk (StreamingWriter),
    so the write reuses a few chunks' worth of memory instead of first-touching the whole file's;
    the bytes written and the fsync before the rename are the same."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise write_error(p, e) from None
    try:
        # mkstemp makes 0600 files; an output should get the permissions any new file gets here
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            out = StreamingWriter(f) if stream else f
            yield out  # type: ignore[misc]
            out.flush()
            os.fsync(f.fileno())
            if stream:
                drop_cache(f.fileno(), 0, 0)  # the tail too: nothing of the file is left cached
        os.replace(tmp, p)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        # a full disk, a file-size limit, a folder made read-only meanwhile: exit 2 naming the file
        if isinstance(e, OSError) and not isinstance(e, BrokenPipeError):
            raise write_error(p, e) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_writer(path) as f:
        f.write(data)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for a block that builds millions of small acyclic
    containers (parsed JSON, findings, pickled records): the collector would only rescan them,
    2-3x the run time at COCO scale. Nothing is lost (no reference cycles are made), and the
    process's collector is left as it was."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=False))


def read_bytes(path: str | os.PathLike) -> bytes:
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=str(p))
    if p.is_dir():
        raise InputError("expected a file, found a folder", file=str(p))
    try:
        return p.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", file=str(p)) from None


def read_text(path: str | os.PathLike) -> str:
    data = read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte {e.start})", file=str(path)) from None


def load_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; errors name the file, line and column."""
    data = read_bytes(path)
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n"):
        raise InputError("empty file, expected JSON", file=str(path))
    return parse_json(data, path)


def _fast_json() -> Any:
    try:
        from msgspec.json import Decoder
    except ImportError:  # pragma: no cover - a dependency; json alone gives the same values, slower
        return None
    return Decoder().decode


_FAST_JSON = _fast_json()


def parse_json(data: bytes, file: str | os.PathLike | None = None) -> Any:
    """Parse JSON bytes into the same Python values as json.loads, about 3x faster on large files.

    msgspec parses straight from the bytes (no decoded copy of the text) and gives json.loads'
    values for everything it accepts: the same ints (arbitrary size), floats, strings and last-key
    -wins objects (tests compare them on random documents). What it refuses is either bad JSON or
    json's extensions (NaN, Infinity, lone surrogates, a byte-order mark is stripped first):
    json.loads then decides, so values and error messages are exactly json's."""
    body = data[3:] if data[:3] == b"\xef\xbb\xbf" else data
    if _FAST_JSON is not None:
        try:
            return _FAST_JSON(body)
        except Exception:  # noqa: BLE001 - json below gives the value or the located error
            pass
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte {e.start})", file=str(file) if file else None) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg}", file=str(file) if file else None,
                         where=f"line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise InputError("invalid JSON: nested too deeply", file=str(file) if file else None) from None


# A skeleton, a YOLO data.yaml or a DeepLabCut config is a few kB; these bounds are far above any
# of them and keep a hostile file cheap: a 741-byte file of nested aliases expands to billions of
# nodes for whoever walks it, and deep nesting overflows the stack of a recursive composer.
MAX_YAML_BYTES = 4 << 20
MAX_YAML_DEPTH = 64
# values after alias expansion: PyYAML builds ~20 000 values a second here, so this keeps any
# refusal under a second; the largest skeleton accepted (1000 keypoints, 2000 limbs) has ~9 000
MAX_YAML_NODES = 20_000


def load_yaml(path: str | os.PathLike, error: type[InputError] = InputError) -> Any:
    """Parse a YAML file (safe loader only, size, depth and alias expansion bounded); errors name
    the file, line and column."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError:
        size = 0  # read_bytes names what is wrong
    if size > MAX_YAML_BYTES:
        raise error(f"YAML file of {size} bytes; posedata reads YAML files of at most {MAX_YAML_BYTES} bytes",
                    file=str(path))
    return parse_yaml(read_text(path), str(path), error)


def parse_yaml(text: str, file: str | None = None, error: type[InputError] = InputError) -> Any:
    """yaml.safe_load with the bounds above checked first, on libyaml's event stream (nothing is
    built until the document is known to be small and shallow)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_yaml_events(yaml.parse(text, Loader=loader), error, file)
        safe = loader(text)  # CSafeLoader or SafeLoader: plain data only, as yaml.safe_load
        try:
            return safe.get_single_data()
        finally:
            safe.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else None
        raise error(f"invalid YAML: {getattr(e, 'problem', None) or e}", file=file, where=where) from None


def _check_yaml_events(events: Iterator[Any], error: type[InputError], file: str | None) -> None:
    import yaml

    sizes: dict[str, int] = {}  # anchor -> nodes its value expands to
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, node count when it started)
    total = 0
    for ev in events:
        if isinstance(ev, yaml.AliasEvent):
            total += sizes.get(ev.anchor, 1)
        elif isinstance(ev, (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            total += 1
            if isinstance(ev, yaml.ScalarEvent):
                if ev.anchor is not None:
                    sizes[ev.anchor] = 1
            else:
                open_nodes.append((ev.anchor, total - 1))
                if len(open_nodes) > MAX_YAML_DEPTH:
                    raise error(f"YAML nested more than {MAX_YAML_DEPTH} levels deep", file=file,
                                where=f"line {ev.start_mark.line + 1} column {ev.start_mark.column + 1}")
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, start = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = total - start
        if total > MAX_YAML_NODES:
            mark = ev.start_mark
            raise error(f"YAML expands to more than {MAX_YAML_NODES} values (aliases counted as the values they "
                        "repeat); refused", file=file, where=f"line {mark.line + 1} column {mark.column + 1}")


def safe_image_path(root: str | os.PathLike, name: str) -> Path:
    """Resolve an image name from a JSON inside root; refuse '..', absolute paths and symlinks out."""
    if not isinstance(name, str) or not name:
        raise InputError(f"image path must be a non-empty string, got {name!r}")
    if "\x00" in name:  # the OS refuses it, and Path.resolve raises ValueError on it
        raise InputError(f"image path {name!r} contains a NUL character")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise InputError(f"image path {name!r} is absolute; it must be relative to the images folder")
    root_r = _resolved(os.path.abspath(root))
    p = (root_r / name).resolve()
    if p != root_r and root_r not in p.parents:
        raise InputError(f"image path {name!r} escapes the images folder {str(root)!r}")
    return p


@lru_cache(maxsize=16)
def _resolved(root: str) -> Path:
    # an absolute root is resolved once per process: the trainer asks for every sample, and
    # resolving walks every component of the path (~25 us). A root whose symlink is re-pointed
    # meanwhile only makes paths under the new target look outside, so they are refused.
    return Path(root).resolve()


# ------------------------------------------------------------------ output claims
def _real(p: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(p)))


def guard_inputs(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None]) -> None:
    """Refuse an output that is one of the inputs, contains one or lies inside an input folder
    (symlinks resolved). Inputs that do not exist (a template name, a file the command will report
    missing) have nothing to protect."""
    out = _real(output)
    for inp in inputs:
        if inp is None or not os.path.lexists(inp):
            continue
        src = _real(inp)
        if out == src:
            raise OutputExistsError(f"the output is the input {str(inp)!r}; inputs are never replaced",
                                    file=str(output))
        if out in src.parents:
            raise OutputExistsError(f"the output folder contains the input {str(inp)!r}; inputs are never "
                                    "replaced or deleted", file=str(output))
        if src.is_dir() and src in out.parents:
            raise OutputExistsError(f"the output lies inside the input folder {str(inp)!r}; posedata never "
                                    "writes into its inputs", file=str(output))


def marker_of(folder: str | os.PathLike) -> str | None:
    """The command named by a folder's marker, '' for a marker cut short by a kill while it was
    being made, None when there is no marker."""
    try:
        with open(Path(folder) / MARKER, "rb") as f:
            text = f.read(256)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError:
        return None
    return text.decode("utf-8", "replace").strip()


def write_marker(folder: str | os.PathLike, command: str) -> None:
    """Mark a folder this command made (one small write: a kill leaves it absent or empty)."""
    p = Path(folder) / MARKER
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{command}\n")
    except OSError as e:
        raise write_error(p, e) from None


def check_replaceable(folder: str | os.PathLike, command: str) -> None:
    """An existing non-empty folder may be replaced only if the same command made it."""
    p = Path(folder)
    if not p.exists():
        return
    if not p.is_dir():
        raise OutputExistsError("output exists and is not a folder; posedata does not replace it", file=str(p))
    if not any(p.iterdir()):
        return
    made_by = marker_of(p)
    if made_by is None:
        raise OutputExistsError(f"refusing to replace a folder `posedata {command}` did not make (it has no "
                                f"{MARKER} marker): remove it yourself or choose another output", file=str(p))
    if made_by and made_by != command:
        raise OutputExistsError(f"refusing to replace a folder made by `posedata {made_by}`, not by "
                                f"`posedata {command}`: remove it yourself or choose another output", file=str(p))


def _sibling(out: Path, tag: str) -> Path:
    """A new hidden sibling folder of out, named so a later claim of out can find it when a
    SIGKILL left it behind; unlike mkdtemp it gets the umask's usual permissions, since it may
    become the output."""
    for _ in range(100):
        p = out.parent / f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.{tag}"
        try:
            p.mkdir()
            return p
        except FileExistsError:
            continue
        except OSError as e:
            raise write_error(out.parent, e) from None
    raise OutputWriteError("cannot create a temporary folder next to the output", file=str(out))


def staging_dir(out: str | os.PathLike, command: str) -> Path:
    """A hidden sibling folder to build an output folder in, already carrying the marker; move it
    into place with replace_dir."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(out.parent, e) from None
    tmp = _sibling(out, "tmp")
    write_marker(tmp, command)
    return tmp


@contextmanager
def staged_dir(out: str | os.PathLike, command: str) -> Iterator[Path]:
    """A folder built aside (staging_dir) and moved into place (replace_dir) when the block ends
    without an error; on any error the half-built folder is removed, and an OSError becomes a
    located write error (exit 2)."""
    tmp = staging_dir(out, command)
    try:
        yield tmp
        replace_dir(tmp, out, command)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_error(getattr(e, "filename", None) or out, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(tmp: str | os.PathLike, out: str | os.PathLike, command: str) -> None:
    """Move a finished folder into place. An existing out is replaced only if the same command
    made it (checked again here: the library's own guard, whatever the caller checked); it is moved
    aside first and removed only once the new one is in place."""
    tmp, out = Path(tmp), Path(out)
    if out.exists() and out.is_dir() and not any(out.iterdir()):
        os.rmdir(out)
    if not out.exists():
        os.replace(tmp, out)
        return
    check_replaceable(out, command)
    old = _sibling(out, "old")
    os.replace(out, old / "previous")
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old / "previous", out)
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def lock_sibling(lock: Path) -> int | None:
    """An exclusive flock on the lock file `lock` (created if missing): its descriptor, or None at
    once when another process holds it. The OS releases the lock of a process that dies, however it
    dies. Output claims (`.NAME.posedata-claim`) and the trainer's run lock (`.NAME.posedata-lock`)
    both take it."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        # the holder before us may have unlinked the file between our open and our lock: keep the
        # lock only if it is on the file that is there now
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def unlock_sibling(lock: Path, fd: int) -> None:
    """Release lock_sibling()'s lock: the file goes first, so no one locks a file about to vanish."""
    try:
        os.unlink(lock)
    except FileNotFoundError:
        pass
    os.close(fd)


class OutputClaim:
    """One command's hold on its output: checked against the inputs and the replace rules, locked
    against a second writer, and cleaned up (temp folders, parents it made, its lock) when the
    command ends however it ends. Use as a context manager (or click's ctx.with_resource)."""

    def __init__(self, path: str | os.PathLike, command: str, *, inputs: Iterable[str | os.PathLike | None] = (),
                 force: bool = False, folder: bool = False):
        self.path = Path(path)
        self.command = command
        self.force = force
        self.folder = folder
        self.inputs = list(inputs)
        self._lock_fd: int | None = None
        self._lock_path = self.path.parent / f".{self.path.name}.posedata-claim"
        self._made_parents: list[Path] = []
        self._staging: Path | None = None

    # -- life
    def __enter__(self) -> OutputClaim:
        guard_inputs(self.path, self.inputs)
        self._lock()
        try:
            self._check()
            self._clear_stale()
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def _check(self) -> None:
        p = self.path
        if self.folder:
            if p.exists() and not p.is_dir():
                raise OutputExistsError("output exists and is not a folder", file=str(p))
            if p.is_dir() and any(n != MARKER for n in os.listdir(p)):
                if not self.force:
                    raise OutputExistsError("output folder exists and is not empty; pass --force to replace it",
                                            file=str(p))
                check_replaceable(p, self.command)
        elif p.exists() or p.is_symlink():
            if p.is_dir():
                raise OutputExistsError("output exists and is a folder", file=str(p))
            if not self.force:
                raise OutputExistsError("output exists; pass --force to replace it", file=str(p))

    def _lock(self) -> None:
        """An flock on a sibling lock file: a second writer fails at once, and the OS releases the
        lock of a process that dies. Creating it also proves the location writable before any work."""
        missing = []
        for parent in [self.path.parent, *self.path.parent.parents]:
            if parent.exists():
                break
            missing.append(parent)
        try:
            for d in reversed(missing):
                d.mkdir()
                self._made_parents.append(d)
            fd = lock_sibling(self._lock_path)
            if fd is None:
                raise OutputBusyError("another posedata process is writing this output now; wait for it "
                                      "or choose another output", file=str(self.path))
        except OSError as e:
            self._remove_made_parents()
            raise write_error(self.path.parent, e) from None
        except BaseException:
            self._remove_made_parents()
            raise
        self._lock_fd = fd

    def _clear_stale(self) -> None:
        """Temp files and folders of this output: those a killed writer left (at the start), and
        ours that an interrupt landing between their creation and their try-block would strand (at
        the end). Only names our writers make, and only while holding the lock: nobody else is
        writing them."""
        name = re.escape(self.path.name)
        files = re.compile(rf"\.{name}\.[A-Za-z0-9_]{{8}}\.tmp")  # atomic_writer's mkstemp names
        dirs = re.compile(rf"\.{name}\.\d+\.[0-9a-f]{{8}}\.(tmp|old)")  # _sibling's names
        for entry in os.listdir(self.path.parent):
            p = self.path.parent / entry
            if p.is_symlink():
                continue
            if files.fullmatch(entry) and p.is_file():
                p.unlink(missing_ok=True)
            elif dirs.fullmatch(entry) and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)

    def release(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        if self._lock_fd is not None:
            try:
                self._clear_stale()
            except OSError:
                pass
            unlock_sibling(self._lock_path, self._lock_fd)
            self._lock_fd = None
        self._remove_made_parents()

    def _remove_made_parents(self) -> None:
        for d in reversed(self._made_parents):
            try:
                d.rmdir()  # only if still empty: a finished output keeps its parents
            except OSError:
                break
        self._made_parents = []

    # -- writing
    def staging(self) -> Path:
        """A hidden sibling folder (with the marker) to write the output folder into; commit()
        moves it into place, a failure or an interrupt removes it."""
        assert self.folder
        if self._staging is None:
            self._staging = staging_dir(self.path, self.command)
        return self._staging

    def commit(self) -> Path:
        """Move the staged folder into place, replacing the previous output."""
        assert self._staging is not None
        try:
            replace_dir(self._staging, self.path, self.command)
        except OSError as e:
            raise write_error(self.path, e) from None
        self._staging = None
        return self.path

    def in_place(self) -> Path:
        """For outputs written where they stand (a run folder, the demo): call once every input
        has been read. The previous output (a folder this command made, allowed by the checks at
        the start) is removed, and the folder is made again with the marker."""
        assert self.folder
        p = self.path
        try:
            if p.is_dir() and any(n != MARKER for n in os.listdir(p)):
                check_replaceable(p, self.command)
                old = _sibling(p, "old")
                os.replace(p, old / "previous")
                shutil.rmtree(old, ignore_errors=True)
            p.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(p, e) from None
        write_marker(p, self.command)
        self._made_parents = []
        return p


def claim_output(path: str | os.PathLike, command: str, *, inputs: Iterable[str | os.PathLike | None] = (),
                 force: bool = False, folder: bool = False) -> OutputClaim:
    """The output claim of one command (see OutputClaim); enter it before any long work."""
    return OutputClaim(path, command, inputs=inputs, force=force, folder=folder)
