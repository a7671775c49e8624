"""Benchmark `posedata convert` against the reference's label step at COCO-train scale.

    .venv/bin/python bench/bench_convert.py                 # 57k images, 150k annotations
    .venv/bin/python bench/bench_convert.py --images 5000 --annotations 13000   # quick
    .venv/bin/python bench/bench_convert.py --headline 3    # the README's figure: the CLI vs the reference
    .venv/bin/python bench/bench_convert.py --growth 4      # 150k vs 300k annotations, per phase
    .venv/bin/python bench/bench_convert.py --growth 4 --prime-mb 2048   # and with the memory state equalised
    .venv/bin/python bench/bench_convert.py --write-chunks 4   # the label file's write: plain, streamed
    (--data DIR keeps the generated files there and reuses them; generating both takes minutes)

A synthetic COCO person-keypoints file of the requested size is generated (skewed persons per
image, polygon segmentations, about 1% crowd RLE regions, some zero-keypoint persons). Each
step runs in its own fresh process, which reports its wall time and peak RSS (ru_maxrss):
- reference: json.load + the reference's prepare_train_labels logic, re-implemented faithfully
  below (per-annotation dicts and lists, as its script writes them) + pickle.dump to a file;
- posedata: load_source (read, hash, parse) + to_labels + labels.save (the label file);
  run as `posedata convert` runs it: under one scoped GC pause (validate.paused_gc), the parse
  dropped before the pause ends;
- posedata-parse-pause, posedata-move, posedata-freeze: the same calls with other GC handling:
  the library's own pauses only (parse, to_labels); the parse moved to the oldest generation
  (freeze + unfreeze); the former gc.freeze() left in place. Each reports the time spent inside
  GC collections;
- posedata-lwop: the same read + write_lwop_pickle (posedata's copy of the reference's pickle);
- load: labels.load of the label file just written;
- validate: the read plus validate_coco, which the CLI runs before converting;
- cli: `posedata convert` end to end (validate included);
- cli-phases: the same, reporting user and system CPU time and page faults per phase (--growth).
Ratios are printed at the end; both pickles are checked byte-identical.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

COCO17 = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
          "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
          "right_ankle"]
COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10],
                 [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]


# ------------------------------------------------------------------ the data
def make_coco(n_images: int = 57000, n_annotations: int = 150000, seed: int = 0, poly_points: int = 30) -> dict:
    """A valid COCO person-keypoints dict shaped like COCO train (sizes, crowding, polygons)."""
    import numpy as np  # here, so the reference's step process does not carry numpy (its script does not)

    rng = np.random.default_rng(seed)
    counts = rng.geometric(1 / 2.6, size=n_images).astype(np.int64)
    counts = np.maximum(1, np.round(counts * n_annotations / counts.sum())).astype(np.int64)
    while counts.sum() != n_annotations:  # exact total, adjusting the most crowded images
        d = n_annotations - int(counts.sum())
        i = int(np.argmax(counts))
        counts[i] = max(1, counts[i] + d)
    img_w = rng.integers(300, 641, n_images)
    img_h = rng.integers(300, 641, n_images)
    images = [{"license": 1, "file_name": f"{i + 1:012d}.jpg", "coco_url": "", "height": int(img_h[i]),
               "width": int(img_w[i]), "date_captured": "", "flickr_url": "", "id": i + 1} for i in range(n_images)]
    img = np.repeat(np.arange(n_images), counts)
    n = len(img)
    w, h = img_w[img].astype(np.float64), img_h[img].astype(np.float64)
    bw = rng.uniform(10, w / 2)
    bh = rng.uniform(10, h / 2)
    bx = rng.uniform(0, 1, n) * (w - bw)
    by = rng.uniform(0, 1, n) * (h - bh)
    crowd = rng.random(n) < 0.01
    v = rng.choice([0, 1, 2], size=(n, 17), p=[0.35, 0.15, 0.5])
    v[rng.random(n) < 0.05] = 0  # persons with no keypoints (COCO has many)
    kx = np.floor(bx[:, None] + rng.uniform(0, 1, (n, 17)) * bw[:, None]).astype(np.int64)
    ky = np.floor(by[:, None] + rng.uniform(0, 1, (n, 17)) * bh[:, None]).astype(np.int64)
    kx[v == 0] = 0
    ky[v == 0] = 0
    kps = np.stack([kx, ky, v], axis=2).reshape(n, 51)
    px = np.round(bx[:, None] + rng.uniform(0, 1, (n, poly_points)) * bw[:, None], 2)
    py = np.round(by[:, None] + rng.uniform(0, 1, (n, poly_points)) * bh[:, None], 2)
    poly = np.stack([px, py], axis=2).reshape(n, -1)
    anns = []
    for j in range(n):
        i = int(img[j])
        if crowd[j]:
            # a valid uncompressed RLE: 80 runs that add up to the image's pixel count (validate's
            # V036 decodes it as the trainer will; random counts that did not add up were refused)
            hw = int(img_h[i]) * int(img_w[i])
            cuts = np.sort(rng.choice(np.arange(1, hw), 79, replace=False))
            seg: Any = {"counts": np.diff(np.concatenate([[0], cuts, [hw]])).tolist(), "size": [int(img_h[i]), int(img_w[i])]}
            kp, nk = [0] * 51, 0
        else:
            seg = [poly[j].tolist()]
            kp, nk = kps[j].tolist(), int((v[j] > 0).sum())
        anns.append({"segmentation": seg, "num_keypoints": nk, "area": round(float(bw[j] * bh[j] * 0.6), 4),
                     "iscrowd": int(crowd[j]), "keypoints": kp, "image_id": i + 1,
                     "bbox": [round(float(bx[j]), 2), round(float(by[j]), 2), round(float(bw[j]), 2), round(float(bh[j]), 2)],
                     "category_id": 1, "id": j + 1})
    cats = [{"supercategory": "person", "id": 1, "name": "person", "keypoints": COCO17, "skeleton": COCO_SKELETON}]
    return {"info": {}, "licenses": [], "images": images, "annotations": anns, "categories": cats}


# ------------------------------------------------- the reference, faithfully
def reference_prepare(data: dict, net_input_size: int = 368) -> list:
    """The reference's prepare_train_labels logic on parsed JSON, written the way its script
    writes it (grouping by image in a dict, per-annotation dicts and per-keypoint lists)."""
    annotations_per_image = {}
    for annotation in data["annotations"]:
        if annotation["num_keypoints"] != 0 and not annotation["iscrowd"]:
            if annotation["image_id"] not in annotations_per_image:
                annotations_per_image[annotation["image_id"]] = [[], []]
            annotations_per_image[annotation["image_id"]][0].append(annotation)
    crowd_per_image = {}
    for annotation in data["annotations"]:
        if annotation["iscrowd"]:
            if annotation["image_id"] not in crowd_per_image:
                crowd_per_image[annotation["image_id"]] = []
            crowd_per_image[annotation["image_id"]].append(annotation["segmentation"])
    for image_id, segmentations in crowd_per_image.items():
        if image_id in annotations_per_image:
            annotations_per_image[image_id][1] = segmentations
    images_info = {}
    for image_info in data["images"]:
        images_info[image_info["id"]] = image_info

    def convert(kp: list) -> list:
        keypoints = []
        for i in range(len(kp) // 3):
            keypoint = [kp[i * 3], kp[i * 3 + 1], 2]
            if kp[i * 3 + 2] == 1:
                keypoint[2] = 0
            elif kp[i * 3 + 2] == 2:
                keypoint[2] = 1
            keypoints.append(keypoint)
        return keypoints

    prepared = []
    for _, annotations in annotations_per_image.items():  # noqa: F402 - the reference's own name
        previous_centers = []
        for annotation in annotations[0]:
            if annotation["num_keypoints"] < 5 or annotation["area"] < 32 * 32:
                continue
            person_center = [annotation["bbox"][0] + annotation["bbox"][2] / 2,
                             annotation["bbox"][1] + annotation["bbox"][3] / 2]
            is_close = False
            for previous_center in previous_centers:
                distance = ((person_center[0] - previous_center[0]) ** 2
                            + (person_center[1] - previous_center[1]) ** 2) ** 0.5
                if distance < previous_center[2] * 0.3:
                    is_close = True
                    break
            if is_close:
                continue
            record = {
                "img_paths": images_info[annotation["image_id"]]["file_name"],
                "img_width": images_info[annotation["image_id"]]["width"],
                "img_height": images_info[annotation["image_id"]]["height"],
                "objpos": person_center,
                "image_id": annotation["image_id"],
                "bbox": annotation["bbox"],
                "segment_area": annotation["area"],
                "scale_provided": annotation["bbox"][3] / net_input_size,
                "num_keypoints": annotation["num_keypoints"],
                "segmentations": annotations[1],
            }
            record["keypoints"] = convert(annotation["keypoints"])
            others = []
            for other in annotations[0]:
                if other == annotation:
                    continue
                o = {
                    "objpos": [other["bbox"][0] + other["bbox"][2] / 2, other["bbox"][1] + other["bbox"][3] / 2],
                    "bbox": other["bbox"],
                    "segment_area": other["area"],
                    "scale_provided": other["bbox"][3] / net_input_size,
                    "num_keypoints": other["num_keypoints"],
                }
                o["keypoints"] = convert(other["keypoints"])
                others.append(o)
            record["processed_other_annotations"] = others
            prepared.append(record)
            previous_centers.append((person_center[0], person_center[1], annotation["bbox"][2], annotation["bbox"][3]))
    return prepared


# ------------------------------------------------------------------ the steps
def _report(t0: float, **extra: Any) -> None:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds next to wall seconds: on a machine shared with other jobs the wall time of
    # two steps run a minute apart is not comparable; the CPU time each step used is
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 3), "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 3),
                      "maxrss_mb": round(ru.ru_maxrss / 1024, 1), **extra}))


def _gc_timer() -> Any:
    """Time spent inside cyclic-GC collections from now on, and how many were full (gen 2)."""
    import gc

    acc = {"gc_seconds": 0.0, "gc_full": 0, "start": 0.0}

    def cb(phase: str, info: dict) -> None:
        if phase == "start":
            acc["start"] = time.perf_counter()
        else:
            acc["gc_seconds"] += time.perf_counter() - acc["start"]
            acc["gc_full"] += info["generation"] == 2

    gc.callbacks.append(cb)
    return lambda: {"gc_seconds": round(acc["gc_seconds"], 3), "gc_full": acc["gc_full"]}


def step(name: str, src: str, out: str) -> None:
    t0 = time.perf_counter()
    if name == "reference":
        with open(src) as f:
            data = json.load(f)
        records = reference_prepare(data)
        with open(out, "wb") as f:
            pickle.dump(records, f)
        _report(t0, samples=len(records))
    elif name in ("posedata", "posedata-parse-pause", "posedata-move", "posedata-freeze"):
        import gc

        from posedata import labels, skeleton
        from posedata.convert import load_source, to_labels
        from posedata.io import paused_gc

        gc_time = _gc_timer()
        sk = skeleton.resolve("openpose18")
        if name == "posedata":
            # as `posedata convert` runs it: the whole job under one scoped pause, the parse
            # dropped before the pause ends, so the collector never scans it
            with paused_gc():
                s = load_source(src, sk)
                lb = to_labels(s.data, sk, source=src, source_sha256=s.sha256)
                labels.save(lb, out)
                # timed before the parse is freed, like every other step here (the reference's
                # included): freeing it costs the same in every variant, at exit for the others
                ru = resource.getrusage(resource.RUSAGE_SELF)
                done = {"seconds": round(time.perf_counter() - t0, 3), "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 3),
                         **gc_time()}
                del s
            _report(t0, samples=lb.num_samples, instances=len(lb.inst_ids), **done)
            return
        else:
            if name == "posedata-parse-pause":  # the library calls alone: pauses inside, nothing around
                s = load_source(src, sk)
            else:
                gc.disable()  # load_source then leaves the collector off: the variants below run as they did inside it
                s = load_source(src, sk)
                if name == "posedata-move":  # a3a71ec's: freeze + unfreeze moves every object to the oldest generation
                    if gc.get_freeze_count() == 0:
                        gc.freeze()
                        gc.unfreeze()
                else:  # the former gc.freeze(): every object of the process left in the permanent generation
                    gc.freeze()
                gc.enable()
            lb = to_labels(s.data, sk, source=src, source_sha256=s.sha256)
            labels.save(lb, out)
        _report(t0, samples=lb.num_samples, instances=len(lb.inst_ids), **gc_time())
    elif name == "posedata-lwop":
        from posedata.convert import load_source
        from posedata.formats.lwop import write_lwop_pickle

        s = load_source(src)
        n = write_lwop_pickle(s.raw, out)
        _report(t0, samples=n)
    elif name == "cli":
        from posedata.cli import cli

        try:
            cli.main(["convert", src, "--skeleton", "openpose18", "-o", out, "--force", "--skip-checks"], prog_name="posedata",
                     standalone_mode=False)
        finally:
            sys.stdout.flush()
        _report(t0)
    elif name == "cli-phases":
        _cli_phases(src, out)
    elif name.startswith("write-"):  # write-0: a plain atomic write; write-MB: streamed in MB chunks
        from posedata import io as pio
        from posedata import memory

        chunk_mb = int(name.split("-")[1])
        data = Path(src).read_bytes()  # in memory, as convert has it when it writes the label file
        fsync_acc = [0.0, 0.0]
        real_fsync = os.fsync

        def timed_fsync(fd: int) -> None:  # the fsync apart: waiting for the disk is wall time, not CPU
            u, t = _usage()[1], time.perf_counter()
            real_fsync(fd)
            fsync_acc[0] += _usage()[1] - u
            fsync_acc[1] += time.perf_counter() - t

        os.fsync = timed_fsync
        u0 = _usage()
        t = time.perf_counter()
        if chunk_mb:
            memory.STREAM_CHUNK = chunk_mb << 20
        with pio.atomic_writer(out, stream=bool(chunk_mb)) as f:
            f.write(data)
        u1 = _usage()
        Path(out).unlink()
        _report(t0, write_seconds=round(time.perf_counter() - t, 3), write_user=round(u1[0] - u0[0], 3),
                write_sys=round(u1[1] - u0[1], 3), fsync_sys=round(fsync_acc[0], 3), fsync_seconds=round(fsync_acc[1], 3))
    elif name == "validate":
        from posedata import skeleton
        from posedata.convert import load_source
        from posedata.validate import validate_coco

        sk = skeleton.resolve("openpose18")
        s = load_source(src, sk)
        findings = validate_coco(s.raw, sk, file=src)
        _report(t0, errors=sum(f.severity == "error" for f in findings))
    elif name == "generate":
        n_images, n_annotations, seed = (int(v) for v in out.split(","))
        Path(src).write_text(json.dumps(make_coco(n_images, n_annotations, seed)))
        _report(t0)
    elif name == "warm":  # untimed: compiles and caches the bytecode of what the other steps import
        import posedata.cli  # noqa: F401 - (json and pickle, the reference's, are imported at the top)
        from posedata import cocojson, convert, convert_job, labels, validate  # noqa: F401
        from posedata.formats import lwop  # noqa: F401

        _report(t0)
    elif name == "load":
        from posedata import labels

        lb = labels.load(src)
        _report(t0, instances=len(lb.inst_ids))
    else:
        raise SystemExit(f"unknown step {name}")


def _usage() -> tuple[float, float, int]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime, ru.ru_minflt


def _cli_phases(src: str, out: str) -> None:
    """`posedata convert` end to end, with user / system CPU seconds and minor page faults summed
    per phase (the functions below, timed around each call: a dozen calls, no measurable cost).
    Phases nest: validate holds screen and keypoint checks."""
    t0 = time.perf_counter()
    import posedata.convert as C
    import posedata.convert_job as J  # noqa: F401 - imported before the wrappers, as the CLI has it
    import posedata.labels as L
    import posedata.validate as V
    from posedata.cli import cli

    acc: dict[str, list[float]] = {}

    def wrap(owner: Any, attr: str, label: str) -> None:
        f = getattr(owner, attr)

        def timed(*a: Any, **k: Any) -> Any:
            u0 = _usage()
            try:
                return f(*a, **k)
            finally:
                d = acc.setdefault(label, [0.0, 0.0, 0])
                for j, (x0, x1) in enumerate(zip(u0, _usage())):
                    d[j] += x1 - x0

        setattr(owner, attr, timed)

    for owner, attr, label in ((C, "load_source", "read + parse"), (V, "validate_coco", "validate"),
                               (V._Validator, "_screen", "  column screen"),
                               (V._Validator, "_vector_checks", "  keypoint checks"),
                               (C, "to_labels", "to_labels"), (L, "save", "write")):
        wrap(owner, attr, label)
    try:
        cli.main(["convert", src, "--skeleton", "openpose18", "-o", out, "--force", "--skip-checks"], prog_name="posedata",
                 standalone_mode=False)
    finally:
        sys.stdout.flush()
    u, s_, f_ = _usage()
    phases = {k: [round(v[0], 3), round(v[1], 3), int(v[2])] for k, v in acc.items()}
    phases["rest (imports, printing, freeing)"] = [round(u - sum(v[0] for k, v in acc.items() if k[0] != " "), 3),
                                                   round(s_ - sum(v[1] for k, v in acc.items() if k[0] != " "), 3),
                                                   int(f_ - sum(v[2] for k, v in acc.items() if k[0] != " "))]
    _report(t0, user=round(u, 3), sys=round(s_, 3), minflt=f_, phases=phases)


# Every step runs with its modules' bytecode cached, as an installed package has it: this
# machine's environment sets PYTHONDONTWRITEBYTECODE, which made every posedata step recompile
# posedata's modules (~0.1 s of CPU) while the reference's (the standard library's json and
# pickle) come precompiled. The cache goes to a folder of its own, not into the source tree.
_PYCACHE = Path(tempfile.gettempdir()) / f"bench_convert_pycache_{os.getuid()}"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE)
    return env


def run(name: str, src: Path, out: Path | str) -> dict:
    r = subprocess.run([sys.executable, __file__, "--step", name, str(src), str(out)], capture_output=True, text=True,
                       env=_env())
    if r.returncode:
        raise SystemExit(f"step {name} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _files(tmp: Path, data: str | None, n_images: int, n_annotations: int, seed: int) -> tuple[Path, Path]:
    """The generated file and the one twice its size: in `data` when given (made once, reused)."""
    where = Path(data) if data else tmp
    where.mkdir(parents=True, exist_ok=True)
    src = where / f"coco_{n_images}_{n_annotations}_{seed}.json"
    big = where / f"coco_{2 * n_images}_{2 * n_annotations}_{seed + 1}.json"
    for path, spec in ((src, f"{n_images},{n_annotations},{seed}"), (big, f"{2 * n_images},{2 * n_annotations},{seed + 1}")):
        if not path.is_file():
            part = path.with_suffix(".part")
            run("generate", part, spec)
            part.replace(path)
    run("warm", src, "")
    return src, big


def _prime(mb: int) -> dict:
    """Touch MB of fresh memory in a process of its own, which then exits and frees it.

    Why: on this VM a run's system time depends on the memory state the process before it left:
    first-touching memory that no process freed just before costs heavy kernel time (the host backs
    it again: DAMON pageout, /sys/kernel/mm/damon/admin/kdamonds), memory just freed is cheap. In
    plain alternation a 150k run follows a 300k run, which freed ~930 MB, and a 300k run follows
    a 150k run, which freed half that, so the 300k run pays for more first touches. Run right
    before each measured run of both sizes, MB (more than either run touches) leaves both the same
    state: memory just freed, as much as either needs. Its own cost is not in the measured run."""
    code = ("import resource,time,sys;t=time.perf_counter();b=bytearray(b'\\x01')*(int(sys.argv[1])<<20);"
            "r=resource.getrusage(0);print(round(r.ru_stime,3),round(time.perf_counter()-t,3))")
    r = subprocess.run([sys.executable, "-c", code, str(mb)], capture_output=True, text=True, check=True)
    sys_s, wall = (float(v) for v in r.stdout.split())
    return {"sys": sys_s, "seconds": wall}


def growth(n_images: int, n_annotations: int, seed: int, pairs: int, data: str | None, prime_mb: int = 0) -> None:
    """How validate + convert grow: `posedata convert` of the file and of one twice its size in
    alternating pairs (their order swapped every pair), CPU and wall time ratios per pair and of
    the medians, and per phase user / system time and page faults. prime_mb > 0 adds a second
    condition, reported apart after the first: each pair also runs both sizes once more, each
    right after `_prime(prime_mb)` (the memory state equalised), in the same alternation."""
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        src, big = _files(tmp, data, n_images, n_annotations, seed)
        conditions = ("as alternated", "memory primed") if prime_mb else ("as alternated",)
        res: dict[str, dict[str, list[dict]]] = {c: {"1x": [], "2x": []} for c in conditions}
        primes: list[dict] = []
        for k in range(pairs):
            for cond in conditions:
                for size in (("1x", "2x") if k % 2 == 0 else ("2x", "1x")):
                    if cond == "memory primed":
                        primes.append(_prime(prime_mb))
                    load = os.getloadavg()[0]
                    r = run("cli-phases", src if size == "1x" else big, tmp / f"out{size}.npz")
                    r["load"] = round(load, 2)
                    res[cond][size].append(r)
                a, b = res[cond]["1x"][-1], res[cond]["2x"][-1]
                tag = "" if cond == "as alternated" else f" ({cond})"
                print(f"pair {k + 1}{tag}: {a['cpu_seconds']:.2f} s vs {b['cpu_seconds']:.2f} s CPU (x{b['cpu_seconds'] / a['cpu_seconds']:.2f}), "
                      f"{a['seconds']:.2f} s vs {b['seconds']:.2f} s wall (x{b['seconds'] / a['seconds']:.2f}); user "
                      f"{a['user']:.2f} / {b['user']:.2f}, sys {a['sys']:.2f} / {b['sys']:.2f}, page faults {a['minflt']} / "
                      f"{b['minflt']}; peak {a['maxrss_mb']:.0f} / {b['maxrss_mb']:.0f} MB; load {a['load']} / {b['load']}")
        print()
        _growth_summary(res["as alternated"], pairs)
        if prime_mb:
            import statistics

            print()
            print(f"memory primed: each run right after a process touched and freed {prime_mb} MB "
                  f"(that process: median {statistics.median(p['sys'] for p in primes):.2f} s system time, "
                  f"{min(p['sys'] for p in primes):.2f}-{max(p['sys'] for p in primes):.2f} s; not in the runs' figures)")
            _growth_summary(res["memory primed"], pairs)


def _growth_summary(res: dict[str, list[dict]], pairs: int) -> None:
    import statistics

    ratios = [b["cpu_seconds"] / a["cpu_seconds"] for a, b in zip(res["1x"], res["2x"])]
    walls = [b["seconds"] / a["seconds"] for a, b in zip(res["1x"], res["2x"])]

    def med(size: str, key: str) -> float:
        return statistics.median(r[key] for r in res[size])

    print(f"2x the annotations, medians of {pairs} pairs: x{med('2x', 'cpu_seconds') / med('1x', 'cpu_seconds'):.2f} "
          f"CPU ({med('1x', 'cpu_seconds'):.2f} s vs {med('2x', 'cpu_seconds'):.2f} s), x{med('2x', 'seconds') / med('1x', 'seconds'):.2f} "
          f"wall; per pair CPU x{min(ratios):.2f}-x{max(ratios):.2f}, wall x{min(walls):.2f}-x{max(walls):.2f}; "
          f"peak {med('1x', 'maxrss_mb'):.0f} vs {med('2x', 'maxrss_mb'):.0f} MB")
    print("per phase, medians (user s, sys s, page faults):")
    for phase in res["1x"][0]["phases"]:
        one = [statistics.median(r["phases"][phase][j] for r in res["1x"]) for j in range(3)]
        two = [statistics.median(r["phases"][phase][j] for r in res["2x"]) for j in range(3)]
        print(f"  {phase:36s} 1x {one[0]:5.2f} {one[1]:5.2f} {one[2]:8.0f}   2x {two[0]:5.2f} {two[1]:5.2f} {two[2]:8.0f}   "
              f"user x{two[0] / max(one[0], 1e-9):.2f}")


def write_chunks(n_images: int, n_annotations: int, seed: int, rounds: int, data: str | None) -> None:
    """The label file's write alone: the 2x file's bytes (268 MB at the default size), already in
    memory, written by io.atomic_writer as a plain file and streamed in chunks of 2, 4, 8 and 16
    MB (memory.StreamingWriter), each in a fresh process, the variants alternating for ROUNDS rounds:
    system time and wall time of the write (fsync included, and the fsync's alone)."""
    import statistics

    variants = (0, 2, 4, 8, 16)
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        _src, big = _files(tmp, data, n_images, n_annotations, seed)
        res: dict[int, list[dict]] = {v: [] for v in variants}
        for k in range(rounds):
            for v in (variants if k % 2 == 0 else variants[::-1]):
                res[v].append(run(f"write-{v}", big, tmp / "w.bin"))
        print(f"writing {big.stat().st_size / 1e6:.0f} MB from memory, {rounds} rounds, load {os.getloadavg()[0]:.2f}:")
        for v in variants:
            sys_s = [r["write_sys"] for r in res[v]]
            wall = [r["write_seconds"] for r in res[v]]
            fs_sys = [r["fsync_sys"] for r in res[v]]
            fs_wall = [r["fsync_seconds"] for r in res[v]]
            what = "plain (page cache the file's size)" if v == 0 else f"streamed, {v} MB chunks"
            print(f"  {what:36s} system {statistics.median(sys_s):.3f} s ({min(sys_s):.3f}-{max(sys_s):.3f}), "
                  f"wall {statistics.median(wall):.3f} s ({min(wall):.3f}-{max(wall):.3f}); of which the fsync "
                  f"{statistics.median(fs_sys):.3f} s system, {statistics.median(fs_wall):.3f} s wall")


def headline(n_images: int, n_annotations: int, seed: int, rounds: int, data: str | None = None) -> None:
    """The figure users care about: the command they run, against the reference, in one run."""
    import statistics

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        src, big = _files(tmp, data, n_images, n_annotations, seed)
        print(f"files: {src.stat().st_size / 1e6:.0f} MB ({n_annotations} annotations), "
              f"{big.stat().st_size / 1e6:.0f} MB ({2 * n_annotations})")
        res: dict[str, list[dict]] = {"reference": [], "cli": [], "cli-2x": []}
        for k in range(rounds):  # alternating, so both see the same machine load
            for name, s_, out in (("reference", src, tmp / "ref.pkl"), ("cli", src, tmp / "cli.npz"),
                                  ("cli-2x", big, tmp / "cli2x.npz")):
                if name == "cli-2x" and k % 2:
                    continue  # the growth check needs fewer rounds than the ratio
                r = run("cli" if name.startswith("cli") else name, s_, out)
                res[name].append(r)
                print(f"round {k + 1} {name:10s} {json.dumps(r)}")

        def med(name: str, key: str) -> float:
            return statistics.median(r[key] for r in res[name])

        r_cpu, c_cpu, r_wall, c_wall = med("reference", "cpu_seconds"), med("cli", "cpu_seconds"), \
            med("reference", "seconds"), med("cli", "seconds")
        print()
        print(f"posedata convert (validate included) vs the reference's label step, medians of {rounds} "
              f"alternating rounds: x{r_cpu / c_cpu:.2f} CPU ({r_cpu:.1f} s vs {c_cpu:.1f} s), "
              f"x{r_wall / c_wall:.2f} wall ({r_wall:.1f} s vs {c_wall:.1f} s); peak RSS "
              f"{med('reference', 'maxrss_mb'):.0f} MB vs {med('cli', 'maxrss_mb'):.0f} MB "
              f"(x{med('reference', 'maxrss_mb') / med('cli', 'maxrss_mb'):.2f} less)")
        g_cpu, g_wall = med("cli-2x", "cpu_seconds"), med("cli-2x", "seconds")
        print(f"2x the annotations: {g_cpu / c_cpu:.2f}x the CPU time ({g_cpu:.1f} s), {g_wall / c_wall:.2f}x the "
              f"wall time, peak RSS {med('cli-2x', 'maxrss_mb'):.0f} MB")


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=57000)
    ap.add_argument("--annotations", type=int, default=150000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="runs per step; the fastest is reported")
    ap.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI run (validate + convert)")
    ap.add_argument("--headline", type=int, metavar="ROUNDS", default=0,
                    help="only the headline: `posedata convert` end to end (validate included) against the "
                         "reference's label step, alternating for ROUNDS rounds, medians; plus one 2x-sized "
                         "file (validate + convert) to show how time and memory grow")
    ap.add_argument("--growth", type=int, metavar="PAIRS", default=0,
                    help="only the growth: `posedata convert` of the file and of one twice its size in PAIRS "
                         "alternating pairs, with per-phase user / system time and page faults")
    ap.add_argument("--write-chunks", type=int, metavar="ROUNDS", default=0,
                    help="only the label file's write: the 2x file's bytes written plain and streamed in 2-16 MB "
                         "chunks, alternating for ROUNDS rounds, system and wall time")
    ap.add_argument("--prime-mb", type=int, metavar="MB", default=0,
                    help="with --growth: also run every pair with the memory state equalised (each run right "
                         "after a process touched and freed MB of memory) and report that condition apart")
    ap.add_argument("--data", metavar="DIR", help="keep the generated files in DIR and reuse them (--headline, --growth)")
    ap.add_argument("--step", nargs=3, metavar=("NAME", "SRC", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.step:
        step(*a.step)
        return
    if a.headline:
        headline(a.images, a.annotations, a.seed, a.headline, a.data)
        return
    if a.write_chunks:
        write_chunks(a.images, a.annotations, a.seed, a.write_chunks, a.data)
        return
    if a.growth:
        growth(a.images, a.annotations, a.seed, a.growth, a.data, a.prime_mb)
        return
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        src = tmp / "coco.json"
        # generated in a child: ru_maxrss of every later child starts from this process's peak
        # (Linux carries the forking process's high-water mark across exec), so it must stay small
        g = run("generate", src, f"{a.images},{a.annotations},{a.seed}")  # type: ignore[arg-type]
        run("warm", src, "")
        print(f"generated {src.stat().st_size / 1e6:.0f} MB: {a.images} images, {a.annotations} annotations "
              f"({g['seconds']:.1f} s)")
        res: dict[str, dict] = {}
        for name, out in (("reference", tmp / "ref.pkl"), ("posedata", tmp / "labels.npz"),
                          ("posedata-parse-pause", tmp / "labels-pp.npz"), ("posedata-move", tmp / "labels-mv.npz"),
                          ("posedata-freeze", tmp / "labels-freeze.npz"),
                          ("posedata-lwop", tmp / "lwop.pkl"), ("load", None), ("validate", None)):
            runs = [run(name, tmp / "labels.npz" if name == "load" else src, out or tmp / "unused") for _ in range(a.repeat)]
            res[name] = min(runs, key=lambda r: r["seconds"])
            print(f"{name:14s} {json.dumps(res[name])}")
        same = sha(tmp / "ref.pkl") == sha(tmp / "lwop.pkl")
        print(f"lwop pickle byte-identical to the reference's: {same}")
        if not a.no_cli:
            res["cli"] = run("cli", src, tmp / "cli.npz")
            print(f"{'cli':14s} {json.dumps(res['cli'])}")
        r, p = res["reference"], res["posedata"]
        print()
        print(f"speed  reference / posedata convert (labels): {r['seconds'] / p['seconds']:.1f}x wall "
              f"({r['seconds']:.1f} s vs {p['seconds']:.1f} s), {r['cpu_seconds'] / p['cpu_seconds']:.1f}x CPU "
              f"({r['cpu_seconds']:.1f} s vs {p['cpu_seconds']:.1f} s)")
        print(f"memory reference / posedata convert (labels): {r['maxrss_mb'] / p['maxrss_mb']:.1f}x "
              f"({r['maxrss_mb']:.0f} MB vs {p['maxrss_mb']:.0f} MB peak RSS)")
        print("GC handling (CPU ratios are the stable part on a shared machine):")
        for key, what in (("posedata", "scoped pause over the job, parse dropped inside it (used)"),
                          ("posedata-parse-pause", "library calls alone: pause in the parse and in to_labels"),
                          ("posedata-move", "parse moved to the oldest generation (freeze + unfreeze)"),
                          ("posedata-freeze", "former gc.freeze() left in place")):
            v = res[key]
            print(f"  {what:60s} {r['cpu_seconds'] / v['cpu_seconds']:.1f}x CPU, {r['seconds'] / v['seconds']:.1f}x wall "
                  f"({v['cpu_seconds']:.2f} s CPU; in GC {v['gc_seconds']:.2f} s wall, {v['gc_full']} full collections)")
        lw = res["posedata-lwop"]
        print(f"speed  reference / posedata lwop-pickle:      {r['seconds'] / lw['seconds']:.1f}x wall, "
              f"{r['cpu_seconds'] / lw['cpu_seconds']:.1f}x CPU ({lw['seconds']:.1f} s, {lw['maxrss_mb']:.0f} MB)")
        print(f"labels.load of {res['load']['instances']} instances: {res['load']['seconds']:.2f} s "
              f"(fresh process, imports included)")
        v = res["validate"]
        print(f"validate (read + validate_coco, the CLI's first step): {v['seconds']:.1f} s wall, "
              f"{v['cpu_seconds']:.1f} s CPU, {v['maxrss_mb']:.0f} MB")
        if "cli" in res:
            c = res["cli"]
            print(f"posedata convert CLI end to end (validate + convert + write): {c['seconds']:.1f} s wall, "
                  f"{c['cpu_seconds']:.1f} s CPU, {c['maxrss_mb']:.0f} MB (reference / cli {r['seconds'] / c['seconds']:.1f}x "
                  f"wall, {r['cpu_seconds'] / c['cpu_seconds']:.1f}x CPU)")
        if not same:
            sys.exit(1)


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    main()
