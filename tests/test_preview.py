from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np

from posedata import skeleton as S
from posedata.cli import cli


def test_preview_from_coco_draws_every_panel(runner, tmp_path, shared_real):
    out = tmp_path / "pv"
    r = runner.invoke(cli, ["preview", str(shared_real / "coco" / "test_coco.json"), "--skeleton", "openpose18",
                            "--images", str(shared_real / "coco"), "-o", str(out), "-n", "3", "--seed", "1"])
    assert r.exit_code == 0, r.output
    pngs = sorted(out.glob("sample_*.png"))
    assert len(pngs) == 3
    sk = S.resolve("openpose18")
    expected = 5 + sk.num_keypoints + sk.num_limbs
    assert f"{expected} panels" in (out / "summary.txt").read_text()
    for p in pngs + [out / "index.png"]:
        im = cv2.imread(str(p))
        assert im is not None and im.shape[0] > 200 and im.std() > 10
    # same seed, same pictures
    out2 = tmp_path / "pv2"
    runner.invoke(cli, ["preview", str(shared_real / "coco" / "test_coco.json"), "--skeleton", "openpose18",
                        "--images", str(shared_real / "coco"), "-o", str(out2), "-n", "3", "--seed", "1"])
    assert [p.read_bytes() for p in pngs] == [p.read_bytes() for p in sorted(out2.glob("sample_*.png"))]


def test_preview_no_augment_and_errors(runner, tmp_path, shared_real):
    out = tmp_path / "pv"
    r = runner.invoke(cli, ["preview", str(shared_real / "coco" / "test_coco.json"), "--skeleton", "coco17",
                            "--images", str(shared_real / "coco"), "-o", str(out), "-n", "2", "--no-augment",
                            "--input-size", "256"])
    assert r.exit_code == 0, r.output
    assert "no augmentation" in (out / "summary.txt").read_text()
    r = runner.invoke(cli, ["preview", str(shared_real / "coco" / "test_coco.json"), "--skeleton", "coco17",
                            "--images", str(tmp_path / "nowhere"), "-o", str(tmp_path / "pv3"), "-n", "1"])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_heatmap_overlay_and_wheel_shapes():
    from posedata.plots import keypoint_colors
    from posedata.preview import heatmap_overlay, paf_color_wheel

    sk = S.resolve("object5")
    hm = np.zeros((6, 8, 8), np.float32)
    hm[2, 3, 3] = 1
    ov = heatmap_overlay(hm, keypoint_colors(sk) / 255.0)
    assert ov.shape == (8, 8, 3) and np.allclose(ov[3, 3], keypoint_colors(sk)[2] / 255.0)
    paf = np.zeros((8, 8, 8), np.float32)
    paf[0, 2, 2] = 1.0  # limb 0 points along +x
    rgba, vec = paf_color_wheel(paf)
    assert rgba[2, 2, 3] == 1.0 and rgba[0, 0, 3] == 0.0 and vec[0, 2, 2] == 1.0


def test_preview_refuses_an_input_size_train_refuses(runner, tmp_path):
    # `preview --input-size 60` drew previews of a configuration `train` would refuse
    from posedata.augment import check_input_size

    r = runner.invoke(cli, ["preview", str(tmp_path / "x.json"), "--skeleton", "coco17", "--images", str(tmp_path),
                            "-o", str(tmp_path / "p"), "--input-size", "60"])
    assert r.exit_code == 2 and "multiple of 8" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "p").exists()
    check_input_size(64)
    import pytest

    from posedata.errors import InputError
    with pytest.raises(InputError):
        check_input_size(60)


def test_one_keypoint_colour_rule_for_previews_and_val_infer_overlays():
    """Previews coloured keypoints by evenly spaced hues, val/infer overlays by side: one rule now
    (the skeleton's colours where given, else the side's), and both drawings paint with it."""
    from posedata.plots import SIDE_COLORS, keypoint_colors
    from posedata.preview import thumbnail
    from trainer.draw import draw_poses

    sk = S.from_dict({"name": "t", "keypoints": ["head", "left_hand", "right_hand", "tail"],
                      "limbs": [["head", "left_hand"], ["head", "right_hand"], ["head", "tail"]], "root": "head",
                      "flip": [["left_hand", "right_hand"]], "sigmas": [0.05] * 4, "colors": {"tail": [10, 200, 30]}})
    cols = keypoint_colors(sk)

    def rgb(hex_colour: str) -> list[int]:
        return [int(hex_colour[j:j + 2], 16) for j in (1, 3, 5)]

    assert cols.tolist() == [rgb(SIDE_COLORS["centre"]), rgb(SIDE_COLORS["left"]), rgb(SIDE_COLORS["right"]),
                             [10, 200, 30]]
    for k in range(sk.num_keypoints):
        pose = np.full((1, sk.num_keypoints, 3), -1.0)
        pose[0, k] = (50, 50, 1)
        drawn = draw_poses(np.zeros((100, 100, 3), np.uint8), pose, sk)  # val / infer, BGR
        assert drawn[50, 50, ::-1].tolist() == cols[k].tolist(), k
        hm = np.zeros((sk.num_heatmaps, 4, 4), np.float32)
        hm[k, 1, 1] = 1
        sample = SimpleNamespace(image=np.zeros((4, 4, 3), np.uint8), heatmaps=hm,
                                 pafs=np.zeros((sk.num_pafs, 4, 4), np.float32))
        assert thumbnail(sample, sk)[1, 4 + 1].tolist() == cols[k].tolist(), k  # preview: the heatmaps panel
