"""Targets: parity with a cell-by-cell implementation of the reference rules, masks, flip."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from repo_paths import TEMPLATE_NAMES

from posedata import skeleton as skmod
from posedata.errors import InputError
from posedata.targets import (
    crowd_mask,
    flip_targets,
    mask_to_map,
    render_heatmaps,
    render_pafs,
    render_targets,
    render_targets_batch,
)


# ----------------------------------------------------------- the rules, one cell at a time
def cellwise_heatmaps(kp, map_h, map_w, stride, sigma):
    """The reference's rules written as directly as possible: loop over instances and cells."""
    n, k, _ = kp.shape
    maps = np.zeros((k + 1, map_h, map_w), dtype=np.float32)
    shift = stride / 2 - 0.5
    for j in range(k):
        for i in range(n):
            x, y, v = (float(c) for c in kp[i, j])
            if v > 1:
                continue
            left = max(int(x - 4 * sigma), 0)
            top = max(int(y - 4 * sigma), 0)
            right = min(int(x + 4 * sigma), map_w * stride)
            bottom = min(int(y + 4 * sigma), map_h * stride)
            for my in range(top // stride, bottom // stride):
                for mx in range(left // stride, right // stride):
                    d2 = (mx * stride + shift - x) ** 2 + (my * stride + shift - y) ** 2
                    exponent = d2 / 2 / sigma / sigma
                    if exponent > 4.6052:
                        continue
                    maps[j, my, mx] = min(maps[j, my, mx] + math.exp(-exponent), 1.0)
    maps[k] = 1 - maps[:k].max(axis=0)
    return maps


def cellwise_pafs(kp, limbs, map_h, map_w, stride, t):
    maps = np.zeros((2 * len(limbs), map_h, map_w), dtype=np.float32)
    for li, (ia, ib) in enumerate(limbs):
        for i in range(kp.shape[0]):
            xa, ya, va = (float(c) for c in kp[i, ia])
            xb, yb, vb = (float(c) for c in kp[i, ib])
            if va > 1 or vb > 1:
                continue
            xa, ya, xb, yb = xa / stride, ya / stride, xb / stride, yb / stride
            dx, dy = xb - xa, yb - ya
            x0, x1 = int(max(min(xa, xb) - t, 0)), int(min(max(xa, xb) + t, map_w))
            y0, y1 = int(max(min(ya, yb) - t, 0)), int(min(max(ya, yb) + t, map_h))
            norm = (dx * dx + dy * dy) ** 0.5
            if norm < 1e-7:
                continue
            dx, dy = dx / norm, dy / norm
            for y in range(y0, y1):
                for x in range(x0, x1):
                    if abs((x - xa) * dy - (y - ya) * dx) <= t:
                        maps[2 * li, y, x] = dx
                        maps[2 * li + 1, y, x] = dy
    return maps


# --------------------------------------------------------------------- random inputs
@st.composite
def scenes(draw):
    k = draw(st.integers(1, 7))
    pairs = [(a, b) for a in range(k) for b in range(k) if a != b]
    limbs = draw(st.lists(st.sampled_from(pairs), min_size=0, max_size=8, unique=True)) if pairs else []
    n = draw(st.integers(1, 4))
    stride = draw(st.sampled_from([1, 2, 4, 8]))
    map_h = draw(st.integers(1, 24))
    map_w = draw(st.integers(1, 24))
    ext_x, ext_y = map_w * stride, map_h * stride
    # a mix of arbitrary floats and grid-aligned values (the latter make exact ties likely)
    coord_x = st.one_of(
        st.floats(-0.3 * ext_x - 10, 1.3 * ext_x + 10, allow_nan=False),
        st.sampled_from([-1e6, -500.0, float(ext_x), ext_x + 500.0, 1e6]),  # far outside / at the edge
        st.integers(-4, map_w + 4).map(lambda c: float(c * stride)),
        st.integers(-8, 2 * map_w + 8).map(lambda c: c * stride / 2),
    )
    coord_y = st.one_of(
        st.floats(-0.3 * ext_y - 10, 1.3 * ext_y + 10, allow_nan=False),
        st.sampled_from([-1e6, -500.0, float(ext_y), ext_y + 500.0, 1e6]),
        st.integers(-4, map_h + 4).map(lambda c: float(c * stride)),
        st.integers(-8, 2 * map_h + 8).map(lambda c: c * stride / 2),
    )
    kp = np.zeros((n, k, 3))
    for i in range(n):
        for j in range(k):
            kp[i, j] = (draw(coord_x), draw(coord_y), draw(st.sampled_from([0, 1, 1, 2])))
    if n > 1 and draw(st.booleans()):
        kp[1, :, :2] = kp[0, :, :2]  # coincident instances: sums to clip, PAF overwrite
    sigma = draw(st.sampled_from([0.7, 1.0, 2.5, 7.0, float(draw(st.floats(0.3, 12.0)))]))
    thickness = draw(st.sampled_from([0.5, 1.0, 1.5, float(draw(st.floats(0.1, 4.0)))]))
    return kp, np.array(limbs, dtype=np.int64).reshape(-1, 2), map_h, map_w, stride, sigma, thickness


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes())
def test_parity_with_cellwise_rules(scene):
    kp, limbs, map_h, map_w, stride, sigma, thickness = scene
    heat = render_heatmaps(kp, map_h, map_w, stride, sigma)
    assert heat.dtype == np.float32 and heat.shape == (kp.shape[1] + 1, map_h, map_w)
    np.testing.assert_allclose(heat, cellwise_heatmaps(kp, map_h, map_w, stride, sigma), rtol=0, atol=1e-5)
    pafs = render_pafs(kp, limbs, map_h, map_w, stride, thickness)
    assert pafs.dtype == np.float32 and pafs.shape == (2 * len(limbs), map_h, map_w)
    np.testing.assert_allclose(pafs, cellwise_pafs(kp, limbs, map_h, map_w, stride, thickness), rtol=0, atol=1e-5)


# A standing person in openpose18 order, unit height, origin at the neck.
PERSON18 = np.array([
    [0, -0.12], [0, 0], [-0.1, 0], [-0.14, 0.16], [-0.16, 0.32], [0.1, 0], [0.14, 0.16], [0.16, 0.32],
    [-0.07, 0.33], [-0.08, 0.55], [-0.08, 0.78], [0.07, 0.33], [0.08, 0.55], [0.08, 0.78],
    [-0.03, -0.15], [0.03, -0.15], [-0.06, -0.13], [0.06, -0.13],
])


def people18(n, rng, vis=True):
    out = np.zeros((n, 18, 3))
    for i in range(n):
        h, a = rng.uniform(60, 260), rng.uniform(-0.8, 0.8)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        out[i, :, :2] = (PERSON18 * h) @ rot.T + rng.uniform(-20, 390, 2)
        out[i, :, 2] = rng.choice([0, 1, 1, 1, 2], 18) if not vis else 1
    return out


@pytest.mark.parametrize("n", [1, 3, 10])
def test_openpose18_parity(n):
    sk = skmod.resolve("openpose18")
    rng = np.random.default_rng(n)
    for trial in range(3):
        kp = people18(n, rng, vis=trial > 0)
        heat, pafs = render_targets(kp, sk, 46, 46)
        np.testing.assert_allclose(heat, cellwise_heatmaps(kp, 46, 46, 8, 7.0), rtol=0, atol=1e-5)
        np.testing.assert_allclose(pafs, cellwise_pafs(kp, sk.limbs, 46, 46, 8, 1.0), rtol=0, atol=1e-5)
        assert heat[:-1].max() > 0.9 and np.abs(pafs).max() > 0.5  # something was drawn


def test_long_limbs_split_path():
    """Limbs across the whole map make the dense boxes large enough to be split in two groups."""
    from posedata import targets as targets_mod

    sk = skmod.resolve("openpose18")
    rng = np.random.default_rng(5)
    kp = people18(10, rng)
    kp[:4, :, :2] = rng.uniform(0, 368, (4, 18, 2))  # random points: limbs up to the map's size
    lb = np.asarray(sk.limbs)
    assert kp.shape[0] * len(lb) * 46 * 46 > targets_mod._SPLIT_CELLS
    pafs = render_pafs(kp, lb, 46, 46)
    np.testing.assert_allclose(pafs, cellwise_pafs(kp, sk.limbs, 46, 46, 8, 1.0), rtol=0, atol=1e-5)
    assert not render_pafs(kp, lb, 46, 46, thickness=-0.5).any()  # negative box widths: no cells


@pytest.mark.parametrize("seed", range(6))
def test_span_groups_minimise_dense_cells(seed):
    """The split of PAF segments by span is the one with the fewest dense cells (each group costs
    its size times its largest span squared), kept only when it saves more than _GROUP_CELLS, and
    the groups hold every segment once."""
    from posedata import targets as targets_mod

    rng = np.random.default_rng(seed)
    n = int(rng.integers(200, 3000))
    spans = rng.choice([0, 1, 2, 3, 4, 5, 6, 9, 12, 20], n, p=[.02, .05, .1, .2, .2, .15, .1, .1, .05, .03])
    if seed == 0:
        spans[:3] = -2  # a negative thickness gives negative widths: an empty box
    total = int(spans.max())
    groups = targets_mod._span_groups(spans, total)
    cells = [(s * s if s > 0 else 0) * (spans <= s).sum() + total * total * (spans > s).sum()
             for s in range(total + 1)]
    best = min(range(total + 1), key=lambda s: (cells[s], s))
    if n * total * total - cells[best] > targets_mod._GROUP_CELLS and (spans > best).any():
        (short, s_short), (long_, s_long) = groups
        assert (s_short, s_long) == (best, total)
        np.testing.assert_array_equal(np.sort(np.concatenate([short, long_])), np.arange(n))
        assert spans[short].max() == best and (spans[long_] > best).all()
    else:
        assert len(groups) == 1 and groups[0][1] == total


def test_heatmap_sums_clipped_only_where_they_exceed_one():
    """Two people at the same spot sum to over 1 near their points: those cells (and only those)
    are clipped to 1, in a batch whose other samples have no such cell, which stay bit-identical
    to their own single-sample maps."""
    sk = skmod.resolve("openpose18")
    rng = np.random.default_rng(8)
    twins = people18(2, rng)
    twins[1] = twins[0]
    batch = [people18(3, rng, vis=False), twins, people18(1, rng)]
    heat, pafs = render_targets_batch(batch, sk, 46, 46)
    want = cellwise_heatmaps(twins, 46, 46, 8, 7.0)
    np.testing.assert_allclose(heat[1], want, rtol=0, atol=1e-5)
    assert (heat[1][:-1] == 1.0).sum() >= 18 and heat[1].max() == 1.0  # clipped peaks
    single = render_heatmaps(twins[:1], 46, 46)[:-1]
    assert (single * 2 > 1).any() and (single[single > 0] * 2 < 1).any()
    np.testing.assert_array_equal(heat[1][:-1], np.minimum(single * 2, 1))  # each sum exact, then clipped
    for b, kp in enumerate(batch):
        h1, p1 = render_targets(kp, sk, 46, 46)
        np.testing.assert_array_equal(heat[b], h1)
        np.testing.assert_array_equal(pafs[b], p1)


def test_targets_edge_cases():
    # nothing labelled: zero maps, background 1
    kp = np.zeros((2, 3, 3))
    kp[..., 2] = 2
    heat = render_heatmaps(kp, 5, 6)
    assert (heat[:3] == 0).all() and (heat[3] == 1).all()
    assert (render_pafs(kp, np.array([[0, 1]]), 5, 6) == 0).all()
    # zero-length limb draws nothing; a NaN coordinate is treated as unlabelled
    kp = np.array([[[20.0, 20.0, 1], [20.0, 20.0, 1], [np.nan, 3.0, 1]]])
    assert (render_pafs(kp, np.array([[0, 1], [0, 2]]), 6, 6) == 0).all()
    assert render_heatmaps(kp, 6, 6)[2].max() == 0
    # later instances overwrite: two crossing limbs on the same channel
    kp = np.array([[[0.0, 20.0, 1], [40.0, 20.0, 1]], [[20.0, 0.0, 1], [20.0, 40.0, 1]]])
    pafs = render_pafs(kp, np.array([[0, 1]]), 6, 6)
    assert pafs[0, 2, 2] == 0 and pafs[1, 2, 2] == 1  # the vertical (second) instance won
    np.testing.assert_array_equal(pafs, cellwise_pafs(kp, [(0, 1)], 6, 6, 8, 1.0))
    # a window starting at the map's far corner on the last channel, with wide windows on a small
    # map: the flat offsets must not run past the array (regression)
    for size in range(1, 8):
        kp = np.array([[[12.0, 12.0, 1], [500.0, 500.0, 1]]])
        got = render_heatmaps(kp, size, size, 8, 3.0)
        np.testing.assert_allclose(got, cellwise_heatmaps(kp, size, size, 8, 3.0), atol=1e-5)
    with pytest.raises(InputError):
        render_heatmaps(np.zeros((2, 4)), 4, 4)
    with pytest.raises(InputError):
        render_targets(np.zeros((1, 3, 3)), skmod.resolve("openpose18"), 4, 4)


# --------------------------------------------------------------------------- masks
def test_crowd_mask_polygon_and_rle():
    from pycocotools import mask as mask_utils

    h, w = 40, 50
    square = [[10.0, 5.0, 30.0, 5.0, 30.0, 25.0, 10.0, 25.0]]
    m = crowd_mask([square], h, w)
    assert m.dtype == np.uint8 and m.shape == (h, w)
    assert m[15, 20] == 0 and m[2, 2] == 1 and m[35, 45] == 1
    assert 350 <= (m == 0).sum() <= 450  # ~20 x 20 pixels

    block = np.zeros((h, w), dtype=np.uint8, order="F")
    block[30:36, 40:48] = 1
    compressed = mask_utils.encode(block)
    compressed_json = {"size": compressed["size"], "counts": compressed["counts"].decode("ascii")}
    # uncompressed RLE: run lengths in column-major order, starting with zeros
    flat = block.flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    uncompressed = {"size": [h, w], "counts": runs}
    for seg in (compressed_json, uncompressed):
        m2 = crowd_mask([seg], h, w)
        np.testing.assert_array_equal(m2, 1 - block)
    both = crowd_mask([square, uncompressed], h, w)
    assert (both == (m & (1 - block))).all()
    assert (crowd_mask([], h, w) == 1).all()
    with pytest.raises(InputError):
        crowd_mask([{"counts": 5}], h, w)
    three = crowd_mask([square, compressed_json, uncompressed], h, w)  # merged, decoded once
    np.testing.assert_array_equal(three, both)


@pytest.mark.parametrize("bad", [
    {"counts": "!!!!zz", "size": [40, 50]},  # not a valid compressed string
    {"counts": [1000, 5, 996], "size": [40, 50]},  # one pixel too many
    {"counts": [900, -3, 1103], "size": [40, 50]},  # negative run
    {"counts": [500.5, 1499.5], "size": [40, 50]},  # not whole runs
    {"counts": [100, 100], "size": [40, 50]},  # too short for the image
    {"counts": "abc", "size": [5, 50]},  # another image's size
])
def test_crowd_mask_corrupt_rle_among_valid_regions(bad):
    """pycocotools' merge loops forever, in C, on some corrupt counts (seen here): every region is
    checked before the merge and the corrupt one is named. Run in a child process with a time
    limit, since a loop in C cannot be interrupted from Python."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from posedata.targets import crowd_mask\n"
        "from posedata.errors import InputError\n"
        "square = [[10.0, 5.0, 30.0, 5.0, 30.0, 25.0, 10.0, 25.0]]\n"
        "try:\n"
        "    crowd_mask([square, json.loads(sys.argv[1]), square], 40, 50)\n"
        "except InputError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(bad)], capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert "crowd segmentation [1]" in out.stdout, (out.stdout, out.stderr)


def test_mask_to_map_is_area_average():
    m = np.ones((368, 368), dtype=np.float32)
    m[0:16, 0:12] = 0  # 2 x 1.5 cells
    small = mask_to_map(m, 46, 46)
    assert small.dtype == np.float32 and small.shape == (46, 46)
    assert small[0, 0] == 0 and small[1, 0] == 0
    assert small[0, 1] == pytest.approx(0.5) and small[5, 5] == 1
    # uint8 masks are reduced in uint8 like the reference's crop mask: cells round to 0 or 1
    m8 = mask_to_map(m.astype(np.uint8), 46, 46)
    assert m8.dtype == np.float32 and set(np.unique(m8)) <= {0.0, 1.0}
    m[0:8, 8:11] = 1  # 3 of 8 columns zero in cell (0, 1): mean 0.625 -> 1
    assert mask_to_map(m.astype(np.uint8), 46, 46)[0, 1] == 1
    m[0:8, 8:13] = 0  # 5 of 8 zero: mean 0.375 -> 0
    assert mask_to_map(m.astype(np.uint8), 46, 46)[0, 1] == 0


# ---------------------------------------------------------------------------- flip
def _mirror(kp, sk, width):
    m = kp.copy()
    m[..., 0] = width - 1 - m[..., 0]
    return m[:, sk.flip_array]


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_flip_targets_involution(name):
    sk = skmod.resolve(name)
    rng = np.random.default_rng(7)
    kp = np.concatenate([rng.uniform(0, 368, (3, sk.num_keypoints, 2)), np.ones((3, sk.num_keypoints, 1))], axis=2)
    heat, pafs = render_targets(kp, sk, 46, 46)
    h2, p2 = flip_targets(*flip_targets(heat, pafs, sk), sk)
    np.testing.assert_array_equal(h2, heat)
    mirrored = np.array([j >= 0 for j, _ in sk.limb_flip]).repeat(2)
    np.testing.assert_array_equal(p2[mirrored], pafs[mirrored])
    assert (p2[~mirrored] == 0).all()


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_flip_targets_match_targets_of_mirrored_keypoints(name):
    """Heatmaps mirror exactly (cell centres are symmetric under x -> w - 1 - x). PAF cells sit
    on integer map coordinates and the box ends are truncated, so mirrored supports differ by up
    to a cell or two at the band edges; what holds exactly is the value wherever both are drawn."""
    sk = skmod.resolve(name)
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:46, 0:46]
    for _ in range(6):
        kp = np.concatenate([rng.uniform(0, 368, (1, sk.num_keypoints, 2)), np.ones((1, sk.num_keypoints, 1))], axis=2)
        heat, pafs = render_targets(kp, sk, 46, 46)
        fh, fp = flip_targets(heat, pafs, sk)
        mk = _mirror(kp, sk, 368)
        mh, mp = render_targets(mk, sk, 46, 46)
        np.testing.assert_allclose(mh, fh, rtol=0, atol=1e-6)
        for li, (a, b) in enumerate(sk.limbs):
            if sk.limb_flip[li][0] < 0:
                continue
            got = mp[2 * li: 2 * li + 2]
            want = fp[2 * li: 2 * li + 2]
            sup_got, sup_want = (got != 0).any(0), (want != 0).any(0)
            both = sup_got & sup_want
            np.testing.assert_allclose(got[:, both], want[:, both], rtol=0, atol=1e-6)
            pa, pb = mk[0, a, :2] / 8, mk[0, b, :2] / 8
            if np.linalg.norm(pb - pa) >= 2:
                assert both.any()
            # every cell drawn in one but not the other hugs the same limb segment
            cells = np.stack([xx[sup_got ^ sup_want], yy[sup_got ^ sup_want]], 1).astype(float)
            v = pb - pa
            tt = np.clip((cells - pa) @ v / max(v @ v, 1e-12), 0, 1)
            dist = np.linalg.norm(cells - (pa + tt[:, None] * v), axis=1)
            assert dist.size == 0 or dist.max() <= 1.0 + 2.0


# --------------------------------------------------------------------------- batches
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(scenes(), min_size=1, max_size=4), st.integers(0, 3))
def test_batch_equals_per_sample(batch, empty_at):
    """render_targets_batch gives every sample exactly (bit for bit) its render_targets maps,
    whatever the other samples hold: ragged instance counts, an instance-less sample, one
    sample's points far outside the map (the windows of neighbours in the flat array)."""
    # one skeleton and map geometry for the batch, taken from the first scene
    kp0, limbs, map_h, map_w, stride, sigma, thickness = batch[0]
    k = kp0.shape[1]
    # render_targets reads only these three attributes of a skeleton
    sk = SimpleNamespace(name="t", num_keypoints=k, limbs=tuple(map(tuple, limbs.tolist())))
    samples = [kp[:, :k] if kp.shape[1] >= k else np.pad(kp, ((0, 0), (0, k - kp.shape[1]), (0, 0)),
                                                           constant_values=2)
               for kp, *_ in batch]
    samples.insert(min(empty_at, len(samples)), np.zeros((0, k, 3)))
    heat, pafs = render_targets_batch(samples, sk, map_h, map_w, stride, sigma, thickness)
    assert heat.shape == (len(samples), k + 1, map_h, map_w) and pafs.shape[0] == len(samples)
    for b, kp in enumerate(samples):
        h1, p1 = render_targets(kp, sk, map_h, map_w, stride, sigma, thickness)
        np.testing.assert_array_equal(heat[b], h1)
        np.testing.assert_array_equal(pafs[b], p1)
        np.testing.assert_allclose(h1, cellwise_heatmaps(kp, map_h, map_w, stride, sigma), rtol=0, atol=1e-5)
        np.testing.assert_allclose(p1, cellwise_pafs(kp, sk.limbs, map_h, map_w, stride, thickness),
                                   rtol=0, atol=1e-5)


def test_batch_padded_array_and_openpose18():
    sk = skmod.resolve("openpose18")
    rng = np.random.default_rng(3)
    ragged = [people18(n, rng, vis=False) for n in (1, 4, 2, 10)]
    padded = np.full((4, 10, 18, 3), 2.0)
    for b, kp in enumerate(ragged):
        padded[b, : kp.shape[0]] = kp
    heat, pafs = render_targets_batch(ragged, sk, 46, 46)
    heat2, pafs2 = render_targets_batch(padded, sk, 46, 46)
    np.testing.assert_array_equal(heat, heat2)
    np.testing.assert_array_equal(pafs, pafs2)
    for b, kp in enumerate(ragged):
        np.testing.assert_allclose(heat[b], cellwise_heatmaps(kp, 46, 46, 8, 7.0), rtol=0, atol=1e-5)
        np.testing.assert_allclose(pafs[b], cellwise_pafs(kp, sk.limbs, 46, 46, 8, 1.0), rtol=0, atol=1e-5)
    assert heat.base is pafs.base  # one allocation
    with pytest.raises(InputError):
        render_targets_batch([np.zeros((1, 17, 3))], sk, 46, 46)


def test_batch_in_chunks_equals_per_sample(monkeypatch):
    """A batch rendered in several chunks (as a large one is, to stay in cache) still gives every
    sample exactly its own maps, in one allocation, whatever the chunk boundaries cut."""
    import posedata.targets as targets_mod

    sk = skmod.resolve("openpose18")
    rng = np.random.default_rng(11)
    batch = [people18(n, rng, vis=False) for n in (3, 1, 10, 2, 0, 4, 1)]
    whole_h, whole_p = render_targets_batch(batch, sk, 46, 46)
    per_sample = (18 + 1 + 2 * len(sk.limbs)) * 46 * 46 * 4
    for chunk in (1, 2, 3):  # samples per chunk: 7, 4 (4 + 3) and 3 (3 + 2 + 2) chunks
        monkeypatch.setattr(targets_mod, "_CHUNK_BYTES", chunk * per_sample)
        heat, pafs = render_targets_batch(batch, sk, 46, 46)
        assert heat.base is pafs.base and heat.shape[0] == len(batch)
        np.testing.assert_array_equal(heat, whole_h)
        np.testing.assert_array_equal(pafs, whole_p)
    for b, kp in enumerate(batch):
        h1, p1 = render_targets(kp, sk, 46, 46)
        np.testing.assert_array_equal(whole_h[b], h1)
        np.testing.assert_array_equal(whole_p[b], p1)


def test_recycled_output_memory(monkeypatch):
    """A large output reuses the memory of a dead output of the same size (the trainer's batch
    of 80 would otherwise get 38 MB of fresh kernel pages per batch): the reused memory is zeroed
    whatever the caller wrote into its old output (in a batch drawn in several chunks), and memory
    that any view still references is never handed out again."""
    import posedata.targets as targets_mod

    sk = skmod.resolve("openpose18")
    rng = np.random.default_rng(12)
    batch_a = [people18(n, rng, vis=False) for n in (3, 1, 10, 2, 0, 4, 1)]
    batch_b = [people18(n, rng, vis=False) for n in (2, 5, 0, 1, 3, 3, 8)]
    want = [render_targets(kp, sk, 46, 46) for kp in batch_b]
    per_sample = (18 + 1 + 2 * len(sk.limbs)) * 46 * 46 * 4
    pool = targets_mod._OutputPool(0)  # every size recycled, so that a small batch exercises it
    monkeypatch.setattr(targets_mod, "_OUTPUTS", pool)
    monkeypatch.setattr(targets_mod, "_CHUNK_BYTES", 2 * per_sample)  # 4 chunks

    heat, pafs = render_targets_batch(batch_a, sk, 46, 46)
    address = heat.ctypes.data
    heat.fill(np.nan)  # a caller may write into its output
    pafs.fill(7.0)
    del heat, pafs
    heat, pafs = render_targets_batch(batch_b, sk, 46, 46)
    assert heat.ctypes.data == address  # recycled
    for b, (h1, p1) in enumerate(want):
        np.testing.assert_array_equal(heat[b], h1)
        np.testing.assert_array_equal(pafs[b], p1)

    kept = pafs[3]  # one view of one sample keeps the whole output's memory
    snapshot = kept.copy()
    del heat, pafs
    for _ in range(3):
        heat2, pafs2 = render_targets_batch(batch_a, sk, 46, 46)
        assert not np.shares_memory(heat2, kept) and not np.shares_memory(pafs2, kept)
        np.testing.assert_array_equal(kept, snapshot)
    del kept
    heat3, _ = render_targets_batch(batch_a, sk, 46, 46)
    assert heat3.ctypes.data == address  # back once the view is gone


def test_trainer_batch_of_80_recycles_its_output():
    """The default pool takes the trainer's reference batch (80 samples, 38 MB): a batch rendered
    after the previous one died reuses its memory and still equals per-sample rendering."""
    sk = skmod.resolve("openpose18")
    rng = np.random.default_rng(13)
    batch = [people18(int(n), rng, vis=False) for n in rng.integers(0, 6, 80)]
    heat, pafs = render_targets_batch(batch, sk, 46, 46)
    address = heat.ctypes.data
    del heat, pafs
    heat, pafs = render_targets_batch(batch[::-1], sk, 46, 46)
    assert heat.ctypes.data == address
    for b in (0, 17, 79):
        h1, p1 = render_targets(batch[79 - b], sk, 46, 46)
        np.testing.assert_array_equal(heat[b], h1)
        np.testing.assert_array_equal(pafs[b], p1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc behaviour")
def test_small_batches_do_not_fault_in_fresh_pages(tmp_path):
    """In a fresh process that renders only the cpu-small preset's batches (16 samples at 128 px:
    16 x 16 maps, a 0.9 MB output), one after another, the temporaries stay in malloc's heap:
    before, glibc's small mmap threshold gave them fresh pages on every call (here ~670 page
    faults per call; 3 people of the bench: 620, 2.7x the time)."""
    rng = np.random.default_rng(14)
    batches = np.stack([[people18(10, rng, vis=False) for _ in range(16)] for _ in range(5)])
    batches[..., :2] *= 128 / 368
    np.save(tmp_path / "batches.npy", batches)
    code = (
        "import resource, sys, numpy as np\n"
        "from posedata import skeleton as skmod\n"
        "from posedata.targets import render_targets_batch\n"
        "sk = skmod.resolve('openpose18')\n"
        "batches = [list(b) for b in np.load(sys.argv[1])]\n"
        "for b in batches:\n"
        "    render_targets_batch(b, sk, 16, 16)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(4):\n"
        "    for b in batches:\n"
        "        render_targets_batch(b, sk, 16, 16)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "batches.npy")], capture_output=True,
                         text=True, env=env, check=True)
    assert float(run.stdout) < 50
