"""One module per external annotation format, each a reader into the same `posedata.coco.Dataset`.

A format module defines:
    NAME: str                      the name used on the command line (`posedata import NAME ...`)
    def detect(path: Path) -> bool: True when the file or folder looks like this format (content, not name)
    def read(path: Path, skeleton: Skeleton, options: ImportOptions) -> ImportResult
and is listed in FORMATS below.

Readers share posedata/formats/builder.py: `keypoint_mapping` (match the export's names to the skeleton,
never by position; `keypoint_slots` when the export has no name list), `read_json`, and `DatasetBuilder`, which takes `RawImage`/`RawInstance` records
(keypoints already in skeleton.coco_keypoints order) and applies the repairs common to every format
(image resolution against --images, sizes, bbox/area from keypoints, --drop-unlabelled,
--keep-empty, ids, the output category). Raise only posedata.errors types on bad input.
"""
from __future__ import annotations

# ImportOptions/ImportReport/ImportResult live in .base; not re-exported here, so that listing
# FORMATS (the CLI's help does) imports no numpy.

# name -> module path; imported lazily so the CLI stays fast. `--format auto` tries detect() in
# this order, so put formats whose files are a superset of another's (coco-annotator's COCO, CVAT's
# COCO) before any plainer reader of the same kind.
FORMATS: dict[str, str] = {
    "coco-annotator": "posedata.formats.coco_annotator",
    "cvat": "posedata.formats.cvat",
    "label-studio": "posedata.formats.label_studio",
    "deeplabcut": "posedata.formats.deeplabcut",
    "labelme": "posedata.formats.labelme",
    "yolo": "posedata.formats.yolo",
    "sleap": "posedata.formats.sleap",
}
