from __future__ import annotations

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
    from posedata.preview import heatmap_overlay, keypoint_colors, paf_color_wheel

    sk = S.resolve("object5")
    hm = np.zeros((6, 8, 8), np.float32)
    hm[2, 3, 3] = 1
    ov = heatmap_overlay(hm, keypoint_colors(sk))
    assert ov.shape == (8, 8, 3) and np.allclose(ov[3, 3], keypoint_colors(sk)[2])
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
