"""`posedata infer`'s per-image work (decode, network, resizes, peaks, grouping; drawing and
writing off) against the reference's single-scale inference code path on the same network, for the
torch and the ONNX Runtime backends: images/s, wall and CPU, alternating rounds, medians.

Run: .venv/bin/python bench/bench_infer.py [--rounds 5] [--width 1.0] [--checkpoint FILE] [--threads N] [--quick]
     .venv/bin/python bench/bench_infer.py --jobs [--rounds 3] [--sizes 1,2,4,9] [--checkpoint FILE] [--threads N]

Photos: the 9 real person photos of ../shared/data/real (coco 4, crowdpose 2, aic 3; 333-641 px
high, 500-950 wide). Network: openpose18 heads, 1 refinement stage, width 1.0 (the reference
network), seed-0 initial weights unless --checkpoint gives trained ones (a posedata or a
reference-layout checkpoint, e.g. the reference's COCO weights). Initial weights find almost no
peaks, so grouping costs little here; bench_grouping.py times grouping on its own.

Reference path (tests/test_predict.py ref_infer, a port of the reference's val.py `infer` at one
scale, and tests/test_grouping.py ref_evaluate, the port of extract_keypoints + group_keypoints):
cv2.imread, normalise, cubic resize to height 368, pad to the stride, torch forward (under
no_grad: the reference records autograd, which would only slow it), x8 cubic upsample of heatmaps
and of PAFs, padding cut, cubic resize to the image size, peaks per channel, grouping.
posedata path: what `posedata infer` runs per image (posedata.images.read_image, trainer.predict.
detect) with --backend torch (the network as evaluate runs it: trainer.predict.prepare, BatchNorm
folded, channels-last), and with --backend onnx (the same weights exported in memory, run by an
ONNX Runtime session as infer makes it). All see the same thread policy (passive OpenMP waiting;
--threads N as `posedata infer --threads N` sets it, else each runtime's default). Ratios are
taken per round (the three paths run back to back in each round, in rotating order), then the
median over rounds.

--jobs: `posedata infer FOLDER --backend torch` and `--backend onnx` as users run them (a fresh
process each: interpreter, imports, checkpoint, the backend's start-up, every image, drawing and
writing), on folders of the first 1, 2, 4 and 9 photos, alternating backends, wall time and the
child's CPU time (rusage), medians over rounds; and the backend `--backend auto` picks for that
folder (trainer.predict.choose_backend, the function the command calls). The network is a
width-1.0 seed-0 openpose18 checkpoint trained "at" 368 unless --checkpoint gives one.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import trainer  # noqa: E402,F401  (the thread policy, before torch loads)

REAL = ROOT.parent / "shared" / "data" / "real"
PHOTOS = ("coco", "crowdpose", "aic")


def photos() -> list[Path]:
    out = [p for d in PHOTOS for p in sorted((REAL / d).glob("*.jpg"))]
    if not out:
        sys.exit(f"no photos under {REAL}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads [default: theirs]")
    ap.add_argument("--quick", action="store_true", help="2 rounds, 3 photos")
    ap.add_argument("--jobs", action="store_true", help="whole `posedata infer` runs per backend and folder size")
    ap.add_argument("--sizes", default="1,2,4,9", help="--jobs: folder sizes (photos)")
    ap.add_argument("--startup", action="store_true", help="the start-up's phases per backend and cache state")
    ap.add_argument("--startup-child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.startup_child:
        startup_child(args.startup_child, args.checkpoint)
        return
    if args.startup:
        startup(args)
        return
    if args.jobs:
        jobs(args)
        return
    from trainer.threads import apply_thread_policy

    apply_thread_policy(args.threads)  # as `posedata infer --threads` does, before any session is made

    import cv2
    import numpy as np
    import torch
    from test_grouping import ref_evaluate
    from test_predict import ref_infer

    from posedata import skeleton as S
    from posedata.images import read_image
    from trainer import predict as P
    from trainer.export_onnx import onnx_model_from_torch
    from trainer.model import for_skeleton

    sk = S.resolve("openpose18")
    if args.checkpoint:
        net = P.load_model(args.checkpoint, sk, backend="torch").model
    else:
        torch.manual_seed(0)
        net = for_skeleton(sk, stages=1, width=args.width).eval()
    onnx_net = onnx_model_from_torch(net)
    files = photos()[:3] if args.quick else photos()
    rounds = 2 if args.quick else args.rounds

    def reference(path: Path) -> int:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        heat, pafs = ref_infer(net, img)
        (entries, _all_kp), _ = ref_evaluate(heat, pafs)  # its own (H, W, C) maps, as val.py
        return len(entries)

    def ours(model):
        def run(path: Path) -> int:
            return len(P.detect(model, read_image(path), sk, 368))
        return run

    # the reference runs the plain network; infer runs what evaluate hands it (P.prepare)
    paths = {"reference": reference, "posedata torch": ours(P.prepare(net)), "posedata onnx": ours(onnx_net)}
    for fn in paths.values():  # warm-up (allocators, ONNX Runtime's first run)
        fn(files[0])
    found = {k: [fn(p) for p in files] for k, fn in paths.items()}
    names = list(paths)
    per_round: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
    for r in range(rounds):
        for k in names[r % 3:] + names[:r % 3]:
            w0, c0 = time.perf_counter(), time.process_time()
            for p in files:
                paths[k](p)
            w1, c1 = time.perf_counter(), time.process_time()
            per_round[k].append((len(files) / (w1 - w0), len(files) / (c1 - c0)))
    print(f"{len(files)} photos, openpose18, width {args.width}, input 368, torch threads {torch.get_num_threads()}, "
          f"--threads {args.threads}, "
          f"{rounds} rounds; instances found per path: " + ", ".join(f"{k} {sum(v)}" for k, v in found.items()))
    print(f"{'path':16} {'images/s wall':>14} {'images/s CPU':>13} {'x ref wall':>11} {'x ref CPU':>10}")
    for k in names:
        wall = statistics.median(v[0] for v in per_round[k])
        cpu = statistics.median(v[1] for v in per_round[k])
        rw = statistics.median(a[0] / b[0] for a, b in zip(per_round[k], per_round["reference"], strict=True))
        rc = statistics.median(a[1] / b[1] for a, b in zip(per_round[k], per_round["reference"], strict=True))
        print(f"{k:16} {wall:14.2f} {cpu:13.2f} {rw:11.2f} {rc:10.2f}")
    _ = np


def _checkpoint(folder: Path, width: float) -> Path:
    """A seed-0 openpose18 network (1 refinement stage) saved as a posedata checkpoint trained at 368."""
    import torch

    from posedata import skeleton as S
    from trainer import checkpoint as C
    from trainer.model import for_skeleton

    sk = S.resolve("openpose18")
    torch.manual_seed(0)
    net = for_skeleton(sk, stages=1, width=width)
    path = folder / "net.pt"
    C.save(C.training_checkpoint(net, net.spec.to_dict(), sk.to_dict(), sk.fingerprint, config={"input_size": 368}),
           path)
    return path


def _folders(tmp_path: Path, sizes: list[int]) -> dict[int, Path]:
    """Folders of the first n photos (beyond the 9, the photos again under new names)."""
    files = photos()
    folders = {}
    for n in sizes:
        folders[n] = tmp_path / f"photos{n}"
        folders[n].mkdir()
        for i in range(n):
            p = files[i % len(files)]
            (folders[n] / (p.name if i < len(files) else f"{i // len(files)}-{p.name}")).symlink_to(p)
    return folders


# --jobs' variants: torch; ONNX Runtime with an empty graph cache (the first job on a checkpoint:
# it builds and caches the graph); ONNX Runtime with the graph cached by an earlier job.
VARIANTS = ("torch", "onnx cold", "onnx warm")


def jobs(args: argparse.Namespace) -> None:
    import os
    import resource
    import subprocess
    import tempfile

    from trainer.predict import choose_backend

    sizes = [int(v) for v in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        ckpt = args.checkpoint or _checkpoint(tmp_path, args.width)
        folders = _folders(tmp_path, sizes)
        warm_cache = tmp_path / "cache-warm"
        counter = iter(range(1 << 30))

        def run(n: int, variant: str) -> tuple[float, float]:
            # a fresh cache per cold job; the warm one filled by the warm-up job below
            cache = warm_cache if variant == "onnx warm" else tmp_path / f"cache-cold-{next(counter)}"
            env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(cache))
            env.pop("POSEDATA_ONNX_CACHE", None)
            cmd = [sys.executable, "-m", "posedata.cli", "infer", str(folders[n]), "--checkpoint", str(ckpt),
                   "-o", str(tmp_path / "out"), "--force", "--backend", variant.split()[0]]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            w0 = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - w0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode != 0:
                sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
            return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

        run(min(sizes), "onnx warm")  # fills the warm cache
        times: dict[tuple[int, str], list[tuple[float, float]]] = {(n, v): [] for n in sizes for v in VARIANTS}
        for r in range(args.rounds):
            for n in sizes:
                for v in VARIANTS[r % 3:] + VARIANTS[:r % 3]:
                    times[n, v].append(run(n, v))
        picks = {}
        for n in sizes:
            os.environ["XDG_CACHE_HOME"] = str(tmp_path / "cache-empty")
            cold = choose_backend("auto", Path(ckpt), "auto", n)[0]
            os.environ["XDG_CACHE_HOME"] = str(warm_cache)
            picks[n] = f"{cold} / {choose_backend('auto', Path(ckpt), 'auto', n)[0]}"
    print(f"`posedata infer FOLDER --backend B` per folder size, {args.rounds} rounds, width {args.width}, "
          f"--threads {args.threads}; seconds per job, medians; cold: an empty ONNX graph cache, warm: the graph "
          f"cached by an earlier job; differences: medians of per-round differences with torch")
    print(f"{'photos':>6} {'torch':>6} {'cold':>6} {'warm':>6} {'cold-t':>7} {'warm-t':>7}  |  {'torch':>6} {'cold':>6} "
          f"{'warm':>6} {'cold-t':>7} {'warm-t':>7}  auto picks (cold / warm)")
    print(f"{'':6} {'wall s':^36}  |  {'CPU s':^36}")
    for n in sizes:
        row = []
        for i in (0, 1):
            t, c, w = (times[n, v] for v in VARIANTS)
            row += [statistics.median(x[i] for x in t), statistics.median(x[i] for x in c),
                    statistics.median(x[i] for x in w)]
            row += [statistics.median(b[i] - a[i] for a, b in zip(t, c, strict=True)),
                    statistics.median(b[i] - a[i] for a, b in zip(t, w, strict=True))]
        print(f"{n:6d} {row[0]:6.2f} {row[1]:6.2f} {row[2]:6.2f} {row[3]:+7.2f} {row[4]:+7.2f}  |  {row[5]:6.2f} "
              f"{row[6]:6.2f} {row[7]:6.2f} {row[8]:+7.2f} {row[9]:+7.2f}  {picks[n]}")


def startup_child(variant: str, ckpt: Path) -> None:
    """One job's start-up in phases, in this fresh process, as `posedata infer --backend B` runs
    them (load_for_inference, then trainer.predict.load_model's steps for the backend; the cache
    location is the parent's XDG_CACHE_HOME); prints JSON [(phase, wall s, CPU s)]. torch also
    times what `--backend auto` adds when it picks torch (cache_onnx_graph), apart from the sum."""
    import json

    marks = [("interpreter (start, exit), bench imports", None, time.process_time())]
    w0 = time.perf_counter()

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter(), time.process_time()))

    import posedata.cli  # noqa: F401
    from trainer import evaluate as E  # noqa: F401
    mark("import posedata.cli, trainer.evaluate")
    from posedata import skeleton as S
    from trainer import onnx_cache
    from trainer import predict as P
    from trainer.threads import apply_thread_policy

    apply_thread_policy(None, torch_threads=False)
    P.choose_backend(variant.split()[0], ckpt, "auto", 1)  # given: `auto`'s look at the cache is timed below
    mark("choose_backend (given)")
    if variant == "torch" or variant == "onnx cold":
        import torch  # noqa: F401
        mark("import torch")
        model, _desc, sk, _size, stored = P._checkpoint_model(ckpt, None, "cpu")
        mark("read checkpoint, build network")
    if variant == "torch":
        net = P.prepare(model)
        mark("fold BatchNorm, channels-last (prepare)")
        from trainer.loaded import LoadedModel

        source = {"path": ckpt, "skeleton": None, "state": onnx_cache.file_state(ckpt), "stored": stored,
                  "description": ""}
        P.cache_onnx_graph(LoadedModel(model, "", sk, None, "torch", source))
        mark("auto only: cache the ONNX graph")
    else:
        import onnxruntime  # noqa: F401

        from trainer.export_onnx import OnnxModel, _onnx_bytes, _session
        mark("import onnxruntime")
        key = onnx_cache.key_of(ckpt, None)  # what `auto` also does to look at the cache
        mark("hash checkpoint (cache key)")
        if variant == "onnx cold":
            data = _onnx_bytes(model.eval(), onnx_cache.OPSET, meta=onnx_cache.entry_metadata(key, "", None, stored),
                               fold_in_place=True)
            mark("write ONNX graph (fold + serialise)")
            session = _session(data)
            mark("InferenceSession")
            onnx_cache.store(key, data)
            mark("store in cache")
        else:
            session, entry = onnx_cache.lookup(key, _session)
            sk = S.from_dict(entry.skeleton)
            mark("read cached graph, InferenceSession")
        net = OnnxModel(session)
    for i, path in enumerate(photos()[:3]):
        P.detect(net, P.read_image(path), sk, 368)
        mark(f"photo {i + 1} (decode, network, grouping)")
    out, prev_w, prev_c = [], w0, marks[0][2]
    out.append((marks[0][0], None, marks[0][2]))
    for name, w, c in marks[1:]:
        out.append((name, w - prev_w, c - prev_c))
        prev_w, prev_c = w, c
    print(json.dumps(out))


def startup(args: argparse.Namespace) -> None:
    """--startup: each variant's start-up phases in fresh processes, alternating, medians."""
    import json
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        ckpt = args.checkpoint or _checkpoint(tmp_path, args.width)
        counter = iter(range(1 << 30))

        def run(variant: str, fill_warm: bool = False) -> list:
            warm = variant == "onnx warm" or fill_warm
            cache = tmp_path / ("cache-warm" if warm else f"cache-{next(counter)}")
            env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(cache))
            env.pop("POSEDATA_ONNX_CACHE", None)
            w0 = time.perf_counter()
            done = subprocess.run([sys.executable, str(HERE / "bench_infer.py"), "--startup-child", variant,
                                   "--checkpoint", str(ckpt)], env=env, capture_output=True, text=True)
            wall = time.perf_counter() - w0
            if done.returncode != 0:
                sys.exit(f"--startup-child {variant} failed:\n{done.stdout}{done.stderr}")
            phases = json.loads(done.stdout.strip().splitlines()[-1])
            return [(phases[0][0], wall - sum(p[1] for p in phases[1:]), phases[0][2]), *phases[1:]]

        run("onnx cold", fill_warm=True)  # a cold start on the warm cache fills it
        got: dict[str, list[list]] = {v: [] for v in VARIANTS}
        for r in range(args.rounds):
            for v in VARIANTS[r % 3:] + VARIANTS[:r % 3]:
                got[v].append(run(v))
    print(f"start-up phases of `posedata infer --backend B` (fresh processes, {args.rounds} rounds, width "
          f"{args.width}; medians, seconds; interpreter wall: the process's wall time less the timed phases)")
    for v in VARIANTS:
        print(f"-- {v}")
        rounds = got[v]
        for i, (name, _w, _c) in enumerate(rounds[0]):
            wall = statistics.median(r[i][1] for r in rounds)
            cpu = statistics.median(r[i][2] for r in rounds)
            print(f"   {name:48} wall {wall:6.3f}  CPU {cpu:6.3f}")
        before = [r for r in range(len(rounds[0])) if not rounds[0][r][0].startswith(("photo", "auto only"))]
        print(f"   {'before the first photo':48} wall {statistics.median(sum(x[i][1] for i in before) for x in rounds):6.3f}"
              f"  CPU {statistics.median(sum(x[i][2] for i in before) for x in rounds):6.3f}")


if __name__ == "__main__":
    main()
