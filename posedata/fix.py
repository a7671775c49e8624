"""`posedata validate --fix`: repair what is mechanical in a copy of a COCO keypoint file.

The checks live in posedata/validate.py and never change data; this module turns the findings of
the codes in FIXABLE (num_keypoints, area, v=0 coordinates, missing boxes, iscrowd) into a
repaired copy, reporting every change. The input is never touched.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DataError
from .findings import Finding
from .io import atomic_write_text
from .skeleton import Skeleton
from .validate import counts, validate_coco
from .validate_rules import F32_MAX, _as_id, _finite, _short

BBOX_MARGIN = 0.1  # padding of a bbox made from keypoints, fraction of the keypoints' extent

@dataclass(frozen=True)
class Change:
    """One repair made by fix(): which check it answers, where, and the old and new values."""

    code: str
    where: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "where": self.where, "old": _json_safe(self.old), "new": _json_safe(self.new)}


def _json_safe(v: Any) -> Any:
    """v when it is strict JSON (no NaN/Infinity), else its short description."""
    try:
        json.dumps(v, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return _short(v)
    return v


# ---------------------------------------------------------------- small helpers


FIXABLE = ("V012", "V024", "V026", "V030", "V031", "V034")
_ANN_RE = re.compile(r"^annotations\[(\d+)\]")


def fix(data: Any, skeleton: Skeleton, findings: Iterable[Finding]) -> tuple[dict, list[Change]]:
    """Repair what is mechanical in a copy of `data` (never mutated): recount num_keypoints, area
    from bbox, zero the coordinates of v=0, bbox from the labelled keypoints (padded by 10% of their
    extent, clipped to the image) where missing or empty, iscrowd 0 where missing. Only the
    annotations the findings point at are touched. Raises DataError when `data` is not a COCO object."""
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise DataError("cannot repair: not a COCO object with an annotations list")
    todo: dict[int, set[str]] = defaultdict(set)
    for f in findings:
        if f.code in FIXABLE and f.where:
            m = _ANN_RE.match(f.where)
            if m:
                todo[int(m.group(1))].add(f.code)
    out = _json_copy(data)
    anns = out["annotations"]
    sizes = {}
    for im in out["images"] if isinstance(out.get("images"), list) else []:
        if isinstance(im, dict) and _as_id(im.get("id")) is not None:
            sizes[_as_id(im["id"])] = (_finite(im.get("width")), _finite(im.get("height")))
    changes: list[Change] = []
    for i in sorted(todo):
        if i >= len(anns) or not isinstance(anns[i], dict):
            continue
        _fix_annotation(anns[i], f"annotations[{i}]", todo[i], sizes, changes)
    return out, changes


def _fix_annotation(a: dict, where: str, codes: set[str], sizes: dict, changes: list[Change]) -> None:
    kp = a.get("keypoints")
    good = isinstance(kp, list) and len(kp) % 3 == 0 and all(_finite(t) is not None for t in kp)
    if "V012" in codes:
        a["iscrowd"] = 0
        changes.append(Change("V012", f"{where}.iscrowd", None, 0))
    if good and "V024" in codes:
        for j in range(0, len(kp), 3):
            if kp[j + 2] == 0 and (kp[j] != 0 or kp[j + 1] != 0):
                changes.append(Change("V024", f"{where}.keypoints[{j}]", [kp[j], kp[j + 1]], [0, 0]))
                kp[j] = kp[j + 1] = 0
    if good and "V026" in codes:
        n = sum(1 for j in range(2, len(kp), 3) if kp[j] in (1, 2))
        changes.append(Change("V026", f"{where}.num_keypoints", a.get("num_keypoints"), n))
        a["num_keypoints"] = n
    if good and codes & {"V030", "V031"}:
        pts = [(kp[j], kp[j + 1]) for j in range(0, len(kp), 3) if kp[j + 2] in (1, 2)]
        if pts:
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            w, h = sizes.get(_as_id(a.get("image_id")), (None, None))
            bb = bbox_from_points(xs, ys, w, h)
            if bb is not None:
                code = "V030" if "V030" in codes else "V031"
                changes.append(Change(code, f"{where}.bbox", a.get("bbox"), bb))
                a["bbox"] = bb
    if "V034" in codes:
        bb = a.get("bbox")
        if isinstance(bb, list) and len(bb) == 4 and all(_finite(t) is not None for t in bb) and bb[2] > 0 and bb[3] > 0 \
                and float(bb[2]) * float(bb[3]) <= F32_MAX:  # a product past float32 range is no usable area
            area = round(float(bb[2]) * float(bb[3]), 4)
            changes.append(Change("V034", f"{where}.area", a.get("area"), area))
            a["area"] = area


def bbox_from_points(xs: list[float], ys: list[float], width: float | None, height: float | None,
                     margin: float = BBOX_MARGIN) -> list[float] | None:
    """[x, y, w, h] around points, padded by `margin` of their extent on each side (at least 1 px,
    so a single point still gets a box), clipped to the image when its size is known."""
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    px, py = max(1.0, margin * (x1 - x0)), max(1.0, margin * (y1 - y0))
    x0, x1, y0, y1 = x0 - px, x1 + px, y0 - py, y1 + py
    if width is not None and height is not None:
        x0, y0 = max(0.0, x0), max(0.0, y0)
        x1, y1 = min(float(width), x1), min(float(height), y1)
    if x1 <= x0 or y1 <= y0:
        return None
    return [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]


def _json_copy(v: Any) -> Any:
    """Deep copy of a JSON value without recursion (copy.deepcopy overflows on deep nesting)."""
    if not isinstance(v, (dict, list)):
        return v
    root: Any = {} if isinstance(v, dict) else []
    stack = [(v, root)]
    while stack:
        src, dst = stack.pop()
        items = src.items() if isinstance(src, dict) else enumerate(src)
        for k, x in items:
            if isinstance(x, (dict, list)):
                y: Any = {} if isinstance(x, dict) else []
                stack.append((x, y))
            else:
                y = x
            if isinstance(dst, dict):
                dst[k] = y
            else:
                dst.append(y)
    return root


REPAIRS = {
    "V012": "iscrowd set to 0",
    "V024": "coordinates of v=0 keypoints set to (0, 0)",
    "V026": "num_keypoints recounted from v>0",
    "V030": "bbox from the labelled keypoints (+10% margin, clipped to the image)",
    "V031": "bbox from the labelled keypoints (+10% margin, clipped to the image)",
    "V034": "area = bbox width * height",
}


def write_fixed(path: str | os.PathLike, data: dict) -> None:
    """Write fix()'s output atomically; DataError when values fix() cannot repair are not JSON."""
    try:
        text = json.dumps(data, allow_nan=False)
    except ValueError:
        raise DataError("cannot write the repaired copy: the data still holds NaN or Infinity in places --fix "
                        "does not repair (see the V022/V030/V034 findings); edit those by hand", file=str(path)) from None
    atomic_write_text(path, text)


def change_counts(changes: Iterable[Change]) -> dict[str, int]:
    return dict(sorted(Counter(c.code for c in changes).items()))


def short(v: Any) -> str:
    """A short, safe description of any JSON value (for messages and tables)."""
    return _short(v)


@dataclass(frozen=True)
class FixReport:
    """What `validate --fix` did: where the copy went, every change, and the copy's own counts."""

    output: Path
    changes: list[Change]
    after: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"output": str(self.output), "changes": [c.to_dict() for c in self.changes],
                "change_counts": change_counts(self.changes), "after": self.after}


def repair_file(raw: Any, skeleton: Skeleton, findings: Iterable[Finding], out: str | os.PathLike,
                category_id: Any = None) -> FixReport:
    """fix() `raw`, write the copy to `out` atomically and re-validate it (without image checks)."""
    fixed, changes = fix(raw, skeleton, findings)
    write_fixed(out, fixed)
    after = validate_coco(fixed, skeleton, file=str(out), category_id=category_id)
    return FixReport(Path(out), changes, counts(after))
