"""Every command whose figures bench/README.md quotes, run as the README ran it (`make bench`), or
on small inputs to check that each one still runs (`make bench-quick`: its numbers are not the
README's). Each script runs in its own process, one after the other; its output (stdout and
stderr) goes to OUT/<name>.txt as it runs, and OUT/summary.txt lists per script the command, exit
status, wall time and the 1-minute load average before and after (the README states the load of
every figure). MANUAL lists the commands the README quotes that `make bench` does not run, and
why; tests/test_bench_commands.py checks that every `bench/...py` command quoted in bench/README.md
and README.md is in the full list or in MANUAL, and that the README quotes every one of them.

Run: .venv/bin/python bench/run_all.py [--quick] [--only NAME,NAME] [-o bench-out]

Full run: hours on the shared 2-core machine (the demo alone trains 3600 steps: about 9 min with no
other job, 22 min at load 4-6; convert generates 134 + 268 MB COCO files into OUT/convert-data,
kept for a rerun; validate generates 102 MB); the quick run took the time bench/README.md states.
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


# Commands bench/README.md quotes that `make bench` does not run (argument values that are paths
# are written as the README writes them; see command_key), each with the reason.
MANUAL = {
    "bench_convert.py --growth 4":
        "the first table of `bench_convert.py --growth 4 --prime-mb 2048`, which `make bench` runs: the "
        "same alternated pairs, without the equalised condition",
    "bench_synth.py --ab CHECKOUT --pairs 4":
        "compares this checkout with another one (`git worktree add /tmp/synth-old COMMIT`): an A/B "
        "against a chosen older commit, not a figure of the current code",
    "bench_grouping.py --ab OTHER_GROUPING_PY":
        "times another version of grouping (a git revision, or a grouping.py file) against the "
        "current one: an A/B against a chosen older commit",
    "bench_grouping.py --ab OTHER_GROUPING_PY --rounds 151":
        "the same A/B with 151 rounds (stops 23 and 24: changes against the code before them, under load): not a "
        "figure of the current code alone",
    "bench_grouping.py --ab OTHER_GROUPING_PY --part peaks --rounds 151":
        "the same A/B of the peak search alone (stop 25: a change to posedata/peaks.py against the code "
        "before it): not a figure of the current code alone",
    "bench_grouping.py --ab OTHER_GROUPING_PY --part scoring --rounds 151":
        "the A/B of scoring + assembly alone (group with the peaks given; stop 25): a change against the "
        "code before it, not a figure of the current code alone",
    "bench_grouping.py --compare OTHER_GROUPING_PY":
        "checks that another version of grouping (a git revision) returns the same arrays as the "
        "current one on 300 random inputs: a check of a change, no figure",
    "bench_demo_steps.py --ab CHECKOUT --threads 1,2 --pairs 2 --steps 50":
        "compares this checkout with another one (`git archive COMMIT | tar -x -C /tmp/demo-old`): an A/B "
        "against a chosen older commit, not a figure of the current code",
    "demo_inference.py CHECKPOINT":
        "needs the 3600-step checkpoint of the demo's earlier settings (historical: it chose the "
        "demo's inference settings; `posedata demo` writes today's checkpoint to demo-out/run/last.pt)",
    "bench_infer.py --jobs --rounds 3 --sizes 1,4,9":
        "historical whole-job tables (stop 22 and stop 23, before the ONNX graph cache); `make bench` "
        "runs the current one with sizes 1,2,4,9,16 and the cache cold and warm",
    "bench_infer.py --jobs --rounds 5 --sizes 4,9,16":
        "a second run of the crossover's sizes at stop 24 (5 rounds), beside the --rounds 3 table "
        "`make bench` reproduces",
    "bench_infer.py --jobs --rounds 5 --sizes 6,9,12,16":
        "the cold cache's crossover sizes with 5 rounds (stop 24's quiet re-measure), beside the "
        "--rounds 3 table `make bench` reproduces",
    "bench_infer.py --jobs --rounds 5 --sizes 1,4,9":
        "historical whole-job table (11:06, code of commit 5f5facf); `make bench` runs the current "
        "one with --rounds 3",
}

_OUTPUT_OPTIONS = ("-o", "--output", "--data")  # where results or cached inputs go: not the figures
_OTHER_CODE = {"--ab": "OTHER", "--compare": "OTHER"}  # another checkout or module: the README names it by a placeholder


def command_key(script: str, args: list[str]) -> tuple[str, ...]:
    """A command as compared with the README's: the script's file name and its arguments, without
    the output and cache locations (they do not change a figure), and with --ab's path replaced by
    one placeholder (the README writes the one it used, or CHECKOUT / OTHER_GROUPING_PY)."""
    out: list[str] = [Path(script).name]
    it = iter(args)
    for a in it:
        if a in _OUTPUT_OPTIONS:
            next(it, None)
        elif a in _OTHER_CODE:
            next(it, None)
            out += [a, _OTHER_CODE[a]]
        else:
            out.append(a)
    return tuple(out)


def scripts(out: Path, quick: bool) -> list[tuple[str, str, list[str]]]:
    """(name, script, arguments) in README order; quick: small inputs, same code paths."""
    data = ["--data", str(out / "convert-data")]  # --headline and --growth share the generated files
    full = [
        ("formats", "bench_formats.py", []),
        ("import", "bench_import.py", []),
        ("validate", "bench_validate.py", []),
        # the README's targets and grouping figures are ranges over 4 and 3 runs back to back
        *[(f"targets{'' if i == 1 else f'-{i}'}", "bench_targets.py", []) for i in range(1, 5)],
        ("augment", "bench_augment.py", []),
        ("synth", "bench_synth.py", []),
        *[(f"learnability-{s}", "synth_learnability.py",
           ["--skeleton", s, "--no-train", "--val-images", "150", "-o", str(out / f"learn-{s}")])
          for s in ("object5", "quadruped17", "coco17", "hand21")],
        *[(f"grouping{'' if i == 1 else f'-{i}'}", "bench_grouping.py", []) for i in range(1, 4)],
        ("convert-headline", "bench_convert.py", ["--headline", "3", *data]),
        # both conditions: as alternated (the plain --growth 4 table) and with the memory state equalised
        ("convert-growth", "bench_convert.py", ["--growth", "4", "--prime-mb", "2048", *data]),
        ("convert-write", "bench_convert.py", ["--write-chunks", "4", *data]),
        ("train", "bench_train.py", []),
        ("train-sizes", "bench_train_sizes.py", ["--steps", "4"]),
        ("demo", "bench_demo.py", ["-o", str(out / "demo")]),
        ("demo-steps", "bench_demo_steps.py", ["--threads", "1,2", "--pairs", "2", "--data", str(out / "demo-steps-data")]),
        ("infer", "bench_infer.py", ["--rounds", "3"]),
        ("infer-1-thread", "bench_infer.py", ["--rounds", "3", "--threads", "1"]),
        ("infer-jobs", "bench_infer.py", ["--jobs", "--rounds", "3", "--sizes", "1,2,4,9,16"]),
        ("infer-startup", "bench_infer.py", ["--startup", "--rounds", "3"]),
        ("val", "bench_val.py", []),
        ("val-forward", "bench_val.py", ["--forward-rounds", "3"]),
        ("flipcheck", "bench_flipcheck.py", ["--reps", "300", "--wrong-reps", "200"]),
        ("flipcheck-verdict", "bench_flipcheck.py", ["--part", "verdict", "--verdict-reps", "40",
                                                     "--verdict-sizes", "2", "10", "50", "100"]),
        ("flipcheck-verdict-openpose18", "bench_flipcheck.py", ["--part", "verdict", "--maps", "openpose18",
                                                                "--verdict-reps", "200", "--verdict-sizes",
                                                                "20", "30", "50"]),
        ("swaps", "bench_swaps.py", ["--reps", "300", "--swap-reps", "100"]),
        ("refusals", "bench_refusals.py", []),
    ]
    if not quick:
        return full
    small_convert = ["--images", "5000", "--annotations", "13000", *data]
    small = {
        "formats": ["--frames", "200"],
        "import": ["--images", "200"],
        "validate": ["--images", "5700", "--annotations", "15000"],
        "targets": ["--quick"],
        "augment": ["--quick"],
        "synth": ["--images", "40"],
        "grouping": ["--quick"],
        "convert-headline": ["--headline", "1", *small_convert],
        "convert-growth": ["--growth", "1", "--prime-mb", "256", *small_convert],
        "convert-write": ["--write-chunks", "1", *small_convert],
        "train": ["--quick"],
        "train-sizes": ["--quick", "--steps", "3"],
        "demo": ["-o", str(out / "demo-quick"), "--steps", "20"],
        "demo-steps": ["--threads", "1,2", "--steps", "14", "--pairs", "1", "--data", str(out / "demo-steps-data")],
        "infer": ["--quick"],
        "infer-1-thread": ["--quick", "--threads", "1"],
        "infer-jobs": ["--jobs", "--rounds", "1", "--sizes", "1"],
        "infer-startup": ["--startup", "--rounds", "1"],
        "val": ["--images", "8"],
        "flipcheck": ["--reps", "10", "--sizes", "2", "50", "--wrong-reps", "40", "--wrong-sizes", "50",
                      "--maps", "knee<->ankle"],
        "flipcheck-verdict": ["--part", "verdict", "--verdict-reps", "2", "--verdict-sizes", "2", "50"],
        "flipcheck-verdict-openpose18": ["--part", "verdict", "--maps", "openpose18", "--verdict-reps", "2",
                                         "--verdict-sizes", "20"],
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
        rows.append(f"{name:28} exit {rc:3}  {dt:8.1f} s  load {l0:5.1f} -> {l1:5.1f}  {shown}")
        print(f"   exit {rc}, {dt:.1f} s, load {l0:.1f} -> {l1:.1f}; output {out / (name + '.txt')}", flush=True)
        if rc != 0:
            failed.append(name)
    total = time.perf_counter() - start
    rows.append(f"{'total':28} {'':8}  {total:8.1f} s  ({'quick' if args.quick else 'full'} run)")
    (out / "summary.txt").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
