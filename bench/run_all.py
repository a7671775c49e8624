"""Every script whose figures bench/README.md quotes, run as the README ran it (`make bench`), or
on small inputs to check that each one still runs (`make bench-quick`: its numbers are not the
README's). Each script runs in its own process, one after the other; its output (stdout and
stderr) goes to OUT/<name>.txt as it runs, and OUT/summary.txt lists per script the command, exit
status, wall time and the 1-minute load average before and after (the README states the load of
every figure).

Run: .venv/bin/python bench/run_all.py [--quick] [--only NAME,NAME] [-o bench-out]

Full run: hours on the shared 2-core machine (the demo alone trains 3600 steps: 10-40 min; convert
and validate generate 100-270 MB files); the quick run took the time bench/README.md states.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def scripts(out: Path, quick: bool) -> list[tuple[str, str, list[str]]]:
    """(name, script, arguments) in README order; quick: small inputs, same code paths."""
    full = [
        ("formats", "bench_formats.py", []),
        ("import", "bench_import.py", []),
        ("validate", "bench_validate.py", []),
        ("targets", "bench_targets.py", []),
        ("augment", "bench_augment.py", []),
        ("synth", "bench_synth.py", []),
        *[(f"learnability-{s}", "synth_learnability.py", ["--skeleton", s, "--no-train", "-o", str(out / f"learn-{s}")])
          for s in ("object5", "quadruped17", "coco17", "hand21")],
        ("grouping", "bench_grouping.py", []),
        ("convert-headline", "bench_convert.py", ["--headline", "3"]),
        ("convert", "bench_convert.py", []),
        ("train", "bench_train.py", []),
        ("demo", "bench_demo.py", ["-o", str(out / "demo")]),
        ("infer", "bench_infer.py", []),
        ("infer-1-thread", "bench_infer.py", ["--rounds", "3", "--threads", "1"]),
        ("val", "bench_val.py", []),
        ("val-forward", "bench_val.py", ["--forward-rounds", "3"]),
        ("flipcheck", "bench_flipcheck.py", ["--reps", "300", "--wrong-reps", "200"]),
        ("flipcheck-verdict", "bench_flipcheck.py", ["--part", "verdict", "--verdict-reps", "40",
                                                     "--verdict-sizes", "2", "10", "50", "100"]),
        ("swaps", "bench_swaps.py", ["--reps", "300", "--swap-reps", "100"]),
        ("refusals", "bench_refusals.py", []),
    ]
    if not quick:
        return full
    small = {
        "formats": ["--frames", "200"],
        "import": ["--images", "200"],
        "validate": ["--images", "5700", "--annotations", "15000"],
        "targets": ["--quick"],
        "augment": ["--quick"],
        "synth": ["--images", "40"],
        "grouping": ["--quick"],
        "convert": ["--images", "5000", "--annotations", "13000"],
        "train": ["--quick"],
        "demo": ["-o", str(out / "demo-quick"), "--steps", "20"],
        "infer": ["--quick"],
        "infer-1-thread": ["--quick", "--threads", "1"],
        "val": ["--images", "8"],
        "flipcheck": ["--reps", "10", "--sizes", "2", "50", "--wrong-reps", "40", "--wrong-sizes", "50",
                      "--maps", "knee<->ankle"],
        "flipcheck-verdict": ["--part", "verdict", "--verdict-reps", "2", "--verdict-sizes", "2", "50"],
        "swaps": ["--reps", "10", "--swap-reps", "10"],
        "val-forward": ["--images", "4", "--forward-rounds", "1"],
        "refusals": [],
        "learnability-object5": ["--skeleton", "object5", "--no-train", "--val-images", "30",
                                 "-o", str(out / "learn-object5")],
    }
    return [(n, s, small[n]) for n, s, _a in full if n in small]


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated names (see OUT/summary.txt)")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "bench-out")
    args = ap.parse_args()
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    todo = scripts(out, args.quick)
    if args.only:
        names = set(args.only.split(","))
        todo = [t for t in todo if t[0] in names]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    rows, failed = [], []
    start = time.perf_counter()
    for name, script, extra in todo:
        cmd = [sys.executable, str(HERE / script), *extra]
        shown = " ".join(["bench/" + script, *extra])
        print(f"== {name}: {shown}", flush=True)
        l0, t0 = load(), time.perf_counter()
        with open(out / f"{name}.txt", "w") as log:
            rc = subprocess.call(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        dt, l1 = time.perf_counter() - t0, load()
        rows.append(f"{name:24} exit {rc:3}  {dt:8.1f} s  load {l0:5.1f} -> {l1:5.1f}  {shown}")
        print(f"   exit {rc}, {dt:.1f} s, load {l0:.1f} -> {l1:.1f}; output {out / (name + '.txt')}", flush=True)
        if rc != 0:
            failed.append(name)
    total = time.perf_counter() - start
    rows.append(f"{'total':24} {'':8}  {total:8.1f} s  ({'quick' if args.quick else 'full'} run)")
    (out / "summary.txt").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
