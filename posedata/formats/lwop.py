"""The reference's prepared-label pickle (its prepare_train_labels output), for users who keep the
original trainer. posedata only writes this format; it never loads a pickle.

Records are built from the raw COCO dicts exactly as the reference builds them, so the pickle
is equal in structure, key order, value types and object sharing (bbox lists are the
annotation's own list, an image's crowd list is shared by its records): the same input gives
the same bytes as the reference's script on the same Python. Keypoints stay in the file's own
order (the reference reorders at training time); visibility becomes internal (COCO 2 -> 1,
1 -> 0, anything else -> 2); no clean-up is applied (the reference does that at training time).

Where the reference would crash (a missing key) this raises a located InputError instead, with
two lenient exceptions: a missing `iscrowd` counts as 0 and a missing `num_keypoints` is
recounted from v > 0 (the record then carries the recount). Persons and crowd regions are taken
from the chosen keypoint category only; for a COCO person-keypoints file (one category) that is
every annotation, as in the reference.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from ..coco import keypoint_category
from ..errors import InputError
from ..io import atomic_writer, paused_gc

NET_INPUT_SIZE = 368


def _person_keypoints(kp: list[Any]) -> list[list[Any]]:
    out = []
    for i in range(len(kp) // 3):
        v = kp[i * 3 + 2]
        out.append([kp[i * 3], kp[i * 3 + 1], 0 if v == 1 else 1 if v == 2 else 2])
    return out


def _num_keypoints(a: dict[str, Any]) -> Any:
    nk = a.get("num_keypoints")
    if nk is None:
        kp = a.get("keypoints")
        if not isinstance(kp, list):
            return 0
        return sum(1 for v in kp[2::3] if isinstance(v, (int, float)) and v > 0)
    return nk


def lwop_records(data: dict[str, Any], category_id: int | None = None, *, min_keypoints: int = 5,
                 min_area: float = 32 * 32, dedup_ratio: float = 0.3, net_input_size: int = NET_INPUT_SIZE,
                 file: str | None = None) -> list[dict[str, Any]]:
    """The list of dicts the reference's label script pickles for this COCO JSON."""
    with paused_gc():
        return _records(data, category_id, min_keypoints, min_area, dedup_ratio, net_input_size, file)


def _records(data: dict[str, Any], category_id: int | None, min_keypoints: int, min_area: float,
             dedup_ratio: float, net_input_size: int, file: str | None) -> list[dict[str, Any]]:
    cat = keypoint_category(data, category_id, file=file)
    anns = data.get("annotations")
    if not isinstance(anns, list) or not isinstance(data.get("images"), list):
        raise InputError("expected lists under 'images' and 'annotations'", file=file)
    fields = _Fields(file)
    per_image = _persons_per_image(anns, cat.get("id"), fields)
    images_info: dict[Any, dict[str, Any]] = {}
    for j, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im or isinstance(im["id"], (list, dict)):
            raise InputError("expected an image object with an id", file=file, where=f"images[{j}]")
        images_info[im["id"]] = im
    records: list[dict[str, Any]] = []
    for persons, segmentations in per_image.values():
        records += _image_records(persons, segmentations, images_info, fields, min_keypoints, min_area, dedup_ratio,
                                  net_input_size)
    return records


class _Fields:
    """An annotation's fields, checked as the reference reads them and located by its index."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.where: dict[int, int] = {}  # id(annotation) -> index, for located errors

    def number(self, a: dict[str, Any], key: str, v: Any) -> Any:
        # the reference compares these with < and would stop with a TypeError on anything else
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InputError(f"{key} must be a number, got {v!r}", file=self.file,
                             where=f"annotations[{self.where[id(a)]}].{key}")
        return v

    def need(self, a: dict[str, Any], key: str) -> Any:
        if key not in a:
            raise InputError(f"annotation lacks {key}", file=self.file, where=f"annotations[{self.where[id(a)]}]")
        return a[key]

    def bbox(self, a: dict[str, Any]) -> list[Any]:
        b = self.need(a, "bbox")
        if not (isinstance(b, list) and len(b) == 4 and all(isinstance(v, (int, float)) for v in b)):
            raise InputError(f"bbox must be 4 numbers, got {b!r}", file=self.file,
                             where=f"annotations[{self.where[id(a)]}].bbox")
        return b

    def keypoints(self, a: dict[str, Any]) -> list[list[Any]]:
        kp = self.need(a, "keypoints")
        if not isinstance(kp, list):
            raise InputError("keypoints must be a list", file=self.file,
                             where=f"annotations[{self.where[id(a)]}].keypoints")
        return _person_keypoints(kp)

    def person(self, cache: dict[int, Any], a: dict[str, Any]) -> tuple[list[Any], Any, Any, list[list[Any]]]:
        """(bbox, area, num_keypoints, keypoints), checked and converted once per image (not once
        per record, as the reference does)."""
        p = cache.get(id(a))
        if p is None:
            p = cache[id(a)] = (self.bbox(a), self.number(a, "area", self.need(a, "area")), _num_keypoints(a),
                                self.keypoints(a))
        return p


def _persons_per_image(anns: list, cat_id: Any, fields: _Fields) -> dict[Any, list[Any]]:
    """image id -> [persons in file order, crowd segmentations], images in the order of their first
    person (the reference's dict); crowd segmentations only for images that have a person."""
    file = fields.file
    per_image: dict[Any, list[Any]] = {}
    crowd: dict[Any, list[Any]] = {}
    for i, a in enumerate(anns):
        if not isinstance(a, dict):
            raise InputError(f"expected an annotation object, got {type(a).__name__}", file=file, where=f"annotations[{i}]")
        if a.get("category_id") != cat_id:
            continue
        if "image_id" not in a:
            raise InputError("annotation lacks image_id", file=file, where=f"annotations[{i}]")
        if isinstance(a["image_id"], (list, dict)):
            raise InputError(f"image_id must be an id, got {a['image_id']!r}", file=file, where=f"annotations[{i}].image_id")
        if a.get("iscrowd", 0):
            crowd.setdefault(a["image_id"], []).append(a.get("segmentation"))
        else:
            fields.where[id(a)] = i
            if fields.number(a, "num_keypoints", _num_keypoints(a)) != 0:
                per_image.setdefault(a["image_id"], [[], []])[0].append(a)
    for image_id, segs in crowd.items():
        if image_id in per_image:
            per_image[image_id][1] = segs
    return per_image


def _image_records(persons: list[dict[str, Any]], segmentations: Any, images_info: dict[Any, dict[str, Any]],
                   fields: _Fields, min_keypoints: int, min_area: float, dedup_ratio: float,
                   net_input_size: int) -> list[dict[str, Any]]:
    """The reference's records of one image: its main persons, each with the others. Every record
    gets fresh objpos and keypoint lists (the reference builds them anew per record, and its
    training transforms mutate them)."""
    records: list[dict[str, Any]] = []
    cache: dict[int, Any] = {}
    previous_centers: list[tuple[Any, Any, Any, Any]] = []
    for a in persons:
        nk = _num_keypoints(a)
        if nk < min_keypoints or fields.number(a, "area", fields.need(a, "area")) < min_area:
            continue
        bbox, area, nk, kps = fields.person(cache, a)
        center = [bbox[0] + bbox[2] / 2, bbox[1] + bbox[3] / 2]
        if any(((center[0] - px) ** 2 + (center[1] - py) ** 2) ** 0.5 < pw * dedup_ratio
               for px, py, pw, _ in previous_centers):
            continue
        info = images_info.get(a["image_id"])
        if info is None:
            raise InputError(f"image_id {a['image_id']!r} is not among the images", file=fields.file,
                             where=f"annotations[{fields.where[id(a)]}].image_id")
        record = {
            "img_paths": info["file_name"],
            "img_width": info["width"],
            "img_height": info["height"],
            "objpos": center,
            "image_id": a["image_id"],
            "bbox": bbox,
            "segment_area": area,
            "scale_provided": bbox[3] / net_input_size,
            "num_keypoints": nk,
            "segmentations": segmentations,
            "keypoints": [list(k) for k in kps],
        }
        others = []
        for o in persons:
            # the reference skips by dict equality, so an identical duplicate is skipped too
            if o is a or o == a:
                continue
            ob, oarea, onk, okps = fields.person(cache, o)
            others.append({
                "objpos": [ob[0] + ob[2] / 2, ob[1] + ob[3] / 2],
                "bbox": ob,
                "segment_area": oarea,
                "scale_provided": ob[3] / net_input_size,
                "num_keypoints": onk,
                "keypoints": [list(k) for k in okps],
            })
        record["processed_other_annotations"] = others
        records.append(record)
        previous_centers.append((center[0], center[1], bbox[2], bbox[3]))
    return records


def write_lwop_pickle(data: dict[str, Any], path: str | Path, category_id: int | None = None, *,
                      file: str | None = None, **rules: Any) -> int:
    """Write the reference's prepared-label pickle atomically; returns the number of samples.
    Streamed to a temp file beside the output (as the reference streams its dump), then renamed."""
    records = lwop_records(data, category_id, file=file, **rules)
    with atomic_writer(path) as f, paused_gc():
        pickle.dump(records, f, protocol=pickle.DEFAULT_PROTOCOL)
    return len(records)
