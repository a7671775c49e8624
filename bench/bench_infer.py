"""`posedata infer`'s per-image work (decode, network, resizes, peaks, grouping; drawing and
writing off) against the reference's single-scale inference code path on the same network, for the
torch and the ONNX Runtime backends: images/s, wall and CPU, alternating rounds, medians.

Run: .venv/bin/python bench/bench_infer.py [--rounds 5] [--width 1.0] [--checkpoint FILE] [--threads N] [--quick]

Photos: the 9 real person photos of ../shared/data/real (coco 4, crowdpose 2, aic 3; 333-641 px
high, 500-950 wide). Network: openpose18 heads, 1 refinement stage, width 1.0 (the reference
network), seed-0 initial weights unless --checkpoint gives trained ones (a posedata or a
reference-layout checkpoint, e.g. the reference's COCO weights). Initial weights find almost no
peaks, so grouping costs little here; bench_grouping.py times grouping on its own.

Reference path (tests/test_predict.py ref_infer, a port of the reference's val.py `infer` at one
scale, and tests/test_grouping.py ref_evaluate, the port of extract_keypoints + group_keypoints):
cv2.imread, normalise, cubic resize to height 368, pad to the stride, torch forward (under
no_grad: the reference records autograd, which would only slow it), x8 cubic upsample of heatmaps
and of PAFs, padding cut, cubic resize to the image size, peaks per channel, grouping.
posedata path: what `posedata infer` runs per image (posedata.images.read_image, trainer.predict.
detect) with --backend torch (the network as evaluate runs it: trainer.predict.prepare, BatchNorm
folded, channels-last), and with --backend onnx (the same weights exported in memory, run by an
ONNX Runtime session as infer makes it). All see the same thread policy (passive OpenMP waiting;
--threads N as `posedata infer --threads N` sets it, else each runtime's default). Ratios are
taken per round (the three paths run back to back in each round, in rotating order), then the
median over rounds.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import trainer  # noqa: E402,F401  (the thread policy, before torch loads)

REAL = ROOT.parent / "shared" / "data" / "real"
PHOTOS = ("coco", "crowdpose", "aic")


def photos() -> list[Path]:
    out = [p for d in PHOTOS for p in sorted((REAL / d).glob("*.jpg"))]
    if not out:
        sys.exit(f"no photos under {REAL}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads [default: theirs]")
    ap.add_argument("--quick", action="store_true", help="2 rounds, 3 photos")
    args = ap.parse_args()
    from trainer.threads import apply_thread_policy

    apply_thread_policy(args.threads)  # as `posedata infer --threads` does, before any session is made

    import cv2
    import numpy as np
    import torch
    from test_grouping import ref_evaluate
    from test_predict import ref_infer

    from posedata import skeleton as S
    from posedata.images import read_image
    from trainer import predict as P
    from trainer.export_onnx import onnx_model_from_torch
    from trainer.model import for_skeleton

    sk = S.resolve("openpose18")
    if args.checkpoint:
        net = P.load_model(args.checkpoint, sk, backend="torch").model
    else:
        torch.manual_seed(0)
        net = for_skeleton(sk, stages=1, width=args.width).eval()
    onnx_net = onnx_model_from_torch(net)
    files = photos()[:3] if args.quick else photos()
    rounds = 2 if args.quick else args.rounds

    def reference(path: Path) -> int:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        heat, pafs = ref_infer(net, img)
        (entries, _all_kp), _ = ref_evaluate(heat, pafs)  # its own (H, W, C) maps, as val.py
        return len(entries)

    def ours(model):
        def run(path: Path) -> int:
            return len(P.detect(model, read_image(path), sk, 368))
        return run

    # the reference runs the plain network; infer runs what evaluate hands it (P.prepare)
    paths = {"reference": reference, "posedata torch": ours(P.prepare(net)), "posedata onnx": ours(onnx_net)}
    for fn in paths.values():  # warm-up (allocators, ONNX Runtime's first run)
        fn(files[0])
    found = {k: [fn(p) for p in files] for k, fn in paths.items()}
    names = list(paths)
    per_round: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
    for r in range(rounds):
        for k in names[r % 3:] + names[:r % 3]:
            w0, c0 = time.perf_counter(), time.process_time()
            for p in files:
                paths[k](p)
            w1, c1 = time.perf_counter(), time.process_time()
            per_round[k].append((len(files) / (w1 - w0), len(files) / (c1 - c0)))
    print(f"{len(files)} photos, openpose18, width {args.width}, input 368, torch threads {torch.get_num_threads()}, "
          f"--threads {args.threads}, "
          f"{rounds} rounds; instances found per path: " + ", ".join(f"{k} {sum(v)}" for k, v in found.items()))
    print(f"{'path':16} {'images/s wall':>14} {'images/s CPU':>13} {'x ref wall':>11} {'x ref CPU':>10}")
    for k in names:
        wall = statistics.median(v[0] for v in per_round[k])
        cpu = statistics.median(v[1] for v in per_round[k])
        rw = statistics.median(a[0] / b[0] for a, b in zip(per_round[k], per_round["reference"], strict=True))
        rc = statistics.median(a[1] / b[1] for a, b in zip(per_round[k], per_round["reference"], strict=True))
        print(f"{k:16} {wall:14.2f} {cpu:13.2f} {rw:11.2f} {rc:10.2f}")
    _ = np


if __name__ == "__main__":
    main()
