"""`posedata demo`: the whole path on a built-in synthetic dataset, in minutes, on a CPU.

synth (train + held-out set) -> validate -> convert -> preview -> flipcheck -> train -> val.
Each step is a function that calls the same library code as its command and returns what it
made; the CLI prints. Training needs torch, so trainer modules are imported inside the train and
val steps only (the rest of posedata never imports torch).

Why these settings (measured, see bench/README.md "demo"): object5 (5 keypoints, 4 limbs, 2 flip
pairs) is not the human skeleton, its OKS sigmas (0.05) leave room for a stride-8 network at
160 px, and its heads are small. The network is the reference architecture at a fraction of its
width, without refinement stages, on 128 px crops; Adam at a learning rate far above the
reference's 4e-5, whose schedule is for 368 px COCO over days.

The run is a fixed number of steps, not a time budget: the same seed then gives the same AP on any
machine (to float-summation noise), a busy machine only takes longer. The held-out set's OKS area
is each figure's drawn silhouette (synth area="silhouette"), not its box, which would make OKS
far more lenient than a person's segment area does on real data.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .skeleton import Skeleton

Progress = Callable[[int, int], None]


# Steps of the default run: about 0.14 s each on one thread (bench/README.md "demo"), so the whole
# demo should stay within 10 minutes on 2 idle cores; 3200 steps reached held-out AP 0.611 after the
# channels-last change moved the arithmetic, 3600 (the earlier setting) 0.631.
STEPS = 3600

# Held-out inference: network input 136 (the padded size), the image scaled to heights 128, 136
# and 144 and the maps averaged, with --flip. Chosen on a separate draw (seed 1000, 200 images),
# never on the held-out set: on the 3600-step checkpoint, AP 0.585 at input 128 alone, 0.609 at
# 136, 0.655 with the three heights (bench/README.md, "demo").
VAL_INPUT = 136
VAL_SCALES = (128 / 136, 1.0, 144 / 136)


@dataclass(frozen=True)
class DemoPlan:
    """Everything the demo chooses; `iterations` is the training length in steps."""

    skeleton: str = "object5"
    image_size: int = 160
    train_images: int = 1500
    val_images: int = 100
    input_size: int = 128
    width: float = 0.25
    stages: int = 0
    batch_size: int = 16
    lr: float = 3e-3
    iterations: int = STEPS
    checkpoint_every: int = 200
    # One torch thread on any machine: the next batch is made on a second thread meanwhile
    # (trainer.data.Prefetch). A second torch thread costs 30-80 ms more CPU per ~0.13 s step for
    # 5% less wall time on a quiet machine (122 vs 128 ms) and more wall time on a busy one: each
    # of the step's few hundred small operators wakes a sleeping OpenMP thread (the waiting is
    # passive, trainer/threads.py), and the step waits for whichever thread is descheduled
    # (bench/README.md "demo"). One thread also makes the run's arithmetic, hence its AP, the
    # same on a machine with any number of cores.
    threads: int | None = 1
    preview_samples: int = 8
    flip_instances: int = 8
    val_overlays: int = 4
    val_flip: bool = True
    val_input_size: int = VAL_INPUT
    val_scales: tuple[float, ...] = VAL_SCALES
    seed: int = 0
    quick: bool = False


def load_average() -> float | None:
    import os

    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def make_plan(steps: int | None = None, quick: bool = False) -> DemoPlan:
    if quick:
        # every step and artefact, on data and a network small enough for a test
        return DemoPlan(image_size=96, train_images=12, val_images=4, input_size=64, width=0.25, batch_size=4,
                        iterations=steps or 3, checkpoint_every=3, preview_samples=2, flip_instances=2,
                        val_overlays=2, val_input_size=64, val_scales=(1.0,), quick=True)
    return DemoPlan(iterations=steps or STEPS)


@dataclass(frozen=True)
class DemoPaths:
    root: Path

    @property
    def train(self) -> Path:
        return self.root / "data" / "train"

    @property
    def val(self) -> Path:
        return self.root / "data" / "val"

    @property
    def train_json(self) -> Path:
        return self.train / "annotations.json"

    @property
    def val_json(self) -> Path:
        return self.val / "annotations.json"

    @property
    def labels(self) -> Path:
        return self.root / "train_labels.npz"

    @property
    def preview(self) -> Path:
        return self.root / "preview"

    @property
    def flipcheck(self) -> Path:
        return self.root / "flipcheck"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def results(self) -> Path:
        return self.root / "val"


def skeleton(plan: DemoPlan) -> Skeleton:
    from .skeleton import resolve

    return resolve(plan.skeleton)


# ---------------------------------------------------------------------- steps
@dataclass
class SynthResult:
    train_json: Path
    val_json: Path
    seconds: float
    figures: dict[str, int]
    visibility: dict[str, list[int]]  # per set: [out of frame, occluded, visible] keypoint counts


def synth_step(plan: DemoPlan, paths: DemoPaths, sk: Skeleton, progress: Progress | None = None) -> SynthResult:
    """Training and held-out sets of the same creature, from different seeds."""
    from .synth import synthesize

    t0 = time.perf_counter()
    total = plan.train_images + plan.val_images

    def on(offset: int) -> Progress:
        return lambda done, _n: progress(offset + done, total) if progress else None

    size = (plan.image_size, plan.image_size)
    tr = synthesize(sk, paths.train, plan.train_images, size, plan.seed, progress=on(0))
    va = synthesize(sk, paths.val, plan.val_images, size, plan.seed + 1, progress=on(plan.train_images),
                    area="silhouette")
    figures = {"train": tr.figures, "val": va.figures}
    vis = {"train": list(tr.visibility), "val": list(va.visibility)}
    return SynthResult(tr.path, va.path, time.perf_counter() - t0, figures, vis)


@dataclass
class ValidateResult:
    findings: dict[str, list]  # per set

    def errors(self) -> int:
        return sum(f.severity == "error" for fs in self.findings.values() for f in fs)


def validate_step(paths: DemoPaths, sk: Skeleton, progress: Progress | None = None) -> ValidateResult:
    """`posedata validate --images` on both sets."""
    from .validate import validate_file

    out = {}
    for name, p, img in (("train", paths.train_json, paths.train / "images"), ("val", paths.val_json, paths.val / "images")):
        out[name] = validate_file(p, sk, images=img, progress=progress)[1]
    return ValidateResult(out)


def convert_step(paths: DemoPaths, sk: Skeleton):
    """`posedata convert --images` of the training set, through the library call the command makes
    (convert_job.run_convert): returns the Labels written."""
    from .convert_job import run_convert
    from .errors import InputError
    from .formats.base import ImportOptions

    job = run_convert(paths.train_json, sk, paths.labels, options=ImportOptions(images=paths.train / "images"))
    if job.written is None:
        why = f"{job.errors} validation error(s)" if job.blocked else "no training sample"
        raise InputError(f"the demo's training set did not convert ({why}); nothing written", file=job.where)
    return job.labels


def preview_step(plan: DemoPlan, paths: DemoPaths, sk: Skeleton, labels, progress: Progress | None = None) -> list:
    """`posedata preview` at the training input size: the targets exactly as the trainer sees them."""
    from .augment import AugmentConfig
    from .preview import preview

    cfg = AugmentConfig(crop_w=plan.input_size, crop_h=plan.input_size, input_size=plan.input_size)
    return preview(labels, sk, paths.train / "images", paths.preview, n=plan.preview_samples, seed=plan.seed, cfg=cfg,
                   progress=progress)


@dataclass
class FlipResult:
    flip: Any  # flipcheck.FlipVerdict: the same verdict `posedata flipcheck` prints
    written: list[Path] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return self.flip.verdict


def flipcheck_step(plan: DemoPlan, paths: DemoPaths, sk: Skeleton) -> FlipResult:
    """`posedata flipcheck --images` on the training set: the same function, verdict and plots."""
    from .flipcheck import run_flipcheck

    run = run_flipcheck(paths.train_json, sk, paths.flipcheck, paths.train / "images", plan.flip_instances, plan.seed)
    return FlipResult(run.verdict, run.plots)


@dataclass
class TrainSummary:
    iterations: int
    seconds: float
    images_per_s: float  # training images over the training wall time (start-up and checkpoints included)
    cpu_seconds_per_step: float  # CPU time of this process (all threads) per step: what an idle machine needs
    last_loss: float | None
    first_loss: float | None
    stopped_early: bool
    checkpoint: Path
    curve: Path
    metrics: Path
    notes: list[str] = field(default_factory=list)


def train_config(plan: DemoPlan, paths: DemoPaths, sk: Skeleton):
    from trainer.train import TrainConfig

    return TrainConfig(labels=str(paths.labels), images=str(paths.train / "images"), output=str(paths.run),
                       skeleton_file=str(sk.file) if sk.file else None,
                       iterations=plan.iterations, batch_size=plan.batch_size, lr=plan.lr, stages=plan.stages,
                       input_size=plan.input_size, width=plan.width, seed=plan.seed,
                       checkpoint_every=plan.checkpoint_every, threads=plan.threads)


def train_step(plan: DemoPlan, paths: DemoPaths, sk: Skeleton,
               callback: Callable[[str, dict[str, Any]], None] | None = None) -> TrainSummary:
    """Train for plan.iterations steps (the learning-rate drops sit at fixed fractions of them)."""
    from trainer.train import train

    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    c0 = time.process_time()

    def on(event: str, info: dict[str, Any]) -> None:
        if event == "step":
            rows.append(info)
        if callback:
            callback(event, info)

    result = train(train_config(plan, paths, sk), sk, callback=on)
    secs = time.perf_counter() - t0
    cpu = time.process_time() - c0
    images = plan.batch_size * len(rows)
    return TrainSummary(
        iterations=result.iteration, seconds=secs, images_per_s=images / max(secs, 1e-9),
        cpu_seconds_per_step=cpu / max(len(rows), 1),
        last_loss=result.last_loss, first_loss=rows[0]["loss"] if rows else None,
        stopped_early=result.stopped_early, checkpoint=paths.run / "last.pt", curve=paths.run / "loss_curve.png",
        metrics=paths.run / "metrics.jsonl", notes=list(result.notes),
    )


def val_step(plan: DemoPlan, paths: DemoPaths, sk: Skeleton, progress: Progress | None = None) -> dict[str, Any]:
    """`posedata val --flip` of the last checkpoint on the held-out set (results, metrics, overlays),
    at plan.val_input_size with the maps of plan.val_scales averaged.

    Images are scaled to about the training input size: the figures then have the size the network
    saw in its crops (on a 1000-step checkpoint: AP 0.41 at input 128, 0.30 at the images' own 160),
    and averaging three heights around it smooths the peaks the keypoints are read from. --flip
    averages with the mirrored image through the flip map (+0.07 AP), which also makes a wrong flip
    map cost AP here."""
    from trainer import evaluate as E
    from trainer.predict import choose_backend
    from trainer.threads import apply_thread_policy

    apply_thread_policy(plan.threads)  # as training ran: the same threads, passive OpenMP waiting
    ckpt = paths.run / "last.pt"
    # the backend `posedata val --backend auto` picks for this many images, so the two agree
    loaded = E.load_model(ckpt, sk, backend=choose_backend("auto", ckpt, "cpu", plan.val_images, sk)[0])
    return E.evaluate(loaded.model, sk, paths.val_json, paths.val / "images", input_size=plan.val_input_size,
                      flip=plan.val_flip, scales=plan.val_scales, out_dir=paths.results, overlays=plan.val_overlays,
                      progress=progress)


def val_description(plan: DemoPlan) -> str:
    """How val ran, for the report: "input 136, heights 128/136/144, flip"."""
    heights = "/".join(f"{s * plan.val_input_size:.0f}" for s in plan.val_scales)
    return (f"input {plan.val_input_size}" + (f", heights {heights}" if len(plan.val_scales) > 1 else "")
            + (", flip" if plan.val_flip else ""))


def summary(plan: DemoPlan, paths: DemoPaths, syn: SynthResult, tr: TrainSummary, res: dict[str, Any],
            seconds: float, loads: list[tuple[str, float | None]]) -> dict[str, Any]:
    """The figures of one demo run (written to summary.json; bench/README.md quotes them)."""
    import dataclasses
    import platform

    train_loads = [v for k, v in loads if k == "train" and v is not None]
    return {
        "AP": res["AP"], "AP50": res["AP50"], "AP75": res["AP75"], "AR": res["AR"],
        "minutes": round(seconds / 60, 2), "train_minutes": round(tr.seconds / 60, 2),
        "iterations": tr.iterations, "images_per_s": round(tr.images_per_s, 1),
        "cpu_seconds_per_step": round(tr.cpu_seconds_per_step, 4), "threads": plan.threads,
        "stopped_early": tr.stopped_early, "first_loss": tr.first_loss, "last_loss": tr.last_loss,
        "load_average": {"samples": loads,
                         "train_mean": round(sum(train_loads) / len(train_loads), 2) if train_loads else None,
                         "train_max": max(train_loads) if train_loads else None},
        "synth_seconds": round(syn.seconds, 1), "figures": syn.figures,
        "plan": dataclasses.asdict(plan),
        "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
        "artefacts": {k: str(v) for k, v in {
            "train_json": syn.train_json, "val_json": syn.val_json, "labels": paths.labels,
            "preview": paths.preview / "index.png", "flipcheck": paths.flipcheck, "checkpoint": tr.checkpoint,
            "loss_curve": tr.curve, "metrics": tr.metrics, "val_metrics": paths.results / "metrics.json"}.items()},
    }
