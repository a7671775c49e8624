from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from repo_paths import TEMPLATE_NAMES

from posedata import skeleton as S
from posedata import synth
from posedata.cli import cli
from posedata.errors import InputError, OutputExistsError
from posedata.synth_species import make_species
from posedata.validate import validate_coco


def make(tmp_path: Path, name: str = "quadruped17", n: int = 6, size=(96, 96), seed: int = 0,
         sub: str = "ds") -> tuple[dict, Path]:
    out = tmp_path / sub
    p = synth.generate(S.resolve(name), out, n, size, seed)
    return json.loads(p.read_text()), out


def errors(findings):
    return [f for f in findings if f.severity == "error"]


# ------------------------------------------------------------ every template
@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_template_validates_clean(tmp_path, name):
    sk = S.resolve(name)
    data, out = make(tmp_path, name, n=8)
    findings = validate_coco(data, sk, file="annotations.json", images=out / "images")
    assert errors(findings) == [], findings[:5]
    assert not [f for f in findings if f.code == "V099"]
    cat = data["categories"][0]
    K = len(sk.coco_keypoints)
    assert cat["keypoints"] == list(sk.coco_keypoints)
    assert all(1 <= a <= K and 1 <= b <= K and a != b for a, b in cat["skeleton"])
    assert len(data["images"]) == 8
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(im["file_name"] for im in data["images"])
    figs = [a for a in data["annotations"] if not a["iscrowd"]]
    assert figs
    for a in figs:
        kp = np.asarray(a["keypoints"], dtype=float).reshape(-1, 3)
        assert kp.shape == (K, 3)
        assert a["num_keypoints"] == int((kp[:, 2] > 0).sum()) > 0
        assert (kp[kp[:, 2] == 0, :2] == 0).all()
        lab = kp[kp[:, 2] > 0]
        assert ((lab[:, 0] >= 0) & (lab[:, 0] < 96) & (lab[:, 1] >= 0) & (lab[:, 1] < 96)).all()
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0 and a["area"] == w * h
        # every labelled point lies in its figure's box (the box is the figure's silhouette)
        assert ((lab[:, 0] >= x) & (lab[:, 0] <= x + w) & (lab[:, 1] >= y) & (lab[:, 1] <= y + h)).all()
        assert all(len(poly) >= 6 and len(poly) % 2 == 0 for poly in a["segmentation"])


def test_silhouette_area_is_the_drawn_figure(tmp_path):
    """area="silhouette" writes each figure's drawn pixel count (what OKS should scale with; a box
    holds far more than a stick figure), same images and everything else as the default."""
    from pycocotools import mask as M

    sk = S.resolve("object5")
    box = json.loads(synth.generate(sk, tmp_path / "box", 6, (96, 96), seed=5).read_text())
    sil = json.loads(synth.generate(sk, tmp_path / "sil", 6, (96, 96), seed=5, area="silhouette").read_text())
    assert [a["bbox"] for a in box["annotations"]] == [a["bbox"] for a in sil["annotations"]]
    assert [a["keypoints"] for a in box["annotations"]] == [a["keypoints"] for a in sil["annotations"]]
    for b, a in zip(box["annotations"], sil["annotations"], strict=True):
        if a["iscrowd"]:
            assert a["area"] == b["area"]
            continue
        x, y, w, h = a["bbox"]
        assert 0 < a["area"] < 0.8 * w * h and b["area"] == w * h
        # the silhouette's outline polygons cover about as many pixels
        rle = M.merge(M.frPyObjects(a["segmentation"], 96, 96))
        assert abs(float(M.area(rle)) - a["area"]) <= 0.35 * a["area"] + 20
    with pytest.raises(InputError, match="area"):
        synth.generate(sk, tmp_path / "bad", 1, (96, 96), seed=5, area="box")


def test_derived_keypoints_are_left_out(tmp_path):
    data, _ = make(tmp_path, "openpose18", n=3)
    assert "neck" not in data["categories"][0]["keypoints"]
    assert len(data["annotations"][0]["keypoints"]) == 3 * 17


def test_visibility_mix_and_several_figures(tmp_path):
    data, _ = make(tmp_path, "quadruped17", n=30)
    figs = [a for a in data["annotations"] if not a["iscrowd"]]
    v = np.concatenate([np.asarray(a["keypoints"]).reshape(-1, 3)[:, 2] for a in figs])
    share = np.bincount(v.astype(int), minlength=3) / len(v)
    assert share[2] > 0.6 and share[1] > 0.01 and share[0] > 0.01, share
    per_image = np.bincount([a["image_id"] for a in figs])
    assert per_image.max() >= 3
    sizes = [a["bbox"][3] for a in figs]
    assert max(sizes) > 2 * min(sizes)  # varied scale


# ---------------------------------------------------------------- determinism
def test_same_seed_is_byte_identical_and_seeds_differ(tmp_path):
    _, a = make(tmp_path, n=5, seed=7, sub="a")
    _, b = make(tmp_path, n=5, seed=7, sub="b")
    _, c = make(tmp_path, n=5, seed=8, sub="c")
    assert (a / "annotations.json").read_bytes() == (b / "annotations.json").read_bytes()
    for p in sorted((a / "images").iterdir()):
        assert p.read_bytes() == (b / "images" / p.name).read_bytes()
    assert (a / "annotations.json").read_bytes() != (c / "annotations.json").read_bytes()


def test_species_depends_on_skeleton_not_seed():
    sk = S.resolve("quadruped17")
    s1, s2 = make_species(sk), make_species(S.resolve("quadruped17"))
    for f in ("rel", "length", "lo", "hi", "width", "marker", "style"):
        assert np.array_equal(getattr(s1, f), getattr(s2, f))
    assert not np.array_equal(s1.length, make_species(S.resolve("coco17")).length)


# --------------------------------------------------------------- left / right
@pytest.mark.parametrize("name", [n for n in TEMPLATE_NAMES if S.resolve(n).flip_pairs()])
def test_rest_shape_is_mirror_symmetric_with_left_on_the_left(name):
    """The mirror image with flip-swapped labels must be a figure of the same species, and the
    left member of every pair sits left of the body axis; otherwise flip augmentation contradicts
    the data's own left/right cue."""
    sk = S.resolve(name)
    sp = make_species(sk)
    # the rest pose from the species' own angles and lengths (pose() would add jitter)
    K = sk.num_keypoints
    theta, rest = np.zeros(K), np.zeros((K, 2))
    for k in sp.order[1:]:
        p = sp.parent[k]
        theta[k] = (theta[p] if sp.parent[p] >= 0 else 0.0) + sp.rel[k]
        rest[k] = rest[p] + sp.length[k] * np.array([np.sin(theta[k]), -np.cos(theta[k])])
    flip = sk.flip_array
    mirrored = rest[flip] * [-1, 1]
    assert np.allclose(mirrored, rest, atol=1e-9)
    for i in range(K):
        if sk.side(i) == "left":
            assert rest[i, 0] < rest[flip[i], 0]
    # pairs look alike: same marker, same stroke texture, same width
    assert np.array_equal(sp.marker, sp.marker[flip])
    for i, (j, _rev) in enumerate(sk.limb_flip):
        if j >= 0:
            assert sp.style[i] == sp.style[j] and sp.width[i] == pytest.approx(sp.width[j])


@pytest.mark.parametrize("name", [n for n in TEMPLATE_NAMES if S.resolve(n).flip_pairs()])
def test_posed_data_is_mirror_consistent_and_chiral(tmp_path, name):
    """Over many posed instances: mirroring with the flip map applied leaves the keypoints'
    orientation statistics unchanged (flip augmentation teaches nothing contradictory), while
    mirroring without it changes them a lot (the side is visible in the data)."""
    import dataclasses

    from posedata.coco import from_coco
    from posedata.flipcheck import flip_verdict

    sk = S.resolve(name)
    data, _ = make(tmp_path, name, n=60, size=(96, 96))
    res = flip_verdict(from_coco(data), sk)
    assert res.verdict == "PASS", res.reason
    unpaired = dataclasses.replace(sk, flip=tuple(range(sk.num_keypoints)), sides=())
    res = flip_verdict(from_coco(data), unpaired)
    assert res.verdict == "NOT APPLICABLE" and res.test.significant, res.reason
    assert "flip_augment: false" in res.reason


def test_limits_mirror_for_pairs():
    sk = S.resolve("coco17")
    sp = make_species(sk)
    for a, b in enumerate(sk.flip):
        if a != b:
            assert sp.lo[a] == pytest.approx(-sp.hi[b]) and sp.hi[a] == pytest.approx(-sp.lo[b])


# ---------------------------------------------------------- drawn = labelled
def test_visible_keypoints_lie_on_the_drawn_figure(monkeypatch):
    """The pixel under every v=2 keypoint belongs to a figure: rendered twice, on a dark and on a
    light flat backdrop with identical random draws, a backdrop pixel changes by the backdrops'
    difference while a figure pixel does not change at all."""
    sk = S.resolve("quadruped17")
    sp = make_species(sk)
    checked = 0
    for i in range(12):
        imgs = []
        for level in (64, 192):
            monkeypatch.setattr(synth, "background", lambda rng, h, w, v=level: np.full((h, w, 3), v, np.uint8))
            img, records, _ = synth.render_image(sp, sk, np.random.default_rng([3, i]), 128, 128, crowd=False)
            imgs.append(img.astype(int))
        diff = np.abs(imgs[1] - imgs[0]).max(axis=2)
        assert diff.max() > 100  # the backdrop shows somewhere
        for rec in records:
            for x, y, v in rec["keypoints"]:
                if v == 2:
                    assert diff[int(y), int(x)] < 40, (i, x, y, diff[int(y), int(x)])
                    checked += 1
    assert checked > 100


def test_out_of_frame_and_occluded_semantics():
    idmap = np.zeros((20, 20), np.uint8)
    idmap[5:15, 5:15] = 1
    idmap[10:15, 10:15] = 2  # figure 2 drawn over figure 1
    pos = np.array([[7.0, 7.0], [12.0, 12.0], [-3.0, 5.0], [19.6, 5.0]])
    v = synth._visibility(idmap, 1, pos, np.full(4, 2.0), 20, 20)
    assert v.tolist() == [2, 1, 0, 0]  # 19.6 + 0.5 rounds past the border


# ---------------------------------------------------------------------- crowd
def test_crowd_regions_have_polygons(tmp_path):
    data, _ = make(tmp_path, n=12)
    crowd = [a for a in data["annotations"] if a["iscrowd"] == 1]
    assert crowd
    for a in crowd:
        assert a["num_keypoints"] == 0 and not any(a["keypoints"])
        poly = a["segmentation"][0]
        assert len(poly) >= 6 and a["area"] > 0
        xs, ys = poly[0::2], poly[1::2]
        x, y, w, h = a["bbox"]
        assert min(xs) == pytest.approx(x) and max(ys) == pytest.approx(y + h, abs=0.02)


# ------------------------------------------------------------------ atomicity
def test_crash_leaves_no_dataset_and_keeps_old_output(tmp_path):
    sk = S.resolve("object5")
    out = tmp_path / "ds"

    def boom(done, total):
        if done == 3:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        synth.generate(sk, out, 6, (64, 64), 0, progress=boom)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    synth.generate(sk, out, 2, (64, 64), 0)
    before = (out / "annotations.json").read_bytes()
    with pytest.raises(RuntimeError):
        synth.generate(sk, out, 6, (64, 64), 1, progress=boom)
    assert (out / "annotations.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]
    synth.generate(sk, out, 3, (64, 64), 1)  # replacing its own earlier output is fine
    assert len(json.loads((out / "annotations.json").read_text())["images"]) == 3


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "thesis.tex").write_text("keep me")
    with pytest.raises(OutputExistsError, match="did not make"):
        synth.generate(S.resolve("object5"), tmp_path / "ds", 2, (64, 64), 0)
    assert (tmp_path / "ds" / "thesis.tex").read_text() == "keep me"


def test_refuses_to_replace_a_real_dataset_laid_out_as_synth_writes(tmp_path):
    """The names images/ and annotations.json do not make a folder synth's (it once wiped a real
    COCO set with that layout on --force): only the marker synth writes does."""
    real = tmp_path / "realds"
    (real / "images").mkdir(parents=True)
    (real / "images" / "000001.jpg").write_bytes(b"a real photo")
    (real / "annotations.json").write_text('{"images": [], "annotations": [], "categories": []}')
    with pytest.raises(OutputExistsError, match="did not make"):
        synth.generate(S.resolve("object5"), real, 2, (64, 64), 0)
    assert (real / "images" / "000001.jpg").read_bytes() == b"a real photo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["realds"]  # no staging folder left


# -------------------------------------------------------------------- parsers
@settings(max_examples=40, deadline=None)
@given(st.integers(32, 4096), st.integers(32, 4096))
def test_parse_size_round_trips(w, h):
    assert synth.parse_size(f"{w}x{h}") == (w, h)
    assert synth.parse_size(f"{w}X{h}") == (w, h)


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=12))
def test_parse_size_rejects_or_returns_a_valid_size(text):
    try:
        w, h = synth.parse_size(text)
    except InputError:
        return
    assert 32 <= w <= 4096 and 32 <= h <= 4096


@st.composite
def random_skeleton(draw):
    """A random tree, optionally with a mirrored pair of branches hanging off the root."""
    n = draw(st.integers(2, 9))
    kps = [f"p{i}" for i in range(n)]
    limbs = [[kps[draw(st.integers(0, i - 1))], kps[i]] for i in range(1, n)]
    flip = []
    if draw(st.booleans()):
        depth = draw(st.integers(1, 3))
        for side in ("left", "right"):
            prev = kps[0]
            for d in range(depth):
                kps.append(f"{side}_b{d}")
                limbs.append([prev, kps[-1]])
                prev = kps[-1]
        flip = [[f"left_b{d}", f"right_b{d}"] for d in range(depth)]
    return {"name": "rnd", "keypoints": kps, "limbs": limbs, "root": kps[0], "flip": flip,
            "sigmas": [0.07] * len(kps)}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(random_skeleton(), st.integers(0, 3))
def test_any_skeleton_validates_clean(tmp_path, d, seed):
    sk = S.from_dict(d)
    out = tmp_path / f"rnd{seed}"
    p = synth.generate(sk, out, 3, (64, 64), seed)
    data = json.loads(p.read_text())
    findings = validate_coco(data, sk, images=out / "images")
    # V060 (a keypoint type never labelled) is about the dataset's size, not its correctness
    assert [f for f in errors(findings) if f.code != "V060"] == []


# ------------------------------------------------------------------------ CLI
def test_cli_synth(runner, tmp_path):
    out = tmp_path / "ds"
    args = ["synth", "--skeleton", "object5", "-o", str(out), "--images", "3", "--size", "64x48", "--seed", "2"]
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "3 image(s)" in r.output and "crowd region" in r.output
    data = json.loads((out / "annotations.json").read_text())
    assert {(im["width"], im["height"]) for im in data["images"]} == {(64, 48)}
    first = (out / "annotations.json").read_bytes()
    r = runner.invoke(cli, args)
    assert r.exit_code == 2 and "--force" in r.output
    r = runner.invoke(cli, args + ["--force"])
    assert r.exit_code == 0, r.output
    assert (out / "annotations.json").read_bytes() == first


def test_cli_synth_bad_input(runner, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nkeypoints: [a, b]\nlimbs: [[a, c]]\nroot: a\nsigmas: [0.1, 0.1]\n")
    r = runner.invoke(cli, ["synth", "--skeleton", str(bad), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "unknown keypoint" in r.output
    assert not (tmp_path / "o").exists()
    r = runner.invoke(cli, ["synth", "--skeleton", "object5", "-o", str(tmp_path / "o"), "--size", "20x20"])
    assert r.exit_code == 2 and "--size" in r.output
    r = runner.invoke(cli, ["synth", "--skeleton", "object5", "-o", str(tmp_path / "o"), "--images", "0"])
    assert r.exit_code == 2
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "notes.txt").write_text("x")
    r = runner.invoke(cli, ["synth", "--skeleton", "object5", "-o", str(tmp_path / "f"), "--force", "--images", "1"])
    assert r.exit_code == 2 and (tmp_path / "f" / "notes.txt").exists()


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_one_image_labels_every_keypoint_type(tmp_path, name):
    sk = S.resolve(name)
    data, out = make(tmp_path, name, n=1, size=(64, 64), seed=5)
    assert errors(validate_coco(data, sk, images=out / "images")) == []
    first = np.asarray(data["annotations"][0]["keypoints"]).reshape(-1, 3)
    assert (first[:, 2] > 0).all()  # the image's subject is whole in the frame


def test_cli_synth_unwritable_output(runner, tmp_path):
    (tmp_path / "file").write_text("x")
    r = runner.invoke(cli, ["synth", "--skeleton", "object5", "-o", str(tmp_path / "file" / "ds"), "--images", "1"])
    assert r.exit_code == 2 and "cannot write" in r.output and "Not a directory" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
