"""The demo's bar (issue 5 section 3): the default `posedata demo` finishes in at most 12 minutes
of wall time on this CPU and reaches held-out AP >= 0.5. Runs the demo in this process and prints
its figures (from the run's summary.json) against the bar, with the machine's load average.

    .venv/bin/python bench/bench_demo.py -o /tmp/demo-bench [--minutes 10]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from posedata.cli import cli  # noqa: E402

BAR_MINUTES = 12.0
BAR_AP = 0.5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        cli.main(["demo", "-o", str(args.output), "--minutes", str(args.minutes), "--force"], standalone_mode=False)
    except SystemExit as e:  # pragma: no cover - the demo failed; its message is above
        raise SystemExit(e.code) from None
    wall = (time.perf_counter() - t0) / 60
    s = json.loads((args.output / "summary.json").read_text(encoding="utf-8"))
    la = s["load_average"]
    print(f"\nbench_demo: AP {s['AP']:.3f} (bar {BAR_AP}: x{s['AP'] / BAR_AP:.2f}), AP50 {s['AP50']:.3f}, "
          f"AR {s['AR']:.3f}")
    print(f"  wall {wall:.2f} min including start-up (bar {BAR_MINUTES:g}: x{wall / BAR_MINUTES:.2f}); "
          f"training {s['train_minutes']:.2f} min, {s['iterations']} steps of {s['plan']['batch_size']}, "
          f"{s['images_per_s']:.1f} images/s, {s['plan']['threads']} thread(s)")
    print(f"  load average (1 min): {load0:.2f} at start, training mean {la['train_mean']} / max {la['train_max']}, "
          f"{os.getloadavg()[0]:.2f} at the end; {s['machine']['cpus']} CPUs")


if __name__ == "__main__":
    main()
