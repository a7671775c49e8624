"""`posedata export yolo|onnx|reference`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import (
    PosedataGroup,
    bbox_margin_option,
    category_option,
    checkpoint_option,
    claim,
    console,
    force_option,
    images_option,
    input_size_option,
    one_id,
    output_option,
    progress_bar,
    skeleton_option,
)


# -------------------------------------------------------------------- export
@click.group(cls=PosedataGroup)
def export() -> None:
    """Write data or models for other tools: `export yolo`, `export onnx`, `export reference`."""


@export.command("yolo")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@skeleton_option()
@output_option("path", "Dataset folder to write.")
@images_option("Images folder: images are hard-linked (else copied) into OUTPUT/images.")
@category_option()
@bbox_margin_option("Padding of boxes made from keypoints where an annotation has none.")
@force_option("Replace the dataset folder of an earlier `posedata export yolo`.")
def export_yolo(data: Path, skeleton_spec: str, output: Path, images: Path | None, category: Any,
                bbox_margin: float, force: bool) -> None:
    """Write COCO keypoint DATA as a YOLO-pose dataset: labels/*.txt and data.yaml.

    Keypoints go in the skeleton's source order, named in kpt_names; flip_idx is the skeleton's
    flip map in that order. A keypoint outside its image is written as unlabelled (Ultralytics
    drops a whole image whose labels leave [0, 1]); crowd regions are left out. The folder is
    written beside OUTPUT and moved into place only when complete."""

    from .. import coco
    from .. import skeleton as S
    from ..formats.yolo import export as yolo_export

    claim(output, "export yolo", data, images, skeleton_spec, force=force, folder=True)
    sk = S.resolve(skeleton_spec)
    if images is not None and not images.is_dir():
        from ..errors import InputError

        raise InputError("images folder not found", file=str(images))
    ds = coco.load(data)
    with progress_bar("{task.description}") as bar:
        task = bar.add_task("writing YOLO labels", total=len(ds.images))
        rep = yolo_export(ds, sk, output, images=images, category_id=one_id(category, "export yolo"), data_file=str(data),
                          bbox_margin=bbox_margin, progress=lambda done, total: bar.update(task, completed=done))
    console.print(f"[bold green]OK[/] wrote {output}: {rep.images} label file(s), {rep.instances} instance(s), "
                  f"{rep.keypoints} labelled keypoint(s), {rep.images_copied} image(s) linked or copied; "
                  f"dataset YAML {output / 'data.yaml'}")
    if rep.boxes_from_keypoints:
        console.print(f"{rep.boxes_from_keypoints} box(es) computed from keypoints (annotation had none)")
    for what, n in rep.dropped.items():
        console.print(f"[yellow]left out:[/] {n} {what}")
    for note in rep.notes:
        console.print(f"note: {note}", soft_wrap=True)


@export.command("onnx")
@checkpoint_option("Model checkpoint.")
@skeleton_option("Skeleton file or template name [default: the checkpoint's].", required=False)
@output_option("file", "ONNX file to write.")
@input_size_option("Input height recorded in the file, and the size of the square test input (height and width "
                   "stay dynamic) [default: the size the model was trained at, else 368].")
@force_option()
def export_onnx_cmd(checkpoint: Path, skeleton_spec: str | None, output: Path, input_size: int | None,
                    force: bool) -> None:
    """Export the last stage (heatmaps, pafs) to ONNX, checked against PyTorch with onnxruntime.

    The file carries the skeleton, its fingerprint, the input normalisation, stride and input size
    as metadata, so `posedata infer` and `val` run it with no other flags."""
    from .. import skeleton as S

    claim(output, "export onnx", checkpoint, skeleton_spec, force=force)
    sk = S.resolve(skeleton_spec) if skeleton_spec else None
    from trainer import evaluate as E
    from trainer.export_onnx import export_onnx

    loaded = E.load_model(checkpoint, sk, backend="torch")
    size, why = loaded.choose_input_size(input_size)
    info = export_onnx(loaded.model, output, size, skeleton=loaded.skeleton)
    console.print(f"wrote {output} ({info['bytes'] / 1e6:.1f} MB, opset {info['opset']}): input 'image' "
                  f"(batch, 3, height, width), outputs 'heatmaps' {info['heatmaps_shape'][1]} and 'pafs' "
                  f"{info['pafs_shape'][1]} channels at 1/8 resolution; metadata: skeleton {loaded.skeleton.name!r}, "
                  f"input {size} ({why})")
    console.print(f"onnxruntime vs PyTorch on a {size}x{size} input: max |difference| "
                  f"{info['max_abs_diff']:.2e} (tolerance 1e-4) [bold green]OK[/]")


@export.command("reference")
@skeleton_option()
def export_reference_cmd(skeleton_spec: str) -> None:
    """Print the limb, PAF-channel and flip tables in the reference implementation's notation."""
    from posedata.grouping import reference_text

    from .. import skeleton as S

    click.echo(reference_text(S.resolve(skeleton_spec)))
