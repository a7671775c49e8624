"""Every real set in ../shared/data/real/ through the path a user runs, with the CLI: skeleton init,
the edits a user makes to what init wrote (only where init says so), skeleton check, validate (and
--fix where it is needed), convert, check. Asserted: the verdicts (exit codes and the codes behind
them), the flip pairs guessed, the sample counts. Each real quirk met on the way is a case here.
Inputs are read from ../shared (never written); everything else goes to tmp_path.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from posedata import labels as L
from posedata import skeleton as S
from posedata.check import check_data
from posedata.cli import cli


def run(runner, *args: object) -> tuple[int, str]:
    r = runner.invoke(cli, [str(a) for a in args])
    assert "Traceback" not in r.output, r.output
    return r.exit_code, " ".join(r.output.split())


def validate_codes(runner, data: Path, skeleton: Path, images: Path | None = None, category: str | None = None
                   ) -> tuple[int, dict[str, int]]:
    args = ["validate", data, "--skeleton", skeleton, "--json"] + (["--images", images] if images else []) + \
        (["--category", category] if category else [])
    r = runner.invoke(cli, [str(a) for a in args])
    doc = json.loads(r.output)
    return r.exit_code, {c: n for c, n in doc["counts"]["by_code"].items()
                         if next(f["severity"] for f in doc["findings"] if f["code"] == c) != "info"}


def one_side_swapped(name: str) -> set[str]:
    """The name with one left/Left/L written right/Right/R (at any one place)."""
    return {name[:i] + r + name[i + len(lt):] for lt, r in (("left", "right"), ("Left", "Right"), ("L", "R"))
            for i in range(len(name)) if name.startswith(lt, i)}


def add_limbs(path: Path, limbs: list[list[str]]) -> None:
    """What a user does when init says keypoints are not connected: list the missing limbs."""
    d = yaml.safe_load(path.read_text())
    d["limbs"] += limbs
    path.write_text(yaml.safe_dump(d, sort_keys=False))


# name: (json, flip pairs init guesses, non-info validate codes on the raw file, whether validate --fix
#        repairs them all, training samples)
CASES = {
    # COCO people: clean; one V070 swap warning on a twisting person
    "coco": ("test_coco.json", 8, {"V070": 1}, False, 12),
    # no num_keypoints field (V026, fixable); an empty flip map is right for one hand
    "onehand10k": ("test_onehand10k.json", 0, {"V026": 4, "V011": 1}, True, 4),
    # no area and no iscrowd (V034 error and V012 warning, both fixable); names 'Left Hip'
    "aic": ("test_aic.json", 6, {"V034": 9, "V012": 9, "V070": 1}, True, 9),
    # three keypoint types never labelled in its two cats and horses: a true V060 for this subset
    "animalpose": ("test_animalpose.json", 8, {"V060": 3}, False, 2),
    # eyeL/eyeR, forelegL1/forelegR1: 14 pairs (0 before); the file's own edges never join the legs to
    # the body (DeepPoseKit writes each leg as a chain of its own): init joins each leg at its first
    # segment, with its mirror image, where the user had to add them (S020 before)
    "fly": ("test_fly.json", 14, {}, False, 2),
    # the same for the locust's legs and its eye-antenna chains; its pairs also give V070 two left/right
    # warnings: legs spread around a body seen from above
    "locust": ("test_locust.json", 15, {"V070": 2}, False, 2),
}

# check's flip verdict where it is not INCONCLUSIVE (a handful of instances, a correct map)
FLIP = {"onehand10k": "NOT APPLICABLE",  # one hand: no left/right parts
        "animalpose": "skipped (data errors)"}  # check stops at V060 (flipcheck alone runs: INCONCLUSIVE)


@pytest.mark.parametrize("name", sorted(CASES))
def test_coco_sets_through_the_user_path(name, shared_real, runner, tmp_path):
    file, pairs, codes, fixable, samples = CASES[name]
    data, images = shared_real / name / file, shared_real / name
    sk_file = tmp_path / f"{name}.yaml"
    code, out = run(runner, "skeleton", "init", "--from-coco", data, "-o", sk_file)
    assert code == 0, out
    assert "S020" not in out  # every keypoint reaches the root as init writes it
    sk = S.load(sk_file)
    assert len(sk.flip_pairs()) == pairs
    for a, b in sk.flip_pairs():  # [left, right], the one name with its side written the other way
        assert b in one_side_swapped(a), (a, b)
    code, out = run(runner, "skeleton", "check", sk_file)
    assert code == 0, out
    assert "S020" not in out and "S021" not in out and "S023" not in out  # reached, mirrored, every side paired
    code, found = validate_codes(runner, data, sk_file, images)
    assert found == codes
    errors = any(c in ("V026", "V034", "V060") for c in codes)
    assert code == (1 if errors else 0)
    if fixable:
        fixed = tmp_path / "fixed.json"
        code, out = run(runner, "validate", data, "--skeleton", sk_file, "--fix", fixed)
        assert code == 1 and fixed.exists()  # the exit code describes the input
        code, found = validate_codes(runner, fixed, sk_file, images)
        assert code == 0 and not [c for c in found if c not in ("V070", "V011")], found
        data = fixed
    labels = tmp_path / "labels.npz"
    skip = ["--skip-checks"] if errors and not fixable else []  # V060: a true error, converted knowingly
    code, out = run(runner, "convert", data, "--skeleton", sk_file, "-o", labels, "--images", images, *skip)
    assert code == 0, out
    assert L.load(labels).num_samples == samples
    assert "C002" not in out and "C003" not in out
    code, out = run(runner, "flipcheck", data, "--skeleton", sk_file, "--images", images, "-o", tmp_path / "fc",
                    "-n", "2")
    assert code == 0 and "F001" not in out, out  # exit 1 exactly on FAIL
    res = check_data(data, S.load(sk_file), images)
    assert not [f for f in res.skeleton + res.samples + res.flip_findings if f.severity == "error"]
    assert res.flip_verdict == FLIP.get(name, "INCONCLUSIVE"), res.flip_verdict
    if not skip:
        assert not [f for f in res.data if f.severity == "error"] and res.num_samples == samples


def test_crowdpose_edges_do_not_fit_its_keypoints(shared_real, runner, tmp_path):
    """CrowdPose carries COCO's 17-point edges on its 14 points: init used to drop the edges that
    did not fit and shift nothing, writing nonsense limbs without a word."""
    data = shared_real / "crowdpose" / "test_crowdpose.json"
    sk_file = tmp_path / "crowdpose.yaml"
    code, out = run(runner, "skeleton", "init", "--from-coco", data, "-o", sk_file)
    assert code == 2 and "categories[0].skeleton[0]" in out and "index 16 is beyond the 14 keypoints" in out
    assert not sk_file.exists()
    code, out = run(runner, "skeleton", "init", "--from-coco", data, "-o", sk_file, "--ignore-edges")
    assert code == 0, out
    d = yaml.safe_load(sk_file.read_text())
    assert d["limbs"] == [] and len(d["flip"]) == 6
    # the user writes the limbs of a 14-point person
    add_limbs(sk_file, [["head", "neck"]] + [[a, f"{s}_{b}"] for s in ("left", "right") for a, b in (
        ("neck", "shoulder"), ("neck", "hip"))] + [[f"{s}_{a}", f"{s}_{b}"] for s in ("left", "right") for a, b in (
            ("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"))])
    d = yaml.safe_load(sk_file.read_text())
    d["root"] = "neck"
    sk_file.write_text(yaml.safe_dump(d, sort_keys=False))
    code, out = run(runner, "skeleton", "check", sk_file)
    assert code == 0, out
    # no area (V034), num_keypoints that are not the count of labelled points (V026): both fixable;
    # validate still points at the edges that do not fit (V040, a warning)
    code, found = validate_codes(runner, data, sk_file, shared_real / "crowdpose")
    assert code == 1 and found == {"V026": 4, "V034": 5, "V040": 3}
    fixed = tmp_path / "fixed.json"
    code, out = run(runner, "validate", data, "--skeleton", sk_file, "--fix", fixed)
    assert code == 1 and fixed.exists()
    code, found = validate_codes(runner, fixed, sk_file, shared_real / "crowdpose")
    assert code == 0 and found == {"V040": 3}
    labels = tmp_path / "labels.npz"
    code, out = run(runner, "convert", fixed, "--skeleton", sk_file, "-o", labels)
    assert code == 0, out
    assert L.load(labels).num_samples == 4  # the fifth person has no labelled keypoint (V063)


def test_ap10k_species_share_one_skeleton(shared_real, runner, tmp_path):
    """54 species categories share one keypoint list: init, convert, check used to stop at
    'expected exactly one category... found 54'."""
    data, images = shared_real / "ap10k" / "test_ap10k.json", shared_real / "ap10k"
    sk_file = tmp_path / "ap10k.yaml"
    code, out = run(runner, "skeleton", "init", "--from-coco", data, "-o", sk_file)
    assert code == 2 and "found 54" in out and "--category all" in out
    code, out = run(runner, "skeleton", "init", "--from-coco", data, "-o", sk_file, "--category", "all")
    assert code == 0, out
    assert len(S.load(sk_file).flip_pairs()) == 7
    code, out = run(runner, "skeleton", "check", sk_file)
    assert code == 0, out
    # right_eye is never labelled in the two animals of this subset: a true V060 error
    code, found = validate_codes(runner, data, sk_file, images, "all")
    assert code == 1 and found == {"V060": 1}
    labels = tmp_path / "labels.npz"
    code, out = run(runner, "convert", data, "--skeleton", sk_file, "-o", labels, "--category", "all")
    assert code == 1 and not labels.exists()
    code, out = run(runner, "convert", data, "--skeleton", sk_file, "-o", labels, "--category", "all", "--skip-checks")
    assert code == 0, out
    lb = L.load(labels)
    assert lb.num_samples == 2 and sorted(c["id"] for c in lb.settings["categories"]) == list(range(1, 55))
    # the bundled AP-10K-style template reads the same file
    code, out = run(runner, "convert", data, "--skeleton", "quadruped17", "-o", tmp_path / "q.npz", "--category",
                    "all", "--skip-checks")
    assert code == 0 and L.load(tmp_path / "q.npz").num_samples == 2


def test_deeplabcut_openfield_mouse(shared_real, runner, tmp_path):
    """4 keypoints: convert's default minimum of 5 labelled keypoints made 0 training samples,
    exit 0, and check said 'data ready for training'."""
    project = shared_real / "deeplabcut-openfield"
    sk_file = tmp_path / "mouse.yaml"
    code, out = run(runner, "skeleton", "init", "--from-dlc", project / "config.yaml", "-o", sk_file)
    assert code == 0, out
    sk = yaml.safe_load(sk_file.read_text())
    # the config has no skeleton edges: init drafts them from the 20 labelled frames (it wrote none,
    # and skeleton check failed with S020 until the user typed them)
    assert sk["flip"] == [["leftear", "rightear"]]
    assert sk["limbs"] == [["snout", "leftear"], ["snout", "rightear"], ["snout", "tailbase"]]
    assert "no skeleton edges; added 3 limb(s)" in " ".join(out.split())
    code, out = run(runner, "skeleton", "check", sk_file)
    assert code == 0 and "S023" not in out, out
    labels = tmp_path / "labels.npz"
    code, out = run(runner, "convert", project, "--skeleton", sk_file, "-o", labels)
    assert code == 0, out
    lb = L.load(labels)
    assert lb.num_samples == 20 and lb.settings["min_keypoints"] == 2
    res = check_data(project, S.load(sk_file))
    assert res.num_samples == 20 and not [f for f in res.skeleton + res.data + res.samples if f.severity == "error"]
    code, out = run(runner, "convert", project, "--skeleton", sk_file, "-o", tmp_path / "five.npz", "--min-keypoints", 5)
    assert code == 1 and "C002" in out and "--min-keypoints" in out and not (tmp_path / "five.npz").exists()
