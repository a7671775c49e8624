"""Every importer's output read by an independent COCO reader (pycocotools), and docs/formats.md
covering every registered format."""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from posedata import skeleton as S
from posedata.formats import FORMATS
from posedata.importer import ImportOptions, import_file

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "import"
MOUSE = DATA / "dlc_mouse.yaml"

CASES = [
    ("coco-annotator", DATA / "coco_annotator_export.json", "coco17", {}),
    ("cvat", DATA / "cvat_images_1_1.xml", "object5", {}),
    ("cvat", DATA / "cvat_doc_example.xml", "object5", {}),
    ("cvat", DATA / "cvat_video_1_1.xml", "object5", {}),
    ("cvat", DATA / "cvat_points_group_id.xml", "object5", {}),
    ("cvat", DATA / "cvat_coco_keypoints.json", "object5", {}),
    ("label-studio", DATA / "label_studio_export.json", "object5", {}),
    ("label-studio", DATA / "label_studio_rects_two_controls.json", "object5", {"control": "kp-tool"}),
    ("deeplabcut", DATA / "dlc_project", MOUSE, {}),
    ("deeplabcut", DATA / "dlc_ma_project", MOUSE, {}),
    ("labelme", DATA / "labelme_project", MOUSE, {}),
    ("yolo", DATA / "yolo_dataset" / "data_named.yaml", MOUSE, {"category": "mouse"}),
]


@pytest.mark.parametrize("fmt,src,skel,opts", CASES, ids=[f"{c[0]}:{c[1].name}" for c in CASES])
def test_output_read_by_pycocotools_as_written(tmp_path, fmt, src, skel, opts):
    sk = S.resolve(str(skel))
    out = import_file(fmt, src, sk, ImportOptions(**opts)).dataset.to_coco()
    p = tmp_path / "out.json"
    p.write_text(json.dumps(out))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(p))
    assert sorted(gt.getAnnIds()) == sorted(a["id"] for a in out["annotations"])
    for a in out["annotations"]:
        g = gt.loadAnns(a["id"])[0]
        assert g["keypoints"] == a["keypoints"] and g["bbox"] == a["bbox"] and g["image_id"] == a["image_id"]
        assert a["num_keypoints"] == sum(v > 0 for v in a["keypoints"][2::3])
    # the labels scored against themselves with the skeleton's sigmas: a perfect AP, unless an
    # annotation is unusable for COCOeval (no labelled keypoint, a box or area it cannot use)
    labelled = [a for a in out["annotations"] if a["num_keypoints"] > 0 and not a.get("iscrowd")]
    if not labelled:
        return
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "keypoints": a["keypoints"], "score": 1.0}
            for a in labelled]
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.kpt_oks_sigmas = _coco_sigmas(sk)
        ev.params.areaRng = [[0, 1e10]] * 4  # tiny fixtures: every size counts as "all"
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def _coco_sigmas(sk: S.Skeleton) -> np.ndarray:
    out = np.zeros(len(sk.coco_keypoints))
    for i, j in enumerate(sk.source_index(list(sk.coco_keypoints)).tolist()):
        if j >= 0:
            out[j] = sk.sigmas[i]
    return out


def test_docs_formats_has_a_section_per_format():
    doc = (ROOT / "docs" / "formats.md").read_text()
    sections = re.findall(r"^## .*\(`([a-z-]+)`\)", doc, flags=re.M)
    assert sorted(sections) == sorted(FORMATS)
