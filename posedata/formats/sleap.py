"""SLEAP `.slp` labels through sleap-io, an optional extra: `pip install 'posedata[sleap]'`.

sleap-io is a well-kept reader but too heavy to be a core dependency (pynwb, skia, an ffmpeg
build, ...), so it is imported only here, and only when a .slp file is read. It decodes SLEAP's
skeleton JSON itself (no pickle).

- User-labelled instances are imported. Predicted instances are model output, not labels: they
  are skipped and counted, unless `predicted` is asked for; then those no user instance replaced
  (sleap-io's `unused_predictions`, SLEAP's own rule) are imported too, marked `predicted` with
  their `score`.
- A node with finite coordinates marked visible is COCO v=2. SLEAP keeps a position for a node
  marked not visible, but it is wherever the point was left, not a labelled location, so such a
  node is read as not labelled (v=0) and counted in the report.
- An instance's track is kept as `track_id` (its index in the file's track list, as SLEAP stores
  it) and `track` (its name).
- Frames. SLEAP labels frames of videos: media files (mp4, avi, ...), image sequences, or frames
  embedded in the file itself (a `.pkg.slp`). Without --images every kept frame is planned as an
  image file (`Frames`), which the import command writes beside its output: embedded and media
  frames decoded by sleap-io (OpenCV plugin, PNG), image-sequence files copied as they are. They
  are named as sleap-io's COCO export names them: `<video stem>_frame_<index, 6 digits>.png`
  (for a package, the stem of the video the frames came from), an image file by its name. With
  --images the frames are looked up there under those names instead and nothing is written.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..errors import DataError, InputError, OutputWriteError
from ..sides import guess_flip_pairs
from ..skeleton import Skeleton, guess_root, normalize_name
from .base import ImportOptions, ImportReport, ImportResult

NAME = "sleap"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
INSTALL_HINT = "reading SLEAP .slp files needs the optional extra: pip install 'posedata[sleap]' (installs sleap-io)"
FRAME_NAMING = "<video stem>_frame_<6-digit frame index>.png"
# posedata depends on OpenCV already; forcing its plugin makes the frames the same whichever
# other video backends (imageio-ffmpeg, pyav) sleap-io finds installed
PLUGIN = "opencv"


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
    """The image name of a frame of a media video (sleap-io's COCO naming)."""
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
    _first_in_a_child(path)
    try:
        return _read(path, sio)
    except InputError:
        raise
    except Exception as e:  # sleap-io/h5py raise many types on a damaged file; none may escape as a traceback
        raise InputError(f"sleap-io cannot read this .slp file: {type(e).__name__}: {e}", file=file) from None


# HDF5 is C, and some damaged .slp files crash it: flipping bytes of a 14 KB file gave a segfault
# or glibc's "corrupted double-linked list" abort in 3 of 567 tries (tests/data/import/crash_*.slp).
# A crash cannot be caught, and the user would see the process die with no word of the file. So
# the file is first read by a fresh Python process (0.5 s for a small file), whose outcome is thrown
# away; only its death by a signal is reported (as a damaged file, exit 2). Not a fork: a forked
# child of a process with other threads (a progress bar's, torch's) can wait forever on a lock one
# of them held, as it did in the test suite.
def _test_read_command(path: Path) -> list[str]:
    return [sys.executable, "-c", "import sys, pathlib; from posedata.formats.sleap import _test_read; "
            "_test_read(pathlib.Path(sys.argv[1]))", str(path)]


def _read(path: Path, sio: Any) -> Any:
    """The reads of a .slp file: the declared sizes first, then sleap-io's (in _load, and in the
    test read before it)."""
    _check_declared_sizes(path)
    return sio.load_slp(str(path), open_videos=False)


def _test_read(path: Path) -> None:
    """_load's reads, in the child; any Python error is the parent's to report."""
    try:
        _read(path, _sleap_io(str(path)))
    except BaseException:
        pass


# Other damaged files make HDF5 loop forever instead (a flipped byte in a global heap: 15 minutes
# at 100% CPU in H5HG__cache_heap_deserialize, tests/data/import/hang_heap.slp), so the test read
# has a time limit. A sound file reads at ~0.2 s per MB (27 MB, 200k instances: 6 s at load 1);
# the limit allows ten times that, and a minute for any file, so load on the machine is no refusal.
TEST_READ_SECONDS = 60.0
TEST_READ_SECONDS_PER_MB = 2.0


def _read_time_limit(path: Path) -> float:
    """Seconds the test read of this file may take before it is called damaged."""
    return TEST_READ_SECONDS + TEST_READ_SECONDS_PER_MB * path.stat().st_size / 1e6


def _first_in_a_child(path: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])  # where this posedata is imported from
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    limit = _read_time_limit(path)
    try:
        r = subprocess.run(_test_read_command(path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=env, check=False, timeout=limit)
    except subprocess.TimeoutExpired:  # run() has killed and reaped the child
        raise InputError(f"the HDF5 library did not finish reading this .slp file in {limit:.0f} s (a test read; "
                         "a sound file of this size reads in a tenth of that): the file is damaged",
                         file=str(path)) from None
    except OSError:  # pragma: no cover - no process could start: read in-process only
        return
    if r.returncode < 0:
        name = signal.Signals(-r.returncode).name
        raise InputError(f"the HDF5 library crashed reading this .slp file ({name} in a test read): the file is "
                         "damaged", file=str(path))


# sleap-io reads every table of the file whole, into an array of the shape the file declares. A
# damaged .slp of 14 KB declared its videos_json table as 570 million entries (a flipped byte in
# the shape), and reading it took 23 GB. So the declared sizes are checked first: a table stored
# in one block (HDF5 "contiguous" or "compact") lies inside the file, so it cannot be larger than
# the file; a chunked table may be compressed, or have unwritten chunks, so all of them together
# get a budget of CHUNKED_RATIO times the file's size, at least CHUNKED_MIN bytes. Variable-length
# entries (SLEAP's JSON strings) count as the 16-byte reference each entry stores.
CHUNKED_MIN = 256 << 20
CHUNKED_RATIO = 100


def _check_declared_sizes(path: Path) -> None:
    import h5py

    file = str(path)
    size = path.stat().st_size
    budget = max(CHUNKED_MIN, CHUNKED_RATIO * size)
    tables: list[tuple[str, int, bool]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            entry = max(obj.dtype.itemsize, 16) if obj.dtype.hasobject else obj.dtype.itemsize
            declared = int(np.prod(obj.shape, dtype=object)) * entry if obj.shape else entry
            tables.append((name, declared, obj.chunks is not None))

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except Exception as e:  # h5py raises many types on a damaged file; none may escape as a traceback
        raise InputError(f"sleap-io cannot read this .slp file: {type(e).__name__}: {e}", file=file) from None
    for name, declared, chunked in tables:
        if not chunked and declared > size:
            raise InputError(f"table {name!r} declares {declared:,} bytes, more than the whole file ({size:,} "
                             "bytes) holds: the file is damaged", file=file, where=name)
    chunked_total = sum(declared for _, declared, chunked in tables if chunked)
    if chunked_total > budget:
        name = max((t for t in tables if t[2]), key=lambda t: t[1])[0]
        raise InputError(f"its chunked tables declare {chunked_total:,} bytes in all ({name!r} the most), more than "
                         f"{CHUNKED_RATIO}x the file's {size:,} bytes: the file is damaged or not SLEAP's",
                         file=file, where=name)


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


# ------------------------------------------------------------------ frames
@dataclass
class _Frame:
    """One labelled frame to write: decoded from `video` (embedded or media), or an image file copied."""

    video: Any
    frame_idx: int
    source: str  # for messages: the video file or image the frame comes from
    path: Path | None = None  # an image sequence's file, copied as it is
    size: tuple[int, int] | None = None  # (width, height) the dataset records


class Frames:
    """The frames a .slp's labels need, as image files to write beside the import's output
    (ImportResult.frames): every later command reads image files, not videos or packages."""

    def __init__(self, frames: dict[str, _Frame], file: str):
        self.frames = frames
        self.file = file

    def __len__(self) -> int:
        return len(self.frames)

    def keep(self, names: set[str]) -> None:
        """Only the frames of the images the dataset kept (empty ones are dropped by the builder)."""
        self.frames = {n: f for n, f in self.frames.items() if n in names}

    def write(self, folder: Path, progress: Callable[[int, int], None] | None = None) -> int:
        """Write every frame into `folder` (an empty staging folder). A frame that cannot be
        decoded is an InputError naming it; a failed write an OutputWriteError."""
        import cv2

        folder = Path(folder)
        order = sorted(self.frames.items(), key=lambda kv: (kv[1].source, kv[1].frame_idx))  # forward seeks
        for n, (name, fr) in enumerate(order):
            dst = folder / name
            if fr.path is not None:
                try:
                    shutil.copyfile(fr.path, dst)
                except OSError as e:
                    raise OutputWriteError(f"cannot copy {fr.path}: {e.strerror}", file=str(dst)) from None
            else:
                try:
                    img = np.asarray(fr.video[fr.frame_idx])
                except Exception as e:  # decoders raise many types on a damaged video or package
                    raise InputError(f"frame {fr.frame_idx} of {fr.source} cannot be decoded: {type(e).__name__}: {e}",
                                     file=self.file) from None
                if img.ndim == 3 and img.shape[2] in (3, 4):  # sleap-io gives RGB(A); OpenCV writes BGR(A)
                    img = img[..., [2, 1, 0, 3][: img.shape[2]]]
                if fr.size is not None and (img.shape[1], img.shape[0]) != fr.size:
                    raise InputError(f"frame {fr.frame_idx} of {fr.source} decodes as {img.shape[1]}x{img.shape[0]}, "
                                     f"the .slp records {fr.size[0]}x{fr.size[1]}", file=self.file)
                if not cv2.imwrite(str(dst), np.ascontiguousarray(img)):
                    raise OutputWriteError("cannot write the frame image", file=str(dst))
            if progress is not None:
                progress(n + 1, len(order))
        for fr in self.frames.values():
            if fr.video is not None:
                fr.video.close()
        return len(order)


def _looked(stored: str, tried: list[Path], slp_dir: Path) -> str:
    """Where a file was looked for, in one short phrase."""
    tails = [str(p.relative_to(slp_dir)) for p in tried if p.is_relative_to(slp_dir)][::-1]
    head = "that path" if tried and not tried[0].is_relative_to(slp_dir) else ""
    under = f"under {slp_dir} for {', '.join(tails[:3])}{', ...' if len(tails) > 3 else ''}" if tails else ""
    return " and ".join(x for x in (head, under) if x)


def _local_candidates(stored: str, slp_dir: Path) -> list[Path]:
    """Where a path the .slp stores may be now: as stored (absolute, or relative to the .slp),
    then every tail of it under the .slp's folder (a project moved with its videos)."""
    from .builder import path_tails

    if "://" in stored:  # a URL: never fetched
        return [slp_dir / t for t in path_tails(stored.split("://", 1)[1])[1:]]
    p = Path(stored)
    out = [p if p.is_absolute() else slp_dir / p] + [slp_dir / t for t in path_tails(stored)]
    return list(dict.fromkeys(out))


def _shape_hw(video: Any) -> tuple[int, int] | None:
    md = video.backend_metadata if isinstance(video.backend_metadata, dict) else {}
    shape = md.get("shape")
    if isinstance(shape, (list, tuple)) and len(shape) == 4 and all(
            isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x > 0 for x in shape[1:3]):
        return int(shape[1]), int(shape[2])
    return None


class _Videos:
    """Per video of the file: its kind, the names of its frames, and (without --images) where its
    frames come from. Each video is opened once, on its first frame."""

    def __init__(self, labels: Any, path: Path):
        self.slp = path.resolve()
        self.slp_dir = self.slp.parent
        self.index = {id(v): i for i, v in enumerate(labels.videos)}
        self.opened: dict[int, str | None] = {}  # video index -> None (open) or why it is missing
        self.names: dict[str, tuple[int, int]] = {}  # frame name -> (video index, frame index)

    @staticmethod
    def embedded(video: Any) -> bool:
        md = video.backend_metadata if isinstance(video.backend_metadata, dict) else {}
        return bool(md.get("has_embedded_images"))

    def name(self, video: Any, fidx: int) -> tuple[str, list[str]]:
        """The frame's image name (sleap-io's COCO naming; for a package, that of the video the
        frames came from), and the names to look for under --images, best first."""
        vi = self.index.get(id(video), -1)
        src = video.original_video if self.embedded(video) and video.original_video is not None else video
        fn = src.filename
        if isinstance(fn, list):
            if not 0 <= fidx < len(fn):
                raise InputError(f"frame {fidx} is outside the image sequence of {len(fn)} image(s)")
            # the full path first: the builder tries its tails longest first, since two image
            # sequences may share file names
            full = str(fn[fidx]).replace("\\", "/")
            base, lookup = PurePosixPath(full).name, [full]
        else:
            base = frame_image_name(str(fn), fidx)
            lookup = [base] + ([frame_image_name(str(video.filename), fidx)] if src is not video else [])
        name = base
        if self.names.setdefault(name, (vi, fidx)) != (vi, fidx):  # two videos, same stem or file name
            name = f"video{vi}_{base}"
            self.names.setdefault(name, (vi, fidx))
            lookup.insert(0 if not isinstance(fn, list) else 1, name)
        return name, lookup

    def frame(self, video: Any, fidx: int) -> tuple[_Frame | None, str | None]:
        """Where the frame comes from, or why it cannot be had (which paths were tried)."""
        from ..images import image_header

        vi = self.index.get(id(video), -1)
        fn = video.filename
        if isinstance(fn, list):  # an image sequence: the file itself
            if not 0 <= fidx < len(fn):
                return None, f"frame {fidx} is outside the image sequence of {len(fn)} image(s)"
            tried = _local_candidates(str(fn[fidx]), self.slp_dir)
            for p in tried:
                if p.is_file():
                    return _Frame(None, fidx, str(p), path=p, size=image_header(p).size), None
            return None, f"image {str(fn[fidx])!r} not found (looked at {_looked(str(fn[fidx]), tried, self.slp_dir)})"
        if vi not in self.opened:
            self.opened[vi] = self._open(video)
        why = self.opened[vi]
        if why is not None:
            return None, why
        try:
            shape = video.shape
        except Exception:  # a backend that cannot tell its shape: the metadata's, or the frame's own
            shape = None
        hw = _shape_hw(video) or (None if shape is None else (int(shape[1]), int(shape[2])))
        if self.embedded(video):
            fmap = getattr(video.backend, "frame_map", None) or {}
            if fmap and fidx not in fmap:
                return None, (f"frame {fidx} of {str(video.filename)!r} is not embedded in the package (SLEAP embeds "
                              "the frames chosen when the package is exported)")
        elif shape is not None and not 0 <= fidx < int(shape[0]):
            return None, f"frame {fidx} is beyond the {int(shape[0])} frames of {str(video.filename)!r}"
        return _Frame(video, fidx, str(video.filename), size=None if hw is None else (hw[1], hw[0])), None

    def _open(self, video: Any) -> str | None:
        if self.embedded(video):
            try:
                video.open(filename=str(self.slp), plugin=PLUGIN)
            except Exception as e:  # a damaged package: say so, located
                return f"the frames embedded in the package cannot be opened ({type(e).__name__}: {e})"
            return None
        stored = str(video.filename)
        tried = _local_candidates(stored, self.slp_dir)
        for p in tried:
            if p.is_file():
                try:
                    video.open(filename=str(p), plugin=PLUGIN)
                except Exception as e:
                    return f"video {str(p)!r} cannot be opened ({type(e).__name__}: {e})"
                return None
        return f"video {stored!r} not found (looked at {_looked(stored, tried, self.slp_dir)})"


# -------------------------------------------------------------------- read
def read(path: Path, skeleton: Skeleton, options: ImportOptions) -> ImportResult:
    from .builder import DatasetBuilder, RawImage, RawInstance, keypoint_mapping

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
    K = len(skeleton.coco_keypoints)
    videos = _Videos(labels, path)
    track_ids = {id(t): i for i, t in enumerate(labels.tracks)}
    keys: dict[tuple[int, int], int] = {}
    frames: dict[str, _Frame] = {}
    missing: dict[str, list[str]] = {}  # why (the video, image or package) -> where, frame image names
    for n_lf, lf in enumerate(labels.labeled_frames):
        where = f"labeled_frames[{n_lf}]"
        video, fidx = lf.video, int(lf.frame_idx)
        vkey = (videos.index.get(id(video), -1), fidx)
        chosen = list(lf.user_instances)
        unused = list(lf.unused_predictions) if options.predicted else []
        for n_inst, inst in enumerate(lf.instances):
            if isinstance(inst, sio.PredictedInstance) and not any(inst is u for u in unused):
                report.skip("predicted instance replaced by a user instance (the user's is imported)" if options.predicted
                            else "predicted instance (model output, not a label; --predicted imports it)",
                            f"{where}.instances[{n_inst}]")
        chosen += unused
        if vkey not in keys:
            keys[vkey] = len(keys) + 1
            try:
                name, lookup = videos.name(video, fidx)
            except InputError as e:
                raise InputError(e.message, file=file, where=where) from None
            hw = _shape_hw(video)
            w, h = (hw[1], hw[0]) if hw is not None else (None, None)
            file_name, others = (lookup[0], lookup[1:]) if options.images is not None else (name, [])
            if options.images is None and (chosen or options.keep_empty):
                fr, why = videos.frame(video, fidx)
                if fr is None:
                    missing.setdefault(str(why), [where]).append(name)
                    continue
                frames[name] = fr
                if fr.size is not None:
                    w, h = fr.size
                elif w is None:
                    raise InputError(f"frame {fidx} of {fr.source}: the video's size is unknown", file=file, where=where)
            # the video the frame was labelled in (a package's source video, an image sequence's folder)
            orig = video.original_video if videos.embedded(video) and video.original_video is not None else video
            src_name = orig.filename if not isinstance(orig.filename, list) else str(PurePosixPath(
                str(orig.filename[0]).replace("\\", "/")).parent)
            builder.add_image(RawImage(key=keys[vkey], file_name=file_name, width=w, height=h, candidates=others,
                                       where=where, extra={"video": str(src_name), "frame_idx": fidx}))
        for inst in chosen:
            n_inst = next(i for i, x in enumerate(lf.instances) if x is inst)
            iwhere = f"{where}.instances[{n_inst}]"
            if inst.skeleton is not sk_src:
                report.skip("instance of another skeleton", iwhere)
                continue
            kp, extra = _instance(inst, len(node_names), track_ids, report, iwhere, sio)
            report.instances_read += 1
            builder.add_instance(RawInstance(image_key=keys[vkey], keypoints=kp[mapping].reshape(K, 3),
                                             source_id=iwhere, where=where, extra=extra))
    if missing:
        raise _missing_frames(missing, file)
    report.images_read = len(keys)
    result = builder.build()
    if options.images is None:
        plan = Frames(frames, file)
        plan.keep({im.file_name for im in result.dataset.images})
        result.frames = plan
    return result


def _instance(inst: Any, n_nodes: int, track_ids: dict[int, int], report: ImportReport, iwhere: str,
              sio: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """An instance's (nodes, 3) keypoints (a node marked not visible is not labelled) and extra
    fields (track, prediction score)."""
    pts = inst.points
    xy = np.asarray(pts["xy"], dtype=np.float64).reshape(-1, 2)
    vis = np.asarray(pts["visible"], dtype=bool).reshape(-1)
    finite = np.isfinite(xy).all(axis=1)
    hidden = finite & ~vis
    if hidden.any():
        report.repair("node marked not visible read as not labelled (its position is not a label)", iwhere,
                      n=int(hidden.sum()))
    lab = finite & vis
    kp = np.zeros((n_nodes, 3))
    kp[lab, :2] = xy[lab]
    kp[lab, 2] = 2
    extra: dict[str, Any] = {}
    if getattr(inst, "track", None) is not None:
        extra = {"track_id": track_ids.get(id(inst.track), -1), "track": str(inst.track.name)}
    if isinstance(inst, sio.PredictedInstance):
        score = float(inst.score)
        extra.update({"predicted": True, **({"score": round(score, 6)} if np.isfinite(score) else {})})
    return kp, extra


def _missing_frames(missing: dict[str, list[str]], file: str) -> DataError:
    """V050 for labelled frames that are nowhere (why -> [where, frame names])."""
    n = sum(len(v) - 1 for v in missing.values())
    ex = "; ".join(f"{why}: {', '.join(v[1:4])}{', ...' if len(v) > 4 else ''}" for why, v in list(missing.items())[:3])
    # the data's fault, not the command's: the same verdict as validate's V050 (exit 1)
    return DataError(f"V050 {n} labelled frame(s) not found: {ex}{' ...' if len(missing) > 3 else ''}; "
                     f"pass --images with a folder that holds the frames as images ({FRAME_NAMING} for a video, "
                     "the image files by name for an image sequence)", file=file, where=next(iter(missing.values()))[0])


# --------------------------------------------------------- skeleton init
def skeleton_from_slp(path: Path, category: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """A starting skeleton dict from a .slp's skeleton (`--category NAME` when it has several):
    its nodes, its edges as limbs and its symmetries as flip pairs (guessed from the names when it
    has none), plus notes for the user."""
    path = Path(path)
    file = str(path)
    labels = _load(path)
    sk = _pick_skeleton(labels, category, file)
    kps = [str(n) for n in sk.node_names]
    if len({normalize_name(n) for n in kps}) != len(kps):
        raise InputError(f"node names repeat (case and separators ignored): {kps}", file=file,
                         where=f"skeleton {sk.name!r} nodes")
    notes: list[str] = []
    limbs: list[list[str]] = []
    for a, b in sk.edge_names:
        a, b = str(a), str(b)
        if a != b and [a, b] not in limbs and [b, a] not in limbs:
            limbs.append([a, b])
    if not limbs:
        notes.append("the skeleton has no edges: add limbs that connect every keypoint to the root")
    flip = [sorted([kps[i], kps[j]], key=kps.index) for i, j in sk.symmetry_inds]
    flip = [list(p) for p in dict.fromkeys(tuple(p) for p in flip if p[0] != p[1])]
    if not flip:
        flip = [list(p) for p in guess_flip_pairs(kps)]
        notes.append(f"the skeleton has no symmetries: {len(flip)} flip pair(s) guessed from the node names; review "
                     "them" if flip else "the skeleton has no symmetries and no names look left/right: the flip map "
                     "is empty; add left/right pairs")
    d = {
        "name": str(sk.name or path.stem),
        "keypoints": kps,
        "limbs": limbs,
        "root": guess_root(kps, limbs),
        "flip": flip,
        "sigmas": [0.05] * len(kps),
    }
    return d, notes
