"""Drawing detected poses (and ground truth) on images, and writing PNGs."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from posedata.errors import PosedataError
from posedata.plots import keypoint_colors


def draw_poses(image_bgr: np.ndarray, poses: np.ndarray, skeleton, gt: np.ndarray | None = None) -> np.ndarray:
    """A copy of the image with instances drawn: limbs and keypoints in posedata.plots.keypoint_colors
    (the skeleton's colours, else side colours; a limb takes the colour of its end farther from the root), and
    ground-truth keypoints, when given (skeleton order, x < 0 missing), as white rings."""
    import cv2

    img = image_bgr.copy()
    h, w = img.shape[:2]
    t = max(1, int(round(min(h, w) / 250)))
    cols = [(int(b), int(g), int(r)) for r, g, b in keypoint_colors(skeleton)]  # OpenCV draws BGR
    far_end = {li: new for li, _known, new in skeleton.grouping_steps}
    if gt is not None:
        for inst in gt:
            for x, y, _ in inst:
                if x >= 0:
                    cv2.circle(img, (int(round(x)), int(round(y))), 3 * t, (255, 255, 255), max(1, t // 2), cv2.LINE_AA)
    for pose in poses:
        for li, (a, b) in enumerate(skeleton.limbs):
            if pose[a, 0] >= 0 and pose[b, 0] >= 0:
                cv2.line(img, (int(round(pose[a, 0])), int(round(pose[a, 1]))),
                         (int(round(pose[b, 0])), int(round(pose[b, 1]))), cols[far_end[li]], t, cv2.LINE_AA)
        for k, (x, y, _) in enumerate(pose):
            if x >= 0:
                c = (int(round(x)), int(round(y)))
                cv2.circle(img, c, 2 * t + 1, cols[k], -1, cv2.LINE_AA)
                cv2.circle(img, c, 2 * t + 1, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def write_png(path: Path, image_bgr: np.ndarray) -> None:
    import cv2

    from posedata.io import atomic_write_bytes

    ok, buf = cv2.imencode(".png", image_bgr)
    if not ok:
        raise PosedataError("PNG encoding failed", file=str(path))
    atomic_write_bytes(path, buf.tobytes())
