"""The trainer's label file: NumPy arrays in one .npz, loaded with allow_pickle=False.

No pickle, no code execution; versioned; carries the skeleton fingerprint and the conversion
settings. One record per image with all its instances; crowd regions kept for loss masks;
the training samples ("main persons") chosen by the reference's rules.

Keypoints are in skeleton order with the reference's internal visibility
(0 = labelled but occluded, 1 = visible, 2 = absent), derived keypoints filled in and the
reference's clean-up applied (a point at exactly (0, 0) or outside the image is absent).
"""
from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .io import atomic_write_bytes, paused_gc

FORMAT = "posedata-labels"
VERSION = 1

# internal visibility codes (the reference's)
OCCLUDED, VISIBLE, ABSENT = 0, 1, 2


@dataclass
class Labels:
    fingerprint: str
    skeleton_name: str
    keypoint_names: list[str]
    settings: dict[str, Any]
    # per image
    image_ids: np.ndarray  # (I,) int64
    file_names: list[str]
    widths: np.ndarray  # (I,) int32
    heights: np.ndarray  # (I,) int32
    crowd: list[list[Any]]  # per image: COCO segmentations (polygons or RLE) of crowd regions
    # per instance: every non-crowd annotation with at least one labelled keypoint
    inst_image: np.ndarray  # (M,) int32, index into the per-image arrays
    inst_ids: np.ndarray  # (M,) int64, COCO annotation ids
    keypoints: np.ndarray  # (M, K, 3) float32, skeleton order, internal visibility
    bbox: np.ndarray  # (M, 4) float32, x, y, w, h
    area: np.ndarray  # (M,) float32
    num_keypoints: np.ndarray  # (M,) int32, the source's num_keypoints
    # training samples
    samples: np.ndarray  # (S,) int32, index into instances
    version: int = VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_images(self) -> int:
        return len(self.file_names)

    @property
    def num_samples(self) -> int:
        return len(self.samples)

    def objpos(self, inst: int | np.ndarray) -> np.ndarray:
        """bbox centre [x + w/2, y + h/2] (the reference's objpos)."""
        b = self.bbox[inst]
        return np.stack([b[..., 0] + b[..., 2] / 2, b[..., 1] + b[..., 3] / 2], axis=-1)

    def scale_provided(self, inst: int | np.ndarray, input_size: int = 368) -> np.ndarray:
        """bbox height / network input size (the reference's scale_provided)."""
        return self.bbox[inst][..., 3] / input_size

    def image_instances(self, image_index: int) -> np.ndarray:
        """Instance indices of one image, in file order."""
        starts, order = self._by_image()
        return order[starts[image_index]:starts[image_index + 1]]

    def _by_image(self) -> tuple[np.ndarray, np.ndarray]:
        # instances grouped by image once, so a sample's lookup does not scan every instance
        # (a COCO-sized file has ~260k: 0.3 ms per sample for a comparison over all of them)
        index = getattr(self, "_by_image_index", None)
        if index is None or index[2] is not self.inst_image:  # rebuilt if the array was replaced
            order = np.argsort(self.inst_image, kind="stable")
            starts = np.searchsorted(self.inst_image[order], np.arange(self.num_images + 1))
            index = self._by_image_index = (starts, order, self.inst_image)
        return index[0], index[1]

    def sample(self, i: int) -> dict[str, Any]:
        """Record i as the trainer sees it: the main instance first, then every other instance."""
        main = int(self.samples[i])
        img = int(self.inst_image[main])
        others = [int(j) for j in self.image_instances(img) if j != main]
        return {
            "image_index": img,
            "image_id": int(self.image_ids[img]),
            "file_name": self.file_names[img],
            "width": int(self.widths[img]),
            "height": int(self.heights[img]),
            "main": main,
            "instances": [main] + others,
            "objpos": self.objpos(main),
            "scale_provided": float(self.scale_provided(main)),
            "keypoints": self.keypoints[[main] + others],
            "crowd": self.crowd[img],
        }


def save(labels: Labels, path: str | Path, source: bytes | None = None) -> None:
    """Write atomically: arrays plus a JSON header, no pickled objects. source: the COCO JSON the
    labels were made from (as validated), stored zlib-compressed so the training gate can re-check
    it when the label file has moved without its source (read back by load_embedded_source)."""
    header = {
        "format": FORMAT,
        "version": labels.version,
        "fingerprint": labels.fingerprint,
        "skeleton_name": labels.skeleton_name,
        "keypoint_names": labels.keypoint_names,
        "settings": labels.settings,
        "file_names": labels.file_names,
        "crowd": labels.crowd,
        "extra": labels.extra,
    }
    buf = io.BytesIO()
    np.savez(
        buf,
        header=np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
        image_ids=labels.image_ids.astype(np.int64),
        widths=labels.widths.astype(np.int32),
        heights=labels.heights.astype(np.int32),
        inst_image=labels.inst_image.astype(np.int32),
        inst_ids=labels.inst_ids.astype(np.int64),
        keypoints=labels.keypoints.astype(np.float32),
        bbox=labels.bbox.astype(np.float32),
        area=labels.area.astype(np.float32),
        num_keypoints=labels.num_keypoints.astype(np.int32),
        samples=labels.samples.astype(np.int32),
        **({} if source is None else {SOURCE_KEY: np.frombuffer(zlib.compress(source, 1), dtype=np.uint8)}),
    )
    atomic_write_bytes(path, buf.getvalue())


SOURCE_KEY = "source_json"


def load_embedded_source(path: str | Path) -> bytes | None:
    """The source COCO JSON a label file carries (see save), or None for a file written without it.
    The header is read too, so a file that is no label file fails as in load."""
    p = Path(path)
    load_header(p)
    try:
        with np.load(p, allow_pickle=False) as z:
            if SOURCE_KEY not in z.files:
                return None
            return zlib.decompress(z[SOURCE_KEY].tobytes())
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise InputError(f"the source JSON stored in the label file is unreadable ({type(e).__name__}: {e})",
                         file=str(p)) from None


def load_header(path: str | Path) -> dict[str, Any]:
    """A label file's JSON header alone (format, skeleton, settings), checked as load checks it."""
    p = Path(path)
    if not p.is_file():
        raise InputError("label file not found", file=str(p))
    try:
        with np.load(p, allow_pickle=False) as z:
            if "header" not in z.files:
                raise InputError("not a posedata label file (no header)", file=str(p))
            header = json.loads(z["header"].tobytes().decode("utf-8"))
    except InputError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"not a readable posedata label file ({type(e).__name__}: {e})", file=str(p)) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InputError(f"not a posedata label file (format {header.get('format') if isinstance(header, dict) else None!r})", file=str(p))
    if not isinstance(header.get("settings"), dict):
        raise InputError("label file header lacks its settings", file=str(p))
    return header


ARRAYS = ("image_ids", "widths", "heights", "inst_image", "inst_ids", "keypoints", "bbox", "area", "num_keypoints", "samples")


def load(path: str | Path) -> Labels:
    """Read a label file; anything but a well-formed posedata label file is an InputError."""
    p = Path(path)
    if not p.is_file():
        raise InputError("label file not found", file=str(p))
    try:
        with np.load(p, allow_pickle=False) as z:
            if "header" not in z.files:
                raise InputError("not a posedata label file (no header)", file=str(p))
            with paused_gc():  # 57k file names and crowd lists: nothing cyclic for the collector to find
                header = json.loads(z["header"].tobytes().decode("utf-8"))
            arrays = {k: z[k] for k in ARRAYS}
    except InputError:
        raise
    except KeyError as e:
        raise InputError(f"label file lacks array {e}", file=str(p)) from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"not a readable posedata label file ({type(e).__name__}: {e})", file=str(p)) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InputError(f"not a posedata label file (format {header.get('format') if isinstance(header, dict) else None!r})", file=str(p))
    if header.get("version") != VERSION:
        raise InputError(f"label file version {header.get('version')!r}; this posedata reads version {VERSION}", file=str(p))
    try:
        labels = Labels(
            fingerprint=str(header["fingerprint"]), skeleton_name=str(header["skeleton_name"]),
            keypoint_names=list(header["keypoint_names"]), settings=dict(header["settings"]),
            file_names=list(header["file_names"]), crowd=list(header["crowd"]),
            extra=dict(header.get("extra", {})), **arrays,
        )
    except (KeyError, TypeError) as e:
        raise InputError(f"label file header lacks or mistypes {e}", file=str(p)) from None
    _check_shapes(labels, str(p))
    return labels


def _check_shapes(lb: Labels, file: str) -> None:
    n_img, m = len(lb.file_names), len(lb.inst_image)
    k = len(lb.keypoint_names)
    problems = []
    for name in ("image_ids", "widths", "heights"):
        if getattr(lb, name).shape != (n_img,):
            problems.append(f"{name} has shape {getattr(lb, name).shape}, expected ({n_img},)")
    if len(lb.crowd) != n_img:
        problems.append(f"crowd has {len(lb.crowd)} entries, expected {n_img}")
    if lb.keypoints.shape != (m, k, 3):
        problems.append(f"keypoints has shape {lb.keypoints.shape}, expected ({m}, {k}, 3)")
    for name, shape in (("inst_ids", (m,)), ("bbox", (m, 4)), ("area", (m,)), ("num_keypoints", (m,))):
        if getattr(lb, name).shape != shape:
            problems.append(f"{name} has shape {getattr(lb, name).shape}, expected {shape}")
    if m and (lb.inst_image.min() < 0 or lb.inst_image.max() >= n_img):
        problems.append("inst_image points outside the images")
    if len(lb.samples) and (lb.samples.min() < 0 or lb.samples.max() >= m):
        problems.append("samples point outside the instances")
    if problems:
        raise InputError("inconsistent label file: " + "; ".join(problems), file=file)
