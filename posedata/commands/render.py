"""Rich tables shared by several commands (and the demo): findings, validate's per-code summary,
an import's report, convert's counts, val's COCOeval summary."""
from __future__ import annotations

from typing import Any

from rich.table import Table

from .common import SEVERITY_STYLE, console


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


def print_validate_summary(findings: list, checks: dict, show: int, title: str,
                           counts: dict[str, int] | None = None) -> None:
    """One row per check code: severity, count, what it checks and the first locations. counts:
    each code's total when `findings` holds only the first `show` of each (validate_coco's per_code)."""
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
        n = len(fs) if counts is None else counts[code]
        locs = []
        for f in fs[:show]:
            ids = ", ".join(x for x in (f"ann {f.annotation_id}" if f.annotation_id is not None else "",
                                        f"img {f.image_id}" if f.image_id is not None else "") if x)
            locs.append(f"{f.where or '-'}" + (f" ({ids})" if ids else ""))
        if n == 1 or code == "V099":
            locs = [f"{locs[0]}: {fs[0].message}"] if locs else [fs[0].message]
        t.add_row(code, f"[{SEVERITY_STYLE.get(sev, '')}]{sev}[/]", str(n), checks.get(code, ("", code))[1],
                  "\n".join(locs) + ("\n..." if n > show else ""))
    console.print(t)


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
