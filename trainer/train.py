"""The training loop: one readable loop over iterations, the reference's optimiser and loss.

Run folder (written by rank 0 only):
  config.json     everything needed to reproduce the run (skeleton copy, fingerprint, options, versions)
  metrics.jsonl   one JSON line per iteration, appended and flushed as it goes
  last.pt         model, optimiser, scheduler, iteration, RNG states; every N iterations and at the end
  best.pt         the checkpoint with the best validation AP (when a validation set is given)
  loss_curve.png  updated at every checkpoint

Every file is replaced atomically, and metrics.jsonl is cut back to the checkpoint's iteration on
resume, so a run killed at any moment (SIGKILL included) resumes without a corrupt file and
without duplicated or missing metric lines.

Distributed: under `torchrun` (WORLD_SIZE > 1) each process trains one shard with
DistributedDataParallel (gloo on CPU, nccl on GPUs); gradients are averaged, so the update equals
the reference's on the global batch.
"""
from __future__ import annotations

import bisect
import json
import os
import platform
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The thread policy (passive OpenMP waiting) is in place before this import of torch: the trainer
# package applies it on import (trainer/threads.py).
import numpy as np
import torch

from posedata.augment import check_input_size
from posedata.errors import InputError
from posedata.io import atomic_write_json, atomic_write_text

from . import checkpoint as C
from . import runlog
from .data import PoseDataset, batches_per_epoch, make_loader
from .device import resolve_device
from .loss import total_loss
from .model import STRIDE, for_skeleton, param_groups
from .threads import apply_thread_policy

# The reference trains 280 epochs and multiplies the learning rate by 0.333 after epochs
# 100, 200 and 260. A run here is counted in iterations, so the drops sit at the same fractions
# of the run: 100/280, 200/280 and 260/280 of --iterations.
LR_DROP_FRACTIONS = (100 / 280, 200 / 280, 260 / 280)
LR_GAMMA = 0.333

CONFIG = "config.json"
METRICS = "metrics.jsonl"
LAST = "last.pt"
BEST = "best.pt"
CURVE = "loss_curve.png"
INIT_REPORT = "init_report.json"  # written by the CLI from the 'init' event


@dataclass
class TrainConfig:
    """Every option of a run. Defaults are the reference's where it has one."""

    labels: str
    images: str
    output: str
    skeleton_file: str | None = None
    val_json: str | None = None
    val_images: str | None = None
    iterations: int = 20000
    batch_size: int = 80  # reference: 80 per iteration
    lr: float = 4e-5  # reference base_lr
    weight_decay: float = 5e-4  # reference, Adam's L2 term
    stages: int = 1  # refinement stages (reference default 1)
    input_size: int = 368
    width: float = 1.0
    workers: int = 0
    seed: int = 0
    checkpoint_every: int = 1000
    init: str | None = None
    max_minutes: float | None = None
    threads: int | None = None  # torch intra-op threads per process (None: torch's default)
    device: str = "auto"  # trainer.device.resolve_device: CUDA when available, else the CPU
    tensorboard: bool = False  # also write metrics.jsonl's scalars to run/tensorboard (extra 'tensorboard')

    def validate(self) -> None:
        for name in ("iterations", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.stages < 0:
            raise InputError(f"--stages must be >= 0, got {self.stages}")
        check_input_size(self.input_size, STRIDE)
        if not 0 < self.width <= 4:
            raise InputError(f"--width must be in (0, 4], got {self.width}")
        if self.lr <= 0:
            raise InputError(f"--lr must be > 0, got {self.lr}")
        if self.workers < 0:
            raise InputError(f"--workers must be >= 0, got {self.workers}")
        if (self.val_json is None) != (self.val_images is None):
            raise InputError("--val-json and --val-images go together")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be >= 1, got {self.threads}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise InputError(f"--max-minutes must be > 0, got {self.max_minutes}")
        resolve_device(self.device)  # an unusable --device fails before any work
        if self.tensorboard:
            runlog.require_tensorboard()

    def milestones(self) -> list[int]:
        return sorted({max(1, round(f * self.iterations)) for f in LR_DROP_FRACTIONS})


@dataclass
class TrainResult:
    output: str
    iteration: int
    stopped_early: bool
    best_ap: float | None
    last_loss: float | None
    notes: list[str] = field(default_factory=list)


Callback = Callable[[str, dict[str, Any]], None]


# ------------------------------------------------------------------ helpers
def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        pd = version("posedata")
    except PackageNotFoundError:  # running from a source tree
        pd = "source"
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__, "posedata": pd}


def augment_config(input_size: int):
    """posedata's augmentation settings (the reference's defaults) for a square crop of
    input_size. The crop and the scale normaliser (scale_provided = bbox height / input_size)
    change together, so a person fills the same fraction of a small crop as of the reference's
    368 x 368 one."""
    from posedata.augment import AugmentConfig

    return AugmentConfig(crop_w=input_size, crop_h=input_size, input_size=input_size)


def rng_state() -> dict[str, Any]:
    """Global generator states in types torch.load(weights_only=True) accepts.

    Rank 0's states are saved and every rank restores them on resume; the data stream does not
    depend on them (each sample's generator is seeded from seed, epoch and index), so this only
    matters to code that draws from the global generators."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def seed_everything(seed: int, rank: int = 0) -> None:
    random.seed(seed + rank)
    np.random.seed((seed + rank) % 2**32)
    torch.manual_seed(seed)  # the same on every rank: identical initial weights


def read_metrics(path: Path, upto: int) -> list[dict[str, Any]]:
    """Complete metric lines with iteration <= upto (a torn last line is dropped)."""
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("iteration"), int) and row["iteration"] <= upto:
            rows.append(row)
    return rows


def plot_losses(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """The training plot: loss, learning rate and, when the run validates, AP (trainer.runlog)."""
    runlog.plot_training(rows, path, title)


def set_schedule(optimizer: torch.optim.Optimizer, scheduler, milestones: list[int], iteration: int) -> None:
    """Put the step schedule for the current total onto the optimiser: used on resume when
    --iterations changed, so the drops still sit at the reference's fractions of the run."""
    from collections import Counter

    scheduler.milestones = Counter(milestones)
    drops = bisect.bisect_right(milestones, iteration)
    for g in optimizer.param_groups:
        g["lr"] = g["initial_lr"] * LR_GAMMA**drops


def loss_names(stages: int) -> list[str]:
    names = []
    for s in range(stages + 1):
        names += [f"stage{s}_heatmaps", f"stage{s}_pafs"]
    return names


# ------------------------------------------------------------- distributed
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> Dist:
    """torchrun sets WORLD_SIZE / RANK / LOCAL_RANK; otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=resolve_device(device))
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank=local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(rank, world, local, dev)


def any_rank(flag: bool, d: Dist) -> bool:
    """True on every rank if it is true on any (ranks must stop at the same iteration)."""
    if d.world == 1:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=d.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean_over_ranks(values: list[float], d: Dist) -> list[float]:
    if d.world == 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return (t / d.world).tolist()


def barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


# -------------------------------------------------------------------- train
def find_evaluate():
    """trainer.evaluate.evaluate if that module is present, else None (validation skipped)."""
    try:
        from .evaluate import evaluate
    except ImportError:
        return None
    return evaluate


def prepare_output(out: Path, resume: bool, d: Dist) -> None:
    """A fresh run starts from an empty folder: stale files of an earlier run (kept only with
    --force) would otherwise be mixed into this one's metrics and checkpoints."""
    if not d.main:
        return
    out.mkdir(parents=True, exist_ok=True)
    # temp files of atomic writes a SIGKILL interrupted (.last.pt.<random>.tmp, ...): never read,
    # but each is a whole checkpoint's size
    for name in (METRICS, LAST, BEST, CURVE, INIT_REPORT, CONFIG):
        for tmp in out.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
    if not resume:
        for name in (METRICS, LAST, BEST, CURVE, INIT_REPORT):
            (out / name).unlink(missing_ok=True)


def train(cfg: TrainConfig, skeleton, *, resume: bool = False, callback: Callback | None = None) -> TrainResult:
    """Train (or resume) a run into cfg.output. callback(event, info) receives progress on rank 0:
    'start', 'init', 'note', 'step', 'checkpoint', 'validation', 'end'."""
    cfg.validate()
    d = setup_distributed(cfg.device)
    emit: Callback = (callback if (callback and d.main) else (lambda e, i: None))
    out = Path(cfg.output)
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        emit("note", {"message": msg})

    seed_everything(cfg.seed, d.rank)
    if cfg.threads:
        # On a busy CPU, intra-op threads that outnumber free cores make small layers many times
        # slower (threads wait for each other); --threads 1 is the cure there.
        apply_thread_policy(cfg.threads)

    prepare_output(out, resume, d)
    barrier(d)  # no rank reads the folder before rank 0 has cleared it

    # data
    dataset = PoseDataset(cfg.labels, cfg.images, skeleton, augment_config(cfg.input_size), seed=cfg.seed)
    loader, sampler = make_loader(dataset, cfg.batch_size, cfg.workers, cfg.seed, d.rank, d.world)
    per_epoch = batches_per_epoch(len(dataset), cfg.batch_size, d.world)

    # model and optimiser (reference groups, Adam, weight decay 5e-4 as L2 in the gradient)
    model = for_skeleton(skeleton, stages=cfg.stages, width=cfg.width)
    spec = model.spec.to_dict()
    # --init seeds a run that has no checkpoint of its own yet (a resume of a run killed before
    # its first checkpoint starts over, from the same initial weights)
    if cfg.init and not (resume and (out / LAST).exists()):
        report = C.load_partial(model, C.load(cfg.init)["state_dict"])
        emit("init", {"path": cfg.init, "report": report})
    model.to(d.device)  # before the optimiser, so loaded optimiser state lands on the right device
    optimizer = torch.optim.Adam(param_groups(model, cfg.lr), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=cfg.milestones(), gamma=LR_GAMMA)

    iteration, best_ap = 0, None
    metrics_rows: list[dict[str, Any]] = []
    if resume:
        last = out / LAST
        if last.exists():
            ckpt = C.load(last)
            C.check_fingerprint(ckpt, skeleton, str(last))
            if ckpt.get("model") != spec:
                raise InputError(f"checkpoint model {ckpt.get('model')} differs from the configured {spec}", file=str(last))
            model.load_state_dict(ckpt["state_dict"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            iteration = int(ckpt["iteration"])
            # best.pt is written before last.pt: a kill between the two must not lose its AP
            known = [ckpt.get("best_ap")]
            if (out / BEST).exists():
                known.append(C.load(out / BEST).get("best_ap"))
            known = [x for x in known if x is not None]
            best_ap = max(known) if known else None
            set_rng_state(ckpt["rng"])
            if list(scheduler.milestones.elements()) != cfg.milestones():
                set_schedule(optimizer, scheduler, cfg.milestones(), iteration)
            note(f"resumed from {last} at iteration {iteration}")
        else:
            note(f"no {LAST} in {out} yet (killed before the first checkpoint); starting from iteration 0")
        if d.main:
            # Lines after the checkpoint belong to iterations that will run again.
            metrics_rows = read_metrics(out / METRICS, iteration)
            atomic_write_text(out / METRICS, "".join(json.dumps(r) + "\n" for r in metrics_rows))
    if d.main:
        write_config(cfg, skeleton, spec, d, out, resume, iteration)
    barrier(d)

    model.train()
    net: torch.nn.Module = model
    if d.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[d.local_rank] if d.device.type == "cuda" else None)

    evaluate = find_evaluate() if cfg.val_json else None
    if cfg.val_json and evaluate is None:
        note("validation skipped: trainer/evaluate.py is not available")

    def save_last() -> None:
        if d.main:
            C.save(C.training_checkpoint(
                model, spec, skeleton.to_dict(), skeleton.fingerprint,
                optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), iteration=iteration,
                best_ap=best_ap, rng=rng_state(), config=asdict(cfg),
            ), out / LAST)
            plot_losses(metrics_rows, out / CURVE, f"{skeleton.name}: {out.name}")
            emit("checkpoint", {"iteration": iteration, "path": str(out / LAST)})

    def validate() -> None:
        nonlocal best_ap
        if evaluate is not None and d.main:
            model.eval()
            started = time.perf_counter()
            with torch.no_grad():
                stats = evaluate(model, skeleton, cfg.val_json, cfg.val_images, input_size=cfg.input_size)
            model.train()
            log_row(runlog.validation_row(iteration, stats, time.perf_counter() - started))
            ap = float(stats["AP"])
            improved = best_ap is None or ap > best_ap
            if improved:
                best_ap = ap
                C.save(C.training_checkpoint(model, spec, skeleton.to_dict(), skeleton.fingerprint,
                                             iteration=iteration, best_ap=ap, config=asdict(cfg)), out / BEST)
            emit("validation", {"iteration": iteration, "AP": ap, "best": best_ap, "improved": improved})
        barrier(d)

    names = loss_names(cfg.stages)
    metrics_file = open(out / METRICS, "a", encoding="utf-8") if d.main else None
    board = runlog.TensorBoardLog(out) if cfg.tensorboard and d.main else None

    def log_row(row: dict[str, Any]) -> None:
        """A metrics.jsonl line (and its TensorBoard scalars), written as it happens."""
        if metrics_file is not None:
            metrics_file.write(json.dumps(row) + "\n")
            metrics_file.flush()
            metrics_rows.append(row)
        if board is not None:
            board.write(row)
    deadline = time.monotonic() + cfg.max_minutes * 60 if cfg.max_minutes else None
    emit("start", {"iteration": iteration, "iterations": cfg.iterations, "samples": len(dataset),
                   "batches_per_epoch": per_epoch, "world": d.world, "device": str(d.device)})
    stopped_early, last_loss = False, None
    try:
        while iteration < cfg.iterations and not stopped_early:
            epoch, offset = divmod(iteration, per_epoch)
            sampler.set_position(epoch, offset * cfg.batch_size)
            tick = time.perf_counter()
            for batch in loader:
                images = batch["image"].to(d.device, non_blocking=True)
                outputs = net(images)
                loss, parts = total_loss(outputs, batch["heatmaps"].to(d.device), batch["pafs"].to(d.device),
                                         batch["mask"].to(d.device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                lr = optimizer.param_groups[0]["lr"]  # the base rate this step used
                optimizer.step()
                scheduler.step()
                iteration += 1

                parts = mean_over_ranks(parts, d)
                now = time.perf_counter()
                images_per_s = images.shape[0] * d.world / max(now - tick, 1e-9)
                tick = now
                last_loss = float(sum(parts))
                row = {"iteration": iteration, "epoch": epoch, "loss": last_loss,
                       "losses": dict(zip(names, parts, strict=True)), "lr": lr,
                       "images_per_s": images_per_s}
                log_row(row)
                emit("step", row)

                over_time = deadline is not None and time.monotonic() > deadline
                stopped_early = any_rank(over_time, d) and iteration < cfg.iterations
                done = iteration >= cfg.iterations
                if iteration % cfg.checkpoint_every == 0 or done or stopped_early:
                    if metrics_file is not None:
                        os.fsync(metrics_file.fileno())  # metric lines reach disk before the checkpoint names them
                    validate()  # first, so last.pt records the best AP so far
                    if metrics_file is not None:
                        os.fsync(metrics_file.fileno())  # and its metric line
                    save_last()
                if done or stopped_early:
                    break
    finally:
        if metrics_file is not None:
            metrics_file.close()
        if board is not None:
            board.close()
    if stopped_early:
        note(f"stopped at iteration {iteration} after the {cfg.max_minutes}-minute budget; continue with --resume {out}")
    barrier(d)
    result = TrainResult(str(out), iteration, stopped_early, best_ap, last_loss, notes)
    emit("end", asdict(result))
    return result


def write_config(cfg: TrainConfig, skeleton, spec: dict, d: Dist, out: Path, resume: bool, iteration: int) -> None:
    """config.json: a fresh run writes it; a resume records itself in `resumes` and any changed
    total, keeping the original options."""
    path = out / CONFIG
    if resume and path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        data.setdefault("resumes", []).append({"iteration": iteration, "iterations": cfg.iterations,
                                               "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions()})
        # only the options --resume may change
        data["options"].update({k: getattr(cfg, k) for k in ("iterations", "max_minutes", "workers",
                                                             "checkpoint_every", "threads", "device",
                                                             "tensorboard")})
    else:
        data = {
            "format": "posedata-run",
            "version": 1,
            "skeleton": skeleton.to_dict(),
            "fingerprint": skeleton.fingerprint,
            "options": asdict(cfg),
            "model": spec,
            "lr_milestones": cfg.milestones(),
            "lr_gamma": LR_GAMMA,
            "world_size": d.world,
            "versions": versions(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    atomic_write_json(path, data, indent=2)


def load_run_config(run: str | os.PathLike) -> tuple[TrainConfig, dict[str, Any]]:
    """(options, skeleton dict) of an existing run folder, for --resume."""
    from posedata.io import load_json

    path = Path(run) / CONFIG
    data = load_json(path)
    try:
        opts = dict(data["options"])
        sk = dict(data["skeleton"])
    except (KeyError, TypeError):
        raise InputError("not a posedata run config (no options / skeleton)", file=str(path)) from None
    known = {f for f in TrainConfig.__dataclass_fields__}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise InputError(f"unknown options {unknown} (written by a newer posedata?)", file=str(path), where="options")
    return TrainConfig(**opts), sk


# --------------------------------------------------------------------- gate
def gate(labels_path: str | os.PathLike, skeleton, images: str | os.PathLike | None,
         val_json: str | os.PathLike | None = None, val_images: str | os.PathLike | None = None) -> tuple[str, list]:
    """The data check that must pass before the first step: posedata.check.check_labels (skeleton
    check, validate and flip check of what the labels were made from; stale labels are an error;
    images shared with the validation file are a warning).
    Returns (what was checked, findings); the caller stops on errors unless --force."""
    from posedata.check import check_labels

    checked = check_labels(labels_path, skeleton, Path(images) if images is not None else None,
                           Path(val_json) if val_json else None, Path(val_images) if val_images else None)
    return checked.source, checked.findings
