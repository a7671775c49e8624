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

train() takes the process (devices, seeds, the run lock); _train() is the loop, visible at once,
and what it calls is named beside it: start_run (the network and optimiser, new or resumed:
resume_from), log_step, checkpoint (validate, then save_last) and finish. Distributed: under
`torchrun` (WORLD_SIZE > 1) each process trains one shard (trainer/distributed.py); gradients are
averaged, so the update equals the reference's on the global batch. An early stop (a signal, the
--max-minutes budget) is trainer/stopping.py's.
"""
from __future__ import annotations

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
from posedata.io import atomic_write_text

from . import checkpoint as C
from . import evaluate as E
from . import runlog
from .data import PoseDataset, Prefetch, batches_per_epoch, make_loader
from .device import resolve_device
from .distributed import Dist, any_rank, barrier, mean_over_ranks, setup_distributed, stop_with_launcher
from .loss import total_loss
from .model import STRIDE, for_skeleton, param_groups
from .stopping import Budget, Interrupts
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
    preset: str | None = None  # trainer.presets name the options came from (a record only)
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
    interrupted: str | None = None  # SIGINT / SIGTERM when one ended the run: last.pt holds the iteration reached


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


def rescheduled(taken: list[int], iteration: int, total: int) -> list[int]:
    """The learning-rate drops for a run of `total` iterations now at `iteration`, given the drop
    milestones the run has had so far.

    Drops already taken stay taken (the rate never rises); the remaining ones move to the
    reference's fractions of the new total, and never into the past. So extending a finished run
    trains on at its final rate, and extending a run half-way keeps its remaining drops at the same
    fractions of the longer run."""
    done = sorted(m for m in taken if m <= iteration)
    scaled = sorted(max(1, round(f * total)) for f in LR_DROP_FRACTIONS)
    return done + [max(m, iteration + 1) for m in scaled[len(done):]]


def set_schedule(scheduler, milestones: list[int]) -> None:
    """Put new future drops onto a loaded MultiStepLR; the optimiser's current rate is kept."""
    from collections import Counter

    scheduler.milestones = Counter(milestones)


def loss_names(stages: int) -> list[str]:
    names = []
    for s in range(stages + 1):
        names += [f"stage{s}_heatmaps", f"stage{s}_pafs"]
    return names


@dataclass
class RunState:
    """What a run carries from step to step (and what last.pt stores)."""

    cfg: TrainConfig
    skeleton: Any
    out: Path
    d: Dist
    model: torch.nn.Module
    spec: dict[str, Any]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    emit: Callback
    iteration: int = 0
    best_ap: float | None = None
    saved_at: int = -1
    validated_at: int = -1
    metrics_rows: list[dict[str, Any]] = field(default_factory=list)
    metrics_file: Any = None  # rank 0's metrics.jsonl, open for appending while the loop runs
    board: Any = None  # runlog.TensorBoardLog with --tensorboard
    first: int = 0  # the iteration this process started from
    measured: list[tuple[float, int]] = field(default_factory=list)  # (seconds, images) of the timed steps

    def log(self, row: dict[str, Any]) -> None:
        """A metrics.jsonl line (and its TensorBoard scalars), written as it happens."""
        if self.metrics_file is not None:
            self.metrics_file.write(json.dumps(row) + "\n")
            self.metrics_file.flush()
            self.metrics_rows.append(row)
        if self.board is not None:
            self.board.write(row)


def speed_probe(model: torch.nn.Module, input_size: int, device: torch.device) -> float:
    """Seconds per image of a forward and backward pass at input_size: an estimate before the
    first (possibly minutes-long) step. In eval mode and with its own generator, so neither the
    BatchNorm statistics nor any random stream change."""
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, input_size, input_size, generator=g).to(device)
    try:
        times = []
        for _ in range(2):  # the first pass pays one-off allocation costs
            t = time.perf_counter()
            sum(o.float().mean() for o in model(x)).backward()
            times.append(time.perf_counter() - t)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return times[-1]


def estimate(state: RunState, budget: Budget, images_per_s: float, preset: str | None) -> dict[str, Any]:
    """The whole run's expected remaining time at the measured speed: steps, then checkpoints
    and validations at their measured (else estimated) cost."""
    from .presets import LONG_CPU_RUN_S, faster_than

    cfg = state.cfg
    steps = cfg.iterations - state.iteration
    step_s = cfg.batch_size * state.d.world / images_per_s
    checkpoints = steps // cfg.checkpoint_every + 1
    seconds = steps * step_s + checkpoints * (budget.save() + budget.validation())
    if budget.deadline is not None:
        seconds = min(seconds, max(0.0, budget.left()))
    long = state.d.device.type == "cpu" and seconds > LONG_CPU_RUN_S
    return {"iteration": state.iteration, "iterations": cfg.iterations, "images_per_s": images_per_s,
            "seconds_per_step": step_s, "seconds": seconds, "capped_by_budget": budget.deadline is not None,
            "long_on_cpu": long, "faster_preset": faster_than(preset or "") if long else None}


def resume_from(state: RunState, last: Path) -> None:
    """Load last.pt into the run (weights, optimiser, schedule, RNG, best AP), extend the
    schedule when --iterations grew, and cut metrics.jsonl back to the checkpoint."""
    cfg, out = state.cfg, state.out
    if last.exists():
        ckpt = C.load(last)
        C.check_fingerprint(ckpt, state.skeleton, str(last))
        if ckpt.get("model") != state.spec:
            raise InputError(f"checkpoint model {ckpt.get('model')} differs from the configured {state.spec}",
                             file=str(last))
        state.model.load_state_dict(ckpt["state_dict"])
        state.optimizer.load_state_dict(ckpt["optimizer"])
        state.scheduler.load_state_dict(ckpt["scheduler"])
        state.iteration = state.saved_at = int(ckpt["iteration"])
        # best.pt is written before last.pt: a kill between the two must not lose its AP
        known = [ckpt.get("best_ap")]
        if (out / BEST).exists():
            known.append(C.load(out / BEST).get("best_ap"))
        known = [x for x in known if x is not None]
        state.best_ap = max(known) if known else None
        set_rng_state(ckpt["rng"])
        before = sorted(state.scheduler.milestones.elements())
        after = rescheduled(before, state.iteration, cfg.iterations)
        set_schedule(state.scheduler, after)
        if after != before or (ckpt.get("config") or {}).get("iterations") != cfg.iterations:
            lr = state.optimizer.param_groups[0]["lr"]
            left = [m for m in after if m > state.iteration]
            state.emit("note", {"message": (
                f"schedule for {cfg.iterations} iterations: learning rate stays {lr:.3g} now "
                f"({len(after) - len(left)} of {len(after)} drops taken); "
                + (f"x{LR_GAMMA} at {', '.join(map(str, left))}" if left else "no further drops"))})
        state.emit("note", {"message": f"resumed from {last} at iteration {state.iteration}"})
    else:
        state.emit("note", {"message": f"no {LAST} in {out} yet (stopped before the first checkpoint); "
                                       "starting from iteration 0"})
    if state.d.main:
        # lines after the checkpoint belong to iterations that will run again
        state.metrics_rows = read_metrics(out / METRICS, state.iteration)
        atomic_write_text(out / METRICS, "".join(json.dumps(r) + "\n" for r in state.metrics_rows))


def validate(state: RunState, evaluate) -> dict[str, Any] | None:
    """Validation AP of the current weights on rank 0; best.pt when it improves. Every rank
    waits for it (the others have nothing to do meanwhile)."""
    stats = None
    if evaluate is not None and state.d.main:
        cfg, model = state.cfg, state.model
        model.eval()
        started = time.perf_counter()
        with torch.no_grad():
            stats = evaluate(model, state.skeleton, cfg.val_json, cfg.val_images, input_size=cfg.input_size)
        model.train()
        state.log(runlog.validation_row(state.iteration, stats, time.perf_counter() - started))
        ap = float(stats["AP"])
        improved = state.best_ap is None or ap > state.best_ap
        if improved:
            state.best_ap = ap
            C.save(C.training_checkpoint(model, state.spec, state.skeleton.to_dict(), state.skeleton.fingerprint,
                                         iteration=state.iteration, best_ap=ap, config=asdict(cfg)),
                   state.out / BEST)
        state.emit("validation", {"iteration": state.iteration, "AP": ap, "best": state.best_ap,
                                  "improved": improved})
    state.validated_at = state.iteration
    barrier(state.d)
    return stats


def save_last(state: RunState) -> None:
    if state.d.main:
        C.save(C.training_checkpoint(
            state.model, state.spec, state.skeleton.to_dict(), state.skeleton.fingerprint,
            optimizer=state.optimizer.state_dict(), scheduler=state.scheduler.state_dict(),
            iteration=state.iteration, best_ap=state.best_ap, rng=rng_state(), config=asdict(state.cfg),
        ), state.out / LAST)
        plot_losses(state.metrics_rows, state.out / CURVE, f"{state.skeleton.name}: {state.out.name}")
        state.emit("checkpoint", {"iteration": state.iteration, "path": str(state.out / LAST)})
    state.saved_at = state.iteration


def batch_stream(loader, sampler, per_epoch: int, batch_size: int, start: int):
    """(epoch, batch) from iteration `start` on, epoch after epoch: where a resumed run left off."""
    epoch, offset = divmod(start, per_epoch)
    while True:
        sampler.set_position(epoch, offset * batch_size)
        for batch in loader:
            yield epoch, batch
        epoch, offset = epoch + 1, 0


def clear_run_files(out: Path) -> None:
    """A fresh run into a folder an earlier run used (replaced with --force): its files would mix
    into this run's metrics and checkpoints."""
    for name in (METRICS, LAST, BEST, CURVE, INIT_REPORT, CONFIG):
        (out / name).unlink(missing_ok=True)


def clear_temp_files(out: Path) -> None:
    """Temp files of atomic writes a SIGKILL interrupted (.last.pt.<random>.tmp, ...): never read,
    but each may be a whole checkpoint's size."""
    for name in (METRICS, LAST, BEST, CURVE, INIT_REPORT, CONFIG):
        for tmp in out.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def train(cfg: TrainConfig, skeleton, *, resume: bool = False, callback: Callback | None = None,
          locked: bool = False, started: float | None = None) -> TrainResult:
    """Train (or resume) a run into cfg.output. callback(event, info) receives progress on rank 0:
    'start', 'init', 'note', 'estimate', 'step', 'checkpoint', 'validation', 'interrupt', 'end'.

    locked: the caller already holds the run folder's lock (posedata.io's output claim); else
    train() takes it. started: time.monotonic() when the command started, from which
    --max-minutes counts (default: now)."""
    from . import run as R

    started = time.monotonic() if started is None else started
    cfg.validate()
    d = setup_distributed(cfg.device)
    if "LOCAL_RANK" in os.environ:
        stop_with_launcher()
    emit: Callback = (callback if (callback and d.main) else (lambda e, i: None))
    out = Path(cfg.output)
    notes: list[str] = []

    def on_event(event: str, info: dict[str, Any]) -> None:
        if event == "note":
            notes.append(info["message"])
        emit(event, info)

    seed_everything(cfg.seed, d.rank)
    if cfg.threads:
        # On a busy CPU, intra-op threads that outnumber free cores make small layers many times
        # slower (threads wait for each other); --threads 1 is the cure there.
        apply_thread_policy(cfg.threads)

    lock = R.RunLock(out) if d.main and not locked else None
    if lock is not None:
        lock.acquire()
    try:
        return _train(cfg, skeleton, d, out, resume, on_event, notes, started)
    finally:
        if lock is not None:
            lock.release()


def _train(cfg: TrainConfig, skeleton, d: Dist, out: Path, resume: bool, emit: Callback, notes: list[str],
           started: float) -> TrainResult:
    if d.main:
        prepare_folder(out, resume)
    dataset = PoseDataset(cfg.labels, cfg.images, skeleton, augment_config(cfg.input_size), seed=cfg.seed)
    loader, sampler = make_loader(dataset, cfg.batch_size, cfg.workers, cfg.seed, d.rank, d.world)
    per_epoch = batches_per_epoch(len(dataset), cfg.batch_size, d.world)
    state = start_run(cfg, skeleton, d, out, resume, emit)
    model, optimizer, scheduler = state.model, state.optimizer, state.scheduler
    net: torch.nn.Module = model
    if d.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[d.local_rank] if d.device.type == "cuda" else None)
    evaluate = E.evaluate if cfg.val_json else None
    budget = make_budget(state, evaluate is not None, started)
    emit("start", {"iteration": state.iteration, "iterations": cfg.iterations, "samples": len(dataset),
                   "batches_per_epoch": per_epoch, "world": d.world, "device": str(d.device), "preset": cfg.preset})
    if d.main and d.device.type == "cpu" and state.iteration < cfg.iterations:
        per_image = speed_probe(model, cfg.input_size, d.device)
        emit("estimate", {**estimate(state, budget, 1.0 / per_image, cfg.preset), "probe": True})
    open_logs(state)
    stream = batch_stream(loader, sampler, per_epoch, cfg.batch_size, state.iteration)
    if cfg.workers == 0:
        stream = Prefetch(stream)  # the next batch is made while this one trains (workers do that otherwise)
    layout = memory_format(d.device)
    stop = None
    try:
        with Interrupts(lambda name: emit("interrupt", {"signal": name, "iteration": state.iteration})) as interrupts:
            while state.iteration < cfg.iterations:
                reason = "interrupt" if interrupts.received else (None if budget.allows_step() else "budget")
                if any_rank(reason is not None, d):
                    stop = reason or "interrupt"  # another rank's reason: the ranks stop together
                    break
                tick = time.perf_counter()
                epoch, batch = next(stream)
                images = batch["image"].to(d.device, non_blocking=True, memory_format=layout)
                outputs = net(images)
                loss, parts = total_loss(outputs, batch["heatmaps"].to(d.device), batch["pafs"].to(d.device),
                                         batch["mask"].to(d.device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                lr = optimizer.param_groups[0]["lr"]  # the base rate this step used
                optimizer.step()
                scheduler.step()
                state.iteration += 1

                parts = mean_over_ranks(parts, d)
                log_step(state, budget, epoch, parts, lr, images.shape[0] * d.world, time.perf_counter() - tick)
                if state.iteration % cfg.checkpoint_every == 0 or state.iteration == cfg.iterations:
                    checkpoint(state, evaluate, budget, validating=True)
            if stop is not None and state.saved_at != state.iteration:
                checkpoint(state, evaluate, budget, validating=worth_validating(state, stop, budget))
    finally:
        close_logs(state)
        if isinstance(stream, Prefetch):
            stream.close()
    return finish(state, stop, interrupts.received, notes)


def prepare_folder(out: Path, resume: bool) -> None:
    """Rank 0, before anything reads the run folder: the located error for a resume without a
    config.json, and the temp files a killed run left."""
    from . import run as R

    if resume and not (out / CONFIG).is_file():
        R.read_config(out)  # the located "no config.json" error
    R.clear_stale_config_temps(out)
    if out.is_dir():
        clear_temp_files(out)


def start_run(cfg: TrainConfig, skeleton, d: Dist, out: Path, resume: bool, emit: Callback) -> RunState:
    """The network, optimiser and schedule of the run: a new run's config.json written, or the
    run resumed from its last.pt (and its config.json told so)."""
    from . import run as R

    # model and optimiser (reference groups, Adam, weight decay 5e-4 as L2 in the gradient)
    model = for_skeleton(skeleton, stages=cfg.stages, width=cfg.width)
    spec = model.spec.to_dict()
    if d.main and not resume:
        # the folder gets its config.json in one rename: a kill leaves it empty or resumable
        clear_run_files(out)
        R.write_first_config(out, R.new_config(
            asdict(cfg), out, skeleton=skeleton.to_dict(), fingerprint=skeleton.fingerprint, model=spec,
            lr_milestones=cfg.milestones(), lr_gamma=LR_GAMMA, world_size=d.world,
            versions=versions()))
    barrier(d)  # no rank reads the folder before rank 0 has made it

    # --init seeds a run that has no checkpoint of its own yet (a resume of a run stopped before
    # its first checkpoint starts over, from the same initial weights)
    if cfg.init and not (resume and (out / LAST).exists()):
        report = C.load_partial(model, C.load(cfg.init)["state_dict"])
        emit("init", {"path": cfg.init, "report": report})
    # before the optimiser, so loaded optimiser state lands on the right device (and layout)
    model.to(d.device, memory_format=memory_format(d.device))
    optimizer = torch.optim.Adam(param_groups(model, cfg.lr), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=cfg.milestones(), gamma=LR_GAMMA)
    state = RunState(cfg, skeleton, out, d, model, spec, optimizer, scheduler, emit)
    if resume:
        resume_from(state, out / LAST)
        if d.main:
            R.update_config(out, asdict(cfg), lr_milestones=sorted(scheduler.milestones.elements()),
                            resumes=R.read_config(out).get("resumes", []) + [{
                                "iteration": state.iteration, "iterations": cfg.iterations,
                                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions()}])
    barrier(d)
    model.train()
    state.first = state.iteration
    return state


def memory_format(device: torch.device) -> torch.memory_format:
    """The layout of the weights and network inputs in training. On the CPU channels-last (as
    inference uses, trainer.model.for_inference): oneDNN then runs the depthwise and 1x1
    convolutions without converting layouts around each one, and a step of the cpu-small
    network costs about a quarter less CPU time (width 1.0 at 368 px: no change; bench/README.md
    "demo"). Elsewhere the default layout."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def make_budget(state: RunState, validating: bool, started: float) -> Budget:
    cfg = state.cfg
    val_images = _count_images(cfg.val_json) if validating else 0
    ckpt_bytes = sum(p.numel() * p.element_size() for p in state.model.parameters()) * 3  # weights + Adam moments
    return Budget(cfg.max_minutes, started, ckpt_bytes, val_images, cfg.batch_size)


def open_logs(state: RunState) -> None:
    """Rank 0's metrics.jsonl (appended to) and, with --tensorboard, its TensorBoard log."""
    cfg, d = state.cfg, state.d
    if d.main and cfg.max_minutes:
        from posedata.plots import pyplot

        pyplot()  # its import would otherwise land in the first checkpoint and upset the budget's costing
    state.metrics_file = open(state.out / METRICS, "a", encoding="utf-8") if d.main else None
    state.board = runlog.TensorBoardLog(state.out) if cfg.tensorboard and d.main else None


def close_logs(state: RunState) -> None:
    if state.metrics_file is not None:
        state.metrics_file.close()
    state.metrics_file = None
    if state.board is not None:
        state.board.close()


ESTIMATE_AFTER_STEPS = 4  # measured steps (after the first) behind the printed speed and estimate


def log_step(state: RunState, budget: Budget, epoch: int, parts: list[float], lr: float, images: int,
             seconds: float) -> None:
    """The step's metrics line and event; once the speed is measured, the run's estimate."""
    budget.record("step", seconds)
    row = {"iteration": state.iteration, "epoch": epoch, "loss": float(sum(parts)),
           "losses": dict(zip(loss_names(state.cfg.stages), parts, strict=True)), "lr": lr,
           "images_per_s": images / max(seconds, 1e-9)}
    state.log(row)
    state.emit("step", row)
    if state.iteration > state.first + 1:  # the first step pays one-off costs
        state.measured.append((seconds, images))
        if len(state.measured) == ESTIMATE_AFTER_STEPS:
            speed = sum(n for _, n in state.measured) / sum(t for t, _ in state.measured)
            state.emit("estimate", {**estimate(state, budget, speed, state.cfg.preset), "probe": False})


def worth_validating(state: RunState, stop: str, budget: Budget) -> bool:
    """At an early stop: a budget stop validates only when it is worth it and fits; an interrupt
    saves at once."""
    since = state.iteration - max(state.validated_at, 0)
    return stop == "budget" and since >= max(1, state.cfg.checkpoint_every // 4) and budget.allows_validation()


def finish(state: RunState, stop: str | None, signal: str | None, notes: list[str]) -> TrainResult:
    cfg = state.cfg
    if stop == "budget":
        state.emit("note", {"message": f"stopped at iteration {state.iteration} to end within the {cfg.max_minutes}-"
                                       f"minute budget; continue with: posedata train --resume {state.out}"})
    barrier(state.d)
    steps = [r for r in state.metrics_rows[-3:] if "loss" in r]  # validation lines carry no loss
    last_loss = steps[-1]["loss"] if steps and steps[-1]["iteration"] == state.iteration else None
    result = TrainResult(str(state.out), state.iteration, stop == "budget", state.best_ap, last_loss, notes,
                         interrupted=(signal or "SIGTERM") if stop == "interrupt" else None)
    state.emit("end", asdict(result))
    return result


def checkpoint(state: RunState, evaluate, budget: Budget, validating: bool) -> None:
    """Validation (first, so last.pt records the best AP so far), then last.pt."""
    metrics_file = state.metrics_file
    if metrics_file is not None:
        os.fsync(metrics_file.fileno())  # metric lines reach disk before the checkpoint names them
    if validating and evaluate is not None:
        t = time.monotonic()
        validate(state, evaluate)
        budget.record("validation", time.monotonic() - t)
        if metrics_file is not None:
            os.fsync(metrics_file.fileno())  # and its metric line
    t = time.monotonic()
    save_last(state)
    budget.record("save", time.monotonic() - t)


def _count_images(coco_json: str | None) -> int:
    if not coco_json:
        return 0
    try:
        from posedata.io import load_json

        return len(load_json(coco_json).get("images") or [])
    except Exception:  # the validation itself reports a bad file; this is only an estimate
        return 0
