"""Run an import: pick the format (by name or by content) and let its reader turn the export into
the dataset model; validate the result; name the import that would repair a file (suggest_importer).

The registry and the runner only: format modules (posedata/formats/*) parse their tool's file into `RawImage`/`RawInstance` records
with keypoints already in the skeleton's COCO order (`keypoint_mapping` matches names, never
positions), then hand them to `DatasetBuilder`, which owns everything that must be the same for
every tool: image resolution against --images, image sizes, bbox and area from keypoints,
zero-keypoint instances, --drop-unlabelled, --keep-empty, ids and the output category. That
builder and the reads the readers share live in posedata/formats/builder.py, below the readers;
this module re-exports them for callers that import the importer.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import InputError
from .formats import FORMATS
from .formats.base import ImportOptions, ImportReport, ImportResult
from .formats.builder import (
    DatasetBuilder,
    RawImage,
    RawInstance,
    bboxes_from_keypoints,
    category_limbs,
    keypoint_mapping,
    keypoint_slots,
    known_json,
    peek_text,
    read_json,
    unknown_names_error,
)
from .skeleton import Skeleton

__all__ = [
    "ImportOptions", "ImportReport", "ImportResult", "DatasetBuilder", "RawImage", "RawInstance",
    "bboxes_from_keypoints", "category_limbs", "detect_format", "format_module",
    "import_file", "keypoint_mapping", "keypoint_slots", "known_json", "read_json", "unknown_names_error", "validate_result",
]


# ------------------------------------------------------------------ registry
def format_module(name: str) -> ModuleType:
    """The module that reads format `name`; InputError listing the known names otherwise."""
    key = name.strip().lower().replace("_", "-")
    if key not in FORMATS:
        raise InputError(f"unknown import format {name!r}; known: {', '.join(['auto', *FORMATS])}")
    return importlib.import_module(FORMATS[key])


def detect_format(path: str | os.PathLike) -> str | None:
    """The first registered format whose detect() accepts the file or folder, or None.

    A detector that fails on a file it cannot parse counts as "not this format": auto-detection
    must reach the honest "no format recognised" message, not another module's parse error."""
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=str(p))
    for name in FORMATS:
        try:
            if format_module(name).detect(p):
                return name
        except (InputError, OSError, ValueError, TypeError, KeyError, IndexError, AttributeError,
                UnicodeDecodeError, RecursionError):
            continue
    return None


def import_file(fmt: str, path: Path, skeleton: Skeleton, options: ImportOptions) -> ImportResult:
    """Read a tool export into a Dataset for `skeleton`. fmt may be "auto" (detect by content)."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=str(path))
    if fmt.strip().lower() == "auto":
        found = detect_format(path)
        if found is None:
            if path.is_file() and peek_text(path, 64).lstrip().startswith(("{", "[")):
                from .formats.coco_annotator import _is_coco, read_coco_like

                # JSON that does not parse is reported as such (file, line, column), not as an
                # unknown format: read_json raises that located InputError
                parsed = read_json(path)
                if _is_coco(parsed):
                    report = ImportReport(format="coco (plain COCO, no tool's fingerprints)", source=str(path))
                    report.warnings.append("plain COCO: read as COCO, keypoint names matched to the skeleton and "
                                           "boxes repaired as for every import (no tool export recognised)")
                    return read_coco_like(parsed, path, skeleton, options, report)
            raise InputError(f"no import format recognises this {'folder' if path.is_dir() else 'file'}; "
                             f"name one of: {', '.join(FORMATS)}", file=str(path))
        fmt = found
    mod = format_module(fmt)
    return mod.read(path, skeleton, options)


def validate_result(result: ImportResult, skeleton: Skeleton, options: ImportOptions,
                    file: str | None = None, progress: Any = None) -> list:
    """validate's findings on the imported data, exactly as `posedata validate` would see it
    (image files included when --images is given; progress(done, total) while reading them)."""
    from .validate import validate_coco

    data = result.dataset.to_coco()
    cat = result.dataset.categories[0].id if result.dataset.categories else None
    return validate_coco(data, skeleton, file=file, images=options.images, category_id=cat, progress=progress)


# ------------------------------------------------------------------ importer hint
def suggest_importer(data: Any, path: str | os.PathLike | None = None) -> str | None:
    """The `posedata import` format that would repair this input, or None.

    With `path` (the file or folder `data` was parsed from; data may then be None), the importers'
    own content detection answers first (detect_format: every format, the parse in
    `data` reused rather than repeated). Then the quirks a coco-annotator export keeps even when its
    tool keys are gone: images with `path`/`dataset_id`/`annotated`, annotations with `isbbox`,
    keypoint instances with area 0 and bbox [0, 0, 0, 0], or keypoint arrays longer than 3*K.
    Never raises: it is only a hint."""
    if path is not None:
        found = _detect_format(path, data)
        if found is not None:
            return found
    from .validate_rules import _as_id

    try:
        if not isinstance(data, dict):
            return None
        imgs = data.get("images") if isinstance(data.get("images"), list) else []
        anns = data.get("annotations") if isinstance(data.get("annotations"), list) else []
        cats = data.get("categories") if isinstance(data.get("categories"), list) else []
        score = 0
        if any(isinstance(im, dict) and {"path", "dataset_id", "annotated"} & im.keys() for im in imgs[:1000]):
            score += 1
        kcount = {c.get("id"): len(c["keypoints"]) for c in cats
                  if isinstance(c, dict) and isinstance(c.get("keypoints"), list) and _as_id(c.get("id")) is not None}
        for a in anns:
            if not isinstance(a, dict):
                continue
            if "isbbox" in a:
                score += 1
                break
            kp = a.get("keypoints")
            if isinstance(kp, list):
                k = kcount.get(a.get("category_id")) if _as_id(a.get("category_id")) is not None else None
                if k is not None and len(kp) > 3 * k:
                    score += 1
                    break
                if a.get("area") == 0 and a.get("bbox") == [0, 0, 0, 0]:
                    score += 1
                    break
        return "coco-annotator" if score >= 1 else None
    except Exception:  # noqa: BLE001 - a hint must never break validation
        return None


def _detect_format(path: str | os.PathLike, data: Any = None) -> str | None:
    """detect_format, never raising; `data` is the file's parse when the caller has it."""
    try:
        p = Path(path)
        if data is not None and p.is_file():
            with known_json(p, data):
                return detect_format(p)
        return detect_format(p)
    except Exception:  # noqa: BLE001 - a hint must never break validation
        return None
