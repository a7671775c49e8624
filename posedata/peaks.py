"""Peak extraction (pure NumPy): the reference's extract_keypoints for every keypoint channel at once,
with the same peaks, scores and order (conventions §5); posedata.grouping assembles people from them.

As the reference: values below the threshold count as 0; a peak is a cell strictly greater than
its 4 neighbours (outside the map counts as 0); peaks are ordered by x (ties by y); walking that
order, a kept peak suppresses every later peak closer than min_dist. The search touches most cells
once per channel (_peak_cells) and suppression looks only at peaks that have a close neighbour.
"""
from __future__ import annotations

import math
import re

import numpy as np

# The reference's constants, kept as defaults.
PEAK_THRESHOLD = 0.1
PEAK_MIN_DIST = 6.0


def extract_peaks(heatmaps: np.ndarray, threshold: float = PEAK_THRESHOLD, min_dist: float = PEAK_MIN_DIST,
                  num_keypoints: int | None = None) -> list[np.ndarray]:
    """Per keypoint channel, the peaks as an (n, 4) float64 array of x, y, score, global id.

    As the reference: values below `threshold` count as 0; a peak is a cell strictly greater than
    its 4 neighbours (outside the map counts as 0); peaks are ordered by x (ties by y); walking that
    order, a kept peak suppresses every later peak closer than `min_dist`. Global ids number the
    peaks of all channels consecutively in channel order. `heatmaps` is (C, H, W); only the first
    `num_keypoints` channels are used when given (pass K to skip the background channel).
    """
    peaks, sizes = all_peaks(heatmaps, threshold, min_dist, num_keypoints)
    ends = sizes.cumsum().tolist()
    return [peaks[e - n:e] for e, n in zip(ends, sizes.tolist())]


def all_peaks(heatmaps: np.ndarray, threshold: float, min_dist: float, num_keypoints: int | None
               ) -> tuple[np.ndarray, np.ndarray]:
    """extract_peaks' arrays laid end to end (n, 4), and the count per channel."""
    hm = np.asarray(heatmaps)
    if hm.ndim != 3:
        raise ValueError(f"heatmaps must be (C, H, W), got shape {hm.shape}")
    if num_keypoints is not None:
        hm = hm[:num_keypoints]
    c, h, w = hm.shape
    if threshold > 0 and w >= 2:
        ch, ys, xs, scores = _peak_cells(hm, float(threshold))
    else:  # the reference's whole-map formulation; the shortcut needs threshold > 0
        hm = np.where(hm < threshold, 0, hm)
        padded = np.zeros((c, h + 2, w + 2), dtype=hm.dtype)
        padded[:, 1:-1, 1:-1] = hm
        centre = padded[:, 1:-1, 1:-1]
        is_peak = ((centre > padded[:, 1:-1, :-2]) & (centre > padded[:, 1:-1, 2:])
                   & (centre > padded[:, :-2, 1:-1]) & (centre > padded[:, 2:, 1:-1]))
        ch, ys, xs = np.nonzero(is_peak)
        scores = hm[ch, ys, xs]
    # channel, then x, then y: the reference sorts each channel's row-major peaks by x, stably
    order = ((ch * w + xs) * h + ys).argsort(kind="stable")  # (one key: faster than lexsort's three)
    ch, ys, xs = ch[order], ys[order], xs[order]
    keep = _suppress(ch, xs, ys, w, min_dist)
    ch = ch[keep]
    peaks = np.empty((len(ch), 4), dtype=np.float64)
    peaks[:, 0] = xs[keep]
    peaks[:, 1] = ys[keep]
    peaks[:, 2] = scores[order[keep]]
    peaks[:, 3] = np.arange(len(ch))
    return peaks, np.bincount(ch, minlength=c)


_BAND = 8  # rows per activity band: 8 rows of booleans are whole 8-byte words for any width
# runs of active bands in a bytes mask, bridging gaps of up to 3 bands (scanning 24 rows costs
# less than the ~10 NumPy calls of another run)
_RUNS = re.compile(rb"[^\x00](?:\x00{0,3}[^\x00])*")


def _peak_cells(hm: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(channel, y, x, value) of the reference's peaks, touching most cells once.

    The reference zeroes values below the threshold and then asks for a cell strictly greater than
    its 4 zero-padded neighbours. With threshold > 0 that is: the cell is >= threshold and strictly
    greater than each raw neighbour inside the map (a neighbour below the threshold is below the
    cell anyway). Per channel (its buffers stay in cache), one pass marks the cells >= threshold;
    bands of 8 rows without one are skipped (8 rows of booleans are whole 8-byte words, so a band
    is tested by one OR reduction: most bands of a clean map); in each run of the other bands a
    flat scan keeps the marked cells the values rise into and do not rise out of (~20x fewer than
    the marked ones; a row start counts as risen into, a row end needs only to be risen into).
    Every candidate so beats its left neighbour; the other three are tested by gathers. A long run
    (a noisy map's channel is one or two) also drops, while in cache, the candidates not above
    their upper neighbour or below their lower one inside the run (one more float pass, which
    leaves ~1 in 15 candidates for the gathers; short runs are cheaper to gather). A channel after
    a thresholded one with nearly every band active is scanned whole with no threshold pass (its
    first read from memory is then the scan's) and the threshold is tested on the candidates left."""
    c, h, w = hm.shape
    hw = h * w
    flat = np.ascontiguousarray(hm).reshape(-1)
    nb = -(-h // _BAND)
    above = np.zeros(nb * _BAND * w, bool)  # the tail past the map stays False
    band_words = above.view(np.uint64).reshape(nb, -1)
    ab = above[:hw]
    bufs = (np.empty(hw - 1, bool), np.empty(hw + 8, bool), np.empty(hw // 8 + 1, bool))
    cands, firsts, words = [], [], []
    whole = b"\x01" * nb
    busy = any_whole = False
    for k in range(c):
        f = flat[k * hw:(k + 1) * hw]
        # A channel after one with nearly every band active is scanned whole without its threshold
        # pass: that pass would skip little, and its read of the cold channel costs more than the
        # scan's extra work (channels of one image are alike); the threshold is then tested on the
        # candidates left at the end. Every _RECHECK-th channel is thresholded again (a sparse
        # channel scanned whole costs ~1.9x).
        if busy and k % _RECHECK != 0:
            act, mask = whole, None
            any_whole = True
        else:
            np.greater_equal(f, threshold, out=ab)
            act, mask = (np.bitwise_or.reduce(band_words, axis=1) != 0).tobytes(), ab
            busy = act.count(1) >= _DENSE * nb
        for run in _RUNS.finditer(act):
            b0, b1 = run.span()
            _scan_run(f, b0 * _BAND * w, min(b1 * _BAND, h) * w, w, mask, bufs, k * hw, cands, words, firsts)
    if words:
        cands.append(_word_cells(np.concatenate(words), np.concatenate(firsts)))
    cand = np.concatenate(cands) if cands else np.zeros(0, np.intp)
    return _exact(flat, cand, hw, w, threshold if any_whole else None)


def _scan_run(f: np.ndarray, s: int, e: int, w: int, mask: np.ndarray | None, bufs: tuple, base: int,
              cands: list, words: list, firsts: list) -> None:
    """The candidates of one run of bands, cells s to e of channel f (flat index base + s on): a
    short run's cell indices appended to cands; a long run's nonzero 8-byte words of the marks to
    words, their first cells' indices to firsts. mask: the channel's cells >= threshold, None when
    the channel is scanned whole (then not tested here). bufs: (rise, marks, nonzero) buffers."""
    rise, m, nz = bufs
    r = rise[:e - s - 1]
    np.greater(f[s + 1:e], f[s:e - 1], out=r)  # r[j]: the value rises from s + j to s + j + 1
    mm = m[:e - s]
    r[w - 1::w] = True  # into every row start (no left neighbour)
    np.less(r[1:], r[:-1], out=mm[1:-1])  # risen into and not out of (bool less: ~1.3x faster than greater)
    mm[0] = True
    mm[w - 1::w] = r[w - 2::w]  # a row end: risen into (no right neighbour)
    if mask is not None:
        mm &= mask[s:e]
    if e - s < _WORD_SCAN:
        cand = mm.nonzero()[0]
        cand += base + s
        cands.append(cand)
        return
    # The marked cells are sparse (~1 in 200): in a long run, their 8-byte words are located here
    # (flatnonzero over every byte costs ~2x more) and decoded after the loop.
    n = e - s - w
    if n > 0:  # the vertical neighbours inside the run, while the channel is in cache
        d = rise[:n]
        np.greater(f[s + w:e], f[s:e - w], out=d)  # d[j]: the value rises from s + j down to s + j + w
        mm[w:] &= d  # risen into from above
        np.greater(mm[:n], d, out=mm[:n])  # and not out of below (ties kept: tested later)
    n8 = -(-(e - s) // 8)
    m[e - s:n8 * 8] = False
    mw = m[:n8 * 8].view(np.uint64)
    at = np.not_equal(mw, 0, out=nz[:n8]).nonzero()[0]
    words.append(mw.take(at))
    at <<= 3
    at += base + s
    firsts.append(at)


def _exact(flat: np.ndarray, cand: np.ndarray, hw: int, w: int, threshold: float | None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(channel, y, x, value) of the candidates (flat indices) that are >= threshold (when given:
    some were not tested) and strictly above their lower, upper and right neighbours (none outside
    the channel), tested one after the other on the candidates left: on a ridge of row maxima the
    first two leave ~1 in 20."""
    v = flat[cand]
    if threshold is not None:
        keep = v >= threshold
        cand, v = cand[keep], v[keep]
    local = cand % hw
    keep = v > flat.take(cand + w, mode="clip")
    keep |= local >= hw - w
    cand, v, local = cand[keep], v[keep], local[keep]
    keep = v > flat.take(cand - w, mode="clip")
    keep |= local < w
    cand, v, local = cand[keep], v[keep], local[keep]
    keep = v > flat.take(cand + 1, mode="clip")
    keep |= local % w == w - 1
    cand, v, local = cand[keep], v[keep], local[keep]
    return cand // hw, local // w, local % w, v


# a channel is scanned whole after a thresholded one with at least this share of its bands active;
# every _RECHECK-th channel is thresholded
_DENSE = 0.8
_RECHECK = 6

# runs of at least this many cells locate their marked cells through 8-byte words (a few more
# calls per run, which short runs do not repay)
_WORD_SCAN = 1 << 17


def _word_cells(words: np.ndarray, first: np.ndarray) -> np.ndarray:
    """first[i] + j for every byte j of words[i] (little-endian uint64 of bools) that is set.

    Multiplying by 2**56 + 2**49 + ... + 2**7 moves byte j's bit to bit 56 + j (every other
    product lands on its own lower bit, or past bit 63), so the top byte is the word's set bytes
    as 8 bits; their positions come from a table, lowest first."""
    out = []
    mask = ((words * np.uint64(0x0102040810204080)) >> np.uint64(56)).astype(np.uint8)
    while len(mask):
        out.append(first + _LOWEST_BIT.take(mask))
        mask &= mask - np.uint8(1)  # clears the lowest bit
        more = (mask != 0).nonzero()[0]
        mask, first = mask[more], first[more]
    return np.concatenate(out) if out else np.zeros(0, np.intp)


_LOWEST_BIT = np.array([(i & -i).bit_length() - 1 for i in range(256)], np.intp)

def _suppress(ch: np.ndarray, xs: np.ndarray, ys: np.ndarray, w: int, min_dist: float) -> np.ndarray:
    """Keep-mask of the reference's greedy suppression over peaks sorted by channel, then x.

    Conflicting pairs (i < j in one channel, closer than min_dist) are found with array operations
    inside an x window (channels are laid end to end on one axis, further apart than the window);
    only peaks that have such a conflict need the sequential pass, since a suppressed peak
    suppresses nothing (which makes the result order-dependent)."""
    n = len(xs)
    keep = np.ones(n, dtype=bool)
    if n < 2 or not min_dist > 0:
        return keep
    r2 = float(min_dist) ** 2
    xf = xs.astype(np.float64)
    yf = ys.astype(np.float64)
    key = ch * (w + math.ceil(min_dist) + 1) + xf
    hi = key.searchsorted(key + min_dist, side="left")  # |dx| < min_dist is necessary
    counts = hi - np.arange(1, n + 1)
    np.maximum(counts, 0, out=counts)
    total = int(counts.sum())
    if total == 0:
        return keep
    ii = np.arange(n).repeat(counts)
    jj = np.arange(total) + (ii + 1 - (counts.cumsum() - counts).repeat(counts))
    close = (xf[ii] - xf[jj]) ** 2 + (yf[ii] - yf[jj]) ** 2 < r2
    ii, jj = ii[close].tolist(), jj[close].tolist()
    gone = set()
    for i, j in zip(ii, jj):  # pairs in (i, j) order: i is decided before it suppresses
        if i not in gone:
            gone.add(j)
    keep[list(gone)] = False
    return keep
