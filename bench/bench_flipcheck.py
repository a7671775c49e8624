"""Measure the flip verdict on simulated people (COCO 17 keypoints): the FAIL rate with the right flip
map for data sets of 2 to 5,000 instances, and the detection rate of three wrong maps (a missing
pair, a crossed pair, a side-preserving knee<->ankle cross pairing) from 50 instances up.

    PYTHONPATH=. python bench/bench_flipcheck.py --reps 300 --wrong-reps 200    # bench/README.md's rows
    PYTHONPATH=. python bench/bench_flipcheck.py --part verdict                  # the whole verdict, coco17
    (about an hour in one process on 2 loaded cores; --part right|wrong and --maps WORD split it)

The simulated people face the camera or away (share drawn per data set), turn their head, move their
arms and legs, are rotated in the image plane, scaled, noisy and partly unlabelled: a data
distribution that is mirror-symmetric under the right map, as flip augmentation assumes. Each point's
noise is its COCO OKS sigma times the person's scale (eyes 2.5 px, hips 10 px on a 150 px person).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from posedata import coco  # noqa: E402
from posedata import flipcheck as F  # noqa: E402
from posedata import skeleton as S  # noqa: E402
from posedata.swaps import binom_upper  # noqa: E402

# a frontal person (its left on the image's right), COCO order, y down
FRONT = np.array([[0, -60], [6, -66], [-6, -66], [14, -62], [-14, -62], [22, -40], [-22, -40], [30, -10],
                  [-30, -10], [32, 18], [-32, 18], [14, 10], [-14, 10], [15, 50], [-15, 50], [16, 90], [-16, 90]], float)
SIGMAS = np.array(S.resolve("coco17").sigmas)
SCALE = 95.0  # sqrt of the frontal person's box area (150 x 60 px)
ARMS = [(5, 7, 9), (6, 8, 10)]  # shoulder, elbow, wrist
LEGS = [(11, 13, 15), (12, 14, 16)]  # hip, knee, ankle


def people(n: int, rng: np.random.Generator, facing_camera: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, 17, 2) points and (N, 17) labelled flags of simulated people."""
    q = rng.uniform(0.3, 1.0) if facing_camera is None else facing_camera
    p = np.repeat(FRONT[None], n, 0)
    turn = rng.uniform(-1, 1, n)  # head yaw: the face slides sideways, the far ear turns behind the head
    p[:, :3, 0] += 6 * turn[:, None]
    far = np.where(turn > 0, 3, 4)
    p[np.arange(n), far, 0] -= 6 * turn
    for limbs, spread in ((ARMS, 0.9), (LEGS, 0.35)):
        for a, b, c in limbs:  # each limb swings about its root joint, independently left and right
            ang = rng.normal(0, spread, n)
            rot = np.stack([np.cos(ang), -np.sin(ang), np.sin(ang), np.cos(ang)], 1).reshape(n, 2, 2)
            for j in (b, c):
                p[:, j] = p[:, a] + np.einsum("nij,nj->ni", rot, p[:, j] - p[:, a])
    away = rng.random(n) > q
    p[away, :, 0] *= -1  # facing away: the image shows the mirror, labels kept
    # annotators' error as COCO measured it: each keypoint's OKS sigma times the person's scale
    p += rng.normal(0, 1, p.shape) * SIGMAS[None, :, None] * SCALE
    p *= rng.uniform(0.5, 2.0, n)[:, None, None]
    a = rng.normal(0, 0.25, n)
    rot = np.stack([np.cos(a), -np.sin(a), np.sin(a), np.cos(a)], 1).reshape(n, 2, 2)
    p = np.einsum("nij,nkj->nki", rot, p) + 300
    lab = rng.random((n, 17)) > rng.uniform(0.0, 0.3)
    lab[np.abs(turn) > 0.6, far[np.abs(turn) > 0.6]] = False  # hidden behind the head
    return p, lab


def maps(sk: S.Skeleton) -> dict[str, np.ndarray]:
    idx = {k: i for i, k in enumerate(sk.keypoints)}

    def build(pairs: list[tuple[str, str]]) -> np.ndarray:
        f = np.arange(sk.num_keypoints)
        for a, b in pairs:
            f[idx[a]], f[idx[b]] = idx[b], idx[a]
        return f

    right = sk.flip_pairs()
    return {
        "right map": build(right),
        "missing pair (knees)": build([p for p in right if "knee" not in p[0]]),
        "missing pair (wrists)": build([p for p in right if "wrist" not in p[0]]),
        "crossed pair (eye<->ear)": build([p for p in right if "eye" not in p[0] and "ear" not in p[0]]
                                          + [("left_eye", "right_ear"), ("right_eye", "left_ear")]),
        "knee<->ankle cross pairing": build([p for p in right if "knee" not in p[0] and "ankle" not in p[0]]
                                            + [("left_knee", "right_ankle"), ("left_ankle", "right_knee")]),
    }


def run(sizes: list[int], reps: dict[int, int], wrong_sizes: list[int], wrong_reps: dict[int, int],
        seed: int = 0, part: str = "all", only: list[str] | None = None) -> list[dict]:
    sk = S.resolve("coco17")
    names = list(sk.keypoints)
    rows = []
    for name, perm in maps(sk).items():
        right = name == "right map"
        if (part != "all" and right != (part == "right")) or (only and not any(w in name for w in only)):
            rows += [{}] * len(sizes if right else wrong_sizes)  # keeps each table row's seed as in a full run
            continue
        for n in sizes if right else wrong_sizes:
            r = reps[n] if right else wrong_reps[n]
            rng = np.random.default_rng([seed, n, len(rows)])
            fails = inconclusive = 0
            wrong_blame = 0
            t0 = time.perf_counter()
            for _ in range(r):
                pts, lab = people(n, rng)
                res = F.mirror_test(pts, lab, perm, names)
                fails += res.significant
                inconclusive += (not res.significant) and res.informative < F.MIN_PASS
                if not right and res.significant:
                    truth = {names[i] for i in range(len(names)) if perm[i] != sk.flip[i]}
                    wrong_blame += not set(res.blamed) <= truth
            rows.append({"map": name, "n": n, "reps": r, "fails": fails, "inconclusive": inconclusive,
                         "blame_outside": wrong_blame / max(fails, 1), "s_per_run": (time.perf_counter() - t0) / r})
            print(f"{name:28s} n={n:5d} reps={r:5d} FAIL {100 * fails / r:6.2f}%  inconclusive "
                  f"{100 * inconclusive / r:6.2f}%  blamed a right keypoint in {100 * wrong_blame / max(fails, 1):5.1f}% "
                  f"of FAILs  {1000 * (time.perf_counter() - t0) / r:7.1f} ms/run", flush=True)
    rows = [x for x in rows if x]
    null = [x for x in rows if x["map"] == "right map"]
    if not null:
        return rows
    runs, fails = sum(x["reps"] for x in null), sum(x["fails"] for x in null)
    # one-sided 95% Clopper-Pearson upper bound of the FAIL rate over all right-map runs
    upper = _cp_upper(fails, runs)
    print(f"right map: {fails} FAIL in {runs} runs over {len(null)} sizes; 95% upper bound of the FAIL rate "
          f"{100 * upper:.3f}%", flush=True)
    return rows


def as_dataset(pts: np.ndarray, lab: np.ndarray, sk: S.Skeleton) -> coco.Dataset:
    """Simulated people as the COCO dataset `posedata flipcheck` would read (unlabelled: 0, 0, 0)."""
    ds = coco.Dataset(categories=[coco.Category(1, "person", list(sk.coco_keypoints))])
    for i, (p, ok) in enumerate(zip(pts, lab)):
        kp = np.concatenate([p * ok[:, None], 2.0 * ok[:, None]], 1)
        x0, y0 = p[ok].min(0) if ok.any() else (0.0, 0.0)
        x1, y1 = p[ok].max(0) if ok.any() else (1.0, 1.0)
        ds.images.append(coco.Image(i + 1, f"{i}.jpg", 800, 800))
        ds.annotations.append(coco.Annotation(i + 1, i + 1, 1, kp, (x0, y0, x1 - x0 + 1, y1 - y0 + 1),
                                              float((x1 - x0 + 1) * (y1 - y0 + 1))))
    return ds


def with_map(sk: S.Skeleton, perm: np.ndarray) -> S.Skeleton:
    d = sk.to_dict()
    d["flip"] = [[sk.keypoints[i], sk.keypoints[j]] for i, j in enumerate(perm) if i < j]
    return S.parse(d)[0]


def limb_blind_maps(sk: S.Skeleton) -> dict[str, np.ndarray]:
    """openpose18's wrong maps that its limbs cannot reveal: its limb tree hangs from the neck, so
    mirroring only the legs, or only the arms and face, maps every limb onto a limb."""
    pairs = sk.flip_pairs()
    idx = {k: i for i, k in enumerate(sk.keypoints)}
    legs = ("hip", "knee", "ankle")

    def build(keep: list[tuple[str, str]]) -> np.ndarray:
        f = np.arange(sk.num_keypoints)
        for a, b in keep:
            f[idx[a]], f[idx[b]] = idx[b], idx[a]
        return f

    return {"legs unpaired": build([p for p in pairs if not any(w in p[0] for w in legs)]),
            "arms and face unpaired": build([p for p in pairs if any(w in p[0] for w in legs)])}


def run_verdict(sizes: list[int], reps: int, seed: int = 0, only: list[str] | None = None) -> list[dict]:
    """The verdict users get (`flip_verdict`: flipcheck, check, the gate, the demo) on the simulated
    people. coco17: its skeleton-level flip property fails for each wrong map above (a limb whose
    mirror is not a limb), which is FAIL whatever the data. openpose18: two wrong maps keep every
    limb a limb, so only the data-level test can see them."""
    rows = []
    cases = [("coco17", name, perm) for name, perm in maps(S.resolve("coco17")).items()]
    cases += [("openpose18", name, perm) for name, perm in limb_blind_maps(S.resolve("openpose18")).items()]
    for m, (skname, name, perm) in enumerate(cases):
        if only and not any(w in f"{skname} {name}" for w in only):
            continue
        sk = S.resolve(skname)
        wrong = with_map(sk, perm)
        prop = [f"{kind} {n}" for kind, n, ok in F.skeleton_flip_property(wrong) if not ok]
        for n in sizes:
            rng = np.random.default_rng([seed, n, 100 + m])
            verdicts: dict[str, int] = {}
            t0 = time.perf_counter()
            for _ in range(reps):
                v = F.flip_verdict(as_dataset(*people(n, rng), sk), wrong)
                verdicts[v.verdict] = verdicts.get(v.verdict, 0) + 1
            rows.append({"skeleton": skname, "map": name, "n": n, "reps": reps, "verdicts": verdicts, "property": prop})
            print(f"verdict {skname:10s} {name:28s} n={n:5d} reps={reps:4d} "
                  + "  ".join(f"{k} {100 * c / reps:6.2f}%" for k, c in sorted(verdicts.items()))
                  + f"  {1000 * (time.perf_counter() - t0) / reps:7.1f} ms/run", flush=True)
        print(f"  {skname} skeleton-level flip property with {name!r}: "
              + (f"fails for {', '.join(prop)}" if prop else "holds (every limb's mirror is a limb)"), flush=True)
    return rows


def _cp_upper(k: int, n: int, conf: float = 0.95) -> float:
    """Upper Clopper-Pearson bound by bisection on the exact binomial tail (no scipy)."""
    lo, hi = k / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        tail = 1.0 - float(binom_upper(k + 1, n, mid)[0])  # P(X <= k | mid)
        lo, hi = (mid, hi) if tail > 1 - conf else (lo, mid)
    return hi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=400, help="right-map repetitions per size up to 100 instances "
                    "(fewer above: reps * 100 / n, at least 10)")
    ap.add_argument("--wrong-reps", type=int, default=300, help="wrong-map repetitions at 50 instances "
                    "(fewer above: reps * 50 / n, at least 40)")
    ap.add_argument("--wrong-sizes", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2, 3, 5, 10, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000],
                    help="right-map data set sizes")
    ap.add_argument("--part", choices=("all", "right", "wrong", "verdict"), default="all",
                    help="only the right map's rows, or only the wrong maps' (two processes on two cores); "
                         "each row's data are those of a full run; verdict: the whole verdict with coco17's "
                         "limbs (not part of all)")
    ap.add_argument("--verdict-reps", type=int, default=50, help="data sets per map and size for --part verdict")
    ap.add_argument("--verdict-sizes", type=int, nargs="+", default=[2, 10, 50])
    ap.add_argument("--maps", nargs="+", metavar="WORD", help="only the maps whose name contains one of these words")
    args = ap.parse_args()
    sizes = args.sizes
    reps = {n: max(10, min(args.reps, args.reps * 100 // n)) for n in sizes}
    wrong_reps = {n: max(40, min(args.wrong_reps, args.wrong_reps * 50 // n)) for n in args.wrong_sizes}
    if args.part == "verdict":
        run_verdict(args.verdict_sizes, args.verdict_reps, only=args.maps)
        return
    run(sizes, reps, args.wrong_sizes, wrong_reps, part=args.part, only=args.maps)


if __name__ == "__main__":
    main()
