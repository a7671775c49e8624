"""Seconds per training step of the demo (`posedata demo`'s network, data and batch), wall and CPU,
in fresh processes run in alternating order: the steady way to tell a code or thread change from
a machine shared with other jobs, whose load moves single runs by 50%.

    .venv/bin/python bench/bench_demo_steps.py [--threads 1,2] [--ab OTHER_CHECKOUT] [--steps 60] [--pairs 3]

Each run trains the demo's configuration (posedata.demo.train_config, the demo's seed) for
--steps steps and times steps 11 to --steps from the step events (wall and the process's CPU
time, every thread): the first steps pay one-off costs. The variants are this checkout at each
--threads count and, with --ab, the other checkout (e.g. `git worktree add /tmp/old COMMIT`) at
the same counts. The last loss is printed too: variants with equal arithmetic print equal losses.
The demo's training data is made once (synth + convert, ~30 s) in --data, kept for later runs.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(data: Path, out: Path, threads: int, steps: int) -> None:
    """One timed run (in its own process, with the checkout's code first on sys.path)."""
    from posedata import demo
    from trainer.train import train

    plan = demo.DemoPlan(iterations=steps, threads=threads, checkpoint_every=10**6)
    paths = demo.DemoPaths(data)
    sk = demo.skeleton(plan)
    cfg = demo.train_config(plan, paths, sk)
    cfg.output = str(out)
    marks: dict[int, tuple[float, float, float]] = {}

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def on(event: str, info: dict) -> None:
        if event == "step" and info["iteration"] in (10, steps):
            marks[info["iteration"]] = (time.perf_counter(), cpu(), info["loss"])

    train(cfg, sk, callback=on)
    (t0, c0, _), (t1, c1, loss) = marks[10], marks[steps]
    n = steps - 10
    print(json.dumps({"wall": (t1 - t0) / n, "cpu": (c1 - c0) / n, "loss": loss}))


def make_data(data: Path) -> None:
    from posedata import demo

    plan = demo.make_plan()
    paths = demo.DemoPaths(data)
    sk = demo.skeleton(plan)
    print(f"making the demo's training data in {data} ...", flush=True)
    demo.synth_step(plan, paths, sk)
    demo.convert_step(paths, sk)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1", help="torch thread counts to compare, comma-separated")
    ap.add_argument("--ab", type=Path, metavar="CHECKOUT", help="also time another checkout, alternating")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--pairs", type=int, default=3, help="rounds; each runs every variant once, order alternating")
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "bench-demo-steps-data")
    ap.add_argument("--child", nargs=3, metavar=("DATA", "OUT", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(Path(args.child[0]), Path(args.child[1]), int(args.child[2]), args.steps)
    sys.path.insert(0, str(ROOT))
    if not (args.data / "train_labels.npz").is_file():
        make_data(args.data)
    checkouts = [("this", ROOT)] + ([("other", args.ab.resolve())] if args.ab else [])
    variants = [(name, root, int(t)) for name, root in checkouts for t in args.threads.split(",")]
    times: dict[str, list[dict]] = {f"{n} {t} thread(s)": [] for n, _, t in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            for name, root, t in (variants if i % 2 == 0 else variants[::-1]):
                env = {**os.environ, "PYTHONPATH": str(root)}
                load = os.getloadavg()[0]
                r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--steps", str(args.steps), "--child",
                                    str(args.data), str(Path(tmp) / "run"), str(t)],
                                   env=env, cwd=root, capture_output=True, text=True, check=True)
                row = json.loads(r.stdout.strip().splitlines()[-1])
                row["load"] = load
                times[f"{name} {t} thread(s)"].append(row)
                print(f"round {i + 1} {name} ({root}), {t} thread(s): {row['wall'] * 1000:.0f} ms wall, "
                      f"{row['cpu'] * 1000:.0f} ms CPU per step; last loss {row['loss']:.6f}; load {load:.2f}",
                      flush=True)
    print("\nmedians (ms per step):")
    for key, rows in times.items():
        print(f"  {key}: wall {statistics.median(r['wall'] for r in rows) * 1000:.0f}, "
              f"CPU {statistics.median(r['cpu'] for r in rows) * 1000:.0f} "
              f"(load {min(r['load'] for r in rows):.1f}-{max(r['load'] for r in rows):.1f})")


if __name__ == "__main__":
    main()
