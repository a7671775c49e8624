"""The demo's bar (issue 13 item 7): the default `posedata demo` reaches held-out AP >= 0.6 (OKS
with silhouette areas) and would finish within 10 minutes on 2 idle cores. Runs the demo in this
process and prints its figures (from the run's summary.json) against the bar, with the machine's
load and the CPU time it used.

    .venv/bin/python bench/bench_demo.py -o /tmp/demo-bench [--steps N]

Also writes DIR/bench.json (steps, wall and CPU s/step, wall minutes, AP, the load average at the
start, during training and at the end) and prints the row for bench/README.md's "demo" table.

The training length is a number of steps, so AP does not depend on the machine's load; wall time
does. On a shared machine the idle wall time is bounded from CPU time: at most the process's whole CPU
time (no gain from a second thread), at least its CPU time outside training (synth, validate,
preview, flipcheck, val: mostly one thread) plus the training's CPU time divided by the threads
that work during training (torch's plus the data thread that makes the next batch meanwhile,
trainer.data.Prefetch, at most the cores): perfect overlap. CPU
time measured under load runs high (shared caches), so both bounds err long.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from posedata.cli import cli  # noqa: E402

BAR_MINUTES = 10.0
BAR_AP = 0.6


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=None)
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), cpu_seconds()
    argv = ["demo", "-o", str(args.output), "--force"] + (["--steps", str(args.steps)] if args.steps else [])
    try:
        cli.main(argv, standalone_mode=False)
    except SystemExit as e:  # pragma: no cover - the demo failed; its message is above
        raise SystemExit(e.code) from None
    wall, cpu = (time.perf_counter() - t0) / 60, (cpu_seconds() - c0) / 60
    s = json.loads((args.output / "summary.json").read_text(encoding="utf-8"))
    la = s["load_average"]
    threads = s["threads"] or 1
    train_cpu = s["cpu_seconds_per_step"] * s["iterations"] / 60
    lanes = min(threads + 1, os.cpu_count() or 1)  # torch's threads and the data thread beside them
    idle_low = (cpu - train_cpu) + train_cpu / lanes
    print(f"\nbench_demo: AP {s['AP']:.3f} (bar {BAR_AP}: x{s['AP'] / BAR_AP:.2f}), AP50 {s['AP50']:.3f}, "
          f"AP75 {s['AP75']:.3f}, AR {s['AR']:.3f}")
    print(f"  {s['iterations']} steps of {s['plan']['batch_size']} on {threads} thread(s): "
          f"{s['cpu_seconds_per_step']:.3f} CPU s/step; training {s['train_minutes']:.2f} min wall, "
          f"{train_cpu:.2f} min CPU")
    print(f"  wall {wall:.2f} min here; CPU {cpu:.2f} min; on {lanes} idle core(s) between {idle_low:.2f} and "
          f"{cpu:.2f} min (bar {BAR_MINUTES:g})")
    load1 = os.getloadavg()[0]
    print(f"  load average (1 min): {load0:.2f} at start, training mean {la['train_mean']} / max {la['train_max']}, "
          f"{load1:.2f} at the end; {s['machine']['cpus']} CPUs")
    wall_step = s["train_minutes"] * 60 / max(s["iterations"], 1)
    record = {"time": time.strftime("%Y-%m-%d %H:%M"), "steps": s["iterations"], "s_per_step": round(wall_step, 4),
              "cpu_s_per_step": s["cpu_seconds_per_step"], "threads": threads, "wall_min": round(wall, 2),
              "cpu_min": round(cpu, 2), "idle_bounds_min": [round(idle_low, 2), round(cpu, 2)], "AP": s["AP"],
              "AP50": s["AP50"], "AP75": s["AP75"], "AR": s["AR"], "val": s["plan"].get("val_input_size"),
              "load_start": round(load0, 2), "load_train_mean": la["train_mean"], "load_train_max": la["train_max"],
              "load_end": round(load1, 2)}
    (args.output / "bench.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    # the row bench/README.md's "demo" table takes
    print(f"| {record['time']} | **{s['AP']:.3f}** | {s['AP50']:.3f} | {s['AP75']:.3f} | {s['AR']:.3f} | "
          f"{record['steps']} | {wall_step:.3f} s ({s['cpu_seconds_per_step']:.3f} CPU) | {wall:.1f} min | "
          f"{idle_low:.1f}-{cpu:.1f} min | {load0:.1f} / {la['train_mean']} / {load1:.1f} | {threads} |")


if __name__ == "__main__":
    main()
