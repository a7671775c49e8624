"""Target rendering speed: posedata.targets vs a cell-by-cell implementation vs the allocation floor.

Run: .venv/bin/python bench/bench_targets.py [--quick]

(a) posedata.targets.render_targets (vectorised), one sample per call, and
    posedata.targets.render_targets_batch for batches of 8, 16 and 80 samples (the trainer renders
    a batch's targets in one call; its default batch is 80, a 38 MB output), reported per sample
(b) the same rules written directly, one map cell at a time, the way the reference trainer's
    _add_gaussian / _set_paf loops are written (plain Python floats and lists)
(c) the allocation floor: allocating and filling the output arrays (zeros for K + 1 heatmaps and
    2L PAFs, background set to 1), one sample at a time; (c80) the same for one (80, K + 1 + 2L,
    h, w) output with every 4 KB page written once (rendering writes nearly every page): a 38 MB
    output is beyond malloc's reuse (32 MB), so a fresh one costs the kernel mapping and zeroing
    new memory on every call; render_targets_batch no longer pays it, as it reuses the memory of a
    dead output of the same size (posedata.targets._OutputPool), as (a80) measures it and a training
    loop meets it: batch after batch, each dropped after its step
All three on the same instances: openpose18 (18 keypoints, 19 limbs), 368 x 368 input, stride 8,
sigma 7, thickness 1, for 1, 3 and 10 people, 80 scenes each (every column times the same 80).
A last table repeats (a16) and (b) in the cpu-small preset's geometry (128 x 128 input, 16 x 16
maps), the batches of 16 the demo renders. Times are per sample, the best of several repeats of
this process's CPU time (time.process_time): the machine is shared, and CPU time leaves out the
time spent waiting for a core, which wall-clock time under load does not. A "paired" section then
times (b) and each batch size in alternating rounds (rotating order) and prints the median of the
rounds' b / aN ratios, CPU and wall: a neighbour's load that comes and goes slows both sides of a
ratio alike there, where each column of the table is timed in its own stretch of time.
"""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from posedata import skeleton as skmod  # noqa: E402
from posedata.targets import render_targets, render_targets_batch  # noqa: E402

STRIDE, SIGMA, THICKNESS, SIZE = 8, 7.0, 1.0, 368

# A standing person in openpose18 order, unit height, origin at the neck.
PERSON18 = np.array([
    [0, -0.12], [0, 0], [-0.1, 0], [-0.14, 0.16], [-0.16, 0.32], [0.1, 0], [0.14, 0.16], [0.16, 0.32],
    [-0.07, 0.33], [-0.08, 0.55], [-0.08, 0.78], [0.07, 0.33], [0.08, 0.55], [0.08, 0.78],
    [-0.03, -0.15], [0.03, -0.15], [-0.06, -0.13], [0.06, -0.13],
])


def people(n: int, rng: np.random.Generator) -> np.ndarray:
    """n people as the augmentation leaves them: 110-243 px tall (0.6 * 368 * [0.5, 1.1] for the
    main person), rotated up to +-40 degrees, anywhere in the crop, ~1 in 8 points unlabelled."""
    out = np.zeros((n, 18, 3))
    for i in range(n):
        h = rng.uniform(110, 243)
        a = math.radians(rng.uniform(-40, 40))
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        out[i, :, :2] = (PERSON18 * h) @ rot.T + rng.uniform(30, 340, 2)
        out[i, :, 2] = rng.choice([0, 1, 1, 1, 1, 1, 1, 2], 18)
    return out


# ------------------------------------------------------------------- (b) one cell at a time
def cellwise_heatmaps(instances: list, k: int, map_h: int, map_w: int, stride: int = STRIDE,
                      sigma: float = SIGMA) -> np.ndarray:
    """instances: list of lists of [x, y, v] (the reference keeps its labels as Python lists)."""
    maps = np.zeros((k + 1, map_h, map_w), dtype=np.float32)
    shift = stride / 2 - 0.5
    for j in range(k):
        m = maps[j]
        for inst in instances:
            x, y, v = inst[j]
            if v > 1:
                continue
            left = max(int(x - 4 * sigma), 0)
            top = max(int(y - 4 * sigma), 0)
            right = min(int(x + 4 * sigma), map_w * stride)
            bottom = min(int(y + 4 * sigma), map_h * stride)
            for my in range(top // stride, bottom // stride):
                for mx in range(left // stride, right // stride):
                    d2 = (mx * stride + shift - x) * (mx * stride + shift - x) + \
                        (my * stride + shift - y) * (my * stride + shift - y)
                    exponent = d2 / 2 / sigma / sigma
                    if exponent > 4.6052:
                        continue
                    m[my, mx] += math.exp(-exponent)
                    if m[my, mx] > 1:
                        m[my, mx] = 1
    maps[-1] = 1 - maps.max(axis=0)
    return maps


def cellwise_pafs(instances: list, limbs: list, map_h: int, map_w: int, stride: int = STRIDE,
                  t: float = THICKNESS) -> np.ndarray:
    maps = np.zeros((2 * len(limbs), map_h, map_w), dtype=np.float32)
    for li, (ia, ib) in enumerate(limbs):
        for inst in instances:
            xa, ya, va = inst[ia]
            xb, yb, vb = inst[ib]
            if va > 1 or vb > 1:
                continue
            xa, ya, xb, yb = xa / stride, ya / stride, xb / stride, yb / stride
            dx, dy = xb - xa, yb - ya
            x0, x1 = int(max(min(xa, xb) - t, 0)), int(min(max(xa, xb) + t, map_w))
            y0, y1 = int(max(min(ya, yb) - t, 0)), int(min(max(ya, yb) + t, map_h))
            norm = (dx * dx + dy * dy) ** 0.5
            if norm < 1e-7:
                continue
            dx, dy = dx / norm, dy / norm
            for y in range(y0, y1):
                for x in range(x0, x1):
                    if math.fabs((x - xa) * dy - (y - ya) * dx) <= t:
                        maps[2 * li, y, x] = dx
                        maps[2 * li + 1, y, x] = dy
    return maps


def cellwise_targets(instances: list, k: int, limbs: list, map_h: int, map_w: int):
    return cellwise_heatmaps(instances, k, map_h, map_w), cellwise_pafs(instances, limbs, map_h, map_w)


def floor_targets(k: int, n_limbs: int, map_h: int, map_w: int):
    heat = np.zeros((k + 1, map_h, map_w), dtype=np.float32)
    heat[k] = 1.0
    return heat, np.zeros((2 * n_limbs, map_h, map_w), dtype=np.float32)


def floor_batch(b: int, k: int, n_limbs: int, map_h: int, map_w: int) -> np.ndarray:
    out = np.zeros((b, k + 1 + 2 * n_limbs, map_h, map_w), dtype=np.float32)
    out[:, k] = 1.0
    out.reshape(-1)[::1024] = 0.0  # one write per 4 KB page
    return out


def in_batches(scenes: list, batch: int, sk, mh: int, mw: int):
    """(aN): the scenes rendered `batch` at a time, as the trainer renders each DataLoader batch."""
    def run() -> None:
        for i in range(0, len(scenes), batch):
            render_targets_batch(scenes[i:i + batch], sk, mh, mw)
    return run


def one_cell_at_a_time(lists: list, k: int, limbs: list, mh: int, mw: int):
    """(b): the same scenes through the reference-style loops."""
    def run() -> None:
        for lst in lists:
            cellwise_targets(lst, k, limbs, mh, mw)
    return run


def best_time(fn, repeats: int, inner: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t = time.process_time()
        for _ in range(inner):
            fn()
        best = min(best, (time.process_time() - t) / inner)
    return best


def main() -> None:
    quick = "--quick" in sys.argv
    sk = skmod.resolve("openpose18")
    k, limbs = sk.num_keypoints, [tuple(x) for x in sk.limbs]
    mh = mw = SIZE // STRIDE
    rng = np.random.default_rng(2024)
    n_scenes = 80  # one batch of 80, five of 16, ten of 8
    print(f"openpose18 ({k} keypoints, {len(limbs)} limbs), {SIZE}x{SIZE}, stride {STRIDE}, "
          f"sigma {SIGMA}, thickness {THICKNESS}; {n_scenes} scenes per size, best of repeats, "
          "times per sample; a1 = one sample per call, a8 / a16 / a80 = batches of 8 / 16 / 80")
    print(f"{'people':>6} {'(a1)':>9} {'(a8)':>9} {'(a16)':>9} {'(a80)':>9} {'(b) cellwise':>13} "
          f"{'(c) floor':>10} {'(c80)':>9} {'b/a1':>6} {'b/a8':>6} {'b/a16':>6} {'b/a80':>6} {'a1/c':>6}")
    rows = []
    paired_runs = []
    for n in (1, 3, 10):
        scenes = [people(n, rng) for _ in range(n_scenes)]
        lists = [s.tolist() for s in scenes]
        for s, lst in zip(scenes, lists):  # same maps, else the comparison means nothing
            ha, pa = render_targets(s, sk, mh, mw)
            hb, pb = cellwise_targets(lst, k, limbs, mh, mw)
            assert np.abs(ha - hb).max() <= 1e-5 and np.abs(pa - pb).max() <= 1e-5
        hs, ps = render_targets_batch(scenes, sk, mh, mw)
        for b, s in enumerate(scenes):  # the batch gives every sample exactly its own maps
            ha, pa = render_targets(s, sk, mh, mw)
            assert np.array_equal(hs[b], ha) and np.array_equal(ps[b], pa)

        def run_a(scenes=scenes):
            for s in scenes:
                render_targets(s, sk, mh, mw)

        run_a8, run_a16, run_a80 = (in_batches(scenes, b, sk, mh, mw) for b in (8, 16, 80))
        run_b = one_cell_at_a_time(lists, k, limbs, mh, mw)

        def run_c(scenes=scenes):
            for _ in scenes:
                floor_targets(k, len(limbs), mh, mw)

        def run_c80(scenes=scenes):
            for _ in range(0, len(scenes), 80):
                floor_batch(80, k, len(limbs), mh, mw)

        reps = 5 if quick else 15
        ta = best_time(run_a, reps, 1) / n_scenes
        ta8 = best_time(run_a8, reps, 1) / n_scenes
        ta16 = best_time(run_a16, reps, 1) / n_scenes
        ta80 = best_time(run_a80, reps, 1) / n_scenes
        tb = best_time(run_b, 2 if quick else 4, 1) / n_scenes
        tc = best_time(run_c, reps, 2) / n_scenes
        tc80 = best_time(run_c80, reps, 1) / n_scenes
        rows.append((n, ta, ta8, ta16, ta80, tb, tc, tc80))
        print(f"{n:>6} {ta * 1e3:>6.3f} ms {ta8 * 1e3:>6.3f} ms {ta16 * 1e3:>6.3f} ms {ta80 * 1e3:>6.3f} ms "
              f"{tb * 1e3:>10.3f} ms {tc * 1e3:>7.3f} ms {tc80 * 1e3:>6.3f} ms {tb / ta:>5.1f}x {tb / ta8:>5.1f}x "
              f"{tb / ta16:>5.1f}x {tb / ta80:>5.1f}x {ta / tc:>5.1f}x")
        paired_runs.append((n, run_b, {8: run_a8, 16: run_a16, 80: run_a80}))
    paired(paired_runs, rounds=7 if quick else 21)
    cpu_small(rng, reps=5 if quick else 15)


def paired(runs: list, rounds: int) -> None:
    """b / aN from alternating rounds: each round times (b) once and every batch size once, in
    an order that rotates from round to round, CPU and wall time; the median of the rounds'
    ratios. A neighbour's load that comes and goes then slows both sides of a ratio alike,
    where the table above times each column in its own stretch of time."""
    print(f"paired: b / aN per round, {rounds} alternating rounds, median [lowest-highest], CPU then wall")
    for n, run_b, run_a in runs:
        fns = [("b", run_b)] + [(bs, fn) for bs, fn in run_a.items()]
        cpu: dict = {name: [] for name, _ in fns}
        wall: dict = {name: [] for name, _ in fns}
        for r in range(rounds):
            for name, fn in fns[r % len(fns):] + fns[:r % len(fns)]:
                c, w = time.process_time(), time.perf_counter()
                fn()
                cpu[name].append(time.process_time() - c)
                wall[name].append(time.perf_counter() - w)
        parts = []
        for bs in run_a:
            for label, t in (("CPU", cpu), ("wall", wall)):
                ratios = sorted(b / a for b, a in zip(t["b"], t[bs]))
                parts.append(f"b/a{bs} {label} x{ratios[len(ratios) // 2]:.1f} [{ratios[0]:.1f}-{ratios[-1]:.1f}]")
        print(f"{n:>6} people: " + "; ".join(parts))


def cpu_small(rng: np.random.Generator, reps: int) -> None:
    """The cpu-small preset's geometry (the demo's): 128 x 128 input, 16 x 16 maps, batches of 16;
    the same people scaled by 128 / 368 (the main person's range after scaling), (b) as above."""
    sk = skmod.resolve("openpose18")
    k, limbs = sk.num_keypoints, [tuple(x) for x in sk.limbs]
    size = 128
    mh = mw = size // STRIDE
    print(f"cpu-small preset: {size}x{size} input ({mh}x{mw} maps), batches of 16, same people scaled "
          f"by {size}/{SIZE}")
    print(f"{'people':>6} {'(a16)':>9} {'(b) cellwise':>13} {'b/a16':>6}")
    for n in (3, 10):
        scenes = []
        for _ in range(80):
            s = people(n, rng)
            s[..., :2] *= size / SIZE
            scenes.append(s)
        lists = [s.tolist() for s in scenes]
        hs, ps = render_targets_batch(scenes[:16], sk, mh, mw)
        for b, lst in enumerate(lists[:16]):
            hb, pb = cellwise_targets(lst, k, limbs, mh, mw)
            assert np.abs(hs[b] - hb).max() <= 1e-5 and np.abs(ps[b] - pb).max() <= 1e-5

        run_a16 = in_batches(scenes, 16, sk, mh, mw)
        run_b = one_cell_at_a_time(lists, k, limbs, mh, mw)

        ta16 = best_time(run_a16, reps, 1) / len(scenes)
        tb = best_time(run_b, 2 if reps < 15 else 4, 1) / len(scenes)
        print(f"{n:>6} {ta16 * 1e3:>6.3f} ms {tb * 1e3:>10.3f} ms {tb / ta16:>5.1f}x")


if __name__ == "__main__":
    main()
