"""`posedata convert`, `split` and `synth`: the commands that write a dataset or its labels."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from .common import (
    bbox_margin_option,
    category_option,
    claim,
    console,
    err_console,
    force_option,
    images_option,
    output_option,
    progress_bar,
    skeleton_option,
)
from .render import print_convert_summary, print_import_report, print_validate_summary


def _convert_sources() -> list[str]:
    from ..formats import FORMATS

    return ["auto", "coco", *FORMATS]


@click.command("convert")
@click.argument("data", type=click.Path(path_type=Path))
@skeleton_option()
@output_option("file", "File to write.")
@click.option("--format", "fmt", type=click.Choice(["labels", "lwop-pickle"]), default="labels", show_default=True,
              help="labels: posedata's label file (.npz, no pickle). lwop-pickle: the reference trainer's "
                   "prepared-label pickle, keypoints in the file's own order.")
@click.option("--from", "src_fmt", type=click.Choice(_convert_sources(), case_sensitive=False), default="auto",
              show_default=True,
              help="What DATA is. auto: COCO keypoint JSON is converted as it is, unless it carries a labelling "
                   "tool's fingerprints; those and every other tool's export are imported in memory first (as "
                   "`posedata import auto`). coco: never import. A format name: import with that reader.")
@category_option()
@click.option("--min-keypoints", type=click.IntRange(0, None), default=None,
              help="A training sample needs at least this num_keypoints [default: the reference's 5 of 17 as a share "
                   "of the skeleton's keypoints, rounded up, at most 5: 5 for coco17/openpose18, 2 for 4 keypoints].")
@click.option("--min-area", type=click.FloatRange(0, None), default=32 * 32, show_default=True,
              help="A training sample needs at least this area.")
@click.option("--dedup", type=click.FloatRange(0, None), default=0.3, show_default=True,
              help="Skip a sample whose bbox centre is closer than this x an accepted sample's bbox width.")
@images_option("Images folder: validation also checks the files and their sizes; an import also resolves "
                   "file names and reads missing sizes here.")
@bbox_margin_option("Import only: boxes made from keypoints are padded by this fraction of the keypoints' extent.")
@click.option("--drop-unlabelled", is_flag=True, help="Import only: drop instances with no labelled keypoints.")
@click.option("--skip-checks", is_flag=True,
              help="Convert even when validate reports errors (they are still printed).")
@force_option("Replace an existing output (never an input).")
def convert_cmd(data: Path, skeleton_spec: str, output: Path, fmt: str, src_fmt: str, category: Any,
                min_keypoints: int | None, min_area: float, dedup: float, images: Path | None, bbox_margin: float,
                drop_unlabelled: bool, skip_checks: bool, force: bool) -> None:
    """Convert DATA into training labels, after validating it.

    DATA is COCO keypoint JSON, or any export `posedata import` reads (a file or a folder): that is
    imported in memory first, its repair report printed, and the imported data is what is
    validated and converted. The output says which path was taken; the label file records the
    import format in its settings.

    Exit 1 (nothing written) when validate reports errors, unless --skip-checks. Exit 2 when DATA or
    the skeleton cannot be read, or the output exists without --force or is one of the inputs.
    """


    from .. import skeleton as S
    from ..convert_job import STEPS, run_convert
    from ..errors import InputError
    from ..formats.base import ImportOptions

    claim(output, "convert", data, images, skeleton_spec, force=force)
    sk = S.resolve(skeleton_spec)
    if images is not None and not images.is_dir():
        raise InputError("images folder not found", file=str(images))
    # an import reads one category; COCO JSON used as it is takes ids, names and all (load_source)
    opts = ImportOptions(images=images, category=None if category is None or isinstance(category, tuple) else str(category),
                         bbox_margin=bbox_margin, drop_unlabelled=drop_unlabelled)
    with progress_bar("{task.description:<12}", con=err_console) as bar:
        task = bar.add_task(STEPS[0], total=len(STEPS))
        img_task = bar.add_task("image files", total=None, visible=False)

        def step(name: str) -> None:
            bar.update(task, completed=STEPS.index(name), description=name)
            bar.update(img_task, visible=name == "validating" and images is not None)

        job = run_convert(data, sk, output, fmt=fmt, src_fmt=src_fmt, category=category, options=opts,
                          min_keypoints=min_keypoints, min_area=min_area, dedup=dedup, skip_checks=skip_checks,
                          step=step, image_progress=lambda done, total: bar.update(img_task, completed=done, total=total))
        bar.update(task, completed=len(STEPS))
    _print_convert_job(job, data, src_fmt, sk, output, fmt)


def _print_convert_job(job: Any, data: Path, src_fmt: str, sk: Any, output: Path, fmt: str) -> None:
    """Which path the input took, the findings or the counts, and the verdict (exit 1 when nothing
    was written)."""
    from ..convert_job import SHOWN_PER_CODE
    from ..validate import CHECKS

    where = job.where
    if job.import_format is None:
        console.print(f"[bold]input[/] {data}: COCO keypoint JSON, converted as it is (no import"
                      f"{': --from coco' if src_fmt.lower() == 'coco' else '; no labelling tool recognised'})",
                      soft_wrap=True)
    else:
        how = "recognised by content" if job.detected else f"--from {job.import_format}"
        console.print(f"[bold]input[/] {data}: a {job.import_format} export ({how}); imported in memory, then "
                      "validated and converted", soft_wrap=True)
        print_import_report(job.report)
    if job.blocked:
        print_validate_summary(job.findings, CHECKS, SHOWN_PER_CODE, title=f"validate {where} (skeleton {sk.name})",
                               counts=job.counts)
        console.print(f"[bold red]FAIL[/] {where}: {job.errors} error(s); nothing written. Fix the data "
                      f"(`posedata validate --fix`) or pass --skip-checks to convert anyway.", soft_wrap=True)
        if job.hint is not None:
            console.print(f"[yellow]hint:[/] the errors look like a {job.hint} export's quirks; `--from {job.hint}` "
                          "imports it in memory and repairs what the import can (boxes and areas from keypoints, ...)",
                          soft_wrap=True)
        sys.exit(1)
    if job.errors:
        console.print(f"[yellow]warning:[/] converting despite {job.errors} validation error(s) (--skip-checks)")
    labels = job.labels
    print_convert_summary(labels.extra["stats"], labels.settings)
    for f in job.verdict:
        style = "bold red" if f.severity == "error" else "yellow"
        console.print(f"[{style}]{f.severity} {f.code}:[/] {escape(f.message)}", soft_wrap=True)
    if job.empty:
        console.print(f"[bold red]FAIL[/] {where}: no training sample; nothing written.", soft_wrap=True)
        sys.exit(1)
    what = "samples" if fmt == "labels" else "records (reference pickle)"
    console.print(f"[bold green]wrote[/] {output}: {job.written} {what}, {labels.num_images} images, "
                  f"{len(labels.inst_ids)} instances; skeleton {sk.name} ({sk.fingerprint})", soft_wrap=True)


# -------------------------------------------------------------------- convert
@click.command("split")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@output_option("folder", "Folder for train.json and val.json.")
@click.option("--val", "val", type=click.FloatRange(0, None, min_open=True), default=0.2, show_default=True,
              help="Validation images: a fraction (0.2) or a count (50).")
@click.option("--by", default="image", show_default=True,
              help="What moves as one: image, folder (of the file name: a session or video folder), track "
                   "(images joined by an annotation track_id), or an image field such as video_id.")
@click.option("--seed", type=int, default=0, show_default=True, help="Chooses the validation groups.")
@force_option("Replace train.json / val.json written earlier.")
def split_cmd(data: Path, output: Path, val: float, by: str, seed: int, force: bool) -> None:
    """Split a COCO keypoint file into train.json and val.json so that no group (a recording, a
    session folder, a tracked animal) lands on both sides."""
    from ..errors import InputError
    from ..io import atomic_write_json, load_json
    from ..split import split_coco

    outs = [output / "train.json", output / "val.json"]
    for p in outs:
        claim(p, "split", data, force=force)
    raw = load_json(data)
    if not isinstance(raw, dict):
        raise InputError("expected a COCO object at the top level", file=str(data))
    res = split_coco(raw, val, by=by, seed=seed, file=str(data))
    output.mkdir(parents=True, exist_ok=True)
    for p, d in zip(outs, (res.train, res.val)):
        atomic_write_json(p, d)
    sm = res.summary()
    t = Table(title=f"split {data} by {by} (seed {seed})")
    for c in ("", "images", "annotations"):
        t.add_column(c, justify="right")
    t.add_row("train.json", str(sm["train_images"]), str(sm["train_annotations"]))
    t.add_row("val.json", str(sm["val_images"]), str(sm["val_annotations"]))
    console.print(t)
    for n in res.notes:
        console.print(f"[yellow]note:[/] {escape(n)}", soft_wrap=True)
    console.print(f"wrote {outs[0]} and {outs[1]}: {res.groups} group(s) by {by}, {res.val_groups} in validation",
                  soft_wrap=True)


# --------------------------------------------------------------------- synth
@click.command("synth")
@skeleton_option("Skeleton file or template name (e.g. quadruped17).")
@output_option("folder", "Dataset folder: images/ and annotations.json are written into it.")
@click.option("--images", "n_images", type=click.IntRange(1, 1_000_000), default=200, show_default=True,
              help="Number of images.")
@click.option("--size", default="160x160", show_default=True, help="Image size WIDTHxHEIGHT.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Poses, placement, colours. The creature itself depends on the skeleton only.")
@force_option("Replace the dataset folder of an earlier `posedata synth`.")
def synth_cmd(skeleton_spec: str, output: Path, n_images: int, size: str, seed: int, force: bool) -> None:
    """Generate a COCO keypoint dataset of drawn articulated figures for any skeleton.

    Several figures per image with overlaps, occluders and partial views (occluded keypoints v=1,
    out of frame v=0), varied scale, textured backgrounds and a few crowd patches (iscrowd=1).
    The same seed gives byte-identical output."""
    import time

    from .. import skeleton as S
    from ..synth import parse_size, synthesize

    wh = parse_size(size)
    claim(output, "synth", skeleton_spec, force=force, folder=True)
    sk = S.resolve(skeleton_spec)
    t0 = time.perf_counter()
    with progress_bar("drawing", con=err_console) as bar:
        task = bar.add_task("synth", total=n_images)
        res = synthesize(sk, output, n_images, wh, seed, progress=lambda done, total: bar.update(task, completed=done))
    secs = time.perf_counter() - t0
    out, occluded, visible = res.shares()
    console.print(
        f"wrote {res.path} and {n_images} image(s) in {output / 'images'} ({wh[0]}x{wh[1]}, seed {seed}) in {secs:.1f} s\n"
        f"skeleton {sk.name} ({sk.fingerprint}): {res.figures} figure(s), {res.crowd_regions} crowd "
        f"region(s); keypoints {visible:.0%} visible, {occluded:.0%} occluded, {out:.0%} out of frame", soft_wrap=True
    )
