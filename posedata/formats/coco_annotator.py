"""coco-annotator's COCO export (github.com/jsbroks/coco-annotator), and plain COCO through it.

What its exporter does that plain COCO readers trip over (each handled and reported here or in
formats.builder.DatasetBuilder):
- keypoint-only annotations keep the defaults area 0, bbox [0, 0, 0, 0], segmentation [];
- polygon-only annotations carry neither `keypoints` nor `num_keypoints`;
- `num_keypoints` is recomputed only for annotations with keypoints;
- points placed without a label are appended after the 3*K labelled slots;
- coordinates are integers, unlabelled slots (0, 0, 0);
- `iscrowd`/`isbbox` are JSON booleans; many extra keys on annotations, categories and images;
- images carry `path`, an absolute path on the annotation server;
- every category of the dataset is exported, keypoint ones with `keypoints` and a 1-based `skeleton`;
- "with empty images" exports list images that have no annotations.

`write()` produces a file in the same style, for round-trip tests and for users who move data
back into the tool.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..coco import objects
from ..errors import InputError
from .base import ImportOptions, ImportReport, ImportResult

NAME = "coco-annotator"

# Keys a clean COCO file carries; anything else a tool adds is dropped from the output.
_IMAGE_KEEP = ("license", "coco_url", "flickr_url", "date_captured")
_ANN_KEYS = ("id", "image_id", "category_id", "keypoints", "num_keypoints", "bbox", "area", "iscrowd", "segmentation")


def _looks_json_object(path: Path) -> bool:
    from .builder import peek_text

    return path.is_file() and peek_text(path, 64).lstrip().startswith("{")


def _is_coco(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("images"), list) and \
        isinstance(data.get("categories"), list) and isinstance(data.get("annotations", []), list)


def detect(path: Path) -> bool:
    """A COCO object with coco-annotator's fingerprints: images with `dataset_id`/`annotated`/
    `path`, annotations with `isbbox`/`color`/`metadata`, categories with `keypoint_colors`."""
    from .builder import read_json

    if not _looks_json_object(path):
        return False
    data = read_json(path)
    if not _is_coco(data):
        return False
    ims = [x for x in data["images"][:50] if isinstance(x, dict)]
    anns = [x for x in data.get("annotations", [])[:200] if isinstance(x, dict)]
    cats = [x for x in data["categories"] if isinstance(x, dict)]
    return (any("dataset_id" in x or "annotated" in x for x in ims)
            or any("isbbox" in x or ("color" in x and "metadata" in x) for x in anns)
            or any("keypoint_colors" in x for x in cats))


def read(path: Path, skeleton: Any, options: ImportOptions) -> ImportResult:
    from .builder import read_json

    report = ImportReport(format=NAME, source=str(path))
    data = read_json(path)
    return read_coco_like(data, Path(path), skeleton, options, report)


def _num_list(v: Any, file: str, where: str) -> np.ndarray:
    """A JSON list of finite numbers as float64; the first bad element located otherwise."""
    if not isinstance(v, list):
        raise InputError(f"expected a list of numbers, got {type(v).__name__}", file=file, where=where)
    # type() rather than isinstance(): bool is an int subclass but never a coordinate
    if all(type(x) is int or type(x) is float for x in v):
        try:
            arr = np.array(v, dtype=np.float64)
        except OverflowError:
            arr = None
        if arr is not None and np.isfinite(arr).all():
            return arr
    for j, x in enumerate(v):
        try:
            ok = not isinstance(x, bool) and isinstance(x, (int, float)) and bool(np.isfinite(float(x)))
        except OverflowError:
            ok = False
        if not ok:
            raise InputError(f"expected a finite number, got {_short(x)}", file=file, where=f"{where}[{j}]")
    raise InputError("numbers out of range", file=file, where=where)


def _short(x: Any) -> str:
    r = repr(x)
    return r if len(r) <= 40 else r[:37] + "..."


def _id(v: Any, file: str, where: str) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, str)) or (isinstance(v, str) and not v):
        raise InputError(f"expected an integer (or string) id, got {v!r}", file=file, where=where)
    return v


def read_coco_like(data: Any, path: Path, skeleton: Any, options: ImportOptions,
                   report: ImportReport) -> ImportResult:
    """Read any COCO keypoint export (coco-annotator's, CVAT's, plain) into a Dataset. Tool keys
    (CVAT's `attributes`, coco-annotator's `color`, `metadata`, ...) are tolerated and left out."""
    from .builder import DatasetBuilder, RawInstance, keypoint_mapping

    file = str(path)
    if not isinstance(data, dict):
        raise InputError(f"expected a COCO object at the top level, got {type(data).__name__}", file=file)
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise InputError(f"expected a list under {key!r}", file=file, where=key)
    anns = data.get("annotations", [])
    if not isinstance(anns, list):
        raise InputError("expected a list under 'annotations'", file=file, where="annotations")

    ci, cat_names = _keypoint_category(data["categories"], options, file)
    cat = data["categories"][ci]
    cat_id = cat["id"]
    names = list(cat["keypoints"])
    n_src = len(names)
    mapping = keypoint_mapping(names, skeleton, file=file, where=f"categories[{ci}].keypoints")

    b = DatasetBuilder(skeleton, options, report, file, category_id=cat_id,
                       category_name=str(cat.get("name") or skeleton.name),
                       supercategory=str(cat.get("supercategory") or ""))
    if isinstance(data.get("info"), dict):
        b.info = data["info"]
    if isinstance(data.get("licenses"), list):
        b.licenses = data["licenses"]

    dropped_keys = _add_images(b, data["images"], file, report)

    # --- annotations
    other: dict[Any, list] = {}
    ann_extra: set[str] = set()
    for _i, where, a in objects(anns, "annotations", file):
        aid = a.get("id")
        acat = a.get("category_id")
        if acat != cat_id:
            if isinstance(acat, (int, str)) and not isinstance(acat, bool) and acat in cat_names:
                other.setdefault(acat, []).append(aid)
                continue
            raise InputError(f"category_id {acat!r} is not a category of this file", file=file,
                             where=f"{where}.category_id")
        report.instances_read += 1
        aid = _id(aid, file, f"{where}.id")
        image_id = _id(a.get("image_id"), file, f"{where}.image_id")
        crowd = _iscrowd(a.get("iscrowd", False), file, f"{where}.iscrowd")
        ann_extra.update(k for k in a if k not in _ANN_KEYS)
        arr = _keypoints(a.get("keypoints"), n_src, mapping, crowd, report, aid, file, f"{where}.keypoints")
        seg = a.get("segmentation")
        if seg is not None and not isinstance(seg, (list, dict)):
            raise InputError(f"segmentation must be a list of polygons or an RLE object, got {type(seg).__name__}",
                             file=file, where=f"{where}.segmentation")
        b.add_instance(RawInstance(image_key=image_id, keypoints=arr, bbox=a.get("bbox"), area=a.get("area"),
                                   iscrowd=crowd, segmentation=seg, source_id=aid, where=where,
                                   num_keypoints=a.get("num_keypoints")))
    for ocat, ids in other.items():
        label = f"annotation of another category (id {ocat}, {cat_names.get(ocat)!r}; crowd regions included)"
        report.skip(label, n=len(ids))
        report.skip_examples[label] = ids[:10]
    if dropped_keys or ann_extra:
        report.warnings.append("tool-specific keys left out of the output: "
                               + ", ".join(sorted(dropped_keys | ann_extra)))
    return b.build()


def _keypoint_category(cats: list, options: ImportOptions, file: str) -> tuple[int, dict[Any, str]]:
    """(index of the keypoint category imported, every category's name by id)."""
    from .builder import resolve_category

    kcats: list[tuple[str, Any, Any]] = []
    kidx: list[int] = []
    cat_names: dict[Any, str] = {}
    for i, where, c in objects(cats, "categories", file):
        cid = _id(c.get("id"), file, f"{where}.id")
        cat_names[cid] = str(c.get("name", ""))
        kp = c.get("keypoints")
        if kp is None or kp == []:
            continue
        if not isinstance(kp, list) or not all(isinstance(k, str) for k in kp):
            raise InputError("expected a list of keypoint names", file=file, where=f"{where}.keypoints")
        kcats.append((where, cid, c.get("name", "")))
        kidx.append(i)
    return kidx[resolve_category(kcats, options.category, file, "categories")], cat_names


def _add_images(b: Any, images: list, file: str, report: ImportReport) -> set[str]:
    """Every image into the builder (a missing file_name taken from `path`); returns the tool keys
    left out."""
    from .builder import RawImage

    seen: dict[Any, int] = {}
    dropped_keys: set[str] = set()
    for i, where, im in objects(images, "images", file):
        iid = _id(im.get("id"), file, f"{where}.id")
        if iid in seen:
            raise InputError(f"duplicate image id {iid!r} (first at images[{seen[iid]}])", file=file, where=f"{where}.id")
        seen[iid] = i
        fn = im.get("file_name")
        pth = im.get("path")
        if not isinstance(fn, str) or not fn:
            if isinstance(pth, str) and pth:
                fn = pth.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
                report.repair("image file_name missing: taken from the end of `path`", iid)
            else:
                raise InputError("expected a non-empty file_name (or path)", file=file, where=f"{where}.file_name")
        dropped_keys.update(k for k in im if k not in ("id", "file_name", "width", "height", *_IMAGE_KEEP))
        b.add_image(RawImage(key=iid, file_name=fn, width=im.get("width"), height=im.get("height"),
                             candidates=[pth] if isinstance(pth, str) and pth else [], where=where,
                             extra={k: im[k] for k in _IMAGE_KEEP if k in im}))
    report.images_read = len(images)
    return dropped_keys


def _iscrowd(crowd: Any, file: str, where: str) -> bool:
    if isinstance(crowd, bool):
        return crowd
    if isinstance(crowd, (int, float)) and crowd in (0, 1):
        return bool(crowd)
    if crowd is None:
        return False
    raise InputError(f"iscrowd must be true/false or 0/1, got {crowd!r}", file=file, where=where)


def _keypoints(kp: Any, n_src: int, mapping: Any, crowd: bool, report: ImportReport, aid: Any, file: str,
               where: str) -> np.ndarray | None:
    """An annotation's keypoints in skeleton order (None: it has none); extra slots dropped and
    missing ones padded, both reported."""
    if kp is not None and kp != []:
        flat = _num_list(kp, file, where)
        if len(flat) > 3 * n_src:
            report.repair(f"keypoints beyond the category's {n_src} labelled slots dropped (points placed "
                          "without a label)", aid, n=(len(flat) - 3 * n_src + 2) // 3)
            flat = flat[: 3 * n_src]
        elif len(flat) < 3 * n_src:
            if len(flat) % 3:
                raise InputError(f"keypoints must be x, y, v triples ({3 * n_src} numbers for {n_src} keypoints), "
                                 f"got {len(flat)} numbers", file=file, where=where)
            report.repair(f"keypoints shorter than the category's {n_src} slots padded with unlabelled slots", aid)
            flat = np.concatenate([flat, np.zeros(3 * n_src - len(flat))])
        return flat.reshape(n_src, 3)[mapping]
    if kp == [] and not crowd:
        report.repair("empty keypoints list read as zero keypoints", aid)
        return np.zeros((len(mapping), 3))
    return None


# ------------------------------------------------------------------ writer
def to_coco_annotator(data: dict[str, Any], dataset_name: str = "posedata") -> dict[str, Any]:
    """COCO keypoint JSON -> the shape coco-annotator exports: integer coordinates, booleans,
    server paths, extra keys, and keypoint-only annotations with area 0 / bbox [0, 0, 0, 0]."""
    cats = []
    for c in data.get("categories", []):
        d = {"id": c["id"], "name": c["name"], "supercategory": c.get("supercategory", ""),
             "color": "#ff0000", "metadata": {}, "creator": "posedata"}
        if c.get("keypoints"):
            d["keypoints"] = list(c["keypoints"])
            d["skeleton"] = [list(e) for e in c.get("skeleton", [])]
            d["keypoint_colors"] = ["#bf5c4d"] * len(c["keypoints"])
        cats.append(d)
    images = []
    for im in data.get("images", []):
        images.append({"id": im["id"], "dataset_id": 1, "category_ids": [], "path": f"/datasets/{dataset_name}/{im['file_name']}",
                       "width": im["width"], "height": im["height"], "file_name": im["file_name"],
                       "annotated": True, "annotating": [], "num_annotations": 0, "metadata": {},
                       "milliseconds": 0, "events": [], "regenerate_thumbnail": False, "is_modified": False})
    anns = []
    for a in data.get("annotations", []):
        seg = a.get("segmentation") or []
        has_poly = isinstance(seg, list) and len(seg) > 0
        d = {"id": a["id"], "image_id": a["image_id"], "category_id": a["category_id"],
             "segmentation": seg if has_poly else [], "area": a.get("area", 0) if has_poly else 0,
             "bbox": a.get("bbox", [0, 0, 0, 0]) if has_poly else [0, 0, 0, 0],
             "iscrowd": bool(a.get("iscrowd", False)), "isbbox": False, "color": "#7ae35b", "metadata": {},
             "creator": "posedata", "width": 0, "height": 0, "events": [], "milliseconds": 0}
        kp = a.get("keypoints") or []
        if any(kp[2::3]):
            flat = []
            for j in range(0, len(kp), 3):
                v = int(kp[j + 2])
                flat += [int(round(kp[j])), int(round(kp[j + 1])), v] if v > 0 else [0, 0, 0]
            d["keypoints"] = flat
            d["num_keypoints"] = sum(1 for v in flat[2::3] if v > 0)
        elif not has_poly:
            continue  # the tool exports neither an empty-keypoint nor an empty-polygon annotation
        anns.append(d)
    return {"images": images, "categories": cats, "annotations": anns}


def write(data: dict[str, Any], path: str | Path, dataset_name: str = "posedata") -> None:
    """Write COCO keypoint JSON as a coco-annotator-style export (atomically)."""
    from ..io import atomic_write_json

    atomic_write_json(path, to_coco_annotator(data, dataset_name), indent=None)
