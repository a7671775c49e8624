"""Atomic writes and output-exists policy shared by every command that writes."""
from __future__ import annotations

import gc
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from .errors import InputError, OutputExistsError


def check_output(path: str | os.PathLike, force: bool) -> Path:
    """Refuse to overwrite an existing output unless force; call before doing any work."""
    p = Path(path)
    if p.exists() and not force:
        raise OutputExistsError("output exists; pass --force to replace it", file=str(p))
    return p


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file that appears at path only when the block ends without an error: written to a
    temp file in the same folder, fsynced, then renamed; readers never see half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        # mkstemp makes 0600 files; an output should get the permissions any new file gets here
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
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


def check_output_dir(path: str | os.PathLike, force: bool) -> Path:
    """An output folder may exist only if empty, unless force."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputExistsError("output exists and is not a folder", file=str(p))
    if p.is_dir() and any(p.iterdir()) and not force:
        raise OutputExistsError("output folder exists and is not empty; pass --force to write into it", file=str(p))
    return p
