"""Per-image grouping time (peak extraction + limb scoring + assembly) for 1, 5 and 20 instances:
posedata.grouping.group (what `posedata val` / `infer` run) vs the port of the reference's current
extract_keypoints + group_keypoints in tests/test_grouping.py (loops where the reference loops,
NumPy where it uses NumPy, so its speed is the reference's; tests check parity against it).

Run: .venv/bin/python bench/bench_grouping.py [--quick] [--rounds N] [--ab OTHER_GROUPING_PY_OR_GIT_REV
     [--part peaks|scoring]]
     .venv/bin/python bench/bench_grouping.py --compare OTHER_GROUPING_PY_OR_GIT_REV [--quick]

With --ab, it instead times another version of grouping (a git revision, e.g. `--ab main~3`, whose
posedata/grouping.py and posedata/peaks.py are loaded together; or a grouping.py file from before
the peak search moved to posedata/peaks.py) against the current one on the same maps, alternating
which goes first, and checks that both return the same output: how a change to grouping is judged.
With --part peaks it times only the peak search (`all_peaks`, as `group` calls it) of both; with
--part scoring only scoring + assembly (`group` with the peaks given, found before timing).
With --compare, it runs both on 300 random inputs (40 with --quick) and the bench's maps and exits 1
unless every output array is equal (how a change is checked to keep the output identical).

Maps: the openpose18 skeleton's ground-truth heatmaps and PAFs for N people laid out on a grid,
rendered at stride 8 (posedata.targets) and upsampled bicubically to 368 x 656 (a 16:9 image at
the reference's input height), as the reference's val.py hands them to grouping. A second set adds
noise at map resolution (before upsampling, so the maps stay smooth like a network's output): per
keypoint type one spurious Gaussian blob per person (height 0.15-0.5), uniform 0-0.08 on every
heatmap cell, Gaussian sigma 0.1 on every PAF cell; so there are false peaks, more candidate pairs
and some suppression work. Every case checks that both return the same output: the same entries
with the same counts and scores (exactly, when posedata walks the reference's limb order).

Timing: one process, one core (OMP/OpenBLAS threads 1); rounds alternate posedata and reference
calls on the same maps, each in its own layout made before timing: channels-first for posedata
(what its upsampling returns), (H, W, C) for the reference (what its val.py infer returns; its
extract_keypoints reads each channel as a strided view of that array), and the table reports the medians of per-call CPU time (process_time) and
wall time (perf_counter), and their ratios.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_grouping import (  # noqa: E402
    OP18,
    REF_ORDER,
    assert_identical,
    assert_same_groups,
    layout_instances,
    our_instances,
    ref_evaluate,
    ref_instances,
    ref_poses,
    ref_run,
)

from posedata.grouping import extract_peaks, group  # noqa: E402

H, W = 368, 656


def maps_for(n: int, noisy: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth maps for n people at stride 8, optionally with network-like noise added at
    that resolution, upsampled bicubically to H x W as inference does."""
    import cv2

    from posedata.targets import render_heatmaps, render_pafs

    rng = np.random.default_rng(seed + n)
    cols = {1: 1, 5: 5, 20: 7}[n]
    rows = -(-n // cols)
    size = min((W - 40) / cols, (H - 40) / rows)
    kps = layout_instances(OP18, n, rng, size=size, cols=cols, margin=20)
    mh, mw = H // 8, W // 8
    heat = render_heatmaps(kps, mh, mw, 8)
    pafs = render_pafs(kps, OP18.limbs_array, mh, mw, 8)
    if noisy:
        yy, xx = np.mgrid[0:mh, 0:mw]
        for c in range(OP18.num_keypoints):
            for _ in range(n):  # one spurious blob per person and keypoint type
                cx, cy, s = rng.uniform(0, mw), rng.uniform(0, mh), rng.uniform(0.5, 1.5)
                heat[c] += rng.uniform(0.15, 0.5) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
        heat += rng.uniform(0, 0.08, heat.shape).astype(np.float32)
        pafs += rng.normal(0, 0.1, pafs.shape).astype(np.float32)

    def up(m: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(cv2.resize(m.transpose(1, 2, 0), (W, H), interpolation=cv2.INTER_CUBIC)
                                    .transpose(2, 0, 1))

    return up(heat), up(pafs)


def timed(fn) -> tuple[float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def alternate(ours, ref, rounds: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median (cpu, wall) of each, over rounds that call ours then ref back to back."""
    t_o, t_r = [], []
    for _ in range(rounds):
        t_o.append(timed(ours))
        t_r.append(timed(ref))
    med = lambda ts: (float(np.median([t[0] for t in ts])), float(np.median([t[1] for t in ts])))  # noqa: E731
    return med(t_o), med(t_r)


def same_output(heat: np.ndarray, pafs: np.ndarray) -> tuple[int, bool]:
    """(instances found, both checks passed): exact in the reference's walk, same entries in ours."""
    (entries, all_kp), _ = ref_run(heat, pafs)
    ours = group(heat, pafs, OP18, return_counts=True)
    try:
        assert_identical(group(heat, pafs, OP18, return_counts=True, order=REF_ORDER), ref_poses(entries, all_kp, 18))
        assert_same_groups(our_instances(*ours), ref_instances(entries, all_kp))
    except AssertionError:
        return len(ours[0]), False
    return len(ours[0]), True


def load_other(path: str):
    """Another grouping.py as its own module (its dataclasses need it in sys.modules). PATH is a
    file, or a git revision whose posedata/grouping.py (and posedata/peaks.py, where the peak
    search lives since stop 23) are loaded together, so that both halves are the other version's."""
    import importlib.util
    import subprocess

    def module(name: str, source: str):
        spec = importlib.util.spec_from_loader(name, loader=None)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        exec(compile(source, f"<{name}>", "exec"), mod.__dict__)
        return mod

    if Path(path).is_file():
        return module("other_grouping", Path(path).read_text(encoding="utf-8"))

    def show(file: str) -> str | None:
        got = subprocess.run(["git", "-C", str(ROOT), "show", f"{path}:{file}"], capture_output=True, text=True)
        return got.stdout if got.returncode == 0 else None

    source = show("posedata/grouping.py")
    if source is None:
        raise SystemExit(f"--ab {path}: neither a file nor a git revision with posedata/grouping.py")
    peaks = show("posedata/peaks.py")
    if peaks is not None:
        module("other_peaks", peaks)
        source = source.replace("from posedata.peaks import", "from other_peaks import")
    return module("other_grouping", source)


def ab(path: str, rounds: int, part: str | None = None) -> None:
    """Medians of per-call CPU time of the other grouping.py and the current one, rounds
    alternating which runs first; before each call a pass over 64 MB evicts the maps from the
    caches, as the reference's call between two posedata calls does in the main table. part
    "peaks": the peak search alone (all_peaks with group's arguments); "scoring": group with the
    peaks given (extract_peaks' output, found before timing)."""
    from posedata.peaks import PEAK_MIN_DIST, PEAK_THRESHOLD, all_peaks

    other = load_other(path)
    if part == "peaks":
        args = lambda h, p: (h, PEAK_THRESHOLD, PEAK_MIN_DIST, OP18.num_keypoints)  # noqa: E731
        fns = (other.all_peaks, all_peaks)
    else:
        args = lambda h, p: (h, p, OP18)  # noqa: E731
        fns = (other.group, group)
    kw = lambda h: {"peaks": extract_peaks(h, num_keypoints=18)} if part == "scoring" else {}  # noqa: E731
    flush = np.ones(16 << 20, np.float32)
    only = {"peaks": ", peak search only", "scoring": ", scoring + assembly only (peaks given)"}.get(part, "")
    print(f"other = {path}, current = posedata/grouping.py{only}; "
          f"CPU medians of {rounds} rounds, order alternating")
    for noisy in (False, True):
        for n in (1, 5, 20):
            heat, pafs = maps_for(n, noisy)
            if part == "peaks":
                a, b = (fn(*args(heat, pafs)) for fn in fns)
            else:
                a, b = (fn(heat, pafs, OP18, return_counts=True, **kw(heat)) for fn in fns)
            same = all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
            t_o, t_c = [], []
            call_args, call_kw = args(heat, pafs), kw(heat)
            for r in range(rounds):
                pair = ((fns[0], t_o), (fns[1], t_c))
                for fn, acc in pair if r % 2 == 0 else pair[::-1]:
                    flush.sum()
                    acc.append(timed(lambda fn=fn, a=call_args, k=call_kw: fn(*a, **k))[0])
            co, cc = float(np.median(t_o)), float(np.median(t_c))
            q = float(np.percentile(t_c, 25) / np.percentile(t_o, 25))
            print(f"{n:>3} {'noisy' if noisy else 'clean'} same={same} other {1e3 * co:.2f} ms current {1e3 * cc:.2f} ms "
                  f"current/other {cc / co:.3f} (25th percentiles {q:.3f})")


def compare(path: str, cases: int) -> None:
    """The other grouping (as --ab) and the current one on random inputs: every array of
    group(..., return_counts=True), and of extract_peaks, must be equal. Maps of 1 x 2 to 416 x 696
    cells: blobs on noise with smooth random PAFs, values rounded to make plateaus and ties, dense
    ripples (candidates a cell or two apart), channels empty, sparse or all above the threshold,
    NaN cells, float64 PAFs; then the bench's maps. Exits 1 on the first difference."""
    from test_grouping import random_maps

    other = load_other(path)
    rng = np.random.default_rng(12345)

    def inputs():  # one at a time: a 416 x 696 pair is ~70 MB
        for noisy in (False, True):
            for n in (1, 5, 20):
                yield maps_for(n, noisy)
        for _ in range(cases):
            h, w = int(rng.choice([1, 3, 8, 9, 40, 97, 368, 416])), int(rng.choice([2, 7, 16, 45, 150, 656, 696]))
            heat, pafs = random_maps(rng, OP18.num_keypoints, OP18.num_limbs, h, w, blobs=(0, 25 if h * w < 40000 else 8))
            kind = rng.integers(0, 5)
            if kind == 1:  # plateaus and ties
                heat = np.round(heat, 1).astype(np.float32)
            elif kind == 2 and h * w <= 2000:  # dense ripples: candidates a cell or two apart, every band
                yy, xx = np.mgrid[0:h, 0:w]  # active (small maps only: the pairs grow as peaks squared)
                heat[:18] = 0.12 + 0.3 * (np.sin(xx * rng.uniform(1, 3)) * np.cos(yy * rng.uniform(1, 3))) ** 2
            elif kind == 3:  # some channels smooth and all above the threshold, some empty, NaN cells
                import cv2

                for c in rng.integers(0, 18, 4):
                    heat[c] = 0.15 + cv2.GaussianBlur(heat[c], (0, 0), 2)
                heat[rng.integers(0, 18, 3)] = 0
                heat[rng.random(heat.shape) < 0.001] = np.nan
            if rng.random() < 0.3:
                pafs = pafs.astype(np.float64)
            yield heat, pafs

    count = peaks_only = 0
    for i, (heat, pafs) in enumerate(inputs()):
        count += 1
        many = max(len(p) for p in extract_peaks(heat, num_keypoints=18)) > 300  # pairs grow as peaks squared
        peaks_only += many
        for fn in ("extract_peaks",) if many else ("group", "extract_peaks"):
            args = (heat, pafs, OP18) if fn == "group" else (heat,)
            kw = {"return_counts": True} if fn == "group" else {"num_keypoints": 18}
            a, b = getattr(other, fn)(*args, **kw), globals()[fn](*args, **kw)
            if not all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(a, b, strict=True)):
                print(f"input {i} ({heat.shape[1]} x {heat.shape[2]}): {fn} differs")
                raise SystemExit(1)
    print(f"other = {path}: identical output on {count} inputs ({cases} random, {count - cases} bench maps; "
          f"group and extract_peaks, extract_peaks only on the {peaks_only} with over 300 peaks in a channel)")


def main() -> None:
    quick = "--quick" in sys.argv
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 5 if quick else 21
    if "--ab" in sys.argv:
        part = sys.argv[sys.argv.index("--part") + 1] if "--part" in sys.argv else None
        if part not in (None, "peaks", "scoring"):
            raise SystemExit(f"--part {part}: only peaks and scoring are known")
        ab(sys.argv[sys.argv.index("--ab") + 1], rounds, part)
        return
    if "--compare" in sys.argv:
        compare(sys.argv[sys.argv.index("--compare") + 1], 40 if quick else 300)
        return
    rows = []
    for noisy in (False, True):
        for n in (1, 5, 20):
            heat, pafs = maps_for(n, noisy)
            found, same = same_output(heat, pafs)
            # the reference gets its maps as its val.py infer returns them, (H, W, C); its peak
            # search thresholds them in place (idempotent, so every round sees the same input)
            heat_hwc, pafs_hwc = (np.ascontiguousarray(m.transpose(1, 2, 0)) for m in (heat, pafs))
            (co, wo), (cr, wr) = alternate(lambda h=heat, p=pafs: group(h, p, OP18),
                                           lambda h=heat_hwc, p=pafs_hwc: ref_evaluate(h, p), rounds)
            rows.append((n, noisy, found, same, co, cr, wo, wr))
    print(f"openpose18 grouping, maps {H} x {W} (19 heatmaps, 38 PAFs), per image, 1 core, "
          f"median of {rounds} alternating rounds")
    print(f"{'people':>6} {'maps':>6} {'found':>5} {'same':>5} {'CPU posedata':>13} {'CPU reference':>14} "
          f"{'CPU ratio':>9} {'wall posedata':>14} {'wall reference':>15} {'wall ratio':>10}")
    for n, noisy, found, same, co, cr, wo, wr in rows:
        print(f"{n:>6} {'noisy' if noisy else 'clean':>6} {found:>5} {str(same):>5} {1e3 * co:>10.2f} ms "
              f"{1e3 * cr:>11.1f} ms {cr / co:>8.1f}x {1e3 * wo:>11.2f} ms {1e3 * wr:>12.1f} ms {wr / wo:>9.1f}x")
    for n in (5, 20):
        heat, pafs = maps_for(n, True)
        peaks = extract_peaks(heat, num_keypoints=18)
        (cp, _), (ca, _) = alternate(lambda h=heat: extract_peaks(h, num_keypoints=18),
                                     lambda h=heat, p=pafs: group(h, p, OP18), rounds)
        (cs, _), _ = alternate(lambda h=heat, p=pafs, pk=peaks: group(h, p, OP18, peaks=pk), lambda: None, rounds)
        print(f"{n} people, noisy: peak extraction {1e3 * cp:.2f} ms, scoring + assembly (peaks given) "
              f"{1e3 * cs:.2f} ms, whole {1e3 * ca:.2f} ms (CPU)")

if __name__ == "__main__":
    main()
