"""Training throughput of the bundled trainer on this CPU: images/s at 368 and 128 px inputs, for the
reference network (width 1.0) and the small demo widths.

Run: .venv/bin/python bench/bench_train.py [--quick] [--threads N]

Three measurements per (input size, width):
  step   one optimiser step on ready tensors: forward of every stage, the reference's loss,
         backward, Adam with the reference's parameter groups (model cost alone);
  data   posedata's sample pipeline (decode, augment, targets, network input) as the trainer's
         Dataset runs it, one sample at a time on one core (no model);
  train  the trainer's own loop pieces end to end: DataLoader (workers 0) + step.
Skeleton coco17 (18 heatmaps, 2 x limbs PAF channels), one refinement stage. Data: the COCO photos
in ../shared/data/real/coco when present (labels made with posedata.convert), else synthetic blobs.

Wall images/s depend on what else runs on the machine; images per CPU-second (process CPU time)
are printed too, and the ratios between settings measured in the same run are the stable part.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the trainer sets it (trainer/train.py)

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from posedata import labels as L  # noqa: E402
from posedata import skeleton as S  # noqa: E402
from trainer.data import PoseDataset, make_loader  # noqa: E402
from trainer.loss import total_loss  # noqa: E402
from trainer.model import STRIDE, for_skeleton, param_groups  # noqa: E402
from trainer.train import augment_config  # noqa: E402

REAL = HERE.parent.parent / "shared" / "data" / "real" / "coco"


def make_labels(tmp: Path, sk) -> tuple[Path, Path, str]:
    """(label file, images folder, description)."""
    if (REAL / "test_coco.json").is_file():
        from posedata.convert import to_labels
        from posedata.io import load_json

        labels = to_labels(load_json(REAL / "test_coco.json"), sk, source=str(REAL / "test_coco.json"))
        L.save(labels, tmp / "labels.npz")
        return tmp / "labels.npz", REAL, f"{labels.num_samples} people in {labels.num_images} COCO photos"
    import cv2

    rng = np.random.default_rng(0)
    (tmp / "images").mkdir()
    n, k, size = 8, sk.num_keypoints, 480
    kps, boxes = [], []
    for i in range(n):
        img = rng.integers(60, 200, size=(size, size, 3), dtype=np.uint8)
        pts = rng.uniform(100, 380, size=(k, 2))
        for x, y in pts:
            cv2.circle(img, (int(x), int(y)), 6, (0, 0, 255), -1)
        cv2.imwrite(str(tmp / "images" / f"{i}.jpg"), img)
        kps.append(np.concatenate([pts, np.ones((k, 1))], 1))
        lo, hi = pts.min(0), pts.max(0)
        boxes.append([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])
    lb = L.Labels(fingerprint=sk.fingerprint, skeleton_name=sk.name, keypoint_names=list(sk.keypoints), settings={},
                  image_ids=np.arange(n), file_names=[f"{i}.jpg" for i in range(n)], widths=np.full(n, size),
                  heights=np.full(n, size), crowd=[[] for _ in range(n)], inst_image=np.arange(n),
                  inst_ids=np.arange(n), keypoints=np.stack(kps).astype(np.float32),
                  bbox=np.array(boxes, np.float32), area=np.array([b[2] * b[3] for b in boxes], np.float32),
                  num_keypoints=np.full(n, k), samples=np.arange(n))
    L.save(lb, tmp / "labels.npz")
    return tmp / "labels.npz", tmp / "images", f"{n} synthetic 480 px images"


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds) of fn() after one warm-up call."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return float(np.median(wall)), float(np.median(cpu))


def bench_step(sk, size: int, width: float, batch: int, repeats: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = for_skeleton(sk, stages=1, width=width).train()
    opt = torch.optim.Adam(param_groups(model, 4e-5), lr=4e-5, weight_decay=5e-4)
    m = size // STRIDE
    x = torch.randn(batch, 3, size, size) * 0.25
    hm, paf = torch.rand(batch, sk.num_heatmaps, m, m), torch.rand(batch, sk.num_pafs, m, m) - 0.5
    mask = torch.ones(batch, m, m)

    def step():
        loss, _ = total_loss(model(x), hm, paf, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    wall, cpu = timed(step, repeats)
    return batch / wall, batch / cpu


def bench_data(dataset: PoseDataset, repeats: int) -> tuple[float, float]:
    i = [0]

    def one():
        dataset[(0, i[0] % len(dataset))]
        i[0] += 1

    wall, cpu = timed(one, repeats)
    return 1 / wall, 1 / cpu


def bench_train(sk, dataset: PoseDataset, width: float, batch: int, steps: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = for_skeleton(sk, stages=1, width=width).train()
    opt = torch.optim.Adam(param_groups(model, 4e-5), lr=4e-5, weight_decay=5e-4)
    loader, sampler = make_loader(dataset, batch, 0, seed=0)
    batches = []

    def run(n: int) -> None:
        done, epoch = 0, 0
        while done < n:
            sampler.set_position(epoch, 0)
            for b in loader:
                loss, _ = total_loss(model(b["image"]), b["heatmaps"], b["pafs"], b["mask"])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                batches.append(b["image"].shape[0])
                done += 1
                if done == n:
                    return
            epoch += 1

    run(1)
    batches.clear()
    w, c = time.perf_counter(), time.process_time()
    run(steps)
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    return sum(batches) / wall, sum(batches) / cpu


def wait_policy_ratio(size: int = 128, width: float = 0.5, batch: int = 16) -> dict[str, float]:
    """Step images/s with spinning (ACTIVE) vs sleeping (PASSIVE) OpenMP waits, each in a fresh
    process (the policy is read once, when OpenMP starts)."""
    import subprocess

    code = ("import sys; sys.path.insert(0, {here!r}); import bench_train as B; from posedata import skeleton as S; "
            "print(B.bench_step(S.resolve('coco17'), {size}, {width}, {batch}, 3)[0])")
    out = {}
    for policy in ("ACTIVE", "PASSIVE"):
        env = dict(os.environ, OMP_WAIT_POLICY=policy)
        res = subprocess.run([sys.executable, "-c", code.format(here=str(HERE), size=size, width=width, batch=batch)],
                             env=env, capture_output=True, text=True, check=True)
        out[policy] = float(res.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, widths 1.0 and 0.5 only")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--widths", default=None, help="comma-separated widths (default 1.0,0.5,0.25)")
    ap.add_argument("--sizes", default="368,128", help="comma-separated input sizes")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    widths = [float(w) for w in (args.widths or ("1.0,0.5" if args.quick else "1.0,0.5,0.25")).split(",")]
    repeats = 2 if args.quick else 3
    sk = S.resolve("coco17")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op thread(s); skeleton {sk.name}: "
          f"{sk.num_heatmaps} heatmaps, {sk.num_pafs} PAF channels, 1 refinement stage")
    with tempfile.TemporaryDirectory() as tmp:
        labels, images, what = make_labels(Path(tmp), sk)
        print(f"data: {what}")
        rows = []
        sizes = [int(x) for x in args.sizes.split(",")]
        for size, batch in [(x, 4 if x >= 256 else 16) for x in sizes]:
            ds = PoseDataset(labels, images, sk, augment_config(size), seed=0)
            d_wall, d_cpu = bench_data(ds, repeats * 4)
            for width in widths:
                s_wall, s_cpu = bench_step(sk, size, width, batch, repeats)
                t_wall, t_cpu = bench_train(sk, ds, width, batch, repeats)
                rows.append((size, width, batch, s_wall, s_cpu, d_wall, d_cpu, t_wall, t_cpu))
                print(f"  input {size:3d} width {width:4.2f} batch {batch:2d}: step {s_wall:7.2f} img/s "
                      f"({s_cpu:6.2f} per CPU-s), data {d_wall:6.1f} samples/s, train {t_wall:7.2f} img/s "
                      f"({t_cpu:6.2f} per CPU-s)", flush=True)
    print("\n| input | width | batch | step img/s (wall) | step img/CPU-s | data samples/s | data samples/CPU-s | train img/s (wall) | train img/CPU-s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for size, width, batch, sw, sc, dw, dc, tw, tc in rows:
        print(f"| {size} | {width} | {batch} | {sw:.2f} | {sc:.2f} | {dw:.1f} | {dc:.1f} | {tw:.2f} | {tc:.2f} |")
    by = {(r[0], r[1]): r for r in rows}
    print("\nratios (same run, CPU-time based):")
    if {368, 128} <= set(sizes):
        for width in widths:
            print(f"  width {width}: 128 px trains x{by[(128, width)][8] / by[(368, width)][8]:.1f} the images/s of 368 px")
    for size in sizes:
        for width in widths[1:]:
            print(f"  input {size}: width {width} trains x{by[(size, width)][8] / by[(size, widths[0])][8]:.1f} "
                  f"the images/s of width {widths[0]}")
        for width in widths:
            r = by[(size, width)]
            print(f"  input {size} width {width}: data pipeline is {100 * r[8] / r[6]:.0f}% of a training step's CPU time "
                  "(workers 0)")
    if torch.get_num_threads() > 1:
        p = wait_policy_ratio()
        print(f"  OpenMP wait policy, input 128 width 0.5 step, {torch.get_num_threads()} threads: PASSIVE "
              f"{p['PASSIVE']:.2f} img/s vs ACTIVE {p['ACTIVE']:.2f} img/s (x{p['PASSIVE'] / p['ACTIVE']:.1f})")


if __name__ == "__main__":
    main()
