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
@click.option("--from-coco", "from_coco", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="COCO keypoint JSON whose category becomes the skeleton.")
@click.option("--category", type=int, default=None, help="Category id (default: the only one with keypoints).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Replace an existing output.")
def skeleton_init(from_coco: Path, category: int | None, output: Path, force: bool) -> None:
    """Write a starting skeleton file from a COCO category, for you to review."""
    from . import skeleton as S
    from .coco import keypoint_category
    from .io import atomic_write_text, check_output, load_json

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


# -------------------------------------------------------------------- export
@cli.group(cls=PosedataSubGroup)
def export() -> None:
    """Write data or models for other tools: `export yolo`, `export onnx`, `export reference`."""


def main() -> None:
    cli(prog_name="posedata")


if __name__ == "__main__":
    main()
