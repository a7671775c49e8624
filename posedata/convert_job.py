"""`posedata convert` as one call: read (importing a tool's export in memory), validate, convert
and write, returning what happened for the command line to print.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .coco import CategorySpec
from .findings import Finding, has_errors
from .formats.base import ImportOptions
from .skeleton import Skeleton

STEPS = ("reading", "validating", "converting", "writing")
# findings of each code that convert builds and prints (the rest are counted): validate's summary
# table shows three locations per code
SHOWN_PER_CODE = 3


@dataclass
class ConvertJob:
    """What run_convert read, found and wrote (written is None when nothing was written)."""

    where: str  # the data as findings name it ("DATA (as imported)" for an export)
    import_format: str | None
    detected: bool
    report: Any  # the import's ImportReport, or None
    findings: list[Finding]  # the first SHOWN_PER_CODE findings of each code, in the order found
    counts: dict[str, int]  # every code's number of findings
    blocked: bool  # validation errors and no --skip-checks: nothing converted
    hint: str | None = None  # the import that would repair the errors, when blocked
    labels: Any = None  # the Labels made (None when blocked)
    verdict: list[Finding] = field(default_factory=list)  # the training-sample findings (C002, C003)
    written: int | None = None

    @property
    def errors(self) -> int:
        from .validate import CHECKS

        return sum(n for code, n in self.counts.items() if CHECKS[code][0] == "error")

    @property
    def empty(self) -> bool:
        """No training sample: nothing written, since no file is better than an empty one."""
        return has_errors(self.verdict)


def run_convert(data: Path, skeleton: Skeleton, output: Path, *, fmt: str = "labels", src_fmt: str = "auto",
                category: CategorySpec = None, options: ImportOptions | None = None, min_keypoints: int | None = None,
                min_area: float = 32 * 32, dedup: float = 0.3, skip_checks: bool = False,
                step: Callable[[str], None] | None = None,
                image_progress: Callable[[int, int], None] | None = None) -> ConvertJob:
    """Convert DATA to a label file (fmt "labels") or the reference's pickle ("lwop-pickle").
    `step(name)` is told each of STEPS as it starts; `image_progress(done, total)` while image
    files are read (options.images given)."""
    from .io import paused_gc
    from .memory import small_pages

    # One scoped GC pause over the whole job, and the parse dropped before it ends: millions of
    # parsed containers are then freed by reference counting without the collector ever scanning
    # them (measured in bench/README.md, "convert"); the collector's state is restored after.
    # Arrays in 4 kB pages (memory.small_pages: NumPy's huge-page advice cost kernel time that grew
    # faster than the file); NumPy's setting is restored after too.
    with paused_gc(), small_pages():
        return _run(data, skeleton, output, fmt, src_fmt, category, options or ImportOptions(), min_keypoints,
                    min_area, dedup, skip_checks, step or (lambda name: None), image_progress)


def _run(data: Path, sk: Skeleton, output: Path, fmt: str, src_fmt: str, category: CategorySpec,
         opts: ImportOptions, min_keypoints: int | None, min_area: float, dedup: float, skip_checks: bool,
         step: Callable[[str], None], image_progress: Callable[[int, int], None] | None) -> ConvertJob:
    from .cocojson import keypoint_lists
    from .columns import TypedRecords
    from .convert import load_source, sample_findings, source_copy, to_labels
    from .importer import suggest_importer
    from .validate import Validated, validate_coco

    step(STEPS[0])
    # the label path reads crowd regions only: polygons of the others stay unparsed (cocojson)
    src = load_source(data, sk, category, fmt=src_fmt, options=opts, polygons=fmt != "labels")
    raw = src.raw if src.raw is not None else src.dataset.to_coco()
    where = str(data) if src.import_format is None else f"{data} (as imported)"
    step(STEPS[1])
    kept = Validated()  # what validate reads of the annotations, converted without reading them again
    findings = validate_coco(raw, sk, file=where, images=opts.images, category_id=src.category_id, keep=kept,
                             progress=image_progress, per_code=SHOWN_PER_CODE)
    job = ConvertJob(where, src.import_format, src.detected, src.report, list(findings), findings.counts,
                     blocked=has_errors(findings) and not skip_checks)
    if job.blocked:
        if src.raw is not None and type(src.raw["annotations"]) is TypedRecords:
            keypoint_lists(src.raw["annotations"], range(len(src.raw["annotations"])))  # the hint reads lists
        job.hint = suggest_importer(src.raw) if src.raw is not None else None
        return job
    if type(raw["annotations"]) is TypedRecords:
        # validate stacked the keypoints it checked (kept): the parsed column is not read again,
        # and freeing it before to_labels's arrays are made lowers the peak
        raw["annotations"].keypoints = None
    step(STEPS[2])
    labels = to_labels(src.data, sk, src.category_id, min_keypoints, min_area, dedup, source=str(data),
                       source_sha256=src.sha256, validated=kept)
    del kept
    labels.settings.update(src.provenance())
    job.labels, job.verdict = labels, sample_findings(labels, file=where)
    step(STEPS[3])
    if job.empty:
        return job
    if fmt == "labels":
        from .labels import save

        if opts.images is not None:
            labels.settings["images"] = str(opts.images)
        # the gate re-checks this copy when the label file travels without its source
        save(labels, output, source=source_copy(data, src, raw))
        job.written = labels.num_samples
    else:
        from .formats.lwop import write_lwop_pickle

        job.written = write_lwop_pickle(raw, output, labels.settings["category_id"], file=where,
                                        min_keypoints=labels.settings["min_keypoints"], min_area=min_area,
                                        dedup_ratio=dedup)
    return job
