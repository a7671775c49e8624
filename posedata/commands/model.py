"""`posedata train`, `val` and `infer`: the commands that train or run a network (they import torch)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .common import (
    category_option,
    check_scales,
    checkpoint_option,
    claim,
    console,
    force_option,
    images_option,
    inference_options,
    input_size_option,
    model_skeleton_option,
    one_id,
    output_option,
    progress_bar,
    skeleton_option,
    train_fields,
)
from .render import print_findings, print_val_report


# ---------------------------------------------------------------------- train
def _print_load_report(path: str, report: Any, out_console: Console) -> None:
    """Exactly what --init loaded and what it left initialised."""
    from collections import Counter

    out_console.print(f"[bold]--init {path}[/]: {report.summary()}")
    if not report.weights_loaded:
        out_console.print("[yellow]no weight was loaded: the checkpoint's names or shapes match none of this model's "
                          "weights (the reference's checkpoints need --width 1.0)[/]")
    by_module = Counter(name.split(".")[0] + (f".{name.split('.')[1]}" if name.startswith("refinement_stages.") else "")
                        for name in report.weights_loaded)
    if by_module:
        out_console.print("  weights loaded: " + ", ".join(f"{m} ({n})" for m, n in sorted(by_module.items())))
    if report.shape_mismatch or report.missing:
        t = Table(title="kept initialised (not loaded)")
        for c in ("parameter", "checkpoint shape", "model shape"):
            t.add_column(c, overflow="fold")
        for name, (theirs, ours) in report.shape_mismatch.items():
            t.add_row(name, str(list(theirs)), str(list(ours)))
        for name in report.missing:
            t.add_row(name, "(absent)", "")
        out_console.print(t)
    if report.unused:
        out_console.print(f"  unused checkpoint tensors ({len(report.unused)}): {', '.join(report.unused)}")


@click.command("train")
@skeleton_option("Skeleton file or template name (required unless --resume).", required=False)
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path), help="Label file (.npz) from posedata.")
@images_option("Training images folder.")
@click.option("--val-json", type=click.Path(dir_okay=False, path_type=Path), help="COCO JSON for validation AP (best.pt).")
@click.option("--val-images", type=click.Path(file_okay=False, path_type=Path), help="Validation images folder.")
@output_option("folder", "Run folder.", required=False)
@click.option("--preset", type=click.Choice(["cpu-small", "reference"]), default=None,
              help="Settings that fit a machine [default: cpu-small on a CPU, reference on a GPU]; "
                   "options given override it (docs/training.md).")
@click.option("--iterations", type=int, default=None, help="Optimiser steps in total [preset: 1000 / 20000].")
@click.option("--batch-size", type=int, default=None, help="Images per step and process [preset: 16 / 80].")
@click.option("--lr", type=float, default=None, help="Base learning rate [preset: 3e-3 / 4e-5].")
@click.option("--stages", type=int, default=None, help="Refinement stages [preset: 0 / 1].")
@click.option("--input-size", type=int, default=None, help="Square crop size, a multiple of 8 [preset: 128 / 368].")
@click.option("--width", type=float, default=None, help="Channel multiplier; 1.0 is the reference network "
              "[preset: 0.25 / 1.0].")
@click.option("--workers", type=int, default=None, help="Data loader processes [default: 0].")
@click.option("--seed", type=int, default=None, help="Seed of weights, sample order and augmentation [default: 0].")
@click.option("--checkpoint-every", type=int, default=None, help="Write last.pt every N iterations "
              "[preset: 250 / 1000].")
@click.option("--init", "init_ckpt", type=click.Path(dir_okay=False, path_type=Path),
              help="Start from weights: the reference's COCO checkpoint, its MobileNet weights or a posedata checkpoint.")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path),
              help="Continue the run in this folder from last.pt (the original command's options may be repeated).")
@click.option("--max-minutes", type=float, default=None,
              help="End within this many minutes, validations and the final last.pt included.")
@click.option("--threads", type=int, default=None, help="CPU threads per process [default: torch's choice].")
@click.option("--device", default=None, help="auto (CUDA when available, else CPU), cpu, cuda, cuda:N or mps "
              "[default: auto].")
@click.option("--tensorboard", is_flag=True, default=None,
              help="Also write losses, learning rate and validation AP to RUN/tensorboard (extra 'tensorboard').")
@click.option("--skip-checks", is_flag=True,
              help="Train even when the data check fails or cannot run (its findings are still printed).")
@force_option("Replace the run folder of an earlier `posedata train`.")
def train_cmd(skeleton_spec: str | None, labels: Path | None, images: Path | None, val_json: Path | None,
              val_images: Path | None, output: Path | None, preset: str | None, iterations: int | None,
              batch_size: int | None, lr: float | None, stages: int | None, input_size: int | None,
              width: float | None, workers: int | None, seed: int | None, checkpoint_every: int | None,
              init_ckpt: Path | None, resume: Path | None, max_minutes: float | None, threads: int | None,
              device: str | None, tensorboard: bool | None, skip_checks: bool, force: bool) -> None:
    """Train the bundled Lightweight OpenPose network on a label file.

    Checks the source data first (skeleton, validate, flip map) and stops on errors unless
    --skip-checks.
    Prints the measured speed and the run's estimated time after a few steps. Ctrl-C or SIGTERM
    saves last.pt at the current step; `--resume RUN` continues it. Under
    `torchrun --nproc_per_node N -m posedata.cli train ...` it trains with
    DistributedDataParallel (gloo on CPU, nccl on GPUs); rank 0 writes the run folder and the display.
    """
    import os
    import time

    started = time.monotonic()  # --max-minutes counts from here: the data check is part of the run
    quiet = int(os.environ.get("RANK", "0")) != 0
    out_console = Console(quiet=quiet, highlight=False)
    given = dict(labels=labels, images=images, output=output, val_json=val_json, val_images=val_images,
                 init=init_ckpt, preset=preset, iterations=iterations, batch_size=batch_size, lr=lr, stages=stages,
                 input_size=input_size, width=width, workers=workers, seed=seed, checkpoint_every=checkpoint_every,
                 max_minutes=max_minutes, threads=threads, device=device, tensorboard=tensorboard)
    given = {k: (str(v) if isinstance(v, Path) else v) for k, v in given.items() if v is not None}
    from trainer.launch import resumed_run

    if resume is not None:
        cfg, sk = resumed_run(resume, given, skeleton_spec)
        out_console.print(f"resuming {resume} towards iteration {cfg.iterations} (data check ran at the start)")
    else:
        cfg, sk = _start_new_run(given, skeleton_spec, force, skip_checks, quiet, out_console)
    _run_training(cfg, sk, resume is not None, out_console, started)


def _start_new_run(given: dict[str, Any], skeleton_spec: str | None, force: bool, skip_checks: bool, quiet: bool,
                   out_console: Console) -> tuple[Any, Any]:
    """A new run: options, the output claim, the inputs' checks and the data gate, printed."""
    from trainer import presets as P
    from trainer.launch import check_inputs, new_run, refuse_existing_run

    from ..check import training_gate

    cfg, sk = new_run(given, skeleton_spec)
    labels, images, output = Path(given["labels"]), Path(given["images"]), Path(given["output"])
    val_json, val_images = (Path(given[k]) if k in given else None for k in ("val_json", "val_images"))
    init = Path(given["init"]) if "init" in given else None
    run = None
    if not quiet:  # rank 0 decides; other ranks would race it for the folder it creates
        refuse_existing_run(output, force)
        run = claim(output, "train", labels, images, val_json, val_images, init, skeleton_spec, force=force, folder=True)
    check_inputs(labels, sk, init)
    with out_console.status("checking the training data (skeleton, validate, flip map)"):
        gate = training_gate(labels, sk, images, val_json, val_images, skip_checks)
    if gate.could_not_run is not None:
        out_console.print(f"[yellow]data check could not run ({escape(gate.could_not_run)}); training anyway "
                          "(--skip-checks)[/]", soft_wrap=True)
    else:
        if not quiet:
            print_findings([f for f in gate.findings if f.severity != "info"], limit=20, title=f"data check: {gate.source}")
        refusal = gate.refusal(labels)
        if refusal is not None and not skip_checks:
            raise refusal
        out_console.print(f"[yellow]data check: {gate.errors} error(s); training anyway (--skip-checks)[/]" if refusal
                          else f"[green]data check passed[/] ({gate.source})")
    given_keys = sorted(k for k in given if k in P.PRESETS[cfg.preset])
    out_console.print(f"settings: input {cfg.input_size}, width {cfg.width}, {cfg.stages} refinement stage(s), "
                      f"batch {cfg.batch_size}, {cfg.iterations} iterations, lr {cfg.lr:g} (preset {cfg.preset}"
                      f"{'' if 'preset' in given else ', the default for this device'}"
                      + (f"; given: {', '.join('--' + k.replace('_', '-') for k in given_keys)}" if given_keys else "")
                      + ")", soft_wrap=True)
    if run is not None:
        run.in_place()  # every input is read: only now is an earlier run of this folder removed
    return cfg, sk


def _run_training(cfg: Any, sk: Any, resume: bool, out_console: Console, started: float) -> None:
    """train() under the progress display; the end line, or the interrupt's exit code."""
    from trainer.train import train

    from ..io import atomic_write_json

    with progress_bar("[bold]train[/]", *train_fields(), con=out_console, transient=False,
                      refresh_per_second=4) as bar:
        task = bar.add_task("train", total=cfg.iterations, loss="-", speed="-")

        def on_event(event: str, info: dict) -> None:
            if event == "start":
                bar.update(task, completed=info["iteration"])
                bar.console.print(f"{info['samples']} samples, {info['batches_per_epoch']} batches per epoch, "
                                  f"{info['world']} process(es) on {info['device']}")
            elif event == "estimate":
                _print_estimate(info, bar.console)
            elif event == "init":
                _print_load_report(info["path"], info["report"], bar.console)
                atomic_write_json(Path(cfg.output) / "init_report.json", info["report"].to_dict(), indent=1)
            elif event == "step":
                bar.update(task, completed=info["iteration"], loss=f"{info['loss']:.4g}",
                           speed=f"{info['images_per_s']:.1f}")
            elif event == "checkpoint":
                bar.console.print(f"iteration {info['iteration']}: wrote {info['path']}")
            elif event == "validation":
                mark = " (best, wrote best.pt)" if info["improved"] else ""
                bar.console.print(f"iteration {info['iteration']}: validation AP {info['AP']:.4f}{mark}")
            elif event == "interrupt":
                bar.console.print(f"[yellow]{info['signal']}: saving last.pt after the current step "
                                  "(interrupt again to stop without saving)[/]")
            elif event == "note":
                bar.console.print(f"[yellow]note:[/] {info['message']}", soft_wrap=True)

        result = train(cfg, sk, resume=resume, callback=on_event, started=started)
    best = f", best validation AP {result.best_ap:.4f}" if result.best_ap is not None else ""
    if result.interrupted:
        import signal

        out_console.print(f"[bold yellow]interrupted ({result.interrupted})[/]: saved {result.output}/last.pt at "
                          f"iteration {result.iteration}{best}; continue with: posedata train --resume "
                          f"{result.output}", soft_wrap=True)
        sys.exit(128 + signal.Signals[result.interrupted].value)
    state = "stopped at the time budget" if result.stopped_early else "done"
    out_console.print(f"[bold green]{state}[/]: iteration {result.iteration}, last loss "
                      f"{result.last_loss if result.last_loss is None else format(result.last_loss, '.4g')}{best}; "
                      f"run folder {result.output}")


def _print_estimate(info: dict, out_console: Console) -> None:
    """The measured speed and what the whole run will take at it; a warning with the faster
    preset when a CPU run would take hours."""
    from trainer.presets import describe, format_duration

    left = info["iterations"] - info["iteration"]
    how = "first estimate from one image" if info["probe"] else "measured"
    line = (f"speed: {info['images_per_s']:.1f} images/s ({how}, {info['seconds_per_step']:.2f} s/step); "
            f"{left} iterations left: about {format_duration(info['seconds'])}"
            + (" (within --max-minutes)" if info["capped_by_budget"] else ""))
    out_console.print(line, soft_wrap=True)
    if info["long_on_cpu"]:
        faster = info["faster_preset"]
        out_console.print(f"[bold yellow]warning:[/] this run would take {format_duration(info['seconds'])} on this "
                          "CPU" + (f"; --preset {describe(faster)} trains in minutes" if faster else "")
                          + "; Ctrl-C saves last.pt, --resume continues", soft_wrap=True)


# ------------------------------------------------------------ val / infer / export onnx, reference


@click.command("val")
@model_skeleton_option()
@checkpoint_option("posedata checkpoint, ONNX file from `export onnx`, or a reference-layout checkpoint whose heads "
                   "fit the skeleton.")
@click.option("--coco", "coco_json", type=click.Path(path_type=Path), required=True, help="COCO keypoint JSON (ground truth).")
@images_option("Images folder of the JSON.", required=True)
@inference_options
@input_size_option("Network input height (images are scaled to it) [default: the size the model was trained at, "
                   "else 368].")
@category_option("the only one, or all that share one keypoint list; one id here")
@output_option("folder", "Folder for results.json, metrics.json and overlay PNGs.", required=False)
@click.option("--overlays", type=click.IntRange(0, 10000), default=4, show_default=True, help="Overlay PNGs to write.")
@force_option("Replace the output folder of an earlier `posedata val`.")
def val_cmd(skeleton_spec: str | None, checkpoint: Path, coco_json: Path, images: Path, multiscale: bool,
            scales: tuple[float, ...] | None, flip: bool, input_size: int | None, category: Any, output: Path | None, overlays: int, backend: str,
            threads: int | None, device: str, force: bool) -> None:
    """Evaluate a checkpoint on a COCO keypoint file: inference as the reference, grouping,
    COCOeval with the skeleton's sigmas."""
    check_scales(multiscale, scales)
    out = claim(output, "val", checkpoint, coco_json, images, skeleton_spec, force=force, folder=True) \
        if output is not None else None
    from trainer import evaluate as E

    loaded, size = load_for_inference(checkpoint, skeleton_spec, threads, device, backend, input_size,
                                      coco_image_count(coco_json))
    sk = loaded.skeleton
    with progress_bar("val") as prog:
        task = prog.add_task("val", total=None)
        res = E.evaluate(loaded.model, sk, coco_json, images, input_size=size, multiscale=multiscale, flip=flip,
                         scales=scales, out_dir=out.staging() if out else None, category_id=one_id(category, "val"), overlays=overlays,
                         progress=lambda done, total: prog.update(task, completed=done, total=total))
    opts = ", ".join(x for x in ("multiscale" if multiscale else "", scale_text(size, scales), "flip" if flip else "")
                     if x)
    if out is not None:
        out.commit()
    print_val_report(res, f"{sk.name} on {coco_json.name}: COCOeval keypoints, input {size}"
                          + (f", {opts}" if opts else ""))
    if output is not None:
        console.print(f"wrote {output}/results.json, metrics.json and {min(overlays, res['n_images'])} overlay PNG(s)")


@click.command("infer")
@click.argument("source", metavar="IMAGE_OR_DIR", type=click.Path(path_type=Path))
@checkpoint_option("Model checkpoint, or an ONNX file from `export onnx`.")
@model_skeleton_option()
@output_option("folder", "Folder for one PNG per image and results.json.")
@inference_options
@input_size_option("Network input height [default: the size the model was trained at, else 368].")
@click.option("--min-score", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Keep only instances with at least this score (the score written to results.json).")
@force_option("Replace the output folder of an earlier `posedata infer`.")
def infer_cmd(source: Path, checkpoint: Path, skeleton_spec: str | None, output: Path, multiscale: bool,
              scales: tuple[float, ...] | None, flip: bool, input_size: int | None, min_score: float, backend: str, threads: int | None, device: str,
              force: bool) -> None:
    """Detect poses in an image or a folder of images: drawn PNGs and a COCO-style JSON."""
    check_scales(multiscale, scales)
    out = claim(output, "infer", source, checkpoint, skeleton_spec, force=force, folder=True)
    from trainer import evaluate as E

    paths = E.list_images(source)
    loaded, size = load_for_inference(checkpoint, skeleton_spec, threads, device, backend, input_size, len(paths))
    sk = loaded.skeleton
    with progress_bar("infer") as prog:
        task = prog.add_task("infer", total=len(paths))
        coco = E.infer(loaded.model, sk, paths, out.staging(), input_size=size, multiscale=multiscale, flip=flip,
                       scales=scales, min_score=min_score, progress=lambda done, total: prog.update(task, completed=done))
    out.commit()
    per_image: dict[int, int] = {}
    for a in coco["annotations"]:
        per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
    t = Table(title=f"{sk.name}: detections")
    for c in ("image", "instances", "best score"):
        t.add_column(c)
    for im in coco["images"][:50]:
        scores = [a["score"] for a in coco["annotations"] if a["image_id"] == im["id"]]
        t.add_row(im["file_name"], str(per_image.get(im["id"], 0)), f"{max(scores):.2f}" if scores else "-")
    console.print(t)
    console.print(f"wrote {len(paths)} PNG(s) and {output / 'results.json'} ({len(coco['annotations'])} instances)")


def scale_text(size: int, scales: tuple[float, ...] | None) -> str:
    """'heights 128/136/144' for --scales at input 136 (what the network saw)."""
    return "heights " + "/".join(f"{s * size:.0f}" for s in scales) if scales else ""


def load_for_inference(checkpoint: Path, skeleton_spec: str | None, threads: int | None, device: str, backend: str,
                       input_size: int | None, n_images: int | None = None) -> tuple[Any, int]:
    """The model val and infer run (thread policy applied first) and its input size, printed with
    the backend and why it was chosen (trainer.predict.choose_backend: `auto` sizes the job by its
    n_images)."""
    from trainer import evaluate as E
    from trainer.predict import choose_backend
    from trainer.threads import apply_thread_policy

    from .. import skeleton as S

    sk = S.resolve(skeleton_spec) if skeleton_spec else None
    apply_thread_policy(threads, torch_threads=False)  # the onnx backend on a cached graph never imports torch
    chosen, why_backend = choose_backend(backend, checkpoint, device, n_images, sk)
    if chosen == "torch":
        apply_thread_policy(threads)
    loaded = E.load_model(checkpoint, sk, device=device, backend=chosen)
    if backend == "auto" and chosen == "torch":
        from trainer.predict import cache_onnx_graph

        cache_onnx_graph(loaded)  # a later job on this checkpoint then starts ONNX Runtime without torch
    size, why = loaded.choose_input_size(input_size)
    console.print(f"model: {checkpoint} ({loaded.description}); input {size} ({why}); backend {chosen} "
                  f"({why_backend})")
    return loaded, size


def coco_image_count(coco_json: Path) -> int | None:
    """The length of a COCO file's images list, read before the model loads so that `--backend
    auto` can size val's job; None when the file cannot be read (evaluate reports why, located)."""
    from ..errors import PosedataError
    from ..io import load_json

    try:
        data = load_json(coco_json)  # msgspec: the first of val's two reads costs a third of json.load
    except PosedataError:
        return None
    images = data.get("images") if isinstance(data, dict) else None
    return len(images) if isinstance(images, list) else None
