"""Training targets for any skeleton: keypoint heatmaps, part affinity fields and loss masks.

Semantics follow the reference trainer exactly (../shared/reference/lwop-conventions.md, section 3),
so that for its own 18-point skeleton the maps agree with it to float32 rounding:

- heatmaps: map cell m has image-space centre m * stride + stride / 2 - 0.5; a keypoint touches the
  cells of its window [p - 4 sigma, p + 4 sigma] (ends truncated to int, clipped to the map extent,
  then integer-divided by the stride, upper end exclusive); a cell is skipped when its exponent
  d^2 / 2 / sigma / sigma exceeds 4.6052 (ln 100, the reference's literal); the Gaussians of all
  instances are summed, then clipped to 1; the background channel is 1 - max over keypoints.
- PAFs: ends are divided by the stride; for limb (a, b) with both ends labelled (v <= 1) and
  length >= 1e-7, every integer cell (x, y) of the box
  [int(max(min(xa, xb) - t, 0)), int(min(max(xa, xb) + t, map_w))) x (same for y) whose distance to
  the line, |(x - xa) * uy - (y - ya) * ux|, is <= t is set to the unit vector (ux, uy).
  Later instances overwrite earlier ones. Note the PAF grid uses integer cell coordinates, not the
  heatmaps' cell centres: that half-cell asymmetry is the reference's and is kept.

Everything is vectorised over instances x keypoints (or limbs) x window cells, with no Python
loop over them (a large batch goes through in a few chunks). "Later instances overwrite" is
resolved with an unbuffered ufunc.at, because NumPy does not define which value wins when a
fancy-index assignment repeats an index.
"""
from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError

if TYPE_CHECKING:
    from .skeleton import Skeleton

# The reference's literal cut-off (ln(100) rounded); kept as written for bit-level parity.
EXPONENT_CUTOFF = 4.6052
N_SIGMA = 4  # window half-size in sigmas
MIN_LIMB_LENGTH = 1e-7  # in map cells; shorter limbs draw no PAF


def _as_keypoints(keypoints: Any) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise InputError(f"keypoints must have shape (N, K, 3), got {np.shape(keypoints)}")
    return kp


@lru_cache(maxsize=64)
def _d2_threshold(sigma: float) -> float:
    """Largest float64 d2 with d2 / 2 / sigma / sigma <= EXPONENT_CUTOFF.

    That expression is monotone in d2, so one comparison against this threshold decides
    exactly as the reference's three-operation test does, without dividing every cell.
    """
    def exponent(d2: float) -> float:
        return d2 / 2 / sigma / sigma

    t = EXPONENT_CUTOFF * 2 * sigma * sigma
    while exponent(t) > EXPONENT_CUTOFF:
        t = float(np.nextafter(t, -np.inf))
    while exponent(float(np.nextafter(t, np.inf))) <= EXPONENT_CUTOFF:
        t = float(np.nextafter(t, np.inf))
    return t


# Layout note: window arrays are (..., P) with the point (or limb segment) axis last. Windows are
# only a few cells wide, so putting them innermost would make NumPy's broadcasting loops run
# many tiny inner loops; with P innermost every loop is long and contiguous. The functions are
# written for few NumPy calls: at 1-10 people the per-call overhead, not arithmetic, dominates,
# which is also why a whole batch of samples goes through one set of calls (render_targets_batch):
# the points of all samples are simply more points, each with the flat offset of its own sample's
# channel, so the per-call cost is shared by the batch. A large batch goes through in chunks whose
# output stays in the cache (render_targets_batch).
#
# Core functions take the output as (B, C, h, w), every instance of every sample as one (M, K, 3)
# array and, per instance, the flat index of its sample's first channel (sample_base).


def _split(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Instances (M, K, 3) -> contiguous coordinates (2, M, K) and labelled mask (M, K)."""
    return kp[..., :2].transpose(2, 0, 1).copy(), kp[..., 2] <= 1  # a NaN v is not labelled


def _heatmaps_into(out: np.ndarray, xy: np.ndarray, lab: np.ndarray, sample_base: np.ndarray,
                   overlap: bool, stride: int, sigma: float) -> None:
    """Heatmaps into channels 0..K of out (background K), for instances xy (2, M, K) labelled
    where lab (M, K); overlap: some sample has several instances."""
    map_h, map_w = out.shape[2:]
    hw = map_h * map_w
    k = xy.shape[2]
    flat = out.reshape(-1)
    # only labelled points draw; a NaN coordinate gives an empty window below, as every
    # comparison with NaN is False and fmax/fmin clip it to the map's start
    sel = lab.ravel().nonzero()[0]  # np.flatnonzero, without its Python wrapper (see below)
    if sel.size:
        # take: a fancy index on a later axis is several times slower (15 vs 3 us here). Array
        # methods (x.take, x.ravel().nonzero(), x.argsort) instead of the np.* functions: those
        # are Python wrappers costing ~1 us a call (np.take 1.1 us, x.take 0.24 us on small
        # arrays), which is much of a single sample's time.
        pts = xy.reshape(2, -1).take(sel, axis=1)  # (2, P)
        n_pts = sel.size
        base = (sample_base[:, None] + _channel_offsets(k, hw)).ravel().take(sel)
        r = N_SIGMA * sigma
        # window ends: int() of the pixel bounds clipped to the map's pixel extent, then // stride.
        # Clipping before the int() only avoids overflow; a range starting at 0 or ending at the
        # extent covers the same cells either way, and a value >= 0 makes int() a floor.
        b = pts + _const((-r, r), (2, 1, 1))  # (lo/hi, x/y, P)
        np.fmax(b, 0.0, out=b)
        np.fmin(b, _const((map_w * stride, map_h * stride), (2, 1)), out=b)
        bi = b.astype(np.int64)
        bi //= stride
        lo = bi[0]
        width = bi[1] - lo
        span = int(width.max())
        if span > 0:
            # cell centres (m * stride + shift) are exact in float64, so is adding j * stride + shift
            d = (lo * stride)[:, None, :] + _centres(span, stride)
            d -= pts[:, None, :]
            d *= d
            # past the window's end (in place: 1-2% faster than a new array from np.where)
            np.putmask(d, _arange(span)[:, None] >= width[:, None, :], np.inf)
            # squared distances summed exactly as the reference sums them: the same cut-off decisions
            d2 = d[1][:, None, :] + d[0][None, :, :]  # (span_y, span_x, P)
            # the drawn cells: within the cut-off (cells past a window's end have d2 = inf, so
            # every kept cell lies inside the map), as flat positions (j * span + i) * P + p
            keep = (d2 <= _d2_threshold(float(sigma))).ravel().nonzero()[0]
            counts, p = _split_positions(keep, span * span, n_pts)
            # per-axis Gaussian factors; their product differs from exp of the sum by rounding only
            g = np.exp(d * (-1.0 / (2.0 * sigma * sigma)), dtype=np.float32)
            # gathers by x.take: ~20% faster than x[index] for these large index arrays
            val = (g[1][:, None, :] * g[0][None, :, :]).ravel().take(keep)
            win = _window_offsets(span, map_w).ravel().repeat(counts)
            cell0 = lo[1] * map_w + lo[0]  # the window's first cell in its map
            idx = win + (base + cell0).take(p)
            np.add.at(flat, idx, val)
            if overlap:  # one instance adds at most 1 per cell; only overlaps can exceed it
                val = flat.take(idx)
                # clipped where a sum exceeds 1 only (two same-type points of different people
                # a few pixels apart): finding those cells costs a fraction of a min and a
                # write-back over every drawn cell
                over = (val > 1.0).nonzero()[0]
                if over.size:
                    val[over] = 1.0
                    flat[idx.take(over)] = 1.0
            # background = 1 - max over the keypoint channels: the max gathered from the drawn
            # cells only (unbuffered, so repeated cells are well defined) instead of a reduction
            # over every channel's every cell, into a zeroed scratch of one map per sample
            # (135 kB for 16 samples at 46 x 46), which stays in the cache where the output's
            # background channels, spread over MBs, did not. Compared as int32 bit patterns: for
            # non-negative floats (every value here, and the zeros) their order is the floats'
            # order, and int32 maximum.at runs about twice as fast as float32's (NaN checks).
            bg_max = np.zeros(out.shape[0] * hw, dtype=np.float32)
            bg_cell0 = (sample_base // out.shape[1]).take(sel // k) + cell0  # sample * hw + cell0
            np.maximum.at(bg_max.view(np.int32), win + bg_cell0.take(p), val.view(np.int32))
            np.subtract(1.0, bg_max.reshape(out.shape[0], map_h, map_w), out=out[:, k])
            return
    out[:, k] = 1.0  # nothing drawn


# Small constant arrays, made once (building one costs about as much as a ufunc call on it);
# read-only, as every caller shares them.
@lru_cache(maxsize=64)
def _const(values: tuple[float, ...], shape: tuple[int, ...]) -> np.ndarray:
    return _frozen(np.array(values, dtype=np.float64).reshape(shape))


@lru_cache(maxsize=64)
def _arange(n: int) -> np.ndarray:
    return _frozen(np.arange(n))


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@lru_cache(maxsize=64)
def _centres(span: int, stride: int) -> np.ndarray:
    """(span, 1): j * stride + stride / 2 - 0.5, the centre of window cell j from the window's start."""
    return _frozen((np.arange(span) * stride + (stride / 2 - 0.5))[:, None])


@lru_cache(maxsize=64)
def _channel_offsets(k: int, hw: int) -> np.ndarray:
    return np.arange(k) * hw


def _split_positions(pos: np.ndarray, n_cells: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Ascending flat positions c * n + q in an (n_cells, n) array -> (how many fall in each
    row c, q per position).

    The rows are found by a binary search for each row's start, and repeat() expands any
    per-row value: together about half the time of pos // n (an integer division per
    position), c * n and a gather of the per-row values (14.6k positions: 27 vs 53 us).
    """
    bounds = pos.searchsorted(_arange(n_cells + 1) * n)
    counts = bounds[1:] - bounds[:-1]
    return counts, pos - (_arange(n_cells) * n).repeat(counts)


@lru_cache(maxsize=64)
def _window_offsets(span: int, map_w: int) -> np.ndarray:
    """(span, span, 1): j * map_w + i, the flat offset of window cell (row j, column i)."""
    ar = np.arange(span)
    return (ar[:, None] * map_w + ar[None, :])[:, :, None]


# PAF boxes are dense (span x span) per segment, so one long limb makes every segment pay for its
# span: above _SPLIT_CELLS cells the segments are split in two groups by span, when that saves more
# than _GROUP_CELLS cells (the extra gathers' cost). Measured: one sample of 10 people gains
# nothing from a split; a batch of 16 x 3 people (714 segments, spans 1-12, 103k dense cells vs
# 20k in the boxes) renders its PAFs ~9% faster with it.
_SPLIT_CELLS = 20_000
_GROUP_CELLS = 5_000


def _pafs_into(out: np.ndarray, xy: np.ndarray, lab: np.ndarray, sample_base: np.ndarray,
               overlap: bool, lb: np.ndarray, first: int, stride: int, t: float) -> None:
    """PAFs of limbs lb (L, 2) into channels first.. of out, for instances xy (2, M, K)
    labelled where lab (M, K)."""
    map_h, map_w = out.shape[2:]
    hw = map_h * map_w
    n_limbs = lb.shape[0]
    # segments (instance, limb) with both ends labelled, instance-major
    both = lab.take(lb, axis=1)
    sel = (both[..., 0] & both[..., 1]).ravel().nonzero()[0]
    if not sel.size:
        return
    ends = xy.take(lb, axis=2).reshape(2, -1, 2).take(sel, axis=1)  # (x/y, S, a/b)
    ends /= stride  # map units
    seg_base = (sample_base[:, None] + _paf_offsets(n_limbs, first, hw)).ravel().take(sel)
    a = ends[..., 0]
    ba = ends[..., 1] - a
    sq = ba * ba
    norm = np.sqrt(sq[0] + sq[1])
    # NaN for limbs shorter than 1e-7 (or NaN ends): no hits. NaN / 0 is a quiet NaN (no
    # floating-point warning); valid limbs get exactly ba / norm.
    u = np.where(norm >= MIN_LIMB_LENGTH, ba, np.nan)
    u /= norm
    # box ends: int(max(min - t, 0)) and int(min(max + t, extent)); clipping the lower end to the
    # extent too only avoids overflow (that box is empty either way), and a negative upper end
    # gives an empty range just as the reference's truncation to 0 does
    box = np.empty_like(ends)
    np.minimum(ends[..., 0], ends[..., 1], out=box[..., 0])  # NaN propagates: empty box below
    np.maximum(ends[..., 0], ends[..., 1], out=box[..., 1])
    box += _const((-t, t), (2,))
    np.fmax(box, 0.0, out=box)
    np.fmin(box, _const((map_w, map_h), (2, 1, 1)), out=box)
    bi = box.astype(np.int64)
    lo = bi[..., 0]
    width = bi[..., 1] - lo  # (x/y, S)
    span_s = np.maximum(width[0], width[1])  # not .max(axis=0): a Python wrapper
    total = int(span_s.max())
    if total <= 0:
        return
    n_seg = span_s.size
    # flat index of the box's first cell (the x channel of the segment's limb)
    start = seg_base + lo[1] * map_w + lo[0]
    idx_parts, who_parts = [], []
    for g, span in _span_groups(span_s, total):
        if span <= 0:
            continue
        ar = _arange(span)[:, None]
        cell = _cols(lo, g)[:, None, :] + ar  # (x/y, span, Sg)
        # the reference's two products, (x - xa) * uy and (y - ya) * ux, each rounded as it does
        prod = (cell - _cols(a, g)[:, None, :]) * _cols(u[::-1], g)[:, None, :]
        np.putmask(prod, ar >= _cols(width, g)[:, None, :], np.nan)  # outside the segment's box
        d = prod[1][:, None, :] - prod[0][None, :, :]  # (span_y, span_x, Sg): minus the distance
        hit = np.abs(d, out=d) <= t
        # hit cell (j, i, s) -> flat position (j * span + i) * Sg + s
        counts, who = _split_positions(hit.ravel().nonzero()[0], span * span, hit.shape[2])
        if isinstance(g, np.ndarray):
            who = g.take(who)
        idx_parts.append(_window_offsets(span, map_w).ravel().repeat(counts) + start.take(who))
        who_parts.append(who)
    if not idx_parts:
        return
    idx = idx_parts[0] if len(idx_parts) == 1 else np.concatenate(idx_parts)
    who = who_parts[0] if len(who_parts) == 1 else np.concatenate(who_parts)
    _write_hits(out, idx, who, u, overlap, n_seg, hw)


def _span_groups(span_s: np.ndarray, total: int) -> list[tuple[Any, int]]:
    """(segments, their largest span) to render together: all at once, or the short segments
    apart from the long ones when that saves enough dense cells."""
    n_seg = span_s.size
    groups: list[tuple[Any, int]] = [(slice(None), total)]
    if n_seg * total * total > _SPLIT_CELLS:
        # spans are small integers (0..total): a histogram, not a sort (a stable argsort of 700
        # spans cost 22 us, half of this function). Dense cells of a split into the n_s
        # segments of span <= s and the rest, minus those of no split:
        # n_s * s^2 + (n - n_s) * total^2 - n * total^2 = n_s * (s^2 - total^2)
        # (a negative thickness can make a box's width negative: no cells, and no bincount)
        n_upto = np.bincount(np.maximum(span_s, 0), minlength=total + 1).cumsum()
        sq = _arange(total + 1) ** 2
        change = n_upto * (sq - total * total)
        cut = int(change.argmin())
        if n_upto[cut] < n_seg and change[cut] + _GROUP_CELLS < 0:
            short = span_s <= cut
            groups = [(short.nonzero()[0], cut), ((~short).nonzero()[0], total)]
    return groups


def _write_hits(out: np.ndarray, idx: np.ndarray, who: np.ndarray, u: np.ndarray, overlap: bool, n_seg: int,
                hw: int) -> None:
    """The unit vectors of segment `who` into the x and y channel cells `idx` (later instances win
    where they overlap)."""
    flat = out.reshape(-1)
    if overlap and n_seg < 2**31:
        # Later instances overwrite earlier ones. Segment numbers grow with the instance and one
        # instance never hits a cell twice, so a cell's winner is its largest segment number.
        # ufunc.at is unbuffered, hence well defined where a fancy assignment that repeats an
        # index is not. The x channels themselves are the scratch array: they are still zero,
        # which is no larger than any segment number, and are written below anyway; they hold
        # the numbers as int32 (through an int32 view: int32 maximum.at runs about twice as fast
        # as float32's, which checks for NaN). A separate array of the output's size cost page
        # faults on every scattered first touch.
        # Every hit then takes its cell's winner, so a cell hit twice is written twice with the
        # same values: well defined, and cheaper than selecting the winning hits first.
        scratch = flat.view(np.int32)
        np.maximum.at(scratch, idx, who.astype(np.int32))
        who = scratch.take(idx)
    elif overlap:  # pragma: no cover - over 2 billion limb segments in one call
        best = np.full(out.size, -1, dtype=np.int64)
        np.maximum.at(best, idx, who)
        who = best[idx]
    u32 = u.astype(np.float32)
    flat[idx] = u32[0].take(who)  # 1-D takes: a fancy index on axis 1 is far slower
    flat[hw:][idx] = u32[1].take(who)  # the y channel follows the x channel


def _cols(x: np.ndarray, g: Any) -> np.ndarray:
    """x[:, g]; take when g is an index array (several times faster than fancy indexing)."""
    return x[:, g] if isinstance(g, slice) else x.take(g, axis=1)


@lru_cache(maxsize=64)
def _paf_offsets(n_limbs: int, first: int, hw: int) -> np.ndarray:
    return (first + 2 * np.arange(n_limbs)) * hw


def _check(kp: np.ndarray, lb: np.ndarray | None = None) -> None:
    if lb is not None and lb.size and (lb.min() < 0 or lb.max() >= kp.shape[1]):
        raise InputError(f"limb indices must lie in [0, {kp.shape[1]}), got {lb.min()}..{lb.max()}")


def render_heatmaps(
    keypoints: np.ndarray, map_h: int, map_w: int, stride: int = 8, sigma: float = 7.0
) -> np.ndarray:
    """Keypoints (N, K, 3) in input-image pixels -> float32 (K + 1, map_h, map_w), background last."""
    kp = _as_keypoints(keypoints)
    out = np.zeros((1, kp.shape[1] + 1, map_h, map_w), dtype=np.float32)
    if map_h and map_w:
        _heatmaps_into(out, *_split(kp), np.zeros(kp.shape[0], dtype=np.int64), kp.shape[0] > 1,
                       stride, sigma)
    return out[0]


def render_pafs(
    keypoints: np.ndarray, limbs: np.ndarray, map_h: int, map_w: int, stride: int = 8,
    thickness: float = 1.0,
) -> np.ndarray:
    """Keypoints (N, K, 3) and limbs (L, 2) -> float32 (2L, map_h, map_w); channel 2i is x, 2i+1 y."""
    kp = _as_keypoints(keypoints)
    lb = np.asarray(limbs, dtype=np.int64).reshape(-1, 2)
    _check(kp, lb)
    out = np.zeros((1, 2 * lb.shape[0], map_h, map_w), dtype=np.float32)
    if lb.size and kp.shape[0] and map_h and map_w:
        _pafs_into(out, *_split(kp), np.zeros(kp.shape[0], dtype=np.int64), kp.shape[0] > 1, lb, 0,
                   stride, thickness)
    return out[0]


def render_targets(
    keypoints: np.ndarray, skeleton: Skeleton, map_h: int, map_w: int, stride: int = 8,
    sigma: float = 7.0, thickness: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(heatmaps (K + 1, h, w), pafs (2L, h, w)) for one sample's instances (main first).

    Both are views of one allocation (heatmap channels first), which the trainer can use as is.
    """
    heat, pafs = render_targets_batch([keypoints], skeleton, map_h, map_w, stride, sigma, thickness)
    return heat[0], pafs[0]


def render_targets_batch(
    keypoints: Sequence[np.ndarray] | np.ndarray, skeleton: Skeleton, map_h: int, map_w: int,
    stride: int = 8, sigma: float = 7.0, thickness: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Targets of several samples in one set of NumPy calls (per chunk of at most 20 MB of output).

    keypoints[b] holds sample b's instances (N_b, K, 3), main first; N_b may differ between
    samples, and a padded (B, N, K, 3) array works as well (absent padding draws nothing).
    Returns heatmaps (B, K + 1, h, w) and pafs (B, 2L, h, w), views of one (B, K + 1 + 2L, h, w)
    allocation; sample b's maps equal render_targets(keypoints[b], ...) exactly.
    """
    k = skeleton.num_keypoints
    samples = [_as_keypoints(x) for x in keypoints]
    for x in samples:
        if x.shape[1] != k:
            raise InputError(
                f"keypoints have {x.shape[1]} points per instance; skeleton {skeleton.name!r} has {k}"
            )
    lb = _limbs_of(skeleton.limbs)
    n_ch = k + 1 + 2 * lb.shape[0]
    out, dirty = _OUTPUTS.get((len(samples), n_ch, map_h, map_w))
    heat, pafs = out[:, : k + 1], out[:, k + 1:]
    if not (map_h and map_w and samples):
        return heat, pafs
    # Chunks of at most _CHUNK_BYTES of output, of equal size: every pass of a chunk (Gaussians,
    # clip, PAF winners, PAF values) scatters into the same MBs, which stay in the cache between
    # passes, while each chunk pays the fixed cost of ~150 NumPy calls (0.15-0.35 ms). Measured
    # before outputs were recycled: 80 samples of 3 / 10 people 0.147 / 0.38 ms per sample in one
    # call, 0.097 / 0.175 ms in chunks of 16 (7.7 MB). With recycled outputs and the background
    # gathered outside the output, A/B in one process at load 5 (bench/README.md "targets"),
    # batches of 80 in 2 chunks of 40 against 5 of 16: 3 people 0.89, 10 people 0.92; in one
    # chunk 0.89 / 0.96; in 10 chunks 1.24 / 1.11; 3 chunks against 2: 1.06 / 1.06.
    per_sample = out[0].nbytes
    n_chunks = -(-len(samples) * per_sample // _CHUNK_BYTES)
    size = -(-len(samples) // n_chunks)
    global _malloc_ready
    if not _malloc_ready:
        # glibc's malloc serves blocks above its mmap threshold with fresh pages, which the
        # kernel maps and zeroes on first touch, raises that threshold to the size of any such
        # block freed (up to 32 MB), and trims the heap's top above twice the threshold. So a
        # process whose largest freed block is small keeps getting its temporaries as fresh
        # pages, call after call: 80 samples of 10 people (38 MB outputs, never reused by
        # malloc) 7,000 page faults per batch, 0.31 instead of 0.16 ms per sample; the
        # cpu-small preset's batches of 16 at 128 px (0.9 MB outputs) 620 faults per call,
        # 0.12 instead of 0.044 ms per sample (3 people). Freeing one untouched block of a
        # chunk's size once raises the threshold for the process (it never falls back).
        np.empty(_CHUNK_BYTES, dtype=np.uint8)
        _malloc_ready = True
    if dirty:
        # a recycled output (_OutputPool), zeroed as bytes: uint8's fill is a memset, ~40% faster
        # than float32's fill loop; one memset of the whole output measured 2-6% faster than
        # one per chunk just before it is drawn (A/B at load 7)
        out.view(np.uint8).fill(0)
    for c0 in range(0, len(samples), size):
        _render_into(out[c0:c0 + size], samples[c0:c0 + size], lb, stride, sigma, thickness)
    return heat, pafs


class _OutputPool:
    """Recycled memory for outputs of at least min_bytes (the trainer's batch of 80: 38 MB).

    glibc's malloc gives a block over 32 MB fresh pages from the kernel and returns them on free,
    so every such batch paid the kernel to map and zero 38 MB (0.04-0.06 ms of a sample's
    ~0.08 ms, bench/README.md "targets") that the renderer then wrote again. Here the memory of
    an output is kept when the output dies and handed to the next output of the same size,
    which the renderer zeroes (a memset) before drawing into it.

    Safe by construction: each output is a view of its own np.frombuffer array over a memoryview,
    and NumPy makes every view of a view keep that array alive (a view's base stops at the first
    array that does not own its memory but views a non-array buffer), as does torch.from_numpy;
    the memory comes back only when the last of them is gone (weakref.finalize). At most
    `keep` idle blocks of the latest size are kept (the trainer holds at most two batches).
    """

    def __init__(self, min_bytes: int, keep: int = 2) -> None:
        self.min_bytes, self.keep = min_bytes, keep
        self._nbytes = 0
        self._idle: list[np.ndarray] = []

    def get(self, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
        """A float32 array of shape: (zeroed, False) or (recycled, True; to be zeroed)."""
        nbytes = 4 * math.prod(shape)
        if nbytes < self.min_bytes:
            # np.zeros: within malloc's heap, or calloc's fresh pages the kernel zeroes lazily
            return np.zeros(shape, dtype=np.float32), False
        raw, dirty = None, True
        if nbytes == self._nbytes:
            try:
                raw = self._idle.pop()  # atomic: two threads never get the same block
            except IndexError:
                pass
        if raw is None:
            raw, dirty = np.zeros(nbytes, dtype=np.uint8), False
        # through a memoryview: np.frombuffer of an ndarray would take that array as its base,
        # and views would then skip `held` and keep only raw alive
        held = np.frombuffer(memoryview(raw), dtype=np.float32)
        out = held.reshape(shape)
        if out.base is not held:  # pragma: no cover - a NumPy that collapses bases differently
            self.min_bytes = 1 << 62  # no way to tell when an output dies: stop recycling
            return np.zeros(shape, dtype=np.float32), False
        weakref.finalize(held, self._put, raw).atexit = False
        return out, dirty

    def _put(self, raw: np.ndarray) -> None:
        # called when an output's last view dies, in whatever thread drops it: only atomic
        # list operations, and a rebinding when the size changes (a race loses a block, never
        # hands one out twice: a block is either idle here or owned by one live output)
        if raw.nbytes != self._nbytes:
            self._nbytes, self._idle = raw.nbytes, [raw]
        elif len(self._idle) < self.keep:
            self._idle.append(raw)


# 32 MB: the largest block glibc's malloc keeps for reuse itself (below, np.zeros is cheap)
_OUTPUTS = _OutputPool(32 << 20)


# output bytes rendered per chunk (a batch of 80 at 368 px: two chunks); see render_targets_batch
_CHUNK_BYTES = 20 << 20
_malloc_ready = False  # glibc's mmap threshold raised in this process; see render_targets_batch


def _render_into(out: np.ndarray, samples: list[np.ndarray], lb: np.ndarray, stride: int,
                 sigma: float, thickness: float) -> None:
    """Targets of samples (each (N_b, K, 3)) into the zeroed out (B, K + 1 + 2L, h, w)."""
    counts = [x.shape[0] for x in samples]
    overlap = max(counts) > 1
    if len(samples) == 1:
        kp, sample_base = samples[0], np.zeros(counts[0], dtype=np.int64)
    else:
        kp = np.concatenate(samples)
        sample_base = (np.arange(len(samples)) * out[0].size).repeat(counts)
    xy, lab = _split(kp)
    _heatmaps_into(out, xy, lab, sample_base, overlap, stride, sigma)
    if lb.size and kp.shape[0]:
        _pafs_into(out, xy, lab, sample_base, overlap, lb, xy.shape[2] + 1, stride, thickness)


@lru_cache(maxsize=16)
def _limbs_of(limbs: tuple[tuple[int, int], ...]) -> np.ndarray:
    return np.asarray(limbs, dtype=np.int64).reshape(-1, 2)


# ------------------------------------------------------------------------------------ masks
def crowd_mask(segmentations: list, height: int, width: int) -> np.ndarray:
    """uint8 (height, width): 1 everywhere except inside crowd regions (0).

    Each segmentation is a COCO polygon list, an uncompressed RLE ({"counts": [...], "size"})
    or a compressed RLE ({"counts": "..."}), as pycocotools' frPyObjects accepts them.
    The regions are united as run-length encodings and decoded once: an image's crowd regions
    cost one decode instead of one decode and one full-image update each (4 regions on a
    640 x 425 photo: 0.22 instead of 1.4 ms). pycocotools' merge trusts its input (corrupt
    counts can make it loop forever), so every RLE is checked before: uncompressed counts must
    be non-negative and cover the image exactly, and a compressed string must decode alone.
    """
    if not segmentations:
        return np.ones((height, width), dtype=np.uint8)
    from pycocotools import mask as mask_utils

    rles: list = []
    for i, seg in enumerate(segmentations):
        rles.extend(_segmentation_rles(mask_utils, seg, i, height, width))
    if not rles:
        return np.ones((height, width), dtype=np.uint8)
    inside = mask_utils.decode(mask_utils.merge(rles) if len(rles) > 1 else rles[0])  # (h, w), F order
    mask = _c_order(inside)
    np.subtract(1, mask, out=mask)
    return mask


def _segmentation_rles(mask_utils: Any, seg: Any, i: int, height: int, width: int) -> list:
    """One crowd segmentation as RLEs, every size checked before anything is decoded; raises
    InputError naming the segmentation when it is no polygon list or RLE that fits the image."""
    try:
        if isinstance(seg, dict) and isinstance(seg.get("counts"), (str, bytes)):
            # compressed RLE (frPyObjects only takes uncompressed counts lists)
            counts = seg["counts"]
            found = [{"size": [int(v) for v in seg["size"]],
                      "counts": counts.encode("ascii") if isinstance(counts, str) else counts}]
        elif isinstance(seg, list):
            polys = [p for p in seg if len(p) >= 6]  # frPyObjects rejects < 3 points
            found = mask_utils.frPyObjects(polys, height, width) if polys else []
        elif isinstance(seg, dict):
            if "size" in seg:  # the declared size first: a wrong one is the common export mistake
                _check_size(seg, i, height, width)
            counts = np.asarray(seg.get("counts"))
            if not (counts.ndim == 1 and counts.dtype.kind in "iuf" and (counts >= 0).all()
                    and (counts == np.round(counts)).all() and int(counts.sum()) == height * width):
                raise ValueError(f"counts must be non-negative integers summing to {height} x {width}")
            found = [mask_utils.frPyObjects(seg, height, width)]
        else:
            raise TypeError(f"got {type(seg).__name__}")
        for rle in found:  # before any decode: a header's size is what a decode allocates
            _check_size(rle, i, height, width)
        if isinstance(seg, dict) and isinstance(seg.get("counts"), (str, bytes)):
            mask_utils.decode(found[0])  # raises on corrupt counts, which merge would loop on
    except InputError:
        raise
    except Exception as e:  # pycocotools raises bare Exception for unsupported input
        raise InputError(f"crowd segmentation [{i}] is not a COCO polygon or RLE ({e})") from None
    return found


def segmentation_problem(seg: Any, height: int, width: int) -> str | None:
    """Why crowd_mask could not use this segmentation on a height x width image, or None.
    validate calls this so the trainer never meets a segmentation it cannot decode."""
    from pycocotools import mask as mask_utils

    try:
        _segmentation_rles(mask_utils, seg, 0, height, width)
    except InputError as e:
        return e.message.replace("crowd segmentation [0] ", "", 1)
    return None


def _check_size(rle: dict, i: int, height: int, width: int) -> None:
    size = tuple(int(v) for v in rle["size"])
    if size != (height, width):
        raise InputError(f"crowd segmentation [{i}] has size {size}, image is {(height, width)}")


def _c_order(a: np.ndarray) -> np.ndarray:
    """A C-ordered copy of a Fortran-ordered 2-D uint8 array (OpenCV's transpose is vectorised;
    a NumPy copy across the layouts is several times slower)."""
    import cv2

    return cv2.transpose(np.ascontiguousarray(a.T))


def mask_to_map(mask: np.ndarray, map_h: int, map_w: int) -> np.ndarray:
    """Any-size mask -> float32 (map_h, map_w) with area interpolation (the reference's resize).

    A uint8 mask is reduced in uint8, as the reference reduces its uint8 crop mask: each cell is
    the rounded mean, so a 0/1 mask stays 0/1. Any other dtype is averaged in float32.
    """
    import cv2

    m = np.asarray(mask)
    if m.dtype != np.uint8:
        m = m.astype(np.float32)
    if m.shape != (map_h, map_w):
        m = cv2.resize(m, (map_w, map_h), interpolation=cv2.INTER_AREA)
    return m.astype(np.float32)


# ------------------------------------------------------------------------------------- flip
def flip_targets(
    heatmaps: np.ndarray, pafs: np.ndarray, skeleton: Skeleton
) -> tuple[np.ndarray, np.ndarray]:
    """Targets of the mirrored sample, from the targets of the original.

    Heatmap channel i of the mirror is channel flip[i] mirrored (background stays last).
    PAF limb j of the mirror is its mirror limb i mirrored, with x negated; when limb j lists
    the mirrored ends in the opposite order the vector points the other way, so y is negated
    instead (-(-ux), -uy). A limb whose mirror is not a limb has no source: its channels are zero.
    """
    k = skeleton.num_keypoints
    heat = np.ascontiguousarray(heatmaps[..., ::-1])
    perm = np.concatenate([skeleton.flip_array, [k]])
    heat = heat[perm]
    src = np.ascontiguousarray(pafs[..., ::-1])
    out = np.zeros_like(src)
    for i, (j, rev) in enumerate(skeleton.limb_flip):
        if j < 0:
            continue
        # limb i mirrors onto limb j (the mirror relation is an involution)
        sx, sy = src[2 * i], src[2 * i + 1]
        if rev:
            out[2 * j], out[2 * j + 1] = sx, -sy
        else:
            out[2 * j], out[2 * j + 1] = -sx, sy
    return heat, out
