"""The demo's held-out inference settings, compared on a separate synthetic draw (never on the
held-out set): bench/README.md, "demo", "Held-out inference, chosen on a separate draw".

    .venv/bin/python bench/demo_inference.py CHECKPOINT [--draw /tmp/demo-tune] [--seed 1000] [--images 200]

Draws object5 figures (160 x 160, silhouette OKS areas, seed 1000: the demo's held-out set is
seed 1) into --draw unless already there, then prints AP, AP50, AP75 and AR of CHECKPOINT (a demo
run's run/last.pt) under each setting of the table, at 1 thread.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (label, input size, scales of it, peak threshold, flip)
SETTINGS = [
    ("input 128 (the earlier demo)", 128, (1.0,), 0.1, True),
    ("input 136", 136, (1.0,), 0.1, True),
    ("input 144", 144, (1.0,), 0.1, True),
    ("input 144, heights 128/144/160", 144, (128 / 144, 1.0, 160 / 144), 0.1, True),
    ("input 136, heights 128/136/144 (the demo)", 136, (128 / 136, 1.0, 144 / 136), 0.1, True),
    ("input 136, heights 120-152 (5)", 136, (120 / 136, 128 / 136, 1.0, 144 / 136, 152 / 136), 0.1, True),
    ("input 128, heights 128/136/144", 128, (1.0, 136 / 128, 144 / 128), 0.1, True),
    ("input 144, peak threshold 0.15", 144, (1.0,), 0.15, True),
    ("input 136, heights 128/136/144, peak threshold 0.2", 136, (128 / 136, 1.0, 144 / 136), 0.2, True),
    ("no flip, input 128", 128, (1.0,), 0.1, False),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--draw", type=Path, default=Path("/tmp/demo-tune"))
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--images", type=int, default=200)
    args = ap.parse_args()

    import torch

    import trainer  # noqa: F401  (the thread policy, before torch starts its threads)
    from posedata.grouping import GroupingParams
    from posedata.skeleton import resolve
    from posedata.synth import generate
    from trainer import evaluate as E

    torch.set_num_threads(1)
    sk = resolve("object5")
    if not (args.draw / "annotations.json").is_file():
        generate(sk, args.draw, args.images, (160, 160), args.seed, area="silhouette")
    loaded = E.load_model(args.checkpoint, sk)
    for label, size, scales, threshold, flip in SETTINGS:
        t = time.process_time()
        r = E.evaluate(loaded.model, sk, args.draw / "annotations.json", args.draw / "images", input_size=size,
                       flip=flip, scales=scales, params=GroupingParams(threshold=threshold))
        print(f"{label:55s} AP {r['AP']:.3f}  AP50 {r['AP50']:.3f}  AP75 {r['AP75']:.3f}  AR {r['AR']:.3f}  "
              f"({time.process_time() - t:.1f} CPU s)", flush=True)


if __name__ == "__main__":
    main()
