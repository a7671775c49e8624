from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import TEMPLATE_NAMES, TEMPLATES

from posedata import coco
from posedata import flipcheck as F
from posedata import skeleton as S
from posedata.cli import cli

# a frontal person (its left on the image's right), COCO order, y down
FRONT = np.array([[0, -60], [6, -66], [-6, -66], [12, -62], [-12, -62], [22, -40], [-22, -40], [30, -10],
                  [-30, -10], [32, 18], [-32, 18], [14, 10], [-14, 10], [15, 50], [-15, 50], [16, 90], [-16, 90]], float)


def people(n: int, seed: int = 0, facing_camera: float = 0.75) -> coco.Dataset:
    """People facing the camera or away (x mirrored, labels kept), noisy, rotated a little."""
    rng = np.random.default_rng(seed)
    ds = coco.Dataset(categories=[coco.Category(1, "person", list(S.resolve("coco17").coco_keypoints))])
    for i in range(n):
        p = FRONT.copy()
        turn = rng.uniform(-1, 1)  # head yaw: the face slides sideways, the far ear hides behind the head
        p[:5, 0] += 10 * turn
        p[3 if turn > 0 else 4, 0] -= 14 * turn
        if rng.random() > facing_camera:
            p[:, 0] *= -1
        p += rng.normal(0, 4, p.shape)
        a = rng.normal(0, 0.2)
        p = p @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]).T + [200, 200]
        v = np.where(rng.random(17) < 0.1, 0, 2)
        kp = np.concatenate([p * (v[:, None] > 0), v[:, None]], 1)
        ds.images.append(coco.Image(i + 1, f"{i}.jpg", 400, 400))
        ds.annotations.append(coco.Annotation(i + 1, i + 1, 1, kp, (100, 100, 200, 200), 40000.0))
    return ds


def with_flip(sk: S.Skeleton, pairs) -> S.Skeleton:
    d = sk.to_dict()
    d["flip"] = [list(p) for p in pairs]
    return S.parse(d)[0]


def test_mean_orientation_matches_cross_products():
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(7, 5, 2))
    lab = rng.random((7, 5)) > 0.2
    m, c = F.mean_orientation(pts, lab)
    for i, j, k in [(0, 1, 2), (1, 3, 4), (4, 2, 0)]:
        keep = lab[:, i] & lab[:, j] & lab[:, k]
        p = pts[keep]
        cross = (p[:, j, 0] - p[:, i, 0]) * (p[:, k, 1] - p[:, i, 1]) - (p[:, j, 1] - p[:, i, 1]) * (p[:, k, 0] - p[:, i, 0])
        assert c[i, j, k] == keep.sum()
        if keep.any():
            assert m[i, j, k] == pytest.approx(np.sign(cross).mean())


def test_right_map_passes_and_broken_maps_are_flagged():
    ds = people(300)
    sk = S.resolve("coco17")
    good = F.orientation_check(ds, sk)
    assert good.inconclusive is None and good.flagged == []
    assert np.nanmax(good.scores) < F.FLAG_THRESHOLD
    pairs = [p for p in sk.flip_pairs() if "knee" not in p[0]]
    res = F.orientation_check(ds, with_flip(sk, pairs))
    assert {"left_knee", "right_knee"} <= set(res.flagged)
    res = F.orientation_check(ds, with_flip(sk, []))
    assert len(res.flagged) == 17


def test_balanced_facing_is_inconclusive():
    res = F.orientation_check(people(400, facing_camera=0.5), with_flip(S.resolve("coco17"), []))
    assert res.inconclusive is not None and "orientation" in res.inconclusive


def test_real_coco_people(shared_real):
    ds = coco.load(shared_real / "coco" / "test_coco.json")
    sk = S.resolve("coco17")
    res = F.orientation_check(ds, sk)
    assert res.inconclusive is None and res.flagged == []
    res = F.orientation_check(ds, with_flip(sk, [p for p in sk.flip_pairs() if "knee" not in p[0]]))
    assert {"left_knee", "right_knee"} <= set(res.flagged) and "nose" not in res.flagged
    pairs = [p for p in sk.flip_pairs() if "eye" not in p[0] and "ear" not in p[0]]
    res = F.orientation_check(ds, with_flip(sk, pairs + [("left_eye", "right_ear"), ("right_eye", "left_ear")]))
    assert res.flagged and set(res.flagged) <= {"left_eye", "right_eye", "left_ear", "right_ear"}
    # the reference's 18-point skeleton reads the same COCO file by name
    res = F.orientation_check(ds, S.resolve("openpose18"))
    assert res.flagged == [] and "neck" not in res.keypoints


def test_suspected_swaps_finds_the_swapped_pair():
    ds = people(20, facing_camera=1.0)
    sk = S.resolve("coco17")
    ds.annotations[3].keypoints[[13, 14]] = ds.annotations[3].keypoints[[14, 13]]  # knees swapped
    ds.annotations[3].keypoints[[13, 14], 2] = 2
    pts, lab, anns = F.instance_keypoints(ds, sk)
    sw = F.suspected_swaps(pts, lab, sk)
    pairs = sk.flip_pairs()
    knee = [i for i, p in enumerate(pairs) if "knee" in p[0]][0]
    assert sw[3, knee] and sw.sum() == 1


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_skeleton_flip_property_passes_for_templates(name):
    sk = S.load(TEMPLATES / f"{name}.yaml")
    res = F.skeleton_flip_property(sk)
    assert all(ok for _, _, ok in res), [r for r in res if not r[2]]


def test_skeleton_flip_property_fails_unmirrored_limb():
    sk = S.resolve("object5")
    d = copy.deepcopy(sk.to_dict())
    d["limbs"].append(["top_left", "bottom_right"])
    res = F.skeleton_flip_property(S.parse(d)[0])
    assert [n for kind, n, ok in res if not ok] == ["top_left-bottom_right"]


def test_cli_flipcheck(runner, tmp_path, shared_real):
    out = tmp_path / "fc"
    r = runner.invoke(cli, ["flipcheck", str(shared_real / "coco" / "test_coco.json"), "--skeleton", "coco17",
                            "--images", str(shared_real / "coco"), "-o", str(out), "-n", "4"])
    assert r.exit_code == 0, r.output
    for f in ("orientation.png", "sides.png", "instances.png"):
        assert (out / f).stat().st_size > 5000
    assert "PASS" in r.output
    broken = tmp_path / "broken.yaml"
    sk = S.resolve("coco17")
    broken.write_text(S.dump_yaml(with_flip(sk, [p for p in sk.flip_pairs() if "knee" not in p[0]]).to_dict()))
    r = runner.invoke(cli, ["flipcheck", str(shared_real / "coco" / "test_coco.json"), "--skeleton", str(broken),
                            "-o", str(tmp_path / "fc2")])
    assert r.exit_code == 1 and "left_knee" in r.output
    r = runner.invoke(cli, ["flipcheck", str(shared_real / "coco" / "test_coco.json"), "--skeleton", "coco17", "-o", str(out)])
    assert r.exit_code == 2 and "--force" in r.output
    r = runner.invoke(cli, ["flipcheck", str(tmp_path / "nope.json"), "--skeleton", "coco17", "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "nope.json" in r.output and not (tmp_path / "x").exists()
