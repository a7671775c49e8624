"""`posedata preview` and `flipcheck`: pictures of what the trainer will see, and the flip map's test."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from .common import (
    category_option,
    claim,
    console,
    force_option,
    images_option,
    output_option,
    progress_bar,
    skeleton_option,
)
from .render import print_findings


# -------------------------------------------------------------------- preview
@click.command("preview")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@skeleton_option()
@images_option("Images folder.", required=True)
@output_option("folder", "Folder for the PNGs.")
@click.option("-n", "num", type=int, default=16, show_default=True, help="Samples to draw.")
@click.option("--seed", type=int, default=0, show_default=True, help="Chooses the samples and their augmentation.")
@click.option("--no-augment", is_flag=True, help="Centre crop at the reference scale, no rotation or flip.")
@click.option("--input-size", type=int, default=368, show_default=True, help="Network input (crop) size, a multiple of 8.")
@category_option("the only one; a label file records its own")
@force_option("Replace the output folder of an earlier `posedata preview`.")
def preview_cmd(data: Path, skeleton_spec: str, images: Path, output: Path, num: int, seed: int,
                no_augment: bool, input_size: int, force: bool, category: Any = None) -> None:
    """Draw training samples and their heatmap/PAF targets exactly as the trainer sees them.

    DATA is a label file from `posedata convert` or a COCO keypoint JSON (converted in memory)."""

    from .. import skeleton as S
    from ..augment import AugmentConfig, check_input_size
    from ..io import atomic_write_text
    from ..preview import FIXED_PANELS, preview

    check_input_size(input_size)  # the trainer's rule: a preview shows what training would do
    out = claim(output, "preview", data, images, skeleton_spec, force=force, folder=True)
    sk = S.resolve(skeleton_spec)
    labels = load_labels_or_coco(data, sk, category)
    if labels.num_samples == 0:
        from ..errors import DataError

        raise DataError("no training samples in the data (nothing passes the sample rules)", file=str(data))
    cfg = AugmentConfig(crop_w=input_size, crop_h=input_size, input_size=input_size)  # as the trainer
    with progress_bar("{task.description}") as bar:
        task = bar.add_task("drawing previews", total=min(num, labels.num_samples))
        items = preview(labels, sk, images, out.staging(), n=num, seed=seed, augment=not no_augment, cfg=cfg,
                        progress=lambda done, total: bar.update(task, completed=done))
    lines = [
        f"{len(items)} training sample(s) of {labels.num_samples} from {data}, skeleton {sk.name} ({sk.fingerprint}),",
        f"{'augmented (scale, rotation, crop, flip as the trainer)' if not no_augment else 'no augmentation'}, seed {seed}, "
        f"input {input_size}x{input_size}, maps {input_size // cfg.stride}x{input_size // cfg.stride} (stride {cfg.stride}).",
        f"Each PNG: {', '.join(FIXED_PANELS)}, {sk.num_keypoints} keypoint heatmaps, {sk.num_limbs} limb PAFs.",
    ]
    for it in items:
        lines.append(f"  {it.path.name}: sample {it.index}, {it.instances} instance(s){', flipped' if it.flipped else ''}, {it.panels} panels")
    lines.append("index.png: every sample as input | heatmaps | PAFs")
    atomic_write_text(out.staging() / "summary.txt", "\n".join(lines) + "\n")
    out.commit()
    console.print("\n".join(lines))


def load_labels_or_coco(data: Path, sk, category: Any = None):
    """A label file as is, or a COCO JSON converted in memory (refusing data with errors)."""
    from ..io import read_bytes

    head = read_bytes(data)[:4]
    if head == b"PK\x03\x04":
        from ..labels import load
        from ..skeleton import require_fingerprint

        labels = load(data)
        require_fingerprint("label file", labels.skeleton_name, labels.fingerprint, sk, str(data),
                            "re-import the data with this skeleton")
        return labels
    from ..convert import load_source, to_labels
    from ..errors import DataError
    from ..findings import has_errors
    from ..io import paused_gc
    from ..validate import validate_coco

    with paused_gc():  # as convert: the parse is freed before the pause ends, never scanned
        src = load_source(data, sk, category)  # a labelling tool's export is imported in memory, as convert does
        if src.import_format is not None:
            console.print(f"{data}: a {src.import_format} export, imported in memory (`posedata import` prints "
                          "what the import repaired)", soft_wrap=True)
        findings = validate_coco(src.raw if src.raw is not None else src.dataset.to_coco(), sk, file=str(data),
                                 category_id=src.category_id)
        if has_errors(findings):
            print_findings([f for f in findings if f.severity == "error"], limit=10)
            raise DataError("the data has errors; run `posedata validate` for the full report", findings,
                            file=str(data))
        labels = to_labels(src.data, sk, src.category_id, source=str(data))
        del src
    return labels


# ------------------------------------------------------------------ flipcheck
@click.command("flipcheck")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@skeleton_option()
@images_option("Images folder (for the side-by-side plots).")
@output_option("folder", "Folder for the PNGs.")
@click.option("-n", "num", type=int, default=12, show_default=True, help="Instances to draw side by side.")
@category_option()
@click.option("--seed", type=int, default=0, show_default=True)
@force_option("Replace the output folder of an earlier `posedata flipcheck`.")
def flipcheck_cmd(data: Path, skeleton_spec: str, images: Path | None, output: Path, num: int,
                  category: Any, seed: int, force: bool) -> None:
    """Check the skeleton's flip map against the data (left/right swap list right?).

    Last line: PASS, FAIL, INCONCLUSIVE or NOT APPLICABLE (rules and measured rates in
    docs/checks.md); exit 1 exactly when it says FAIL."""
    from .. import flipcheck as F
    from .. import skeleton as S

    out = claim(output, "flipcheck", data, images, skeleton_spec, force=force, folder=True)
    sk = S.resolve(skeleton_spec)
    with console.status("flipcheck") as status:
        run = F.run_flipcheck(data, sk, out.staging(), images, num, seed, category,
                              stage=lambda text: status.update(f"flipcheck: {text}"))
    out.commit()
    v = run.verdict
    if run.ignored:
        codes = sorted({f.code for f in run.ignored})
        console.print(f"[yellow]note:[/] {len(run.ignored)} validate error(s) ({', '.join(codes)}) in fields the flip "
                      "check does not read; run `posedata validate` before training")
    print_flip_verdict(v, sk)
    if images is not None and v.swaps is not None and v.swaps.suspects:
        console.print(f"{len(v.swaps.suspects)} instance(s) with a suspected left/right swap drawn first in "
                      f"{output / 'instances.png'}")
    console.print(f"plots: {', '.join(str(output / w.name) for w in run.plots)}")
    style = {"PASS": "bold green", "FAIL": "bold red"}.get(v.verdict, "bold yellow")
    console.print(f"[{style}]{v.verdict}[/] {v.reason}", soft_wrap=True)
    if v.exit_code:
        sys.exit(v.exit_code)


def print_flip_verdict(v: Any, sk: Any) -> None:
    """The skeleton-level property, the data-level mirror test and the swap count of a FlipVerdict."""
    import numpy as np

    from ..flipcheck import ALPHA, MAX_SUSPECTS

    t = Table(title="skeleton-level flip property (internal consistency only)")
    for c in ("kind", "name", "result"):
        t.add_column(c)
    for kind, name, ok in v.property:
        t.add_row(kind, name, "[green]PASS[/]" if ok else "[bold red]FAIL[/]")
    console.print(t)
    if v.test is not None:
        o = v.test
        on = f"{o.informative} of {v.n_instances} instances" if o.sampled_from is None else o.on
        t = Table(title=f"data-level mirror test on {on} "
                        f"(randomisation test p = {o.p_value:.4f}; FAIL at p <= {ALPHA})")
        for c in ("keypoint", "flips to", "score (z^2, ~1 noise)", "deviation", "blamed"):
            t.add_column(c)
        keep = [i for i in range(sk.num_keypoints) if i not in set(sk.derived_indices)]
        for n, i in enumerate(keep):
            name = sk.keypoints[i]
            score = "-" if not np.isfinite(o.scores[n]) else f"{o.scores[n]:.2f}"
            dev = "-" if not np.isfinite(o.deviation[n]) else f"{o.deviation[n]:.3f}"
            t.add_row(name, sk.keypoints[sk.flip[i]], score, dev, "[bold red]yes[/]" if name in o.blamed else "")
        console.print(t)
    if v.swaps is not None:
        sw = v.swaps
        console.print(f"suspected left/right swaps: {len(sw.suspects)} of {sw.checked} instances "
                      f"(annotation noise and natural poses allow {100 * sw.noise:.0f}%; binomial p = {sw.p_value:.2g})"
                      + (": " + ", ".join(f"annotation {x['annotation_id']} (image {x['image_id']})"
                                          for x in sw.suspects[:MAX_SUSPECTS]) if sw.suspects else ""),
                      soft_wrap=True)
