"""CVAT exports: "CVAT for images 1.1" and "CVAT for video 1.1" XML, and "COCO Keypoints 1.0".

XML (per the CVAT exporter): `<meta>` lists labels; a skeleton label has `<type>skeleton</type>`
and its keypoints are the labels whose `<parent>` names it, in order. "For images" writes
`<image id name width height>` elements holding shapes in any order (boxes, polygons, tags,
skeletons of several labels...); a `<skeleton label=...>` shape's children are
`<points label=KEYPOINT outside=0|1 occluded=0|1 points="x,y">`. outside -> v=0, occluded -> v=1,
else v=2. A `<box>` with the same `group_id` as a skeleton gives that instance's bbox.
"For video" writes `<track id label>` elements holding one shape per frame (`frame=`), key
frames and the interpolated frames between them alike; a frame where the object left the view
is marked outside (on a skeleton: every point outside). The XML names no frame files.
Before CVAT had skeletons, keypoints were one-point `<points>` shapes labelled with the keypoint
name, the points of one object sharing a `group_id`; that workflow is read too.

COCO Keypoints 1.0 is COCO plus CVAT's per-annotation `attributes` (`occluded`, ...) and empty
info/licence fields; it is read by the shared COCO reader, which tolerates and drops them.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .base import ImportOptions, ImportReport, ImportResult

NAME = "cvat"


def _is_xml(path: Path) -> bool:
    from .builder import peek_text

    head = peek_text(path, 4096).lstrip()
    return head.startswith("<") and "<annotations" in head


def detect(path: Path) -> bool:
    """CVAT XML (an <annotations> root), or COCO JSON whose annotations carry CVAT's `attributes`."""
    from .builder import peek_text, read_json

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
    from .builder import peek_text, read_json
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
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    from ..io import read_bytes

    raw = read_bytes(path)
    try:
        # a hardened parser: a DTD anywhere (never in a CVAT export) is refused as it is met, so
        # no entity expansion bomb or external reference is ever resolved
        return fromstring(raw, forbid_dtd=True)
    except DefusedXmlException as e:
        raise InputError(f"XML with a DOCTYPE/ENTITY declaration is not a CVAT export; refused ({e})",
                         file=str(path)) from None
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


@dataclass
class _Shape:
    """One shape of the export, wherever it sits: a child of an <image>, or one frame of a <track>."""
    el: ET.Element
    image_key: Any
    where: str
    label: str
    group: str | None  # CVAT's group_id; "0" and absent both mean "no group"
    track_id: int | None = None
    source_id: str = ""


def _frame_numbering(root: ET.Element) -> dict[str | None, dict[str, Any]]:
    """Task id (None for a task or job export) -> how its frames are numbered and sized.

    A track's `frame` counts the task's frames; CVAT's dataset export names frame n of a video
    `frame_{start + n*step:06d}.PNG` and the XML carries no file names, only `original_size`."""
    def info(node: ET.Element) -> dict[str, Any]:
        def num(text: str | None, default: int) -> int:
            try:
                return int((text or "").strip())
            except ValueError:
                return default
        m = re.search(r"step\s*=\s*(\d+)", node.findtext("frame_filter") or "")
        size = node.find("original_size")
        return {"start": num(node.findtext("start_frame"), 0), "step": int(m.group(1)) if m and int(m.group(1)) > 0 else 1,
                "width": size.findtext("width") if size is not None else None,
                "height": size.findtext("height") if size is not None else None}

    out: dict[str | None, dict[str, Any]] = {}
    for node in root.findall("./meta/task") + root.findall("./meta/job"):
        out[None] = info(node)
    for node in root.findall("./meta/project/tasks/task"):
        out[(node.findtext("id") or "").strip()] = info(node)
    return out


def _int_attr(el: ET.Element, attr: str, what: str, file: str, where: str) -> int:
    """An integer XML attribute, else InputError naming it (`where@attr`)."""
    try:
        return int(el.get(attr, ""))
    except ValueError:
        raise InputError(f"{what} must be an integer, got {el.get(attr)!r}", file=file, where=f"{where}@{attr}") from None


def _collect_shapes(root: ET.Element, file: str, b: Any, report: ImportReport) -> list[_Shape]:
    """Every shape of every <image> and every frame of every <track>, in file order, with the
    images they sit on registered in the builder."""
    from .builder import RawImage

    shapes: list[_Shape] = []
    seen: dict[Any, int] = {}
    images = root.findall("image")
    for i, im in enumerate(images):
        where = f"image[{i}]"
        iid = _int_attr(im, "id", "image id", file, where)
        # a project export numbers frames per task: the task id is part of the image's identity
        key: Any = (im.get("task_id"), iid) if im.get("task_id") is not None else iid
        if key in seen:
            raise InputError(f"duplicate image id {iid} (first at image[{seen[key]}])", file=file, where=f"{where}@id")
        seen[key] = i
        name = im.get("name")
        if not name:
            raise InputError("image without a name", file=file, where=f"{where}@name")
        b.add_image(RawImage(key=key, file_name=name, width=_dim(im.get("width"), file, f"{where}@width"),
                             height=_dim(im.get("height"), file, f"{where}@height"), where=where))
        tag_count: dict[str, int] = {}
        for el in im:
            j = tag_count[el.tag] = tag_count.get(el.tag, -1) + 1
            shapes.append(_Shape(el, key, f"{where}/{el.tag}[{j}]", el.get("label", ""), el.get("group_id"),
                                 source_id=f"image {iid} {el.tag} {j}"))

    tracks = root.findall("track")
    if tracks:
        numbering = _frame_numbering(root)
        frames: dict[Any, str] = {}
        for t, tr in enumerate(tracks):
            tw = f"track[{t}]"
            tid = _int_attr(tr, "id", "track id", file, tw)
            task = tr.get("task_id")
            nb = numbering.get(task, numbering.get(None, {"start": 0, "step": 1, "width": None, "height": None}))
            tag_count = {}
            for el in tr:
                if el.tag == "attribute":
                    continue
                j = tag_count[el.tag] = tag_count.get(el.tag, -1) + 1
                sw = f"{tw}/{el.tag}[{j}]"
                frame = _int_attr(el, "frame", "frame", file, sw)
                if frame < 0:
                    raise InputError(f"frame must be >= 0, got {frame}", file=file, where=f"{sw}@frame")
                key = f"frame {frame}" if task is None else f"task {task} frame {frame}"
                if key not in frames:
                    frames[key] = sw
                    n = nb["start"] + frame * nb["step"]
                    stem = f"frame_{n:06d}"
                    b.add_image(RawImage(key=key, file_name=f"{stem}.PNG",
                                         width=_dim(nb["width"], file, "meta/original_size/width"),
                                         height=_dim(nb["height"], file, "meta/original_size/height"),
                                         candidates=[f"{stem}.png", f"{stem}.jpg", f"{stem}.jpeg"], where=sw,
                                         extra={"frame": frame} if task is None else {"frame": frame, "task_id": task}))
                shapes.append(_Shape(el, key, sw, tr.get("label", ""), tr.get("group_id"), track_id=tid,
                                     source_id=f"track {tid} frame {frame}"))
        report.warnings.append("'CVAT for video 1.1' names no frame files: frames are named as CVAT's dataset "
                               "export writes them (frame_NNNNNN.PNG), sized by meta original_size")
    return shapes


def _dim(v: str | None, file: str, where: str) -> int | None:
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        raise InputError(f"expected an integer, got {v!r}", file=file, where=where) from None


def _point(p: ET.Element, file: str, where: str) -> tuple[float, float, float] | None:
    """(x, y, COCO v) of a one-point <points> element; None when it is marked outside."""
    if _flag(p.get("outside"), file, f"{where}@outside"):
        return None
    xy = (p.get("points") or "").split(";")[0].split(",")
    if len(xy) != 2:
        raise InputError(f"expected points=\"x,y\", got {p.get('points')!r}", file=file, where=f"{where}@points")
    x, y = _float(xy[0], file, f"{where}@points"), _float(xy[1], file, f"{where}@points")
    return x, y, 1.0 if _flag(p.get("occluded"), file, f"{where}@occluded") else 2.0


def _group(g: str | None) -> str | None:
    return g if g not in (None, "", "0") else None


def _box(el: ET.Element, file: str, where: str) -> tuple[float, float, float, float]:
    x0, y0 = _float(el.get("xtl"), file, f"{where}@xtl"), _float(el.get("ytl"), file, f"{where}@ytl")
    x1, y1 = _float(el.get("xbr"), file, f"{where}@xbr"), _float(el.get("ybr"), file, f"{where}@ybr")
    return x0, y0, x1 - x0, y1 - y0


def _skipped_outside(s: _Shape, file: str) -> bool:
    """A track frame where the object has left the view: the frame's shape says outside="1", or
    (for a skeleton, whose element carries no outside flag) every one of its points does."""
    if s.track_id is None:
        return False
    if _flag(s.el.get("outside"), file, f"{s.where}@outside"):
        return True
    if s.el.tag == "skeleton":
        pts = s.el.findall("points")
        return bool(pts) and all(_flag(p.get("outside"), file, f"{s.where}/points[{k}]@outside")
                                 for k, p in enumerate(pts))
    return False


def read_xml(path: Path, skeleton: Any, options: ImportOptions) -> ImportResult:
    """Either export of CVAT's XML 1.1: "for images" (<image> elements holding shapes) or "for
    video" (<track> elements, one shape per frame). Instances are skeleton shapes of one skeleton
    label, or, for the older workflow without skeletons, one-point <points> shapes (the point's
    label is the keypoint) grouped into instances by group_id."""
    from .builder import DatasetBuilder, resolve_category

    file = str(path)
    report = ImportReport(format=f"{NAME} (CVAT for images 1.1)", source=file)
    root = _parse_xml(path)
    if root.tag != "annotations":
        raise InputError(f"expected an <annotations> root element, got <{root.tag}>", file=file)
    if root.find("track") is not None:
        report.format = f"{NAME} (CVAT for video 1.1)"

    defs = skeleton_labels(root)
    # the builder's category is set once the mode is known; images are registered while collecting
    b = DatasetBuilder(skeleton, options, report, file, category_id=1)
    shapes = _collect_shapes(root, file, b, report)
    if not defs:
        # no meta: fall back to the skeleton labels and point labels the shapes use, in first-seen order
        for s in shapes:
            if s.el.tag == "skeleton":
                names = defs.setdefault(s.label, [])
                for p in s.el.findall("points"):
                    if p.get("label", "") not in names:
                        names.append(p.get("label", ""))
        if defs:
            report.warnings.append("no label definitions in <meta>: keypoint names taken from the points used")
    if not defs:
        _read_grouped_points(shapes, skeleton, file, b, report)
    else:
        cands = [(f"meta/labels/{n}", n, n) for n in defs]
        label = cands[resolve_category(cands, options.category, file, "meta/labels")][1]
        b.category_name = label
        _read_skeletons(shapes, label, defs[label], skeleton, file, b, report)
    report.images_read = len(b.images)
    return b.build()


def _read_skeletons(shapes: list[_Shape], label: str, names: list[str], skeleton: Any, file: str, b: Any,
                    report: ImportReport) -> None:
    from .builder import RawInstance, keypoint_mapping

    if not names:
        raise InputError(f"skeleton label {label!r} has no keypoint labels (<label> with <parent>{label}</parent>)",
                         file=file, where="meta/labels")
    mapping = keypoint_mapping(names, skeleton, file=file, where=f"meta/labels (skeleton {label!r})")
    slot = {n: i for i, n in enumerate(names)}
    boxes: dict[tuple[Any, str], tuple[float, float, float, float]] = {}
    for s in shapes:
        if s.el.tag == "box" and _group(s.group) and not _skipped_outside(s, file):
            boxes[(s.image_key, s.group)] = _box(s.el, file, s.where)  # type: ignore[index]
    other: dict[str, int] = {}
    for s in shapes:
        el = s.el
        if el.tag != "skeleton" or s.label != label:
            if el.tag != "tag" and not (el.tag == "box" and _group(s.group)):
                why = f"<{el.tag}> shape with label {s.label!r} (not skeleton {label!r})"
                other[why] = other.get(why, 0) + 1
            continue
        if _skipped_outside(s, file):
            report.skip("track frame marked outside (the object is not in view)", s.source_id)
            continue
        report.instances_read += 1
        src = np.zeros((len(names), 3))
        for k, p in enumerate(el.findall("points")):
            pw = f"{s.where}/points[{k}]"
            pl = p.get("label", "")
            if pl not in slot:
                raise InputError(f"point label {pl!r} is not a keypoint of skeleton {label!r} ({names})",
                                 file=file, where=f"{pw}@label")
            pt = _point(p, file, pw)
            if pt is not None:
                src[slot[pl]] = pt
        gid = _group(s.group)
        bbox = boxes.get((s.image_key, gid)) if gid else None
        if bbox is not None:
            report.repair("bbox taken from the <box> in the same group", f"{s.source_id} group {gid}")
        b.add_instance(RawInstance(image_key=s.image_key, keypoints=src[mapping], bbox=bbox, source_id=s.source_id,
                                   where=s.where, extra={} if s.track_id is None else {"track_id": s.track_id}))
    for why, n in other.items():
        report.skip(why, n=n)


def _read_grouped_points(shapes: list[_Shape], skeleton: Any, file: str, b: Any, report: ImportReport) -> None:
    """The workflow from before CVAT had skeletons: each keypoint is a one-point <points> shape
    labelled with the keypoint's name, and the points of one object share a group_id."""
    from ..skeleton import normalize_name
    from .builder import RawInstance, keypoint_slots, unknown_names_error

    slots = keypoint_slots(skeleton)
    K = len(skeleton.coco_keypoints)
    multi = [s for s in shapes if s.el.tag == "points" and len((s.el.get("points") or "").split(";")) > 1]
    single = [s for s in shapes if s.el.tag == "points" and s not in multi]
    if not single:
        if multi:
            raise InputError("no skeleton labels: this export has only multi-point <points> shapes, whose points "
                             "carry no keypoint names (matching them by position could swap body parts); label with "
                             "a CVAT skeleton, or one <points> shape per keypoint grouped by group_id, and export "
                             "again", file=file, where="meta/labels")
        raise InputError("no skeleton label and no one-point <points> shapes: nothing to import as keypoints",
                         file=file, where="meta/labels")
    known = [s for s in single if normalize_name(s.label) in slots]
    if not known:
        raise unknown_names_error(sorted({s.label for s in single}), skeleton, file, "meta/labels")
    for s in single:
        if s not in known:
            report.skip(f"<points> label {s.label!r} is not a skeleton keypoint", s.source_id)
    for s in multi:
        report.skip("multi-point <points> shape (its points carry no keypoint names)", s.source_id)
    others: dict[str, int] = {}
    boxes: dict[tuple[Any, str], tuple[float, float, float, float]] = {}
    for s in shapes:
        if s.el.tag == "box" and _group(s.group) and not _skipped_outside(s, file):
            boxes[(s.image_key, s.group)] = _box(s.el, file, s.where)  # type: ignore[index]
        elif s.el.tag not in ("points", "tag", "box"):
            why = f"<{s.el.tag}> shape with label {s.label!r} (not a keypoint)"
            others[why] = others.get(why, 0) + 1
    for why, n in others.items():
        report.skip(why, n=n)

    groups: dict[tuple[Any, str], list[_Shape]] = {}
    loose: dict[Any, list[_Shape]] = {}
    for s in known:
        if _skipped_outside(s, file):
            report.skip("track frame marked outside (the object is not in view)", s.source_id)
            continue
        g = _group(s.group)
        if g is None:
            loose.setdefault(s.image_key, []).append(s)
        else:
            groups.setdefault((s.image_key, g), []).append(s)
    for key, pts in loose.items():
        labels = [normalize_name(s.label) for s in pts]
        if not any(k[0] == key for k in groups) and len(set(labels)) == len(labels):
            groups[(key, "")] = pts
            report.repair("<points> without group_id taken as one instance (the image has no groups and each "
                          "keypoint once)", pts[0].source_id)
        else:
            for s in pts:
                report.skip("<points> without group_id in an image with several instances (cannot tell which "
                            "instance it belongs to)", s.source_id)
    report.format = report.format.replace(")", ", one <points> shape per keypoint grouped by group_id)")
    for (key, g), pts in groups.items():
        report.instances_read += 1
        kps = np.zeros((K, 3))
        for s in pts:
            j = slots[normalize_name(s.label)]
            pt = _point(s.el, file, s.where)
            if pt is None:
                continue
            if kps[j, 2] > 0:
                report.skip("keypoint labelled twice in one group (kept the first)", s.source_id)
                continue
            kps[j] = pt
        bbox = boxes.get((key, g)) if g else None
        if bbox is not None:
            report.repair("bbox taken from the <box> in the same group", f"{pts[0].source_id} group {g}")
        b.add_instance(RawInstance(image_key=key, keypoints=kps, bbox=bbox,
                                   source_id=f"{pts[0].source_id} group {g}" if g else pts[0].source_id,
                                   where=pts[0].where))


def labels_to_skeleton_dict(path: Path, label: str | None = None) -> dict[str, Any]:
    """A starting skeleton dict from a CVAT XML's skeleton label (names and the SVG's edges)."""
    import html

    from ..sides import guess_flip_pairs
    from ..skeleton import guess_root

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
