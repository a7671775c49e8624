"""SLEAP `.slp` labels through sleap-io, an optional extra: `pip install 'posedata[sleap]'`.

sleap-io is a well-kept reader but too heavy to be a core dependency (pynwb, skia, aiohttp, ...),
so it is imported only here, and only when a .slp file is read. It decodes SLEAP's skeleton JSON
itself (no pickle).

- Only user-labelled instances are imported; predicted instances are model output, not labels,
  and are skipped and counted.
- A node with finite coordinates marked visible is COCO v=2. SLEAP keeps a position for a node
  marked not visible, but it is wherever the point was left, not a labelled location, so such a
  node is read as not labelled (v=0) and counted in the report.
- Images: an image-sequence video's frame is its image file; a frame of a media video (mp4, avi,
  ...) or of a package with embedded frames must exist as an image named
  `<video stem>_frame_<frame index, 6 digits>.png`, sleap-io's own COCO naming. Sizes come from the
  video metadata stored in the file, else from the image.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..errors import InputError
from ..skeleton import Skeleton, normalize_name
from .base import ImportOptions, ImportReport, ImportResult

NAME = "sleap"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
INSTALL_HINT = "reading SLEAP .slp files needs the optional extra: pip install 'posedata[sleap]' (installs sleap-io)"


def detect(path: Path) -> bool:
    path = Path(path)
    if path.is_dir():
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    if head != HDF5_SIGNATURE:
        return False
    try:
        import h5py
    except ImportError:
        return path.suffix.lower() == ".slp"
    try:
        with h5py.File(path, "r") as f:
            return all(k in f for k in ("metadata", "frames", "instances", "points"))
    except Exception:  # h5py raises many types on a damaged file; detection only answers yes or no
        return False


def _sleap_io(file: str | None = None) -> Any:
    try:
        import sleap_io
    except ImportError:
        raise InputError(INSTALL_HINT, file=file) from None
    return sleap_io


def frame_image_name(video_filename: str, frame_idx: int) -> str:
    """The image name a frame of a media video is expected under (sleap-io's COCO naming)."""
    stem = PurePosixPath(str(video_filename).replace("\\", "/")).stem
    return f"{stem}_frame_{int(frame_idx):06d}.png"


def _load(path: Path) -> Any:
    file = str(path)
    sio = _sleap_io(file)
    try:
        with open(path, "rb") as f:
            if f.read(8) != HDF5_SIGNATURE:
                raise InputError("not a SLEAP .slp file (no HDF5 signature)", file=file)
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", file=file) from None
    try:
        return sio.load_slp(file, open_videos=False)
    except InputError:
        raise
    except Exception as e:  # sleap-io/h5py raise many types on a damaged file; none may escape as a traceback
        raise InputError(f"sleap-io cannot read this .slp file: {type(e).__name__}: {e}", file=file) from None


def _pick_skeleton(labels: Any, wanted: str | None, file: str) -> Any:
    sks = list(labels.skeletons)
    if not sks:
        raise InputError("the .slp file defines no skeleton", file=file, where="metadata.skeletons")
    if wanted is None:
        if len(sks) == 1:
            return sks[0]
        raise InputError(f"{len(sks)} skeletons ({[s.name for s in sks]}); choose one with --category NAME",
                         file=file, where="metadata.skeletons")
    for s in sks:
        if normalize_name(str(s.name)) == normalize_name(wanted):
            return s
    raise InputError(f"no skeleton {wanted!r}; skeletons: {[s.name for s in sks]}", file=file,
                     where="metadata.skeletons")


def _image_of(video: Any, frame_idx: int, slp_dir: Path) -> tuple[str, list[str], Path | None]:
    """(name, other names to try under --images, local file if found beside the .slp)."""
    from ..importer import path_tails

    fn = video.filename
    if isinstance(fn, list):
        if not 0 <= frame_idx < len(fn):
            raise InputError(f"frame {frame_idx} is outside the image sequence of {len(fn)} image(s)")
        src = str(fn[frame_idx]).replace("\\", "/")
    else:
        src = frame_image_name(str(fn), frame_idx)
    tails = path_tails(src)
    for t in tails:
        p = slp_dir / t
        if p.is_file():
            return t, tails, p
    # the full path: under --images the longest tail that exists is found (two videos may share
    # frame file names, so the bare name is the last resort, not the first)
    return src, tails, None


def read(path: Path, skeleton: Skeleton, options: ImportOptions) -> ImportResult:
    from ..images import image_header
    from ..importer import DatasetBuilder, RawImage, RawInstance, keypoint_mapping

    path = Path(path)
    file = str(path)
    if path.is_dir():
        raise InputError("expected a SLEAP .slp file, got a folder", file=file)
    sio = _sleap_io(file)
    labels = _load(path)
    sk_src = _pick_skeleton(labels, options.category, file)
    node_names = [str(n) for n in sk_src.node_names]
    mapping = keypoint_mapping(node_names, skeleton, file=file, where=f"skeleton {sk_src.name!r} nodes")
    report = ImportReport(format=NAME, source=file)
    builder = DatasetBuilder(skeleton, options, report, file=file, category_name=skeleton.name)
    slp_dir = path.resolve().parent
    K = len(skeleton.coco_keypoints)
    keys: dict[tuple[int, int], int] = {}
    missing: list[str] = []
    video_ids = {id(v): i for i, v in enumerate(labels.videos)}
    for n_lf, lf in enumerate(labels.labeled_frames):
        where = f"labeled_frames[{n_lf}]"
        video, fidx = lf.video, int(lf.frame_idx)
        vkey = (video_ids.get(id(video), -1), fidx)
        name, tails, local = _image_of(video, fidx, slp_dir)
        if vkey not in keys:
            keys[vkey] = len(keys) + 1
            shape = video.backend_metadata.get("shape") if isinstance(video.backend_metadata, dict) else None
            w = h = None
            if isinstance(shape, (list, tuple)) and len(shape) == 4 and all(
                    isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x > 0 for x in shape[1:3]):
                h, w = int(shape[1]), int(shape[2])
            if options.images is None:
                if local is None:
                    missing.append(name)
                    continue
                if w is None or h is None:
                    w, h = image_header(local).size
            builder.add_image(RawImage(key=keys[vkey], file_name=name, width=w, height=h, candidates=tails,
                                       where=where, extra={"video": str(video.filename if not isinstance(video.filename, list)
                                                                        else Path(video.filename[0]).parent),
                                                           "frame_idx": fidx}))
        for n_inst, inst in enumerate(lf.instances):
            if isinstance(inst, sio.PredictedInstance):
                report.skip("predicted instance (model output, not a label)", f"{where}.instances[{n_inst}]")
                continue
            if inst.skeleton is not sk_src:
                report.skip("instance of another skeleton", f"{where}.instances[{n_inst}]")
                continue
            pts = inst.points
            xy = np.asarray(pts["xy"], dtype=np.float64).reshape(-1, 2)
            vis = np.asarray(pts["visible"], dtype=bool).reshape(-1)
            finite = np.isfinite(xy).all(axis=1)
            hidden = finite & ~vis
            if hidden.any():
                report.repair("node marked not visible read as not labelled (its position is not a label)",
                              f"{where}.instances[{n_inst}]", n=int(hidden.sum()))
            lab = finite & vis
            kp = np.zeros((len(node_names), 3))
            kp[lab, :2] = xy[lab]
            kp[lab, 2] = 2
            report.instances_read += 1
            extra = {"track": inst.track.name} if getattr(inst, "track", None) is not None else {}
            builder.add_instance(RawInstance(image_key=keys[vkey], keypoints=kp[mapping].reshape(K, 3),
                                             source_id=f"{where}.instances[{n_inst}]", where=where, extra=extra))
    if missing:
        raise InputError(f"{len(missing)} frame image(s) not found beside the .slp file: "
                         f"{missing[:5]}{' ...' if len(missing) > 5 else ''}; frames of a media video must exist as "
                         "images named <video stem>_frame_<6-digit frame index>.png; pass --images with the folder "
                         "that holds them", file=file)
    report.images_read = len(keys)
    return builder.build()
