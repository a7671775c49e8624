"""One finding type shared by skeleton checks, validate, import reports and flip checks."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

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
