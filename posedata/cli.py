"""The `posedata` command line: parse, call a library function, print with rich.

Library modules are imported inside each command so `posedata --help` stays fast and the data
commands never import torch. Exit codes: 0 success, 1 the data has errors, 2 usage error or
unreadable input.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .errors import PosedataError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


class PosedataGroup(click.Group):
    """Turns the library's typed errors into a located message and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PosedataError as e:
            err_console.print(f"[bold red]error:[/] {e}", soft_wrap=True)
            sys.exit(e.exit_code)


class PosedataSubGroup(PosedataGroup):
    pass


def print_findings(findings: list, limit: int = 50, title: str | None = None) -> None:
    """A table of findings, errors first."""
    if not findings:
        return
    order = {"error": 0, "warning": 1, "info": 2}
    rows = sorted(findings, key=lambda f: order.get(f.severity, 3))
    t = Table(title=title, show_lines=False)
    t.add_column("code")
    t.add_column("severity")
    t.add_column("where", overflow="fold")
    t.add_column("message", overflow="fold")
    for f in rows[:limit]:
        t.add_row(f.code, f"[{SEVERITY_STYLE.get(f.severity, '')}]{f.severity}[/]", f.location(), f.message)
    console.print(t)
    if len(rows) > limit:
        console.print(f"... and {len(rows) - limit} more")


@click.group(cls=PosedataGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="posedata")
def cli() -> None:
    """posedata: one skeleton file from annotated keypoints to a trained bottom-up pose model."""


# ------------------------------------------------------------------ skeleton
@cli.group(cls=PosedataSubGroup)
def skeleton() -> None:
    """Check, show and create skeleton files."""


@skeleton.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def skeleton_check(file: Path) -> None:
    """Check a skeleton FILE: names, limbs, root reachability, flip map, sigmas."""
    from . import skeleton as S
    from .findings import has_errors

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
@click.option("--force", is_flag=True, help="Replace an existing plot.")
def skeleton_show(file: Path, plot: Path | None, force: bool) -> None:
    """Show the channel tables, grouping order and flip map a skeleton FILE produces."""
    from . import skeleton as S
    from .io import check_output

    sk = S.load(file)
    if plot:
        check_output(plot, force)
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
    console.print(f"flip pairs: {pairs}")
    console.print(f"heatmaps {sk.num_heatmaps}, PAFs {sk.num_pafs}, fingerprint {sk.fingerprint}")
    if plot:
        from .plots import plot_skeleton

        plot_skeleton(sk, plot)
        console.print(f"plot: {plot}")


@skeleton.command("init")
@click.option("--from-coco", "from_coco", type=click.Path(dir_okay=False, path_type=Path),
              help="COCO keypoint JSON whose category becomes the skeleton.")
@click.option("--from-dlc", "from_dlc", type=click.Path(dir_okay=False, path_type=Path),
              help="DeepLabCut project config.yaml (bodyparts or multianimalbodyparts, skeleton).")
@click.option("--from-yolo", "from_yolo", type=click.Path(dir_okay=False, path_type=Path),
              help="YOLO-pose dataset YAML (kpt_names, flip_idx).")
@click.option("--category", default=None, help="COCO category id / YOLO class (default: the only one).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Replace an existing output.")
def skeleton_init(from_coco: Path | None, from_dlc: Path | None, from_yolo: Path | None, category: str | None,
                  output: Path, force: bool) -> None:
    """Write a starting skeleton file from a dataset's own definition, for you to review.

    Give one source: a COCO category (--from-coco), a DeepLabCut config.yaml (--from-dlc) or a
    YOLO-pose dataset YAML (--from-yolo), so the keypoint names are never typed twice."""
    from . import skeleton as S
    from .coco import keypoint_category
    from .io import atomic_write_text, check_output, load_json

    sources = {"--from-coco": from_coco, "--from-dlc": from_dlc, "--from-yolo": from_yolo}
    given = [k for k, v in sources.items() if v is not None]
    if len(given) != 1:
        raise click.UsageError(f"give exactly one of {', '.join(sources)}" + (f" (got {', '.join(given)})" if given else ""))
    if from_dlc is not None or from_yolo is not None:
        check_output(output, force)
        if from_dlc is not None:
            from .formats.deeplabcut import skeleton_from_config

            src, (d, notes) = from_dlc, skeleton_from_config(from_dlc)
        else:
            from .formats.yolo import skeleton_from_yaml

            src, (d, notes) = from_yolo, skeleton_from_yaml(from_yolo, category)
        sk, findings = S.parse(d, file=str(output))
        text = f"# Generated by `posedata skeleton init` from {src}: review limbs, root, flip and sigmas.\n"
        text += "# Sigmas are placeholders (0.05); set per-keypoint OKS sigmas for evaluation.\n"
        text += "".join(f"# note: {n}\n" for n in notes)
        atomic_write_text(output, text + S.dump_yaml(d))
        if sk is not None:
            findings += S.check(sk)
        for n in notes:
            console.print(f"[yellow]note:[/] {n}", soft_wrap=True)
        print_findings(findings, title="review these")
        console.print(f"wrote {output}: {len(d['keypoints'])} keypoints, {len(d['limbs'])} limbs, root {d['root']!r}, "
                      f"{len(d['flip'])} flip pair(s)")
        return
    if category is not None and not category.strip().lstrip("-").isdigit():
        raise click.BadParameter(f"a COCO category id is an integer, got {category!r}", param_hint="--category")
    category = int(category) if category is not None else None  # type: ignore[assignment]
    assert from_coco is not None
    check_output(output, force)
    data = load_json(from_coco)
    cat = keypoint_category(data, category, file=str(from_coco))
    d = S.from_coco_category(cat)
    sk, findings = S.parse(d, file=str(output))
    text = "# Generated by `posedata skeleton init` from " + from_coco.name + ": review limbs, root, flip and sigmas.\n"
    text += "# Sigmas are placeholders (0.05); set per-keypoint OKS sigmas for evaluation.\n"
    atomic_write_text(output, text + S.dump_yaml(d))
    if sk is not None:
        findings += S.check(sk)
    print_findings(findings, title="review these")
    console.print(f"wrote {output}: {len(d['keypoints'])} keypoints, {len(d['limbs'])} limbs, root {d['root']!r}, "
                  f"{len(d['flip'])} flip pair(s)")


# ------------------------------------------------------------------ flipcheck
@cli.command("flipcheck")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--skeleton", "skeleton_spec", required=True, help="Skeleton file or template name.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), help="Images folder (for the side-by-side plots).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for the PNGs.")
@click.option("-n", "num", type=int, default=12, show_default=True, help="Instances to draw side by side.")
@click.option("--category", type=int, default=None, help="Keypoint category id (default: the only one).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Write into an existing non-empty folder.")
def flipcheck_cmd(data: Path, skeleton_spec: str, images: Path | None, output: Path, num: int,
                  category: int | None, seed: int, force: bool) -> None:
    """Check the skeleton's flip map against the data (left/right swap list right?)."""
    import numpy as np

    from . import coco
    from . import flipcheck as F
    from . import skeleton as S
    from .io import check_output_dir
    from .plots import plot_flip_instances, plot_orientation_scores, plot_side_statistics

    sk = S.resolve(skeleton_spec)
    check_output_dir(output, force)
    ds = coco.load(data)
    failed = False
    prop = F.skeleton_flip_property(sk)
    t = Table(title="skeleton-level flip property (internal consistency only)")
    for c in ("kind", "name", "result"):
        t.add_column(c)
    for kind, name, ok in prop:
        t.add_row(kind, name, "[green]PASS[/]" if ok else "[bold red]FAIL[/]")
        failed |= not ok
    console.print(t)

    res = F.orientation_check(ds, sk, category)
    t = Table(title=f"data-level orientation check on {res.n_instances} instances (flag above {F.FLAG_THRESHOLD})")
    for c in ("keypoint", "deviation", "noise z", "no flip map", "triples", "verdict"):
        t.add_column(c)
    for i, name in enumerate(res.keypoints):
        verdict = "[bold red]FLAG[/]" if name in res.flagged else ("-" if not np.isfinite(res.scores[i]) else "[green]ok[/]")
        t.add_row(name, f"{res.scores[i]:.3f}", f"{res.z_scores[i]:.2f}" if res.z_scores is not None else "",
                  f"{res.identity_scores[i]:.3f}", str(int(res.triple_counts[i])), verdict)
    console.print(t)
    output.mkdir(parents=True, exist_ok=True)
    plot_orientation_scores(res, F.FLAG_THRESHOLD, output / "orientation.png")
    stats = F.side_statistics(ds, sk, category)
    plot_side_statistics(stats, output / "sides.png")
    written = ["orientation.png", "sides.png"]
    if images is not None:
        pts, lab, anns = F.instance_keypoints(ds, sk, category)
        swaps = F.suspected_swaps(pts, lab, sk).any(1)
        rng = np.random.default_rng(seed)
        order = list(np.flatnonzero(swaps)) + list(rng.permutation(np.flatnonzero(~swaps)))
        items = F.instance_crops(ds, sk, images, anns, pts, lab, [int(i) for i in order[:num]])
        plot_flip_instances(items, sk, output / "instances.png")
        written.append("instances.png")
        console.print(f"{int(swaps.sum())} instance(s) with a suspected left/right swap drawn first")
    if res.inconclusive:
        console.print(f"[yellow]inconclusive:[/] {res.inconclusive}")
    elif res.flagged:
        console.print(f"[bold red]FAIL[/] flip map looks wrong around: {', '.join(res.flagged)}")
        failed = True
    else:
        console.print("[bold green]PASS[/] the flip map agrees with the data's mirror symmetry")
    console.print(f"plots: {', '.join(str(output / w) for w in written)}")
    if failed:
        sys.exit(1)


# -------------------------------------------------------------------- export
@cli.group(cls=PosedataSubGroup)
def export() -> None:
    """Write data or models for other tools: `export yolo`, `export onnx`, `export reference`."""


@export.command("yolo")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--skeleton", "skeleton_spec", required=True, help="Skeleton file or template name.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Dataset folder to write.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path),
              help="Images folder: images are hard-linked (else copied) into OUTPUT/images.")
@click.option("--category", type=int, default=None, help="Keypoint category id (default: the only one).")
@click.option("--bbox-margin", type=click.FloatRange(0, 10), default=0.1, show_default=True,
              help="Padding of boxes made from keypoints where an annotation has none.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
def export_yolo(data: Path, skeleton_spec: str, output: Path, images: Path | None, category: int | None,
                bbox_margin: float, force: bool) -> None:
    """Write COCO keypoint DATA as a YOLO-pose dataset: labels/*.txt and data.yaml.

    Keypoints go in the skeleton's source order, named in kpt_names; flip_idx is the skeleton's
    flip map in that order. A keypoint outside its image is written as unlabelled (Ultralytics
    drops a whole image whose labels leave [0, 1]); crowd regions are left out. The folder is
    written beside OUTPUT and moved into place only when complete."""
    from rich.progress import Progress

    from . import coco
    from . import skeleton as S
    from .formats.yolo import export as yolo_export
    from .io import check_output

    check_output(output, force)
    sk = S.resolve(skeleton_spec)
    if images is not None and not images.is_dir():
        from .errors import InputError

        raise InputError("images folder not found", file=str(images))
    ds = coco.load(data)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("writing YOLO labels", total=len(ds.images))
        rep = yolo_export(ds, sk, output, images=images, category_id=category, data_file=str(data),
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

# -------------------------------------------------------------------- import
def print_import_report(report: Any) -> None:
    """What an import read, wrote, repaired and skipped; every line with its count and examples."""
    console.print(f"[bold]import {report.format}[/] {report.source}: read {report.images_read} image(s), "
                  f"{report.instances_read} instance(s); wrote {report.images_written} image(s), "
                  f"{report.instances_written} instance(s)")
    for title, counts, examples in (("repairs", report.repairs, report.repair_examples),
                                    ("skipped", report.skipped, report.skip_examples)):
        if not counts:
            continue
        t = Table(title=title)
        t.add_column("count", justify="right")
        t.add_column("what" if title == "repairs" else "why", overflow="fold")
        t.add_column("first examples (ids)", overflow="fold")
        for what, n in counts.most_common():
            ex = examples.get(what, [])
            t.add_row(str(n), what, ", ".join(map(str, ex)) + (" ..." if n > len(ex) and ex else ""))
        console.print(t)
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}", soft_wrap=True)


@cli.command("import")
@click.argument("fmt", metavar="FORMAT")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--skeleton", "skeleton_spec", required=True, help="Skeleton file or template name.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="COCO keypoint JSON to write.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path),
              help="Images folder: files are resolved by file name, then by the tail of the export's path; "
                   "sizes the export lacks are read from the files.")
@click.option("--category", default=None, metavar="NAME_OR_ID",
              help="Keypoint category/label to import (default: the only one with keypoints).")
@click.option("--bbox-margin", type=click.FloatRange(0, 10), default=0.1, show_default=True,
              help="Boxes made from keypoints are padded by this fraction of the keypoints' extent.")
@click.option("--drop-unlabelled", is_flag=True, help="Drop instances with no labelled keypoints.")
@click.option("--keep-empty", is_flag=True, help="Keep images without annotations (as negatives).")
@click.option("--write-invalid", is_flag=True,
              help="Write the output even when it fails validation (still exit 1), to inspect it.")
@click.option("--force", is_flag=True, help="Replace an existing output.")
def import_cmd(fmt: str, input_path: Path, skeleton_spec: str, output: Path, images: Path | None,
               category: str | None, bbox_margin: float, drop_unlabelled: bool, keep_empty: bool,
               write_invalid: bool, force: bool) -> None:
    """Turn a labelling tool's export INPUT into clean COCO keypoint JSON for a skeleton.

    FORMAT is `auto` (recognised by content) or one of the formats listed at the end of this
    help. Keypoint names are matched to the skeleton by name (case and separators ignored),
    never by position. Every repair and every skipped item is reported with counts and example ids,
    then the result is checked exactly as `posedata validate` would.

    Exit 0: written and valid. Exit 2: the input could not be read (nothing written). Exit 1: the
    imported data fails validation; the findings are printed and OUTPUT is NOT written (so a
    pipeline never picks up a file that did not validate) unless --write-invalid is given.
    """
    from . import skeleton as S
    from .findings import has_errors
    from .importer import ImportOptions, import_file, validate_result
    from .io import atomic_write_json, check_output

    check_output(output, force)
    sk = S.resolve(skeleton_spec)
    opts = ImportOptions(images=images, category=category, bbox_margin=bbox_margin,
                         drop_unlabelled=drop_unlabelled, keep_empty=keep_empty)
    result = import_file(fmt, input_path, sk, opts)
    print_import_report(result.report)
    findings = validate_result(result, sk, opts, file=str(output))
    print_findings(findings, title="validate (imported data)")
    data = result.dataset.to_coco()
    if has_errors(findings):
        n = sum(f.severity == "error" for f in findings)
        if write_invalid:
            atomic_write_json(output, data)
            console.print(f"[bold red]FAIL[/] the imported data has {n} validation error(s); wrote {output} anyway "
                          "(--write-invalid) for inspection")
        else:
            console.print(f"[bold red]FAIL[/] the imported data has {n} validation error(s); {output} was not "
                          "written (pass --write-invalid to write it for inspection)")
        sys.exit(1)
    atomic_write_json(output, data)
    console.print(f"[bold green]OK[/] wrote {output}: {len(data['images'])} image(s), "
                  f"{len(data['annotations'])} instance(s), {len(sk.coco_keypoints)} keypoints")


def _import_help_formats() -> None:
    import inspect

    from .formats import FORMATS

    import_cmd.help = inspect.cleandoc(import_cmd.help or "") + "\n\nFormats: auto, " + ", ".join(FORMATS) + "."


_import_help_formats()


def main() -> None:
    cli(prog_name="posedata")


if __name__ == "__main__":
    main()
