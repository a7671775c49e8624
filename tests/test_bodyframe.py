"""The body-frame mirror test (posedata/bodyframe.py): its features change sign under the null's own
transformation (so the sign-flip test is exact), and it finds and blames the wrong map entries
the old orientation/distance test missed at 50-100 instances (bench/README.md "flipcheck")."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from posedata import bodyframe as B
from posedata import flipcheck as F
from posedata import skeleton as S

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from bench_flipcheck import maps, people  # noqa: E402  (the benchmark's simulation: one definition of a person)

SK = S.resolve("coco17")
NAMES = list(SK.keypoints)
MAPS = maps(SK)


def mirrored(pts: np.ndarray, lab: np.ndarray, perm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """g(P): the mirror image, point i carrying label perm[i]."""
    g = pts.copy()
    g[..., 0] *= -1
    out, glab = np.empty_like(g), np.empty_like(lab)
    out[:, perm], glab[:, perm] = g, lab
    return out, glab


@pytest.mark.parametrize("name", list(MAPS))
def test_features_change_sign_under_mirror_and_relabel(name):
    """Exactness rests on h(g(P)) = -h(P) for every feature, whatever the map and the labelling."""
    perm = MAPS[name]
    pts, lab = people(40, np.random.default_rng(3))
    gpts, glab = mirrored(pts, lab, perm)
    x, touch, names = B.frame_features(np.concatenate([pts, gpts]), np.concatenate([lab, glab]), perm)
    assert x.shape[1] == len(names) == len(touch) and x.shape[1] > 20
    np.testing.assert_allclose(x[40:], -x[:40], atol=1e-9)
    assert np.abs(x[:40]).sum() > 0


def test_fewer_than_11_instances_never_fail_even_with_a_grossly_wrong_map():
    """All 2^n sign patterns are enumerated: p >= 2 / 2^n > 0.001 below 11 instances."""
    perm = MAPS["knee<->ankle cross pairing"]
    for n in (2, 5, 10):
        pts, lab = people(n, np.random.default_rng(n))
        res = F.mirror_test(pts, lab, perm, NAMES)
        assert res.p_value >= 2 / 2 ** n and not res.significant
    pts, lab = people(12, np.random.default_rng(1))
    res = F.mirror_test(pts, lab, perm, NAMES)
    assert res.p_value <= 2 / 2 ** 11  # both directions of the only sign pattern that beats nothing


@pytest.mark.parametrize("name,n", [("crossed pair (eye<->ear)", 100), ("missing pair (wrists)", 50),
                                    ("missing pair (knees)", 50), ("knee<->ankle cross pairing", 50)])
def test_wrong_maps_fail_blaming_only_their_entries(name, n):
    """The old test found the crossed eye<->ear pairs in 90% of 100-instance sets, blaming the nose
    too in 44% of them; a missing knee pair in 85% of 50-instance sets."""
    perm = MAPS[name]
    truth = {NAMES[i] for i in range(len(NAMES)) if perm[i] != SK.flip[i]}
    pts, lab = people(n, np.random.default_rng([11, n]))
    res = F.mirror_test(pts, lab, perm, NAMES)
    assert res.significant and res.blamed and set(res.blamed) <= truth, (res.blamed, res.steps)


def test_right_map_is_not_blamed():
    pts, lab = people(300, np.random.default_rng(4))
    res = F.mirror_test(pts, lab, MAPS["right map"], NAMES)
    assert not res.significant and res.p_value > 0.01


def test_blamed_pair_is_one_entry_in_the_verdict():
    from test_flipcheck import people as coco_people
    from test_flipcheck import with_flip

    pairs = [p for p in SK.flip_pairs() if "eye" not in p[0] and "ear" not in p[0]]
    sk = with_flip(SK, pairs + [("left_eye", "right_ear"), ("right_eye", "left_ear")])
    v = F.flip_verdict(coco_people(300, seed=2), sk)
    assert v.verdict == "FAIL", v.reason
    assert sorted(v.blamed_entries) == ["left_eye<->right_ear", "right_eye<->left_ear"], v.blamed_entries


def test_combined_statistic_keeps_the_exact_level():
    """The min-p of max z^2 and the group scores is exact: over all 2^n sign flips of one data set
    (the null's own orbit) at most a share a of them get p <= a, whatever the data."""
    rng = np.random.default_rng(5)
    n, c = 8, 12
    v = rng.normal(0.4, 1, (n, c)) * (rng.random((n, c)) > 0.3)  # shifted, partly undefined: any data
    groups = rng.random((4, c)) > 0.5
    eps = 1.0 - 2.0 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
    p = np.array([B.flip_test(v * e[:, None], np.ones(c, bool), rng, 99, groups) for e in eps])
    for a in np.unique(p):
        assert (p <= a + 1e-12).mean() <= a + 1e-12, a
    assert p.min() == 2 / 2 ** n  # a pattern and its negation tie: fewer than 11 instances never FAIL


def test_crossed_eye_ear_pairs_found_at_50_instances():
    """Eight weak features, each defined on its own ~15-30 of 50 instances: the largest z^2 alone
    gave p = 0.015 on this set; the per-orbit group score adds them up (bench/README.md "flipcheck")."""
    perm = MAPS["crossed pair (eye<->ear)"]
    pts, lab = people(50, np.random.default_rng([14, 50]))
    res = F.mirror_test(pts, lab, perm, NAMES)
    assert res.significant and set(res.blamed) == {"left_eye", "right_ear"}, (res.p_value, res.blamed)
