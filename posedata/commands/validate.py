"""`posedata validate`, `check` and `import`: the commands that read a dataset and report findings."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from .common import (
    bbox_margin_option,
    category_option,
    claim,
    console,
    err_console,
    force_option,
    images_option,
    json_option,
    one_category,
    output_option,
    progress_bar,
    skeleton_option,
)
from .render import print_findings, print_import_report, print_validate_summary


# ------------------------------------------------------------------- validate
@click.command("validate")
@click.argument("data", type=click.Path(path_type=Path))
@skeleton_option()
@images_option("Images folder: also check every file exists, stays inside it, reads, and has the JSON's size.")
@category_option("every category with keypoints")
@json_option("Print one JSON document (findings and counts) and nothing else.")
@click.option("--fix", "fix_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a repaired copy here (num_keypoints, area, v=0 coordinates, missing boxes); never the input.")
@force_option("Replace an existing --fix output.")
@click.option("--show", type=click.IntRange(0, 1000), default=3, show_default=True,
              help="Locations listed per check (and changes listed per repair x 10).")
def validate_cmd(data: Path, skeleton_spec: str, images: Path | None, category: Any, as_json: bool,
                 fix_out: Path | None, force: bool, show: int) -> None:
    """Check a COCO keypoint file DATA against a skeleton; every finding has a code and a location.

    Exit 0: no errors (warnings and info allowed). Exit 1: the data has errors. Exit 2: DATA,
    the skeleton or the images folder cannot be read. See docs/checks.md for every check code.
    """
    import json

    from .. import skeleton as S
    from .. import validate as V
    from ..errors import InputError
    from ..findings import has_errors
    from ..fix import REPAIRS, repair_file, short
    from ..importer import suggest_importer
    if fix_out is not None:
        claim(fix_out, "validate", data, images, skeleton_spec, force=force)
    sk = S.resolve(skeleton_spec)
    if images is not None and not images.is_dir():
        raise InputError("images folder not found", file=str(images))
    if data.is_dir():
        fmt = suggest_importer(None, data)
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
        fmt = suggest_importer(None, data) if data.exists() else None
        if fmt is None:
            raise
        raise InputError(_tool_export_message(fmt, data, skeleton_spec), file=str(data)) from None
    importer = suggest_importer(raw, data)  # a tool's JSON (coco-annotator, CVAT COCO, Label Studio...)

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


# ---------------------------------------------------------------------- check
@click.command("check")
@click.argument("data", type=click.Path(path_type=Path))
@skeleton_option()
@images_option("Images folder (checks files and sizes).")
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
    from .. import skeleton as S
    from ..check import check_data, shared_image_findings

    sk = skeleton_spec if isinstance(skeleton_spec, S.Skeleton) else S.resolve(skeleton_spec)
    res = check_data(data, sk, images, category)
    if val_json is not None:
        from ..convert import load_source

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


# -------------------------------------------------------------------- import


@click.command("import")
@click.argument("fmt", metavar="FORMAT")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@skeleton_option()
@output_option("file", "COCO keypoint JSON to write.")
@images_option("Images folder: files are resolved by file name, then by the tail of the export's path; "
                   "sizes the export lacks are read from the files.")
@category_option("the only one with keypoints; one category or label")
@click.option("--control", default=None, metavar="NAME",
              help="Label Studio: the keypoint control (a result's from_name) to import, when a project has several.")
@click.option("--predicted", is_flag=True,
              help="SLEAP: also import predicted instances (model output) that no user instance replaced.")
@bbox_margin_option("Boxes made from keypoints are padded by this fraction of the keypoints' extent.")
@click.option("--drop-unlabelled", is_flag=True, help="Drop instances with no labelled keypoints.")
@click.option("--keep-empty", is_flag=True, help="Keep images without annotations (as negatives).")
@click.option("--write-invalid", is_flag=True,
              help="Write the output even when it fails validation (still exit 1), to inspect it.")
@force_option()
@json_option("Print one JSON document (the import report and every validate finding) and nothing else.")
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
    from .. import skeleton as S
    from ..findings import has_errors
    from ..importer import ImportOptions, import_file, validate_result
    from ..io import atomic_write_json

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

        from ..validate import counts

        click.echo(json.dumps({"output": str(output), "written": written, "frames": frames and str(frames),
                               "report": result.report.to_dict(),
                               "counts": counts(findings), "findings": [f.to_dict() for f in findings]}, indent=1))
        if n:
            sys.exit(1)
        return
    # one row per finding code (count and first locations): 116 identical rows buried the warnings
    from ..validate import CHECKS

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

    from ..formats import FORMATS

    import_cmd.help = inspect.cleandoc(import_cmd.help or "") + "\n\nFormats: auto, " + ", ".join(FORMATS) + "."


_import_help_formats()
