"""Is the flip map right? Checks at the level of the data, where a wrong swap list really shows.

Distances are mirror-invariant, so they cannot tell "no swap" from "right swap"; orientation can.
For a triple of keypoints (i, j, k) the sign of the triangle's orientation (a cross product)
flips under a mirror. If the data are as likely to show a pose as its mirror image (the very
assumption flip augmentation makes), then with the right flip map f the mean sign over instances
m(i, j, k) is close to -m(f(i), f(j), f(k)). A missing, extra or wrong pair breaks that for the
triples that involve it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from .bodyframe import centred
from .coco import CategorySpec, Dataset
from .findings import Finding
from .skeleton import Skeleton
from .swaps import ALPHA, MAX_SUSPECTS, SwapCheck, suspected_swaps, swap_check

MIN_FAIL = 11  # informative instances below which no sign pattern gives p <= ALPHA (2 / 2^10 > 0.001)
MIN_PASS = 50  # informative instances before a PASS: below, a missing pair goes unseen too often (bench)


def instance_keypoints(ds: Dataset, sk: Skeleton, category_id: CategorySpec = None) -> tuple[np.ndarray, np.ndarray, list]:
    """Non-crowd instances of the keypoint category with at least one labelled keypoint, in skeleton
    order: points (N, K, 2), labelled (N, K) bool, and the annotations. Derived keypoints are never
    labelled here. An instance with no labelled point says nothing about sides, so it is not counted."""
    cats = ds.categories_for(category_id, sk)  # several categories share one keypoint list
    cat, ids = cats[0], {c.id for c in cats}
    src = sk.source_index(cat.keypoints)
    anns = [a for a in ds.annotations if a.category_id in ids and not a.iscrowd and a.keypoints is not None
            and len(a.keypoints) == len(cat.keypoints)]
    if anns:
        kp = np.stack([np.asarray(a.keypoints, dtype=np.float64) for a in anns])  # (N, Kc, 3)
        take = np.where(src >= 0, src, 0)
        pts = kp[:, take, :2]
        lab = (kp[:, take, 2] > 0) & (src >= 0)[None, :] & np.isfinite(pts).all(-1)
        keep = lab.any(1)
        return pts[keep], lab[keep], [a for a, k in zip(anns, keep, strict=True) if k]
    return np.zeros((0, sk.num_keypoints, 2)), np.zeros((0, sk.num_keypoints), bool), []


# ------------------------------------------------------------------ features
def _orientation_signs(pts: np.ndarray, lab: np.ndarray, tri: np.ndarray, signed: bool = True) -> np.ndarray:
    """(N, T) sign of cross(p_b - p_a, p_c - p_a) for ordered triples tri (T, 3), 0 where a point is
    unlabelled; with signed=False the cross product itself, over the instance's squared spread.
    cross(a, b, c) = D[b, c] + D[c, a] + D[a, b] with D[u, v] = xu*yv - xv*yu (one (K, K) matrix per instance)."""
    ok = lab
    p, mean_sq = centred(pts, lab)  # centred: signs are translation-invariant, products better conditioned
    x, y = p[..., 0], p[..., 1]
    d = x[:, :, None] * y[:, None, :] - x[:, None, :] * y[:, :, None]
    a, b, c = tri.T
    cross = d[:, b, c] + d[:, c, a] + d[:, a, b]
    if not signed:
        cross = cross / np.maximum(np.sqrt(mean_sq), 1e-9)[:, None] ** 2
    return np.where(ok[:, a] & ok[:, b] & ok[:, c], np.sign(cross) if signed else cross, 0.0)


def mirror_features(pts: np.ndarray, lab: np.ndarray,
                    perm: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Per instance, features whose sign is symmetric about 0 when the data are as likely to show an
    instance as its mirror image relabelled by the flip map perm (what flip augmentation assumes):

    - orientation, per triple t = (i, j, k): o(t) + o(f(t)), o the triangle's signed area (cross
      product) over the instance's squared scale.
      A mirror negates every orientation, so the relabelled mirror image has o'(t) = -o(f(t)) and
      o'(f(t)) = -o(t): the feature changes sign. Detects a map where the data are not mirror-symmetric.
    - distance, per pair (i, j): (|p_i - p_j| - |p_f(i) - p_f(j)|) over the instance's scale. Distances survive the mirror, so
      the relabelling alone changes its sign: detects pairs that are no mirror images of each other
      (a missing pair, knee<->ankle) whichever way the instances face.

    Only one of t and f(t) is kept (their features are equal up to sign) and features that are 0 by
    construction are dropped. Returns X (N, C), NaN where a point is unlabelled,
    touches (C, K) bool (keypoints in c or f(c)), the features' names, and their kinds (C,): 0
    orientation, 1 distance."""
    n, k = lab.shape
    feats, touch, names, kinds = [], [], [], []
    if k >= 3:
        tri = np.array(list(combinations(range(k), 3)), dtype=np.int64)
        ftri = perm[tri]
        key = np.sort(ftri, 1)
        identical = (key == tri).all(1)
        # f(t) = t as a set: an odd permutation of it (a swapped pair) makes the feature 0
        odd = identical & ~(ftri == tri).all(1)
        first = np.array([tuple(a) <= tuple(b) for a, b in zip(tri.tolist(), key.tolist(), strict=True)], bool)
        keep = first & ~odd
        tri, ftri = tri[keep], ftri[keep]
        if len(tri):
            a, b = _orientation_signs(pts, lab, tri, False), _orientation_signs(pts, lab, ftri, False)
            defined = lab[:, tri].all(-1) & lab[:, ftri].all(-1)
            feats.append(np.where(defined, a + b, np.nan))
            t = np.zeros((len(tri), k), bool)
            rows = np.arange(len(tri))[:, None]
            t[rows, tri] = True
            t[rows, ftri] = True
            touch.append(t)
            names += [f"orientation {tuple(int(v) for v in a)}" for a in tri]
            kinds.append(np.zeros(len(tri), np.int64))
    if k >= 2:
        pair = np.array(list(combinations(range(k), 2)), dtype=np.int64)
        fpair = perm[pair]
        key = np.sort(fpair, 1)
        keep = np.array([tuple(a) < tuple(b) for a, b in zip(pair.tolist(), key.tolist(), strict=True)], bool)
        pair, fpair = pair[keep], fpair[keep]
        if len(pair):
            def dist(ab: np.ndarray) -> np.ndarray:
                return np.linalg.norm(pts[:, ab[:, 0]] - pts[:, ab[:, 1]], axis=-1)

            ok = lab[:, pair].all(-1) & lab[:, fpair].all(-1)
            scale = np.maximum(np.sqrt(centred(pts, lab)[1]), 1e-9)[:, None]
            with np.errstate(invalid="ignore"):
                feats.append(np.where(ok, np.nan_to_num(dist(pair) - dist(fpair)) / scale, np.nan))
            t = np.zeros((len(pair), k), bool)
            rows = np.arange(len(pair))[:, None]
            t[rows, pair] = True
            t[rows, fpair] = True
            touch.append(t)
            names += [f"distance {tuple(int(v) for v in a)}" for a in pair]
            kinds.append(np.ones(len(pair), np.int64))
    if not feats:
        return np.zeros((n, 0)), np.zeros((0, k), bool), [], np.zeros(0, np.int64)
    return np.concatenate(feats, 1), np.concatenate(touch, 0), names, np.concatenate(kinds)


MAX_TESTED = 5000  # instances the data-level test reads at most (a seeded sample beyond): see mirror_test
FLIPS = 9999  # random sign flips: p-values down to 1 / 10,000; FAIL needs at most 9 flips as extreme as the data
STOP_AFTER = 10  # flips beating the data before stopping early (Besag-Clifford: p = 10 / flips done)


def _keypoint_scores(sums: np.ndarray, m: np.ndarray, inc: np.ndarray) -> np.ndarray:
    """(..., C) feature sums -> (..., K) mean over each keypoint's features of sum^2 / m with m the
    feature's sum of squares: a self-normalised z^2 per feature (about 1 under the null, large for
    a feature that deviates one way), which sign flips leave m unchanged."""
    z2 = sums ** 2 / np.maximum(m, 1e-12)
    return (z2 @ inc) / np.maximum(inc.sum(0), 1)


def _flip_test(v: np.ndarray, m: np.ndarray, inc: np.ndarray, rng: np.random.Generator,
               flips: int = FLIPS) -> float:
    """Randomisation test of "every instance's feature vector is as likely negated": the largest
    keypoint score (_keypoint_scores over the columns of inc) of the data against the same maximum
    with each instance's sign flipped at random. Exact for any number of instances and any
    dependence between the features (the sign flips are the null hypothesis itself), and one test
    for all keypoints at once, so no correction for their number is needed."""
    cols = inc.any(0)
    rows = inc.any(1)
    if not cols.any():
        return 1.0
    inc, v, m = inc[rows][:, cols], v[:, rows], m[rows]
    top = float(_keypoint_scores(v.sum(0), m, inc).max())
    beat = done = 0
    while done < flips:
        b = min(250, flips - done)
        eps = rng.choice((-1.0, 1.0), size=(b, len(v)))
        beat += int((_keypoint_scores(eps @ v, m, inc).max(1) >= top - 1e-9).sum())
        done += b
        if beat >= STOP_AFTER:
            return beat / done
    return (beat + 1) / (flips + 1)


@dataclass
class MirrorTest:
    """The data-level test of one flip map (the skeleton's, or none at all)."""

    keypoints: list[str]  # tested keypoints (derived ones excluded)
    scores: np.ndarray  # (K,) mean z^2 of the keypoint's features: about 1 is noise; NaN if untested
    deviation: np.ndarray  # (K,) mean share of deviating instances over its features: ~0 right, 0.5+ broken
    n_instances: int  # instances with labelled keypoints
    informative: int  # instances where some feature is non-zero (the evidence the test has)
    n_features: int
    p_value: float  # the first test: small when the data disagree with the map
    blamed: list[str] = field(default_factory=list)
    steps: list[tuple[str, float]] = field(default_factory=list)  # (blamed keypoint, p of the test that blamed it)
    sampled_from: int | None = None  # instances in the data when the test read a sample of MAX_TESTED

    @property
    def significant(self) -> bool:
        return bool(self.blamed)

    @property
    def on(self) -> str:
        """'812 instances', or with a sample '4,990 instances of a 5,000 sample from 150,000'."""
        if self.sampled_from is None:
            return f"{self.informative} instances"
        return f"{self.informative} instances of a {self.n_instances:,} sample from {self.sampled_from:,}"


def mirror_test(pts: np.ndarray, lab: np.ndarray, perm: np.ndarray, names: list[str],
                alpha: float = ALPHA, seed: int = 0) -> MirrorTest:
    """Is the data's distribution unchanged by "mirror, then relabel by perm"?

    One randomisation test over every keypoint decides (so a right map is blamed with probability
    at most alpha, whatever the number of keypoints). Then blame, one keypoint at a time: the one
    with the largest score (all of a broken keypoint's features deviate, only some of its
    neighbours'), its features set aside and the rest re-tested at alpha, until nothing is left
    beyond noise; so removing only the wrist pair does not also blame the eyes through the
    eye-wrist features.

    Beyond MAX_TESTED instances a seeded random sample of that many is tested: detection is 100%
    there already (bench/README.md, flipcheck), the sample is drawn without looking at the signs so
    the test stays exact, and the time stops growing with the file (9,999 flips of 150,000
    instances would take minutes and gigabytes)."""
    sampled_from = None
    if len(pts) > MAX_TESTED:
        sampled_from = len(pts)
        keep = np.sort(np.random.default_rng([seed, len(pts)]).choice(len(pts), MAX_TESTED, replace=False))
        pts, lab = pts[keep], lab[keep]
    res = _mirror_test(pts, lab, perm, names, alpha, seed)
    res.sampled_from = sampled_from
    return res


def _mirror_test(pts: np.ndarray, lab: np.ndarray, perm: np.ndarray, names: list[str], alpha: float,
                 seed: int) -> MirrorTest:
    if (perm != np.arange(len(perm))).any():
        return _frame_test(pts, lab, perm, names, alpha, seed)
    x, touch, _, kinds = mirror_features(pts, lab, perm)
    v = np.nan_to_num(x)
    m = (v ** 2).sum(0)
    k = len(names)
    defined = np.maximum(np.isfinite(x).sum(0), 1)
    live = touch & (m > 1e-12)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        deviation = np.where(live.any(0), ((np.abs(v.sum(0)) / defined)[:, None] * live).sum(0) / live.sum(0), np.nan)
    rng = np.random.default_rng([seed, len(v)])
    # one score per keypoint and feature kind: a wrong map moves distances whichever way an instance
    # faces, orientations only as far as the facings are unbalanced; mixed, the many orientation
    # features of a keypoint would drown its few distance features
    inc = np.concatenate([live & (kinds == 0)[:, None], live & (kinds == 1)[:, None]], 1).astype(np.float64)
    active = m > 1e-12
    if not active.any():
        return MirrorTest(names, np.full(k, np.nan), deviation, len(v), 0, x.shape[1], 1.0)
    sums = v.sum(0)

    def per_keypoint(act: np.ndarray) -> np.ndarray:
        cols = inc * act[:, None]
        both = np.where(cols.any(0), _keypoint_scores(sums * act, m, cols), -np.inf).reshape(2, k)
        return both.max(0)

    p = _flip_test(v, m, inc * active[:, None], rng)
    scores = per_keypoint(active)
    res = MirrorTest(names, np.where(np.isfinite(scores), scores, np.nan), deviation, len(v),
                     int((v != 0).any(1).sum()), x.shape[1], p)
    while p <= alpha and active.any():
        i = int(np.argmax(per_keypoint(active)))
        res.blamed.append(names[i])
        res.steps.append((names[i], p))
        active = active & ~touch[:, i]
        p = _flip_test(v, m, inc * active[:, None], rng)
    return res


def _frame_test(pts: np.ndarray, lab: np.ndarray, perm: np.ndarray, names: list[str], alpha: float,
                seed: int) -> MirrorTest:
    """mirror_test for a map with pairs, on body-frame features (posedata/bodyframe.py): one
    randomisation test (bodyframe.flip_test: the largest z^2 and the largest per-orbit group score) decides; then blame one orbit at a time (bodyframe.culprit),
    its features set aside and the rest re-tested at alpha, until nothing is left beyond noise."""
    from . import bodyframe as B

    v, touch, _ = B.frame_features(pts, lab, perm)
    m = (v ** 2).sum(0)
    live = touch & (m > 1e-12)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        z2 = np.where(m > 1e-12, v.sum(0) ** 2 / np.maximum(m, 1e-12), 0.0)
        share = np.where(m > 1e-12, np.abs(v.sum(0)) / np.maximum(np.abs(v).sum(0), 1e-300), 0.0)
        scores = np.where(live.any(0), (z2[:, None] * live).sum(0) / live.sum(0), np.nan)
        deviation = np.where(live.any(0), (share[:, None] * live).sum(0) / live.sum(0), np.nan)
    rng = np.random.default_rng([seed, len(v)])
    active = m > 1e-12
    orb = B.orbits(perm)
    groups = np.stack([touch[:, list(o)].any(1) for o in orb])  # per orbit, the features that involve it
    p = B.flip_test(v, active, rng, FLIPS, groups)
    res = MirrorTest(names, scores, deviation, len(v), int((v != 0).any(1).sum()), v.shape[1], p)
    while p <= alpha and active.any():
        o = B.culprit(v, active, touch, orb)
        res.blamed += [names[i] for i in o]
        res.steps.append((names[o[0]], p))
        active = active & ~touch[:, list(o)].any(1)
        p = B.flip_test(v, active, rng, FLIPS, groups)
    return res


# ------------------------------------------------------------------ verdict
@dataclass
class FlipVerdict:
    """The one flip verdict flipcheck, check, the training gate and the demo print."""

    verdict: str  # PASS, FAIL, INCONCLUSIVE, NOT APPLICABLE
    reason: str
    n_instances: int  # instances with labelled keypoints
    flip_augment: bool
    property: list[tuple[str, str, bool]]  # skeleton-level flip property (kind, name, ok)
    test: MirrorTest | None = None  # the data against the skeleton's flip map (or against none)
    swaps: SwapCheck | None = None
    blamed_entries: list[str] = field(default_factory=list)  # "left_knee<->right_ankle", "left_wrist (unpaired)"

    @property
    def property_failures(self) -> list[str]:
        return [f"{kind} {name}" for kind, name, ok in self.property if not ok]

    @property
    def exit_code(self) -> int:
        return 1 if self.verdict == "FAIL" else 0

    @property
    def line(self) -> str:
        return f"{self.verdict}: {self.reason}"


def _entry(sk_names: list[str], perm: np.ndarray, name: str) -> str:
    i = sk_names.index(name)
    return f"{name} (unpaired)" if perm[i] == i else f"{name}<->{sk_names[perm[i]]}"


def flip_verdict(ds: Dataset, sk: Skeleton, category_id: CategorySpec = None) -> FlipVerdict:
    """PASS, FAIL, INCONCLUSIVE or NOT APPLICABLE for a skeleton's flip map on a dataset, and why.

    FAIL: the skeleton-level flip property fails, or the data disagree with the flip map (the
    randomisation test at ALPHA), or suspected left/right swaps are beyond annotation noise.
    NOT APPLICABLE: flips are off in the skeleton, or it has no flip pairs (then: are the data
    mirror-symmetric, so that flips are safe?). INCONCLUSIVE: fewer than MIN_PASS instances say
    anything and nothing failed. PASS otherwise."""
    prop = skeleton_flip_property(sk)
    pts, lab, anns = instance_keypoints(ds, sk, category_id)
    derived = set(sk.derived_indices)
    keep = np.array([i for i in range(sk.num_keypoints) if i not in derived], dtype=np.int64)
    names = [sk.keypoints[i] for i in keep]
    pos = {int(k): n for n, k in enumerate(keep)}
    perm = np.array([pos[int(sk.flip[k])] for k in keep], dtype=np.int64)
    out = FlipVerdict("PASS", "", len(anns), sk.flip_augment, prop)
    out.swaps = swap_check(ds, sk, pts, lab, anns)
    fails = []
    if out.property_failures:
        fails.append("the skeleton's flip map is not consistent with its own limbs (skeleton-level flip property "
                     f"fails for {', '.join(out.property_failures)}): fix `flip` / `limbs` in {sk.file or 'the skeleton'}")
    identity = bool((perm == np.arange(len(perm))).all())
    if sk.flip_augment:
        out.test = mirror_test(pts[:, keep], lab[:, keep], perm, names)
    t = out.test
    if t is not None and not identity and t.significant:
        # both members of a blamed pair are listed; its entry once
        out.blamed_entries = [_entry(names, perm, b) for b in t.blamed if names[perm[names.index(b)]] not in
                              t.blamed[:t.blamed.index(b)]]
        fails.append(f"the data disagree with the flip map around {', '.join(out.blamed_entries)} "
                     f"(randomisation test p = {t.p_value:.4f} <= {ALPHA} on {t.on})")
    if out.swaps is not None and out.swaps.common:
        sw = out.swaps
        fails.append(f"left/right labels look swapped in {len(sw.suspects)} of {sw.checked} instances, beyond the "
                     f"{100 * sw.noise:.0f}% annotation noise and natural poses explain (binomial p = {sw.p_value:.2g})")
    if fails:
        out.verdict, out.reason = "FAIL", "; ".join(fails)
    elif not sk.flip_augment:
        out.verdict = "NOT APPLICABLE"
        out.reason = ("flip augmentation is off in the skeleton (flip_augment: false): training never flips, so the "
                      "flip map is not checked against the data")
    elif identity:
        out.verdict = "NOT APPLICABLE"
        if t is not None and t.significant:
            out.reason = (f"the skeleton has no left/right pairs, and the data are not mirror-symmetric (p = "
                          f"{t.p_value:.4f} on {t.on}; most asymmetric: {', '.join(t.blamed[:4])}): "
                          "a flipped sample shows a pose the data never show. Set `flip_augment: false` in the "
                          "skeleton, or pair the keypoints that are left/right parts in `flip`")
        elif t is not None and t.informative >= MIN_PASS:
            out.reason = (f"the skeleton has no left/right pairs; the data look mirror-symmetric ({t.on}), "
                          "so horizontal flips are safe")
        else:
            n_inf = t.informative if t is not None else 0
            out.reason = (f"the skeleton has no left/right pairs; {n_inf} instance(s) are too few to say whether the "
                          f"data are mirror-symmetric (a flip is safe only if they are; {MIN_PASS}+ needed)")
    elif t is None or t.informative < MIN_PASS:
        n_inf = t.informative if t is not None else 0
        out.verdict = "INCONCLUSIVE"
        out.reason = (f"{n_inf} instance(s) with labelled keypoints are too few to judge the flip map (no FAIL "
                      f"without clear evidence; a PASS needs {MIN_PASS}+: bench/README.md, flipcheck)")
    else:
        out.verdict = "PASS"
        out.reason = (f"the flip map agrees with the data's mirror symmetry (randomisation test p = {t.p_value:.3f} "
                      f"on {t.on})")
    return out


def flip_findings(v: FlipVerdict, data_file: str | None, sk: Skeleton) -> list[Finding]:
    """The verdict as findings for `check` and the training gate (codes in docs/checks.md)."""
    out = []
    if v.property_failures:
        out.append(Finding("F003", "error", "skeleton-level flip property fails for "
                           f"{', '.join(v.property_failures)}: a flipped sample's targets would not be the mirror "
                           "of the original's; fix `flip` or `limbs`", where="flip", file=sk.file))
    t = v.test
    if v.blamed_entries and t is not None:
        out.append(Finding("F001", "error", f"the flip map disagrees with the data around {', '.join(v.blamed_entries)} "
                           f"(randomisation test p = {t.p_value:.4f} on {t.on}); run `posedata "
                           "flipcheck` for the plots", where="flip", file=sk.file))
    if v.swaps is not None and v.swaps.common:
        sw = v.swaps
        listed = "; ".join(f"annotation {s['annotation_id']} (image {s['image_id']}"
                           + (f", {s['file_name']}" if s["file_name"] else "") + f": {', '.join(s['pairs'])})"
                           for s in sw.suspects[:MAX_SUSPECTS])
        more = f" and {len(sw.suspects) - MAX_SUSPECTS} more" if len(sw.suspects) > MAX_SUSPECTS else ""
        out.append(Finding("F005", "error", f"left/right labels look swapped in {len(sw.suspects)} of {sw.checked} "
                           f"instances, more than the {100 * sw.noise:.0f}% annotation noise and natural poses explain (binomial p = "
                           f"{sw.p_value:.2g} <= {ALPHA}): {listed}{more}. `posedata flipcheck --images` draws them "
                           "first in instances.png; swap their left/right labels back", file=data_file))
    if v.verdict == "INCONCLUSIVE":
        out.append(Finding("F002", "info", f"flip map check inconclusive: {v.reason}", file=data_file))
    if v.verdict == "NOT APPLICABLE":
        asym = v.test is not None and v.test.significant
        out.append(Finding("F004", "warning" if asym else "info", f"flip map check not applicable: {v.reason}",
                           where="flip_augment" if asym else None, file=sk.file if asym else data_file))
    return out


# validate errors the flip check does not depend on (it reads keypoints, categories and images only)
IRRELEVANT_ERRORS = frozenset({"V026", "V030", "V031", "V034", "V035", "V041", "V053", "V060"})
_IRRELEVANT_FIELDS = (".area", ".bbox", ".num_keypoints", ".iscrowd", ".segmentation")


def _blocks(f: Finding) -> bool:
    if f.severity != "error" or f.code in IRRELEVANT_ERRORS:
        return False
    return not (f.code in ("V003", "V004") and (f.where or "").endswith(_IRRELEVANT_FIELDS))


def load_for_flipcheck(path, sk: Skeleton, images=None, category_id: CategorySpec = None) -> tuple[Dataset, list[Finding]]:
    """The dataset for the flip check, refusing only the errors that would change its verdict or
    break its plots (DataError with those findings); returns the dataset and the other errors, which
    the caller reports without stopping (a missing `area` says nothing about left and right)."""
    from . import coco
    from .errors import DataError
    from .validate import validate_file

    raw, findings = validate_file(path, sk, images=images, category_id=category_id)
    blocking = [f for f in findings if _blocks(f)]
    if blocking:
        first = "; ".join(f"{f.code} at {f.where}: {f.message}" if f.where else f"{f.code}: {f.message}"
                          for f in blocking[:3])
        more = f" (+{len(blocking) - 3} more)" if len(blocking) > 3 else ""
        raise DataError(f"the data has errors the flip check depends on: {first}{more}; run `posedata validate` for "
                        "the full report", blocking, file=str(path))
    ignored = [f for f in findings if f.severity == "error"]
    if ignored:  # fields the flip check never reads: drop them so loading cannot trip on them
        raw = dict(raw)
        raw["annotations"] = [{k: v for k, v in a.items() if k not in ("area", "bbox", "num_keypoints", "segmentation")}
                              if isinstance(a, dict) else a for a in raw.get("annotations", [])]
    return coco.from_coco(raw, file=str(path)), ignored


def write_plots(ds: Dataset, sk: Skeleton, v: FlipVerdict, output, images=None, num: int = 12, seed: int = 0,
                category_id: CategorySpec = None) -> list:
    """orientation.png (per keypoint scores), sides.png (per pair offsets) and, with images,
    instances.png (suspected swaps first, then random instances; original and flipped side by side).
    No orientation.png below MIN_FAIL informative instances: the test can never FAIL there, its
    scores rank noise, and the table printed beside it says as much."""
    from pathlib import Path

    from .plots import plot_flip_instances, plot_orientation_scores, plot_side_statistics

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if v.test is not None and v.test.informative >= MIN_FAIL:
        written.append(out / "orientation.png")
        plot_orientation_scores(v, written[-1])
    written.append(out / "sides.png")
    plot_side_statistics(side_statistics(ds, sk, category_id), written[-1])
    if images is not None:
        pts, lab, anns = instance_keypoints(ds, sk, category_id)
        swaps = suspected_swaps(pts, lab, sk).any(1)
        rng = np.random.default_rng(seed)
        order = list(np.flatnonzero(swaps)) + list(rng.permutation(np.flatnonzero(~swaps)))
        items = instance_crops(ds, sk, images, anns, pts, lab, [int(i) for i in order[:num]])
        written.append(out / "instances.png")
        plot_flip_instances(items, sk, written[-1])
    return written


def side_statistics(ds: Dataset, sk: Skeleton, category_id: CategorySpec = None) -> list[dict]:
    """Per flip pair: over instances labelling both, the signed horizontal offset of the left point
    from the right one as a fraction of the instance's keypoint extent; an annotator who swaps
    sides shows up as an outlier against the pair's majority."""
    pts, lab, anns = instance_keypoints(ds, sk, category_id)
    xs = np.where(lab, pts[..., 0], np.nan)
    with warnings.catch_warnings():  # instances with no labelled point give all-NaN rows
        warnings.simplefilter("ignore", RuntimeWarning)
        width = np.maximum(np.nan_to_num(np.nanmax(xs, 1) - np.nanmin(xs, 1)), 1.0) if len(pts) else np.zeros(0)
    out = []
    for a, b in sk.flip_pairs():
        ia, ib = sk.index(a), sk.index(b)
        both = lab[:, ia] & lab[:, ib]
        if sk.side(ia) == "right":
            ia, ib, a, b = ib, ia, b, a
        off = (pts[both, ia, 0] - pts[both, ib, 0]) / width[both]
        ids = [anns[n].id for n in np.flatnonzero(both)]
        out.append({
            "left": a, "right": b, "n": int(both.sum()),
            "left_of_right": float((off < 0).mean()) if both.any() else float("nan"),
            "offsets": off, "annotation_ids": ids,
        })
    return out


def instance_crops(ds: Dataset, sk: Skeleton, images_root, anns: list, pts: np.ndarray, lab: np.ndarray,
                   chosen: list[int], margin: float = 0.15, max_side: int = 320) -> list[dict]:
    """Image crops around chosen instances (at most max_side pixels) with their keypoints in crop coordinates."""
    from .errors import InputError
    from .images import read_image
    from .io import safe_image_path

    images = ds.image_index()
    out = []
    decoded: dict = {}  # several instances of one image: decode it once
    for n in chosen:
        a = anns[n]
        im = images.get(a.image_id)
        if im is None:
            continue
        try:
            p = safe_image_path(images_root, im.file_name)
        except InputError as e:
            raise InputError(e.message, file=ds.file, where=f"images (id {im.id}).file_name") from None
        if im.id not in decoded:
            decoded[im.id] = read_image(p)  # refuses a header that claims a huge size before decoding
        img = decoded[im.id]
        q = pts[n][lab[n]]
        if not len(q):
            continue
        x0, y0 = q.min(0)
        x1, y1 = q.max(0)
        mx, my = (x1 - x0) * margin + 10, (y1 - y0) * margin + 10
        xa, ya = int(max(0, x0 - mx)), int(max(0, y0 - my))
        xb, yb = int(min(img.shape[1], x1 + mx + 1)), int(min(img.shape[0], y1 + my + 1))
        if xb <= xa or yb <= ya:
            continue
        crop, q = img[ya:yb, xa:xb], pts[n] - [xa, ya]
        f = max_side / max(crop.shape[:2])
        if f < 1:  # a panel is a few hundred pixels wide: drawing a full-size photo crop took seconds
            import cv2

            crop = cv2.resize(crop, (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f))),
                              interpolation=cv2.INTER_AREA)
            q = q * [crop.shape[1] / (xb - xa), crop.shape[0] / (yb - ya)]
        out.append({"crop": crop, "points": q, "labelled": lab[n], "title": f"annotation {a.id} (image {a.image_id})"})
    return out


def skeleton_flip_property(sk: Skeleton, seed: int = 0, trials: int = 4, size: int = 128,
                           stride: int = 8) -> list[tuple[str, str, bool]]:
    """Render targets for random instances, and for the same instances mirrored with the flip map
    applied; per keypoint and per limb, PASS when the flipped sample's targets equal the flipped
    targets of the original. Heatmaps mirror exactly (cell centres are symmetric under
    x -> w - 1 - x). PAF cells sit on a grid that is not symmetric under that map, so for limbs the
    check is on the field's value: wherever both maps are non-zero the vectors must be equal,
    and the mirror limb must exist. One instance per trial, so no overwrite order interferes.
    Any involution passes: this proves internal consistency only."""
    from .targets import flip_targets, render_heatmaps, render_pafs

    rng = np.random.default_rng(seed)
    k = sk.num_keypoints
    mh = mw = size // stride
    limbs = sk.limbs_array
    kp_ok = np.array([sk.flip[sk.flip[i]] == i for i in range(k)])
    limb_ok = np.array([j >= 0 for j, _ in sk.limb_flip])
    limb_seen = np.zeros(sk.num_limbs, bool)
    for _ in range(trials):
        kp = np.zeros((1, k, 3), np.float32)
        kp[..., :2] = rng.uniform(8, size - 9, (1, k, 2))
        kp[..., 2] = 1
        fkp = np.empty_like(kp)
        fkp[:, list(sk.flip)] = kp  # point i of the original carries label flip[i] after the flip
        fkp[..., 0] = size - 1 - fkp[..., 0]
        hm, paf = render_heatmaps(kp, mh, mw, stride), render_pafs(kp, limbs, mh, mw, stride)
        fhm, fpaf = render_heatmaps(fkp, mh, mw, stride), render_pafs(fkp, limbs, mh, mw, stride)
        ehm, epaf = flip_targets(hm, paf, sk)
        kp_ok &= np.abs(fhm[:k] - ehm[:k]).reshape(k, -1).max(1) <= 1e-5
        for li in range(sk.num_limbs):
            got, exp = fpaf[2 * li:2 * li + 2], epaf[2 * li:2 * li + 2]
            both = (np.abs(got).sum(0) > 0) & (np.abs(exp).sum(0) > 0)
            limb_seen[li] |= bool(both.any())
            if both.any() and not np.allclose(got[:, both], exp[:, both], atol=1e-5):
                limb_ok[li] = False
    out = [("keypoint", name, bool(kp_ok[i])) for i, name in enumerate(sk.keypoints)]
    out += [("limb", "-".join(sk.limb_names(li)), bool(limb_ok[li] and limb_seen[li])) for li in range(sk.num_limbs)]
    return out


@dataclass
class FlipcheckRun:
    """What `posedata flipcheck` (and the demo's step) found and drew."""

    verdict: FlipVerdict
    ignored: list[Finding]  # validate errors in fields the flip check does not read
    plots: list  # the PNGs written, in the output folder given


def run_flipcheck(path, sk: Skeleton, output, images=None, num: int = 12, seed: int = 0,
                  category_id: CategorySpec = None, stage=None) -> FlipcheckRun:
    """Load the data (refusing what would change the verdict), decide the verdict and draw the
    plots into `output`. `stage(text)` is told each step as it starts (for a progress display)."""
    tell = stage or (lambda text: None)
    tell("reading the data")
    ds, ignored = load_for_flipcheck(path, sk, images, category_id)
    tell("testing the flip map")
    v = flip_verdict(ds, sk, category_id)
    tell("plots")
    return FlipcheckRun(v, ignored, write_plots(ds, sk, v, output, images, num, seed, category_id))
