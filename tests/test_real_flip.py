"""The flip verdict on every real set in ../shared/data/real with its correct map: never FAIL.

Each case runs the path a user runs (`flipcheck` or `check` on the file as published) and asserts
the verdict and that the last line and the exit code agree."""
from __future__ import annotations

import pytest
import yaml

from posedata import skeleton as S
from posedata.check import check_data
from posedata.cli import cli

AIC = {"name": "aic", "root": "head_top", "sigmas": [0.05] * 14,
       "keypoints": ["right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
                     "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "head_top", "neck"],
       "limbs": [["head_top", "neck"], ["neck", "right_shoulder"], ["right_shoulder", "right_elbow"],
                 ["right_elbow", "right_wrist"], ["neck", "left_shoulder"], ["left_shoulder", "left_elbow"],
                 ["left_elbow", "left_wrist"], ["right_shoulder", "right_hip"], ["right_hip", "right_knee"],
                 ["right_knee", "right_ankle"], ["left_shoulder", "left_hip"], ["left_hip", "left_knee"],
                 ["left_knee", "left_ankle"]],
       "flip": [[f"left_{s}", f"right_{s}"] for s in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")]}
MOUSE = {"name": "mouse", "keypoints": ["snout", "leftear", "rightear", "tailbase"], "root": "snout",
         "limbs": [["snout", "leftear"], ["snout", "rightear"], ["snout", "tailbase"]], "sigmas": [0.05] * 4}


def _last(output: str) -> str:
    return [line for line in output.splitlines() if line.strip()][-1]


def _flipcheck(runner, tmp_path, data, skeleton, images):
    r = runner.invoke(cli, ["flipcheck", str(data), "--skeleton", str(skeleton), "--images", str(images),
                            "-o", str(tmp_path / "fc"), "-n", "3"])
    assert r.exit_code in (0, 1), r.output
    last = _last(r.output)
    assert (r.exit_code == 1) == last.startswith("FAIL"), r.output
    return r.exit_code, last


@pytest.mark.parametrize("folder,file,skeleton,expect", [
    ("coco", "test_coco.json", "coco17", "INCONCLUSIVE"),
    ("coco", "test_coco.json", "openpose18", "INCONCLUSIVE"),
    ("onehand10k", "test_onehand10k.json", "hand21", "NOT APPLICABLE"),  # hand21's own comment: empty flip map
    ("aic", "test_aic.json", "aic", "INCONCLUSIVE"),  # 9 people, no area, no iscrowd: it used to FAIL on the knees
])
def test_real_sets_never_fail(runner, tmp_path, shared_real, folder, file, skeleton, expect):
    if skeleton == "aic":
        skeleton = tmp_path / "aic.yaml"
        skeleton.write_text(yaml.safe_dump(AIC))
    code, last = _flipcheck(runner, tmp_path, shared_real / folder / file, skeleton, shared_real / folder)
    assert code == 0 and last.startswith(expect), last
    r = runner.invoke(cli, ["check", str(shared_real / folder / file), "--skeleton", str(skeleton)])
    assert "F001" not in r.output and "F003" not in r.output and "F005" not in r.output, r.output


def test_single_view_recording_without_pairs_is_not_applicable(shared_real):
    """DeepLabCut's open-field mouse, always filmed from above: with no flip pairs it used to FAIL
    blaming every keypoint; it is NOT APPLICABLE, and says the data are not mirror-symmetric."""
    csv = shared_real / "deeplabcut-openfield" / "labeled-data" / "m4s1" / "CollectedData_Pranav.csv"
    res = check_data(csv, S.from_dict(dict(MOUSE)), fmt="deeplabcut")
    assert res.ok and res.flip_verdict == "NOT APPLICABLE", res.flip.reason
    assert "flip_augment: false" in res.flip.reason and res.flip.test.significant
    paired = S.from_dict(dict(MOUSE, flip=[["leftear", "rightear"]]))
    res = check_data(csv, paired, fmt="deeplabcut")
    assert res.ok and res.flip_verdict in ("INCONCLUSIVE", "PASS"), res.flip.reason
