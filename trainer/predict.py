"""Inference as the reference runs it, for any skeleton, on a PyTorch model or an ONNX file.

Inference (the reference's val.py `infer`, generalised):
- the BGR image is normalised as in training, (pixel - 128) / 256;
- per scale s (1, or 0.5, 1, 1.5, 2 with multiscale) it is resized (bicubic) so its height is
  s * input_size, then padded with 0 (grey 128 before normalising) to at least input_size high
  and wide, rounded up to a multiple of the stride, the image centred (odd pixels go bottom/right).
  The reference skips height padding once the scaled image is taller than input_size; at
  input_size 368 and its scales the heights are multiples of 8 anyway, so this is the same there
  and well defined elsewhere;
- the last stage's heatmaps and PAFs are upsampled by the stride (bicubic), the padding is cut
  off, and they are resized (bicubic) to the image size; scales are averaged.
- with flip, the mirrored padded image runs in the same batch; its maps are mirrored back with
  posedata.targets.flip_targets (heatmap channel i from channel flip[i]; PAF limb i from its
  mirror limb, x negated, or y negated when the mirror limb lists its ends the other way) and
  averaged with the direct maps. A limb without a mirror limb keeps the direct maps only.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from posedata.errors import InputError
from posedata.grouping import PafReader

from .grouping import GroupingParams, group
from .loaded import IMG_MEAN, IMG_SCALE, LoadedModel

MULTISCALE = (0.5, 1.0, 1.5, 2.0)


def normalize(image_bgr: np.ndarray) -> np.ndarray:
    return (np.asarray(image_bgr, dtype=np.float32) - IMG_MEAN) * IMG_SCALE


def pad_amounts(h: int, w: int, input_size: int, stride: int) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) padding to at least input_size, rounded up to the stride."""
    ph = math.ceil(max(h, input_size) / stride) * stride
    pw = math.ceil(max(w, input_size) / stride) * stride
    top, left = (ph - h) // 2, (pw - w) // 2
    return top, left, ph - h - top, pw - w - left


def upsample_maps(maps_chw: np.ndarray, stride: int, pads: tuple[int, int, int, int], size_wh: tuple[int, int]
                  ) -> np.ndarray:
    """Network maps (C, h, w) to the image: x stride (bicubic), padding (top, left, bottom, right)
    cut off, bicubic to size_wh; float32 (C, H, W).

    One 2-D cv2.resize per channel: OpenCV's single-channel float path is vectorised, and on the
    openpose18 maps (57 channels) it ran 2-3x faster than one call on the stacked (H, W, 57) array,
    equal to it within 4e-6 (bench/README.md, "infer")."""
    import cv2

    top, left, bottom, right = pads
    w, h = size_wh
    out = np.empty((maps_chw.shape[0], h, w), dtype=np.float32)
    for c in range(maps_chw.shape[0]):
        up = cv2.resize(maps_chw[c], None, fx=stride, fy=stride, interpolation=cv2.INTER_CUBIC)
        dst = out[c]  # written in place: no copy per channel
        got = cv2.resize(up[top:up.shape[0] - bottom, left:up.shape[1] - right], (w, h), dst=dst,
                         interpolation=cv2.INTER_CUBIC)
        if got.ctypes.data != dst.ctypes.data:  # OpenCV made its own array after all
            dst[...] = got
    return out


def _device(model) -> Any:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return "cpu"


def _forward(model, batch_bhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Last stage's (heatmaps, pafs) as float32 (B, C, h, w) arrays, from a torch module or an
    ONNX model (anything with forward_numpy taking the NCHW batch)."""
    run = getattr(model, "forward_numpy", None)
    if run is not None:
        return run(np.ascontiguousarray(batch_bhwc.transpose(0, 3, 1, 2)))
    import torch

    # the BHWC array viewed as NCHW is already channels-last, the layout for_inference's network runs in
    x = torch.from_numpy(np.ascontiguousarray(batch_bhwc)).permute(0, 3, 1, 2)
    with torch.inference_mode():
        outs = model(x.to(_device(model)))
    # contiguous: upsample_maps reads channel by channel
    return outs[-2].float().cpu().contiguous().numpy(), outs[-1].float().cpu().contiguous().numpy()


def prepare(model) -> Any:
    """The network as inference runs it: a torch PoseNet through trainer.model.for_inference
    (BatchNorm folded, channels-last); anything else (an ONNX model) as it is, without importing
    torch for it (a cached ONNX graph runs without torch: trainer/onnx_cache.py)."""
    if hasattr(model, "forward_numpy"):
        return model
    from .model import PoseNet, for_inference

    return for_inference(model) if isinstance(model, PoseNet) else model


def predict(model, image_bgr: np.ndarray, skeleton, input_size: int = 368, stride: int = 8,
            multiscale: bool = False, flip: bool = False, scales: tuple[float, ...] | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (K + 1, H, W) and PAFs (2L, H, W), float32, at the image's own resolution."""
    h, w = image_bgr.shape[:2]
    lows = _network_maps(model, image_bgr, skeleton, input_size, stride, multiscale, flip, scales)
    acc = _mean([upsample_maps(maps, stride, pads, (w, h)) for maps, pads in lows])
    nh = skeleton.num_heatmaps
    return acc[:nh], acc[nh:]


def _mean(maps: list[np.ndarray]) -> np.ndarray:
    """The scales' maps averaged as the reference does (each / n, summed in order); one as it is."""
    if len(maps) == 1:
        return maps[0]
    acc = maps[0] / len(maps)
    for m in maps[1:]:
        acc = acc + m / len(maps)
    return acc


def _network_maps(model, image_bgr: np.ndarray, skeleton, input_size: int, stride: int, multiscale: bool,
                  flip: bool, scales: tuple[float, ...] | None) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Per scale, the network's last-stage maps (K + 1 + 2L, h, w), flip-averaged, and the padding
    (top, left, bottom, right) its input had, in network cells x stride."""
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise InputError(f"expected a BGR image (H, W, 3), got shape {image_bgr.shape}")
    scales = tuple(scales) if scales else (MULTISCALE if multiscale else (1.0,))
    h = image_bgr.shape[0]
    normed = normalize(image_bgr)
    mirrored = np.array([j >= 0 for j, _ in skeleton.limb_flip], dtype=bool)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        return [_scale_maps(model, normed, skeleton, s * input_size / h, input_size, stride, flip, mirrored)
                for s in scales]
    finally:
        if was_training:
            model.train()


def _scale_maps(model, normed: np.ndarray, skeleton, ratio: float, input_size: int, stride: int,
                flip: bool, mirrored: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    import cv2

    scaled = cv2.resize(normed, (0, 0), fx=ratio, fy=ratio, interpolation=cv2.INTER_CUBIC)
    top, left, bottom, right = pad_amounts(scaled.shape[0], scaled.shape[1], input_size, stride)
    padded = cv2.copyMakeBorder(scaled, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    batch = np.stack([padded, padded[:, ::-1]]) if flip else padded[None]
    heat, pafs = _forward(model, batch)
    if heat.shape[1] != skeleton.num_heatmaps or pafs.shape[1] != skeleton.num_pafs:
        raise InputError(f"the model outputs {heat.shape[1]} heatmaps and {pafs.shape[1]} PAF channels; skeleton "
                         f"{skeleton.name!r} needs {skeleton.num_heatmaps} and {skeleton.num_pafs}")
    heat0, pafs0 = heat[0], pafs[0]
    if flip:
        from posedata.targets import flip_targets

        heat1, pafs1 = flip_targets(heat[1], pafs[1], skeleton)
        heat0 = (heat0 + heat1) / 2
        both = np.repeat(mirrored, 2)
        pafs0 = np.where(both[:, None, None], (pafs0 + pafs1) / 2, pafs0)
    return np.concatenate([heat0, pafs0]), (top, left, bottom, right)


@dataclass
class Detections:
    """Grouped instances at image resolution: poses (P, K, 3) x, y, score (-1 missing), the
    entries' total scores and counts (P,)."""

    poses: np.ndarray
    scores: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.poses)


def detect(model, image_bgr: np.ndarray, skeleton, input_size: int = 368, stride: int = 8,
           multiscale: bool = False, flip: bool = False, params: GroupingParams | None = None,
           scales: tuple[float, ...] | None = None) -> Detections:
    """predict + group, with the same result, but only the maps grouping reads are upsampled: the K
    keypoint heatmaps (not the background) at every pixel, the PAFs only at the points grouping
    samples (UpsampledPafs). Upsampling all 57 openpose18 channels was 0.06 of 0.45 CPU s per
    image (bench/README.md, "infer")."""
    h, w = image_bgr.shape[:2]
    lows = _network_maps(model, image_bgr, skeleton, input_size, stride, multiscale, flip, scales)
    k, nh = skeleton.num_keypoints, skeleton.num_heatmaps
    heat = _mean([upsample_maps(maps[:k], stride, pads, (w, h)) for maps, pads in lows])
    if UpsampledPafs.fits(lows[0][0].shape[1:], (w, h)):
        pafs: Any = UpsampledPafs([(maps[nh:], pads) for maps, pads in lows], stride, (w, h))
    else:
        pafs = _mean([upsample_maps(maps[nh:], stride, pads, (w, h)) for maps, pads in lows])
    poses, scores, counts = group(heat, pafs, skeleton, params, return_counts=True)
    return Detections(poses, scores, counts)


# The largest (output size x network cells) axis operator UpsampledPafs builds (8 MB in float64);
# a 640-px photo needs 640 x 80. Beyond it (panoramas) detect upsamples the PAFs whole.
MAX_AXIS_OP = 1 << 20


@functools.lru_cache(maxsize=32)
def _axis_op(n: int, stride: int, lo: int, hi: int, size: int) -> np.ndarray:
    """upsample_maps along one axis as a (size, n) matrix: n cells x stride (bicubic), lo and hi
    cut off, bicubic to size. Taken from OpenCV's own resize of unit vectors (a resize along one
    axis leaves the other untouched: scale 1 gives cubic weights (0, 1, 0, 0)), so the weights
    and the border rule are OpenCV's; in float64, chunked to bound the identity's size."""
    import cv2

    up = cv2.resize(np.eye(n), (n, n * stride), interpolation=cv2.INTER_CUBIC)[lo:n * stride - hi]
    m = up.shape[0]
    op = np.zeros((size, n))
    for j in range(0, m, 256):
        unit = np.zeros((m, min(256, m - j)))
        unit[np.arange(j, j + unit.shape[1]), np.arange(unit.shape[1])] = 1
        op += cv2.resize(unit, (unit.shape[1], size), interpolation=cv2.INTER_CUBIC) @ up[j:j + unit.shape[1]]
    return op


@functools.lru_cache(maxsize=32)
def _axis_band(n: int, stride: int, lo: int, hi: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """_axis_op as a band: per output position the first input cell it reads and the weights of
    the cells from there (size, B), float32; B (about 6) covers the widest row."""
    op = _axis_op(n, stride, lo, hi, size)
    nz = op != 0
    first = nz.argmax(1)
    last = n - 1 - nz[:, ::-1].argmax(1)
    band = int((last - first).max()) + 1
    first = np.minimum(first, n - band)
    weights = np.take_along_axis(op, first[:, None] + np.arange(band), 1).astype(np.float32)
    return first.astype(np.intp), weights


class UpsampledPafs(PafReader):
    """The PAFs predict would return ((2L, H, W), upsample_maps of each scale's network maps,
    scales averaged), computed only at the cells grouping asks for.

    Per scale, a channel's rows are upsampled the first time a read touches that channel ((h, W):
    a small matrix product with the width axis's operator; grouping reads only the limbs with
    peaks at both ends, none on an image without people); a read at (c, y, x) then sums the B
    (about 6) rows the height axis's operator uses for y. Both operators are upsample_maps' own
    (OpenCV's bicubic weights, x stride, padding cut, to the image size), so the values equal the
    full maps' to float rounding (1e-6 on maps of magnitude 5: tests/test_predict.py)."""

    def __init__(self, terms: list[tuple[np.ndarray, tuple[int, int, int, int]]], stride: int,
                 size_wh: tuple[int, int]):
        w_img, h_img = size_wh
        self.shape = (terms[0][0].shape[0], h_img, w_img)
        self._terms = []
        for maps, (top, left, bottom, right) in terms:
            c, h, w = maps.shape
            op_w = _axis_op(w, stride, left, right, w_img).astype(np.float32)
            first, weights = _axis_band(h, stride, top, bottom, h_img)
            rows = np.empty((c, h, w_img), np.float32)
            self._terms.append((np.ascontiguousarray(maps, dtype=np.float32), op_w, rows, np.zeros(c, bool),
                                h, first, weights))

    @staticmethod
    def fits(map_hw: tuple[int, int], size_wh: tuple[int, int]) -> bool:
        """Whether both axis operators (output size x network cells) stay within MAX_AXIS_OP."""
        return max(map_hw[0] * size_wh[1], map_hw[1] * size_wh[0]) <= MAX_AXIS_OP

    def __getitem__(self, flat_index: np.ndarray) -> np.ndarray:
        _, h_img, w_img = self.shape
        c, rest = np.divmod(np.asarray(flat_index, dtype=np.intp), h_img * w_img)
        y, x = np.divmod(rest, w_img)
        touched = np.bincount(c, minlength=self.shape[0]) > 0
        values = [self._at(term, touched, c, y, x) for term in self._terms]
        return _mean(values)

    def _at(self, term: tuple, touched: np.ndarray, c: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        maps, op_w, rows3, done, h, first, weights = term
        new = np.flatnonzero(touched & ~done)
        if len(new):
            rows3[new] = (maps[new].reshape(-1, maps.shape[2]) @ op_w.T).reshape(len(new), h, -1)
            done[new] = True
        rows = rows3.reshape(-1)
        w_img = self.shape[2]
        at = c * h
        at += first[y]
        at *= w_img
        at += x
        wy = weights[y]
        out = wy[:, 0] * rows[at]
        for i in range(1, wy.shape[1]):
            at += w_img
            out += wy[:, i] * rows[at]
        return out



def read_image(path: Path, file: str | None = None, where: str | None = None) -> np.ndarray:
    """posedata's image reader (header checked first, so a 30000 x 30000 "image bomb" is refused
    before anything is decoded), with the error located in the JSON that named the image."""
    from posedata.images import read_image as decode

    try:
        return decode(Path(path))
    except InputError as e:
        raise InputError(f"cannot decode image {str(path)!r}: {e.message}", file=file or e.file, where=where) from None


# ------------------------------------------------------------------ model loading
BACKENDS = ("auto", "torch", "onnx")


def onnx_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


# `--backend auto` runs ONNX Runtime on the CPU for jobs of at least ONNX_MIN_IMAGES images, or
# ONNX_MIN_IMAGES_CACHED when trainer.onnx_cache holds the checkpoint's graph. Whole `posedata
# infer` jobs (bench/README.md, "infer": `bench_infer.py --jobs`, cold and warm cache): ONNX
# Runtime saves 0.04-0.1 CPU s per image, but its start-up from a checkpoint (torch still imported
# to read it, the graph written, the session) cost 0.15-0.2 s more than torch's: even at 4 photos,
# ahead from 9 in CPU time in two runs at load 3-5 (stop 23's quiet machine: from about 9 in wall
# time too). From a cached graph the job imports no torch (1.3 CPU s, about 2 s wall) and was
# 1.7-2.8 CPU s faster at every size from one photo. A small `auto` job on torch caches the graph
# for the next one (cache_onnx_graph).
ONNX_MIN_IMAGES = 9
ONNX_MIN_IMAGES_CACHED = 1


def resolve_backend(backend: str) -> str:
    """A --backend value checked (onnx needs onnx and onnxruntime installed); `auto` without a
    job to size is torch, the library's default: callers that know their image count use
    choose_backend."""
    if backend not in BACKENDS:
        raise InputError(f"--backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "onnx" and not onnx_available():
        raise InputError("--backend onnx needs onnx and onnxruntime; install the optional extra: "
                         "pip install 'posedata[onnx]'")
    return "torch" if backend == "auto" else backend


def _on_cpu(device: Any) -> tuple[bool, str]:
    """(whether the device is the CPU, its name), without importing torch when the answer is sure."""
    from .device import resolve_device, surely_cpu

    if isinstance(device, str) and surely_cpu(device):
        return True, "cpu"
    dev = resolve_device(device) if isinstance(device, str) else device
    return dev.type == "cpu", str(dev)


def choose_backend(backend: str, checkpoint: Path, device: Any = "auto", n_images: int | None = None,
                   skeleton=None) -> tuple[str, str]:
    """(backend, why) for a job of n_images images (None: unknown) on this checkpoint (run with
    this skeleton, None: its own), the choice `posedata infer` and `val` print. An ONNX file runs
    on ONNX Runtime; an explicit torch or onnx is kept. `auto` is ONNX Runtime when onnx and
    onnxruntime are installed, the device is the CPU and the job has at least ONNX_MIN_IMAGES
    images (ONNX_MIN_IMAGES_CACHED when the ONNX cache holds this checkpoint's graph); torch
    otherwise (GPUs, small or unsized jobs, no onnxruntime).

    Why (bench/README.md, "infer"): on the 2-core CPU ONNX Runtime ran the width-1.0 network end
    to end faster than torch (x2.73 the reference's images/s against x2.22 on the quiet machine;
    with one thread under load, trainer.threads.onnx_threads, x1.91-2.05 against x1.77-1.93); what
    it costs before the first image is the constants' comment. Torch stays the choice on GPUs
    (ONNX Runtime runs on the CPU here)."""
    if backend not in BACKENDS:
        raise InputError(f"--backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if Path(checkpoint).suffix.lower() == ".onnx" and backend != "torch":  # load_model refuses torch on it
        return "onnx", "an ONNX file"
    if backend != "auto":
        return resolve_backend(backend), "given"
    if not onnx_available():
        return "torch", "auto: the onnx extra (onnx, onnxruntime) is not installed"
    on_cpu, name = _on_cpu(device)
    if not on_cpu:
        return "torch", f"auto: on {name}"
    if n_images is None:
        return "torch", "auto: the image count is unknown"
    from . import onnx_cache

    cached = onnx_cache.has_entry(Path(checkpoint), skeleton)
    least, state = (ONNX_MIN_IMAGES_CACHED, "its graph cached") if cached else (ONNX_MIN_IMAGES, "no cached graph")
    if n_images < least:
        return "torch", f"auto: {n_images} image(s); ONNX Runtime repays its start-up from {least} ({state})"
    images = "1 image" if n_images == 1 else f"{n_images} images"
    return "onnx", f"auto: {images} on the CPU, ONNX Runtime is faster from {least} ({state})"


def load_model(path: Path, skeleton=None, device: Any = "cpu", backend: str = "auto") -> LoadedModel:
    """The one model loader (every command, the demo, the benches): a network from a posedata
    checkpoint, a reference-layout checkpoint whose heads fit the skeleton (e.g. the reference's
    COCO weights with openpose18), or an ONNX file from `posedata export onnx`. The skeleton may be omitted when the file stores one (posedata
    checkpoints and ONNX files do); when given, it must have the stored one's fingerprint.
    device: a torch.device or a --device value (trainer.device.resolve_device; auto = CUDA when
    available). ONNX Runtime runs on the CPU here, so the onnx backend refuses an explicit GPU;
    on a checkpoint it reuses the graph trainer.onnx_cache holds for it (no torch imported)."""
    path = Path(path)
    onnx_file = path.suffix.lower() == ".onnx"
    if onnx_file and backend == "torch":
        raise InputError("an ONNX file runs on the onnx backend; --backend torch needs a checkpoint", file=str(path))
    backend = resolve_backend("onnx" if onnx_file else backend)
    if backend == "onnx":
        if str(device) not in ("auto", "cpu"):
            raise InputError(f"--device {device}: the onnx backend runs on the CPU (CPUExecutionProvider); "
                             "use --backend torch for a GPU")
        if onnx_file:
            from .export_onnx import load_onnx

            return load_onnx(path, skeleton)
        return _onnx_from_checkpoint(path, skeleton)
    from .device import resolve_device
    from .onnx_cache import file_state

    dev = device if not isinstance(device, str) else resolve_device(device)
    source = {"path": path, "skeleton": skeleton, "state": file_state(path)}
    model, desc, skeleton, size, source["stored"] = _checkpoint_model(path, skeleton, dev)
    source["description"] = desc + ", run by ONNX Runtime"
    return LoadedModel(model, desc + f", on {dev}", skeleton, size, "torch", source)


def cache_onnx_graph(loaded: LoadedModel) -> bool:
    """Write the ONNX graph of a checkpoint's torch network on the CPU to trainer.onnx_cache (when
    the onnx extra is installed, the cache is on, the checkpoint unchanged since it was read and
    no entry exists), so that the next `auto` job on it starts ONNX Runtime without torch; True
    when written. `--backend auto` calls it when it picked torch for a small job: otherwise a
    user who runs one photo at a time would never get a cached graph. BatchNorm is folded into
    loaded.model itself (the same function; prepare folds it anyway). 0.13 CPU s at width 1.0."""
    from . import onnx_cache

    src = loaded.source
    if loaded.backend != "torch" or src is None or not onnx_available() or str(_device(loaded.model)) != "cpu":
        return False
    if onnx_cache.cache_dir() is None or src["state"] is None or onnx_cache.file_state(src["path"]) != src["state"]:
        return False
    if onnx_cache.has_entry(src["path"], src["skeleton"]):
        return False
    key = onnx_cache.key_of(src["path"], src["skeleton"])
    from .onnx_graph import posenet_model

    try:
        data = posenet_model(loaded.model.eval(), onnx_cache.OPSET, onnx_cache.entry_metadata(
            key, src["description"], loaded.input_size, src["stored"]), fold_in_place=True)
    except NotImplementedError:  # a network the writer does not know: torch.onnx.export is too dear here
        return False
    return onnx_cache.store(key, data)


def _checkpoint_model(path: Path, skeleton, dev: Any) -> tuple[Any, str, Any, int | None, dict | None]:
    """(network, description, skeleton, training input size, the stored skeleton's dict) of a
    checkpoint, the skeleton checked against it."""
    from posedata import skeleton as S

    from . import checkpoint as C

    ckpt = C.load(path)
    model = C.build_model(ckpt, skeleton, path, dev)
    if ckpt.get("format") != C.FORMAT:
        spec = model.spec.to_dict()
        desc = f"reference-layout checkpoint, {spec['stages']} refinement stage(s), width {spec['width']}"
        return model, desc, skeleton, None, None
    spec = ckpt.get("model", {})
    config = ckpt.get("config") or {}
    size = config.get("input_size") if isinstance(config, dict) else None
    size = int(size) if isinstance(size, int) and size > 0 else None
    stored = ckpt.get("skeleton") if isinstance(ckpt.get("skeleton"), dict) else None
    if skeleton is None:
        if stored is None:
            raise InputError("the checkpoint stores no skeleton: give --skeleton", file=str(path))
        skeleton = S.from_dict(stored, file=str(path))
        C.check_fingerprint(ckpt, skeleton, str(path))
    desc = (f"posedata checkpoint, {spec.get('stages', '?')} refinement stage(s), width {spec.get('width', '?')}"
            + (f", trained at input {size}" if size else ""))
    return model, desc, skeleton, size, stored


def _onnx_from_checkpoint(path: Path, skeleton) -> LoadedModel:
    """`--backend onnx` on a checkpoint: the cached graph when trainer.onnx_cache has it (nothing
    of torch imported), else the graph written from the network and then cached, unless the
    checkpoint changed while it was read."""
    from posedata import skeleton as S

    from . import onnx_cache
    from .export_onnx import OnnxModel, _onnx_bytes, _session

    before = onnx_cache.file_state(path)
    key = onnx_cache.key_of(path, skeleton) if before is not None else None
    hit = onnx_cache.lookup(key, _session) if key else None
    if hit is not None and (skeleton is not None or hit[1].skeleton is not None):
        session, entry = hit
        sk = skeleton if skeleton is not None else S.from_dict(entry.skeleton, file=str(path))
        return LoadedModel(OnnxModel(session), entry.description, sk, entry.input_size, "onnx")
    model, desc, skeleton, size, stored = _checkpoint_model(path, skeleton, "cpu")
    desc += ", run by ONNX Runtime"
    meta = onnx_cache.entry_metadata(key, desc, size, stored) if key else None
    data = _onnx_bytes(model.eval(), onnx_cache.OPSET, meta=meta, fold_in_place=True)  # the model is ours alone
    session = _session(data)
    if key and onnx_cache.file_state(path) == before:
        onnx_cache.store(key, data)
    return LoadedModel(OnnxModel(session), desc, skeleton, size, "onnx")
