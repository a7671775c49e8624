"""CVAT exports: "CVAT for images 1.1" XML with skeletons, and "COCO Keypoints 1.0".

XML (per the CVAT exporter): `<meta>` lists labels; a skeleton label has `<type>skeleton</type>`
and its keypoints are the labels whose `<parent>` names it, in order. Each image is
`<image id name width height>` holding `<skeleton label=...>` shapes whose children are
`<points label=KEYPOINT outside=0|1 occluded=0|1 points="x,y">`. outside -> v=0, occluded -> v=1,
else v=2. A `<box>` with the same `group_id` as a skeleton gives that instance's bbox.

COCO Keypoints 1.0 is COCO plus CVAT's per-annotation `attributes` (`occluded`, ...) and empty
info/licence fields; it is read by the shared COCO reader, which tolerates and drops them.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .base import ImportOptions, ImportReport, ImportResult

NAME = "cvat"


def _is_xml(path: Path) -> bool:
    from ..importer import peek_text

    head = peek_text(path, 4096).lstrip()
    return head.startswith("<") and "<annotations" in head


def detect(path: Path) -> bool:
    """CVAT XML (an <annotations> root), or COCO JSON whose annotations carry CVAT's `attributes`."""
    from ..importer import peek_text, read_json

    if not path.is_file():
        return False
    if _is_xml(path):
        return True
    if not peek_text(path, 64).lstrip().startswith("{"):
        return False
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list) \
            or not isinstance(data.get("categories"), list):
        return False
    anns = [a for a in data["annotations"][:200] if isinstance(a, dict)]
    return bool(anns) and all(isinstance(a.get("attributes"), dict) for a in anns)


def read(path: Path, skeleton: Any, options: ImportOptions) -> ImportResult:
    from ..importer import peek_text, read_json
    from .coco_annotator import read_coco_like

    path = Path(path)
    if _is_xml(path):
        return read_xml(path, skeleton, options)
    if peek_text(path, 64).lstrip().startswith("<"):
        raise InputError("XML without an <annotations> root: not a CVAT for images 1.1 export", file=str(path))
    report = ImportReport(format=f"{NAME} (COCO Keypoints 1.0)", source=str(path))
    return read_coco_like(read_json(path), path, skeleton, options, report)


# ------------------------------------------------------------------ XML
def _parse_xml(path: Path) -> ET.Element:
    from ..io import read_bytes

    raw = read_bytes(path)
    # entity declarations are never in a CVAT export; refusing them rules out entity expansion bombs
    if re.search(rb"<!(DOCTYPE|ENTITY)", raw[:65536]):
        raise InputError("XML with a DOCTYPE/ENTITY declaration is not a CVAT export; refused", file=str(path))
    try:
        return ET.fromstring(raw)
    except ET.ParseError as e:
        line, col = getattr(e, "position", (None, None))
        msg = str(e).split(":")[0]
        raise InputError(f"invalid XML: {msg}", file=str(path),
                         where=f"line {line} column {col}" if line else None) from None
    except (LookupError, ValueError) as e:  # e.g. an unknown encoding in the XML declaration
        raise InputError(f"invalid XML: {e}", file=str(path)) from None


def _float(v: str | None, file: str, where: str) -> float:
    try:
        f = float(v) if v is not None else float("nan")
    except ValueError:
        f = float("nan")
    if not np.isfinite(f):
        raise InputError(f"expected a number, got {v!r}", file=file, where=where)
    return f


def _flag(v: str | None, file: str, where: str) -> bool:
    if v is None or v.strip().lower() in ("0", "false", ""):
        return False
    if v.strip().lower() in ("1", "true"):
        return True
    raise InputError(f"expected 0 or 1, got {v!r}", file=file, where=where)


def skeleton_labels(root: ET.Element) -> dict[str, list[str]]:
    """Skeleton label name -> its keypoint names in the order the labels define them."""
    labels = root.findall("./meta//labels/label")
    out: dict[str, list[str]] = {}
    for lab in labels:
        if (lab.findtext("type") or "").strip() == "skeleton":
            out[(lab.findtext("name") or "").strip()] = []
    for lab in labels:
        parent = (lab.findtext("parent") or "").strip()
        if parent in out:
            out[parent].append((lab.findtext("name") or "").strip())
    return out


def read_xml(path: Path, skeleton: Any, options: ImportOptions) -> ImportResult:
    from ..importer import DatasetBuilder, RawImage, RawInstance, keypoint_mapping, resolve_category

    file = str(path)
    report = ImportReport(format=f"{NAME} (CVAT for images 1.1)", source=file)
    root = _parse_xml(path)
    if root.tag != "annotations":
        raise InputError(f"expected an <annotations> root element, got <{root.tag}>", file=file)
    if root.find("track") is not None:
        raise InputError("this is a 'CVAT for video' export (<track> elements); export the task as "
                         "'CVAT for images 1.1'", file=file, where="annotations/track")

    defs = skeleton_labels(root)
    images = root.findall("image")
    if not defs:
        # no meta: fall back to the skeleton labels and point labels the images use, in first-seen order
        for im in images:
            for sk in im.findall("skeleton"):
                names = defs.setdefault(sk.get("label", ""), [])
                for p in sk.findall("points"):
                    if p.get("label", "") not in names:
                        names.append(p.get("label", ""))
        if defs:
            report.warnings.append("no label definitions in <meta>: keypoint names taken from the points used")
    if not defs and any(len((p.get("points") or "").split(";")) > 1 for p in root.iter("points")):
        raise InputError("no skeleton labels: this export has only multi-point <points> shapes, whose points carry "
                         "no keypoint names (matching them by position could swap body parts); label with a CVAT "
                         "skeleton and export again", file=file, where="meta/labels")
    cands = [(f"meta/labels/{n}", n, n) for n in defs]
    label = cands[resolve_category(cands, options.category, file, "meta/labels")][1]
    names = defs[label]
    if not names:
        raise InputError(f"skeleton label {label!r} has no keypoint labels (<label> with <parent>{label}</parent>)",
                         file=file, where="meta/labels")
    mapping = keypoint_mapping(names, skeleton, file=file, where=f"meta/labels (skeleton {label!r})")
    slot = {n: i for i, n in enumerate(names)}
    n_src = len(names)

    b = DatasetBuilder(skeleton, options, report, file, category_id=1, category_name=label)
    seen: dict[Any, int] = {}
    other: dict[str, int] = {}
    for i, im in enumerate(images):
        where = f"image[{i}]"
        try:
            iid = int(im.get("id", ""))
        except ValueError:
            raise InputError(f"image id must be an integer, got {im.get('id')!r}", file=file, where=f"{where}@id") from None
        # a project export numbers frames per task: the task id is part of the image's identity
        key: Any = (im.get("task_id"), iid) if im.get("task_id") is not None else iid
        if key in seen:
            raise InputError(f"duplicate image id {iid} (first at image[{seen[key]}])", file=file, where=f"{where}@id")
        seen[key] = i
        name = im.get("name")
        if not name:
            raise InputError("image without a name", file=file, where=f"{where}@name")

        def _dim(k: str, im: ET.Element = im, where: str = where) -> int | None:
            v = im.get(k)
            if v is None:
                return None
            try:
                return int(v)
            except ValueError:
                raise InputError(f"{k} must be an integer, got {v!r}", file=file, where=f"{where}@{k}") from None

        b.add_image(RawImage(key=key, file_name=name, width=_dim("width"), height=_dim("height"), where=where))
        boxes: dict[str, tuple[float, float, float, float]] = {}
        for j, box in enumerate(im.findall("box")):
            gid = box.get("group_id")
            if gid:
                bw = f"{where}/box[{j}]"
                x0, y0 = _float(box.get("xtl"), file, f"{bw}@xtl"), _float(box.get("ytl"), file, f"{bw}@ytl")
                x1, y1 = _float(box.get("xbr"), file, f"{bw}@xbr"), _float(box.get("ybr"), file, f"{bw}@ybr")
                boxes[gid] = (x0, y0, x1 - x0, y1 - y0)
        tag_count: dict[str, int] = {}
        for el in im:
            j = tag_count[el.tag] = tag_count.get(el.tag, -1) + 1
            if el.tag != "skeleton" or el.get("label") != label:
                if el.tag not in ("tag",) and not (el.tag == "box" and el.get("group_id")):
                    key = f"<{el.tag}> shape with label {el.get('label')!r} (not skeleton {label!r})"
                    other[key] = other.get(key, 0) + 1
                continue
            sw = f"{where}/skeleton[{j}]"
            report.instances_read += 1
            src = np.zeros((n_src, 3))
            for k, p in enumerate(el.findall("points")):
                pw = f"{sw}/points[{k}]"
                pl = p.get("label", "")
                if pl not in slot:
                    raise InputError(f"point label {pl!r} is not a keypoint of skeleton {label!r} ({names})",
                                     file=file, where=f"{pw}@label")
                if _flag(p.get("outside"), file, f"{pw}@outside"):
                    continue
                xy = (p.get("points") or "").split(";")[0].split(",")
                if len(xy) != 2:
                    raise InputError(f"expected points=\"x,y\", got {p.get('points')!r}", file=file, where=f"{pw}@points")
                x, y = _float(xy[0], file, f"{pw}@points"), _float(xy[1], file, f"{pw}@points")
                v = 1.0 if _flag(p.get("occluded"), file, f"{pw}@occluded") else 2.0
                src[slot[pl]] = (x, y, v)
            gid = el.get("group_id")
            bbox = boxes.get(gid) if gid else None
            if bbox is not None:
                report.repair("bbox taken from the <box> in the same group", f"image {iid} group {gid}")
            b.add_instance(RawInstance(image_key=key, keypoints=src[mapping], bbox=bbox,
                                       source_id=f"image {iid} skeleton {j}", where=sw))
    for why, n in other.items():
        report.skip(why, n=n)
    report.images_read = len(images)
    return b.build()


def labels_to_skeleton_dict(path: Path, label: str | None = None) -> dict[str, Any]:
    """A starting skeleton dict from a CVAT XML's skeleton label (names and the SVG's edges)."""
    import html

    from ..skeleton import guess_flip_pairs, guess_root

    root = _parse_xml(Path(path))
    defs = skeleton_labels(root)
    if not defs:
        raise InputError("no skeleton label in <meta>", file=str(path), where="meta/labels")
    name = label if label is not None else next(iter(defs))
    if name not in defs:
        raise InputError(f"no skeleton label {name!r}; found {list(defs)}", file=str(path), where="meta/labels")
    kps = defs[name]
    svg = ""
    for lab in root.findall("./meta//labels/label"):
        if (lab.findtext("name") or "").strip() == name:
            svg = html.unescape(lab.findtext("svg") or "")
    # element nodes carry data-node-id and data-label-name; edges refer to node ids
    node_name = dict(re.findall(r'data-node-id="(\d+)"[^>]*?data-label-name="([^"]*)"', svg))
    limbs: list[list[str]] = []
    for a, c in re.findall(r'data-node-from="(\d+)"[^>]*?data-node-to="(\d+)"', svg):
        na, nc = node_name.get(a), node_name.get(c)
        if na in kps and nc in kps and na != nc and [na, nc] not in limbs and [nc, na] not in limbs:
            limbs.append([na, nc])
    return {"name": name, "keypoints": kps, "limbs": limbs, "root": guess_root(kps, limbs),
            "flip": [list(p) for p in guess_flip_pairs(kps)], "sigmas": [0.05] * len(kps)}


def skeleton_from_xml(path: Path, label: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """(skeleton dict, notes) from a CVAT for images 1.1 export's skeleton label, for
    `posedata skeleton init --from-cvat`."""
    d = labels_to_skeleton_dict(path, label)
    notes = [f"keypoints and limbs from CVAT skeleton label {d['name']!r} (limbs from its drawn edges)"]
    if not d["limbs"]:
        notes.append("the label's SVG has no edges between keypoints: add limbs by hand")
    if not d["flip"]:
        notes.append("no left/right keypoint names found: add flip pairs if the object is mirror-symmetric")
    return d, notes
