"""Speed of `posedata synth`: images per second for every template at 160x160, the CPU time
against the budget (200 images in 3 s), and how the time splits between drawing and JPEG encoding
(measured in one run, CPU time, so other load on the machine does not distort the ratios).

    .venv/bin/python bench/bench_synth.py [--images 200]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from posedata import skeleton as S  # noqa: E402
from posedata import synth  # noqa: E402
from posedata.synth_species import make_species  # noqa: E402


def main() -> None:
    import cv2

    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--size", type=int, default=160)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        budget = 3.0 * args.images / 200
        print(f"{'template':<12} {'cpu s':>6} {'wall s':>7} {'img/s (cpu)':>12} {'cpu/budget':>11} {'render share':>13}")
        for name in sorted(p.stem for p in S.TEMPLATES_DIR.glob("*.yaml")):
            sk = S.resolve(name)
            c0, w0 = time.process_time(), time.perf_counter()
            synth.generate(sk, tmp / name, args.images, (args.size, args.size), seed=0)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            # the same images rendered without writing: what share of the work is drawing
            sp = make_species(sk)
            c0 = time.process_time()
            imgs = [synth.render_image(sp, sk, np.random.default_rng([0, 1, i]), args.size, args.size, False)[0]
                    for i in range(args.images)]
            render = time.process_time() - c0
            c0 = time.process_time()
            for im in imgs:
                cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 92])
            encode = time.process_time() - c0
            print(f"{name:<12} {cpu:6.2f} {wall:7.2f} {args.images / cpu:12.0f} {cpu / budget:10.2f}x {render / cpu:12.0%}"
                  f"  (jpeg encode {encode / cpu:.0%})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
