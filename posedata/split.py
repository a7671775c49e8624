"""`posedata split`: one COCO keypoint file into a training and a validation file, and the check
that the two share no image.

Frames of one recording look alike, so a validation image whose neighbour frame was trained on
measures memory, not generalisation. The split therefore moves whole groups: an image alone
(`image`), the folder of its file name (`folder`: a session or video folder of extracted frames),
any image field (`video_id`, `vid_id`, ...), or `track`: images joined by an annotation `track_id`
(one animal followed across frames) end up on the same side. Groups are shuffled with the seed and
taken into validation until it holds the asked number of images (a fraction of the images, or a
count); the order of images and annotations inside each file stays the file's.
"""
from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .errors import InputError

BY_IMAGE, BY_FOLDER, BY_TRACK = "image", "folder", "track"


@dataclass
class Split:
    train: dict[str, Any]
    val: dict[str, Any]
    by: str
    groups: int  # groups the images formed
    val_groups: int
    missing_key: int = 0  # images without the group field (each its own group)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"by": self.by, "groups": self.groups, "val_groups": self.val_groups,
                "train_images": len(self.train["images"]), "val_images": len(self.val["images"]),
                "train_annotations": len(self.train["annotations"]), "val_annotations": len(self.val["annotations"]),
                "images_without_group_key": self.missing_key}


def image_groups(data: dict[str, Any], by: str, file: str | None = None) -> tuple[list[Any], int]:
    """A group label per image (in file order) and how many images lacked the key (each of those
    is its own group)."""
    images = data["images"]
    missing = 0
    if by == BY_IMAGE:
        return [("image", i) for i in range(len(images))], 0
    if by == BY_FOLDER:
        return [("folder", str(PurePosixPath(str(im.get("file_name", "")).replace("\\", "/")).parent))
                for im in images], 0
    if by == BY_TRACK:
        return _track_groups(data, file)
    labels = []
    for i, im in enumerate(images):
        v = im.get(by)
        if v is None or isinstance(v, (dict, list)):
            missing += 1
            labels.append(("image", i))
        else:
            labels.append(("key", repr(v)))
    if missing == len(images) and images:
        raise InputError(f"no image has a field {by!r} to group by (--by image, folder, track or an image field "
                         "such as video_id)", file=file, where="images")
    return labels, missing


def _track_groups(data: dict[str, Any], file: str | None) -> tuple[list[Any], int]:
    """Images joined by a shared annotation track_id (union-find over images)."""
    images = data["images"]
    row = {im.get("id"): i for i, im in enumerate(images)}
    parent = list(range(len(images)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_of: dict[Any, int] = {}
    tracked = set()
    for a in data["annotations"]:
        t, i = a.get("track_id"), row.get(a.get("image_id"))
        if t is None or i is None or isinstance(t, (dict, list)):
            continue
        tracked.add(i)
        j = first_of.setdefault((a.get("category_id"), t), i)
        parent[find(i)] = find(j)
    if not tracked and images:
        raise InputError("no annotation has a track_id to group by", file=file, where="annotations")
    return [("track", find(i)) for i in range(len(images))], len(images) - len(tracked)


def split_coco(data: dict[str, Any], val: float, by: str = BY_IMAGE, seed: int = 0,
               file: str | None = None) -> Split:
    """Split parsed COCO JSON. val < 1: the fraction of images for validation; val >= 1: a count of
    images. Whole groups move (see the module doc), so the validation size is the first total of
    shuffled groups that reaches the target. Raises InputError when a side would be empty."""
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list) or not all(isinstance(x, dict) for x in data[key]):
            raise InputError(f"expected a list of objects under {key!r}", file=file, where=key)
    n = len(data["images"])
    if val <= 0 or (val >= 1 and val != int(val)):
        raise InputError(f"--val is a fraction in (0, 1) or a whole number of images, got {val:g}", file=file)
    # a fraction below 1 never asks for every image: rounding up on a tiny set (0.75 of 2) keeps one
    target = min(int(round(val * n)), n - 1) if val < 1 else int(val)
    labels, missing = image_groups(data, by, file)
    members: dict[Any, list[int]] = defaultdict(list)
    for i, g in enumerate(labels):
        members[g].append(i)
    groups = list(members)
    if len(groups) < 2:
        raise InputError(f"the {n} images form {len(groups)} group by {by!r}: nothing to split", file=file)
    order = np.random.default_rng(seed).permutation(len(groups))
    in_val = np.zeros(n, dtype=bool)
    taken = n_val = 0
    for g in order[:-1]:  # the last group always trains
        if n_val >= max(target, 1):
            break
        in_val[members[groups[g]]] = True
        taken += 1
        n_val += len(members[groups[g]])
    if target >= n:
        raise InputError(f"--val {val:g} asks for all {n} images; nothing would be left for training", file=file)
    val_ids = {data["images"][i].get("id") for i in np.flatnonzero(in_val)}
    sides = []
    for keep in (False, True):
        d = {k: v for k, v in data.items() if k not in ("images", "annotations")}
        d["images"] = [im for im, v in zip(data["images"], in_val) if bool(v) == keep]
        d["annotations"] = [a for a in data["annotations"] if (a.get("image_id") in val_ids) == keep]
        sides.append(d)
    notes = []
    if missing:
        notes.append(f"{missing} image(s) have no {by!r} to group by; each is its own group")
    got = int(in_val.sum())
    if target and abs(got - target) > max(1, target // 10):
        notes.append(f"validation holds {got} images for a target of {target}: groups move whole")
    return Split(train=sides[0], val=sides[1], by=by, groups=len(groups), val_groups=taken, missing_key=missing,
                 notes=notes)


# ------------------------------------------------------------------ overlap
def _file_list(root: Path, names: list[str]) -> list[tuple[str, Path]]:
    from .io import safe_image_path

    out = []
    for n in names:
        try:
            p = safe_image_path(root, n)
        except InputError:  # a path validate reports (V051): nothing to compare
            continue
        if p.is_file():
            out.append((n, p))
    return out


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def shared_images(train_root: Path, train_names: list[str], val_root: Path, val_names: list[str]
                  ) -> list[tuple[str, str]]:
    """(training file, validation file) pairs with the same content (sha256), whatever their names.
    Only files of equal size are hashed, so two disjoint sets cost a stat per file."""
    train, val = _file_list(train_root, train_names), _file_list(val_root, val_names)
    by_size: dict[int, list[tuple[str, Path]]] = defaultdict(list)
    for n, p in train:
        by_size[os.path.getsize(p)].append((n, p))
    digests: dict[Path, str] = {}

    def digest(p: Path) -> str:
        if p not in digests:
            digests[p] = _sha256(p)
        return digests[p]

    out = []
    for vn, q in val:
        out.extend((n, vn) for n, p in by_size.get(os.path.getsize(q), ()) if digest(p) == digest(q))
    return out
