"""`posedata skeleton check|show|init`."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from .common import PosedataGroup, category_option, claim, console, force_option, one_category, output_option
from .render import print_findings


# ------------------------------------------------------------------ skeleton
@click.group(cls=PosedataGroup)
def skeleton() -> None:
    """Check, show and create skeleton files."""


@skeleton.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def skeleton_check(file: Path) -> None:
    """Check a skeleton FILE (a path or a template name): names, limbs, root reachability, flip map, sigmas."""
    from .. import skeleton as S
    from ..findings import has_errors

    file = S.resolve_path(file)
    sk, findings = S.load_with_findings(file)
    print_findings(findings, title=f"skeleton check: {file}")
    if sk is None or has_errors(findings):
        console.print(f"[bold red]FAIL[/] {file}: {sum(f.severity == 'error' for f in findings)} error(s)")
        sys.exit(1)
    warnings = sum(f.severity == "warning" for f in findings)
    console.print(
        f"[bold green]OK[/] {file}: {sk.name}, {sk.num_keypoints} keypoints, {sk.num_limbs} limbs, "
        f"{warnings} warning(s), fingerprint {sk.fingerprint}"
    )


@skeleton.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG of the skeleton graph.")
@force_option("Replace an existing plot.")
def skeleton_show(file: Path, plot: Path | None, force: bool) -> None:
    """Show the channel tables, grouping order and flip map a skeleton FILE (a path or a template name) produces."""
    from .. import skeleton as S

    if plot:
        claim(plot, "skeleton show", file, force=force)
    sk = S.resolve(file)
    t = Table(title=f"{sk.name}: keypoints (heatmap channels; background = {sk.num_keypoints})")
    for c in ("channel", "keypoint", "side", "flips to", "derived"):
        t.add_column(c)
    derived = {d.name: d for d in sk.derived}
    for i, k in enumerate(sk.keypoints):
        d = derived.get(k)
        t.add_row(str(i), k + (" (root)" if i == sk.root else ""), sk.side(i), sk.keypoints[sk.flip[i]],
                  f"mean of {', '.join(d.mean_of)}" if d else "")
    console.print(t)
    t = Table(title="limbs (PAF channels x, y)")
    for c in ("limb", "from", "to", "PAF", "grouping step", "redundant", "mirror"):
        t.add_column(c)
    step = {li: n for n, li in enumerate(sk.grouping_order)}
    for i, (a, b) in enumerate(sk.limbs):
        j, rev = sk.limb_flip[i]
        mirror = "-" if j < 0 else f"{j}{' (reversed)' if rev else ''}"
        t.add_row(str(i), sk.keypoints[a], sk.keypoints[b], f"{2 * i}, {2 * i + 1}", str(step[i]),
                  "yes" if sk.redundant[i] else "", mirror)
    console.print(t)
    pairs = ", ".join(f"{a}<->{b}" for a, b in sk.flip_pairs()) or "(none)"
    console.print(f"flip pairs (left<->right): {pairs}")
    console.print("flip augmentation: " + ("on (training and previews flip half the samples)" if sk.flip_augment
                                           else "off (flip_augment: false; training and previews never flip)"))
    console.print(f"heatmaps {sk.num_heatmaps}, PAFs {sk.num_pafs}, fingerprint {sk.fingerprint}")
    if plot:
        from ..plots import plot_skeleton

        plot_skeleton(sk, plot)
        console.print(f"plot: {plot}")


@skeleton.command("init")
@click.option("--from-coco", "from_coco", type=click.Path(dir_okay=False, path_type=Path),
              help="COCO keypoint JSON whose category becomes the skeleton.")
@click.option("--from-dlc", "from_dlc", type=click.Path(dir_okay=False, path_type=Path),
              help="DeepLabCut project config.yaml (bodyparts or multianimalbodyparts, skeleton).")
@click.option("--from-yolo", "from_yolo", type=click.Path(dir_okay=False, path_type=Path),
              help="YOLO-pose dataset YAML (kpt_names, flip_idx, a skeleton edge list if any).")
@click.option("--from-cvat", "from_cvat", type=click.Path(dir_okay=False, path_type=Path),
              help="CVAT for images 1.1 annotations.xml (a skeleton label, its points and edges).")
@click.option("--from-sleap", "from_sleap", type=click.Path(dir_okay=False, path_type=Path),
              help="SLEAP .slp or .pkg.slp (a skeleton's nodes, edges and symmetries; needs posedata[sleap]).")
@category_option("the only one; for --from-yolo a class, for --from-cvat a skeleton label, for --from-sleap a skeleton")
@click.option("--ignore-edges", is_flag=True,
              help="--from-coco, --from-yolo: leave the skeleton edges out (when they do not fit the keypoints).")
@output_option("file")
@force_option()
def skeleton_init(from_coco: Path | None, from_dlc: Path | None, from_yolo: Path | None, category: Any,
                  output: Path, force: bool, from_cvat: Path | None = None, ignore_edges: bool = False,
                  from_sleap: Path | None = None) -> None:
    """Write a starting skeleton file from a dataset's own definition, for you to review.

    Give one source: a COCO category (--from-coco), a DeepLabCut config.yaml (--from-dlc), a
    YOLO-pose dataset YAML (--from-yolo), a CVAT XML (--from-cvat) or a SLEAP file (--from-sleap),
    so the keypoint names are never typed twice."""
    from ..skeleton_init import source_files, write_draft

    sources = {"--from-coco": from_coco, "--from-dlc": from_dlc, "--from-yolo": from_yolo, "--from-cvat": from_cvat,
               "--from-sleap": from_sleap}
    given = [k for k, v in sources.items() if v is not None]
    if len(given) != 1:
        raise click.UsageError(f"give exactly one of {', '.join(sources)}" + (f" (got {', '.join(given)})" if given else ""))
    kind = given[0].removeprefix("--from-")
    claim(output, "skeleton init", *source_files(kind, sources[given[0]]), force=force)
    if kind in ("yolo", "cvat", "sleap"):  # a class, a skeleton label or a skeleton: one, as text
        category = one_category(category, given[0])
    result = write_draft(kind, sources[given[0]], output, category, edges=not ignore_edges)
    for n in result.notes:
        console.print(f"[yellow]note:[/] {escape(n)}", soft_wrap=True)
    print_findings(result.findings, title="review these")
    console.print(f"wrote {output}: {result.summary()}")
