"""Speed of `posedata synth`: images per second for every template at 160x160, the CPU time
against the budget (200 images in 3 s), and how the time splits between drawing and JPEG encoding
(measured in one run, CPU time, so other load on the machine does not distort the ratios).

    .venv/bin/python bench/bench_synth.py [--images 200]
    .venv/bin/python bench/bench_synth.py --ab OTHER_CHECKOUT [--template coco17] [--pairs 4]

--ab times `synth.generate` of this checkout against another one (e.g. `git worktree add
/tmp/old COMMIT`), one fresh process per run, in alternating pairs: the steady way to tell a code
change from the machine, whose single runs move by 20%.
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
    ap.add_argument("--ab", type=Path, metavar="CHECKOUT", help="time against another checkout, alternating")
    ap.add_argument("--template", default="coco17", help="--ab: the template to draw")
    ap.add_argument("--pairs", type=int, default=4, help="--ab: alternating pairs")
    args = ap.parse_args()
    if args.ab:
        return ab(args)
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


AB_RUN = """
import sys, tempfile, time
from pathlib import Path
from posedata import skeleton as S, synth
sk, out = S.resolve(sys.argv[1]), Path(tempfile.mkdtemp()) / "x"
c = time.process_time()
synth.generate(sk, out, int(sys.argv[2]), (int(sys.argv[3]),) * 2, seed=0)
print(time.process_time() - c)
"""


def ab(args: argparse.Namespace) -> None:
    import os
    import statistics
    import subprocess

    def run(root: Path) -> float:
        env = {**os.environ, "PYTHONPATH": str(root)}
        out = subprocess.run([sys.executable, "-c", AB_RUN, args.template, str(args.images), str(args.size)],
                             cwd=root, env=env, capture_output=True, text=True, check=True).stdout
        return float(out.split()[-1])

    ratios = []
    for i in range(args.pairs):
        order = [ROOT, args.ab] if i % 2 == 0 else [args.ab, ROOT]
        t = {root: run(root) for root in order}
        ratios.append(t[ROOT] / t[args.ab])
        print(f"pair {i + 1}: this {t[ROOT]:.2f} s, other {t[args.ab]:.2f} s CPU (x{ratios[-1]:.2f})", flush=True)
    print(f"{args.template}, {args.images} images: this checkout / other, median x{statistics.median(ratios):.2f} "
          f"[{min(ratios):.2f}-{max(ratios):.2f}] of process CPU time")


if __name__ == "__main__":
    main()
