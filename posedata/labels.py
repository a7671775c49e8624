"""The trainer's label file: NumPy arrays in one .npz, loaded with allow_pickle=False.

No pickle, no code execution; versioned; carries the skeleton fingerprint and the conversion
settings. One record per image with all its instances; crowd regions kept for loss masks;
the training samples ("main persons") chosen by the reference's rules.

Keypoints are in skeleton order with the reference's internal visibility
(0 = labelled but occluded, 1 = visible, 2 = absent), derived keypoints filled in and the
reference's clean-up applied (a point at exactly (0, 0) or outside the image is absent).
"""
from __future__ import annotations

import json
import math
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .io import atomic_writer, paused_gc

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
    labels were made from (as validated), stored as it is so the training gate can re-check it
    when the label file has moved without its source (read back by load_embedded_source).

    The copy is stored, not compressed: deflate (zlib level 1, its fastest) cost 1.7 s of CPU on a
    134 MB COCO-train-sized file, more than converting it, to save 86 MB of disk (bench/README.md,
    "convert"). The zip is written straight into the output's temp file from the arrays' and the
    source's own memory (_savez), streamed to disk (atomic_writer's stream), so neither a second
    in-memory copy of the source nor a page cache the size of the file is made."""
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
    arrays = dict(
        header=np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
        image_ids=_c(labels.image_ids, np.int64),
        widths=_c(labels.widths, np.int32),
        heights=_c(labels.heights, np.int32),
        inst_image=_c(labels.inst_image, np.int32),
        inst_ids=_c(labels.inst_ids, np.int64),
        keypoints=_c(labels.keypoints, np.float32),
        bbox=_c(labels.bbox, np.float32),
        area=_c(labels.area, np.float32),
        num_keypoints=_c(labels.num_keypoints, np.int32),
        samples=_c(labels.samples, np.int32),
    )
    if source is not None:
        arrays[SOURCE_RAW_KEY] = np.frombuffer(source, dtype=np.uint8)
    with atomic_writer(path, stream=True) as f:
        _savez(f, arrays)


def _savez(f: Any, arrays: dict[str, np.ndarray]) -> None:
    """np.savez(f, **arrays), byte for byte (its members in order, stored, zip64, .npy 1.0
    headers, zipfile's fixed 1980 date), each member's data written from the array's own memory:
    np.savez first copies every array into 16 MB chunks, 17 of them for a 268 MB source copy.
    The arrays must be C-contiguous (save makes them so)."""
    from numpy.lib import format as npy

    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, a in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as member:
                npy.write_array_header_1_0(member, npy.header_data_from_array_1_0(a))
                if a.nbytes:  # memoryview refuses to cast an empty array; np.savez writes no data for it
                    member.write(memoryview(a).cast("B"))


def _c(a: np.ndarray, dtype: type) -> np.ndarray:
    """a as a C-contiguous array of dtype (as astype made it), without a copy when it is one."""
    return np.ascontiguousarray(a, dtype=dtype)


SOURCE_RAW_KEY = "source_bytes"  # the source as it is (save writes this)
SOURCE_KEY = "source_json"  # zlib-compressed, as label files written before it carry it


def load_embedded_source(path: str | Path) -> bytes | None:
    """The source COCO JSON a label file carries (see save), or None for a file written without it.
    The header is read too, so a file that is no label file fails as in load."""
    p = Path(path)
    load_header(p)
    try:
        with np.load(p, allow_pickle=False) as z:
            if SOURCE_RAW_KEY in z.files:
                return z[SOURCE_RAW_KEY].tobytes()
            if SOURCE_KEY not in z.files:
                return None
            return zlib.decompress(z[SOURCE_KEY].tobytes())
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise InputError(f"the source JSON stored in the label file is unreadable ({type(e).__name__}: {e})",
                         file=str(p)) from None


def _unreadable(e: BaseException, p: Path) -> InputError:
    """The one message for a file np.load cannot read as a label file (load and load_header)."""
    if isinstance(e, zipfile.BadZipFile):
        return InputError("not a posedata label file (expected the .npz `posedata convert` writes)", file=str(p))
    return InputError(f"not a readable posedata label file ({type(e).__name__}: {e})", file=str(p))


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
        raise _unreadable(e, p) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InputError(f"not a posedata label file (format {header.get('format') if isinstance(header, dict) else None!r})", file=str(p))
    if not isinstance(header.get("settings"), dict):
        raise InputError("label file header lacks its settings", file=str(p))
    return header


ARRAYS = ("image_ids", "widths", "heights", "inst_image", "inst_ids", "keypoints", "bbox", "area", "num_keypoints", "samples")
# the dtype save() writes each array with; a label file is only ever written by posedata, so any
# other dtype (floats where indices belong, an object array) is refused, not converted
DTYPES = {"header": np.uint8, "image_ids": np.int64, "widths": np.int32, "heights": np.int32,
          "inst_image": np.int32, "inst_ids": np.int64, "keypoints": np.float32, "bbox": np.float32,
          "area": np.float32, "num_keypoints": np.int32, "samples": np.int32}


def load(path: str | Path) -> Labels:
    """Read a label file; anything but a well-formed posedata label file is an InputError.

    Every member's dtype, shape and size is read from the zip directory and the .npy headers
    before anything is loaded, so memory never exceeds what the file itself holds (a 5 kB file
    claiming a huge array, or a compressed member that would expand to GBs, is refused unread);
    then every stored value is checked (types, ranges, finiteness)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("label file not found", file=str(p))
    try:
        check_members(p)
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
        raise _unreadable(e, p) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InputError(f"not a posedata label file (format {header.get('format') if isinstance(header, dict) else None!r})", file=str(p))
    if header.get("version") != VERSION:
        raise InputError(f"label file version {header.get('version')!r}; this posedata reads version {VERSION}", file=str(p))
    _check_header(header, str(p))
    labels = Labels(
        fingerprint=header["fingerprint"], skeleton_name=header["skeleton_name"],
        keypoint_names=header["keypoint_names"], settings=header["settings"],
        file_names=header["file_names"], crowd=header["crowd"], extra=header.get("extra", {}), **arrays,
    )
    _check_shapes(labels, str(p))
    _check_values(labels, str(p))
    return labels


def check_members(p: Path) -> None:
    """Refuse, before any array is allocated, a member whose .npy header declares another dtype
    than posedata writes, or more (or fewer) bytes than the member holds, and a compressed member
    (np.savez stores them; deflate could expand a few MB into GBs)."""
    from numpy.lib import format as npy

    file = str(p)
    with zipfile.ZipFile(p) as zf:
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if info.compress_type != zipfile.ZIP_STORED:
                raise InputError(f"array {key!r} is compressed ({info.file_size} bytes declared in "
                                 f"{info.compress_size}); posedata writes label files uncompressed and reads only "
                                 "those, so no member can expand beyond the file", file=file, where=key)
            with zf.open(info) as f:
                version = npy.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise InputError(f"array {key!r}: .npy format version {version}, expected 1.0 or 2.0",
                                     file=file, where=key)
                read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                shape, _fortran, dtype = read(f)
                header_len = f.tell()
            want = DTYPES.get(key)
            if dtype.hasobject or (want is not None and dtype != np.dtype(want)):
                raise InputError(f"array {key!r} has dtype {dtype}, expected {np.dtype(want or np.float32)} "
                                 "(posedata's own)", file=file, where=key)
            nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
            if header_len + nbytes != info.file_size:
                raise InputError(f"array {key!r} declares shape {tuple(shape)} ({nbytes} bytes) but the member "
                                 f"holds {info.file_size - header_len} bytes", file=file, where=key)


def _check_header(h: dict, file: str) -> None:
    """The header's fields have the types the trainer uses them as."""
    kinds = {"fingerprint": str, "skeleton_name": str, "keypoint_names": list, "settings": dict,
             "file_names": list, "crowd": list, "extra": dict}
    for name, kind in kinds.items():
        if name not in h and name == "extra":
            continue
        if not isinstance(h.get(name), kind):
            raise InputError(f"label file header field {name!r} is {type(h.get(name)).__name__ if name in h else 'missing'}, "
                             f"expected a {kind.__name__}", file=file, where=f"header.{name}")
    for name in ("keypoint_names", "file_names"):
        bad = next((i for i, v in enumerate(h[name]) if not isinstance(v, str)), None)
        if bad is not None:
            raise InputError(f"expected a string, got {h[name][bad]!r}", file=file, where=f"header.{name}[{bad}]")
    bad = next((i for i, v in enumerate(h["crowd"]) if not isinstance(v, list)), None)
    if bad is not None:
        raise InputError(f"expected a list of crowd regions, got {type(h['crowd'][bad]).__name__}", file=file,
                         where=f"header.crowd[{bad}]")


def _check_values(lb: Labels, file: str) -> None:
    """Ranges and finiteness of the stored values (dtypes and shapes are already right)."""
    def refuse(where: str, rows: np.ndarray, what: str) -> None:
        i = int(np.flatnonzero(rows)[0])
        raise InputError(f"{int(rows.sum())} value(s) {what}, first at index {i}", file=file, where=where)

    for name in ("widths", "heights"):
        bad = getattr(lb, name) <= 0
        if bad.any():
            refuse(name, bad, "not positive")
    v = lb.keypoints[..., 2]
    bad = ~np.isin(v, (OCCLUDED, VISIBLE, ABSENT))
    if bad.any():
        refuse("keypoints", bad.any(axis=1), f"with a visibility other than {OCCLUDED}, {VISIBLE}, {ABSENT}")
    bad = ((v != ABSENT) & ~np.isfinite(lb.keypoints[..., :2]).all(axis=-1))
    if bad.any():
        refuse("keypoints", bad.any(axis=1), "with a labelled point that is not finite")
    bad = ~np.isfinite(lb.bbox).all(axis=1) | (lb.bbox[:, 2:] < 0).any(axis=1)
    if bad.any():
        refuse("bbox", bad, "not finite or with a negative size")
    bad = ~np.isfinite(lb.area)
    if bad.any():
        refuse("area", bad, "not finite")
    bad = (lb.num_keypoints < 0) | (lb.num_keypoints > len(lb.keypoint_names))
    if bad.any():
        refuse("num_keypoints", bad, f"outside 0..{len(lb.keypoint_names)}")


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
