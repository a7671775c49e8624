"""images/s of `posedata train` for each input size, width and number of refinement stages, on this
machine: the table of docs/training.md ("choosing input size, width and stages").

Run: .venv/bin/python bench/bench_train_sizes.py [--threads 1] [--steps 6] [--batch 8]

Each setting is a real run of the trainer (trainer.train.train, what `posedata train` calls after
its data check) on the COCO photos of ../shared/data/real/coco (coco17 skeleton) when present, else
on a synthetic set, for a few steps; images/s is the median over the steps after the first (which
pays one-off costs). The 1-minute load average is printed before and after: on a shared machine
the figures scale with what else runs, the ratios between rows measured together are the stable
part.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `posedata train` sets it

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_train import make_labels  # noqa: E402

from posedata import skeleton as S  # noqa: E402

SETTINGS = [(size, width, stages) for size in (128, 256, 368) for width in (0.25, 0.5, 1.0) for stages in (0, 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="two small settings only (a smoke run)")
    args = ap.parse_args()
    import torch

    from trainer.train import TrainConfig, train

    sk = S.resolve("coco17")
    settings = SETTINGS[:2] if args.quick else SETTINGS
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        labels, images, what = make_labels(tmp, sk)
        load0 = os.getloadavg()[0]
        print(f"data: {what}; batch {args.batch}, {args.steps} steps per setting, {args.threads} thread(s), "
              f"torch {torch.__version__}, {os.cpu_count()} cores; load average {load0:.1f} at the start")
        print("\n| input | width | refinement stages | images/s | s per 16-image step |")
        print("| --- | --- | --- | --- | --- |")
        rows = []
        for i, (size, width, stages) in enumerate(settings):
            cfg = TrainConfig(labels=str(labels), images=str(images), output=str(tmp / f"run{i}"),
                              iterations=args.steps, batch_size=args.batch, input_size=size, width=width,
                              stages=stages, threads=args.threads, checkpoint_every=10**6, device="cpu")
            train(cfg, sk)
            metrics = [json.loads(x) for x in (tmp / f"run{i}" / "metrics.jsonl").read_text().splitlines()]
            speed = statistics.median(r["images_per_s"] for r in metrics[1:])
            rows.append((size, width, stages, speed))
            print(f"| {size} | {width} | {stages} | {speed:.1f} | {16 / speed:.2f} |", flush=True)
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end ({time.strftime('%Y-%m-%d %H:%M')})")


if __name__ == "__main__":
    main()
