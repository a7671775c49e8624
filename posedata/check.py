"""`posedata check`: skeleton check + validate + the data-level flip check, one verdict.

The trainer's gate calls check_data before its first step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .findings import Finding, has_errors
from .skeleton import Skeleton
from .skeleton import check as skeleton_check


@dataclass
class CheckResult:
    skeleton: list[Finding] = field(default_factory=list)
    data: list[Finding] = field(default_factory=list)
    flip: list[Finding] = field(default_factory=list)
    flip_verdict: str = "not run"

    @property
    def findings(self) -> list[Finding]:
        return self.skeleton + self.data + self.flip

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)

    def sections(self) -> list[tuple[str, list[Finding], str]]:
        def verdict(f: list[Finding]) -> str:
            return "FAIL" if has_errors(f) else ("warnings" if any(x.severity == "warning" for x in f) else "PASS")

        return [("skeleton", self.skeleton, verdict(self.skeleton)), ("data (validate)", self.data, verdict(self.data)),
                ("flip map vs data", self.flip, self.flip_verdict)]


def check_data(path: str | Path, skeleton: Skeleton, images: Path | None = None,
               category_id: int | None = None, fmt: str = "auto") -> CheckResult:
    """Every check posedata has for training data, without training. The data are read as
    `posedata convert` reads them (a labelling tool's export through its importer, so what is
    checked is what was converted). Raises InputError only for unreadable input; everything
    else is a finding."""
    from .convert import load_source
    from .flipcheck import orientation_check
    from .formats.base import ImportOptions
    from .validate import validate_coco

    res = CheckResult(skeleton=skeleton_check(skeleton))
    src = load_source(path, skeleton, category_id, fmt, ImportOptions(images=images))
    data = src.raw if src.raw is not None else src.dataset.to_coco()
    findings = validate_coco(data, skeleton, file=str(path), images=images, category_id=category_id)
    res.data = findings
    if has_errors(findings):
        res.flip_verdict = "skipped (data errors)"
        return res
    ds = src.dataset
    o = orientation_check(ds, skeleton, category_id)
    if o.inconclusive:
        res.flip_verdict = "inconclusive"
        res.flip.append(Finding("F002", "info", f"flip map check inconclusive: {o.inconclusive}", file=str(path)))
    elif o.flagged:
        res.flip_verdict = "FAIL"
        res.flip.append(Finding(
            "F001", "error",
            f"the flip map disagrees with the data's mirror symmetry around {', '.join(o.flagged)}; "
            "run `posedata flipcheck` for plots", where="flip", file=skeleton.file))
    else:
        res.flip_verdict = "PASS"
    return res
