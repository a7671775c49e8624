from __future__ import annotations

import copy

import numpy as np
import pytest
from repo_paths import TEMPLATE_NAMES, TEMPLATES

from posedata import coco
from posedata import flipcheck as F
from posedata import skeleton as S
from posedata import swaps as W
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


def test_orientation_signs_match_cross_products():
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(7, 5, 2))
    lab = rng.random((7, 5)) > 0.2
    tri = np.array([(0, 1, 2), (1, 3, 4), (4, 2, 0)])
    got = F._orientation_signs(pts, lab, tri)
    for t, (i, j, k) in enumerate(tri):
        p = pts
        cross = (p[:, j, 0] - p[:, i, 0]) * (p[:, k, 1] - p[:, i, 1]) - (p[:, j, 1] - p[:, i, 1]) * (p[:, k, 0] - p[:, i, 0])
        keep = lab[:, i] & lab[:, j] & lab[:, k]
        np.testing.assert_array_equal(got[:, t], np.where(keep, np.sign(cross), 0))


def test_right_map_passes_and_broken_maps_fail_blaming_only_them():
    ds = people(300)
    sk = S.resolve("coco17")
    good = F.flip_verdict(ds, sk)
    assert good.verdict == "PASS" and good.exit_code == 0, good.reason
    res = F.flip_verdict(ds, with_flip(sk, [p for p in sk.flip_pairs() if "knee" not in p[0]]))
    assert res.verdict == "FAIL" and res.exit_code == 1
    assert set(res.test.blamed) <= {"left_knee", "right_knee"} and res.test.blamed, res.test.blamed
    # removing only the wrist pair must not also blame eyes, hips and ankles
    res = F.flip_verdict(ds, with_flip(sk, [p for p in sk.flip_pairs() if "wrist" not in p[0]]))
    assert res.verdict == "FAIL" and set(res.test.blamed) <= {"left_wrist", "right_wrist"}, res.test.blamed
    assert "left_wrist (unpaired)" in res.reason or "right_wrist (unpaired)" in res.reason
    res = F.flip_verdict(ds, with_flip(sk, []))
    assert res.verdict == "NOT APPLICABLE" and res.exit_code == 0 and "flip_augment: false" in res.reason


def test_few_instances_are_inconclusive_never_fail():
    sk = S.resolve("coco17")
    for n in (2, 5, 9):
        res = F.flip_verdict(people(n, seed=n), sk)
        assert res.verdict == "INCONCLUSIVE", res.reason
        assert res.n_instances == n


def test_flip_augment_off_is_not_applicable():
    import dataclasses

    sk = dataclasses.replace(S.resolve("coco17"), flip_augment=False)
    res = F.flip_verdict(people(100), sk)
    assert res.verdict == "NOT APPLICABLE" and "flip_augment: false" in res.reason and res.test is None


def test_real_coco_people(shared_real):
    ds = coco.load(shared_real / "coco" / "test_coco.json")
    sk = S.resolve("coco17")
    res = F.flip_verdict(ds, sk)
    # 14 annotations, 2 without keypoints: too few to judge, never a FAIL
    assert res.n_instances == 12 and res.verdict == "INCONCLUSIVE", res.reason
    res = F.flip_verdict(ds, S.resolve("openpose18"))
    assert res.verdict == "INCONCLUSIVE" and "neck" not in res.test.keypoints


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


WRONG_COCO17 = {  # the bench's wrong maps (bench/bench_flipcheck.py): pairs dropped, pairs added
    "missing knee pair": (("knee",), []),
    "missing wrist pair": (("wrist",), []),
    "crossed eye<->ear": (("eye", "ear"), [("left_eye", "right_ear"), ("right_eye", "left_ear")]),
    "knee<->ankle": (("knee", "ankle"), [("left_knee", "right_ankle"), ("left_ankle", "right_knee")]),
}


@pytest.mark.parametrize("name", WRONG_COCO17)
def test_coco17_limbs_reveal_every_wrong_map_on_two_instances(name):
    """With coco17's limbs each wrong map breaks the skeleton-level property, so the one verdict is
    FAIL even where the data-level test has no evidence (2 instances: INCONCLUSIVE with the right map)."""
    sk = S.resolve("coco17")
    drop, add = WRONG_COCO17[name]
    wrong = with_flip(sk, [p for p in sk.flip_pairs() if not any(w in p[0] for w in drop)] + add)
    res = F.flip_verdict(people(2), wrong)
    assert res.verdict == "FAIL" and res.exit_code == 1 and "skeleton-level" in res.reason, res.reason
    assert F.flip_verdict(people(2), sk).verdict == "INCONCLUSIVE"


def limb_symmetries(sk: S.Skeleton) -> list[tuple[int, ...]]:
    """Every involution of the keypoints that maps each limb onto a limb (backtracking over degrees)."""
    k, limbs = sk.num_keypoints, {frozenset(limb) for limb in sk.limbs}
    deg = [sum(i in limb for limb in limbs) for i in range(k)]
    found: list[tuple[int, ...]] = []

    def extend(m: list[int]) -> None:
        i = len(m)
        if i == k:
            found.append(tuple(m))
            return
        for j in range(k):
            if j not in m and deg[j] == deg[i] and all(
                    (frozenset((m[a], j)) in limbs) == (frozenset((a, i)) in limbs) for a in range(i)):
                extend(m + [j])

    extend([])
    return [p for p in found if all(p[p[i]] == i for i in range(k))]


def test_which_wrong_maps_limbs_can_hide():
    """bench/README.md: the skeleton-level property catches every wrong map of coco17 (its limb graph's
    only symmetries are no pairs and the right map); openpose18's also allow mirroring the legs alone,
    or the arms and face alone, which only the data-level test can see."""
    coco = S.resolve("coco17")
    assert sorted(limb_symmetries(coco)) == sorted([tuple(range(17)), tuple(coco.flip)])
    op = S.resolve("openpose18")
    legs = [i for i, n in enumerate(op.keypoints) if any(w in n for w in ("hip", "knee", "ankle"))]
    legs_only = tuple(op.flip[i] if i in legs else i for i in range(op.num_keypoints))
    upper_only = tuple(i if i in legs else op.flip[i] for i in range(op.num_keypoints))
    assert sorted(limb_symmetries(op)) == sorted([tuple(range(18)), tuple(op.flip), legs_only, upper_only])


def test_a_wrong_map_the_limbs_cannot_reveal_is_found_in_the_data():
    """openpose18's limbs hang from the neck: leaving the legs unpaired maps every limb onto a limb, so
    the skeleton-level property holds and only the data-level test can see it."""
    sk = S.resolve("openpose18")
    wrong = with_flip(sk, [p for p in sk.flip_pairs() if not any(w in p[0] for w in ("hip", "knee", "ankle"))])
    assert all(ok for _, _, ok in F.skeleton_flip_property(wrong))
    res = F.flip_verdict(people(100), wrong)
    assert res.verdict == "FAIL" and "skeleton-level" not in res.reason, res.reason
    assert res.test.blamed and {b.split("_")[1] for b in res.test.blamed} <= {"hip", "knee", "ankle"}, res.test.blamed
    assert F.flip_verdict(people(100), sk).verdict == "PASS"


def _last_line(output: str) -> str:
    return [line for line in output.splitlines() if line.strip()][-1]


def test_cli_flipcheck(runner, tmp_path, shared_real):
    out = tmp_path / "fc"
    data = str(shared_real / "coco" / "test_coco.json")
    r = runner.invoke(cli, ["flipcheck", data, "--skeleton", "coco17", "--images", str(shared_real / "coco"),
                            "-o", str(out), "-n", "4"])
    assert r.exit_code == 0, r.output
    for f in ("orientation.png", "sides.png", "instances.png"):
        assert (out / f).stat().st_size > 5000
    assert "INCONCLUSIVE" in _last_line(r.output)
    r = runner.invoke(cli, ["flipcheck", data, "--skeleton", "coco17", "-o", str(out)])
    assert r.exit_code == 2 and "--force" in r.output
    r = runner.invoke(cli, ["flipcheck", str(tmp_path / "nope.json"), "--skeleton", "coco17", "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "nope.json" in r.output and not (tmp_path / "x").exists()


def test_knee_ankle_cross_pairing_fails_in_flipcheck_and_check(runner, tmp_path, shared_real):
    """It printed two limb failures, then "PASS" and exit 1; `check` said "data ready for training"."""
    sk = S.resolve("coco17")
    pairs = [p for p in sk.flip_pairs() if "knee" not in p[0] and "ankle" not in p[0]]
    broken = tmp_path / "broken.yaml"
    broken.write_text(S.dump_yaml(with_flip(sk, pairs + [("left_knee", "right_ankle"), ("left_ankle", "right_knee")]).to_dict()))
    data = str(shared_real / "coco" / "test_coco.json")
    r = runner.invoke(cli, ["flipcheck", data, "--skeleton", str(broken), "-o", str(tmp_path / "fc")])
    assert r.exit_code == 1 and _last_line(r.output).startswith("FAIL"), r.output
    assert "PASS" not in _last_line(r.output)
    r = runner.invoke(cli, ["check", data, "--skeleton", str(broken)])
    assert r.exit_code == 1 and "F003" in r.output and "data ready" not in r.output, r.output


def test_swapped_labels_in_many_instances_fail(runner, tmp_path):
    """Left/right body labels swapped in 47 of 86 people passed `check`."""
    import json

    ds = people(86, seed=3, facing_camera=1.0)
    body = [(5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]
    for a in ds.annotations[:47]:
        for i, j in body:
            a.keypoints[[i, j]] = a.keypoints[[j, i]]
    path = tmp_path / "swapped.json"
    path.write_text(json.dumps(ds.to_coco()))
    r = runner.invoke(cli, ["check", str(path), "--skeleton", "coco17"])
    assert r.exit_code == 1 and "F005" in r.output, r.output
    r = runner.invoke(cli, ["flipcheck", str(path), "--skeleton", "coco17", "-o", str(tmp_path / "fc")])
    assert r.exit_code == 1 and _last_line(r.output).startswith("FAIL") and "swapped" in r.output
    v = F.flip_verdict(coco.load(path), S.resolve("coco17"))
    assert v.swaps.common and {s["annotation_id"] for s in v.swaps.suspects} <= {a.id for a in ds.annotations[:47]}
    # the same people without the swaps are not refused
    clean = people(86, seed=3, facing_camera=1.0)
    assert not F.flip_verdict(clean, S.resolve("coco17")).swaps.common


def test_flipcheck_runs_despite_errors_it_does_not_read(runner, tmp_path, shared_real):
    """A missing `area` made flipcheck refuse the file."""
    import json

    d = json.loads((shared_real / "coco" / "test_coco.json").read_text())
    del d["annotations"][0]["area"]
    path = tmp_path / "noarea.json"
    path.write_text(json.dumps(d))
    r = runner.invoke(cli, ["flipcheck", str(path), "--skeleton", "coco17", "-o", str(tmp_path / "fc")])
    assert r.exit_code == 0 and "does not read" in r.output, r.output
    d["annotations"][0]["keypoints"] = d["annotations"][0]["keypoints"][:-3]
    path.write_text(json.dumps(d))
    r = runner.invoke(cli, ["flipcheck", str(path), "--skeleton", "coco17", "-o", str(tmp_path / "fc2")])
    assert r.exit_code == 1 and "keypoints" in r.output and not (tmp_path / "fc2").exists()


def test_flipcheck_on_two_flies_draws_little(runner, tmp_path, shared_real, monkeypatch):
    """flipcheck took 24-47 s on two flies (32 keypoints, 14 pairs), nearly all of it in plots: a
    subplot per flip pair, tight bounding boxes that draw each figure twice, every name written
    twice per instance. Guards the work, not the time (bench/README.md "flipcheck" has the time)."""
    from pathlib import Path

    import yaml

    from posedata import images as I
    from posedata import plots as P

    saved, decoded = [], [0]
    real_save, real_read = P.save_figure, I.read_image

    def save(fig, path, dpi=100, tight=True):
        saved.append((Path(path).name, len(fig.axes), tight, sum(len(ax.texts) for ax in fig.axes)))
        real_save(fig, path, dpi, tight)

    def read(p, *a, **k):
        decoded[0] += 1
        return real_read(p, *a, **k)

    monkeypatch.setattr(P, "save_figure", save)
    monkeypatch.setattr(I, "read_image", read)
    fly = shared_real / "fly"
    legs = [f"{leg}{s}{i}" for s in "RL" for leg in ("foreleg", "midleg", "hindleg") for i in range(1, 5)]
    limbs = [["eyeL", "head"], ["eyeR", "head"], ["neck", "head"], ["thorax", "neck"], ["abdomen", "thorax"],
             ["wingL", "neck"], ["wingR", "neck"]]
    limbs += [[leg, "thorax"] if leg.endswith("1") else [leg, leg[:-1] + str(int(leg[-1]) - 1)] for leg in legs]
    sided = [n for n in legs if "L" in n] + ["eyeL", "wingL"]
    kps = ["head", "eyeL", "eyeR", "neck", "thorax", "abdomen"] + legs + ["wingL", "wingR"]
    sk = tmp_path / "fly.yaml"  # written out, so that the counts below do not follow init's guesses
    sk.write_text(yaml.safe_dump({"name": "fly", "keypoints": kps, "limbs": limbs, "root": "neck",
                                  "flip": [[n, n.replace("L", "R")] for n in sided], "sigmas": [0.05] * len(kps)}))
    r = runner.invoke(cli, ["flipcheck", str(fly / "test_fly.json"), "--skeleton", str(sk), "--images", str(fly),
                            "-o", str(tmp_path / "fc")])
    assert r.exit_code == 0 and _last_line(r.output).startswith("INCONCLUSIVE"), r.output
    names = [s[0] for s in saved]
    assert names == ["sides.png", "instances.png"], saved  # 2 instances can never FAIL: no per-keypoint figure
    assert all(not tight for *_, tight, _ in saved), saved
    assert saved[0][1] == 1, saved  # one axes for 14 pairs
    assert saved[1][1] == 4 and saved[1][3] <= 2 * 32, saved  # 2 instances x (original, flipped); names once
    assert decoded[0] <= 2


def test_train_refuses_many_swapped_labels_naming_them(runner, tmp_path):
    """F005 stops `posedata train` (the gate) and names the suspected instances: ids and images."""
    import json

    import cv2

    ds = people(86, seed=3, facing_camera=1.0)
    for a in ds.annotations[:47]:
        for i, j in [(5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]:
            a.keypoints[[i, j]] = a.keypoints[[j, i]]
    images = tmp_path / "images"
    images.mkdir()
    for im in ds.images:
        cv2.imwrite(str(images / im.file_name), np.full((im.height, im.width, 3), 90, np.uint8))
    src = tmp_path / "swapped.json"
    src.write_text(json.dumps(ds.to_coco()))
    labels = tmp_path / "swapped.npz"
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", "coco17", "-o", str(labels)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["train", "--skeleton", "coco17", "--labels", str(labels), "--images", str(images),
                            "-o", str(tmp_path / "run"), "--iterations", "1", "--batch-size", "2", "--input-size",
                            "64", "--width", "0.25", "--threads", "1"], env={"COLUMNS": "400"})
    assert r.exit_code == 1 and "F005" in r.output and not (tmp_path / "run").exists(), r.output
    text = "".join(r.output.replace("│", " ").split())  # the message wraps inside a table cell
    v = F.flip_verdict(ds, S.resolve("coco17"))
    named = [s for s in v.swaps.suspects if f"annotation{s['annotation_id']}(image{s['image_id']},"
             f"{s['file_name']}" in text]
    assert len(named) >= min(len(v.swaps.suspects), W.MAX_SUSPECTS) > 0, r.output
    assert {s["annotation_id"] for s in named} <= {a.id for a in ds.annotations[:47]}


def test_large_files_are_tested_on_a_seeded_sample(monkeypatch):
    """9,999 sign flips of every instance of a COCO-sized file took minutes: beyond MAX_TESTED the
    test reads a seeded sample (drawn without looking at signs, so still exact) and says so."""
    monkeypatch.setattr(F, "MAX_TESTED", 60)
    ds = people(200, seed=4)
    v = F.flip_verdict(ds, S.resolve("coco17"))
    assert v.test.n_instances == 60 and v.test.sampled_from == 200 and v.n_instances == 200
    assert "sample from 200" in v.reason and v.verdict == "PASS", v.reason
    again = F.flip_verdict(ds, S.resolve("coco17"))
    assert again.test.p_value == v.test.p_value  # the same sample every run
