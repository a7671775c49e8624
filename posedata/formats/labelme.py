"""Labelme: one JSON per image (or a folder of them) with `shapes`; keypoints are `point` shapes.

- A point's `label` is the keypoint name; points are grouped into instances by `group_id`.
  Points with a null `group_id` form one instance per image (Labelme's default when nobody set
  groups); a label that repeats inside one instance keeps its first point and reports the rest.
- A `rectangle` shape with the same `group_id` as an instance's points is that instance's box.
- Labelme has no visibility: a point is COCO v=2, or v=1 when its shape flags mark it occluded
  (`flags: {occluded: true}`), a convention some projects use.
- `imagePath` is relative to the JSON file; `imageWidth`/`imageHeight` give the size. The image
  itself must exist (an embedded `imageData` copy is not extracted: an import writes one JSON).
"""
from __future__ import annotations

import math
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..errors import InputError
from ..skeleton import Skeleton, normalize_name
from .base import ImportOptions, ImportReport, ImportResult

NAME = "labelme"
OCCLUDED_FLAGS = ("occluded", "occlusion", "invisible", "hidden")


def _looks_like_labelme(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("shapes"), list) and "imagePath" in data


def _json_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if p.is_file())


def detect(path: Path) -> bool:
    from .builder import peek_text, read_json

    path = Path(path)
    files = _json_files(path)[:3] if path.is_dir() else [path]
    for f in files:
        head = peek_text(f, 2048).lstrip()
        if not head.startswith("{") or '"shapes"' not in peek_text(f, 1 << 20):
            continue
        if _looks_like_labelme(read_json(f)):
            return True
    return False


def _num(v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # a JSON integer too large for a float
        return False


def _point(shape: dict[str, Any], file: str, where: str) -> tuple[float, float]:
    pts = shape.get("points")
    if not (isinstance(pts, list) and len(pts) == 1 and isinstance(pts[0], list) and len(pts[0]) == 2
            and all(_num(v) for v in pts[0])):
        raise InputError(f"a point shape needs points [[x, y]] with two finite numbers, got {pts!r}",
                         file=file, where=f"{where}.points")
    return float(pts[0][0]), float(pts[0][1])


def _rectangle(shape: dict[str, Any]) -> tuple[float, float, float, float] | None:
    pts = shape.get("points")
    if not (isinstance(pts, list) and len(pts) == 2 and all(isinstance(p, list) and len(p) == 2 and all(_num(v) for v in p)
                                                              for p in pts)):
        return None
    (x0, y0), (x1, y1) = pts
    x0, x1 = sorted((float(x0), float(x1)))
    y0, y1 = sorted((float(y0), float(y1)))
    return x0, y0, x1 - x0, y1 - y0


def read(path: Path, skeleton: Skeleton, options: ImportOptions) -> ImportResult:
    from .builder import DatasetBuilder, RawImage, RawInstance, keypoint_slots, unknown_names_error

    path = Path(path)
    report = ImportReport(format=NAME, source=str(path))
    builder = DatasetBuilder(skeleton, options, report, file=str(path), category_name=skeleton.name)
    if path.is_dir():
        # each JSON parsed once; other JSON files in the folder (not Labelme's) are skipped
        files = _json_files(path)
        root = path.resolve()
    else:
        files = [path]
        root = path.resolve().parent
    # every point label of every file, then one name check for all of them: the error lists all
    docs, labels = _documents(files, path.is_dir(), report)
    if not docs:
        raise InputError("no Labelme JSON (an object with 'shapes' and 'imagePath') in this folder", file=str(path))
    if not labels:
        raise InputError("no point shapes (keypoints) in the Labelme file(s)", file=str(path))
    # Labelme carries no list of names, so only the labels used are checked: skeleton keypoints
    # that no file labels are simply never labelled
    slots = keypoint_slots(skeleton)
    unknown = [lab for lab, n in labels.items() if n not in slots]
    if unknown:
        raise unknown_names_error(unknown, skeleton, str(path), "shapes[].label")
    slot = {lab: slots[n] for lab, n in labels.items()}  # exact label -> output slot
    K = len(skeleton.coco_keypoints)

    for img_key, (f, data) in enumerate(docs, start=1):
        file = str(f)
        name, cands = _image_name(data.get("imagePath"), f, root, options, file, report)
        w, h = data.get("imageWidth"), data.get("imageHeight")
        builder.add_image(RawImage(key=img_key, file_name=name, width=w if _num(w) else None,
                                   height=h if _num(h) else None, candidates=cands, where=file))
        groups = _groups(f, data, slot, K, report)
        if None in groups and groups[None]["first"] and len(groups) > 1:
            report.warnings.append(f"{f.name}: points without a group_id became one instance next to the grouped ones")
        for gid, g in groups.items():
            if not g["first"]:
                if g["box"] is not None:
                    report.skip("rectangle with no points in its group_id", f"{f.name}: group {gid}")
                continue
            report.instances_read += 1
            builder.add_instance(RawInstance(image_key=img_key, keypoints=g["kp"], bbox=g["box"],
                                             source_id=f"{f.name}: group {gid}", where=f"{file}: {g['where']}"))
    report.images_read = len(docs)
    used = set(slot.values())
    never = [t for j, t in enumerate(skeleton.coco_keypoints) if j not in used]
    if never:
        report.warnings.append(f"skeleton keypoint(s) never labelled in any file: {never}")
    return builder.build()


def _documents(files: list[Path], folder: bool, report: ImportReport) -> tuple[list[tuple[Path, dict[str, Any]]], dict[str, str]]:
    """The Labelme files among `files` (in a folder, others are skipped) and every point label they
    use (exact label -> normalised)."""
    from ..io import load_json

    docs: list[tuple[Path, dict[str, Any]]] = []
    labels: dict[str, str] = {}
    for f in files:
        data = load_json(f)
        file = str(f)
        if not _looks_like_labelme(data):
            if folder:
                report.skip("JSON file that is not a Labelme annotation", f.name)
                continue
            raise InputError("expected a Labelme JSON object with 'shapes' (a list) and 'imagePath'", file=file)
        for i, s in enumerate(data["shapes"]):
            if not isinstance(s, dict):
                raise InputError("expected a shape object", file=file, where=f"shapes[{i}]")
            if s.get("shape_type", "polygon") == "point":
                lab = s.get("label")
                if not isinstance(lab, str) or not lab.strip():
                    raise InputError("a point shape needs a non-empty string label", file=file, where=f"shapes[{i}].label")
                if lab not in labels:
                    labels[lab] = normalize_name(lab)
        docs.append((f, data))
    return docs, labels


def _groups(f: Path, data: dict[str, Any], slot: dict[str, int], K: int, report: ImportReport) -> dict[Any, dict[str, Any]]:
    """One file's shapes by group_id: the points of each (the first of a repeated label kept) and
    its rectangle."""
    file = str(f)
    groups: dict[Any, dict[str, Any]] = {}
    for i, s in enumerate(data["shapes"]):
        where = f"shapes[{i}]"
        st = s.get("shape_type", "polygon")
        gid = s.get("group_id")
        if gid is not None and (isinstance(gid, bool) or not isinstance(gid, (int, str))):
            raise InputError(f"group_id must be an integer, a string or null, got {gid!r}", file=file,
                             where=f"{where}.group_id")
        g = groups.setdefault(gid, {"kp": np.zeros((K, 3)), "first": {}, "box": None, "where": where})
        if st == "point":
            x, y = _point(s, file, where)
            j = slot[s["label"]]
            if j in g["first"]:
                what = "keypoint label repeats among points without a group_id" if gid is None else \
                    "keypoint label repeats within one group_id"
                report.skip(f"{what} (first point kept)", f"{f.name}: {where} {s['label']!r}")
                continue
            flags = s.get("flags") if isinstance(s.get("flags"), dict) else {}
            occluded = any(flags.get(k) is True for k in OCCLUDED_FLAGS)
            g["kp"][j] = (x, y, 1 if occluded else 2)
            g["first"][j] = where
        elif st == "rectangle" and gid is not None:
            box = _rectangle(s)
            if box is None:
                raise InputError("a rectangle needs points [[x1, y1], [x2, y2]]", file=file, where=f"{where}.points")
            g["box"] = box
        else:
            report.skip(f"{st} shape ignored (not a point, nor a rectangle with a group_id)", f"{f.name}: {where}")
    return groups


def _image_name(image_path: Any, json_file: Path, root: Path, options: ImportOptions, file: str,
                report: ImportReport) -> tuple[str, list[str]]:
    """The image's name for the output and other names to try under --images. Without --images the
    image must exist next to the JSON, inside the input folder."""
    from ..io import safe_image_path
    from .builder import path_tails

    if not isinstance(image_path, str) or not image_path.strip():
        raise InputError("imagePath must be a non-empty string", file=file, where="imagePath")
    rel = image_path.replace("\\", "/")
    if options.images is not None:
        return PurePosixPath(rel).name if rel.startswith("../") else rel, path_tails(rel)
    p = (json_file.resolve().parent / rel).resolve()
    if not (p.is_file() and p.is_relative_to(root)):
        # a renamed or moved project folder: Labelme keeps the image beside its JSON by default
        beside = json_file.resolve().parent / PurePosixPath(rel).name
        if beside.is_file() and beside.is_relative_to(root):
            report.repair("imagePath not found as written; the image of that name beside the JSON was used",
                          f"{json_file.name}: {image_path}")
            p = beside
        elif not p.is_relative_to(root):
            raise InputError(f"imagePath {image_path!r} points outside {root}; pass --images with the folder that "
                             "holds the images", file=file, where="imagePath")
        else:
            raise InputError(f"image {image_path!r} not found (looked for {p}); pass --images", file=file,
                             where="imagePath")
    name = p.relative_to(root).as_posix()
    safe_image_path(root, name)
    return name, []
