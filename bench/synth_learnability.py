"""Is `posedata synth` data learnable? Generate a training and a held-out set (different seeds,
same creature); first print the AP ceiling a model with a given localisation error could reach
(the held-out ground truth scored against itself jittered by 1-4 px, with the skeleton's OKS
sigmas: how tight the metric is at this image size), then, unless --no-train, train the bundled
network on CPU for a few minutes and evaluate COCO AP on the held-out set.

    .venv/bin/python bench/synth_learnability.py --skeleton quadruped17 --minutes 8 -o /tmp/learn
    .venv/bin/python bench/synth_learnability.py --skeleton hand21 --no-train -o /tmp/learn

It shells out to `posedata train` and `posedata val` (the commands a user runs) and uses the
library for synth and label conversion.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from posedata import skeleton as S  # noqa: E402
from posedata.convert import to_labels  # noqa: E402
from posedata.labels import save  # noqa: E402
from posedata.synth import generate  # noqa: E402


def jitter_ceiling(coco_json: Path, sk, noise_px: list[float], seed: int = 0) -> list[float]:
    """COCO AP of the ground truth against itself moved by Gaussian noise (per axis, px)."""
    import contextlib
    import io

    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    data = json.loads(coco_json.read_text())
    src = sk.source_index(list(sk.coco_keypoints))
    sigmas = np.zeros(len(sk.coco_keypoints))
    sigmas[src[src >= 0]] = np.asarray(sk.sigmas)[src >= 0]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = data
        gt.createIndex()
    out = []
    for noise in noise_px:
        rng = np.random.default_rng(seed)
        res = []
        for a in data["annotations"]:
            if a["iscrowd"] or not a["num_keypoints"]:
                continue
            kp = np.asarray(a["keypoints"], dtype=float).reshape(-1, 3)
            kp[:, :2] += rng.normal(0, noise, (len(kp), 2))
            kp[:, 2] = 1
            res.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 1.0})
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(gt, gt.loadRes(res), "keypoints")
            ev.params.kpt_oks_sigmas = sigmas
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        out.append(float(ev.stats[0]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skeleton", default="quadruped17")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--train-images", type=int, default=2000)
    ap.add_argument("--val-images", type=int, default=100)
    ap.add_argument("--size", type=int, default=160, help="synthetic image side")
    ap.add_argument("--input-size", type=int, default=160)
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--iterations", type=int, default=100000)
    ap.add_argument("--no-train", action="store_true", help="only the synth timing and the AP ceiling")
    args = ap.parse_args()

    sk = S.resolve(args.skeleton)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    posedata = [sys.executable, "-m", "posedata.cli"]

    t = time.perf_counter()
    val_json = generate(sk, out / "val", args.val_images, (args.size, args.size), seed=1)
    t_synth = time.perf_counter() - t
    noise = [1.0, 2.0, 3.0, 4.0]
    ceiling = jitter_ceiling(val_json, sk, noise)
    print(f"{sk.name} at {args.size} px, {args.val_images} held-out images: AP of the ground truth jittered by "
          + ", ".join(f"{n:g} px -> {c:.3f}" for n, c in zip(noise, ceiling, strict=True)), flush=True)
    if args.no_train:
        return
    # the training set only when training: --no-train (the AP ceiling, what `make bench` runs) never reads it
    t = time.perf_counter()
    train_json = generate(sk, out / "train", args.train_images, (args.size, args.size), seed=0)
    t_synth += time.perf_counter() - t
    labels = to_labels(json.loads(train_json.read_text()), sk, source=str(train_json))
    save(labels, out / "train.npz")
    print(f"synth: {args.train_images + args.val_images} images in {t_synth:.1f} s; "
          f"{labels.num_samples} training samples", flush=True)

    t = time.perf_counter()
    subprocess.run(posedata + [
        "train", "--skeleton", args.skeleton, "--labels", str(out / "train.npz"), "--images", str(out / "train" / "images"),
        "-o", str(out / "run"), "--input-size", str(args.input_size), "--width", str(args.width),
        "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--iterations", str(args.iterations),
        "--max-minutes", str(args.minutes), "--checkpoint-every", "200", "--force"], check=True, cwd=ROOT)
    t_train = time.perf_counter() - t
    subprocess.run(posedata + [
        "val", "--skeleton", args.skeleton, "--checkpoint", str(out / "run" / "last.pt"), "--coco", str(val_json),
        "--images", str(out / "val" / "images"), "--input-size", str(args.input_size), "-o", str(out / "val_out"),
        "--force"], check=True, cwd=ROOT)
    metrics = json.loads((out / "val_out" / "metrics.json").read_text())
    ap_ = {k: v for k, v in metrics.items() if k.startswith("AP") and isinstance(v, (int, float))}
    print(f"train {t_train / 60:.1f} min (limit {args.minutes}); held-out {ap_}")


if __name__ == "__main__":
    main()
