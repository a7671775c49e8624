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
from rich.markup import escape
from rich.table import Table

from .errors import PosedataError
from .interrupts import PipeConsole

console = PipeConsole(highlight=False)
err_console = PipeConsole(stderr=True, highlight=False)

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


class PosedataGroup(click.Group):
    """Turns the library's typed errors into a located message and its exit code; SIGINT, SIGTERM
    and a closed pipe into one line (or none) and the signal's exit code, after every cleanup ran."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        from .interrupts import sigterm_raises

        with sigterm_raises():
            return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        from .interrupts import EXIT_BROKEN_PIPE, interrupted_signal, silence_stdout

        try:
            return super().invoke(ctx)
        except PosedataError as e:
            # escaped: messages quote user text such as "posedata[sleap]" that rich would eat as markup
            err_console.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
            sys.exit(e.exit_code)
        except BrokenPipeError:
            silence_stdout()
            sys.exit(EXIT_BROKEN_PIPE)
        except BaseException as e:
            stop = interrupted_signal(e)
            if stop is not None:
                err_console.print(f"interrupted ({stop.name}): stopped, temp files removed", soft_wrap=True)
                sys.exit(stop.exit_code)
            if isinstance(e, OSError) and e.errno is not None:
                # the environment, not the data: a full disk, a read-only or vanished folder (exit 2)
                where = f"{e.filename}: " if e.filename else ""
                err_console.print(f"[bold red]error:[/] {escape(where)}{escape(e.strerror or str(e))}", soft_wrap=True)
                sys.exit(2)
            raise


class PosedataSubGroup(PosedataGroup):
    pass


class CategoryType(click.ParamType):
    """--category's one type: an id, a name, several ids (3,7) or all (posedata.coco.parse_category)."""

    name = "category"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from .coco import parse_category

        try:
            return parse_category(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


def category_option(default_help: str = "the only keypoint category") -> Any:
    """The one declaration of --category, shared by every command that reads COCO categories."""
    return click.option("--category", type=CategoryType(), default=None, metavar="ID|NAME|ID,ID|all",
                        help="Keypoint category: an id, a name, several ids (3,7), or all (every category whose "
                             f"keypoint list matches the skeleton, merged) [default: {default_help}].")


def one_id(spec: Any, what: str) -> int | None:
    """A command that reads one category by id (all: None, the command's own default)."""
    from .coco import ALL

    if spec == ALL:
        return None
    if spec is not None and not isinstance(spec, int):
        raise click.BadParameter(f"{what} takes one category id, got {spec!r}", param_hint="--category")
    return spec


def one_category(spec: Any, what: str) -> str | None:
    """A command that reads one category: its --category as the text an importer takes."""
    from .coco import ALL

    if isinstance(spec, tuple) or spec == ALL:
        raise click.BadParameter(f"{what} takes one category (an id or a name), got {spec!r}", param_hint="--category")
    return None if spec is None else str(spec)


def claim(path: Path, command: str, *inputs: Any, force: bool = False, folder: bool = False):
    """Hold this command's output until it ends (posedata.io.OutputClaim): never an input, replaced
    only with --force (a folder only if this command made it), one writer at a time."""
    from .io import claim_output

    return click.get_current_context().with_resource(
        claim_output(path, command, inputs=inputs, force=force, folder=folder))


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


def progress_bar(label: str, *fields: Any, con: Console | None = None, transient: bool = True,
                 **kwargs: Any):
    """The one progress display of every command: label, bar, done/total, any extra fields,
    elapsed and remaining time. `label` may use `{task.description}`."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), *fields, TimeElapsedColumn(),
                    TimeRemainingColumn(), console=con or console, transient=transient, **kwargs)


def train_fields() -> tuple:
    """The loss and speed columns of a training display (`posedata train` and the demo)."""
    from rich.progress import TextColumn

    return TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} img/s")


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
    """Check a skeleton FILE (a path or a template name): names, limbs, root reachability, flip map, sigmas."""
    from . import skeleton as S
    from .findings import has_errors

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
@click.option("--force", is_flag=True, help="Replace an existing plot.")
def skeleton_show(file: Path, plot: Path | None, force: bool) -> None:
    """Show the channel tables, grouping order and flip map a skeleton FILE (a path or a template name) produces."""
    from . import skeleton as S

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
        from .plots import plot_skeleton

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
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Replace an existing output.")
def skeleton_init(from_coco: Path | None, from_dlc: Path | None, from_yolo: Path | None, category: Any,
                  output: Path, force: bool, from_cvat: Path | None = None, ignore_edges: bool = False,
                  from_sleap: Path | None = None) -> None:
    """Write a starting skeleton file from a dataset's own definition, for you to review.

    Give one source: a COCO category (--from-coco), a DeepLabCut config.yaml (--from-dlc), a
    YOLO-pose dataset YAML (--from-yolo), a CVAT XML (--from-cvat) or a SLEAP file (--from-sleap),
    so the keypoint names are never typed twice."""
    from . import skeleton as S
    from .coco import select_categories
    from .io import atomic_write_text, load_json

    sources = {"--from-coco": from_coco, "--from-dlc": from_dlc, "--from-yolo": from_yolo, "--from-cvat": from_cvat,
               "--from-sleap": from_sleap}
    given = [k for k, v in sources.items() if v is not None]
    if len(given) != 1:
        raise click.UsageError(f"give exactly one of {', '.join(sources)}" + (f" (got {', '.join(given)})" if given else ""))
    claim(output, "skeleton init", *sources.values(), force=force)
    if from_coco is None:
        if from_sleap is not None:
            from .formats.sleap import skeleton_from_slp

            src, (d, notes) = from_sleap, skeleton_from_slp(from_sleap, one_category(category, "--from-sleap"))
        elif from_cvat is not None:
            from .formats.cvat import skeleton_from_xml

            src, (d, notes) = from_cvat, skeleton_from_xml(from_cvat, one_category(category, "--from-cvat"))
        elif from_dlc is not None:
            from .formats.deeplabcut import skeleton_from_config

            src, (d, notes) = from_dlc, skeleton_from_config(from_dlc)
        else:
            from .formats.yolo import skeleton_from_yaml

            src, (d, notes) = from_yolo, skeleton_from_yaml(from_yolo, one_category(category, "--from-yolo"),
                                                            edges=not ignore_edges)
        d = S.orient_limbs(d)
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
    assert from_coco is not None
    data = load_json(from_coco)
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
        from .errors import InputError

        raise InputError("expected a COCO object with a 'categories' list", file=str(from_coco), where="categories")
    # several categories (--category all, or ids) share one keypoint list: the first one's edges are read
    at = select_categories(data["categories"], category, str(from_coco))[0]
    cat = data["categories"][at]
    d, notes = S.from_coco_category(cat, file=str(from_coco), where=f"categories[{at}]", edges=not ignore_edges)
    d = S.orient_limbs(d)
    sk, findings = S.parse(d, file=str(output))
    text = "# Generated by `posedata skeleton init` from " + from_coco.name + ": review limbs, root, flip and sigmas.\n"
    text += "# Sigmas are placeholders (0.05); set per-keypoint OKS sigmas for evaluation.\n"
    text += "".join(f"# note: {n}\n" for n in notes)
    atomic_write_text(output, text + S.dump_yaml(d))
    if sk is not None:
        findings += S.check(sk)
    for n in notes:
        console.print(f"[yellow]note:[/] {escape(n)}", soft_wrap=True)
    print_findings(findings, title="review these")
    console.print(f"wrote {output}: {len(d['keypoints'])} keypoints, {len(d['limbs'])} limbs, root {d['root']!r}, "
                  f"{len(d['flip'])} flip pair(s)")


# ---------------------------------------------------------------------- check
@cli.command("check")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--skeleton", "skeleton_spec", required=True, help="Skeleton file or template name.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), help="Images folder (checks files and sizes).")
@category_option()
@click.option("--val-json", type=click.Path(dir_okay=False, path_type=Path),
              help="The validation file you will give train: warns about images (by content) in both.")
@click.option("--val-images", type=click.Path(file_okay=False, path_type=Path),
              help="Images folder of --val-json [default: --images].")
def check_cmd(data: Path, skeleton_spec: str, images: Path | None, category: Any, val_json: Path | None = None,
              val_images: Path | None = None) -> None:
    """Skeleton check + validate + data-level flip check: one verdict, one exit code."""
    res = run_check(data, skeleton_spec, images, category, val_json, val_images)
    if not res.ok:
        sys.exit(1)


def run_check(data: Path, skeleton_spec, images: Path | None, category: Any, val_json: Path | None = None,
              val_images: Path | None = None):
    """Run `posedata check` and print its verdict table (shared with the trainer's gate)."""
    from . import skeleton as S
    from .check import check_data, shared_image_findings

    sk = skeleton_spec if isinstance(skeleton_spec, S.Skeleton) else S.resolve(skeleton_spec)
    res = check_data(data, sk, images, category)
    if val_json is not None:
        from .convert import load_source

        src = load_source(data, sk, category)
        names = [im.file_name for im in src.dataset.images]
        res.samples += shared_image_findings(images, names, val_json, val_images)
    t = Table(title=f"posedata check: {data}")
    for c in ("check", "errors", "warnings", "info", "verdict"):
        t.add_column(c)
    for name, f, verdict in res.sections():
        style = {"PASS": "green", "FAIL": "bold red"}.get(verdict, "yellow")
        t.add_row(name, *(str(sum(x.severity == s for x in f)) for s in ("error", "warning", "info")),
                  f"[{style}]{verdict}[/]")
    console.print(t)
    print_findings([f for f in res.findings if f.severity != "info"], limit=20)
    console.print("[bold green]data ready for training[/]" if res.ok else "[bold red]data not ready: fix the errors above[/]")
    return res


# -------------------------------------------------------------------- preview
@cli.command("preview")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--skeleton", "skeleton_spec", required=True, help="Skeleton file or template name.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), required=True, help="Images folder.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for the PNGs.")
@click.option("-n", "num", type=int, default=16, show_default=True, help="Samples to draw.")
@click.option("--seed", type=int, default=0, show_default=True, help="Chooses the samples and their augmentation.")
@click.option("--no-augment", is_flag=True, help="Centre crop at the reference scale, no rotation or flip.")
@click.option("--input-size", type=int, default=368, show_default=True, help="Network input (crop) size, a multiple of 8.")
@category_option("the only one; a label file records its own")
@click.option("--force", is_flag=True, help="Replace the output folder of an earlier `posedata preview`.")
def preview_cmd(data: Path, skeleton_spec: str, images: Path, output: Path, num: int, seed: int,
                no_augment: bool, input_size: int, force: bool, category: Any = None) -> None:
    """Draw training samples and their heatmap/PAF targets exactly as the trainer sees them.

    DATA is a label file from `posedata convert` or a COCO keypoint JSON (converted in memory)."""

    from . import skeleton as S
    from .augment import AugmentConfig, check_input_size
    from .io import atomic_write_text
    from .preview import FIXED_PANELS, preview

    check_input_size(input_size)  # the trainer's rule: a preview shows what training would do
    out = claim(output, "preview", data, images, skeleton_spec, force=force, folder=True)
    sk = S.resolve(skeleton_spec)
    labels = load_labels_or_coco(data, sk, category)
    if labels.num_samples == 0:
        from .errors import DataError

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
    from .io import read_bytes

    head = read_bytes(data)[:4]
    if head == b"PK\x03\x04":
        from .labels import load

        labels = load(data)
        if labels.fingerprint != sk.fingerprint:
            from .errors import InputError

            raise InputError(f"label file was made for skeleton {labels.skeleton_name!r} ({labels.fingerprint}), "
                             f"not {sk.name!r} ({sk.fingerprint})", file=str(data))
        return labels
    from .convert import load_source, to_labels
    from .errors import DataError
    from .findings import has_errors
    from .validate import paused_gc, validate_coco

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
@cli.command("flipcheck")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--skeleton", "skeleton_spec", required=True, help="Skeleton file or template name.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), help="Images folder (for the side-by-side plots).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for the PNGs.")
@click.option("-n", "num", type=int, default=12, show_default=True, help="Instances to draw side by side.")
@category_option()
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace the output folder of an earlier `posedata flipcheck`.")
def flipcheck_cmd(data: Path, skeleton_spec: str, images: Path | None, output: Path, num: int,
                  category: Any, seed: int, force: bool) -> None:
    """Check the skeleton's flip map against the data (left/right swap list right?).

    Last line: PASS, FAIL, INCONCLUSIVE or NOT APPLICABLE (rules and measured rates in
    docs/checks.md); exit 1 exactly when it says FAIL."""
    import numpy as np

    from . import flipcheck as F
    from . import skeleton as S

    out = claim(output, "flipcheck", data, images, skeleton_spec, force=force, folder=True)
    sk = S.resolve(skeleton_spec)
    with console.status("flipcheck: reading the data"):
        ds, ignored = F.load_for_flipcheck(data, sk, images, category)
    if ignored:
        codes = sorted({f.code for f in ignored})
        console.print(f"[yellow]note:[/] {len(ignored)} validate error(s) ({', '.join(codes)}) in fields the flip check "
                      "does not read; run `posedata validate` before training")
    with console.status("flipcheck: testing the flip map"):
        v = F.flip_verdict(ds, sk, category)
    t = Table(title="skeleton-level flip property (internal consistency only)")
    for c in ("kind", "name", "result"):
        t.add_column(c)
    for kind, name, ok in v.property:
        t.add_row(kind, name, "[green]PASS[/]" if ok else "[bold red]FAIL[/]")
    console.print(t)
    if v.test is not None:
        o = v.test
        t = Table(title=f"data-level mirror test on {o.informative} of {v.n_instances} instances "
                        f"(randomisation test p = {o.p_value:.4f}; FAIL at p <= {F.ALPHA})")
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
                      f"(annotation noise allows {100 * sw.noise:.0f}%; binomial p = {sw.p_value:.2g})"
                      + (": " + ", ".join(f"annotation {x['annotation_id']} (image {x['image_id']})"
                                          for x in sw.suspects[:F.MAX_SUSPECTS]) if sw.suspects else ""),
                      soft_wrap=True)
    with console.status("flipcheck: plots"):
        written = [output / w.name for w in F.write_plots(ds, sk, v, out.staging(), images, num, seed, category)]
    out.commit()
    if images is not None and v.swaps is not None and v.swaps.suspects:
        console.print(f"{len(v.swaps.suspects)} instance(s) with a suspected left/right swap drawn first in "
                      f"{output / 'instances.png'}")
    console.print(f"plots: {', '.join(str(w) for w in written)}")
    style = {"PASS": "bold green", "FAIL": "bold red"}.get(v.verdict, "bold yellow")
    console.print(f"[{style}]{v.verdict}[/] {v.reason}", soft_wrap=True)
    if v.exit_code:
        sys.exit(v.exit_code)


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
@category_option()
@click.option("--bbox-margin", type=click.FloatRange(0, 10), default=0.1, show_default=True,
              help="Padding of boxes made from keypoints where an annotation has none.")
@click.option("--force", is_flag=True, help="Replace the dataset folder of an earlier `posedata export yolo`.")
def export_yolo(data: Path, skeleton_spec: str, output: Path, images: Path | None, category: Any,
                bbox_margin: float, force: bool) -> None:
    """Write COCO keypoint DATA as a YOLO-pose dataset: labels/*.txt and data.yaml.

    Keypoints go in the skeleton's source order, named in kpt_names; flip_idx is the skeleton's
    flip map in that order. A keypoint outside its image is written as unlabelled (Ultralytics
    drops a whole image whose labels leave [0, 1]); crowd regions are left out. The folder is
    written beside OUTPUT and moved into place only when complete."""

    from . import coco
    from . import skeleton as S
    from .formats.yolo import export as yolo_export

    claim(output, "export yolo", data, images, skeleton_spec, force=force, folder=True)
    sk = S.resolve(skeleton_spec)
    if images is not None and not images.is_dir():
        from .errors import InputError

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
            ex = examples.get(what, [])[:3]  # a few; --json lists the report's first ten
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
@category_option("the only one with keypoints; one category or label")
@click.option("--control", default=None, metavar="NAME",
              help="Label Studio: the keypoint control (a result's from_name) to import, when a project has several.")
@click.option("--predicted", is_flag=True,
              help="SLEAP: also import predicted instances (model output) that no user instance replaced.")
@click.option("--bbox-margin", type=click.FloatRange(0, 10), default=0.1, show_default=True,
              help="Boxes made from keypoints are padded by this fraction of the keypoints' extent.")
@click.option("--drop-unlabelled", is_flag=True, help="Drop instances with no labelled keypoints.")
@click.option("--keep-empty", is_flag=True, help="Keep images without annotations (as negatives).")
@click.option("--write-invalid", is_flag=True,
              help="Write the output even when it fails validation (still exit 1), to inspect it.")
@click.option("--force", is_flag=True, help="Replace an existing output.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document (the import report and every validate finding) and nothing else.")
def import_cmd(fmt: str, input_path: Path, skeleton_spec: str, output: Path, images: Path | None,
               category: str | None, bbox_margin: float, drop_unlabelled: bool, keep_empty: bool,
               write_invalid: bool, force: bool, as_json: bool = False, control: str | None = None,
               predicted: bool = False) -> None:
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
    from .io import atomic_write_json

    claim(output, "import", input_path, images, skeleton_spec, force=force)
    sk = S.resolve(skeleton_spec)
    opts = ImportOptions(images=images, category=one_category(category, "import"), bbox_margin=bbox_margin,
                         drop_unlabelled=drop_unlabelled, keep_empty=keep_empty, control=control, predicted=predicted)
    result = import_file(fmt, input_path, sk, opts)
    if not as_json:
        print_import_report(result.report)
    if images is not None and result.dataset.images and not as_json:
        with progress_bar("validating: reading image headers") as bar:
            task = bar.add_task("images", total=len(result.dataset.images))
            findings = validate_result(result, sk, opts, file=str(output),
                                       progress=lambda done, total: bar.update(task, completed=done, total=total))
    else:
        findings = validate_result(result, sk, opts, file=str(output))
    data = result.dataset.to_coco()
    n = sum(f.severity == "error" for f in findings)
    written = not has_errors(findings) or write_invalid
    frames = _write_frames(result, output, input_path, force, as_json) if written and result.frames else None
    if written:
        atomic_write_json(output, data)
    if as_json:
        import json

        from .validate import counts

        click.echo(json.dumps({"output": str(output), "written": written, "frames": frames and str(frames),
                               "report": result.report.to_dict(),
                               "counts": counts(findings), "findings": [f.to_dict() for f in findings]}, indent=1))
        if n:
            sys.exit(1)
        return
    # one row per finding code (count and first locations): 116 identical rows buried the warnings
    from .validate import CHECKS

    print_validate_summary(findings, CHECKS, 3, title="validate (imported data; every finding with --json)")
    if n:
        if write_invalid:
            console.print(f"[bold red]FAIL[/] the imported data has {n} validation error(s); wrote {output} anyway "
                          "(--write-invalid) for inspection")
        else:
            console.print(f"[bold red]FAIL[/] the imported data has {n} validation error(s); {output} was not "
                          "written (pass --write-invalid to write it for inspection)")
        sys.exit(1)
    console.print(f"[bold green]OK[/] wrote {output}: {len(data['images'])} image(s), "
                  f"{len(data['annotations'])} instance(s), {len(sk.coco_keypoints)} keypoints")


def _write_frames(result: Any, output: Path, input_path: Path, force: bool, quiet: bool) -> Path:
    """Frames an export holds itself or in videos (SLEAP), as images in <output stem>_frames/
    beside the output: written first, so the output never names frames that are not there."""
    folder = output.with_name(f"{output.stem}_frames")
    hold = claim(folder, "import", input_path, force=force, folder=True)
    with progress_bar("writing frames", con=err_console) as bar:
        task = bar.add_task("frames", total=len(result.frames), visible=not quiet)
        n = result.frames.write(hold.staging(), progress=lambda done, total: bar.update(task, completed=done))
    hold.commit()
    if not quiet:
        console.print(f"frames: wrote {n} image(s) to {folder} (pass --images {folder} to later commands)",
                      soft_wrap=True)
    return folder


def _import_help_formats() -> None:
    import inspect

    from .formats import FORMATS

    import_cmd.help = inspect.cleandoc(import_cmd.help or "") + "\n\nFormats: auto, " + ", ".join(FORMATS) + "."


_import_help_formats()


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


@cli.command("train")
@click.option("--skeleton", "skeleton_spec", help="Skeleton file or template name (required unless --resume).")
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path), help="Label file (.npz) from posedata.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), help="Training images folder.")
@click.option("--val-json", type=click.Path(dir_okay=False, path_type=Path), help="COCO JSON for validation AP (best.pt).")
@click.option("--val-images", type=click.Path(file_okay=False, path_type=Path), help="Validation images folder.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), help="Run folder.")
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
@click.option("--force", is_flag=True, help="Replace the run folder of an earlier `posedata train`.")
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
    from . import skeleton as S
    from .errors import DataError, InputError
    from .findings import has_errors
    from .io import atomic_write_json

    quiet = int(os.environ.get("RANK", "0")) != 0
    out_console = Console(quiet=quiet, highlight=False)
    given = dict(labels=labels, images=images, output=output, val_json=val_json, val_images=val_images,
                 init=init_ckpt, preset=preset, iterations=iterations, batch_size=batch_size, lr=lr, stages=stages,
                 input_size=input_size, width=width, workers=workers, seed=seed, checkpoint_every=checkpoint_every,
                 max_minutes=max_minutes, threads=threads, device=device, tensorboard=tensorboard)
    given = {k: (str(v) if isinstance(v, Path) else v) for k, v in given.items() if v is not None}

    from trainer import presets as P
    from trainer.run import check_not_running
    from trainer.train import gate, new_run_config, resume_run_config, train

    if resume is not None:
        cfg, sk_dict = resume_run_config(resume, given)
        sk = S.from_dict(sk_dict, file=str(resume / "config.json"))
        if skeleton_spec:
            given_sk = S.resolve(skeleton_spec)
            if given_sk.fingerprint != sk.fingerprint:
                raise InputError(f"the run was trained for skeleton {sk.name!r} ({sk.fingerprint}), "
                                 f"not {given_sk.name!r} ({given_sk.fingerprint})", file=str(skeleton_spec))
        check_not_running(resume)
        out_console.print(f"resuming {resume} towards iteration {cfg.iterations} (data check ran at the start)")
    else:
        missing = [n for n, v in (("--skeleton", skeleton_spec), ("--labels", labels), ("--images", images),
                                  ("-o/--output", output)) if v is None]
        if missing:
            raise InputError(f"missing option(s) {', '.join(missing)} (all required unless --resume)")
        sk = S.resolve(skeleton_spec)
        cfg = new_run_config({**given, "skeleton_file": str(sk.file)})
        run = None
        if not quiet:  # rank 0 decides; other ranks would race it for the folder it creates
            check_not_running(output)
            if (output / "config.json").is_file() and not force:
                raise InputError(f"{output} holds a run; continue it with: posedata train --resume {output} "
                                 "(or pass --force to start it again from scratch)", file=str(output))
            run = claim(output, "train", labels, images, val_json, val_images, init_ckpt, skeleton_spec,
                        force=force, folder=True)
        # refuse a label file for another skeleton before the (slower) data check
        from posedata.labels import load as load_labels
        from trainer.data import check_fingerprint

        check_fingerprint(load_labels(labels), sk, str(labels))
        if init_ckpt is not None:
            # an unreadable --init fails here, before the data check and before the run folder exists
            from trainer.checkpoint import load as load_checkpoint

            load_checkpoint(init_ckpt)
        try:
            with out_console.status("checking the training data (skeleton, validate, flip map)"):
                source, findings = gate(labels, sk, images, val_json, val_images)
        except InputError as e:
            if not skip_checks:
                raise
            out_console.print(f"[yellow]data check could not run ({escape(str(e))}); training anyway "
                              "(--skip-checks)[/]", soft_wrap=True)
        else:
            errors = sum(f.severity == "error" for f in findings)
            if not quiet:
                print_findings([f for f in findings if f.severity != "info"], limit=20, title=f"data check: {source}")
            if has_errors(findings):
                if not skip_checks:
                    stale = [f.message for f in findings if f.code == "C001"]  # the data checked is not the labels'
                    raise DataError(stale[0] if stale else
                                    f"the training data has {errors} error(s) (above); fix them or pass --skip-checks",
                                    findings, file=str(labels if stale else source))
                out_console.print(f"[yellow]data check: {errors} error(s); training anyway (--skip-checks)[/]")
            else:
                out_console.print(f"[green]data check passed[/] ({source})")
        given_keys = sorted(k for k in given if k in P.PRESETS[cfg.preset])
        out_console.print(f"settings: input {cfg.input_size}, width {cfg.width}, {cfg.stages} refinement stage(s), "
                          f"batch {cfg.batch_size}, {cfg.iterations} iterations, lr {cfg.lr:g} (preset {cfg.preset}"
                          f"{'' if preset else ', the default for this device'}"
                          + (f"; given: {', '.join('--' + k.replace('_', '-') for k in given_keys)}" if given_keys else "")
                          + ")", soft_wrap=True)
        if run is not None:
            run.in_place()  # every input is read: only now is an earlier run of this folder removed

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

        result = train(cfg, sk, resume=resume is not None, callback=on_event, started=started)
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


# ------------------------------------------------------------------- validate
@cli.command("validate")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--skeleton", "skeleton_spec", required=True, help="Skeleton file or template name.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path),
              help="Images folder: also check every file exists, stays inside it, reads, and has the JSON's size.")
@category_option("every category with keypoints")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (findings and counts) and nothing else.")
@click.option("--fix", "fix_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a repaired copy here (num_keypoints, area, v=0 coordinates, missing boxes); never the input.")
@click.option("--force", is_flag=True, help="Replace an existing --fix output.")
@click.option("--show", type=click.IntRange(0, 1000), default=3, show_default=True,
              help="Locations listed per check (and changes listed per repair x 10).")
def validate_cmd(data: Path, skeleton_spec: str, images: Path | None, category: Any, as_json: bool,
                 fix_out: Path | None, force: bool, show: int) -> None:
    """Check a COCO keypoint file DATA against a skeleton; every finding has a code and a location.

    Exit 0: no errors (warnings and info allowed). Exit 1: the data has errors. Exit 2: DATA,
    the skeleton or the images folder cannot be read. See docs/checks.md for every check code.
    """
    import json

    from . import skeleton as S
    from . import validate as V
    from .errors import InputError
    from .findings import has_errors
    from .fix import REPAIRS, repair_file, short
    if fix_out is not None:
        claim(fix_out, "validate", data, images, skeleton_spec, force=force)
    sk = S.resolve(skeleton_spec)
    if images is not None and not images.is_dir():
        raise InputError("images folder not found", file=str(images))
    if data.is_dir():
        fmt = V.suggest_importer(None, data)
        if fmt is None:
            raise InputError("a folder; expected a COCO keypoint JSON file (and no import format recognises the "
                             "folder)", file=str(data))
        raise InputError(_tool_export_message(fmt, data, skeleton_spec), file=str(data))
    try:
        if images is not None and not as_json:
            with progress_bar("reading image headers", con=err_console) as bar:
                task = bar.add_task("images", total=None)
                raw, findings = V.validate_file(
                    data, sk, images=images, category_id=category,
                    progress=lambda done, total: bar.update(task, completed=done, total=total))
        else:
            raw, findings = V.validate_file(data, sk, images=images, category_id=category)
    except InputError:
        # not JSON at all (CVAT XML, DeepLabCut CSV, SLEAP...): name the import that reads it rather
        # than report where a JSON parser gave up on a file that was never meant to be JSON
        fmt = V.suggest_importer(None, data) if data.exists() else None
        if fmt is None:
            raise
        raise InputError(_tool_export_message(fmt, data, skeleton_spec), file=str(data)) from None
    importer = V.suggest_importer(raw, data)  # a tool's JSON (coco-annotator, CVAT COCO, Label Studio...)

    report = None if fix_out is None else repair_file(raw, sk, findings, fix_out, category_id=category)

    if as_json:
        doc = {"file": str(data), "skeleton": sk.name, "fingerprint": sk.fingerprint,
               "counts": V.counts(findings), "findings": [f.to_dict() for f in findings],
               "suggested_importer": importer}
        if report is not None:
            doc["fix"] = report.to_dict()
        click.echo(json.dumps(doc, indent=1))
    else:
        print_validate_summary(findings, V.CHECKS, show, title=f"validate {data} (skeleton {sk.name})")
        c = V.counts(findings)
        verdict = "[bold red]FAIL[/]" if c["error"] else "[bold green]OK[/]"
        console.print(f"{verdict} {data}: {c['error']} error(s), {c['warning']} warning(s), {c['info']} info")
        if importer:
            console.print(f"[yellow]hint:[/] this looks like a {importer} export; `posedata import {importer} "
                          f"{data} --skeleton {skeleton_spec} -o clean.json` turns it into clean COCO (`posedata "
                          f"convert --from {importer}` imports it in memory)", soft_wrap=True)
        if report is not None:
            t = Table(title=f"--fix: {len(report.changes)} change(s) written to {fix_out}")
            for col in ("code", "changes", "repair", "first changes (where: old -> new)"):
                t.add_column(col, overflow="fold")
            by_code: dict[str, list] = {}
            for ch in report.changes:
                by_code.setdefault(ch.code, []).append(ch)
            for code, chs in sorted(by_code.items()):
                first = "; ".join(f"{ch.where}: {short(ch.old)} -> {short(ch.new)}" for ch in chs[: show * 10])
                t.add_row(code, str(len(chs)), REPAIRS.get(code, ""), first + (" ..." if len(chs) > show * 10 else ""))
            console.print(t)
            a = report.after
            console.print(f"{fix_out} re-validated (without image checks): {a['error']} error(s), "
                          f"{a['warning']} warning(s), {a['info']} info")
    if has_errors(findings):
        sys.exit(1)


def _tool_export_message(fmt: str, data: Path, skeleton_spec: str) -> str:
    """What to run for a labelling tool's export that is not COCO keypoint JSON."""
    return (f"this is a {fmt} export, not COCO keypoint JSON; run `posedata import {fmt} {data} --skeleton "
            f"{skeleton_spec} -o clean.json` to turn it into clean COCO (then validate clean.json), or "
            f"`posedata convert {data} --skeleton {skeleton_spec} -o labels.npz` to import and convert in one step")


def print_validate_summary(findings: list, checks: dict, show: int, title: str) -> None:
    """One row per check code: severity, count, what it checks and the first locations."""
    if not findings:
        console.print(f"{title}: no findings")
        return
    by_code: dict[str, list] = {}
    for f in findings:
        by_code.setdefault(f.code, []).append(f)
    order = {"error": 0, "warning": 1, "info": 2}
    t = Table(title=title)
    for col in ("code", "severity", "count", "check", "first locations"):
        t.add_column(col, overflow="fold", justify="right" if col == "count" else "left")
    for code, fs in sorted(by_code.items(), key=lambda kv: (order.get(kv[1][0].severity, 3), kv[0])):
        sev = fs[0].severity
        locs = []
        for f in fs[:show]:
            ids = ", ".join(x for x in (f"ann {f.annotation_id}" if f.annotation_id is not None else "",
                                        f"img {f.image_id}" if f.image_id is not None else "") if x)
            locs.append(f"{f.where or '-'}" + (f" ({ids})" if ids else ""))
        if len(fs) == 1 or code == "V099":
            locs = [f"{locs[0]}: {fs[0].message}"] if locs else [fs[0].message]
        t.add_row(code, f"[{SEVERITY_STYLE.get(sev, '')}]{sev}[/]", str(len(fs)), checks.get(code, ("", code))[1],
                  "\n".join(locs) + ("\n..." if len(fs) > show else ""))
    console.print(t)


# --------------------------------------------------------------------- synth
@cli.command("synth")
@click.option("--skeleton", "skeleton_spec", required=True, help="Skeleton file or template name (e.g. quadruped17).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset folder: images/ and annotations.json are written into it.")
@click.option("--images", "n_images", type=click.IntRange(1, 1_000_000), default=200, show_default=True,
              help="Number of images.")
@click.option("--size", default="160x160", show_default=True, help="Image size WIDTHxHEIGHT.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Poses, placement, colours. The creature itself depends on the skeleton only.")
@click.option("--force", is_flag=True, help="Replace the dataset folder of an earlier `posedata synth`.")
def synth_cmd(skeleton_spec: str, output: Path, n_images: int, size: str, seed: int, force: bool) -> None:
    """Generate a COCO keypoint dataset of drawn articulated figures for any skeleton.

    Several figures per image with overlaps, occluders and partial views (occluded keypoints v=1,
    out of frame v=0), varied scale, textured backgrounds and a few crowd patches (iscrowd=1).
    The same seed gives byte-identical output."""
    import json
    import time

    from . import skeleton as S
    from .synth import generate, parse_size

    wh = parse_size(size)
    claim(output, "synth", skeleton_spec, force=force, folder=True)
    sk = S.resolve(skeleton_spec)
    t0 = time.perf_counter()
    with progress_bar("drawing", con=err_console) as bar:
        task = bar.add_task("synth", total=n_images)
        path = generate(sk, output, n_images, wh, seed,
                        progress=lambda done, total: bar.update(task, completed=done))
    secs = time.perf_counter() - t0
    data = json.loads(path.read_text(encoding="utf-8"))
    anns = data["annotations"]
    figures = [a for a in anns if not a["iscrowd"]]
    vis = [0, 0, 0]
    for a in figures:
        for v in a["keypoints"][2::3]:
            vis[int(v)] += 1
    total = max(1, sum(vis))
    console.print(
        f"wrote {path} and {n_images} image(s) in {output / 'images'} ({wh[0]}x{wh[1]}, seed {seed}) in {secs:.1f} s\n"
        f"skeleton {sk.name} ({sk.fingerprint}): {len(figures)} figure(s), {len(anns) - len(figures)} crowd "
        f"region(s); keypoints {vis[2] / total:.0%} visible, {vis[1] / total:.0%} occluded, "
        f"{vis[0] / total:.0%} out of frame", soft_wrap=True
    )


# ------------------------------------------------------------ val / infer / export onnx, reference
def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.1f}" if pct else f"{v:.3f}"


def print_val_report(res: dict, title: str) -> None:
    """The COCOeval summary and the per-keypoint statistics."""
    t = Table(title=title, show_edge=False)
    for c in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"):
        t.add_column(c, justify="right", no_wrap=True)
    t.add_row(*(("-" if res[c] < 0 else f"{res[c]:.3f}") for c in ("AP", "AP50", "AP75", "APm", "APl",
                                                                     "AR", "AR50", "AR75", "ARm", "ARl")))
    console.print(t)
    pk = res["per_keypoint"]
    matched = pk[0]["matched_instances"] if pk else 0
    t = Table(title=f"per keypoint, over the {matched} instance(s) matched at OKS 0.5", show_edge=False)
    t.add_column("keypoint", no_wrap=True, min_width=max([len(r["keypoint"]) for r in pk] + [8]))
    for c in ("sigma", "GT", "matched", "found%", "OKS", "PCK%", "err px"):
        t.add_column(c, justify="right", no_wrap=True)
    for r in pk:
        t.add_row(r["keypoint"], f"{r['sigma']:.3f}", str(r["gt_labelled"]), str(r["labelled"]),
                  _fmt(r["found_rate"], True), _fmt(r["oks"]), _fmt(r["pck"], True),
                  "-" if r["error_px"] is None else f"{r['error_px']:.1f}")
    console.print(t)
    console.print(f"{res['n_images']} image(s), {res['n_detections']} detection(s). GT: labelled in the ground truth; "
                  "matched: labelled in matched instances; found%: of those, detected; OKS: mean per-keypoint "
                  "similarity (missing = 0); PCK%: similarity >= 0.5; err px: mean distance where found")


@cli.command("val")
@click.option("--skeleton", "skeleton_spec", help="Skeleton file or template name [default: the one the checkpoint "
              "or ONNX file stores].")
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True,
              help="posedata checkpoint, ONNX file from `export onnx`, or a reference-layout checkpoint whose heads "
                   "fit the skeleton.")
@click.option("--coco", "coco_json", type=click.Path(path_type=Path), required=True, help="COCO keypoint JSON (ground truth).")
@click.option("--images", type=click.Path(path_type=Path), required=True, help="Images folder of the JSON.")
@click.option("--multiscale", is_flag=True, help="Average scales 0.5, 1, 1.5, 2 (the reference's).")
@click.option("--flip", is_flag=True, help="Average with the mirrored image, channels swapped by the flip map.")
@click.option("--input-size", type=click.IntRange(32, 4096), default=None,
              help="Network input height (images are scaled to it) [default: the size the model was trained at, "
                   "else 368].")
@category_option("the only one, or all that share one keypoint list; one id here")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for results.json, metrics.json and overlay PNGs.")
@click.option("--overlays", type=click.IntRange(0, 10000), default=4, show_default=True, help="Overlay PNGs to write.")
@click.option("--backend", type=click.Choice(["auto", "torch", "onnx"]), default="auto", show_default=True,
              help="Run the network with PyTorch or ONNX Runtime (extra 'onnx'); auto: torch for checkpoints.")
@click.option("--threads", type=click.IntRange(1, 512), default=None, help="CPU threads [default: torch's choice].")
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA when available, else CPU), cpu, cuda, cuda:N or mps.")
@click.option("--force", is_flag=True, help="Replace the output folder of an earlier `posedata val`.")
def val_cmd(skeleton_spec: str | None, checkpoint: Path, coco_json: Path, images: Path, multiscale: bool, flip: bool,
            input_size: int | None, category: Any, output: Path | None, overlays: int, backend: str,
            threads: int | None, device: str, force: bool) -> None:
    """Evaluate a checkpoint on a COCO keypoint file: inference as the reference, grouping,
    COCOeval with the skeleton's sigmas."""
    from . import skeleton as S

    out = claim(output, "val", checkpoint, coco_json, images, skeleton_spec, force=force, folder=True) \
        if output is not None else None
    sk = S.resolve(skeleton_spec) if skeleton_spec else None
    from trainer import evaluate as E
    from trainer.threads import apply_thread_policy

    apply_thread_policy(threads)
    loaded = E.load_model(checkpoint, sk, device=device, backend=backend)
    sk = loaded.skeleton
    size, why = loaded.choose_input_size(input_size)
    console.print(f"model: {checkpoint} ({loaded.description}); input {size} ({why})")
    with progress_bar("val") as prog:
        task = prog.add_task("val", total=None)
        res = E.evaluate(loaded.model, sk, coco_json, images, input_size=size, multiscale=multiscale, flip=flip,
                         out_dir=out.staging() if out else None, category_id=one_id(category, "val"), overlays=overlays,
                         progress=lambda done, total: prog.update(task, completed=done, total=total))
    opts = ", ".join(x for x in ("multiscale" if multiscale else "", "flip" if flip else "") if x)
    if out is not None:
        out.commit()
    print_val_report(res, f"{sk.name} on {coco_json.name}: COCOeval keypoints, input {size}"
                          + (f", {opts}" if opts else ""))
    if output is not None:
        console.print(f"wrote {output}/results.json, metrics.json and {min(overlays, res['n_images'])} overlay PNG(s)")


@cli.command("infer")
@click.argument("source", metavar="IMAGE_OR_DIR", type=click.Path(path_type=Path))
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True,
              help="Model checkpoint, or an ONNX file from `export onnx`.")
@click.option("--skeleton", "skeleton_spec", help="Skeleton file or template name [default: the one the checkpoint "
              "or ONNX file stores].")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for one PNG per image and results.json.")
@click.option("--multiscale", is_flag=True, help="Average scales 0.5, 1, 1.5, 2.")
@click.option("--flip", is_flag=True, help="Average with the mirrored image.")
@click.option("--input-size", type=click.IntRange(32, 4096), default=None,
              help="Network input height [default: the size the model was trained at, else 368].")
@click.option("--min-score", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Keep only instances with at least this score (the score written to results.json).")
@click.option("--backend", type=click.Choice(["auto", "torch", "onnx"]), default="auto", show_default=True,
              help="Run the network with PyTorch or ONNX Runtime (extra 'onnx'); auto: torch for checkpoints.")
@click.option("--threads", type=click.IntRange(1, 512), default=None, help="CPU threads [default: torch's choice].")
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA when available, else CPU), cpu, cuda, cuda:N or mps.")
@click.option("--force", is_flag=True, help="Replace the output folder of an earlier `posedata infer`.")
def infer_cmd(source: Path, checkpoint: Path, skeleton_spec: str | None, output: Path, multiscale: bool, flip: bool,
              input_size: int | None, min_score: float, backend: str, threads: int | None, device: str,
              force: bool) -> None:
    """Detect poses in an image or a folder of images: drawn PNGs and a COCO-style JSON."""
    from . import skeleton as S

    out = claim(output, "infer", source, checkpoint, skeleton_spec, force=force, folder=True)
    sk = S.resolve(skeleton_spec) if skeleton_spec else None
    from trainer import evaluate as E
    from trainer.threads import apply_thread_policy

    paths = E.list_images(source)
    apply_thread_policy(threads)
    loaded = E.load_model(checkpoint, sk, device=device, backend=backend)
    sk = loaded.skeleton
    size, why = loaded.choose_input_size(input_size)
    console.print(f"model: {checkpoint} ({loaded.description}); input {size} ({why})")
    with progress_bar("infer") as prog:
        task = prog.add_task("infer", total=len(paths))
        coco = E.infer(loaded.model, sk, paths, out.staging(), input_size=size, multiscale=multiscale, flip=flip,
                       min_score=min_score, progress=lambda done, total: prog.update(task, completed=done))
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


@export.command("onnx")
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True, help="Model checkpoint.")
@click.option("--skeleton", "skeleton_spec", help="Skeleton file or template name [default: the checkpoint's].")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="ONNX file to write.")
@click.option("--input-size", type=click.IntRange(32, 4096), default=None,
              help="Input height recorded in the file, and the size of the square test input (height and width "
                   "stay dynamic) [default: the size the model was trained at, else 368].")
@click.option("--force", is_flag=True, help="Replace an existing output.")
def export_onnx_cmd(checkpoint: Path, skeleton_spec: str | None, output: Path, input_size: int | None,
                    force: bool) -> None:
    """Export the last stage (heatmaps, pafs) to ONNX, checked against PyTorch with onnxruntime.

    The file carries the skeleton, its fingerprint, the input normalisation, stride and input size
    as metadata, so `posedata infer` and `val` run it with no other flags."""
    from . import skeleton as S

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
@click.option("--skeleton", "skeleton_spec", required=True, help="Skeleton file or template name.")
def export_reference_cmd(skeleton_spec: str) -> None:
    """Print the limb, PAF-channel and flip tables in the reference implementation's notation."""
    from posedata.grouping import reference_text

    from . import skeleton as S

    click.echo(reference_text(S.resolve(skeleton_spec)))


# -------------------------------------------------------------------- convert
@cli.command("split")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for train.json and val.json.")
@click.option("--val", "val", type=click.FloatRange(0, None, min_open=True), default=0.2, show_default=True,
              help="Validation images: a fraction (0.2) or a count (50).")
@click.option("--by", default="image", show_default=True,
              help="What moves as one: image, folder (of the file name: a session or video folder), track "
                   "(images joined by an annotation track_id), or an image field such as video_id.")
@click.option("--seed", type=int, default=0, show_default=True, help="Chooses the validation groups.")
@click.option("--force", is_flag=True, help="Replace train.json / val.json written earlier.")
def split_cmd(data: Path, output: Path, val: float, by: str, seed: int, force: bool) -> None:
    """Split a COCO keypoint file into train.json and val.json so that no group (a recording, a
    session folder, a tracked animal) lands on both sides."""
    from .errors import InputError
    from .io import atomic_write_json, load_json
    from .split import split_coco

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


def _convert_sources() -> list[str]:
    from .formats import FORMATS

    return ["auto", "coco", *FORMATS]


@cli.command("convert")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--skeleton", "skeleton_spec", required=True, help="Skeleton file or template name.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File to write.")
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
@click.option("--images", type=click.Path(file_okay=False, path_type=Path),
              help="Images folder: validation also checks the files and their sizes; an import also resolves "
                   "file names and reads missing sizes here.")
@click.option("--bbox-margin", type=click.FloatRange(0, 10), default=0.1, show_default=True,
              help="Import only: boxes made from keypoints are padded by this fraction of the keypoints' extent.")
@click.option("--drop-unlabelled", is_flag=True, help="Import only: drop instances with no labelled keypoints.")
@click.option("--skip-checks", is_flag=True,
              help="Convert even when validate reports errors (they are still printed).")
@click.option("--force", is_flag=True, help="Replace an existing output (never an input).")
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


    from . import skeleton as S
    from . import validate as V
    from .convert import load_source, sample_findings, source_copy, to_labels
    from .errors import InputError
    from .findings import has_errors
    from .formats.base import ImportOptions
    from .labels import save

    claim(output, "convert", data, images, skeleton_spec, force=force)
    sk = S.resolve(skeleton_spec)
    if images is not None and not images.is_dir():
        raise InputError("images folder not found", file=str(images))
    # an import reads one category; COCO JSON used as it is takes ids, names and all (load_source)
    opts = ImportOptions(images=images, category=None if category is None or isinstance(category, tuple) else str(category),
                         bbox_margin=bbox_margin, drop_unlabelled=drop_unlabelled)
    steps = ["reading", "validating", "converting", "writing"]
    # One scoped GC pause over the whole job, and the parse dropped before it ends: millions of
    # parsed containers are then freed by reference counting without the collector ever scanning
    # them (measured in bench/README.md, "convert"); the collector's state is restored after.
    with V.paused_gc():
        with progress_bar("{task.description:<12}", con=err_console) as bar:
            task = bar.add_task(steps[0], total=len(steps))
            src = load_source(data, sk, category, fmt=src_fmt, options=opts)
            raw = src.raw if src.raw is not None else src.dataset.to_coco()
            where = str(data) if src.import_format is None else f"{data} (as imported)"
            bar.update(task, advance=1, description=steps[1])
            img_task = bar.add_task("image files", total=None, visible=images is not None)
            kept = V.Validated()  # what validate reads of the annotations, converted without reading them again
            findings = V.validate_coco(raw, sk, file=where, images=images, category_id=src.category_id, keep=kept,
                                       progress=lambda done, total: bar.update(img_task, completed=done, total=total))
            bar.update(img_task, visible=False)
            blocked = has_errors(findings) and not skip_checks
            if not blocked:
                bar.update(task, advance=1, description=steps[2])
                labels = to_labels(src.data, sk, src.category_id, min_keypoints, min_area, dedup, source=str(data),
                                   source_sha256=src.sha256, validated=kept)
                del kept
                labels.settings.update(src.provenance())
                verdict = sample_findings(labels, file=where)
                empty = has_errors(verdict)
                bar.update(task, advance=1, description=steps[3])
                if empty:
                    pass  # nothing to train on: no file is better than an empty one
                elif fmt == "labels":
                    if images is not None:
                        labels.settings["images"] = str(images)
                    # the gate re-checks this copy when the label file travels without its source
                    save(labels, output, source=source_copy(data, src, raw))
                    written = labels.num_samples
                else:
                    from .formats.lwop import write_lwop_pickle

                    written = write_lwop_pickle(raw, output, labels.settings["category_id"], file=where,
                                                min_keypoints=labels.settings["min_keypoints"], min_area=min_area,
                                                dedup_ratio=dedup)
                bar.update(task, advance=1)
        hint = V.suggest_importer(src.raw) if blocked and src.raw is not None else None
        import_format, detected, report = src.import_format, src.detected, src.report
        del src, raw
    if import_format is None:
        console.print(f"[bold]input[/] {data}: COCO keypoint JSON, converted as it is (no import"
                      f"{': --from coco' if src_fmt.lower() == 'coco' else '; no labelling tool recognised'})",
                      soft_wrap=True)
    else:
        how = "recognised by content" if detected else f"--from {import_format}"
        console.print(f"[bold]input[/] {data}: a {import_format} export ({how}); imported in memory, then "
                      "validated and converted", soft_wrap=True)
        print_import_report(report)
    n_err = sum(f.severity == "error" for f in findings)
    if blocked:
        print_validate_summary(findings, V.CHECKS, 3, title=f"validate {where} (skeleton {sk.name})")
        console.print(f"[bold red]FAIL[/] {where}: {n_err} error(s); nothing written. Fix the data "
                      f"(`posedata validate --fix`) or pass --skip-checks to convert anyway.", soft_wrap=True)
        if hint is not None:
            console.print(f"[yellow]hint:[/] the errors look like a {hint} export's quirks; `--from {hint}` imports "
                          "it in memory and repairs what the import can (boxes and areas from keypoints, ...)",
                          soft_wrap=True)
        sys.exit(1)
    if n_err:
        console.print(f"[yellow]warning:[/] converting despite {n_err} validation error(s) (--skip-checks)")
    print_convert_summary(labels.extra["stats"], labels.settings)
    for f in verdict:
        style = "bold red" if f.severity == "error" else "yellow"
        console.print(f"[{style}]{f.severity} {f.code}:[/] {escape(f.message)}", soft_wrap=True)
    if empty:
        console.print(f"[bold red]FAIL[/] {where}: no training sample; nothing written.", soft_wrap=True)
        sys.exit(1)
    what = "samples" if fmt == "labels" else "records (reference pickle)"
    console.print(f"[bold green]wrote[/] {output}: {written} {what}, {labels.num_images} images, "
                  f"{len(labels.inst_ids)} instances; skeleton {sk.name} ({sk.fingerprint})", soft_wrap=True)


def print_convert_summary(stats: dict[str, Any], settings: dict[str, Any]) -> None:
    """What convert kept and why the rest was left out."""
    t = Table(title="convert")
    t.add_column("")
    t.add_column("count", justify="right")
    t.add_row("images in file", str(stats["images_in_file"]))
    t.add_row("  dropped: no person", str(stats["images_without_person"]))
    t.add_row("images kept", str(stats["images"]))
    t.add_row("annotations", str(stats["annotations"]))
    if stats["other_category"]:
        t.add_row("  other categories", str(stats["other_category"]))
    for reason, n in sorted(stats["dropped"].items()):
        t.add_row(f"  not an instance: {reason}", str(n))
    t.add_row("instances (persons)", str(stats["instances"]))
    rules = {"min_keypoints": f"num_keypoints < {settings['min_keypoints']}",
             "min_area": f"area < {settings['min_area']:g}",
             "dedup": f"centre within {settings['dedup_ratio']:g} x width of an accepted sample"}
    for rule, n in stats["rejected"].items():
        t.add_row(f"  not a sample: {rules.get(rule, rule)}", str(n))
    t.add_row("training samples", str(stats["samples"]))
    t.add_row("crowd regions (loss masks)", str(stats["crowd_regions"]))
    if stats["crowd_regions_unused"]:
        t.add_row("  crowd regions on dropped images", str(stats["crowd_regions_unused"]))
    if stats["area_from_bbox"]:
        t.add_row("area taken from bbox", str(stats["area_from_bbox"]))
    if stats["num_keypoints_recounted"]:
        t.add_row("num_keypoints recounted", str(stats["num_keypoints_recounted"]))
    console.print(t)


# ---------------------------------------------------------------------- demo
@cli.command("demo")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"),
              show_default=True, help="Folder for every artefact (data, previews, plots, run, results).")
@click.option("--steps", type=click.IntRange(1, 10**6), default=None,
              help="Training steps [default: 3600, about 9 minutes on 2 idle cores; a busy machine takes "
                   "longer and reaches the same AP].")
@click.option("--quick", is_flag=True, help="Seconds-long version (tiny data, a few iterations): every step, every artefact.")
@click.option("--force", is_flag=True, help="Replace the output folder of an earlier demo.")
def demo_cmd(output: Path, steps: int | None, quick: bool, force: bool) -> None:
    """Synthetic dataset -> validate -> convert -> preview -> flipcheck -> train -> val, on this CPU.

    A non-human template skeleton (object5), a training and a held-out set drawn by `posedata synth`,
    a small network trained for a fixed number of steps, and COCO AP (OKS, the skeleton's sigmas,
    silhouette areas) on the held-out set at the end, with the location of every artefact."""
    import time

    from rich.rule import Rule

    from . import demo as D
    from . import validate as V
    from .errors import DataError
    from .io import atomic_write_json

    claim(output, "demo", force=force, folder=True).in_place()
    plan = D.make_plan(steps, quick)
    paths = D.DemoPaths(output)
    sk = D.skeleton(plan)
    t_start = time.perf_counter()
    loads: list[tuple[str, float | None]] = [("start", D.load_average())]
    steps = 7

    def bar(label: str):
        return progress_bar(f"{label:<10}")

    def header(n: int, text: str) -> None:
        console.print(Rule(f"[bold]{n}/{steps} {text}[/]  [dim]{time.perf_counter() - t_start:.0f} s[/]", align="left"))

    console.print(f"posedata demo: skeleton {sk.name} ({sk.num_keypoints} keypoints, {sk.num_limbs} limbs, "
                  f"{sum(i < j for i, j in enumerate(sk.flip))} flip pairs), output {output}, "
                  f"{plan.iterations} training steps{' (quick)' if quick else ''}", soft_wrap=True)

    header(1, "synth: a training set and a held-out set")
    with bar("synth") as prog:
        task = prog.add_task("synth", total=plan.train_images + plan.val_images)
        syn = D.synth_step(plan, paths, sk, progress=lambda done, total: prog.update(task, completed=done, total=total))
    for name, p in (("train", syn.train_json), ("val", syn.val_json)):
        v = syn.visibility[name]
        n = max(1, sum(v))
        console.print(f"  {name}: {p} ({plan.train_images if name == 'train' else plan.val_images} images "
                      f"{plan.image_size}x{plan.image_size}, {syn.figures[name]} figures; keypoints {v[2] / n:.0%} visible, "
                      f"{v[1] / n:.0%} occluded, {v[0] / n:.0%} out of frame)", soft_wrap=True)
    console.print(f"  drawn in {syn.seconds:.1f} s")

    header(2, "validate (with image checks)")
    with bar("validate") as prog:
        task = prog.add_task("validate", total=None)
        val = D.validate_step(paths, sk, progress=lambda done, total: prog.update(task, completed=done, total=total))
    for name, fs in val.findings.items():
        shown = [f for f in fs if f.severity != "info"]
        if shown:
            print_validate_summary(shown, V.CHECKS, 3, title=f"validate {name}")
        c = V.counts(fs)
        verdict = "[bold red]FAIL[/]" if c["error"] else "[bold green]OK[/]"
        info: dict[str, int] = {}
        for f in fs:
            if f.severity == "info":
                info[f.code] = info.get(f.code, 0) + 1
        detail = ", ".join(f"{code} x{n}: {V.CHECKS.get(code, ('', code))[1]}" for code, n in sorted(info.items()))
        console.print(f"  {verdict} {name}: {c['error']} error(s), {c['warning']} warning(s), {c['info']} info"
                      + (f" ({detail})" if detail else ""), soft_wrap=True)
    if val.errors():
        raise DataError("the synthetic data has validation errors (a bug in posedata synth)",
                        [f for fs in val.findings.values() for f in fs], file=str(paths.train_json))

    header(3, "convert the training set to labels")
    labels = D.convert_step(paths, sk)
    print_convert_summary(labels.extra["stats"], labels.settings)
    console.print(f"  wrote {paths.labels}: {labels.num_samples} samples, {labels.num_images} images")

    header(4, f"preview the training targets at input {plan.input_size}")
    with bar("preview") as prog:
        task = prog.add_task("preview", total=plan.preview_samples)
        items = D.preview_step(plan, paths, sk, labels,
                               progress=lambda done, total: prog.update(task, completed=done, total=total))
    m = plan.input_size // 8
    console.print(f"  {len(items)} samples: image, heatmaps ({m}x{m}, stride 8) and PAFs per sample; "
                  f"contact sheet {paths.preview / 'index.png'}", soft_wrap=True)

    header(5, "flipcheck: the flip map against the data")
    with console.status("flipcheck"):
        flip = D.flipcheck_step(plan, paths, sk)
    style = {"PASS": "bold green", "FAIL": "bold red"}.get(flip.verdict, "yellow")
    console.print(f"  [{style}]{flip.verdict}[/] {flip.flip.reason}", soft_wrap=True)
    if flip.verdict == "FAIL":
        raise DataError("the flip map disagrees with the synthetic data (a bug in posedata synth or flipcheck)",
                        file=str(paths.train_json))

    header(6, f"train on CPU: input {plan.input_size}, width {plan.width}, {plan.stages} refinement stage(s), "
              f"batch {plan.batch_size}, Adam lr {plan.lr:g}, {plan.threads} thread(s), {plan.iterations} steps")
    with progress_bar("train     ", *train_fields()) as prog:
        task = prog.add_task("train", total=plan.iterations, loss="-", speed="-")

        def on_event(event: str, info: dict) -> None:
            if event == "step":
                prog.update(task, completed=info["iteration"], loss=f"{info['loss']:.4g}",
                            speed=f"{info['images_per_s']:.1f}")
                if info["iteration"] % 50 == 0:
                    loads.append(("train", D.load_average()))

        tr = D.train_step(plan, paths, sk, callback=on_event)
    console.print(f"  {tr.iterations} steps in {tr.seconds / 60:.1f} min, {tr.images_per_s:.1f} images/s, "
                  f"{tr.cpu_seconds_per_step:.3f} CPU s/step; loss {tr.first_loss:.4g} -> {tr.last_loss:.4g}"
                  if tr.first_loss is not None else "  no step ran", soft_wrap=True)

    header(7, "val on the held-out set" + (" (with --flip)" if plan.val_flip else ""))
    with bar("val") as prog:
        task = prog.add_task("val", total=plan.val_images)
        res = D.val_step(plan, paths, sk, progress=lambda done, total: prog.update(task, completed=done, total=total))
    print_val_report(res, f"{sk.name} held-out set ({res['n_images']} images): COCOeval keypoints, "
                          f"OKS with the skeleton's sigmas, input {plan.input_size}{', flip' if plan.val_flip else ''}")
    total_min = (time.perf_counter() - t_start) / 60
    loads.append(("end", D.load_average()))
    atomic_write_json(output / "summary.json", D.summary(plan, paths, syn, tr, res, total_min * 60, loads), indent=1)
    t = Table(title="artefacts", show_header=False)
    t.add_column("what")
    t.add_column("where", overflow="fold")
    for what, where in (
        ("training set", syn.train_json), ("held-out set", syn.val_json), ("training labels", paths.labels),
        ("target previews", paths.preview / "index.png"),
        ("flip plots", ", ".join(str(p) for p in flip.written)),
        ("checkpoint", tr.checkpoint), ("loss curve", tr.curve), ("training metrics", tr.metrics),
        ("run config", paths.run / "config.json"),
        ("val metrics", paths.results / "metrics.json"), ("val results", paths.results / "results.json"),
        ("val overlays", paths.results), ("demo figures", output / "summary.json"),
    ):
        t.add_row(what, str(where))
    console.print(t)
    console.print(f"[bold]held-out AP {res['AP']:.3f}[/] (AP50 {res['AP50']:.3f}, AR {res['AR']:.3f}) after "
                  f"{tr.iterations} training steps; demo took {total_min:.1f} min", soft_wrap=True)


def main() -> None:
    cli(prog_name="posedata")


if __name__ == "__main__":
    main()
