"""A user cache of the ONNX graphs `--backend onnx` builds from checkpoints, so that a later job
on the same checkpoint starts ONNX Runtime without importing torch.

Why: building the graph needs torch (reading the checkpoint, folding BatchNorm), and importing
torch is most of a short job's start-up: 1.3 CPU s (2.1-2.7 s wall) of the 2.7 CPU s a one-photo
`posedata infer` took at load 1-2, against 0.16 s for writing the graph and 0.02 s for the
session (bench/README.md, "infer"). With a cached graph a job hashes the checkpoint, reads the
graph and makes the session: no torch at all.

An entry is `<key>.onnx` under $XDG_CACHE_HOME/posedata/onnx (~/.cache/posedata/onnx without
it), the key a SHA-256 of the checkpoint's bytes, the skeleton it was checked against (its
fingerprint; "stored" when the checkpoint's own), posedata's and onnxruntime's versions and the
graph writer's opset: any change to one of them is another entry, never a stale one. The entry
carries the key and what load_model reports (description, training input size, the stored
skeleton) in its metadata_props; an entry that does not open, or whose stored key is not its
name's, is ignored (and replaced when the graph is rebuilt). The checkpoint is only read. Writes
are atomic (posedata.io), and a cache that cannot be written (read-only, full) is skipped: the
job runs as without it. POSEDATA_ONNX_CACHE=0 turns the cache off. The newest MAX_ENTRIES
entries are kept.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .onnx_graph import OPSET

MAX_ENTRIES = 8
_OFF = ("0", "off", "no", "false")
_PREFIX = "posedata.cache."


def cache_dir() -> Path | None:
    """Where entries live, or None when POSEDATA_ONNX_CACHE turns the cache off."""
    if os.environ.get("POSEDATA_ONNX_CACHE", "").strip().lower() in _OFF:
        return None
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"  # the XDG spec ignores relative paths
    return root / "posedata" / "onnx"


def file_state(path: Path) -> tuple[int, int, int] | None:
    """(size, mtime in ns, inode) of a file, None when it is not one: a checkpoint whose state
    changed while it was read is not cached (its graph may not be of the bytes hashed)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino) if stat.S_ISREG(st.st_mode) else None


_keys: dict[tuple, str] = {}  # (path, file_state, fingerprint): key, so choose_backend and load_model hash once


def key_of(checkpoint: Path, skeleton: Any) -> str | None:
    """The entry's key for this checkpoint's content checked against this skeleton (None: its
    own), or None when the checkpoint cannot be read (load_model reports why)."""
    import onnxruntime

    import posedata

    state = file_state(checkpoint)
    fingerprint = skeleton.fingerprint if skeleton is not None else "stored"
    memo = (str(Path(checkpoint).resolve()), state, fingerprint)
    if state is None:
        return None
    if memo in _keys:
        return _keys[memo]
    try:
        with open(checkpoint, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None
    text = f"{digest}|{fingerprint}|posedata {posedata.__version__}|onnxruntime {onnxruntime.__version__}|opset {OPSET}"
    _keys[memo] = hashlib.sha256(text.encode()).hexdigest()
    return _keys[memo]


def has_entry(checkpoint: Path, skeleton: Any) -> bool:
    """Whether the cache holds a graph for this checkpoint and skeleton (not opened: lookup checks it)."""
    root = cache_dir()
    if root is None:
        return False
    key = key_of(checkpoint, skeleton)
    return key is not None and (root / f"{key}.onnx").is_file()


@dataclass
class Entry:
    """A cached graph and what load_model reports about its checkpoint."""

    data: bytes
    description: str
    input_size: int | None
    skeleton: dict[str, Any] | None  # the checkpoint's stored skeleton (None: it stores none)


def entry_metadata(key: str, description: str, input_size: int | None, skeleton: dict[str, Any] | None
                   ) -> dict[str, str]:
    return {_PREFIX + "key": key, _PREFIX + "description": description,
            _PREFIX + "input_size": "" if input_size is None else str(int(input_size)),
            _PREFIX + "skeleton": "" if skeleton is None else json.dumps(skeleton)}


def lookup(key: str, session_of) -> tuple[Any, Entry] | None:
    """(session, entry) for a usable entry under key, else None. session_of(bytes) makes the
    session (its errors mean a damaged entry: ignored)."""
    root = cache_dir()
    if root is None:
        return None
    path = root / f"{key}.onnx"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        session = session_of(data)
        meta = dict(session.get_modelmeta().custom_metadata_map)
        if meta.get(_PREFIX + "key") != key:
            return None
        size = meta[_PREFIX + "input_size"]
        skeleton = json.loads(meta[_PREFIX + "skeleton"]) if meta[_PREFIX + "skeleton"] else None
        entry = Entry(data, meta[_PREFIX + "description"], int(size) if size else None, skeleton)
    except Exception:  # onnxruntime's own error types for a truncated or foreign file; bad metadata
        return None
    try:
        os.utime(path)  # recently used: kept by _prune
    except OSError:
        pass
    return session, entry


def store(key: str, data: bytes) -> bool:
    """Write the entry (atomically); False when the cache is off or cannot be written."""
    from posedata.errors import PosedataError
    from posedata.io import atomic_write_bytes

    root = cache_dir()
    if root is None:
        return False
    try:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(root / f"{key}.onnx", data)
    except (OSError, PosedataError):  # atomic_write_bytes reports a failed write as OutputWriteError
        return False
    _prune(root)
    return True


def _prune(root: Path) -> None:
    """Keep the MAX_ENTRIES most recently used entries (checkpoints are 16 MB at width 1.0)."""
    try:
        entries = sorted(root.glob("*.onnx"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for p in entries[MAX_ENTRIES:]:
            p.unlink(missing_ok=True)
    except OSError:
        pass
