"""The in-memory dataset model: COCO keypoint data as typed dataclasses with NumPy keypoints.

Every importer reads into a `Dataset`; validate checks raw JSON (it must report what a typed
model cannot hold); convert, preview and the trainer read a `Dataset` built from checked JSON.
Keypoints are kept in the file's own keypoint order as float64 (n, 3) arrays with COCO
visibility (0 not labelled, 1 labelled but occluded, 2 visible).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .io import load_json


@dataclass
class Image:
    id: int
    file_name: str
    width: int
    height: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_coco(self) -> dict[str, Any]:
        return {**self.extra, "id": self.id, "file_name": self.file_name, "width": self.width, "height": self.height}


@dataclass
class Category:
    id: int
    name: str
    keypoints: list[str] = field(default_factory=list)
    skeleton: list[list[int]] = field(default_factory=list)  # 1-based pairs, as COCO
    supercategory: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_coco(self) -> dict[str, Any]:
        d = {**self.extra, "id": self.id, "name": self.name, "supercategory": self.supercategory}
        if self.keypoints:
            d["keypoints"] = list(self.keypoints)
            d["skeleton"] = [list(e) for e in self.skeleton]
        return d


@dataclass
class Annotation:
    id: int
    image_id: int
    category_id: int
    keypoints: np.ndarray | None = None  # (n, 3) float64, COCO visibility
    bbox: tuple[float, float, float, float] | None = None  # x, y, w, h
    area: float | None = None
    iscrowd: bool = False
    segmentation: Any = None
    num_keypoints: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def labelled(self) -> np.ndarray:
        """Boolean mask of keypoints with v > 0."""
        if self.keypoints is None:
            return np.zeros(0, dtype=bool)
        return self.keypoints[:, 2] > 0

    def to_coco(self) -> dict[str, Any]:
        d: dict[str, Any] = {**self.extra, "id": self.id, "image_id": self.image_id, "category_id": self.category_id,
                             "iscrowd": int(bool(self.iscrowd))}
        if self.keypoints is not None:
            kp = self.keypoints
            flat = []
            for x, y, v in kp.tolist():
                flat += [_num(x), _num(y), int(v)]
            d["keypoints"] = flat
            d["num_keypoints"] = int((kp[:, 2] > 0).sum()) if self.num_keypoints is None else int(self.num_keypoints)
        if self.bbox is not None:
            d["bbox"] = [_num(v) for v in self.bbox]
        if self.area is not None:
            d["area"] = _num(self.area)
        d["segmentation"] = self.segmentation if self.segmentation is not None else []
        return d


def _num(v: float) -> float | int:
    """Integers stay integers in JSON (exports round-trip byte-for-byte where they were ints)."""
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2**53 else round(f, 4)


@dataclass
class Dataset:
    images: list[Image] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    licenses: list[Any] = field(default_factory=list)
    file: str | None = None

    def to_coco(self) -> dict[str, Any]:
        return {
            "info": self.info,
            "licenses": self.licenses,
            "images": [im.to_coco() for im in self.images],
            "annotations": [a.to_coco() for a in self.annotations],
            "categories": [c.to_coco() for c in self.categories],
        }

    def image_index(self) -> dict[int, Image]:
        return {im.id: im for im in self.images}

    def categories_for(self, spec: CategorySpec, skeleton: Any = None) -> list[Category]:
        """The keypoint categories --category selects (see select_categories)."""
        raw = [{"id": c.id, "name": c.name, "keypoints": list(c.keypoints)} for c in self.categories]
        return [self.categories[i] for i in select_categories(raw, spec, self.file, skeleton)]

    def category(self, category_id: int | None = None) -> Category:
        """The chosen keypoint category (the only one with keypoints when not given)."""
        cats = [c for c in self.categories if c.keypoints]
        if category_id is not None:
            for c in self.categories:
                if c.id == category_id:
                    if not c.keypoints:
                        raise InputError(f"category {category_id} ({c.name!r}) has no keypoints", file=self.file)
                    return c
            raise InputError(f"no category with id {category_id}; keypoint categories: {[c.id for c in cats]}", file=self.file)
        if len(cats) != 1:
            raise InputError(
                f"expected exactly one keypoint category, found {len(cats)} ({[(c.id, c.name) for c in cats]}); choose one with --category",
                file=self.file)
        return cats[0]


# What --category selects: None (the only keypoint category), an id, a category name, several ids,
# or "all" (every keypoint category whose keypoint list the skeleton matches).
CategorySpec = int | str | tuple[int, ...] | None
ALL = "all"


def parse_category(text: str | int | tuple[int, ...] | None) -> CategorySpec:
    """--category's value: '3' -> 3, '3,7' -> (3, 7), 'all' -> 'all', anything else a name."""
    if text is None or isinstance(text, (int, tuple)):
        return text
    t = str(text).strip()
    if t.lower() == ALL:
        return ALL
    parts = [p.strip() for p in t.split(",")]
    if all(p.lstrip("-").isdigit() for p in parts):
        ids = tuple(dict.fromkeys(int(p) for p in parts))
        return ids[0] if len(ids) == 1 else ids
    if len(parts) > 1:
        raise ValueError(f"a list of categories is integer ids separated by commas, got {t!r}")
    return t


def category_label(spec: CategorySpec) -> str:
    """spec as a --category value."""
    return ",".join(map(str, spec)) if isinstance(spec, tuple) else str(spec)


def select_categories(categories: list[Any], spec: CategorySpec, file: str | None = None,
                      skeleton: Any = None) -> list[int]:
    """Indices into `categories` (raw COCO dicts) of the keypoint categories spec selects. Several
    must list the same keypoints in the same order (they share one skeleton and one label file);
    "all" takes every keypoint category whose keypoint list the skeleton matches (all keypoint
    categories without a skeleton). Raises InputError located at the categories."""
    from .skeleton import normalize_name

    kcats = [i for i, c in enumerate(categories) if isinstance(c, dict) and isinstance(c.get("keypoints"), list)
             and c["keypoints"]]
    listing = [(categories[i].get("id"), categories[i].get("name")) for i in kcats][:12]
    more = f" and {len(kcats) - 12} more" if len(kcats) > 12 else ""
    if spec is None:
        if len(kcats) != 1:
            raise InputError(f"expected exactly one category with keypoints, found {len(kcats)} ({listing}{more}); "
                             "choose one with --category ID, several with --category ID,ID,... or every category "
                             "whose keypoints match the skeleton with --category all", file=file, where="categories")
        return kcats
    if spec == ALL:
        chosen = kcats
        if skeleton is not None:
            from .errors import SkeletonError

            def fits(i: int) -> bool:
                try:
                    skeleton.source_index([str(k) for k in categories[i]["keypoints"]])
                except SkeletonError:
                    return False
                return True

            chosen = [i for i in kcats if fits(i)]
        if not chosen:
            raise InputError(f"--category all: no keypoint category matches skeleton "
                             f"{getattr(skeleton, 'name', '')!r} (keypoint categories: {listing}{more})", file=file,
                             where="categories")
    elif isinstance(spec, str):
        chosen = [i for i in kcats if normalize_name(str(categories[i].get("name", ""))) == normalize_name(spec)]
        if len(chosen) != 1:
            raise InputError(f"{'no' if not chosen else len(chosen)} keypoint categories named {spec!r} (keypoint "
                             f"categories: {listing}{more}); give the category id", file=file, where="categories")
    else:
        chosen = []
        for cid in (spec,) if isinstance(spec, int) else spec:
            at = [i for i, c in enumerate(categories) if isinstance(c, dict) and c.get("id") == cid
                  and not isinstance(c.get("id"), bool)]
            if not at:
                raise InputError(f"no category with id {cid}; keypoint categories: {listing}{more}", file=file,
                                 where="categories")
            if at[0] not in kcats:
                raise InputError(f"category {cid} has no keypoints", file=file, where=f"categories[{at[0]}]")
            chosen.append(at[0])
    first = [normalize_name(str(k)) for k in categories[chosen[0]]["keypoints"]]
    for i in chosen[1:]:
        if [normalize_name(str(k)) for k in categories[i]["keypoints"]] != first:
            raise InputError(f"categories {categories[chosen[0]].get('id')} and {categories[i].get('id')} list different "
                             "keypoints (or in another order); several categories share one label file only with one "
                             "keypoint list: choose them with --category ID,ID", file=file, where=f"categories[{i}]")
    return chosen


def keypoint_category(data: Any, category_id: int | None = None, file: str | None = None) -> dict[str, Any]:
    """The chosen keypoint category of raw COCO JSON (the only one with keypoints when not given)."""
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
        raise InputError("expected a COCO object with a 'categories' list", file=file, where="categories")
    cats = [(i, c) for i, c in enumerate(data["categories"]) if isinstance(c, dict)]
    kcats = [(i, c) for i, c in cats if isinstance(c.get("keypoints"), list) and c["keypoints"]]
    if category_id is not None:
        for i, c in cats:
            if c.get("id") == category_id:
                if not (isinstance(c.get("keypoints"), list) and c["keypoints"]):
                    raise InputError(f"category {category_id} has no keypoints", file=file, where=f"categories[{i}]")
                return c
        raise InputError(f"no category with id {category_id}; keypoint categories: {[c.get('id') for _, c in kcats]}",
                         file=file, where="categories")
    if len(kcats) != 1:
        raise InputError(
            f"expected exactly one category with keypoints, found {len(kcats)} "
            f"({[c.get('id') for _, c in kcats]}); choose one with --category", file=file, where="categories")
    return kcats[0][1]


def _edges(v: Any) -> list[list[int]]:
    """A category's 1-based edges that are pairs of integers. posedata never uses them (limbs come
    from the skeleton file), so malformed ones are left out rather than refusing the file;
    validate warns about them (V040)."""
    if not isinstance(v, list):
        return []
    return [list(e) for e in v if isinstance(e, list) and len(e) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in e)]


def _as_int_id(v: Any, where: str, file: str | None) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v  # float(v) would overflow for a 400-digit id
    if not isinstance(v, float) or not v.is_integer():
        raise InputError(f"expected an integer id, got {v!r}", file=file, where=where)
    return int(v)


def from_coco(data: Any, file: str | None = None) -> Dataset:
    """Build a Dataset from parsed COCO JSON. Assumes it passed validate's structure checks, but
    still raises InputError (never KeyError/TypeError) on anything it cannot represent."""
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object at the top level, got {type(data).__name__}", file=file)
    ds = Dataset(info=data.get("info") or {}, licenses=data.get("licenses") or [], file=file)
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise InputError(f"expected a list under {key!r}", file=file, where=key)
    where: str | None = None
    try:
        for _i, where, c in objects(data["categories"], "categories", file):
            extra = {k: v for k, v in c.items() if k not in ("id", "name", "keypoints", "skeleton", "supercategory")}
            ds.categories.append(Category(
                id=_as_int_id(c.get("id"), f"{where}.id", file), name=str(c.get("name", "")),
                keypoints=[str(k) for k in (c.get("keypoints") or [])],
                skeleton=_edges(c.get("skeleton")),
                supercategory=str(c.get("supercategory", "")), extra=extra))
        for _i, where, im in objects(data["images"], "images", file):
            extra = {k: v for k, v in im.items() if k not in ("id", "file_name", "width", "height")}
            ds.images.append(Image(
                id=_as_int_id(im.get("id"), f"{where}.id", file), file_name=str(im.get("file_name", "")),
                width=_as_int_id(im.get("width"), f"{where}.width", file),
                height=_as_int_id(im.get("height"), f"{where}.height", file), extra=extra))
        skip = ("id", "image_id", "category_id", "keypoints", "bbox", "area", "iscrowd", "segmentation", "num_keypoints")
        for _i, where, a in objects(data["annotations"], "annotations", file):
            kp = a.get("keypoints")
            kparr = None
            if kp is not None:
                if not isinstance(kp, list) or len(kp) % 3:
                    raise InputError("keypoints must be a list of x, y, v triples", file=file, where=f"{where}.keypoints")
                kparr = np.asarray(kp, dtype=np.float64).reshape(-1, 3)
            bbox = a.get("bbox")
            ds.annotations.append(Annotation(
                id=_as_int_id(a.get("id"), f"{where}.id", file),
                image_id=_as_int_id(a.get("image_id"), f"{where}.image_id", file),
                category_id=_as_int_id(a.get("category_id"), f"{where}.category_id", file),
                keypoints=kparr,
                bbox=tuple(float(v) for v in bbox) if isinstance(bbox, list) and len(bbox) == 4 else None,  # type: ignore[arg-type]
                area=float(a["area"]) if isinstance(a.get("area"), (int, float)) else None,
                iscrowd=bool(a.get("iscrowd", False)),
                segmentation=a.get("segmentation"),
                num_keypoints=int(a["num_keypoints"]) if isinstance(a.get("num_keypoints"), (int, float)) else None,
                extra={k: v for k, v in a.items() if k not in skip}))
    except (TypeError, ValueError, OverflowError) as e:  # OverflowError: a 400-digit number as a float
        raise InputError(f"cannot read COCO data: {e}", file=file, where=where) from None
    return ds


def objects(items: list, key: str, file: str | None) -> Iterator[tuple[int, str, dict]]:
    """(index, JSON path, record) of a COCO list (`images`, `annotations`, `categories`); a
    record that is not an object is an InputError at its path."""
    for i, x in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(x, dict):
            raise InputError("expected an object", file=file, where=where)
        yield i, where, x


def load(path: str | Path) -> Dataset:
    """Read a COCO keypoint JSON file into a Dataset."""
    return from_coco(load_json(path), file=str(path))
