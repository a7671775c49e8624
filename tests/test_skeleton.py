from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from repo_paths import TEMPLATE_NAMES, TEMPLATES

import posedata
from posedata import skeleton as S
from posedata.cli import cli
from posedata.errors import SkeletonError
from posedata.sides import name_side
from posedata.skeleton import file as skeleton_file

BASE = {
    "name": "t",
    "keypoints": ["head", "left_hand", "right_hand", "tail"],
    "limbs": [["head", "left_hand"], ["head", "right_hand"], ["head", "tail"]],
    "root": "head",
    "flip": [["left_hand", "right_hand"]],
    "sigmas": [0.05, 0.05, 0.05, 0.05],
}


def codes(d):
    sk, f = S.parse(d)
    if sk is not None:
        f += S.check(sk)
    return {x.code for x in f if x.severity == "error"}, {x.code for x in f if x.severity == "warning"}


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_templates_load_without_warnings(name):
    sk, findings = S.load_with_findings(TEMPLATES / f"{name}.yaml")
    assert sk is not None
    # info only: S024 notes coco17's two fill-only ear-shoulder limbs run against their PAF direction
    assert [f for f in findings if f.severity != "info"] == []
    assert {f.code for f in findings} <= {"S024"}
    assert sk.num_heatmaps == sk.num_keypoints + 1 and sk.num_pafs == 2 * sk.num_limbs
    # every limb is reached from an already-placed end in grouping order
    placed = {sk.root}
    for li, known, new in sk.grouping_steps:
        if not sk.redundant[li]:
            assert known in placed
            placed.add(new)
    assert placed == set(range(sk.num_keypoints))


def test_required_templates_exist():
    assert {"coco17", "openpose18", "hand21", "quadruped17", "object5"} <= set(TEMPLATE_NAMES)


def test_openpose18_matches_reference_tables():
    sk = S.load(TEMPLATES / "openpose18.yaml")
    # the reference's training limb order (keypoint ids in its 18-point order)
    ref = [[1, 8], [8, 9], [9, 10], [1, 11], [11, 12], [12, 13], [1, 2], [2, 3], [3, 4], [2, 16],
           [1, 5], [5, 6], [6, 7], [5, 17], [1, 0], [0, 14], [0, 15], [14, 16], [15, 17]]
    assert [list(lb) for lb in sk.limbs] == ref
    # the reference's flip swap list for its 18 points
    assert list(sk.flip) == [0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16]
    assert [sk.limb_names(i) for i, r in enumerate(sk.redundant) if r] == [
        ("right_shoulder", "right_ear"), ("left_shoulder", "left_ear")]
    assert sk.grouping_order[-2:] == (9, 13)
    assert sk.coco_keypoints[0] == "nose" and len(sk.coco_keypoints) == 17
    idx = sk.source_index(list(sk.coco_keypoints))
    assert idx[1] == -1 and idx[2] == 6 and idx[5] == 5


def test_bfs_marks_cycle_closing_limb_redundant():
    d = copy.deepcopy(BASE)
    d["limbs"].append(["left_hand", "right_hand"])
    sk = S.from_dict(d)
    assert sk.redundant == (False, False, False, True)
    assert sk.grouping_order == (0, 1, 2, 3)


def test_grouping_steps_orient_limbs_from_placed_end():
    d = copy.deepcopy(BASE)
    d["limbs"][2] = ["tail", "head"]
    sk = S.from_dict(d)
    assert (2, 0, 3) in sk.grouping_steps


@pytest.mark.parametrize("mutate,code", [
    (lambda d: d["keypoints"].append("head"), "S010"),
    (lambda d: d["limbs"].append(["head", "nope"]), "S011"),
    (lambda d: d["limbs"].append(["tail", "tail"]), "S012"),
    (lambda d: d["limbs"].append(["tail", "head"]), "S013"),
    (lambda d: d["flip"].append(["left_hand", "tail"]), "S014"),
    (lambda d: d["flip"].append(["tail", "tail"]), "S014"),
    (lambda d: d.__setitem__("sigmas", [0.05] * 3), "S015"),
    (lambda d: d.__setitem__("sigmas", [0.05, -1, 0.05, 0.05]), "S015"),
    (lambda d: d["limbs"].pop(), "S020"),
    (lambda d: d.__setitem__("root", "nope"), "S011"),
    (lambda d: d.__setitem__("limbs", "head-tail"), "S001"),
])
def test_skeleton_errors(mutate, code):
    d = copy.deepcopy(BASE)
    mutate(d)
    errors, _ = codes(d)
    assert code in errors
    with pytest.raises(SkeletonError):
        S.from_dict(d)


def test_warnings_for_missing_flip_pair_and_unmirrored_limb():
    d = copy.deepcopy(BASE)
    d["flip"] = []
    errors, warnings = codes(d)
    assert not errors and "S022" in warnings
    d = copy.deepcopy(BASE)
    d["keypoints"].append("left_foot")
    d["limbs"].append(["tail", "left_foot"])
    d["sigmas"].append(0.05)
    errors, warnings = codes(d)
    assert "S023" in warnings
    d = copy.deepcopy(BASE)
    d["keypoints"] += ["left_foot", "right_foot"]
    d["sigmas"] += [0.05, 0.05]
    d["flip"].append(["left_foot", "right_foot"])
    d["limbs"] += [["tail", "left_foot"], ["left_hand", "right_foot"]]
    errors, warnings = codes(d)
    assert "S021" in warnings


def test_fingerprint_depends_on_channel_meaning_only():
    a = S.from_dict(copy.deepcopy(BASE))
    d = copy.deepcopy(BASE)
    d["sigmas"] = [0.1] * 4
    assert S.from_dict(d).fingerprint == a.fingerprint
    d["limbs"] = d["limbs"][::-1]
    assert S.from_dict(d).fingerprint != a.fingerprint


def test_round_trip_yaml(tmp_path):
    sk = S.load(TEMPLATES / "openpose18.yaml")
    p = tmp_path / "s.yaml"
    p.write_text(sk.to_yaml())
    again = S.load(p)
    assert again.fingerprint == sk.fingerprint and again.redundant == sk.redundant


@pytest.mark.parametrize("name,side", [("left_eye", "left"), ("RightHand", "right"), ("l_knee", "left"),
                                       ("paw_R", "right"), ("lShoulder", "left"), ("nose", None),
                                       ("elbow", None), ("tail", None)])
def test_name_side(name, side):
    assert name_side(name) == side


def test_cli_check_show_init(runner, tmp_path):
    r = runner.invoke(cli, ["skeleton", "check", str(TEMPLATES / "coco17.yaml")])
    assert r.exit_code == 0, r.output
    bad = tmp_path / "bad.yaml"
    d = copy.deepcopy(BASE)
    d["limbs"].append(["tail", "tail"])
    bad.write_text(yaml.safe_dump(d))
    r = runner.invoke(cli, ["skeleton", "check", str(bad)])
    assert r.exit_code == 1 and "S012" in r.output
    png = tmp_path / "g.png"
    r = runner.invoke(cli, ["skeleton", "show", str(TEMPLATES / "openpose18.yaml"), "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    r = runner.invoke(cli, ["skeleton", "show", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "missing.yaml" in r.output and "Traceback" not in r.output
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("keypoints: [a, b\n")
    r = runner.invoke(cli, ["skeleton", "show", str(garbage)])
    assert r.exit_code == 2 and "line" in r.output


def test_cli_init_from_coco(runner, tmp_path, shared_real):
    out = tmp_path / "s.yaml"
    r = runner.invoke(cli, ["skeleton", "init", "--from-coco", str(shared_real / "coco" / "test_coco.json"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    sk = S.load(out)
    assert sk.num_keypoints == 17 and len(sk.flip_pairs()) == 8
    assert sk.keypoints[sk.root] in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
    r = runner.invoke(cli, ["skeleton", "init", "--from-coco", str(shared_real / "coco" / "test_coco.json"), "-o", str(out)])
    assert r.exit_code == 2 and "--force" in r.output


@pytest.mark.parametrize("cmd", ["check", "show"])
@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_cli_check_show_take_template_names(runner, tmp_path, monkeypatch, cmd, name):
    # from a folder with no templates/ beside it, as after a wheel install
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(cli, ["skeleton", cmd, name])
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    r = runner.invoke(cli, ["skeleton", cmd, "no_such_template"])
    assert r.exit_code == 2 and "no_such_template" in r.output and "coco17" in r.output


def test_templates_are_package_data():
    # the templates live inside the package and pyproject ships them, so a non-editable install has them
    assert S.TEMPLATES_DIR.parent == Path(posedata.__file__).resolve().parent
    assert {p.stem for p in S.TEMPLATES_DIR.glob("*.yaml")} >= {"coco17", "openpose18", "hand21", "quadruped17", "object5"}
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((Path(posedata.__file__).resolve().parent.parent / "pyproject.toml").read_text())
    assert "templates/*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["posedata"]


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_s024_matches_export_reference_warnings(runner, name):
    # `export reference` warned about limbs walked against their PAF direction while `skeleton check`
    # said nothing: both now come from the same grouping steps
    from trainer.grouping import reference_tables

    sk = S.resolve(name)
    s024 = [f for f in S.check(sk) if f.code == "S024"]
    assert len(s024) == len(reference_tables(sk)["warnings"])
    if s024:
        r = runner.invoke(cli, ["skeleton", "check", name])
        assert r.exit_code == 0 and "S024" in r.output


def test_init_writes_limbs_the_reference_can_group(runner, tmp_path):
    # an init-made skeleton had limbs walked against their PAF direction: `export reference` warned
    # about them (the reference's group_keypoints scores them negatively); init now orients them
    from trainer.grouping import reference_tables

    export = Path(__file__).parent / "data" / "import" / "coco_annotator_export.json"
    out = tmp_path / "walker.yaml"
    r = runner.invoke(cli, ["skeleton", "init", "--from-coco", str(export), "--category", "1", "-o", str(out)])
    assert r.exit_code == 0, r.output
    sk = S.load(out)
    assert [f.code for f in S.check(sk) if f.code == "S024"] == []
    assert reference_tables(sk)["warnings"] == []
    import json

    cat = next(c for c in json.loads(export.read_text())["categories"] if c["id"] == 1)
    edges = {frozenset((cat["keypoints"][a - 1], cat["keypoints"][b - 1])) for a, b in cat["skeleton"]}
    assert {frozenset(S.normalize_name(x) for x in e) for e in edges} == \
        {frozenset(S.normalize_name(x) for x in sk.limb_names(i)) for i in range(sk.num_limbs)}  # same limbs, reoriented


# ------------------------------------------------------------- init reads edges honestly
def _coco_with_edges(tmp_path, edges, names=("head", "neck", "tail", "left_ear", "right_ear")):
    import json

    data = {"images": [], "annotations": [], "categories": [
        {"id": 3, "name": "cat"}, {"id": 1, "name": "animal", "keypoints": list(names), "skeleton": edges}]}
    p = tmp_path / "d.json"
    p.write_text(json.dumps(data))
    return p


def test_init_reads_zero_based_edges_as_zero_based(runner, tmp_path):
    """0-based edges used to be read as 1-based: index 0 dropped, every other limb shifted by one."""
    src = _coco_with_edges(tmp_path, [[0, 1], [1, 2], [0, 3], [0, 4]])
    out = tmp_path / "s.yaml"
    r = runner.invoke(cli, ["skeleton", "init", "--from-coco", str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "0-based" in r.output
    sk = S.load(out)
    assert [sk.limb_names(i) for i in range(sk.num_limbs)] == [
        ("head", "neck"), ("neck", "tail"), ("head", "left_ear"), ("head", "right_ear")]
    assert "0-based" in out.read_text().split("name:")[0]  # the note is in the file's header too


@pytest.mark.parametrize("edges,where,what", [
    ([[1, 2], [2, 3], [16, 4]], "categories[1].skeleton[2]", "index 16 is beyond the 5 keypoints"),
    ([[0, 1], [1, 5]], "categories[1].skeleton[1]", "neither 1-based nor 0-based"),
    ([[1, 2], [-1, 3]], "categories[1].skeleton[1]", "index -1 is negative"),
    ([[1, 2], [2]], "categories[1].skeleton[1]", "expected an [a, b] pair"),
])
def test_init_refuses_edges_that_do_not_fit(runner, tmp_path, edges, where, what):
    """Out-of-range edges (CrowdPose's COCO edges on 14 points) used to be dropped without a word."""
    src = _coco_with_edges(tmp_path, edges)
    out = tmp_path / "s.yaml"
    r = runner.invoke(cli, ["skeleton", "init", "--from-coco", str(src), "-o", str(out)])
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    assert where in text and what in text and "--ignore-edges" in text and "Traceback" not in r.output
    assert not out.exists()
    r = runner.invoke(cli, ["skeleton", "init", "--from-coco", str(src), "-o", str(out), "--ignore-edges"])
    assert r.exit_code == 0 and yaml.safe_load(out.read_text())["limbs"] == []


def test_init_guesses_pairs_for_the_usual_spellings(runner, tmp_path):
    names = ("head", "eyeL", "eyeR", "forelegL1", "forelegR1", "L_Eye", "R_Eye", "leftear", "rightear")
    src = _coco_with_edges(tmp_path, [[1, k] for k in range(2, len(names) + 1)], names)
    out = tmp_path / "s.yaml"
    r = runner.invoke(cli, ["skeleton", "init", "--from-coco", str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert S.load(out).flip_pairs() == [("eyeL", "eyeR"), ("forelegL1", "forelegR1"), ("L_Eye", "R_Eye"),
                                        ("leftear", "rightear")]


def test_init_joins_loose_chains_at_their_ends_with_their_mirror(runner, tmp_path):
    """Edges that leave each leg a chain of its own (DeepPoseKit's fly and locust) made S020: init
    joins each chain at the end nearest the body in the data, and the mirror limb with it."""
    import json

    names = ["head", "thorax", "legL1", "legL2", "legR1", "legR2", "tipL"]
    body = {"head": (0, -10), "thorax": (0, 0), "legL1": (-3, 1), "legL2": (-8, 2), "legR1": (3, 1),
            "legR2": (8, 2), "tipL": (-14, 3)}
    rng = np.random.default_rng(0)
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "keypoints": [
        v for n in names for v in (*(np.array(body[n]) * 10 + 100 + rng.normal(0, 2, 2)).tolist(), 2)]}
        for i in range(3)]
    edges = [[1, 2], [3, 4], [5, 6]]  # legs never joined to the thorax; tipL joined to nothing
    src = tmp_path / "d.json"
    src.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "width": 300, "height": 300}],
                               "annotations": anns, "categories": [{"id": 1, "name": "bug", "keypoints": names,
                                                                    "skeleton": edges}]}))
    out = tmp_path / "s.yaml"
    r = runner.invoke(cli, ["skeleton", "init", "--from-coco", str(src), "-o", str(out)])
    assert r.exit_code == 0 and "S020" not in r.output, r.output
    text = " ".join(r.output.split())
    assert "added 3 limb(s)" in text and "review them" in text
    sk = S.load(out)
    limbs = {frozenset(sk.limb_names(i)) for i in range(sk.num_limbs)}
    assert {frozenset(("thorax", "legL1")), frozenset(("thorax", "legR1"))} <= limbs  # the chain's near end
    assert frozenset(("legL2", "tipL")) not in limbs and frozenset(("thorax", "tipL")) in limbs  # body only
    assert not [f.code for f in S.check(sk) if f.code in ("S020", "S021")]
    # with no instance placing the legs, nothing is invented: S020 as before
    src.write_text(json.dumps({"images": [], "annotations": [], "categories": [
        {"id": 1, "name": "bug", "keypoints": names, "skeleton": edges}]}))
    r = runner.invoke(cli, ["skeleton", "init", "--from-coco", str(src), "-o", str(out), "--force"])
    assert r.exit_code == 0 and "S020" in r.output and "added" not in r.output


@pytest.mark.parametrize("a,b", [("Corner", "corner"), ("top-left", "top left"), ("Left_Eye", "left eye")])
def test_check_refuses_names_that_match_alike(a, b):
    d = {"keypoints": ["centre", a, b], "limbs": [["centre", a], ["centre", b]], "root": "centre",
         "sigmas": [0.05] * 3}
    sk, f = S.parse(d)
    hit = [x for x in f if x.code == "S010"]
    assert sk is None and len(hit) == 1 and hit[0].where == "keypoints[2]" and repr(a) in hit[0].message


def test_check_warns_on_sided_names_without_partner(runner, tmp_path):
    d = {"keypoints": ["thorax", "eyeL", "wingL", "wingR"], "limbs": [["thorax", "eyeL"], ["thorax", "wingL"],
         ["thorax", "wingR"]], "root": "thorax", "flip": [["wingL", "wingR"]], "sigmas": [0.05] * 4}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(d))
    r = runner.invoke(cli, ["skeleton", "check", str(p)])
    assert r.exit_code == 0 and "S023" in r.output and "eyeL" in r.output
    d["keypoints"][1], d["limbs"][0][1] = "eyeR", "eyeR"
    d["keypoints"].append("eyeL")
    d["limbs"].append(["thorax", "eyeL"])
    d["sigmas"].append(0.05)
    errors, warnings = codes(d)
    assert "S022" in warnings and "S023" not in warnings  # eyeL/eyeR look paired but the map does not say so


# ------------------------------------------------------------ sides from the flip map (issue 17 item 5)
OPENPOSE_NAMES = ["Nose", "RShoulder", "RElbow", "LShoulder", "LElbow", "RHip", "LHip", "REar", "LEar"]


def openpose_style() -> dict:
    return {"name": "op", "keypoints": list(OPENPOSE_NAMES), "root": "Nose",
            "limbs": [["Nose", "RShoulder"], ["RShoulder", "RElbow"], ["Nose", "LShoulder"], ["LShoulder", "LElbow"],
                      ["RShoulder", "RHip"], ["LShoulder", "LHip"], ["Nose", "REar"], ["Nose", "LEar"]],
            "flip": [["LShoulder", "RShoulder"], ["LElbow", "RElbow"], ["LHip", "RHip"], ["LEar", "REar"]],
            "sigmas": [0.05] * 9}


def test_flip_pair_order_decides_sides():
    sk = S.from_dict(openpose_style())
    sides = {k: sk.side(i) for i, k in enumerate(sk.keypoints)}
    assert sides == {"Nose": "centre", "RShoulder": "right", "RElbow": "right", "LShoulder": "left",
                     "LElbow": "left", "RHip": "right", "LHip": "left", "REar": "right", "LEar": "left"}
    assert sk.flip_pairs() == [("LShoulder", "RShoulder"), ("LElbow", "RElbow"), ("LHip", "RHip"), ("LEar", "REar")]
    # the file's order wins over the names (and skeleton check says so), and it survives a round trip
    d = openpose_style()
    d["flip"][0] = ["RShoulder", "LShoulder"]
    sk2 = S.from_dict(d)
    assert sk2.side(sk2.index("RShoulder")) == "left"
    b = copy.deepcopy(BASE)
    b["flip"] = [["right_hand", "left_hand"]]
    assert "S025" in codes(b)[1] and "S025" not in codes(copy.deepcopy(BASE))[1]
    assert S.from_dict(b).side(2) == "left"
    assert S.from_dict(yaml.safe_load(sk2.to_yaml())).sides == sk2.sides
    # which member is left does not change what the channels mean
    assert sk2.fingerprint == sk.fingerprint


def test_sides_fall_back_to_names_without_a_file_order():
    import dataclasses

    sk = dataclasses.replace(S.from_dict(copy.deepcopy(BASE)), sides=())
    assert sk.side(1) == "left" and sk.side(2) == "right" and sk.side(0) == "centre"


def test_openpose18_template_sides_follow_names():
    sk = S.resolve("openpose18")
    for i, k in enumerate(sk.keypoints):
        assert sk.side(i) == (name_side(k) or "centre"), k


def test_cli_show_openpose_sides_and_flip_augment(runner, tmp_path):
    p = tmp_path / "op.yaml"
    p.write_text(yaml.safe_dump(openpose_style()))
    r = runner.invoke(cli, ["skeleton", "show", str(p)])
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if "RShoulder" in line and "LShoulder" in line)
    assert "right" in row and "left" not in row
    assert "flip augmentation: on" in r.output
    d = openpose_style()
    d["flip_augment"] = False
    p.write_text(yaml.safe_dump(d))
    r = runner.invoke(cli, ["skeleton", "show", str(p)])
    assert r.exit_code == 0 and "flip augmentation: off" in r.output
    assert S.load(p).flip_augment is False and S.from_dict(S.load(p).to_dict()).flip_augment is False
    d["flip_augment"] = "no"
    assert "S001" in codes(d)[0]


# ------------------------------------------------------------------ bounded size
def _star(k: int) -> dict:
    names = [f"left_p{i}" if i % 3 == 1 else f"right_p{i - 1}" if i % 3 == 2 else f"p{i}" for i in range(k)]
    return {"name": "big", "keypoints": names, "limbs": [[names[0], n] for n in names[1:]], "root": names[0],
            "sigmas": [0.05] * k}


def test_keypoint_and_limb_counts_are_bounded():
    """A 5000-keypoint skeleton ran `skeleton check` past 60 s; the count is refused, located."""
    sk, f = S.parse(_star(S.MAX_KEYPOINTS + 1), file="big.yaml")
    assert sk is None and [(x.code, x.where) for x in f] == [("S001", "keypoints")]
    d = _star(10)
    d["limbs"] = d["limbs"] * (S.MAX_LIMBS // 9 + 1)
    sk, f = S.parse(d)
    assert sk is None and [(x.code, x.where) for x in f] == [("S001", "limbs")]


def test_check_is_linear_in_the_keypoints(monkeypatch):
    """check() of the largest skeleton accepted walks the limbs once and guesses flip pairs once
    (it did both once per keypoint: 1000 keypoints took over a minute)."""
    sk, f = S.parse(_star(S.MAX_KEYPOINTS))
    assert sk is not None and not [x for x in f if x.severity == "error"]
    calls = {"guess": 0, "reach": 0}
    guess, reach = skeleton_file.guess_flip_pairs, S.Skeleton.reachable
    monkeypatch.setattr(skeleton_file, "guess_flip_pairs", lambda n: calls.__setitem__("guess", calls["guess"] + 1) or guess(n))
    monkeypatch.setattr(S.Skeleton, "reachable",
                        lambda self: calls.__setitem__("reach", calls["reach"] + 1) or reach(self))
    S.check(sk)
    assert calls == {"guess": 1, "reach": 1}
