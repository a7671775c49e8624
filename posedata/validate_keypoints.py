"""validate's vectorised keypoint checks: every well-formed keypoint array of a category stacked
into one (N, K, 3) array, then each per-keypoint, box, training-relevance and flip check at once.
A mixin of posedata/validate.py's validator, whose state (self.add, self.bbox, self.wh, ...) it reads."""
from __future__ import annotations

import math
from collections.abc import Callable
from itertools import chain

import numpy as np

from .sides import minority_pairs
from .validate_rules import (
    BBOX_SLACK,
    F32_MAX,
    FAR_OUTSIDE_BBOX,
    MIN_AREA,
    _Cat,
    _finite,
    _names,
    blocks,
    default_min_keypoints,
)


class KeypointChecks:
    def _stack(self, cat: _Cat) -> tuple[np.ndarray, np.ndarray]:
        """(rows, (N, K, 3) float64) for a category's well-formed keypoint arrays; ints beyond float
        range become inf (reported as non-finite). From cocojson's int32 column: (N, K, 3) int32
        (the same numbers, half of float64's 122 MB of fresh pages at 300k annotations); every
        check compares them or mixes them with float64, except the flip check's differences,
        which it takes in float64."""
        rows = np.asarray(cat.rows, dtype=np.int64)
        if self.numbers is not None:  # cocojson's parsed column holds every row's numbers
            nums = self.numbers
            return rows, nums.take(rows, 3 * cat.k, nums.exact_dtype).reshape(len(rows), cat.k, 3)
        if not cat.kps:
            return rows, np.zeros((0, cat.k, 3))
        try:  # every row is a list of 3K ints and floats here
            arr = np.fromiter(chain.from_iterable(cat.kps), dtype=np.float64, count=len(cat.kps) * 3 * cat.k)
        except (OverflowError, ValueError, TypeError):
            arr = np.empty((len(cat.kps), 3 * cat.k))
            for r, kp in enumerate(cat.kps):
                arr[r] = [f if (f := _finite(x)) is not None else (math.nan if isinstance(x, float) else math.inf)
                          for x in kp]
        return rows, arr.reshape(len(cat.kps), cat.k, 3)

    def _vector_checks(self, anns: list) -> None:
        sk = self.sk
        labelled_any = np.zeros(sk.num_keypoints, dtype=bool)
        first_mapped: _Cat | None = None
        stacks = []
        for cat in self.cats:
            stacks.append(self._stack(cat))
            cat.kps = []  # free the Python lists early at COCO scale
        if self.keep is not None and self.keep.anns is not None and self.numbers is not None:
            # the stacks hold what convert reads of the column (it drops the column after
            # validate): dropped before the checks' temporaries, not after (61 MB at 300k)
            anns.keypoints = self.numbers = None
        for cat, stack in zip(self.cats, stacks):
            lab = self._category_keypoints(cat, stack)
            if cat.src is not None:
                labelled_any[cat.src >= 0] |= lab[:, cat.src[cat.src >= 0]].any(axis=0)
                if first_mapped is None:
                    first_mapped = cat
        self._bbox_only_checks(anns)
        if first_mapped is not None:
            src = first_mapped.src
            for k in np.flatnonzero(~labelled_any & (src >= 0)):  # type: ignore[operator]
                j = int(src[k])  # type: ignore[index]
                self.add("V060", f"categories[{first_mapped.index}].keypoints[{j}]",
                         f"keypoint {sk.keypoints[k]!r} is never labelled in any instance; its heatmap channel "
                         "would only ever learn 'absent'")

    def _emit(self, code: str, cat: _Cat, rows: np.ndarray, mask: np.ndarray, field: int,
              text: Callable[[int, list[str]], str]) -> None:
        """One finding per instance with any flagged keypoint, located at the first one."""
        hits = np.flatnonzero(mask.any(axis=1))
        shown = hits[:self.rep.room(code)]  # the rest counted only (validate_coco's per_code)
        for r in shown:
            ks = np.flatnonzero(mask[r])
            i = int(rows[r])
            self.add(code, f"annotations[{i}].keypoints[{3 * int(ks[0]) + field}]",
                     text(int(r), [cat.names[k] for k in ks]), image_id=self.ann_img[i], annotation_id=self.ann_id[i])
        self.rep.tally(code, len(hits) - len(shown))  # after the adds, which count themselves

    def _category_keypoints(self, cat: _Cat, stack: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """All per-keypoint checks of one category at once (its _stack); returns the (N, K) labelled mask."""
        rows, arr = stack
        if self.keep is not None and self.keep.anns is not None:
            self.keep.keypoints[cat.id] = (rows, arr)
        x, y = arr[..., 0], arr[..., 1]
        W, H = self.wh[rows, 0], self.wh[rows, 1]
        n, k = len(rows), cat.k
        # the masks block by block (validate_rules.BLOCK_ROWS): whole-size, the expressions' (N, K)
        # temporaries were ~100 MB of fresh pages at 300k annotations, for 20 MB of masks
        lab, wrong_v, v0_at, outside = (np.empty((n, k), dtype=bool) for _ in range(4))
        bad_rows: list[tuple[int, np.ndarray]] = []  # (row, its non-finite value indices), in row order
        for e in blocks(n):
            a = arr[e]
            xe, ye, ve = a[..., 0], a[..., 1], a[..., 2]
            if arr.dtype.kind == "i":  # int32: every value finite
                finite_kp = np.ones(xe.shape, dtype=bool)
            else:  # NaN compares False; two bool masks, not a float64 copy as np.abs(arr) made
                fin = a <= F32_MAX
                fin &= a >= -F32_MAX
                finite_kp = fin.all(axis=2)
                bad = ~fin.reshape(len(a), 3 * k)
                bad_rows.extend((e.start + r, np.flatnonzero(bad[r])) for r in np.flatnonzero(bad.any(axis=1)).tolist())
            v_ok = finite_kp & np.isin(ve, (0, 1, 2))
            np.logical_and(v_ok, ve > 0, out=lab[e])
            np.logical_and(finite_kp, ~v_ok, out=wrong_v[e])
            np.logical_and(v_ok & (ve == 0), (xe != 0) | (ye != 0), out=v0_at[e])
            with np.errstate(invalid="ignore"):
                np.logical_and(lab[e], (xe < 0) | (ye < 0) | (xe >= W[e, None]) | (ye >= H[e, None]), out=outside[e])

        for r, js in bad_rows:
            i = int(rows[r])
            self.add("V022", f"annotations[{i}].keypoints[{int(js[0])}]",
                     f"{len(js)} non-finite value(s) (NaN, Infinity or beyond float range) in keypoint(s) "
                     f"{_names(dict.fromkeys(cat.names[j // 3] for j in js))}",
                     image_id=self.ann_img[i], annotation_id=self.ann_id[i])
        self._emit("V023", cat, rows, wrong_v, 2, lambda r, ns: "visibility must be 0 (not labelled), "
                   f"1 (occluded) or 2 (visible); wrong for {_names(ns)}")
        del wrong_v
        self._emit("V024", cat, rows, v0_at, 0, lambda r, ns: f"not labelled (v=0) but at non-zero (x, y): {_names(ns)}")
        del v0_at
        self._emit("V025", cat, rows, outside, 0, lambda r, ns: f"labelled point(s) outside the {W[r]:g}x{H[r]:g} "
                   f"image: {_names(ns)} (training treats them as absent)")
        del outside

        count = lab.sum(axis=1)
        nk = self.nkp[rows]
        for r in np.flatnonzero(np.isfinite(nk) & (nk != count)):
            i = int(rows[r])
            self.add("V026", f"annotations[{i}].num_keypoints",
                     f"num_keypoints is {int(nk[r])} but {int(count[r])} keypoint(s) have v>0; the reference "
                     "selects training people by this field", image_id=self.ann_img[i], annotation_id=self.ann_id[i])
        self._box_checks(cat, rows, x, y, lab)
        self._relevance(rows, count)
        if cat.src is not None:
            self._flip_check(cat, rows, x, lab)
        return lab

    def _box_checks(self, cat: _Cat, rows: np.ndarray, x: np.ndarray, y: np.ndarray, lab: np.ndarray) -> None:
        b = self.bbox[rows]
        far = np.empty(lab.shape, dtype=bool)
        for e in blocks(len(rows)):  # see validate_rules.BLOCK_ROWS
            bx, by, bw, bh, xe, ye = b[e, 0:1], b[e, 1:2], b[e, 2:3], b[e, 3:4], x[e], y[e]
            with np.errstate(invalid="ignore"):
                # in place, one term at a time: np.maximum.reduce over a list first copied the five
                # (N, K) terms into one (5, N, K) array, 0.3-1 s at COCO-train size and superlinear
                excess = bx - xe
                np.maximum(excess, xe - (bx + bw), out=excess)
                np.maximum(excess, by - ye, out=excess)
                np.maximum(excess, ye - (by + bh), out=excess)
                np.maximum(excess, 0.0, out=excess)
                far[e] = lab[e] & (bw > 0) & (bh > 0) & (excess > FAR_OUTSIDE_BBOX * np.maximum(bw, bh))
        for r in np.flatnonzero(far.any(axis=1)):
            ks = np.flatnonzero(far[r])
            i = int(rows[r])
            self.add("V033", f"annotations[{i}].keypoints[{3 * int(ks[0])}]",
                     f"labelled point(s) {_names(cat.names[k] for k in ks)} lie more than {FAR_OUTSIDE_BBOX:g} x the "
                     f"box size outside bbox {[round(float(t), 2) for t in b[r]]}; a wrong box or a point from another "
                     "instance", image_id=self.ann_img[i], annotation_id=self.ann_id[i])

    def _bbox_only_checks(self, anns: list) -> None:
        """Box size and image overhang for every keypoint-category annotation with a parsed bbox."""
        b, wh = self.bbox, self.wh
        with np.errstate(invalid="ignore"):
            nonpos = (b[:, 2] <= 0) | (b[:, 3] <= 0)
            over = ~nonpos & ((b[:, 0] < -BBOX_SLACK) | (b[:, 1] < -BBOX_SLACK)
                              | (b[:, 0] + b[:, 2] > wh[:, 0] + BBOX_SLACK) | (b[:, 1] + b[:, 3] > wh[:, 1] + BBOX_SLACK))
        for i in np.flatnonzero(nonpos):
            i = int(i)
            self.add("V031", f"annotations[{i}].bbox",
                     f"bbox {[round(float(t), 2) for t in b[i]]} has no positive width and height (the reference "
                     "scales by bbox height; a zero box divides by zero)", image_id=self.ann_img[i],
                     annotation_id=self.ann_id[i])
        for i in np.flatnonzero(over):
            i = int(i)
            self.add("V032", f"annotations[{i}].bbox",
                     f"bbox {[round(float(t), 2) for t in b[i]]} extends outside the {wh[i, 0]:g}x{wh[i, 1]:g} image",
                     image_id=self.ann_img[i], annotation_id=self.ann_id[i])

    def _relevance(self, rows: np.ndarray, count: np.ndarray) -> None:
        """The reference's person filters: who never becomes a training sample, and why."""
        nk = self.nkp[rows]
        # the reference reads num_keypoints; where it is unusable, the true count stands in
        nk = np.where(np.isfinite(nk), nk, count)
        person = nk > 0
        self.person_images.update(map(self.ann_img.__getitem__, rows[person].tolist()))
        self.person_images.discard(None)
        area = self.area[rows]
        min_kp = default_min_keypoints(self.sk)  # convert's default, so V061 names who convert drops
        few = person & (nk < min_kp)
        with np.errstate(invalid="ignore"):
            small = person & (area < MIN_AREA)
        for code, mask, msg in (
            ("V061", few, lambda r: f"{int(nk[r])} labelled keypoint(s) < {min_kp}: `posedata convert` (by default) "
             "never makes this person a training sample (it only appears in others' targets)"),
            ("V062", small, lambda r: f"area {area[r]:g} < {MIN_AREA}: the reference never makes this person a "
             "training sample (it only appears in others' targets)"),
            ("V063", ~person, lambda r: "no labelled keypoints and not crowd: the reference ignores this instance "
             "and does not mask it, so its pixels are trained as background"),
        ):
            field = "num_keypoints" if code != "V062" else "area"
            hits = np.flatnonzero(mask)
            shown = hits[:self.rep.room(code)]  # the rest counted only (validate_coco's per_code)
            for r, i in zip(shown.tolist(), rows[shown].tolist()):
                self.add(code, f"annotations[{i}].{field}", msg(r), image_id=self.ann_img[i],
                         annotation_id=self.ann_id[i])
            self.rep.tally(code, len(hits) - len(shown))  # after the adds, which count themselves

    def _images_without_person(self) -> None:
        if self.image_rows is None or not self.cats:
            return
        table = self.image_rows
        persons = np.fromiter(self.person_images, dtype=np.int64, count=len(self.person_images))
        missing = np.flatnonzero(~np.isin(table.ids, persons))  # in image order
        room = self.rep.room("V064")
        for i, iid in zip(table.index[missing[:room]].tolist(), table.ids[missing[:room]].tolist()):
            self.add("V064", f"images[{i}]", "no person (non-crowd instance with labelled keypoints): the "
                     "reference drops this image from training", image_id=iid)
        self.rep.tally("V064", max(0, len(missing) - room))  # counted only (validate_coco's per_code)

    def _flip_check(self, cat: _Cat, rows: np.ndarray, x: np.ndarray, lab: np.ndarray) -> None:
        """Per instance, every flip pair's sign of x_left - x_right should agree with the majority."""
        sk = self.sk
        index = {n: i for i, n in enumerate(sk.keypoints)}
        pairs = []
        for ln, rn in sk.flip_pairs():
            ja, jb = int(cat.src[index[ln]]), int(cat.src[index[rn]])  # type: ignore[index]
            if ja >= 0 and jb >= 0:
                pairs.append((ja, jb, ln, rn))
        if len(pairs) < 3 or not len(rows):
            return
        left, right = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        # row by row independent: in blocks (see validate_rules.BLOCK_ROWS), then joined
        # float64 per block: an int32 stack's differences could overflow int32
        parts = [minority_pairs(x[e].astype(np.float64, copy=False), lab[e], left, right) for e in blocks(len(rows))]
        minority = np.concatenate([p[0] for p in parts])
        major = np.concatenate([p[1] for p in parts])
        # tens of thousands of findings on a large file: numbers read as Python ints in one go, and
        # beyond validate_coco's per_code only counted
        rs, ps = np.nonzero(minority)
        total, shown = len(rs), self.rep.room("V070")
        rs, ps = rs[:shown], ps[:shown]
        add, ann_img, ann_id = self.add, self.ann_img, self.ann_id
        for i, p, m in zip(rows[rs].tolist(), ps.tolist(), major[rs].tolist()):
            ja, jb, ln, rn = pairs[p]
            add("V070", f"annotations[{i}].keypoints[{3 * ja}]",
                f"suspected left/right swap: {ln}/{rn} face the other way from the instance's other "
                f"{m} flip pair(s); if swapped, horizontal-flip augmentation teaches "
                "contradictory sides", image_id=ann_img[i], annotation_id=ann_id[i])
        self.rep.tally("V070", total - len(rs))  # after the adds, which count themselves
