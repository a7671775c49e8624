"""Is `posedata synth` data learnable? Generate a training and a held-out set (different seeds,
same creature), train the bundled network on CPU for a few minutes, evaluate COCO AP on the
held-out set, and print the figures in one run.

    .venv/bin/python bench/synth_learnability.py --skeleton quadruped17 --minutes 8 -o /tmp/learn

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
    args = ap.parse_args()

    sk = S.resolve(args.skeleton)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    posedata = [sys.executable, "-m", "posedata.cli"]

    t = time.perf_counter()
    train_json = generate(sk, out / "train", args.train_images, (args.size, args.size), seed=0)
    val_json = generate(sk, out / "val", args.val_images, (args.size, args.size), seed=1)
    t_synth = time.perf_counter() - t
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
