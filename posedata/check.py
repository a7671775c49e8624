"""`posedata check`: skeleton check + validate + the data-level flip check, one verdict.

The trainer's gate (training_gate) runs check_data on what a label file was made from before the
first step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .coco import CategorySpec
from .findings import Finding, has_errors
from .skeleton import Skeleton
from .skeleton import check as skeleton_check


@dataclass
class CheckResult:
    skeleton: list[Finding] = field(default_factory=list)
    data: list[Finding] = field(default_factory=list)
    flip_findings: list[Finding] = field(default_factory=list)
    flip_verdict: str = "not run"
    flip: object | None = None  # flipcheck.FlipVerdict, when the flip check ran
    samples: list[Finding] = field(default_factory=list)
    num_samples: int | None = None  # training samples convert would make (None: not counted, data errors)

    @property
    def findings(self) -> list[Finding]:
        return self.skeleton + self.data + self.samples + self.flip_findings

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)

    def sections(self) -> list[tuple[str, list[Finding], str]]:
        def verdict(f: list[Finding]) -> str:
            return "FAIL" if has_errors(f) else ("warnings" if any(x.severity == "warning" for x in f) else "PASS")

        counted = "not counted" if self.num_samples is None else \
            ("FAIL" if has_errors(self.samples) else f"{self.num_samples}{' (warnings)' if self.samples else ''}")
        return [("skeleton", self.skeleton, verdict(self.skeleton)), ("data (validate)", self.data, verdict(self.data)),
                ("training samples", self.samples, counted),
                ("flip map vs data", self.flip_findings, self.flip_verdict)]


def check_data(path: str | Path, skeleton: Skeleton, images: Path | None = None,
               category_id: CategorySpec = None, fmt: str = "auto", raw: dict[str, Any] | None = None) -> CheckResult:
    """Every check posedata has for training data, without training. The data are read as
    `posedata convert` reads them (a labelling tool's export through its importer, so what is
    checked is what was converted); raw: the COCO JSON already parsed (path then only names it).
    Raises InputError only for unreadable input; everything else is a finding."""
    from .convert import Source, load_source
    from .flipcheck import flip_findings, flip_verdict
    from .formats.base import ImportOptions
    from .validate import Validated, validate_coco

    res = CheckResult(skeleton=skeleton_check(skeleton))
    src = (load_source(path, skeleton, category_id, fmt, ImportOptions(images=images)) if raw is None
           else Source(path=str(path), raw=raw, sha256=None, category_id=category_id))
    data = src.raw if src.raw is not None else src.dataset.to_coco()
    kept = Validated()
    findings = validate_coco(data, skeleton, file=str(path), images=images, category_id=src.category_id, keep=kept)
    res.data = findings
    if has_errors(findings):
        res.flip_verdict = "skipped (data errors)"
        return res
    from .convert import sample_findings, to_labels

    labels = to_labels(src.data, skeleton, src.category_id, validated=kept)
    res.num_samples, res.samples = labels.num_samples, sample_findings(labels, file=str(path))
    v = flip_verdict(src.dataset, skeleton, src.category_id)
    res.flip, res.flip_verdict = v, v.verdict
    res.flip_findings = flip_findings(v, str(path), skeleton)
    return res


STALE = "C001"


@dataclass
class LabelsCheck:
    """What the training gate checked for a label file: the data it re-checked (the source file,
    or the copy the label file carries when the source is not beside it) and the verdict."""

    source: str
    result: CheckResult
    embedded: bool = False

    @property
    def findings(self) -> list[Finding]:
        return self.result.findings


def check_labels(labels_path: str | Path, skeleton: Skeleton, images: Path | None = None,
                 val_json: Path | None = None, val_images: Path | None = None) -> LabelsCheck:
    """The training gate: check_data on what the label file was made from. The source recorded
    by convert is used when it is found (as written, then beside the label file) and its sha256 is
    the one convert recorded; a changed source is an error (C001, "labels are stale"), since the
    labels no longer show what is checked; without the source the copy stored in the label file
    is checked. Raises InputError when neither is available."""
    import hashlib

    from .errors import InputError
    from .io import parse_json, paused_gc
    from .labels import load_embedded_source, load_header

    settings = load_header(labels_path)["settings"]
    recorded, want = settings.get("source"), settings.get("source_sha256")
    found = None
    if isinstance(recorded, str) and recorded:
        here = Path(labels_path).parent
        found = next((p for p in (Path(recorded), here / recorded, here / Path(recorded).name) if p.exists()), None)
    used = [c.get("id") for c in settings.get("categories") or () if isinstance(c, dict)]
    category: CategorySpec = tuple(used) if len(used) > 1 and all(isinstance(i, int) for i in used) else \
        settings.get("category_id") if isinstance(settings.get("category_id"), int) else None
    stale: list[Finding] = []
    if found is not None and found.is_file() and isinstance(want, str):
        have = hashlib.sha256(found.read_bytes()).hexdigest()
        if have != want:
            stale.append(Finding(
                STALE, "error", f"labels are stale: re-run convert ({found} changed after `posedata convert` read it: "
                f"sha256 {want[:12]}... recorded, {have[:12]}... now; the labels still hold the old data)",
                where="settings.source_sha256", file=str(labels_path)))
    shared = shared_image_findings(images, list(load_header(labels_path)["file_names"]), val_json, val_images)
    if found is not None and not stale:
        checked = LabelsCheck(str(found), check_data(found, skeleton, images, category))
        checked.result.samples += shared
        return checked
    blob = load_embedded_source(labels_path)
    if blob is None:
        if stale:
            return LabelsCheck(str(found), CheckResult(skeleton=stale, samples=shared))
        what = "records no source JSON (settings.source)" if not recorded else \
            f"records source {recorded!r}, which was not found (looked as written and next to the label file)"
        raise InputError(f"label file {what} and carries no copy of it (written by an older posedata); the data "
                         "check cannot run. Re-run convert, or pass --skip-checks to train without it", file=str(labels_path))
    with paused_gc():
        try:
            raw = parse_json(blob, labels_path)
        except InputError as e:
            raise InputError(f"the source JSON stored in the label file does not parse ({e.message})",
                             file=str(labels_path)) from None
    name = f"{labels_path} (its copy of {recorded})"
    res = check_data(name, skeleton, images, category, raw=raw)
    res.skeleton = stale + res.skeleton
    res.samples += shared
    return LabelsCheck(name, res, embedded=True)


@dataclass
class GateOutcome:
    """The data check before training: what was checked and its findings, or why it could not run."""

    source: str | None
    findings: list[Finding]
    could_not_run: str | None = None

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    def refusal(self, labels: Path) -> Exception | None:
        """The error that stops training (unless --skip-checks), or None when the data is ready."""
        from .errors import DataError

        if not has_errors(self.findings):
            return None
        stale = [f.message for f in self.findings if f.code == "C001"]  # the data checked is not the labels'
        return DataError(stale[0] if stale else
                         f"the training data has {self.errors} error(s) (above); fix them or pass --skip-checks",
                         self.findings, file=str(labels if stale else self.source))


def training_gate(labels: Path, sk: Skeleton, images: Path | None, val_json: Path | None,
                  val_images: Path | None, skip_checks: bool) -> GateOutcome:
    """The one "ready for training" verdict: check_labels on what the label file was made from
    (GateOutcome.refusal says whether training may start). A check that cannot run (InputError)
    stops training unless --skip-checks."""
    from .errors import InputError

    try:
        checked = check_labels(labels, sk, images, val_json, val_images)
    except InputError as e:
        if not skip_checks:
            raise
        return GateOutcome(None, [], str(e))
    return GateOutcome(checked.source, checked.findings)


SHARED_IMAGES = "C004"


def shared_image_findings(train_root: Path | None, train_names: list[str], val_json: Path | None,
                          val_images: Path | None) -> list[Finding]:
    """C004: images (by content) in both the training data and the validation file given to train;
    validation AP on them measures memory. Nothing to compare without both image folders."""
    if train_root is None or val_json is None:
        return []
    from .io import load_json
    from .split import shared_images

    val = load_json(val_json)
    names = [im.get("file_name") for im in val.get("images", []) if isinstance(im, dict)] \
        if isinstance(val, dict) and isinstance(val.get("images"), list) else []
    pairs = shared_images(Path(train_root), train_names, Path(val_images or train_root),
                          [n for n in names if isinstance(n, str)])
    if not pairs:
        return []
    shown = ", ".join(f"{a} = {b}" for a, b in pairs[:5]) + (f" and {len(pairs) - 5} more" if len(pairs) > 5 else "")
    return [Finding(SHARED_IMAGES, "warning", f"{len(pairs)} image(s) are both in the training data and in the "
                    f"validation file (same content): {shown}; validation AP on them measures memory. Split with "
                    "`posedata split` (--by folder/track keeps a recording on one side)", where="images",
                    file=str(val_json))]
