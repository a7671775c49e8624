"""`posedata infer`'s per-image work (decode, network, resizes, peaks, grouping; drawing and
writing off) against the reference's single-scale inference code path on the same network, for the
torch and the ONNX Runtime backends: images/s, wall and CPU, alternating rounds, medians.

Run: .venv/bin/python bench/bench_infer.py [--rounds 5] [--width 1.0] [--checkpoint FILE] [--threads N] [--quick]
     .venv/bin/python bench/bench_infer.py --jobs [--rounds 3] [--sizes 1,2,4,9] [--checkpoint FILE] [--threads N]

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

--jobs: `posedata infer FOLDER --backend torch` and `--backend onnx` as users run them (a fresh
process each: interpreter, imports, checkpoint, the backend's start-up, every image, drawing and
writing), on folders of the first 1, 2, 4 and 9 photos, alternating backends, wall time and the
child's CPU time (rusage), medians over rounds; and the backend `--backend auto` picks for that
folder (trainer.predict.choose_backend, the function the command calls). The network is a
width-1.0 seed-0 openpose18 checkpoint trained "at" 368 unless --checkpoint gives one.
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
    ap.add_argument("--jobs", action="store_true", help="whole `posedata infer` runs per backend and folder size")
    ap.add_argument("--sizes", default="1,2,4,9", help="--jobs: folder sizes (photos)")
    args = ap.parse_args()
    if args.jobs:
        jobs(args)
        return
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


def _checkpoint(folder: Path, width: float) -> Path:
    """A seed-0 openpose18 network (1 refinement stage) saved as a posedata checkpoint trained at 368."""
    import torch

    from posedata import skeleton as S
    from trainer import checkpoint as C
    from trainer.model import for_skeleton

    sk = S.resolve("openpose18")
    torch.manual_seed(0)
    net = for_skeleton(sk, stages=1, width=width)
    path = folder / "net.pt"
    C.save(C.training_checkpoint(net, net.spec.to_dict(), sk.to_dict(), sk.fingerprint, config={"input_size": 368}),
           path)
    return path


def jobs(args: argparse.Namespace) -> None:
    import os
    import resource
    import subprocess
    import tempfile

    from trainer.predict import choose_backend

    sizes = [int(v) for v in args.sizes.split(",")]
    files = photos()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        ckpt = args.checkpoint or _checkpoint(tmp_path, args.width)
        folders = {}
        for n in sizes:
            folders[n] = tmp_path / f"photos{n}"
            folders[n].mkdir()
            for p in files[:n]:
                (folders[n] / p.name).symlink_to(p)

        def run(n: int, backend: str) -> tuple[float, float]:
            cmd = [sys.executable, "-m", "posedata.cli", "infer", str(folders[n]), "--checkpoint", str(ckpt),
                   "-o", str(tmp_path / "out"), "--force", "--backend", backend]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            w0 = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - w0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode != 0:
                sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
            return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

        backends = ["torch", "onnx"]
        times: dict[tuple[int, str], list[tuple[float, float]]] = {(n, b): [] for n in sizes for b in backends}
        for r in range(args.rounds):
            for n in sizes:
                for b in backends[r % 2:] + backends[:r % 2]:
                    times[n, b].append(run(n, b))
    print(f"`posedata infer FOLDER --backend B` per folder size, {args.rounds} rounds, width {args.width}, "
          f"--threads {args.threads}; seconds per job, medians (onnx - torch: median of per-round differences)")
    print(f"{'photos':>6} {'torch wall':>10} {'onnx wall':>10} {'onnx-torch':>10} {'torch CPU':>10} {'onnx CPU':>9} "
          f"{'onnx-torch':>10}  auto picks")
    for n in sizes:
        t, o = times[n, "torch"], times[n, "onnx"]
        med = [statistics.median(v[i] for v in x) for x in (t, o) for i in (0, 1)]
        dw = statistics.median(b[0] - a[0] for a, b in zip(t, o, strict=True))
        dc = statistics.median(b[1] - a[1] for a, b in zip(t, o, strict=True))
        chosen, why = choose_backend("auto", Path(ckpt), "auto", n)
        print(f"{n:6d} {med[0]:10.2f} {med[2]:10.2f} {dw:+10.2f} {med[1]:10.2f} {med[3]:9.2f} {dc:+10.2f}  "
              f"{chosen} ({why})")


if __name__ == "__main__":
    main()
