"""`posedata validate`: every check of a COCO keypoint file, each with a stable code and a location.

validate_coco() works on the raw parsed JSON, never on the typed model, because it must report what
a typed model cannot hold (wrong types, NaN, dangling references). It never raises on any JSON
value: every problem is a Finding. Keypoint checks are vectorised: all well-formed keypoint arrays of
a category are stacked into one (N, K, 3) array.

This module holds the code table, the record-by-record checks and the image files; the vectorised
keypoint checks are posedata/validate_keypoints.py, the shared thresholds and value readers
posedata/validate_rules.py. It only checks; the repairs of `validate --fix` live in posedata/fix.py. See
docs/checks.md for what each code means and how to fix it.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import columns
from .cocojson import keypoint_lists
from .columns import EXACT, MISSING, ImageRows, column, float_column, int_column, number_rows, screen_images, typed_rows
from .errors import InputError, SkeletonError
from .findings import Finding, FindingReport
from .images import image_header, too_large
from .io import load_json, paused_gc, safe_image_path
from .skeleton import Skeleton, normalize_name
from .validate_keypoints import KeypointChecks
from .validate_rules import I64, _as_id, _Cat, _finite, _is_num, _names, _short, _type_name, _usable_segmentation

# code -> (severity, short title). Codes are stable: never renumber, only add.
CHECKS: dict[str, tuple[str, str]] = {
    "V001": ("error", "top-level structure: not an object, or images/annotations/categories missing or not a list"),
    "V002": ("error", "record is not a JSON object"),
    "V003": ("error", "required field missing"),
    "V004": ("error", "field has the wrong type or value"),
    "V005": ("error", "duplicate image id"),
    "V006": ("error", "duplicate annotation id"),
    "V007": ("error", "duplicate category id"),
    "V008": ("error", "image_id matches no image"),
    "V009": ("error", "category_id matches no category"),
    "V010": ("error", "no usable keypoint category"),
    "V011": ("warning", "optional top-level field (info, licenses) has the wrong type"),
    "V012": ("warning", "iscrowd missing (read as 0)"),
    "V020": ("error", "category keypoint names do not match the skeleton"),
    "V021": ("error", "keypoints missing, not a list, or length not 3*K"),
    "V022": ("error", "keypoint value not a finite number"),
    "V023": ("error", "visibility not 0, 1 or 2"),
    "V024": ("warning", "v=0 with non-zero x, y"),
    "V025": ("warning", "labelled keypoint outside the image"),
    "V026": ("error", "num_keypoints missing or not the count of v>0"),
    "V027": ("info", "dataset keypoints the skeleton does not use"),
    "V030": ("error", "bbox missing or not 4 finite numbers"),
    "V031": ("error", "bbox width or height not positive"),
    "V032": ("warning", "bbox extends outside the image"),
    "V033": ("warning", "labelled keypoint far outside its bbox"),
    "V034": ("error", "area missing, not a number, or not positive"),
    "V035": ("error", "crowd annotation without a usable segmentation"),
    "V036": ("error", "crowd segmentation does not fit its image or cannot be decoded"),
    "V040": ("warning", "category skeleton edge malformed or out of range"),
    "V041": ("error", "duplicate file_name"),
    "V042": ("error", "image width/height not a positive integer"),
    "V050": ("error", "image file missing"),
    "V051": ("error", "image path escapes the images folder"),
    "V052": ("error", "image unreadable or corrupt"),
    "V053": ("error", "image size differs from width/height"),
    "V054": ("warning", "image file looks truncated"),
    "V060": ("error", "keypoint type never labelled"),
    "V061": ("info", "person with fewer labelled keypoints than convert's default minimum (never a training sample)"),
    "V062": ("info", "person with area under 32*32 (never a training sample)"),
    "V063": ("info", "non-crowd instance with no labelled keypoints (ignored, not masked)"),
    "V064": ("info", "image with no person (dropped from training)"),
    "V070": ("warning", "suspected left/right swap"),
    "V099": ("error", "internal error while checking (please report)"),
}

# ------------------------------------------------------------------ validate
@dataclass
class Validated:
    """What validate read of the annotations, kept for convert (to_labels(validated=...)) so the
    150k annotation dicts of a COCO-train-sized file are read and their keypoints stacked once.
    Rows are annotation indices; the arrays hold the values of the rows the column screen passed
    (`clean`: exact-int ids, found image and category, iscrowd 0, and for a keypoint category a
    usable bbox, area, num_keypoints and 3K numbers); other rows' entries mean nothing."""

    anns: list | None = None  # the annotations list validated (to_labels reuses nothing for another)
    clean: np.ndarray | None = None  # (n,) bool
    ids: np.ndarray | None = None  # (n,) int64 annotation ids
    image_ids: np.ndarray | None = None  # (n,) int64
    category_ids: np.ndarray | None = None  # (n,) int64
    bbox: np.ndarray | None = None  # (n, 4) float64
    area: np.ndarray | None = None  # (n,) float64
    num_keypoints: np.ndarray | None = None  # (n,) float64
    keypoints: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # cat id -> (rows, (N, K, 3))


def validate_coco(data: Any, skeleton: Skeleton, file: str | None = None, images: Path | None = None,
                  category_id: int | tuple[int, ...] | str | None = None, *,
                  progress: Callable[[int, int], None] | None = None, keep: Validated | None = None,
                  per_code: int | None = None) -> list[Finding]:
    """Check parsed COCO keypoint JSON against a skeleton; returns every finding, never raises.

    images: the images folder; when given, every image file is located and its header read.
    category_id: the keypoint category to check, several ids, or "all" (the categories whose keypoint
    list the skeleton matches); default: every category that has keypoints.
    progress: called as progress(done, total) while image files are read.
    keep: filled with the annotation columns read (see Validated), for to_labels to reuse.
    per_code: build only the first per_code findings of each code and count the others; the result
    is then a SampledFindings (its `counts` has every code's total). `posedata convert` prints
    counts and three findings per code, and building the ~75,000 findings of a COCO-train-sized
    file (most of them V070) was a quarter of validate's time there (bench/README.md, "convert").
    """
    rep = FindingReport(CHECKS, file, per_code)
    try:
        with paused_gc():
            _Validator(rep, skeleton, images, category_id, progress, keep).run(data)
    except Exception as e:  # noqa: BLE001 - the contract is "never raise"; tests assert V099 never appears
        rep.add("V099", "(top level)", f"{type(e).__name__}: {e}")
        if keep is not None:
            keep.anns = None  # half-read: nothing to reuse
    return rep.result()




def validate_file(path: str | os.PathLike, skeleton: Skeleton | str | os.PathLike, images: Path | None = None,
                  category_id: int | tuple[int, ...] | str | None = None, *,
                  progress: Callable[[int, int], None] | None = None) -> tuple[Any, list[Finding]]:
    """Load a JSON file (InputError when unreadable) and validate it; returns (data, findings)."""
    if not isinstance(skeleton, Skeleton):
        from .skeleton import resolve

        skeleton = resolve(skeleton)
    try:
        with paused_gc():
            data = load_json(path)
    except ValueError as e:  # e.g. an integer literal beyond Python's digit limit
        raise InputError(f"invalid JSON: {e}", file=str(path)) from None
    return data, validate_coco(data, skeleton, file=str(path), images=images, category_id=category_id,
                               progress=progress)


def _dict_subclasses(items: list) -> bool:
    """Whether any item is an instance of a dict subclass (never parsed JSON; checked row by row)."""
    return any(t is not dict and issubclass(t, dict) for t in set(map(type, items)))


class _Validator(KeypointChecks):
    def __init__(self, rep: FindingReport, sk: Skeleton, images: Path | None, category_id: int | tuple[int, ...] | str | None,
                 progress: Callable[[int, int], None] | None, keep: Validated | None = None) -> None:
        self.rep = rep
        self.keep = keep
        self.sk = sk
        self.images_root = images
        self.category_id = category_id
        self.progress = progress
        self.add = rep.add
        self.cats: list[_Cat] = []
        self.image_rows: ImageRows | None = None
        self.numbers: columns.NumberRows | None = None  # the annotations' parsed keypoints (cocojson)

    # ---------------------------------------------------------------- run
    def run(self, data: Any) -> None:
        if not isinstance(data, dict):
            self.add("V001", "(top level)", f"expected a JSON object with images, annotations and categories; got {_type_name(data)}")
            return
        lists = {}
        for key in ("images", "annotations", "categories"):
            if key not in data:
                self.add("V001", key, "required top-level key missing")
            elif not isinstance(data[key], list):
                self.add("V001", key, f"expected a list, got {_type_name(data[key])}")
            else:
                lists[key] = data[key]
        if "info" in data and not isinstance(data["info"], dict):
            self.add("V011", "info", f"expected an object, got {_type_name(data['info'])}")
        if "licenses" in data and not isinstance(data["licenses"], list):
            self.add("V011", "licenses", f"expected a list, got {_type_name(data['licenses'])}")

        self.image_rows = self._images(lists["images"]) if "images" in lists else None
        cats = self._categories(lists["categories"]) if "categories" in lists else None
        if "annotations" in lists:
            self._annotations(lists["annotations"], cats)
        if self.images_root is not None and "images" in lists:
            self._image_files(lists["images"])

    def _id(self, rec: dict, key: str, where: str, missing: str, **ids: Any) -> int | None:
        """rec[key] as an integer id, or None after a V003 (missing) or V004 (not an integer)."""
        if key not in rec:
            self.add("V003", f"{where}.{key}", missing, **ids)
            return None
        v = _as_id(rec[key])
        if v is None:
            self.add("V004", f"{where}.{key}", f"expected an integer id, got {_short(rec[key])}", **ids)
        return v

    # ------------------------------------------------------------- images
    def _images(self, imgs: list) -> ImageRows:
        """image id -> (index, width, height); width/height NaN when unusable."""
        n = len(imgs)
        self._first_image: dict[Any, int] = {}
        self._first_name: dict[str, int] = {}
        found: list[tuple[int, int, float, float]] = []  # (index, id, width, height) of each id's first image
        clean = np.zeros(n, dtype=bool)
        ids, wh = np.zeros(n, dtype=np.int64), np.zeros((n, 2))
        if self.screen and not _dict_subclasses(imgs):
            clean, ids, wh, self._first_image, self._first_name = screen_images(imgs, _as_id)
        for i in np.flatnonzero(~clean).tolist():
            self._image_row(i, imgs[i], found)
        self._first_image, self._first_name = {}, {}  # the row-by-row images' look-ups, done
        rows = np.flatnonzero(clean)
        return ImageRows.merged(rows, ids[rows], wh[rows], found)

    def _image_row(self, i: int, im: Any, found: list[tuple[int, int, float, float]]) -> None:
        """Every check of one image, one by one (the images the column screen does not pass)."""
        where = f"images[{i}]"
        if not isinstance(im, dict):
            self.add("V002", where, f"expected an image object, got {_type_name(im)}")
            return
        iid = self._id(im, "id", where, "image id missing")
        fn = im.get("file_name")
        if "file_name" not in im:
            self.add("V003", f"{where}.file_name", "file_name missing", image_id=iid)
        elif not isinstance(fn, str) or not fn:
            self.add("V004", f"{where}.file_name", f"expected a non-empty string, got {_short(fn)}", image_id=iid)
        elif (first := self._first_name.setdefault(fn, i)) != i:
            self.add("V041", f"{where}.file_name",
                     f"file_name {_short(fn)} already used by images[{first}]; the same picture as two "
                     "records splits its people, so each record teaches 'no person' where the other's people are",
                     image_id=iid)
        size = []
        for key in ("width", "height"):
            v = im.get(key)
            if key not in im:
                self.add("V003", f"{where}.{key}", f"{key} missing", image_id=iid)
                size.append(math.nan)
            elif _finite(v) is None:
                self.add("V004", f"{where}.{key}", f"expected a positive number, got {_short(v)}", image_id=iid)
                size.append(math.nan)
            elif v <= 0 or v != int(v):
                # a pixel count: readers (coco.from_coco, the label file) need a positive integer
                self.add("V042", f"{where}.{key}", f"{key} is {_short(v)}; must be a positive integer",
                         image_id=iid)
                size.append(math.nan)
            else:
                size.append(float(v))
        if iid is not None:
            if (first := self._first_image.setdefault(iid, i)) != i:
                self.add("V005", f"{where}.id", f"image id {iid} already used by images[{first}]", image_id=iid)
            else:
                found.append((i, iid, size[0], size[1]))

    # --------------------------------------------------------- categories
    def _categories(self, cats: list) -> dict[int, _Cat | None]:
        """category id -> _Cat for the keypoint categories checked, None for the others."""
        out: dict[int, _Cat | None] = {}
        seen: dict[int, int] = {}
        kp_cats: list[tuple[int, int, Any]] = []
        for i, c in enumerate(cats):
            where = f"categories[{i}]"
            if not isinstance(c, dict):
                self.add("V002", where, f"expected a category object, got {_type_name(c)}")
                continue
            cid = self._id(c, "id", where, "category id missing")
            if "name" not in c:
                self.add("V003", f"{where}.name", "category name missing")
            elif not isinstance(c["name"], str):
                self.add("V004", f"{where}.name", f"expected a string, got {_short(c['name'])}")
            if cid is None:
                continue
            if cid in seen:
                self.add("V007", f"{where}.id", f"category id {cid} already used by categories[{seen[cid]}]")
                continue
            seen[cid] = i
            out[cid] = None
            kps = c.get("keypoints")
            if kps is None or kps == []:
                continue
            if not isinstance(kps, list) or not all(isinstance(k, str) for k in kps):
                self.add("V004", f"{where}.keypoints", f"expected a list of keypoint names, got {_short(kps)}")
                continue
            kp_cats.append((i, cid, c))

        chosen = kp_cats
        wanted = self.category_id
        if wanted == "all":  # the categories this skeleton can read; the others are not its data
            chosen = [t for t in kp_cats if self._fits(t[2])]
            if not chosen:
                self.add("V010", "categories", f"no keypoint category matches skeleton {self.sk.name!r}; keypoint "
                         f"categories: {[t[1] for t in kp_cats][:12]}")
        elif isinstance(wanted, str):
            chosen = [t for t in kp_cats if normalize_name(str(t[2].get("name", ""))) == normalize_name(wanted)]
            if not chosen:
                self.add("V010", "categories", f"no keypoint category named {wanted!r}; keypoint categories: "
                         f"{[t[1] for t in kp_cats][:12]}")
        elif wanted is not None:
            ids = (wanted,) if isinstance(wanted, int) else tuple(wanted)
            chosen = [t for t in kp_cats if t[1] in ids]
            for cid in ids:
                if not any(t[1] == cid for t in chosen):
                    self.add("V010", "categories",
                             f"category {cid} {'has no keypoints' if cid in out else 'does not exist'}; "
                             f"keypoint categories: {[t[1] for t in kp_cats][:12]}")
        elif not kp_cats:
            self.add("V010", "categories",
                     "no category has a non-empty keypoints list; this is not a keypoint dataset (or the keypoint "
                     "category is malformed)")
        for i, cid, c in chosen:
            out[cid] = self._keypoint_category(i, cid, c, several=len(chosen) > 1)
        return out

    def _keypoint_category(self, i: int, cid: int, c: dict, several: bool) -> _Cat:
        """A chosen keypoint category: its names matched to the skeleton, its edges checked."""
        cat = _Cat(i, cid, list(c["keypoints"]))
        self.cats.append(cat)
        where = f"categories[{i}]"
        seen_names: dict[str, int] = {}
        dups = []
        for j, nm in enumerate(cat.names):
            key = normalize_name(nm)
            if key in seen_names:
                dups.append(f"{nm!r} at keypoints[{j}] (= keypoints[{seen_names[key]}])")
            seen_names.setdefault(key, j)
        if dups:
            self.add("V020", f"{where}.keypoints", f"duplicate keypoint name(s) make matching by name ambiguous: "
                     f"{_names(dups, 3)}")
            return cat
        try:
            cat.src = self.sk.source_index(cat.names)
        except SkeletonError as e:
            self.add("V020", f"{where}.keypoints",
                     f"{e.message}; fix the names or add a `source` mapping to skeleton {self.sk.name!r}"
                     + ("; choose one category with --category" if several else ""))
        if cat.src is not None:
            used = set(int(j) for j in cat.src if j >= 0)
            unused = [n for j, n in enumerate(cat.names) if j not in used]
            if unused:
                self.add("V027", f"{where}.keypoints",
                         f"{len(unused)} dataset keypoint(s) not in skeleton {self.sk.name!r} are ignored: {_names(unused)}")
        self._category_skeleton(c, where, cat.k)
        return cat

    def _fits(self, c: dict) -> bool:
        try:
            self.sk.source_index([str(k) for k in c["keypoints"]])
        except SkeletonError:
            return False
        return True

    def _category_skeleton(self, c: dict, where: str, k: int) -> None:
        edges = c.get("skeleton")
        if edges is None:
            return
        if not isinstance(edges, list):
            self.add("V040", f"{where}.skeleton", f"expected a list of 1-based [a, b] pairs, got {_short(edges)}")
            return
        for j, e in enumerate(edges):
            ok = isinstance(e, list) and len(e) == 2 and all(_as_id(x) is not None for x in e)
            if not ok:
                self.add("V040", f"{where}.skeleton[{j}]", f"expected a 1-based [a, b] pair, got {_short(e)}")
            elif not all(1 <= _as_id(x) <= k for x in e):  # type: ignore[operator]
                self.add("V040", f"{where}.skeleton[{j}]",
                         f"edge {[_short(x) for x in e]} out of range 1..{k} (COCO skeleton edges are 1-based)")

    # -------------------------------------------------------- annotations
    # Rows the column screen (_screen) passes are checked column-wise; False checks every row one by
    # one (_annotation_row), as validate did before: the findings are the same either way (tests
    # compare the two on random and hostile JSON), only the time differs.
    screen = True

    def _annotations(self, anns: list, cats: dict[int, _Cat | None] | None) -> None:
        n = len(anns)
        self.wh = np.full((n, 2), np.nan)
        self.bbox = np.full((n, 4), np.nan)
        self.area = np.full(n, np.nan)
        self.nkp = np.full(n, np.nan)  # num_keypoints as given (NaN: missing or wrong type)
        self._wh_acc: tuple[list, list] = ([], [])
        self._bbox_acc: tuple[list, list] = ([], [])
        self._area_acc: tuple[list, list] = ([], [])
        self._nkp_acc: tuple[list, list] = ([], [])
        self.person_images: set[int] = set()
        self._first_id: dict[int, int] = {}  # the first row of each id, as rows are checked
        self._first_of: np.ndarray | None = None  # or every row's first row with its id, found by _screen
        kp_cats = {cid: c for cid, c in (cats or {}).items() if c is not None}
        # cocojson's typed parse: keypoints as one parsed column, each record's as its JSON text
        self.numbers = anns.keypoints if type(anns) is columns.TypedRecords else None
        if type(anns) is columns.TypedRecords and self.numbers is None:
            keypoint_lists(anns, range(n))  # the column was released: the records' text read one by one
        # a dict subclass (never parsed JSON) is read by the row-by-row checks alone, with every row
        if self.screen and not _dict_subclasses(anns):
            clean = self._screen(anns, cats, kp_cats)
        else:
            clean = np.zeros(n, dtype=bool)
            self.ann_id = [None] * n
            self.ann_img = [None] * n
        todo = np.flatnonzero(~clean).tolist()
        if self.numbers is not None:
            keypoint_lists(anns, todo)  # the rows checked one by one read their keypoints as lists
        for i in todo:
            self._annotation_row(i, anns[i], cats, kp_cats)
        # per-row numpy writes cost more than the checks; fill the arrays in one go
        for arr, (rows, vals) in ((self.wh, self._wh_acc), (self.bbox, self._bbox_acc), (self.area, self._area_acc),
                                  (self.nkp, self._nkp_acc)):
            if rows:
                arr[np.asarray(rows)] = np.asarray(vals, dtype=np.float64)
        for cat in self.cats:
            if cat.screened is not None:  # screened rows and row-by-row ones, in file order
                mask = cat.screened
                mask[cat.rows] = True
                cat.rows = np.flatnonzero(mask).tolist()
                # with the parsed column, _stack reads the rows from it
                cat.kps = [anns[i]["keypoints"] for i in cat.rows] if self.numbers is None else []
                cat.screened = None
        self._vector_checks(anns)
        self._images_without_person()

    def _screen(self, anns: list, cats: dict[int, _Cat | None] | None, kp_cats: dict[int, _Cat]) -> np.ndarray:
        """The rows _annotation_row would pass without a finding, found column by column (see
        posedata/columns.py), with their values written where _annotation_row writes them; it
        also sets ann_id, ann_img and the first row of every annotation id for all rows."""
        n = len(anns)
        recs, clean = columns.dict_records(anns)
        ids: dict[str, list] = {}
        arrays: dict[str, np.ndarray] = {}
        exact: dict[str, np.ndarray] = {}
        for key in ("id", "image_id", "category_id"):
            values = column(recs, key)
            arrays[key], exact[key] = int_column(values, -I64, I64)
            clean &= exact[key]
            # every row's id as _id reads it (None: missing or not an integer id), clean or not
            ids[key] = values if exact[key].all() else [None if v is MISSING else _as_id(v) for v in values]
        self.ann_id, self.ann_img, cids = ids["id"], ids["image_id"], ids["category_id"]
        # the first row of each id; a later row with the same id is a duplicate (V006). With every
        # id an exact int, sorted arrays: a dict of 150k-300k ids cost 2.3x the time for 2x the
        # rows (cache misses over a larger heap), np.unique ~10 ms
        if exact["id"].all():
            _, first, inverse = np.unique(arrays["id"], return_index=True, return_inverse=True)
            self._first_of = first[inverse.reshape(-1)]
            clean &= self._first_of == np.arange(n)
        else:
            order = range(n - 1, -1, -1)
            self._first_id = dict(zip(map(self.ann_id.__getitem__, order), order))
            clean &= np.fromiter(map(self._first_id.__getitem__, self.ann_id), dtype=np.int64, count=n) == np.arange(n)
        img_rows = self.image_rows
        if img_rows is not None:
            # the image of each row by binary search over the image ids (all exact ints in int64,
            # as _as_id read them), not a dict look-up per row; rows without an exact-int
            # image_id are not clean already
            m = len(img_rows)
            keys, table = img_rows.by_id()
            at = np.searchsorted(keys, arrays["image_id"]).clip(max=max(m - 1, 0))
            clean &= (keys[at] == arrays["image_id"]) if m else False
        if cats is not None:
            clean &= np.fromiter(map(cats.__contains__, cids), dtype=bool, count=n)
            is_kp = clean & np.fromiter(map(kp_cats.__contains__, cids), dtype=bool, count=n)
        else:
            is_kp = np.zeros(n, dtype=bool)
        kp_rows = np.flatnonzero(is_kp)
        if len(kp_rows):
            # no Python int per row (kp_rows.tolist() was 300k of them, ~10 MB, twice)
            sub = recs if len(kp_rows) == n else np.fromiter(recs, dtype=object, count=n)[kp_rows].tolist()
            crowd, ok = int_column(column(sub, "iscrowd"), 0, 1)  # 0 only: crowd rows check their segmentation
            good = ok
            # the typed parse checked these types already (columns.TypedRecords)
            typed = type(anns) is columns.TypedRecords
            box, ok = number_rows(column(sub, "bbox"), 4, typed)
            good &= ok
            area, ok = float_column(column(sub, "area"))
            good &= ok & (area > 0)
            nk, ok = int_column(column(sub, "num_keypoints"), 1 - EXACT, EXACT)
            good &= ok
            sub_cids = arrays["category_id"][kp_rows]  # exact ints on every clean row
            good &= self._keypoint_shapes(sub, kp_rows, sub_cids, kp_cats, typed)
            clean[kp_rows[~good]] = False
            rows = kp_rows[good]
            self.bbox[rows] = box[good]
            self.area[rows] = area[good]
            self.nkp[rows] = nk[good]
            for cid, cat in kp_cats.items():
                cat.screened = np.zeros(n, dtype=bool)
                cat.screened[rows[sub_cids[good] == cid]] = True
        if img_rows is not None:
            rows = np.flatnonzero(clean)
            self.wh[rows] = table[at[rows]]
        if self.keep is not None:
            k = self.keep
            k.anns, k.clean, k.ids, k.image_ids, k.category_ids = anns, clean, arrays["id"], arrays["image_id"], \
                arrays["category_id"]
            k.bbox, k.area, k.num_keypoints = self.bbox, self.area, self.nkp
        return clean

    def _keypoint_shapes(self, sub: list, kp_rows: np.ndarray, sub_cids: np.ndarray, kp_cats: dict[int, _Cat],
                         typed: bool) -> np.ndarray:
        """Mask of the rows `kp_rows` (records `sub`, categories `sub_cids`) whose keypoints are
        3K numbers for their category."""
        numbers = self.numbers
        kps = column(sub, "keypoints") if numbers is None else None
        good = np.ones(len(kp_rows), dtype=bool)
        for cid, cat in kp_cats.items():
            mine = np.flatnonzero(sub_cids == cid)
            if len(mine):
                if numbers is not None:  # numbers only (the parse checked): the lengths decide
                    good[mine] = numbers.length[kp_rows[mine]] == 3 * cat.k
                else:
                    good[mine] = typed_rows([kps[j] for j in mine.tolist()], 3 * cat.k, typed)
        return good

    def _annotation_row(self, i: int, a: Any, cats: dict[int, _Cat | None] | None, kp_cats: dict[int, _Cat]) -> None:
        """Every check of one annotation, one by one (the rows the column screen does not pass)."""
        where = f"annotations[{i}]"
        if not isinstance(a, dict):
            self.add("V002", where, f"expected an annotation object, got {_type_name(a)}")
            return
        aid = self._id(a, "id", where, "annotation id missing")
        if aid is not None:
            # the screen's array when every id is an exact int (aid is then row i's own id)
            first = int(self._first_of[i]) if self._first_of is not None else self._first_id.setdefault(aid, i)
            if first != i:
                self.add("V006", f"{where}.id", f"annotation id {aid} already used by annotations[{first}]",
                         annotation_id=aid)
        self.ann_id[i] = aid
        iid = self._id(a, "image_id", where, "image_id missing", annotation_id=aid)
        if iid is not None and self.image_rows is not None:
            row = self.image_rows.get(iid)
            if row is None:
                self.add("V008", f"{where}.image_id", f"no image has id {iid}", image_id=iid, annotation_id=aid)
            else:
                self._wh_acc[0].append(i)
                self._wh_acc[1].append(row[1:])
        self.ann_img[i] = iid
        cat = None
        cid = self._id(a, "category_id", where, "category_id missing", image_id=iid, annotation_id=aid)
        if cid is not None and cats is not None:
            if cid not in cats:
                self.add("V009", f"{where}.category_id", f"no category has id {cid}", image_id=iid,
                         annotation_id=aid)
            else:
                cat = kp_cats.get(cid)
        if cat is None:
            return  # other categories get structure checks only
        self._keypoint_annotation(i, a, where, cat, iid, aid)

    def _keypoint_annotation(self, i: int, a: dict, where: str, cat: _Cat, iid: int | None, aid: int | None) -> None:
        crowd = False
        if "iscrowd" not in a:
            self.add("V012", f"{where}.iscrowd", "iscrowd missing; read as 0 (the reference's label step reads it "
                     "directly and stops with a KeyError)", image_id=iid, annotation_id=aid)
        elif a["iscrowd"] in (0, 1) and not isinstance(a["iscrowd"], float):
            crowd = bool(a["iscrowd"])
        else:
            self.add("V004", f"{where}.iscrowd", f"expected 0 or 1, got {_short(a['iscrowd'])}", image_id=iid,
                     annotation_id=aid)
        bb = a.get("bbox")
        if "bbox" not in a:
            self.add("V030", f"{where}.bbox", "bbox missing", image_id=iid, annotation_id=aid)
        else:
            f = [_finite(x) for x in bb] if type(bb) is list and len(bb) == 4 else [None]
            if None in f:
                self.add("V030", f"{where}.bbox", f"expected [x, y, width, height] of finite numbers, got {_short(bb)}",
                         image_id=iid, annotation_id=aid)
            else:
                self._bbox_acc[0].append(i)
                self._bbox_acc[1].append(f)
        ar = a.get("area")
        if "area" not in a:
            self.add("V034", f"{where}.area", "area missing (pycocotools evaluation needs it)", image_id=iid,
                     annotation_id=aid)
        elif (far := _finite(ar)) is None or far <= 0:
            self.add("V034", f"{where}.area", f"expected a positive number, got {_short(ar)}", image_id=iid,
                     annotation_id=aid)
        else:
            self._area_acc[0].append(i)
            self._area_acc[1].append(far)
        if crowd:
            if not _usable_segmentation(a.get("segmentation")):
                self.add("V035", f"{where}.segmentation",
                         f"a crowd region needs a polygon list or an RLE {{counts, size}} for its loss mask, got "
                         f"{_short(a.get('segmentation'))}", image_id=iid, annotation_id=aid)
            else:
                self._crowd_segmentation(a["segmentation"], where, iid, aid)
            return  # crowd keypoints are never used
        nk = a.get("num_keypoints")
        if "num_keypoints" not in a:
            self.add("V026", f"{where}.num_keypoints", "num_keypoints missing (the reference selects people by it)",
                     image_id=iid, annotation_id=aid)
        elif _as_id(nk) is None or _finite(nk) is None:
            self.add("V026", f"{where}.num_keypoints", f"expected an integer, got {_short(nk)}", image_id=iid,
                     annotation_id=aid)
        else:
            self._nkp_acc[0].append(i)
            self._nkp_acc[1].append(float(nk))
        kp = a.get("keypoints")
        if "keypoints" not in a:
            self.add("V021", f"{where}.keypoints", f"keypoints missing; expected {3 * cat.k} numbers "
                     f"(x, y, v for each of {cat.k} keypoints)", image_id=iid, annotation_id=aid)
            return
        if not isinstance(kp, list) or len(kp) != 3 * cat.k:
            got = f"{len(kp)} values" if isinstance(kp, list) else _short(kp)
            self.add("V021", f"{where}.keypoints", f"expected {3 * cat.k} values (x, y, v for each of {cat.k} "
                     f"keypoints), got {got}", image_id=iid, annotation_id=aid)
            return
        if not set(map(type, kp)) <= {int, float}:
            bad = [j for j, x in enumerate(kp) if not _is_num(x)]
            if bad:
                j = bad[0]
                kn = list(dict.fromkeys(cat.names[b // 3] for b in bad))
                self.add("V022", f"{where}.keypoints[{j}]", f"expected a number, got {_short(kp[j])}; "
                         f"{len(bad)} non-number value(s), keypoint(s) {_names(kn)}", image_id=iid, annotation_id=aid)
                return
        cat.rows.append(i)
        cat.kps.append(kp)

    # ---------------------------------------------------- vectorised checks
    def _crowd_segmentation(self, seg: Any, where: str, iid: int | None, aid: int | None) -> None:
        """V036: the trainer decodes a crowd segmentation into its image's loss mask; one whose RLE
        size is not the image's, or that does not decode, would stop training mid-run."""
        row = self.image_rows.get(iid) if self.image_rows is not None and iid is not None else None
        if row is None or not (np.isfinite(row[1]) and np.isfinite(row[2])):
            return  # no usable image size: V008 / V042 already say so
        from .targets import segmentation_problem

        problem = segmentation_problem(seg, int(row[2]), int(row[1]))
        if problem is not None:
            self.add("V036", f"{where}.segmentation",
                     f"{problem} (COCO RLE sizes are [height, width]); the trainer turns it into the loss mask "
                     f"of images[{row[0]}] and would stop there", image_id=iid, annotation_id=aid)

    # ------------------------------------------------------------ image files
    def _image_files(self, imgs: list) -> None:
        root = Path(self.images_root)  # type: ignore[arg-type]
        if not root.is_dir():
            self.add("V050", "images", f"images folder {str(root)!r} does not exist or is not a folder")
            return
        todo = []
        for i, im in enumerate(imgs):
            if isinstance(im, dict) and isinstance(im.get("file_name"), str) and im["file_name"]:
                todo.append((i, im))
        total = len(todo)
        for n, (i, im) in enumerate(todo):
            if self.progress is not None and n % 64 == 0:
                self.progress(n, total)
            self._image_file(root, i, im)
        if self.progress is not None:
            self.progress(total, total)

    def _image_file(self, root: Path, i: int, im: dict) -> None:
        where = f"images[{i}].file_name"
        fn = im["file_name"]
        iid = _as_id(im.get("id"))
        try:
            p = safe_image_path(root, fn)
        except (InputError, OSError, ValueError) as e:
            self.add("V051", where, getattr(e, "message", str(e)), image_id=iid)
            return
        if not p.is_file():
            self.add("V050", where, f"{fn!r} not found under {str(root)!r}", image_id=iid)
            return
        try:
            info = image_header(p)
        except (InputError, OSError) as e:
            self.add("V052", where, f"{fn!r}: {getattr(e, 'message', None) or e}", image_id=iid)
            return
        big = too_large(info)
        if big is not None:
            self.add("V052", where, f"{fn!r}: {big}", image_id=iid)
            return
        if info.truncated:
            self.add("V054", where, f"{fn!r} has no end marker; the file was probably cut short and decodes "
                     "with grey or garbage rows", image_id=iid)
        w, h = _finite(im.get("width")), _finite(im.get("height"))
        if w is None or h is None:
            return
        if (w, h) != (info.width, info.height):
            note = ""
            if info.orientation >= 5 and (w, h) == (info.stored_width, info.stored_height):
                note = (f"; the file's pixels are {info.stored_width}x{info.stored_height} but its EXIF orientation "
                        f"{info.orientation} makes OpenCV load it rotated, so the labels would not line up")
            self.add("V053", where, f"{fn!r} is {info.width}x{info.height} as loaded, the JSON says {w:g}x{h:g}{note}",
                     image_id=iid)


# ------------------------------------------------------------------ summaries
def counts(findings: Iterable[Finding]) -> dict[str, Any]:
    """{"error": n, "warning": n, "info": n, "by_code": {code: n}}."""
    findings = list(findings)
    sev = Counter(f.severity for f in findings)
    return {"error": sev.get("error", 0), "warning": sev.get("warning", 0), "info": sev.get("info", 0),
            "by_code": dict(sorted(Counter(f.code for f in findings).items()))}
