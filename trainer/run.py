"""The run folder: its lock, its config.json, and what `--resume` may change.

A run folder is self-contained and can be moved: config.json records every input path both
relative to the run folder and absolute, and `--resume DIR` continues DIR itself (never a folder
named inside its config). The first config.json is moved into the folder in one rename from a
temp file beside it, so a kill at any moment leaves the folder either empty or resumable.

One trainer per run folder: an flock on a hidden sibling file (`.NAME.posedata-lock`, taken with
posedata.io.lock_sibling like the output claims) is held for the run's life; the OS releases it when the
process dies, however it dies.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from posedata.errors import InputError, OutputExistsError
from posedata.io import atomic_write_json, lock_sibling, unlock_sibling

CONFIG = "config.json"
FORMAT = "posedata-run"
# options that name files or folders: stored relative to the run folder and absolute
PATH_OPTIONS = ("labels", "images", "val_json", "val_images", "init", "skeleton_file")
# what --resume may change; everything else defines the run
CHANGEABLE = ("iterations", "max_minutes", "workers", "checkpoint_every", "threads", "device", "tensorboard")


class RunBusyError(OutputExistsError):
    """Another trainer holds the run folder's lock (exit 2)."""


# ---------------------------------------------------------------------------- lock
def lock_path(run: str | os.PathLike) -> Path:
    run = Path(run).absolute()
    return run.parent / f".{run.name}.posedata-lock"


class RunLock:
    """An exclusive flock on the run's sibling lock file, held until release() or process death."""

    def __init__(self, run: str | os.PathLike):
        self.run = Path(run)
        self.path = lock_path(run)
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = lock_sibling(self.path)
        if self.fd is None:
            raise RunBusyError("another posedata process is training in (or writing) this run folder; "
                               "wait for it to end, or stop it (Ctrl-C saves its last.pt)", file=str(self.run))
        return self

    def release(self) -> None:
        if self.fd is not None:
            unlock_sibling(self.path, self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def check_not_running(run: str | os.PathLike) -> None:
    """Refuse at once (before any slow work or any removal) when a trainer holds the run."""
    if lock_path(run).exists():
        RunLock(run).acquire().release()


# -------------------------------------------------------------------------- config
def _portable(options: dict[str, Any], run: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(options with absolute paths, the same paths relative to the run folder)."""
    opts, rel = dict(options), {}
    base = run.resolve()
    for key in PATH_OPTIONS:
        value = opts.get(key)
        if value is None:
            continue
        absolute = Path(value).resolve()
        opts[key] = str(absolute)
        try:
            rel[key] = os.path.relpath(absolute, base)
        except ValueError:  # another drive (Windows): absolute only
            pass
    opts.pop("output", None)  # a run folder is wherever its config.json is
    return opts, rel


def new_config(options: dict[str, Any], run: Path, **fields_: Any) -> dict[str, Any]:
    opts, rel = _portable(options, run)
    return {"format": FORMAT, "version": 2, "options": opts, "paths_from_run": rel, **fields_,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_first_config(run: Path, data: dict[str, Any]) -> None:
    """config.json into a folder that has none yet. The temp file is a hidden sibling of the run
    folder (the output claim's stale-file sweep removes it after a kill), so the folder itself
    never holds a half-made config: it is empty or resumable."""
    run.mkdir(parents=True, exist_ok=True)
    tmp = run.parent / f".{run.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, run / CONFIG)
    finally:
        tmp.unlink(missing_ok=True)


def clear_stale_config_temps(run: Path) -> None:
    """Temp files write_first_config left beside the run folder when a kill interrupted it (call
    with the run's lock held: nobody else is writing them)."""
    run = Path(run).absolute()
    if run.parent.is_dir():
        for p in run.parent.glob(f".{run.name}.*.tmp"):
            if p.is_file() and not p.is_symlink():
                p.unlink(missing_ok=True)


def update_config(run: Path, options: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Record a resume: the options --resume may change, where the inputs were found this time
    (the folder may have moved), and any top-level fields given."""
    path = run / CONFIG
    data = json.loads(path.read_text(encoding="utf-8"))
    opts, rel = _portable({k: options.get(k) for k in PATH_OPTIONS}, run)
    data["options"].update({k: v for k, v in opts.items() if v is not None})
    data["paths_from_run"] = {**(data.get("paths_from_run") or {}), **rel}
    data["options"].update({k: options[k] for k in CHANGEABLE if k in options})
    data.update(changes)
    atomic_write_json(path, data, indent=2)
    return data


def _resolve_paths(data: dict[str, Any], run: Path) -> dict[str, Any]:
    """Each stored path as it exists now: relative to the run folder first (a project tree moved
    or copied as a whole), then absolute (the run folder moved alone); version-1 configs stored
    paths as typed, relative to where the first run started."""
    opts = dict(data["options"])
    rel = data.get("paths_from_run") or {}
    for key in PATH_OPTIONS:
        value = opts.get(key)
        if value is None:
            continue
        candidates = [run / rel[key]] if isinstance(rel.get(key), str) else []
        candidates += [Path(value)] + ([run / value] if not Path(value).is_absolute() else [])
        found = next((c for c in candidates if c.exists()), candidates[0])
        opts[key] = os.path.normpath(found.absolute())
    return opts


def read_config(run: str | os.PathLike) -> dict[str, Any]:
    from posedata.io import load_json

    path = Path(run) / CONFIG
    if not path.is_file():
        raise InputError(f"no {CONFIG}: not a run folder, or its first run was stopped before it started "
                         "(start it again with the original command)", file=str(run))
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("options"), dict) or \
            not isinstance(data.get("skeleton"), dict):
        raise InputError("not a posedata run config (no options / skeleton)", file=str(path))
    return data


def load_run_config(run: str | os.PathLike, config_type: type) -> tuple[Any, dict[str, Any]]:
    """(the run's options as config_type, its skeleton dict), with paths resolved from the run
    folder and the output set to the run folder itself."""
    run = Path(run)
    data = read_config(run)
    opts = _resolve_paths(data, run)
    known = {f.name for f in fields(config_type)}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise InputError(f"unknown options {unknown} (written by a newer posedata?)", file=str(run / CONFIG),
                         where="options")
    opts["output"] = str(run)
    try:
        cfg = config_type(**opts)
    except TypeError as e:
        raise InputError(f"options unreadable: {e}", file=str(run / CONFIG), where="options") from None
    return cfg, dict(data["skeleton"])


def _same_path(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def resume_config(run: str | os.PathLike, given: dict[str, Any], config_type: type) -> tuple[Any, dict[str, Any]]:
    """The run's config with the options --resume may change taken from `given` (the options
    the user typed). Options that define the run may be given again, so the original command
    plus `--resume DIR` works, but only unchanged: every one that differs is named."""
    cfg, skeleton = load_run_config(run, config_type)
    stored = asdict(cfg)
    differ = []
    for key, value in given.items():
        if value is None or key in CHANGEABLE:
            continue
        if key == "output":
            same = _same_path(str(value), str(run))
        elif key in PATH_OPTIONS:
            same = _same_path(str(value), stored.get(key))
        elif isinstance(value, float) or isinstance(stored.get(key), float):
            same = stored.get(key) is not None and abs(float(value) - float(stored[key])) <= 1e-12 * max(1.0, abs(value))
        else:
            same = value == stored.get(key)
        if not same:
            flag = "-o/--output" if key == "output" else "--" + key.replace("_", "-")
            differ.append(f"{flag} {value} (the run has {stored.get(key) if key != 'output' else run})")
    if differ:
        raise InputError(f"--resume continues {run} with its own settings; these given options differ from them: "
                         f"{'; '.join(differ)}. Only {', '.join('--' + k.replace('_', '-') for k in CHANGEABLE)} "
                         "may change on --resume", file=str(Path(run) / CONFIG))
    for key in CHANGEABLE:
        if given.get(key) is not None:
            setattr(cfg, key, given[key])
    return cfg, skeleton
