"""One finding type shared by skeleton checks, validate, import reports and flip checks."""
from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # "error" | "warning" | "info"
    message: str
    where: str | None = None  # JSON path such as annotations[812].keypoints[14]
    file: str | None = None
    image_id: int | None = None
    annotation_id: int | None = None

    def location(self) -> str:
        parts = [p for p in (self.file, self.where) if p]
        ids = []
        if self.annotation_id is not None:
            ids.append(f"annotation {self.annotation_id}")
        if self.image_id is not None:
            ids.append(f"image {self.image_id}")
        loc = ": ".join(parts)
        if ids:
            loc = f"{loc} ({', '.join(ids)})" if loc else ", ".join(ids)
        return loc

    def to_dict(self) -> dict:
        # every documented key, null when unknown: scripts index finding["image_id"] without a guard
        return asdict(self)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


class SampledFindings(list):
    """Findings of which only the first N of each code were built (FindingReport's per_code), in
    the order they were found: the same findings, in the same order, as the full list filtered
    that way. `counts`: how many each code had in all; `severities`: the same per severity."""

    def __init__(self, findings: Iterable[Finding], counts: dict[str, int], severities: dict[str, int]) -> None:
        super().__init__(findings)
        self.counts = counts
        self.severities = severities


class FindingReport:
    """Collects one check run's findings; `checks` maps each code to (severity, title). per_code N:
    only the first N findings of each code are built, the others counted. A loop that may emit
    many adds room(code) of them and tallies the rest, so their messages are not even formatted."""

    def __init__(self, checks: dict[str, tuple[str, str]], file: str | None, per_code: int | None = None) -> None:
        self.checks = checks
        self.file = file
        self.findings: list[Finding] = []
        self.per_code = per_code
        self.counts: Counter[str] = Counter()  # every finding's code, kept when per_code is set

    def room(self, code: str) -> int:
        """How many more findings of `code` are built."""
        return sys.maxsize if self.per_code is None else max(0, self.per_code - self.counts[code])

    def tally(self, code: str, n: int) -> None:
        """n findings of `code` counted, not built (beyond room(code)); call after the adds."""
        if n:
            self.counts[code] += n

    def add(self, code: str, where: str, message: str, image_id: Any = None, annotation_id: Any = None) -> None:
        if self.per_code is not None:
            seen = self.counts[code]
            self.counts[code] = seen + 1
            if seen >= self.per_code:
                return
        self.findings.append(Finding(
            code, self.checks[code][0], message, where=where, file=self.file,
            image_id=image_id if isinstance(image_id, int) and not isinstance(image_id, bool) else None,
            annotation_id=annotation_id if isinstance(annotation_id, int) and not isinstance(annotation_id, bool) else None,
        ))

    def result(self) -> list[Finding]:
        """The findings; a SampledFindings when per_code is set."""
        if self.per_code is None:
            return self.findings
        severities = dict.fromkeys(SEVERITIES, 0)
        for code, n in self.counts.items():
            sev = self.checks[code][0]
            severities[sev] = severities.get(sev, 0) + n
        return SampledFindings(self.findings, dict(self.counts), severities)
