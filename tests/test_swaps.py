from __future__ import annotations

from math import comb

import numpy as np
import pytest

from posedata import skeleton as S
from posedata import swaps as W
from posedata.sides import minority_pairs

SK = S.resolve("coco17")
# a frontal person (its left on the image's right), COCO order, y down
FRONT = np.array([[0, -60], [6, -66], [-6, -66], [12, -62], [-12, -62], [22, -40], [-22, -40], [30, -10],
                  [-30, -10], [32, 18], [-32, 18], [14, 10], [-14, 10], [15, 50], [-15, 50], [16, 90], [-16, 90]], float)
ARMS = [(5, 7, 9), (6, 8, 10)]  # shoulder, elbow, wrist
LEGS = [(11, 13, 15), (12, 14, 16)]  # hip, knee, ankle


def pair(name: str) -> int:
    return [i for i, (a, _) in enumerate(SK.flip_pairs()) if a == f"left_{name}"][0]


def swinging_people(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(N, 17, 2), (N, 17): correct labels; arms and legs swing about their roots, so wrists and
    ankles often cross in x (what made the old V070 count refuse correct data), some face away."""
    p = np.repeat(FRONT[None], n, 0)
    for limbs, spread in ((ARMS, 0.9), (LEGS, 0.35)):
        for a, b, c in limbs:
            ang = rng.normal(0, spread, n)
            rot = np.stack([np.cos(ang), -np.sin(ang), np.sin(ang), np.cos(ang)], 1).reshape(n, 2, 2)
            for j in (b, c):
                p[:, j] = p[:, a] + np.einsum("nij,nj->ni", rot, p[:, j] - p[:, a])
    p[rng.random(n) < 0.4, :, 0] *= -1  # facing away: the image shows the mirror, labels kept
    p += rng.normal(0, 3, p.shape)
    return p + 200, rng.random((n, 17)) > 0.15


def test_binom_upper_is_exact():
    for n in (1, 5, 17, 40):
        for k in range(n + 2):
            exact = sum(comb(n, j) for j in range(k, n + 1)) / 2 ** n if k > 0 else 1.0
            assert W.binom_upper(k, n)[0] == pytest.approx(exact, rel=1e-9, abs=1e-15)
    assert W.binom_upper(3, 10, 0.1)[0] == pytest.approx(1 - sum(comb(10, j) * 0.1 ** j * 0.9 ** (10 - j) for j in range(3)))


def test_midline_pairs_are_those_joined_to_the_partner_or_the_midline():
    near = {SK.flip_pairs()[j][0] for j in np.flatnonzero(W.midline_pairs(SK))}
    assert near == {"left_eye", "left_shoulder", "left_hip"}  # nose-eye, shoulder-shoulder/nose, hip-hip
    # openpose18's derived neck is on the midline: its shoulders are midline pairs through it
    op = S.resolve("openpose18")
    assert "left_shoulder" in {op.flip_pairs()[j][0] for j in np.flatnonzero(W.midline_pairs(op))}


@pytest.mark.parametrize("name", ["shoulder", "hip", "wrist", "elbow"])
def test_a_swapped_pair_is_suspected_alone(name):
    pts, lab = np.repeat(FRONT[None], 3, 0) + 200, np.ones((3, 17), bool)
    a, b = SK.index(f"left_{name}"), SK.index(f"right_{name}")
    pts[1, [a, b]] = pts[1, [b, a]]
    sw = W.suspected_swaps(pts, lab, SK)
    assert sw[1, pair(name)] and sw.sum() == 1


def test_crossed_wrists_with_right_labels_are_not_suspected():
    """Arms reaching across the body cross the wrists in x: V070 warns, but each wrist still hangs
    from its own elbow by a forearm, so no swap is suspected."""
    pts, lab = FRONT[None].copy() + 200, np.ones((1, 17), bool)
    pts[0, 9], pts[0, 10] = [190, 218], [210, 218]  # left wrist left of the right one
    left, right = W._pairs(SK).T
    assert minority_pairs(pts[..., 0], lab, left, right)[0][0, pair("wrist")]
    assert not W.suspected_swaps(pts, lab, SK).any()


def test_a_swapped_knee_pair_between_long_thighs_goes_unseen():
    """The rule's known blind spot (docs/checks.md): knees close together under long thighs look
    the same crossed or swapped, so a frontal knee swap is not counted."""
    pts, lab = FRONT[None].copy() + 200, np.ones((1, 17), bool)
    pts[0, [13, 14]] = pts[0, [14, 13]]
    assert not W.suspected_swaps(pts, lab, SK).any()


def test_correct_people_with_swinging_limbs_are_not_refused():
    """The old count (V070 against 10% noise) refused 27% of correct 50-person sets and all sets of
    500+; correct labels must stay under the allowance, at every size."""
    rng = np.random.default_rng(5)
    pts, lab = swinging_people(4000, rng)
    old = minority_pairs(pts[..., 0], lab, *W._pairs(SK).T)[0].any(1).mean()
    _, checked, hit, p = W.swap_counts(pts, lab, SK)
    assert old > 0.15  # the natural crossing that broke the old rule is there
    assert hit.sum() / checked.sum() < W.SWAP_NOISE / 2 and p > 0.5
    for n in (50, 500):
        assert W.swap_counts(pts[:n], lab[:n], SK)[3] > W.ALPHA


def test_swaps_in_a_third_of_the_people_are_refused():
    rng = np.random.default_rng(6)
    pts, lab = swinging_people(300, rng)
    body = [(5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]  # the face kept: image left taken as left
    for n in range(0, 300, 3):
        for a, b in body:
            pts[n, [a, b]] = pts[n, [b, a]]
    sw, checked, hit, p = W.swap_counts(pts, lab, SK)
    assert p <= W.ALPHA
    assert hit[::3].mean() > 0.3 and hit[1::3].mean() < 0.05  # the suspects are the swapped ones
