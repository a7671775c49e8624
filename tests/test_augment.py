"""Augmentation: the composed warp against the reference's step-by-step transforms, determinism,
the flip property for every template, masks, and the label-file entry point."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from image_files import photo
from repo_paths import TEMPLATE_NAMES

from posedata import skeleton as skmod
from posedata.augment import (
    AugmentConfig,
    Draw,
    draw_params,
    make_sample,
    to_network_input,
    training_sample,
)
from posedata.errors import InputError
from posedata.labels import Labels
from posedata.targets import crowd_mask, flip_targets

CFG = AugmentConfig()


def instances(sk, n: int, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kp = np.zeros((n, sk.num_keypoints, 3))
    for i in range(n):
        c = rng.uniform([w * 0.2, h * 0.2], [w * 0.8, h * 0.8])
        kp[i, :, :2] = c + rng.uniform(-60, 60, (sk.num_keypoints, 2))
        kp[i, :, 2] = rng.choice([0, 1, 1, 1, 2], sk.num_keypoints)
    kp[..., 0] = kp[..., 0].clip(0, w - 1)
    kp[..., 1] = kp[..., 1].clip(0, h - 1)
    return kp


def reference_steps(image, kp, objpos, scale_provided, d: Draw, sk, cfg=CFG):
    """The reference's four passes, one after the other (resize, rotate on an enlarged canvas,
    crop by an integer shift, flip), on the image and on the points."""
    s = cfg.target_dist / scale_provided * d.scale_multiplier
    img = cv2.resize(image, dsize=(0, 0), fx=s, fy=s)
    pts = kp[..., :2] * s
    obj = np.asarray(objpos, dtype=np.float64) * s
    h, w = img.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), d.degree, 1)
    c, sn = abs(rot[0, 0]), abs(rot[0, 1])
    bw, bh = int(h * sn + w * c), int(h * c + w * sn)
    rot[0, 2] += bw / 2 - w / 2
    rot[1, 2] += bh / 2 - h / 2
    img = cv2.warpAffine(img, rot, (bw, bh), borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
    pts = pts @ rot[:, :2].T + rot[:, 2]
    obj = rot[:, :2] @ obj + rot[:, 2]
    left = -int(obj[0] + d.offset_x - cfg.crop_w / 2)
    up = -int(obj[1] + d.offset_y - cfg.crop_h / 2)
    shift = np.float64([[1, 0, left], [0, 1, up]])  # an integer shift: the reference's array copy
    img = cv2.warpAffine(img, shift, (cfg.crop_w, cfg.crop_h), flags=cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
    pts = pts + [left, up]
    out = np.concatenate([pts, kp[..., 2:]], axis=-1)
    if d.flip:
        img = cv2.flip(img, 1)
        out[..., 0] = cfg.crop_w - 1 - out[..., 0]
        out = out[:, sk.flip_array]
    return img, out


@pytest.mark.parametrize("seed", range(6))
def test_composed_warp_matches_reference_steps(seed):
    sk = skmod.resolve("openpose18")
    image = photo(seed=seed)
    kp = instances(sk, 3, *image.shape[:2], seed=seed)
    objpos, sp = kp[0, 1, :2], 0.45
    rng = np.random.default_rng(seed)
    d = draw_params(CFG, np.random.default_rng(seed))
    sample = make_sample(image, kp, objpos, sp, None, sk, CFG, rng)
    ref_img, ref_kp = reference_steps(image, kp, objpos, sp, d, sk)
    assert sample.flipped == d.flip
    np.testing.assert_allclose(sample.keypoints[..., :2], ref_kp[..., :2], atol=1e-3)
    np.testing.assert_array_equal(sample.keypoints[..., 2], ref_kp[..., 2])
    # one bilinear interpolation instead of two: close, not identical
    diff = np.abs(sample.image.astype(int) - ref_img.astype(int))
    assert diff.mean() < 3.0 and np.percentile(diff, 99) < 40
    # the affine is the keypoint transform
    src = kp[..., :2] @ sample.affine[:, :2].T + sample.affine[:, 2]
    src = src[:, sk.flip_array] if sample.flipped else src
    np.testing.assert_allclose(sample.keypoints[..., :2], src, atol=1e-3)


def test_wrong_angle_sign_would_show():
    """The image comparison above is sharp enough to catch a mirrored rotation."""
    sk = skmod.resolve("openpose18")
    image = photo()
    kp = instances(sk, 1, *image.shape[:2], seed=1)
    d = Draw(1.0, 30.0, 0, 0, False)
    bad = Draw(1.0, -30.0, 0, 0, False)
    ref_img, _ = reference_steps(image, kp, kp[0, 1, :2], 0.45, d, sk)
    wrong_img, _ = reference_steps(image, kp, kp[0, 1, :2], 0.45, bad, sk)
    assert np.abs(ref_img.astype(int) - wrong_img.astype(int)).mean() > 10


def test_same_seed_same_sample():
    sk = skmod.resolve("coco17")
    image = photo()
    kp = instances(sk, 4, *image.shape[:2], seed=3)
    mask = np.ones(image.shape[:2], np.uint8)
    mask[50:120, 60:200] = 0
    a = make_sample(image, kp, kp[0, 0, :2], 0.5, mask, sk, CFG, np.random.default_rng(42))
    b = make_sample(image, kp, kp[0, 0, :2], 0.5, mask, sk, CFG, np.random.default_rng(42))
    c = make_sample(image, kp, kp[0, 0, :2], 0.5, mask, sk, CFG, np.random.default_rng(43))
    for f in ("image", "mask", "keypoints", "heatmaps", "pafs", "affine"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert a.flipped == b.flipped
    assert not np.array_equal(a.affine, c.affine)
    assert a.image.shape == (368, 368, 3) and a.image.dtype == np.uint8
    assert a.mask.shape == (46, 46) and a.mask.dtype == np.float32
    assert a.heatmaps.shape == (18, 46, 46) and a.pafs.shape == (2 * sk.num_limbs, 46, 46)
    assert a.keypoints.dtype == np.float32 and a.keypoints.shape == kp.shape


def test_no_augment_is_a_centre_crop():
    sk = skmod.resolve("openpose18")
    image = photo()
    kp = instances(sk, 2, *image.shape[:2], seed=5)
    obj = np.array([211.3, 140.7])
    a = make_sample(image, kp, obj, 0.6, None, sk, CFG, None, augment=False)
    b = make_sample(image, kp, obj, 0.6, None, sk, CFG, np.random.default_rng(9), augment=False)
    np.testing.assert_array_equal(a.image, b.image)
    assert not a.flipped
    np.testing.assert_allclose(a.affine[:, :2], np.eye(2))  # scale 0.6 / 0.6, no rotation
    centre = a.affine[:, :2] @ obj + a.affine[:, 2]
    # int() truncates toward zero: the centre lands in [184, 185) or, left of / above it, (183, 184]
    assert 183 < centre[0] < 185 and 183 < centre[1] < 185
    with pytest.raises(ValueError):
        make_sample(image, kp, obj, 0.6, None, sk, CFG, None, augment=True)


def test_keypoints_outside_crop_keep_their_visibility():
    sk = skmod.resolve("openpose18")
    image = photo(h=600, w=900)
    kp = instances(sk, 2, 600, 900, seed=2)
    kp[1, :, 0] = 880  # far right: leaves the 368 crop around the first instance
    kp[1, :, 1] = 20
    kp[0, :, :2] = [200, 300]
    kp[0, 3] = [0, 0, 1]  # the reference's clean-up: exactly (0, 0) is absent
    s = make_sample(image, kp, [200, 300], 0.6, None, sk, CFG, None, augment=False)
    assert (s.keypoints[1, :, 0] > 368).all()
    np.testing.assert_array_equal(s.keypoints[1, :, 2], kp[1, :, 2])
    assert s.keypoints[0, 3, 2] == 2


def test_crowd_region_reaches_the_mask():
    sk = skmod.resolve("object5")
    image = photo()
    kp = instances(sk, 1, *image.shape[:2], seed=4)
    mask = crowd_mask([[[150.0, 100.0, 270.0, 100.0, 270.0, 200.0, 150.0, 200.0]]], *image.shape[:2])
    s = make_sample(image, kp, [210, 150], 0.6, mask, sk, CFG, None, augment=False)
    # scale 1: the square (120 x 100 px around the crop centre) covers ~15 x 12.5 cells
    zero = s.mask == 0
    assert 150 <= zero.sum() <= 220 and zero[23, 23] and s.mask[0, 0] == 1
    assert set(np.unique(s.mask)) <= {0.0, 1.0}
    none = make_sample(image, kp, [210, 150], 0.6, None, sk, CFG, None, augment=False)
    assert (none.mask == 1).all()


# ---------------------------------------------------------------------------- flip property
def _mirror_swap(kp: np.ndarray, sk, width: int) -> np.ndarray:
    m = kp.copy()
    m[..., 0] = width - 1 - m[..., 0]
    return m[:, sk.flip_array]


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_flip_property(name):
    sk = skmod.resolve(name)
    image = photo(seed=7)
    h, w = image.shape[:2]
    never, always = AugmentConfig(flip_prob=0.0), AugmentConfig(flip_prob=1.0)
    mask = np.ones((h, w), np.uint8)
    mask[40:140, 250:330] = 0
    yy, xx = np.mgrid[0:46, 0:46]
    for seed in range(4):
        n = 1 if seed < 2 else 3
        kp = instances(sk, n, h, w, seed=seed)
        plain = make_sample(image, kp, kp[0, 0, :2], 0.5, mask, sk, never, np.random.default_rng(seed))
        flip = make_sample(image, kp, kp[0, 0, :2], 0.5, mask, sk, always, np.random.default_rng(seed))
        assert flip.flipped and not plain.flipped
        # flipping twice is the identity (points, and the targets' channel maps)
        k64 = plain.keypoints.astype(np.float64)
        np.testing.assert_allclose(_mirror_swap(_mirror_swap(k64, sk, 368), sk, 368), k64, rtol=0, atol=1e-9)
        h2, p2 = flip_targets(*flip_targets(plain.heatmaps, plain.pafs, sk), sk)
        np.testing.assert_array_equal(h2, plain.heatmaps)
        mirrored = np.array([j >= 0 for j, _ in sk.limb_flip]).repeat(2)
        np.testing.assert_array_equal(p2[mirrored], plain.pafs[mirrored])
        # the flipped sample is the mirror of the plain one
        np.testing.assert_allclose(flip.keypoints, _mirror_swap(plain.keypoints, sk, 368), atol=1e-3)
        img_diff = np.abs(flip.image.astype(int) - cv2.flip(plain.image, 1).astype(int))
        assert img_diff.mean() < 0.5 and img_diff.max() <= 2  # warp rounding only
        assert (flip.mask == plain.mask[:, ::-1]).mean() >= 0.99
        fh, fp = flip_targets(plain.heatmaps, plain.pafs, sk)
        # heatmap cell centres are symmetric under x -> 367 - x: equal up to float rounding
        np.testing.assert_allclose(flip.heatmaps, fh, rtol=0, atol=1e-4)
        if n > 1:
            continue
        # PAF cells are integer map coordinates with truncated box ends, so supports shift by up
        # to a cell or two at the band edges; where both are drawn the vectors agree exactly
        for li, (a, b) in enumerate(sk.limbs):
            if sk.limb_flip[li][0] < 0:
                continue
            got, want = flip.pafs[2 * li: 2 * li + 2], fp[2 * li: 2 * li + 2]
            sg, sw = (got != 0).any(0), (want != 0).any(0)
            both = sg & sw
            np.testing.assert_allclose(got[:, both], want[:, both], rtol=0, atol=1e-5)
            ka, kb = flip.keypoints[0, a], flip.keypoints[0, b]
            if ka[2] > 1 or kb[2] > 1:
                assert not sg.any() and not sw.any()
                continue
            pa, pb = ka[:2] / 8, kb[:2] / 8
            if np.linalg.norm(pb - pa) >= 2 and 2 < pa[0] < 44 and 2 < pa[1] < 44:
                assert both.any()
            cells = np.stack([xx[sg ^ sw], yy[sg ^ sw]], 1).astype(float)
            v = pb - pa
            t = np.clip((cells - pa) @ v / max(float(v @ v), 1e-12), 0, 1)
            dist = np.linalg.norm(cells - (pa + t[:, None] * v), axis=1)
            assert dist.size == 0 or dist.max() <= 3.0


# ------------------------------------------------------------------------------- label file
def _labels(tmp_path, sk, file_name="img.jpg", size=(300, 420)) -> Labels:
    h, w = size
    kp = instances(sk, 2, h, w, seed=8).astype(np.float32)
    bbox = np.array([[100, 80, 120, 160], [250, 60, 90, 150]], dtype=np.float32)
    return Labels(
        fingerprint=sk.fingerprint, skeleton_name=sk.name, keypoint_names=list(sk.keypoints), settings={},
        image_ids=np.array([1]), file_names=[file_name], widths=np.array([w]), heights=np.array([h]),
        crowd=[[[[10.0, 10.0, 60.0, 10.0, 60.0, 50.0, 10.0, 50.0]]]], inst_image=np.array([0, 0]),
        inst_ids=np.array([5, 6]), keypoints=kp, bbox=bbox, area=np.array([5000, 4000], np.float32),
        num_keypoints=np.array([10, 10]), samples=np.array([1]),
    )


def test_training_sample_from_label_file(tmp_path):
    sk = skmod.resolve("openpose18")
    cv2.imwrite(str(tmp_path / "img.jpg"), photo())
    lb = _labels(tmp_path, sk)
    s = training_sample(lb, 0, tmp_path, sk, CFG, np.random.default_rng(0))
    again = training_sample(lb, 0, tmp_path, sk, CFG, np.random.default_rng(0))
    np.testing.assert_array_equal(s.heatmaps, again.heatmaps)
    # main instance (record 1) first, then the other
    plain = training_sample(lb, 0, tmp_path, sk, CFG, None, augment=False)
    obj = lb.objpos(1)
    centre = plain.affine[:, :2] @ obj + plain.affine[:, 2]
    assert 183 < centre[0] < 185 and 183 < centre[1] < 185
    exp = plain.affine[:, :2] @ lb.keypoints[1, 0, :2].astype(np.float64) + plain.affine[:, 2]
    np.testing.assert_allclose(plain.keypoints[0, 0, :2], exp, atol=1e-3)
    assert plain.mask.min() == 1 or plain.mask.min() == 0


def test_training_sample_bad_images(tmp_path):
    sk = skmod.resolve("openpose18")
    with pytest.raises(InputError) as e:
        training_sample(_labels(tmp_path, sk), 0, tmp_path, sk, CFG, None, augment=False)
    assert "img.jpg" in str(e.value)
    (tmp_path / "img.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(InputError) as e:
        training_sample(_labels(tmp_path, sk), 0, tmp_path, sk, CFG, None, augment=False)
    assert "img.jpg" in str(e.value) and "not a readable image" in str(e.value)
    with pytest.raises(InputError):
        training_sample(_labels(tmp_path, sk, file_name="../outside.jpg"), 0, tmp_path, sk, CFG, None)
    cv2.imwrite(str(tmp_path / "img.jpg"), photo(h=100, w=100))
    with pytest.raises(InputError) as e:  # the label file was made for another size
        training_sample(_labels(tmp_path, sk), 0, tmp_path, sk, CFG, None, augment=False)
    assert "100x100" in str(e.value)
    with pytest.raises(InputError):
        training_sample(_labels(tmp_path, sk), 3, tmp_path, sk, CFG, None)


def test_to_network_input():
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3)).astype(np.uint8)
    x = to_network_input(img)
    assert x.shape == (3, 37, 53) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_array_equal(x, ((img.astype(np.float32) - 128) / 256).transpose(2, 0, 1))
    assert math.isclose(float(to_network_input(np.full((1, 1, 3), 255, np.uint8))[0, 0, 0]), 127 / 256)


def test_deferred_targets_batch_equals_per_sample():
    """Samples made with targets=False and rendered together from their points get exactly the
    maps make_sample draws for each alone (training_batch renders per batch this way)."""
    from posedata.targets import render_targets_batch

    sk = skmod.resolve("openpose18")
    img = photo()
    alone, deferred = [], []
    for seed, n in enumerate((1, 3, 2, 5)):
        kp = instances(sk, n, 300, 420, seed)
        args = (img, kp, kp[0, 1, :2], 0.5, None, sk, CFG)
        alone.append(make_sample(*args, np.random.default_rng(seed)))
        deferred.append(make_sample(*args, np.random.default_rng(seed), targets=False))
    assert deferred[0].heatmaps is None and deferred[0].pafs is None
    heat, pafs = render_targets_batch([s.points for s in deferred], sk, CFG.map_h, CFG.map_w, CFG.stride,
                                      CFG.sigma, CFG.paf_thickness)
    for a, b, h, p in zip(alone, deferred, heat, pafs, strict=True):
        np.testing.assert_array_equal(a.heatmaps, h)
        np.testing.assert_array_equal(a.pafs, p)
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        assert h.shape == (sk.num_heatmaps, CFG.map_h, CFG.map_w)


@pytest.mark.parametrize("size", [(300, 420), (301, 423)])
def test_training_sample_reduced_decode(tmp_path, size):
    """A main instance so tall that the drawn scale is <= 1/2 or 1/4: the JPEG is decoded at that
    fraction and warped from there. Points and targets are exactly those of the full-size path
    (they never depend on the pixels); the image differs only by the filtering, odd sizes too."""
    from posedata.images import read_image

    sk = skmod.resolve("openpose18")
    h, w = size
    cv2.imwrite(str(tmp_path / "img.jpg"), photo(h, w), [cv2.IMWRITE_JPEG_QUALITY, 95])
    lb = _labels(tmp_path, sk, size=size)
    lb.bbox[:, 3] = 700.0  # s = 0.6 * 368 / 700 * [0.5, 1.1] = 0.16 .. 0.35
    full = read_image(tmp_path / "img.jpg")
    assert read_image(tmp_path / "img.jpg", reduce=2).shape[:2] == (-(-h // 2), -(-w // 2))
    seen = set()
    for seed in range(12):
        s = training_sample(lb, 0, tmp_path, sk, CFG, np.random.default_rng(seed))
        rec = lb.sample(0)
        mask = crowd_mask(rec["crowd"], h, w)
        ref = make_sample(full, rec["keypoints"], rec["objpos"], 700.0 / CFG.input_size, mask, sk, CFG,
                          np.random.default_rng(seed))
        d = draw_params(CFG, np.random.default_rng(seed))
        seen.add(next(r for r in (8, 4, 2, 1) if r == 1 or 0.6 * 368 / 700 * d.scale_multiplier * r <= 1))
        np.testing.assert_array_equal(s.keypoints, ref.keypoints)
        np.testing.assert_array_equal(s.heatmaps, ref.heatmaps)
        np.testing.assert_array_equal(s.pafs, ref.pafs)
        np.testing.assert_array_equal(s.mask, ref.mask)
        diff = np.abs(s.image.astype(np.int16) - ref.image.astype(np.int16))
        assert diff.mean() < 3.0, diff.mean()  # the geometry itself: test_reduced_decode_geometry
    assert seen >= {2, 4}


@pytest.mark.parametrize("r", [2, 4])
@pytest.mark.parametrize("width", [416, 421])
def test_reduced_decode_geometry(tmp_path, r, width):
    """The matrix for a 1/r JPEG decode puts a vertical edge where the full-size decode puts it
    (a half-pixel slip of the reduced pixel centres would move it by 0.25 r s crop pixels)."""
    from posedata.augment import _reduced_matrix
    from posedata.images import read_image

    img = np.zeros((240, width, 3), np.uint8)
    img[:, 200:] = 255  # the edge on an 8-pixel JPEG block boundary
    cv2.imwrite(str(tmp_path / "e.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 100])
    full, red = read_image(tmp_path / "e.jpg"), read_image(tmp_path / "e.jpg", reduce=r)
    assert red.shape[:2] == (-(-240 // r), -(-width // r))
    s = 0.9 / r
    m = np.array([[s, 0.0, 20.3], [0.0, s, 10.0]])

    def edge(crop):  # mean sub-pixel x where the rows cross mid-grey
        g = crop[20:60, :, 1].astype(np.float64)
        i = np.argmax(g >= 127.5, axis=1)
        rows = np.arange(len(i))
        return np.mean(i - 1 + (127.5 - g[rows, i - 1]) / (g[rows, i] - g[rows, i - 1]))

    # the edge lies between full-size pixels 199 and 200, at x = 199.5 -> 20.3 + 199.5 s in the crop;
    # the reduced decode blurs it symmetrically, so its mid-grey crossing stays there (measured
    # 0.07-0.11 px off; with the pixel centres off by half a reduced pixel, 0.33-0.44 px). The
    # full-size warp samples a sharp step, whose crossing is only known to a crop pixel.
    want = 20.3 + 199.5 * s
    a = edge(cv2.warpAffine(full, m, (160, 80), flags=cv2.INTER_LINEAR))
    b = edge(cv2.warpAffine(red, _reduced_matrix(m, red.shape[1], red.shape[0], width, 240), (160, 80),
                            flags=cv2.INTER_LINEAR))
    assert abs(b - want) < 0.15 and abs(a - want) < 0.5, (a, b, want)


def test_crop_equals_three_channel_warp():
    """make_sample warps through BGRA (OpenCV's faster 4-channel path): the crop must be exactly
    the 3-channel warp of the image with the sample's matrix, border included."""
    from posedata.augment import sample_affines

    sk = skmod.resolve("openpose18")
    img = photo(seed=3)
    kp = instances(sk, 2, 300, 420, 3)
    for seed in range(6):
        s = make_sample(img, kp, kp[0, 1, :2], 0.4, None, sk, CFG, np.random.default_rng(seed))
        d = draw_params(CFG, np.random.default_rng(seed))
        m = sample_affines(420, 300, kp[0, 1, :2], 0.4, CFG, d)[1]
        want = cv2.warpAffine(img, m, (CFG.crop_w, CFG.crop_h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
        assert s.image.shape == want.shape and s.image.dtype == np.uint8
        np.testing.assert_array_equal(s.image, want)
        assert (s.image == 128).all(axis=2).any()  # some border in view


# ------------------------------------------------------------------ whole batches
def test_to_network_input_bgrx_and_out():
    img = np.random.default_rng(1).integers(0, 256, (19, 23, 4)).astype(np.uint8)
    want = to_network_input(np.ascontiguousarray(img[..., :3]))
    np.testing.assert_array_equal(to_network_input(img), want)
    batch = np.zeros((2, 3, 19, 23), np.float32)
    assert to_network_input(img, out=batch[1]) is batch[1] or np.shares_memory(batch, batch[1])
    np.testing.assert_array_equal(batch[1], want)
    assert not batch[0].any()
    with pytest.raises(InputError):
        to_network_input(img, out=np.zeros((3, 19, 22), np.float32))


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_training_batch_equals_samples(tmp_path, ext):
    """training_batch (the trainer's batch: network inputs written into one array, one target
    render, reused decode / crop buffers) equals the samples made one by one, bit for bit; later
    samples reusing the buffers do not disturb earlier ones."""
    from posedata.augment import Scratch, training_batch

    sk = skmod.resolve("openpose18")
    lb = _labels(tmp_path, sk, file_name=f"img.{ext}")
    lb.samples = np.array([1, 0, 1, 0])  # both instances as main, twice, with different draws
    cv2.imwrite(str(tmp_path / f"img.{ext}"), photo(seed=4))
    items = [(i, np.random.default_rng(10 + j)) for j, i in enumerate([0, 1, 2, 3, 0])]
    scratch = Scratch()
    b = training_batch(lb, items, tmp_path, sk, CFG, scratch=scratch)
    assert b.images.shape == (5, 3, CFG.crop_h, CFG.crop_w) and b.masks.shape == (5, CFG.map_h, CFG.map_w)
    for j, i in enumerate([0, 1, 2, 3, 0]):
        s = training_sample(lb, i, tmp_path, sk, CFG, np.random.default_rng(10 + j))
        np.testing.assert_array_equal(b.images[j], to_network_input(s.image))
        np.testing.assert_array_equal(b.heatmaps[j], s.heatmaps)
        np.testing.assert_array_equal(b.pafs[j], s.pafs)
        np.testing.assert_array_equal(b.masks[j], s.mask)
    assert b.masks.min() == 0  # the crowd polygon is in view somewhere
    again = training_batch(lb, [(i, np.random.default_rng(10 + j)) for j, i in enumerate([0, 1, 2, 3, 0])],
                           tmp_path, sk, CFG)  # a fresh scratch: the same batch
    np.testing.assert_array_equal(again.images, b.images)


def test_crop_mask_is_the_full_warp():
    """The crowd mask is warped only where it can differ from 1; that is the full-crop warp of
    the float mask, truncated, up to OpenCV's fixed-point rounding of a window's sample points
    (measured: 2 pixels in 1,365 random cases with crowd in view)."""
    from posedata.augment import _crop_mask

    rng = np.random.default_rng(3)
    h, w = 300, 420
    differ = in_view = 0
    for _ in range(200):
        m = np.ones((h, w), np.uint8)
        for _ in range(rng.integers(1, 4)):
            x0, y0 = rng.integers(-30, w), rng.integers(-30, h)
            m[max(y0, 0):max(y0 + rng.integers(1, 100), 0), max(x0, 0):max(x0 + rng.integers(1, 100), 0)] = 0
        mat = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-40, 40), rng.uniform(0.3, 2.5))
        mat[:, 2] += rng.uniform(-250, 150, 2)
        full = cv2.warpAffine(m.astype(np.float32), mat, (368, 368), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=1.0).astype(np.uint8)
        got = _crop_mask(m, mat, 368, 368)
        if got is None:
            assert (m == 1).all()
            got = np.ones_like(full)
        in_view += bool((full == 0).any())
        differ += int((got != full).sum())
    assert in_view > 50 and differ <= 3
    assert _crop_mask(np.ones((h, w), np.float32), mat, 368, 368) is None


def test_a_crowd_region_that_does_not_fit_names_its_image(tmp_path):
    """It stopped training at iteration 8 with 'crowd segmentation [0] has size ...' and no file,
    image or annotation."""
    import cv2

    from posedata.augment import AugmentConfig, training_sample
    from posedata.convert import to_labels
    from posedata.errors import InputError
    from posedata.skeleton import resolve

    sk = resolve("object5")
    cv2.imwrite(str(tmp_path / "a.png"), np.full((60, 80, 3), 128, np.uint8))
    kp = [20, 20, 2, 30, 20, 2, 30, 30, 2, 20, 30, 2, 25, 25, 2]
    data = {"images": [{"id": 5, "file_name": "a.png", "width": 80, "height": 60}],
            "annotations": [{"id": 1, "image_id": 5, "category_id": 1, "keypoints": kp, "num_keypoints": 5,
                             "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0},
                            {"id": 2, "image_id": 5, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 5, 5], "area": 25,
                             "segmentation": {"size": [50, 80], "counts": [10, 5, 3985]}}],
            "categories": [{"id": 1, "name": "o", "keypoints": list(sk.coco_keypoints)}]}
    lb = to_labels(data, sk, source="d.json")
    with pytest.raises(InputError) as e:
        training_sample(lb, 0, tmp_path, sk, AugmentConfig(crop_w=32, crop_h=32), np.random.default_rng(0))
    assert e.value.file == "d.json" and "image 5 (a.png)" in e.value.where and "V036" in e.value.message


def test_flip_augment_off_in_the_skeleton_never_flips():
    import dataclasses

    sk = dataclasses.replace(skmod.resolve("coco17"), flip_augment=False)
    image = photo(seed=7)
    h, w = image.shape[:2]
    kp = instances(sk, 1, h, w, seed=0)
    always = AugmentConfig(flip_prob=1.0)
    on = make_sample(image, kp, kp[0, 0, :2], 0.5, None, skmod.resolve("coco17"), always, np.random.default_rng(3))
    off = make_sample(image, kp, kp[0, 0, :2], 0.5, None, sk, always, np.random.default_rng(3))
    assert on.flipped and not off.flipped
    # every other random choice is unchanged: the unflipped sample is the mirror of the flipped one
    np.testing.assert_allclose(on.keypoints, _mirror_swap(off.keypoints, sk, 368), atol=1e-3)
