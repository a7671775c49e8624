"""`posedata val` wall time on a 79-image COCO-sized folder, width-1.0 network at input 368, and
its AP against pycocotools run directly on the results file it writes.

Run: .venv/bin/python bench/bench_val.py [--images 79] [--repeats 1]
     .venv/bin/python bench/bench_val.py --forward-rounds 5  (the network pass alone, old vs new)

The folder: the 4 real COCO val2017 images of ../shared/data/real/coco (333-640 px wide, 14
people) copied to 79 files (so 79 decodes, 79 forward passes; the content repeats) with their
annotations copied per copy, ids renumbered. The checkpoint: openpose18, width 1.0, 1 refinement
stage (the reference network), seed-0 initial weights, recorded as trained at 368; such weights
find few people, so the time is the command's own (decode, network, resizes, peaks, grouping,
COCOeval) with little grouping work. The command runs as users run it (a subprocess of
`python -m posedata.cli val`), torch's default threads, on whatever else the machine is doing:
the 1-minute load average before and after is printed with the time.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REAL = ROOT.parent / "shared" / "data" / "real" / "coco"


def build_folder(root: Path, n: int) -> tuple[Path, Path]:
    src = json.loads(next(REAL.glob("*.json")).read_text())
    images_dir = root / "images"
    images_dir.mkdir()
    by_image: dict[int, list] = {}
    for a in src["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    out = {"images": [], "annotations": [], "categories": src["categories"]}
    for i in range(n):
        im = src["images"][i % len(src["images"])]
        name = f"copy{i:03d}_{im['file_name']}"
        shutil.copyfile(REAL / im["file_name"], images_dir / name)
        out["images"].append({**im, "id": i + 1, "file_name": name})
        for a in by_image.get(im["id"], []):
            out["annotations"].append({**a, "id": len(out["annotations"]) + 1, "image_id": i + 1})
    gt = root / "val.json"
    gt.write_text(json.dumps(out))
    return gt, images_dir


def make_checkpoint(path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    import torch

    from posedata import skeleton as S
    from trainer import checkpoint as C
    from trainer.model import for_skeleton

    sk = S.resolve("openpose18")
    torch.manual_seed(0)
    model = for_skeleton(sk, stages=1, width=1.0)
    C.save(C.training_checkpoint(model, model.spec.to_dict(), sk.to_dict(), sk.fingerprint,
                                 config={"input_size": 368}), path)


def pycocotools_ap(gt: Path, results: Path) -> float:
    """AP of results.json by pycocotools alone (COCO's own sigmas: openpose18 uses them)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dets = json.loads(results.read_text())
    if not dets:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt))
        ev = COCOeval(coco_gt, coco_gt.loadRes(str(results)), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def forward_rounds(rounds: int) -> None:
    """The forward pass val runs (trainer.model.for_inference: BatchNorm folded, channels-last)
    against the plain eval-mode network, on the 4 real COCO photos at input 368 through
    trainer.predict.predict: alternating rounds, medians of CPU and wall seconds per image, the
    ratio per round."""
    import statistics

    sys.path.insert(0, str(ROOT))
    import cv2
    import torch

    import trainer  # noqa: F401  (the thread policy, before torch starts its threads)
    from posedata import skeleton as S
    from trainer import predict as P
    from trainer.model import for_inference, for_skeleton

    sk = S.resolve("openpose18")
    torch.manual_seed(0)
    plain = for_skeleton(sk, stages=1, width=1.0).eval()
    fast = for_inference(plain)
    images = [cv2.imread(str(p)) for p in sorted(REAL.glob("*.jpg"))]
    cpu: dict[str, list[float]] = {"plain": [], "for_inference": []}
    wall: dict[str, list[float]] = {"plain": [], "for_inference": []}
    for _ in range(rounds):
        for name, model in (("plain", plain), ("for_inference", fast)):
            c, t = time.process_time(), time.perf_counter()
            for img in images:
                P.predict(model, img, sk, 368)
            cpu[name].append((time.process_time() - c) / len(images))
            wall[name].append((time.perf_counter() - t) / len(images))
    med = {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in cpu}
    ratio_cpu = statistics.median(a / b for a, b in zip(cpu["plain"], cpu["for_inference"], strict=True))
    ratio_wall = statistics.median(a / b for a, b in zip(wall["plain"], wall["for_inference"], strict=True))
    for k, (c, w) in med.items():
        print(f"predict, {k}: {c:.3f} CPU s / {w:.3f} wall s per image (median of {rounds})")
    print(f"for_inference x{ratio_cpu:.2f} CPU, x{ratio_wall:.2f} wall faster (median per-round ratio); "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=79)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--forward-rounds", type=int, default=0,
                    help="instead: time val's forward pass against the plain network, this many alternating rounds")
    args = ap.parse_args()
    if not REAL.is_dir():
        sys.exit(f"{REAL} is not present")
    if args.forward_rounds:
        forward_rounds(args.forward_rounds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        gt, images = build_folder(root, args.images)
        ckpt = root / "w1.pt"
        make_checkpoint(ckpt)
        env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
        env.pop("OMP_WAIT_POLICY", None)  # the command must set its own policy
        for r in range(args.repeats):
            out = root / f"out{r}"
            load0 = os.getloadavg()[0]
            cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "posedata.cli", "val", "--checkpoint", str(ckpt), "--coco",
                                str(gt), "--images", str(images), "-o", str(out)], env=env, capture_output=True,
                               text=True)
            secs = time.perf_counter() - t0
            cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            load1 = os.getloadavg()[0]
            if p.returncode != 0:
                sys.exit(p.stdout + p.stderr)
            m = json.loads((out / "metrics.json").read_text())
            ref_ap = pycocotools_ap(gt, out / "results.json")
            print(f"val, {args.images} images, width 1.0, input {m['settings']['input_size']}: {secs:.1f} s wall "
                  f"({args.images / secs:.2f} images/s), {cpu:.1f} s CPU, load {load0:.1f} -> {load1:.1f} on {os.cpu_count()} cores; "
                  f"{m['n_detections']} detections; AP {m['AP']:.4f}, pycocotools on results.json {ref_ap:.4f}")


if __name__ == "__main__":
    main()
